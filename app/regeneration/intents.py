"""Retry intents (SPEC R5): a person's reasoned request to run a FAILED regeneration job again.

A failed job is never re-run or re-queued. An admin asks for a retry (reason code and text), an admin
approves it, and executing it creates a NEW job with `retry_of_job_id` and `retry_intent_id` (lineage) and
triggers it, in the same transaction that consumes the intent. Rejecting is final.

The only writer of retry_intent. Every transition is one compare-and-set on status PENDING; the trigger
retry_intent_guard is the backstop. An intent is consumed at most once: executes of one intent queue on its
row lock, the first creates the job, the others find it CONSUMED and answer with that same job; and
regeneration_job.retry_intent_id is unique besides.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import structlog

from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.db import engine
from app.errors import Conflict, InvalidInput, NotFound
from app.regeneration.tables import IntentStatus, JobStatus, RegenerationJob, RetryIntent, RetryReason

log = structlog.get_logger(__name__)

REASON_TEXT_MAX = 2000
NOTE_MAX = 2000
PER_PAGE = 25

REASON_WORDS = {
    RetryReason.TRANSIENT_FAILURE: "A passing failure (try again as it is)",
    RetryReason.BAD_INPUT: "The input was wrong (fixed since)",
    RetryReason.IMPROVED_PROMPT: "The prompt has been improved",
    RetryReason.INFRA_ERROR: "Our infrastructure failed (worker or database)",
    RetryReason.OTHER: "Another reason (explained below)",
}
STATUS_WORDS = {
    IntentStatus.PENDING: "Waiting for a decision",
    IntentStatus.CONSUMED: "Carried out",
    IntentStatus.REJECTED: "Refused",
}


class IntentCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST /api/admin/retry-intents."""

    job_id: uuid.UUID
    reason_code: str
    reason_text: str


