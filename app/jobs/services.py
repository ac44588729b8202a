"""Background jobs whose state lives in `background_job`; SAQ only carries the job id.

SAQ delivers at least once (its sweeper can even re-queue a job that completed), so every task
starts with `claim_job`: a compare-and-set QUEUED -> RUNNING. Only the run that wins the claim does
the work; any other delivery finds the row already claimed and does nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
import structlog

from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.db import engine, independent_connection
from app.errors import InvalidInput, NotFound, Unavailable
from app.jobs.tables import BackgroundJob, JobStatus, TenantStats
from app.queue import enqueue
from app.settings import get_settings

log = structlog.get_logger(__name__)
TENANT_STATS = "tenant_stats"


async def create_job(tenant_id: uuid.UUID, kind: str, *, actor: Actor) -> dict[str, Any]:
    return (
        await BackgroundJob.insert(BackgroundJob(tenant_id=tenant_id, kind=kind, requested_by=actor.user_id)).returning(
            *BackgroundJob.all_columns()
        )
    )[0]


async def claim_job(job_id: uuid.UUID) -> dict[str, Any] | None:
    rows = await BackgroundJob.update(
        {BackgroundJob.status: JobStatus.RUNNING.value, BackgroundJob.started_at: dt.datetime.now(dt.UTC)}
    ).where((BackgroundJob.id == job_id) & (BackgroundJob.status == JobStatus.QUEUED.value)).returning(
        *BackgroundJob.all_columns()
    )
    return rows[0] if rows else None


async def finish_job(job_id: uuid.UUID, *, result: dict[str, Any] | None = None, error: str | None = None) -> bool:
    status = JobStatus.FAILED if error is not None else JobStatus.SUCCEEDED
    rows = await BackgroundJob.update(
        {
            BackgroundJob.status: status.value,
            BackgroundJob.result: result,
            BackgroundJob.error: error,
            BackgroundJob.finished_at: dt.datetime.now(dt.UTC),
        }
    ).where((BackgroundJob.id == job_id) & (BackgroundJob.status == JobStatus.RUNNING.value)).returning(
        BackgroundJob.id
    )
    return len(rows) == 1


async def fail_unstarted_job(job_id: uuid.UUID, error: str) -> None:
    await BackgroundJob.update(
        {BackgroundJob.status: JobStatus.FAILED.value, BackgroundJob.error: error,
         BackgroundJob.finished_at: dt.datetime.now(dt.UTC)}
    ).where((BackgroundJob.id == job_id) & (BackgroundJob.status == JobStatus.QUEUED.value))


# Longer than any task's timeout: a job still RUNNING after this lost its worker (crash, deploy, kill).
LOST_AFTER = dt.timedelta(minutes=15)


async def fail_lost_jobs() -> int:
    """Sweeper: a job whose worker died mid-run would otherwise stay RUNNING forever."""
    rows = await BackgroundJob.update(
        {BackgroundJob.status: JobStatus.FAILED.value, BackgroundJob.error: "worker lost: no result within 15 minutes",
         BackgroundJob.finished_at: dt.datetime.now(dt.UTC)}
    ).where(
        (BackgroundJob.status == JobStatus.RUNNING.value)
        & (BackgroundJob.started_at < dt.datetime.now(dt.UTC) - LOST_AFTER)
    ).returning(BackgroundJob.id, BackgroundJob.kind)
    for row in rows:
        log.error("alert:job_failed", job_id=str(row["id"]), kind=row["kind"], error="worker lost")
    return len(rows)


async def get_job(tenant_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    row = await BackgroundJob.select().where(
        (BackgroundJob.id == job_id) & (BackgroundJob.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound("No such job in this workspace.")
    return row


# ---------------------------------------------------------------------------------------------
# "Recompute workspace stats": the small end-to-end example of the pattern above.


async def request_tenant_stats(tenant_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    from tasks.jobs import recompute_tenant_stats  # tasks import this module, so import at call time

    job = await create_job(tenant_id, TENANT_STATS, actor=actor)
    try:
        await enqueue(recompute_tenant_stats, job_id=str(job["id"]))
    except Exception as exc:  # the broker is away: the job is failed here, and the admin told so (not a 500)
        await fail_unstarted_job(job["id"], f"Could not enqueue: {exc}")
        log.error("alert:enqueue_failed", task="recompute_tenant_stats", job_id=str(job["id"]), error=repr(exc))
        raise Unavailable("The job queue cannot be reached right now, so nothing was started. "
                          "Try again in a minute.") from exc
    await audit(AuditAction.JOB_REQUESTED, actor=actor, tenant_id=tenant_id, entity_type="background_job",
                entity_id=job["id"], metadata={"kind": TENANT_STATS})
    return job


STATS_SQL = """
SELECT count(*) AS members,
       count(*) FILTER (WHERE role IN ('admin', 'owner')) AS admins,
       count(*) FILTER (WHERE role = 'learner') AS learners,
       (SELECT count(*) FROM audit_log WHERE tenant_id = {}) AS audit_events
