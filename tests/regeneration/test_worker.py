"""The regeneration worker against real PostgreSQL and the mock model: claim once, a new DRAFT with its
output and lineage in one fenced transaction, failures in words, and the sweeper for lost workers."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec

from app.audit.tables import AuditLog
from app.authoring.generation import item_doc
from app.authoring.tables import ContentItem
from app.llm.generate import GenerationMetadata
from app.regeneration import services, worker
from app.regeneration.tables import RegenerationJob, RegenerationOutput
from tests.regeneration.helpers import actor_of, approved_module, job_row, queue_without_wake


async def _audit_actions(job_id) -> list[str]:
    rows = await AuditLog.select(AuditLog.action).where(
        (AuditLog.entity_type == "regeneration_job") & (AuditLog.entity_id == str(job_id))).order_by(AuditLog.id)
    return [row["action"] for row in rows]


async def _queued_job(personas, made, kind="LESSON", text="Use a kitchen analogy for branches", **extra) -> dict:
    job = await services.create_job(personas.acme["id"], target_id=made[kind]["id"],
                                    instruction={"text": text, **extra}, actor=actor_of(personas.admin))
    await queue_without_wake(job["id"])
    return job


async def test_it_writes_a_new_draft_and_its_output_and_completes_the_job(personas):
    made = await approved_module(personas)
    job = await _queued_job(personas, made, evidence={"drop_off": 0.6})
    summary = await worker.run_regeneration_job(job["id"])
    assert summary["status"] == "COMPLETED", summary
    row = await job_row(job["id"])
    assert row["status"] == "COMPLETED" and row["completed_at"] and row["locked_at"] and row["attempt"] == 1
    output = await RegenerationOutput.select().where(RegenerationOutput.id == row["output_id"]).first()
    assert output["job_id"] == job["id"] and output["source_item_id"] == made["LESSON"]["id"]
    assert output["prompt_name"] == "lesson" and output["prompt_version"].startswith("lesson/v")
    assert output["model"] == "mock-1" and output["input_tokens"] > 0 and output["output_tokens"] > 0
    assert msgspec.json.decode(output["lineage"]) == {
        "signal_id": None, "suggestion_id": None, "job_id": str(job["id"]), "retry_of_job_id": None,
        "retry_intent_id": None, "source_item_id": str(made["LESSON"]["id"])}
    draft = await ContentItem.select().where(ContentItem.id == output["content_item_id"]).first()
    assert draft["status"] == "DRAFT" and draft["supersedes_id"] == made["LESSON"]["id"]
    assert draft["content_hash"] == output["content_hash"] != made["LESSON"]["content_hash"]
    assert draft["created_by"] == personas.admin.user_id
    provenance = msgspec.json.decode(draft["generation"])
    assert provenance["regeneration_job_id"] == str(job["id"]) and provenance["run_id"] is None
    assert provenance["source_item_id"] == str(made["LESSON"]["id"])
    # The approved lesson is untouched and still what gets published.
    assert (await ContentItem.select().where(ContentItem.id == made["LESSON"]["id"]).first())["status"] == "APPROVED"
    assert await _audit_actions(job["id"]) == ["REGEN_JOB_CREATED", "REGEN_JOB_LOCKED", "REGEN_JOB_STARTED",
                                               "REGEN_JOB_COMPLETED"]


async def test_it_regenerates_a_quiz_and_a_project_through_their_own_contracts(personas):
    made = await approved_module(personas)
    for kind in ("QUIZ", "PROJECT"):
        job = await _queued_job(personas, made, kind=kind, text="Make it harder")
        assert (await worker.run_regeneration_job(job["id"]))["status"] == "COMPLETED"
        output = await RegenerationOutput.select().where(RegenerationOutput.job_id == job["id"]).first()
        assert output["prompt_name"] == kind.lower()
        if kind == "QUIZ":
            assert len(msgspec.json.decode(output["content"])["questions"]) == 5


async def test_fifty_concurrent_claimers_run_one_job_once(personas):
    made = await approved_module(personas)
    job = await _queued_job(personas, made)
    results = await asyncio.gather(*[worker.run_regeneration_job(job["id"]) for _ in range(50)])
    assert sum(1 for r in results if r.get("status") == "COMPLETED") == 1
    assert sum(1 for r in results if "skipped" in r) == 49
    row = await job_row(job["id"])
    assert row["status"] == "COMPLETED" and row["attempt"] == 1
    assert await RegenerationOutput.count().where(RegenerationOutput.job_id == job["id"]) == 1
    assert await ContentItem.count().where(ContentItem.supersedes_id == made["LESSON"]["id"]) == 1
    assert (await _audit_actions(job["id"])).count("REGEN_JOB_COMPLETED") == 1
    assert (await _audit_actions(job["id"])).count("REGEN_JOB_LOCKED") == 1


async def test_it_skips_a_job_that_is_not_queued(personas):
    made = await approved_module(personas)
    job = await services.create_job(personas.acme["id"], target_id=made["LESSON"]["id"], instruction="Shorter",
                                    actor=actor_of(personas.admin))
    assert "skipped" in await worker.run_regeneration_job(job["id"])
    assert (await job_row(job["id"]))["status"] == "PENDING"


async def test_it_fails_in_words_when_the_model_gives_up_and_does_not_retry(personas):
    made = await approved_module(personas)
    job = await _queued_job(personas, made, text="Shorter [mock:lesson:schema*3]")
    summary = await worker.run_regeneration_job(job["id"])
    assert summary["status"] == "FAILED"
    row = await job_row(job["id"])
    error = msgspec.json.decode(row["error"])
    assert row["status"] == "FAILED" and error["code"] == "model_gave_up"
    assert "did not pass validation after 3 attempts" in error["message"] and len(error["details"]) == 3
    assert row["output_id"] is None
    assert await ContentItem.count().where(ContentItem.supersedes_id == made["LESSON"]["id"]) == 0
    assert await _audit_actions(job["id"]) == ["REGEN_JOB_CREATED", "REGEN_JOB_LOCKED", "REGEN_JOB_STARTED",
                                               "REGEN_JOB_FAILED"]
    assert "skipped" in await worker.run_regeneration_job(job["id"])  # a second wake-up does nothing


async def test_it_fails_when_another_revision_of_the_slot_is_open(personas):
    made = await approved_module(personas)
    job = await _queued_job(personas, made)
    [opened] = await ContentItem.insert(ContentItem(
        tenant_id=personas.acme["id"], syllabus_id=made["syllabus"]["id"], kind="LESSON", module_index=1,
        lesson_index=1, title="Hand edit", status="DRAFT", supersedes_id=made["LESSON"]["id"],
        content=made["LESSON"]["content"], content_hash="1" * 64)).returning(ContentItem.id)
    open_id = opened["id"]
    await worker.run_regeneration_job(job["id"])
    error = msgspec.json.decode((await job_row(job["id"]))["error"])
    assert error["code"] == "slot_busy" and "Another revision of this lesson is waiting for review" in error["message"]
    assert error["details"] == [f"/admin/items/{open_id}"]
    assert await RegenerationOutput.count().where(RegenerationOutput.job_id == job["id"]) == 0


async def test_a_rejected_revision_of_the_slot_gives_way_to_the_regenerated_draft(personas):
    made = await approved_module(personas)
    job = await _queued_job(personas, made)
    [rejected] = await ContentItem.insert(ContentItem(
        tenant_id=personas.acme["id"], syllabus_id=made["syllabus"]["id"], kind="LESSON", module_index=1,
        lesson_index=1, title="Hand edit", status="DRAFT", supersedes_id=made["LESSON"]["id"],
        content=made["LESSON"]["content"], content_hash="1" * 64)).returning(ContentItem.id)
    await ContentItem.update({ContentItem.status: "REJECTED", ContentItem.rejection_reason: "no"}).where(
        ContentItem.id == rejected["id"])
    result = await worker.run_regeneration_job(job["id"])
    assert result["status"] == "COMPLETED", result
    assert (await ContentItem.select(ContentItem.status).where(ContentItem.id == rejected["id"]).first()) == {
        "status": "SUPERSEDED"}
    output = await RegenerationOutput.select().where(RegenerationOutput.job_id == job["id"]).first()
    draft = await ContentItem.select(ContentItem.status).where(ContentItem.id == output["content_item_id"]).first()
    assert draft["status"] == "DRAFT"


async def test_the_sweeper_fails_a_job_whose_worker_was_lost_once(personas):
    made = await approved_module(personas)
    job = await _queued_job(personas, made)
    claimed = await worker.JOB_LEASE.claim(job["id"])
    assert claimed["status"] == "RUNNING"
    await RegenerationJob.raw("UPDATE regeneration_job SET heartbeat_at = now() - interval '1 hour' WHERE id = {}",
                              job["id"])
    first = await worker.sweep_regeneration()
    assert first["failed_lost"] >= 1
    row = await job_row(job["id"])
    assert row["status"] == "FAILED" and msgspec.json.decode(row["error"]) == {
        "code": "worker_lost", "details": [],
        "message": "The worker running this job was lost; create a retry request to run it again."}
    await worker.sweep_regeneration()
    assert (await _audit_actions(job["id"])).count("REGEN_JOB_FAILED") == 1
    # The lost worker comes back with an answer: its fenced write finds the job taken and stores nothing.
    metadata = GenerationMetadata(provider="mock", model="mock-1", prompt_name="lesson", prompt_version="lesson/v2",
                                  temperature=0.2, seed=1, input_tokens=1, output_tokens=1, duration_ms=1,
                                  validation_passed=True, repairs=0, run_id=None)
    assert await worker._complete(claimed, made["LESSON"], item_doc(made["LESSON"]), metadata) is None
    assert await RegenerationOutput.count().where(RegenerationOutput.job_id == job["id"]) == 0


async def test_the_sweeper_leaves_a_job_with_a_fresh_heartbeat_alone(personas):
    made = await approved_module(personas)
    job = await _queued_job(personas, made)
    await worker.JOB_LEASE.claim(job["id"])
    await worker.sweep_regeneration()
    assert (await job_row(job["id"]))["status"] == "RUNNING"
    await RegenerationJob.raw("UPDATE regeneration_job SET heartbeat_at = now() - {}::interval WHERE id = {}",
                              worker.timeout() + dt.timedelta(seconds=5), job["id"])
    await worker.sweep_regeneration()
    assert (await job_row(job["id"]))["status"] == "FAILED"


def test_the_timeout_setting_is_strict(tmp_path):
    import pytest

    from app.settings import SettingsError, load_settings

    base = {"DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://localhost/x"}
    assert load_settings(base).regeneration_timeout_seconds == 300
    assert load_settings({**base, "REGENERATION_TIMEOUT_SECONDS": "60"}).regeneration_timeout_seconds == 60
    for raw, words in (("7", "between 8 and 86400, got 7"), ("soon", "must be an integer, got 'soon'")):
        with pytest.raises(SettingsError, match=words):
            load_settings({**base, "REGENERATION_TIMEOUT_SECONDS": raw})


async def _suggestion(personas, made) -> tuple:
    import uuid

    signal_id, suggestion_id = uuid.uuid4(), uuid.uuid4()
    await RegenerationJob.raw(
        "INSERT INTO analytics_signal (id, tenant_id, course_id, signal_type, lesson_index, severity, day, "
        "window_start, window_end, metrics, thresholds, summary, status, created_at) VALUES ({}, {}, {}, "
        "'high_drop_off', 1, 'high', current_date, current_date - 6, current_date, {}::jsonb, {}::jsonb, "
        "'Lesson 1 loses 90%', 'OPEN', now())", signal_id, personas.acme["id"], made["syllabus"]["id"], "{}", "{}")
    await RegenerationJob.raw(
        "INSERT INTO content_suggestion (id, tenant_id, course_id, scope, target_id, suggestion_type, severity, "
        "message, evidence, source_signal_id, created_at, status) VALUES ({}, {}, {}, 'LESSON', {}, 'DROP_OFF', "
        "'high', 'Lesson 1 loses learners', {}::jsonb, {}, now(), 'OPEN')", suggestion_id, personas.acme["id"],
        made["syllabus"]["id"], made["LESSON"]["id"], '{"drop_off_rate": 0.9}', signal_id)
    return signal_id, suggestion_id


async def test_the_lineage_follows_a_retry_back_to_its_suggestion_and_signal(personas):
    import uuid

    import pytest

    from app.errors import InvalidInput

    made = await approved_module(personas)
    signal_id, suggestion_id = await _suggestion(personas, made)
    first = await services.create_job(personas.acme["id"], target_id=made["LESSON"]["id"], instruction="Shorter",
                                      actor=actor_of(personas.admin), suggestion_id=suggestion_id)
    retry = await services.create_job(personas.acme["id"], target_id=made["LESSON"]["id"], instruction="Shorter",
                                      actor=actor_of(personas.admin), retry_of_job_id=first["id"],
                                      retry_intent_id=uuid.uuid4())
    await queue_without_wake(retry["id"])
    assert (await worker.run_regeneration_job(retry["id"]))["status"] == "COMPLETED"
    output = await RegenerationOutput.select().where(RegenerationOutput.job_id == retry["id"]).first()
    lineage = msgspec.json.decode(output["lineage"])
    assert lineage["signal_id"] == str(signal_id) and lineage["suggestion_id"] == str(suggestion_id)
    assert lineage["retry_of_job_id"] == str(first["id"])
    assert lineage["retry_intent_id"] == str(retry["retry_intent_id"])
    theirs = await approved_module(personas, tenant=personas.globex, persona=personas.outsider)
    with pytest.raises(InvalidInput, match="No such suggestion"):  # another workspace's suggestion
        await services.create_job(personas.globex["id"], target_id=theirs["LESSON"]["id"], instruction="x",
                                  actor=actor_of(personas.outsider), suggestion_id=suggestion_id)


async def test_a_graceful_stop_fails_a_running_job_instead_of_requeueing_it(personas):
    from app.jobs.lease import drain

    made = await approved_module(personas)
    job = await _queued_job(personas, made, text="Shorter [mock:lesson:slow]")
    running = asyncio.ensure_future(worker.run_regeneration_job(job["id"]))
    # Started (audited inside the claim, after RUNNING is set): the worker holds the job from here on.
    for _ in range(400):
        if "REGEN_JOB_STARTED" in await _audit_actions(job["id"]):
            break
        await asyncio.sleep(0.05)
    try:
        assert await drain.stop(grace=0.2) == 1
        summary = await running
    finally:
        drain.open()
    assert summary["error"] == "worker_stopped"
    row = await job_row(job["id"])
    assert row["status"] == "FAILED" and msgspec.json.decode(row["error"])["code"] == "worker_stopped"
    assert (await _audit_actions(job["id"])).count("REGEN_JOB_FAILED") == 1
