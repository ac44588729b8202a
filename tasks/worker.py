"""SAQ worker settings: the task functions, cron jobs and hooks that log and count every job.

Run standalone with `coursewright worker`; in development the web process runs the same worker
in-process (WORKER_IN_PROCESS, on by default outside production).
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from saq import CronJob, Queue, Worker

from app.metrics import JOB_DURATION, JOB_PICKUP_DELAY, JOBS
from tasks.housekeeping import purge_expired_sessions
from tasks.jobs import fail_lost_jobs, recompute_tenant_stats

log = structlog.get_logger("coursewright.worker")

FUNCTIONS = [recompute_tenant_stats, purge_expired_sessions, fail_lost_jobs]
CRON_JOBS = [
    CronJob(purge_expired_sessions, cron="17 * * * *", timeout=purge_expired_sessions.saq_timeout, retries=1),
    CronJob(fail_lost_jobs, cron="*/5 * * * *", timeout=fail_lost_jobs.saq_timeout, retries=1),
]


async def before_process(ctx: dict[str, Any]) -> None:
    job = ctx["job"]
    ctx["started_monotonic"] = time.monotonic()
    delay = max(0.0, (job.started - job.queued) / 1000) if job.queued else 0.0
    JOB_PICKUP_DELAY.labels(task=job.function).observe(delay)
    log.info("job_started", task=job.function, saq_job=job.key, kwargs=job.kwargs, pickup_delay_ms=int(delay * 1000))


async def after_process(ctx: dict[str, Any]) -> None:
    job = ctx["job"]
    duration = time.monotonic() - ctx.get("started_monotonic", time.monotonic())
    failed = ctx.get("exception") is not None
    outcome = "failed" if failed else "succeeded"
    JOBS.labels(task=job.function, outcome=outcome).inc()
    JOB_DURATION.labels(task=job.function).observe(duration)
    if failed:
        log.error("alert:job_failed", task=job.function, saq_job=job.key, error=repr(ctx["exception"]),
                  duration_ms=int(duration * 1000))
    else:
        log.info("job_finished", task=job.function, saq_job=job.key, duration_ms=int(duration * 1000))


class InProcessWorker(Worker):
    # Inside the web process the server owns SIGINT/SIGTERM; the app's lifespan stops this worker.
    SIGNALS: list = []


def build_worker(queue: Queue, *, concurrency: int, in_process: bool) -> Worker:
    cls = InProcessWorker if in_process else Worker
    return cls(
        queue,
        functions=FUNCTIONS,
        cron_jobs=CRON_JOBS,
        concurrency=concurrency,
        before_process=[before_process],
        after_process=[after_process],
        # A standalone worker lets running jobs finish on SIGTERM; in-process, stopping the dev server
        # should be immediate. A job cut off either way is marked FAILED by fail_lost_jobs.
        shutdown_grace_period_s=None if in_process else 20,
    )
