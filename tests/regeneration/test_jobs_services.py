"""Regeneration job services: create (PENDING), trigger (PENDING -> QUEUED) with the cost guard, the state
machine refused by code and by the database trigger, and the in-transaction variants other services use."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest

from app.audit.tables import AuditLog
from app.authoring.tables import ContentItem
from app.db import engine
from app.errors import Conflict, InvalidInput, NotFound
from app.llm.tables import AIUsage
from app.regeneration import services
from app.regeneration.tables import LlmBudget, RegenerationJob
from tests.regeneration.helpers import actor_of, approved_module, job_row


async def _audit_actions(job_id: uuid.UUID) -> list[str]:
    rows = await AuditLog.select(AuditLog.action).where(
        (AuditLog.entity_type == "regeneration_job") & (AuditLog.entity_id == str(job_id))).order_by(AuditLog.id)
    return [row["action"] for row in rows]


async def _job(personas, made, kind="LESSON", text="Use a kitchen analogy for branches") -> dict:
    return await services.create_job(personas.acme["id"], target_id=made[kind]["id"], instruction={"text": text},
                                     actor=actor_of(personas.admin))


async def test_it_creates_a_pending_job_for_an_approved_item_and_audits_it(personas):
    made = await approved_module(personas)
    job = await services.create_job(
        personas.acme["id"], target_id=made["QUIZ"]["id"], actor=actor_of(personas.admin),
        instruction={"text": "  Make question 2 less ambiguous  ", "evidence": {"retry_rate": 0.4}, "keep": ["q1"]})
    row = await job_row(job["id"])
    assert row["status"] == "PENDING"
    assert row["target_type"] == "QUIZ" and row["target_id"] == made["QUIZ"]["id"]
    assert row["course_id"] == made["syllabus"]["id"]
    assert row["created_by"] == personas.admin.user_id
    assert services.instruction_of(row).text == "Make question 2 less ambiguous"
    assert services.instruction_of(row).evidence == {"retry_rate": 0.4}
    assert row["estimated_cost_usd"] == Decimal(0)  # mock-1 is free
    assert await _audit_actions(job["id"]) == ["REGEN_JOB_CREATED"]


@pytest.mark.parametrize("instruction, words", [
    ({"text": ""}, "instruction is required"),
    ({"text": "   "}, "instruction is required"),
    ("", "instruction is required"),
    ({"text": "x" * 2001}, "at most 2000"),
    ({"text": "ok", "colour": "red"}, "Check the instruction"),
    ({"text": "ok", "keep": "not a list"}, "Keep"),
])
async def test_it_refuses_a_bad_instruction_in_words_and_stores_nothing(personas, instruction, words):
    made = await approved_module(personas)
    with pytest.raises(InvalidInput, match=words):
        await services.create_job(personas.acme["id"], target_id=made["LESSON"]["id"], instruction=instruction,
                                  actor=actor_of(personas.admin))
    assert await RegenerationJob.count().where(RegenerationJob.target_id == made["LESSON"]["id"]) == 0


async def test_it_refuses_a_target_that_is_not_the_newest_approved_item_of_this_workspace(personas):
    made = await approved_module(personas)
    other = await approved_module(personas, tenant=personas.globex, persona=personas.outsider)
    draft = (await ContentItem.insert(ContentItem(
        tenant_id=personas.acme["id"], syllabus_id=made["syllabus"]["id"], kind="LESSON", module_index=1,
        lesson_index=2, title="Lesson 1.2", status="QUEUED")).returning(ContentItem.id))[0]
    for target, words in ((other["LESSON"]["id"], "of this workspace"), (uuid.uuid4(), "of this workspace"),
                          (draft["id"], "Only approved content")):
        with pytest.raises(InvalidInput, match=words):
            await services.create_job(personas.acme["id"], target_id=target, instruction="Shorter",
                                      actor=actor_of(personas.admin))
    assert await RegenerationJob.count().where(RegenerationJob.tenant_id == personas.acme["id"]) == 0


async def test_it_hides_another_workspaces_job(personas):
    made = await approved_module(personas)
    job = await _job(personas, made)
    with pytest.raises(NotFound):
        await services.get_job(personas.globex["id"], job["id"])
    with pytest.raises(NotFound):
        await services.trigger_job(personas.globex["id"], job["id"], actor=actor_of(personas.outsider))
    assert (await job_row(job["id"]))["status"] == "PENDING"


async def test_it_triggers_only_from_pending(personas):
    made = await approved_module(personas)
    job = await _job(personas, made)
    queued = await services.trigger_job(personas.acme["id"], job["id"], actor=actor_of(personas.admin))
    row = await job_row(job["id"])
    assert queued["status"] == row["status"] == "QUEUED"
    assert row["queued_at"] is not None and row["triggered_by"] == personas.admin.user_id
    assert await _audit_actions(job["id"]) == ["REGEN_JOB_CREATED", "REGEN_JOB_TRIGGERED"]
    with pytest.raises(Conflict, match="already triggered"):
        await services.trigger_job(personas.acme["id"], job["id"], actor=actor_of(personas.admin))
    assert (await job_row(job["id"]))["status"] == "QUEUED"
    assert await _audit_actions(job["id"]) == ["REGEN_JOB_CREATED", "REGEN_JOB_TRIGGERED"]


@pytest.mark.parametrize("status, words", [
    ("RUNNING", "is running"), ("COMPLETED", "completed"), ("FAILED", "retry request")])
async def test_it_explains_why_a_job_past_pending_cannot_be_triggered(personas, status, words):
    made = await approved_module(personas)
    job = await _job(personas, made)
    await RegenerationJob.raw("UPDATE regeneration_job SET status = 'QUEUED' WHERE id = {}", job["id"])
    await RegenerationJob.raw("UPDATE regeneration_job SET status = 'RUNNING' WHERE id = {}", job["id"])
    if status == "COMPLETED":
        await RegenerationJob.raw("UPDATE regeneration_job SET status = 'COMPLETED', output_id = gen_random_uuid(), "
                                  "completed_at = now() WHERE id = {}", job["id"])
    elif status == "FAILED":
        await RegenerationJob.raw("UPDATE regeneration_job SET status = 'FAILED', completed_at = now(), "
                                  "error = {}::jsonb WHERE id = {}", '{"code": "x", "message": "y"}', job["id"])
    with pytest.raises(Conflict, match=words):
        await services.trigger_job(personas.acme["id"], job["id"], actor=actor_of(personas.admin))
    assert (await job_row(job["id"]))["status"] == status


async def test_it_lets_only_one_of_many_concurrent_triggers_win(personas):
    import asyncio

    made = await approved_module(personas)
    job = await _job(personas, made)
    results = await asyncio.gather(*[
        services.trigger_job(personas.acme["id"], job["id"], actor=actor_of(personas.admin)) for _ in range(10)],
        return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, dict))
    assert await _audit_actions(job["id"]) == ["REGEN_JOB_CREATED", "REGEN_JOB_TRIGGERED"]


ILLEGAL = [("PENDING", "RUNNING"), ("PENDING", "COMPLETED"), ("PENDING", "FAILED"), ("QUEUED", "PENDING"),
           ("QUEUED", "COMPLETED"), ("QUEUED", "FAILED"), ("RUNNING", "QUEUED"), ("RUNNING", "PENDING"),
           ("COMPLETED", "FAILED"), ("COMPLETED", "RUNNING"), ("FAILED", "QUEUED"), ("FAILED", "COMPLETED")]
PATH = {"PENDING": [], "QUEUED": ["QUEUED"], "RUNNING": ["QUEUED", "RUNNING"],
        "COMPLETED": ["QUEUED", "RUNNING", "COMPLETED"], "FAILED": ["QUEUED", "RUNNING", "FAILED"]}
FINISH = {"COMPLETED": ", output_id = gen_random_uuid(), completed_at = now()",
          "FAILED": ", error = '{\"code\": \"x\", \"message\": \"y\"}'::jsonb, completed_at = now()"}


@pytest.mark.parametrize("old, new", ILLEGAL)
async def test_the_database_refuses_every_illegal_transition(personas, old, new):
    made = await approved_module(personas)
    job = await _job(personas, made)
    conn = await engine().get_new_connection()
    try:
        for step in PATH[old]:
            await conn.execute(f"UPDATE regeneration_job SET status = '{step}'{FINISH.get(step, '')} WHERE id = $1",
                               job["id"])
        with pytest.raises(asyncpg.RaiseError, match="not allowed|is final"):
            await conn.execute(f"UPDATE regeneration_job SET status = '{new}'{FINISH.get(new, '')} WHERE id = $1",
                               job["id"])
    finally:
        await conn.close()
    assert (await job_row(job["id"]))["status"] == old


async def test_the_database_refuses_changing_what_a_job_regenerates_and_deleting_it(personas):
    made = await approved_module(personas)
    job = await _job(personas, made)
    with pytest.raises(asyncpg.RaiseError, match="never changes"):
        await RegenerationJob.raw("UPDATE regeneration_job SET instruction = {}::jsonb WHERE id = {}",
                                  '{"text": "other"}', job["id"])
    with pytest.raises(asyncpg.RaiseError, match="jobs are kept"):
        await RegenerationJob.raw("DELETE FROM regeneration_job WHERE id = {}", job["id"])
    with pytest.raises(asyncpg.RaiseError, match="starts PENDING"):
        await RegenerationJob.raw(
            "INSERT INTO regeneration_job (id, tenant_id, course_id, target_type, target_id, instruction, status, "
            "estimated_cost_usd, created_at, attempt, lost_attempts) VALUES (gen_random_uuid(), {}, {}, 'LESSON', {}, "
            "{}::jsonb, 'QUEUED', 0, now(), 0, 0)", personas.acme["id"], made["syllabus"]["id"], made["LESSON"]["id"],
            '{"text": "x"}')


async def test_it_creates_and_queues_inside_a_callers_transaction_and_audits_only_after_commit(personas):
    made = await approved_module(personas)
    later = services.AfterCommit()
    async with engine().transaction():
        job = await services.create_job(personas.acme["id"], target_id=made["PROJECT"]["id"], instruction="Shorter",
                                        actor=actor_of(personas.admin), after_commit=later)
        queued = await services.queue_job(personas.acme["id"], job["id"], actor=actor_of(personas.admin),
                                          after_commit=later)
        assert queued["status"] == "QUEUED"
        assert await _audit_actions(job["id"]) == []
    await later.run()
    assert (await job_row(job["id"]))["status"] == "QUEUED"
    assert await _audit_actions(job["id"]) == ["REGEN_JOB_CREATED", "REGEN_JOB_TRIGGERED"]


async def test_a_rolled_back_callers_transaction_leaves_no_job_and_no_audit(personas):
    made = await approved_module(personas)
    later = services.AfterCommit()
    with pytest.raises(RuntimeError):
        async with engine().transaction():
            await services.create_job(personas.acme["id"], target_id=made["LESSON"]["id"], instruction="Shorter",
                                      actor=actor_of(personas.admin), after_commit=later)
            raise RuntimeError("the caller's next step failed")
    assert await RegenerationJob.count().where(RegenerationJob.target_id == made["LESSON"]["id"]) == 0
    assert await AuditLog.count().where((AuditLog.tenant_id == personas.acme["id"])
                                        & (AuditLog.action == "REGEN_JOB_CREATED")) == 0


async def test_it_estimates_from_the_prompt_and_shows_the_months_spend_and_budget(personas):
    made = await approved_module(personas)
    cost = await services.estimate(personas.acme["id"], made["LESSON"]["id"], {"text": "Shorter"})
    assert cost.input_tokens > 500 and cost.output_tokens > 100 and cost.model == "mock-1"
    assert cost.estimated_usd == 0 and cost.month_spend_usd == 0
    assert cost.budget_usd is None and not cost.would_exceed
    await AIUsage.insert(AIUsage(tenant_id=personas.acme["id"], operation="lesson", provider="mock", model="mock-1",
                                 prompt_name="lesson", prompt_version="v", cost_usd=Decimal("1.25"), success=True))
    await services.set_budget(personas.acme["id"], "1.00", actor=actor_of(personas.admin))
    cost = await services.estimate(personas.acme["id"], made["LESSON"]["id"], {"text": "Shorter"})
    assert cost.month_spend_usd == Decimal("1.25") and cost.budget_usd == Decimal("1.00") and cost.would_exceed


async def test_the_cost_guard_refuses_a_trigger_over_budget_with_the_figures(personas):
    made = await approved_module(personas)
    job = await _job(personas, made)
    await AIUsage.insert(AIUsage(tenant_id=personas.acme["id"], operation="lesson", provider="mock", model="mock-1",
                                 prompt_name="lesson", prompt_version="v", cost_usd=Decimal("3.50"), success=True))
    await services.set_budget(personas.acme["id"], "3", actor=actor_of(personas.admin))
    with pytest.raises(services.BudgetExceeded, match=r"\$3\.50 spent this month.*budget is \$3\.00"):
        await services.trigger_job(personas.acme["id"], job["id"], actor=actor_of(personas.admin))
    assert (await job_row(job["id"]))["status"] == "PENDING"
    await services.set_budget(personas.acme["id"], "10", actor=actor_of(personas.admin))
    await services.trigger_job(personas.acme["id"], job["id"], actor=actor_of(personas.admin))
    assert (await job_row(job["id"]))["status"] == "QUEUED"


async def test_it_sets_and_removes_the_budget_audited_and_refuses_bad_amounts(personas):
    actor = actor_of(personas.admin)
    assert await services.set_budget(personas.acme["id"], "$12.50", actor=actor) == Decimal("12.50")
    assert (await LlmBudget.select().where(LlmBudget.tenant_id == personas.acme["id"]).first())["monthly_usd"] \
        == Decimal("12.50")
    for bad in ("abc", "-1", "1.234", "NaN", "1e30"):
        with pytest.raises(InvalidInput, match="monthly budget"):
            await services.set_budget(personas.acme["id"], bad, actor=actor)
    assert await services.get_budget(personas.acme["id"]) == Decimal("12.50")
    assert await services.set_budget(personas.acme["id"], "", actor=actor) is None
    assert await services.get_budget(personas.acme["id"]) is None
    changes = await AuditLog.count().where((AuditLog.tenant_id == personas.acme["id"])
                                           & (AuditLog.action == "LLM_BUDGET_CHANGED"))
    assert changes == 2