class IntentReject(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST /api/admin/retry-intents/{id}/reject."""

    note: str


class FieldError(InvalidInput):
    """InvalidInput about one field: forms show it beside the field, APIs name it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Executed:
    intent: dict[str, Any]
    job: dict[str, Any]  # the new job (the winner's, when another execute got there first)
    created: bool  # False: this call found the intent already consumed


@dataclass(frozen=True)
class IntentPage:
    rows: list[dict[str, Any]]
    page: int
    has_next: bool


# ---------------------------------------------------------------------------------------------
# Reading (tenant-scoped: another workspace's intent is "not found")

SELECT_SQL = """
SELECT i.*, j.target_type, j.target_id, j.course_id, j.status AS job_status, j.error AS job_error,
       c.email AS created_by_email, a.email AS approved_by_email, d.email AS decided_by_email
FROM retry_intent i
JOIN regeneration_job j ON j.id = i.job_id AND j.tenant_id = i.tenant_id
LEFT JOIN app_user c ON c.id = i.created_by
LEFT JOIN app_user a ON a.id = i.approved_by
LEFT JOIN app_user d ON d.id = i.decided_by
"""


async def get_intent(tenant_id: uuid.UUID, intent_id: uuid.UUID) -> dict[str, Any]:
    rows = await RetryIntent.raw(SELECT_SQL + "WHERE i.id = {} AND i.tenant_id = {}", intent_id, tenant_id)
    if not rows:
        raise NotFound("No such retry request in this workspace.")
    return rows[0]


async def list_intents(tenant_id: uuid.UUID, job_id: uuid.UUID | None = None, status: str | None = None,
                       page: int = 1, per_page: int = PER_PAGE) -> IntentPage:
    if status is not None and status not in IntentStatus.__members__:
        raise FieldError("status", f"Status must be one of {', '.join(IntentStatus)}.")
    where, args = ["i.tenant_id = {}"], [tenant_id]
    if job_id is not None:
        where.append("i.job_id = {}")
        args.append(job_id)
    if status is not None:
        where.append("i.status = {}")
        args.append(status)
    page = max(page, 1)
    # One extra row says whether there is a next page, without counting them all.
    rows = await RetryIntent.raw(
        SELECT_SQL + "WHERE " + " AND ".join(where) + f" ORDER BY i.created_at DESC, i.id "
        f"LIMIT {per_page + 1} OFFSET {(page - 1) * per_page}", *args)
    return IntentPage(rows=rows[:per_page], page=page, has_next=len(rows) > per_page)


async def intents_of_job(tenant_id: uuid.UUID, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every intent of one job, newest first (the retry section of a failed job's page)."""
    return (await list_intents(tenant_id, job_id=job_id, per_page=100)).rows


async def retry_section(tenant_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    """What the retry section of a job's page shows: the job, its requests, and whether a new one can be made."""
    job = await _job(tenant_id, job_id)
    rows = await intents_of_job(tenant_id, job_id)
    blocking = next((row for row in rows if row["status"] != IntentStatus.REJECTED), None)
    return {"job": job, "retry_intents": rows, "can_request": job["status"] == JobStatus.FAILED and blocking is None}


async def _job(tenant_id: uuid.UUID, job_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any]:
    # FOR NO KEY UPDATE on the source job: two people asking for a retry of one job at once queue here, so
    # "one open request per job" holds without a second unique index. A FAILED job's row is final: nothing
    # else ever waits on this lock.
    rows = await RegenerationJob.raw(
        "SELECT * FROM regeneration_job WHERE id = {} AND tenant_id = {}" + (" FOR NO KEY UPDATE" if lock else ""),
        job_id, tenant_id)
    if not rows:
        raise NotFound("No such regeneration job in this workspace.")
    return rows[0]


# ---------------------------------------------------------------------------------------------
# Transitions


def _reason_code(raw: str) -> RetryReason:
    if raw not in RetryReason.__members__:
        raise FieldError("reason_code", "Reason: pick one of the reasons in the list "
                                        f"({', '.join(RetryReason)}).")
    return RetryReason(raw)


def _text(raw: str | None, field: str, label: str, limit: int) -> str:
    text = (raw or "").strip()
    if not text:
        raise FieldError(field, f"{label} is required: say why, for whoever reads this later.")
    if len(text) > limit:
        raise FieldError(field, f"{label} can have at most {limit} characters (it has {len(text)}).")
    if "\x00" in text:
        raise FieldError(field, f"{label} must not contain control characters (such as a NUL byte).")
    return text


async def create_intent(tenant_id: uuid.UUID, job_id: uuid.UUID, reason_code: str, reason_text: str, *,
                        actor: Actor) -> dict[str, Any]:
    """A request to retry a FAILED job. At most one open request per job, and none once a retry was made."""
    code, text = _reason_code(reason_code), _text(reason_text, "reason_text", "Reason text", REASON_TEXT_MAX)
    async with engine().transaction():
        job = await _job(tenant_id, job_id, lock=True)
        if job["status"] != JobStatus.FAILED:
            raise Conflict(f"Only a failed job can be retried; this one is {job['status'].lower()}.")
        open_or_done = await RetryIntent.raw(
            "SELECT id, status, new_job_id FROM retry_intent WHERE job_id = {} AND tenant_id = {} "
            "AND status IN ('PENDING', 'CONSUMED') ORDER BY status DESC LIMIT 1", job_id, tenant_id)
        if open_or_done and open_or_done[0]["status"] == IntentStatus.PENDING:
            raise Conflict("This job already has an open retry request: "
                           f"/admin/retry-intents/{open_or_done[0]['id']} (approve or refuse that one).")
        if open_or_done:
            raise Conflict("This job was already retried as /admin/regeneration-jobs/"
                           f"{open_or_done[0]['new_job_id']}; if that one failed, ask for a retry of it.")
        intent = (await RetryIntent.insert(RetryIntent(
            tenant_id=tenant_id, job_id=job_id, reason_code=code.value, reason_text=text, created_by=actor.user_id,
        )).returning(*RetryIntent.all_columns()))[0]
    await audit(AuditAction.RETRY_INTENT_CREATED, actor=actor, tenant_id=tenant_id, entity_type="retry_intent",
                entity_id=intent["id"], metadata={"job_id": str(job_id), "reason_code": code.value})
    return intent


async def approve_intent(tenant_id: uuid.UUID, intent_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    """An admin's go-ahead; given once, on an open request."""
    intent = await get_intent(tenant_id, intent_id)
    rows = await RetryIntent.raw(
        "UPDATE retry_intent SET approved_by = {}, approved_at = now() WHERE id = {} AND tenant_id = {} "
        "AND status = 'PENDING' AND approved_at IS NULL RETURNING id", actor.user_id, intent_id, tenant_id)
    if not rows:
        raise Conflict(_why_not_open(await get_intent(tenant_id, intent_id), "approved"))
    await audit(AuditAction.RETRY_INTENT_APPROVED, actor=actor, tenant_id=tenant_id, entity_type="retry_intent",
                entity_id=intent_id, metadata={"job_id": str(intent["job_id"])})
    return await get_intent(tenant_id, intent_id)


async def reject_intent(tenant_id: uuid.UUID, intent_id: uuid.UUID, note: str, *, actor: Actor) -> dict[str, Any]:
    """Refuse an open request, with a note saying why. Final: a new request is a new intent."""
    text = _text(note, "note", "A note", NOTE_MAX)
    intent = await get_intent(tenant_id, intent_id)
    rows = await RetryIntent.raw(
        "UPDATE retry_intent SET status = 'REJECTED', decided_by = {}, decided_at = now(), rejection_note = {} "
        "WHERE id = {} AND tenant_id = {} AND status = 'PENDING' RETURNING id",
        actor.user_id, text, intent_id, tenant_id)
    if not rows:
        raise Conflict(_why_not_open(await get_intent(tenant_id, intent_id), "refused"))
    await audit(AuditAction.RETRY_INTENT_REJECTED, actor=actor, tenant_id=tenant_id, entity_type="retry_intent",
                entity_id=intent_id, metadata={"job_id": str(intent["job_id"])})
    return await get_intent(tenant_id, intent_id)


def _why_not_open(intent: dict[str, Any], verb: str) -> str:
    if intent["status"] == IntentStatus.CONSUMED:
        return f"This retry request was already carried out (job {intent['new_job_id']}); it cannot be {verb}."
    if intent["status"] == IntentStatus.REJECTED:
        return f"This retry request was refused; it cannot be {verb}. Ask for a new retry if needed."
    return f"This retry request was already {verb}."


async def execute_intent(tenant_id: uuid.UUID, intent_id: uuid.UUID, *, actor: Actor) -> Executed:
    """Consume an approved intent: a new job (same target and instruction as the failed one, with its
    lineage) is created and triggered in the same transaction; the worker is woken after commit. A second
    execute (a double click, a concurrent one) answers with the job the first made and creates nothing."""
    from app.regeneration import services as jobs  # the job service; imported late (it imports the worker side)

    intent = await get_intent(tenant_id, intent_id)
    if intent["status"] == IntentStatus.CONSUMED:
        return Executed(intent, await jobs.get_job(tenant_id, intent["new_job_id"]), created=False)
    _executable(intent)
    try:
        async with engine().transaction():
            locked = await RetryIntent.raw(
                "SELECT status, approved_at, new_job_id FROM retry_intent WHERE id = {} AND tenant_id = {} "
                "FOR UPDATE", intent_id, tenant_id)
            if locked[0]["status"] != IntentStatus.PENDING:
                made = None  # another execute (or a refusal) got there while we waited for the lock
            else:
                made = await _create_retry_job(jobs, tenant_id, intent, actor=actor)
    except asyncpg.UniqueViolationError:
        made = None  # the unique retry_intent_id: another execute made the job (backstop of the row lock)
    if made is None:
        intent = await get_intent(tenant_id, intent_id)
        if intent["status"] != IntentStatus.CONSUMED:
            _executable(intent)
            raise Conflict("This retry request changed while it was being carried out; reload and try again.")
        return Executed(intent, await jobs.get_job(tenant_id, intent["new_job_id"]), created=False)
    job, after_commit = made
    await after_commit()
    await audit(AuditAction.RETRY_INTENT_EXECUTED, actor=actor, tenant_id=tenant_id, entity_type="retry_intent",
                entity_id=intent_id, metadata={"job_id": str(intent["job_id"]), "new_job_id": str(job["id"])})
    return Executed(await get_intent(tenant_id, intent_id), job, created=True)


def _executable(intent: dict[str, Any]) -> None:
    if intent["status"] == IntentStatus.REJECTED:
        raise Conflict("This retry request was refused; it cannot be carried out. Ask for a new retry if needed.")
    if intent["approved_at"] is None:
        raise Conflict("This retry request needs an admin's approval before it can be carried out.")


async def _create_retry_job(jobs: Any, tenant_id: uuid.UUID, intent: dict[str, Any], *,
                            actor: Actor) -> tuple[dict[str, Any], Any]:
    """Inside the caller's transaction: the new job, triggered (cost guard included), and the intent
    consumed. Returns the job and what to do once the transaction has committed (audit rows, the wake-up)."""
    source = await _job(tenant_id, intent["job_id"])
    later = jobs.AfterCommit()
    job = await jobs.create_job(
        tenant_id, target_id=source["target_id"], instruction=jobs.instruction_of(source), actor=actor,
        suggestion_id=source["suggestion_id"], retry_of_job_id=source["id"], retry_intent_id=intent["id"],
        after_commit=later)
    job = await jobs.queue_job(tenant_id, job["id"], actor=actor, after_commit=later)
    rows = await RetryIntent.raw(
        "UPDATE retry_intent SET status = 'CONSUMED', new_job_id = {}, decided_by = {}, decided_at = now() "
        "WHERE id = {} AND tenant_id = {} AND status = 'PENDING' AND approved_at IS NOT NULL RETURNING id",
        job["id"], actor.user_id, intent["id"], tenant_id)
    if not rows:  # cannot happen under the row lock; never leave a job without its consumed intent
        raise Conflict("This retry request changed while it was being carried out; reload and try again.")
    return job, later.run


async def estimate_retry(tenant_id: uuid.UUID, intent: dict[str, Any]) -> Any:
    """What the retry would cost (the failed job's estimate: same target, same instruction) beside this
    month's spend and the budget; shown before execute."""
    from app.regeneration import services as jobs

    return await jobs.job_estimate(await jobs.get_job(tenant_id, intent["job_id"]))