FROM membership WHERE tenant_id = {}
"""


async def run_tenant_stats(job_id: uuid.UUID) -> dict[str, Any]:
    job = await claim_job(job_id)
    if job is None:
        log.info("job_skipped_already_claimed", job_id=str(job_id))
        return {"job_id": str(job_id), "skipped": True}
    try:
        async with engine().transaction():
            stats = (await TenantStats.raw(STATS_SQL, job["tenant_id"], job["tenant_id"]))[0]
            await TenantStats.insert(TenantStats(tenant_id=job["tenant_id"], job_id=job_id, **stats))
            if not await finish_job(job_id, result=stats):
                raise RuntimeError("job left RUNNING while it was being processed")
    except Exception as exc:
        await finish_job(job_id, error=f"{type(exc).__name__}: {exc}")
        raise  # the worker's after_process hook logs alert:job_failed and counts it
    return {"job_id": str(job_id), "skipped": False, **stats}


async def latest_tenant_stats(tenant_id: uuid.UUID) -> dict[str, Any] | None:
    return (
        await TenantStats.select()
        .where(TenantStats.tenant_id == tenant_id)
        .order_by(TenantStats.id, ascending=False)
        .first()
    )


# ---------------------------------------------------------------------------------------------
# Every kind of background work, for people: generation runs (app/authoring) and the jobs above, in one list.

# A filter value and its words. Generation runs keep their RunKind; background jobs their `kind`.
KIND_WORDS = {
    "SYLLABUS": "Syllabus draft",
    "CONTENT": "Course content",
    "ITEM": "Item regeneration",
    "RETRY": "Retry of failed items",
    TENANT_STATS: "Workspace stats",
}
STATUS_WORDS = {
    "QUEUED": "Waiting",
    "RUNNING": "Running",
    "SUCCEEDED": "Done",
    "PARTIAL": "Partly failed",
    "FAILED": "Failed",
}
JOBS_PER_PAGE = 25


class JobFilter(msgspec.Struct, frozen=True, kw_only=True):
    kind: str = ""
    status: str = ""

    @classmethod
    def parse(cls, kind: str, status: str) -> JobFilter:
        if kind and kind not in KIND_WORDS:
            raise InvalidInput(f"There is no kind of job called {kind!r}; choose one from the list.")
        if status and status not in STATUS_WORDS:
            raise InvalidInput(f"There is no job status called {status!r}; choose one from the list.")
        return cls(kind=kind, status=status)


class JobsPage(msgspec.Struct, frozen=True):
    rows: list[dict[str, Any]]
    page: int
    has_next: bool


# "Stuck": still running, and past the point where the sweeper treats its worker as lost (a syllabus run's
# heartbeat older than its lease; a background job running for longer than LOST_AFTER). The sweeper moves
# such work on by itself; the list says so instead of leaving a spinner that never ends.
JOBS_SQL = """
SELECT * FROM (
    SELECT 'run' AS source, r.id, r.kind, r.status, r.created_at, r.started_at, r.finished_at, r.error,
           r.total, r.done, r.failed, r.blocked, r.instruction, r.source_id, r.syllabus_id, r.course_id,
           c.title AS subject, u.email AS requested_by,
           coalesce(r.status = 'RUNNING' AND r.heartbeat_at < now() - $4 * interval '1 second', false) AS stuck
    FROM generation_run r JOIN course c ON c.id = r.course_id LEFT JOIN app_user u ON u.id = r.created_by
    WHERE r.tenant_id = $1
    UNION ALL
    SELECT 'job', j.id, j.kind, j.status, j.created_at, j.started_at, j.finished_at, j.error,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, u.email,
           coalesce(j.status = 'RUNNING' AND j.started_at < now() - $5 * interval '1 second', false)
    FROM background_job j LEFT JOIN app_user u ON u.id = j.requested_by
    WHERE j.tenant_id = $1
) work
WHERE ($2 = '' OR kind = $2) AND ($3 = '' OR status = $3)
ORDER BY created_at DESC, id DESC
LIMIT $6 OFFSET $7
"""


async def list_jobs(tenant_id: uuid.UUID, filters: JobFilter, page: int = 1,
                    per_page: int = JOBS_PER_PAGE) -> JobsPage:
    """Generation runs and background jobs of one tenant, newest first. One extra row tells whether there is
    a next page, without counting the whole history."""
    lease = get_settings().generation_lease_seconds
    async with independent_connection() as conn:
        rows = await conn.fetch(JOBS_SQL, tenant_id, filters.kind, filters.status, float(lease),
                                LOST_AFTER.total_seconds(), per_page + 1, (page - 1) * per_page)
    return JobsPage([dict(row) for row in rows[:per_page]], page, len(rows) > per_page)
