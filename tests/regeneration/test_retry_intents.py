"""Retry intents (SPEC R5): asked for only on a FAILED job with a reason, approved by an admin, executed once
(a new job with its lineage, in one transaction) or refused for good; the trigger refuses the rest."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import pytest

from app.audit.services import Actor
from app.audit.tables import AuditLog
from app.authoring.tables import ContentItem
from app.errors import Conflict, InvalidInput, NotFound
from app.llm.tables import AIUsage
from app.regeneration import intents
from app.regeneration import services as jobs
from app.regeneration.tables import RegenerationJob, RetryIntent
from tests.conftest import DATABASE_URL, Client, LiveServer, Persona, make_member, make_tenant
from tests.publishing.helpers import published_course

ERROR = '{"code": "worker_lost", "message": "The worker stopped answering (test)."}'


@dataclass
class Place:
    acme: dict
    admin: Persona
    outsider: Persona
    actor: Actor
    items: list[uuid.UUID]  # approved lessons, quizzes and projects of a published course
    used: int = 0

    def next_item(self) -> uuid.UUID:
        self.used += 1  # a target can have many jobs: cycle through them
        return self.items[(self.used - 1) % len(self.items)]


@pytest.fixture(scope="module")
async def place(live_server: LiveServer) -> Place:
    acme, globex = await make_tenant("Acme"), await make_tenant("Globex")
    admin = await make_member(acme, "admin", "adam")
    outsider = await make_member(globex, "admin", "oscar")
    client = Client(live_server.url)
    await client.login(admin.email)
    try:
        syllabus, _package = await published_course(client)
    finally:
        await client.aclose()
    items = await ContentItem.select(ContentItem.id).where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.status == "APPROVED")
        & ContentItem.kind.is_in(["LESSON", "QUIZ", "PROJECT"]))
    return Place(acme, admin, outsider, Actor(admin.user_id, admin.email), [row["id"] for row in items])


async def failed_job(place: Place) -> dict:
    """A job made by the service, then taken through QUEUED and RUNNING to FAILED the way a worker that was
    lost and the sweeper leave it (no wake-up, so no real worker races the test)."""
    job = await jobs.create_job(place.acme["id"], target_id=place.next_item(),
                                instruction={"text": "Shorter, with one worked example."}, actor=place.actor)
    for step in ("status = 'QUEUED', queued_at = now()",
                 "status = 'RUNNING', claimed_at = now(), locked_at = now(), heartbeat_at = now(), attempt = 1"):
        await RegenerationJob.raw(f"UPDATE regeneration_job SET {step} WHERE id = {{}}", job["id"])
    await RegenerationJob.raw("UPDATE regeneration_job SET status = 'FAILED', completed_at = now(), "
                              "error = {}::jsonb WHERE id = {}", ERROR, job["id"])
    return await jobs.get_job(place.acme["id"], job["id"])


async def approved_intent(place: Place) -> tuple[dict, dict]:
    job = await failed_job(place)
    intent = await intents.create_intent(place.acme["id"], job["id"], "INFRA_ERROR", "The worker was killed.",
                                         actor=place.actor)
    return job, await intents.approve_intent(place.acme["id"], intent["id"], actor=place.actor)


async def intent_row(intent_id: uuid.UUID) -> dict:
    return await RetryIntent.select().where(RetryIntent.id == intent_id).first()


async def audit_actions(entity_id: uuid.UUID) -> list[str]:
    rows = await AuditLog.select(AuditLog.action).where(AuditLog.entity_id == str(entity_id)).order_by(AuditLog.id)
    return [row["action"] for row in rows]


async def raw(query: str, *args) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(query, *args)
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------
# Services


async def test_it_asks_for_a_retry_only_of_a_failed_job(place):
    tenant = place.acme["id"]
    pending = await jobs.create_job(tenant, target_id=place.next_item(), instruction={"text": "Simpler words."},
                                    actor=place.actor)
    with pytest.raises(Conflict, match="Only a failed job can be retried; this one is pending"):
        await intents.create_intent(tenant, pending["id"], "OTHER", "Because.", actor=place.actor)
    assert await RetryIntent.count().where(RetryIntent.job_id == pending["id"]) == 0

    job = await failed_job(place)
    intent = await intents.create_intent(tenant, job["id"], "TRANSIENT_FAILURE", "  The model timed out.  ",
                                         actor=place.actor)
    row = await intent_row(intent["id"])
    assert (row["status"], row["reason_code"], row["reason_text"]) == ("PENDING", "TRANSIENT_FAILURE",
                                                                       "The model timed out.")
    assert (row["created_by"], row["approved_at"], row["new_job_id"]) == (place.admin.user_id, None, None)
    assert await audit_actions(intent["id"]) == ["RETRY_INTENT_CREATED"]
    with pytest.raises(NotFound):
        await intents.create_intent(place.outsider.tenant_id, job["id"], "OTHER", "Mine now.", actor=place.actor)


async def test_it_needs_a_known_reason_and_a_text(place):
    job = await failed_job(place)
    tenant = place.acme["id"]
    for code, text, field in (("OTHER", "   ", "reason_text"), ("OTHER", "", "reason_text"),
                              ("OTHER", "x" * 2001, "reason_text"), ("BECAUSE", "A reason.", "reason_code"),
                              ("", "A reason.", "reason_code")):
        with pytest.raises(InvalidInput) as refused:
            await intents.create_intent(tenant, job["id"], code, text, actor=place.actor)
        assert refused.value.field == field
    assert await RetryIntent.count().where(RetryIntent.job_id == job["id"]) == 0


async def test_it_keeps_one_open_request_per_job(place):
    job = await failed_job(place)
    tenant = place.acme["id"]
    first = await intents.create_intent(tenant, job["id"], "OTHER", "One.", actor=place.actor)
    with pytest.raises(Conflict, match=f"/admin/retry-intents/{first['id']}"):
        await intents.create_intent(tenant, job["id"], "OTHER", "Two.", actor=place.actor)
    # At once, too: the source job's row lock lets one in.
    results = await asyncio.gather(*(intents.create_intent(tenant, job["id"], "OTHER", f"Again {n}.",
                                                           actor=place.actor) for n in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(result, Conflict) for result in results)
    await intents.reject_intent(tenant, first["id"], "Not needed.", actor=place.actor)
    second = await intents.create_intent(tenant, job["id"], "OTHER", "Now it is.", actor=place.actor)
    assert (await intent_row(second["id"]))["status"] == "PENDING"
    assert await RetryIntent.count().where(RetryIntent.job_id == job["id"]) == 2


async def test_it_approves_once_and_refusing_is_final(place):
    tenant = place.acme["id"]
    job, intent = await approved_intent(place)
    assert intent["approved_by"] == place.admin.user_id and intent["approved_at"] is not None
    with pytest.raises(Conflict, match="already approved"):
        await intents.approve_intent(tenant, intent["id"], actor=place.actor)
    with pytest.raises(InvalidInput) as refused:
        await intents.reject_intent(tenant, intent["id"], "  ", actor=place.actor)
    assert refused.value.field == "note"
    assert (await intent_row(intent["id"]))["status"] == "PENDING"
    await intents.reject_intent(tenant, intent["id"], "The instruction is the problem.", actor=place.actor)
    row = await intent_row(intent["id"])
    assert (row["status"], row["rejection_note"], row["decided_by"]) == (
        "REJECTED", "The instruction is the problem.", place.admin.user_id)
    for attempt in (intents.execute_intent(tenant, intent["id"], actor=place.actor),
                    intents.reject_intent(tenant, intent["id"], "Again.", actor=place.actor)):
        with pytest.raises(Conflict, match="refused"):
            await attempt
    assert (await intent_row(intent["id"]))["status"] == "REJECTED"
    assert await RegenerationJob.count().where(RegenerationJob.retry_intent_id == intent["id"]) == 0
    assert await audit_actions(intent["id"]) == ["RETRY_INTENT_CREATED", "RETRY_INTENT_APPROVED",
                                                 "RETRY_INTENT_REJECTED"]


async def test_it_needs_an_approval_before_it_executes(place):
    job = await failed_job(place)
    intent = await intents.create_intent(place.acme["id"], job["id"], "OTHER", "Please.", actor=place.actor)
    with pytest.raises(Conflict, match="needs an admin's approval"):
        await intents.execute_intent(place.acme["id"], intent["id"], actor=place.actor)
    assert (await intent_row(intent["id"]))["status"] == "PENDING"
    assert await RegenerationJob.count().where(RegenerationJob.retry_of_job_id == job["id"]) == 0


async def test_it_executes_into_a_new_queued_job_with_its_lineage(place):
    tenant = place.acme["id"]
    job, intent = await approved_intent(place)
    done = await intents.execute_intent(tenant, intent["id"], actor=place.actor)
    assert done.created
    new = await jobs.get_job(tenant, done.job["id"])
    assert (new["retry_of_job_id"], new["retry_intent_id"]) == (job["id"], intent["id"])
    assert (new["target_id"], new["instruction"]) == (job["target_id"], job["instruction"])
    assert new["status"] in ("QUEUED", "RUNNING", "COMPLETED", "FAILED")  # triggered; a worker may have it
    row = await intent_row(intent["id"])
    assert (row["status"], row["new_job_id"], row["decided_by"]) == ("CONSUMED", new["id"], place.admin.user_id)
    assert (await jobs.get_job(tenant, job["id"]))["status"] == "FAILED"  # the failed job is left as it was
    assert await audit_actions(intent["id"]) == ["RETRY_INTENT_CREATED", "RETRY_INTENT_APPROVED",
                                                 "RETRY_INTENT_EXECUTED"]
    assert (await audit_actions(new["id"]))[:2] == ["REGEN_JOB_CREATED", "REGEN_JOB_TRIGGERED"]
    again = await intents.execute_intent(tenant, intent["id"], actor=place.actor)  # a double click
    assert (again.created, again.job["id"]) == (False, new["id"])
    with pytest.raises(Conflict, match="already retried"):
        await intents.create_intent(tenant, job["id"], "OTHER", "Once more.", actor=place.actor)


async def test_it_consumes_an_intent_once_under_20_concurrent_executes(place):
    tenant = place.acme["id"]
    job, intent = await approved_intent(place)
    results = await asyncio.gather(*(intents.execute_intent(tenant, intent["id"], actor=place.actor)
                                     for _ in range(20)), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert sum(result.created for result in results) == 1
    made = await RegenerationJob.select().where(RegenerationJob.retry_of_job_id == job["id"])
    assert len(made) == 1 and made[0]["retry_intent_id"] == intent["id"]
    assert {result.job["id"] for result in results} == {made[0]["id"]}
    assert (await intent_row(intent["id"]))["new_job_id"] == made[0]["id"]
    assert (await audit_actions(intent["id"])).count("RETRY_INTENT_EXECUTED") == 1
    assert (await audit_actions(made[0]["id"])).count("REGEN_JOB_CREATED") == 1


async def test_it_refuses_a_retry_over_the_budget_and_keeps_the_intent(place):
    tenant = place.acme["id"]
    job, intent = await approved_intent(place)
    await AIUsage.insert(AIUsage(tenant_id=tenant, operation="lesson", provider="mock", model="mock-1",
                                 prompt_name="lesson", prompt_version="v", cost_usd=Decimal("1.25"), success=True))
    await jobs.set_budget(tenant, "1", actor=place.actor)
    try:
        with pytest.raises(jobs.BudgetExceeded, match="monthly LLM budget"):
            await intents.execute_intent(tenant, intent["id"], actor=place.actor)
    finally:
        await jobs.set_budget(tenant, "", actor=place.actor)
    assert (await intent_row(intent["id"]))["status"] == "PENDING"
    assert await RegenerationJob.count().where(RegenerationJob.retry_of_job_id == job["id"]) == 0
    estimate = await intents.estimate_retry(tenant, await intents.get_intent(tenant, intent["id"]))
    assert estimate.estimated_usd == job["estimated_cost_usd"] and estimate.budget_usd is None


@pytest.mark.parametrize("statement, refusal", [
    ("UPDATE retry_intent SET status = 'PENDING', new_job_id = NULL WHERE id = $1", "is final"),
    ("UPDATE retry_intent SET reason_text = 'rewritten' WHERE id = $1", "only its decision changes"),
    ("UPDATE retry_intent SET approved_by = NULL, approved_at = now() WHERE id = $1", "is final"),
    ("DELETE FROM retry_intent WHERE id = $1", "intents are kept"),
])
async def test_it_refuses_changes_to_a_consumed_intent_in_sql(place, statement, refusal):
    _job, intent = await approved_intent(place)
    await intents.execute_intent(place.acme["id"], intent["id"], actor=place.actor)
    before = await intent_row(intent["id"])
    with pytest.raises(asyncpg.RaiseError, match=refusal):
        await raw(statement, intent["id"])
    assert await intent_row(intent["id"]) == before


async def test_it_refuses_illegal_moves_of_an_open_intent_in_sql(place):
    job, intent = await approved_intent(place)
    for statement, refusal in (
        ("UPDATE retry_intent SET approved_at = now() WHERE id = $1", "approval is given once"),
        ("UPDATE retry_intent SET status = 'DONE' WHERE id = $1", "retry_intent"),
        ("UPDATE retry_intent SET status = 'CONSUMED' WHERE id = $1", "retry_intent_consumed_sane"),
        ("UPDATE retry_intent SET job_id = gen_random_uuid() WHERE id = $1", "only its decision changes"),
    ):
        with pytest.raises((asyncpg.RaiseError, asyncpg.CheckViolationError), match=refusal):
            await raw(statement, intent["id"])
    await raw("UPDATE retry_intent SET status = 'REJECTED' WHERE id = $1", intent["id"])
    with pytest.raises(asyncpg.RaiseError, match="is final"):
        await raw("UPDATE retry_intent SET status = 'CONSUMED', new_job_id = $2 WHERE id = $1", intent["id"],
                  job["id"])
    # Two jobs can never carry one intent (regeneration_job.retry_intent_id is unique).
    assert (await intent_row(intent["id"]))["status"] == "REJECTED"


# ---------------------------------------------------------------------------------------------
# Pages and APIs over HTTP


@pytest.fixture(scope="module")
async def admin_client(live_server: LiveServer, place: Place):
    client = Client(live_server.url)
    await client.login(place.admin.email)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
async def outsider_client(live_server: LiveServer, place: Place):
    client = Client(live_server.url)
    await client.login(place.outsider.email)
    yield client
    await client.aclose()


async def test_it_walks_a_retry_through_the_pages(place, admin_client):
    job = await failed_job(place)
    section = await admin_client.get(f"/admin/regeneration-jobs/{job['id']}/retry-intents")
    assert section.status_code == 200 and 'name="reason_code"' in section.text
    bad = await admin_client.post(f"/admin/regeneration-jobs/{job['id']}/retry-intents",
                                  {"reason_code": "IMPROVED_PROMPT", "reason_text": "   "})
    assert bad.status_code == 400
    assert 'aria-invalid="true"' in bad.text and "Reason text is required" in bad.text
    assert re.search(r'<option value="IMPROVED_PROMPT"\s+selected', bad.text)  # the input is kept
    assert await RetryIntent.count().where(RetryIntent.job_id == job["id"]) == 0

    made = await admin_client.post(f"/admin/regeneration-jobs/{job['id']}/retry-intents",
                                   {"reason_code": "IMPROVED_PROMPT", "reason_text": "Prompt v2 fixes this."})
    assert made.status_code == 303
    intent_id = uuid.UUID(re.fullmatch(r"/admin/retry-intents/([0-9a-f-]{36})", made.headers["location"]).group(1))
    assert (await intent_row(intent_id))["reason_text"] == "Prompt v2 fixes this."
    page = await admin_client.get(f"/admin/retry-intents/{intent_id}")
    assert page.status_code == 200 and "Waiting for a decision" in page.text and "Approve" in page.text

    no_note = await admin_client.post(f"/admin/retry-intents/{intent_id}/reject", {"note": ""})
    assert no_note.status_code == 400 and "A note is required" in no_note.text
    assert (await intent_row(intent_id))["status"] == "PENDING"

    assert (await admin_client.post(f"/admin/retry-intents/{intent_id}/approve")).status_code == 303
    assert (await intent_row(intent_id))["approved_by"] == place.admin.user_id
    confirm = await admin_client.get(f"/admin/retry-intents/{intent_id}/execute")
    assert confirm.status_code == 200 and "Estimated cost" in confirm.text and "Yes, carry it out" in confirm.text

    executed = await admin_client.post(f"/admin/retry-intents/{intent_id}/execute")
    row = await intent_row(intent_id)
    assert row["status"] == "CONSUMED"
    assert executed.status_code == 303
    assert executed.headers["location"] == f"/admin/regeneration-jobs/{row['new_job_id']}"
    twice = await admin_client.post(f"/admin/retry-intents/{intent_id}/execute")
    assert twice.headers["location"] == executed.headers["location"]
    assert await RegenerationJob.count().where(RegenerationJob.retry_intent_id == intent_id) == 1

    listing = await admin_client.get("/admin/retry-intents", params={"status": "CONSUMED", "job": str(job["id"])})
    assert listing.status_code == 200 and f'id="intent-{intent_id}"' in listing.text and "Carried out" in listing.text
    bad_filter = await admin_client.get("/admin/retry-intents", params={"job": "nope"})
    assert bad_filter.status_code == 400 and "job filter" in bad_filter.text


async def test_it_serves_the_json_apis(place, admin_client):
    job = await failed_job(place)
    headers = {"x-csrftoken": admin_client.csrf}
    api = admin_client.http
    bad = await api.post("/api/admin/retry-intents", json={"job_id": str(job["id"]), "reason_code": "OTHER",
                                                           "reason_text": ""}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"].startswith("reason_text:")
    bad = await api.post("/api/admin/retry-intents", json={"job_id": "x", "reason_code": "OTHER",
                                                           "reason_text": "t"}, headers=headers)
    assert bad.status_code == 400 and "job_id" in bad.json()["error"]
    made = await api.post("/api/admin/retry-intents", json={"job_id": str(job["id"]), "reason_code": "OTHER",
                                                            "reason_text": "Try again."}, headers=headers)
    assert made.status_code == 201, made.text
    intent_id = made.json()["id"]
    listed = await api.get("/api/admin/retry-intents", params={"job_id": str(job["id"])})
    assert [row["id"] for row in listed.json()["intents"]] == [intent_id]
    assert (await api.post(f"/api/admin/retry-intents/{intent_id}/execute", headers=headers)).status_code == 409
    assert (await api.post(f"/api/admin/retry-intents/{intent_id}/approve", headers=headers)).status_code == 200
    first = await api.post(f"/api/admin/retry-intents/{intent_id}/execute", headers=headers)
    second = await api.post(f"/api/admin/retry-intents/{intent_id}/execute", headers=headers)
    assert (first.status_code, first.json()["created"], second.json()["created"]) == (200, True, False)
    assert first.json()["job"]["id"] == second.json()["job"]["id"] == str((await intent_row(intent_id))["new_job_id"])
    refused = await api.post(f"/api/admin/retry-intents/{intent_id}/reject", json={"note": "late"}, headers=headers)
    assert refused.status_code == 409
    assert (await api.get(f"/api/admin/retry-intents/{intent_id}/execute")).status_code == 405


async def test_it_answers_404_to_another_workspace_on_every_route(place, outsider_client):
    job, intent = await approved_intent(place)
    api, headers = outsider_client.http, {"x-csrftoken": outsider_client.csrf}
    for path in (f"/admin/regeneration-jobs/{job['id']}/retry-intents", f"/admin/retry-intents/{intent['id']}",
                 f"/admin/retry-intents/{intent['id']}/execute", f"/api/admin/retry-intents/{intent['id']}"):
        assert (await outsider_client.get(path)).status_code == 404, path
    for path, form in ((f"/admin/regeneration-jobs/{job['id']}/retry-intents",
                        {"reason_code": "OTHER", "reason_text": "mine"}),
                       (f"/admin/retry-intents/{intent['id']}/approve", {}),
                       (f"/admin/retry-intents/{intent['id']}/reject", {"note": "no"}),
                       (f"/admin/retry-intents/{intent['id']}/execute", {})):
        assert (await outsider_client.post(path, form)).status_code == 404, path
    for path, body in ((f"/api/admin/retry-intents/{intent['id']}/approve", None),
                       (f"/api/admin/retry-intents/{intent['id']}/reject", {"note": "no"}),
                       (f"/api/admin/retry-intents/{intent['id']}/execute", None),
                       ("/api/admin/retry-intents", {"job_id": str(job["id"]), "reason_code": "OTHER",
                                                     "reason_text": "mine"})):
        assert (await api.post(path, json=body, headers=headers)).status_code == 404, path
    listed = await api.get("/api/admin/retry-intents", params={"job_id": str(job["id"])})
    assert listed.status_code == 200 and listed.json()["intents"] == []
    assert (await intent_row(intent["id"]))["status"] == "PENDING"
    assert await RetryIntent.count().where(RetryIntent.job_id == job["id"]) == 1
