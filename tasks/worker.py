"""SAQ worker settings: the task functions, cron jobs and hooks that log and count every job.

Run standalone with `coursewright worker`; in development the web process runs the same worker
in-process (WORKER_IN_PROCESS, on by default outside production).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog
from saq import CronJob, Worker

from app.authoring.generation import sweep_generation
from app.db import DB_UNAVAILABLE
from app.exports.services import sweep_exports
from app.jobs.lease import drain
from app.metrics import JOB_DURATION, JOB_PICKUP_DELAY, JOBS
from app.queue import GENERATION_QUEUE, QUEUE_NAME, get_queue
from app.regeneration.worker import sweep_regeneration
from app.settings import Settings
from tasks.analytics import analytics_nightly
from tasks.authoring import generate_item, generate_syllabus
from tasks.exports import build_export
from tasks.housekeeping import purge_expired_sessions
from tasks.jobs import fail_lost_jobs, recompute_tenant_stats
from tasks.quality import coverage_audit_cron, traffic_report_cron
from tasks.regeneration import regenerate_content

log = structlog.get_logger("coursewright.worker")

FUNCTIONS = {
    QUEUE_NAME: [recompute_tenant_stats, purge_expired_sessions, fail_lost_jobs, build_export, analytics_nightly,
                 traffic_report_cron, coverage_audit_cron],
    GENERATION_QUEUE: [generate_syllabus, generate_item, regenerate_content],
}


CRON_JOBS = [
    CronJob(purge_expired_sessions, cron="17 * * * *", timeout=purge_expired_sessions.saq_timeout, retries=1),
    CronJob(fail_lost_jobs, cron="*/5 * * * *", timeout=fail_lost_jobs.saq_timeout, retries=1),
    # Nightly, after midnight UTC has closed yesterday. unique: one queued run at a time (the job's own lock
    # also keeps a CLI backfill and a second worker out).
    CronJob(analytics_nightly, cron="20 0 * * *", timeout=analytics_nightly.saq_timeout, retries=1, unique=True),
    # The traffic report of every workspace (SPEC O2), Mondays and Thursdays 09:30 UTC as in the seeds.
    CronJob(traffic_report_cron, cron="30 9 * * 1,4", timeout=traffic_report_cron.saq_timeout, retries=1,
            unique=True),
    # The coverage audit of every workspace (SPEC O1), Mondays 09:30 UTC: the weekly loop's stored report.
    CronJob(coverage_audit_cron, cron="30 9 * * 1", timeout=coverage_audit_cron.saq_timeout, retries=1,
            unique=True),
]
# SAQ waits this long for a job before looking again. Without a limit, a stop can hang for good on
# Python 3.11 (a cancelled asyncio.wait_for that races a notification returns instead of raising).
DEQUEUE_TIMEOUT_S = 1.0
STOP_TIMEOUT_S = 30.0


async def sweep_generation_forever(settings: Settings) -> None:
    """The generation sweeper, four times per lease, in every worker process: lost work waits at most about
    1.25 leases. A loop rather than a SAQ cron job: a cron job is itself a SAQ job, and one held by a worker
    that was killed blocks the next run until SAQ notices (the job's timeout). Concurrent sweeps from
    several processes are safe: every change they make is a compare-and-set. Regeneration jobs are swept
    here too (a lost one is FAILED, never re-queued), at least four times per their timeout."""
    interval = min(settings.generation_lease_seconds, settings.regeneration_timeout_seconds) / 4
    while True:
        try:
            # One line per sweep, also when it found nothing: the sign that the sweeper is alive.
            log.info("generation_swept", **await sweep_generation())
            log.info("exports_swept", **await sweep_exports())
            log.info("regeneration_swept", **await sweep_regeneration())
        except DB_UNAVAILABLE as exc:
            log.warning("generation_sweep_waiting_for_database", error=repr(exc))
        except Exception as exc:  # the next sweep may succeed; the loop must outlive one bad one
            log.error("alert:generation_sweep_failed", error=repr(exc), exc_info=True)
        await asyncio.sleep(interval)


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


class QuietWorker(Worker):
    # Signals belong to whoever runs the workers (uvicorn in-process, `coursewright worker` standalone),
    # which stops every worker; SAQ's own handlers would stop only the last worker that installed them.
    SIGNALS: list = []


def build_workers(settings: Settings, *, in_process: bool) -> list[Worker]:
    """One worker per queue: short jobs and cron on the default queue, LLM generation on its own queue
    with GENERATION_CONCURRENCY as its limit."""
    concurrency = {QUEUE_NAME: settings.worker_concurrency, GENERATION_QUEUE: settings.generation_concurrency}
    return [
        QuietWorker(
            get_queue(name),
            functions=FUNCTIONS[name],
            cron_jobs=CRON_JOBS if name == QUEUE_NAME else None,
            dequeue_timeout=DEQUEUE_TIMEOUT_S,
            concurrency=concurrency[name],
            before_process=[before_process],
            after_process=[after_process],
            # Generation gets its grace period from stop_workers() (drain), before SAQ stops: SAQ then
            # cancels at once, and a job it cancels goes back to its queue. Short jobs on the default queue
            # get the same grace from SAQ itself when the worker runs standalone.
            shutdown_grace_period_s=None if in_process or name == GENERATION_QUEUE
            else settings.worker_shutdown_grace_seconds,
        )
        for name in (QUEUE_NAME, GENERATION_QUEUE)
    ]


def _report_exit(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("alert:worker_crashed", worker=task.get_name(), error=repr(task.exception()))


def start_workers(workers: list[Worker], settings: Settings) -> list[asyncio.Task]:
    """The SAQ workers and the generation sweeper of this process, as tasks; stop them with stop_workers()."""
    drain.open()
    runners = []
    for worker in workers:
        runners.append(asyncio.create_task(worker.start(), name=f"saq-worker-{worker.queue.name}"))
        runners[-1].add_done_callback(_report_exit)
    runners.append(asyncio.create_task(sweep_generation_forever(settings), name="generation-sweeper"))
    runners[-1].add_done_callback(_report_exit)
    return runners


async def stop_workers(workers: list[Worker], runners: list[asyncio.Task], settings: Settings) -> None:
    """Graceful stop: no new claims, running generation gets the grace period, what is left goes back to
    QUEUED with a fresh wake-up (app/jobs/lease.py), then the SAQ workers stop."""
    released = await drain.stop(settings.worker_shutdown_grace_seconds)
    log.info("workers_stopping", released=released)
    for worker in workers:
        try:
            await asyncio.wait_for(worker.stop(), STOP_TIMEOUT_S + settings.worker_shutdown_grace_seconds)
        except TimeoutError:
            # What is still running is cancelled below; its rows are leased, so nothing is lost.
            log.error("alert:worker_stop_timed_out", queue=worker.queue.name)
    for runner in runners:
        runner.cancel()
    for runner in runners:
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    # No worker of this process is left to hand work to, so claims are allowed again: code that generates
    # directly (the demo seeder between two steps, tests) must not wait for a stop that has happened.
    drain.open()


@contextlib.asynccontextmanager
async def running_workers(settings: Settings) -> AsyncIterator[list[Worker]]:
    """Run this process's in-process workers for the duration of the block (web app lifespan, demo
    seeding, benchmarks); stops them gracefully on the way out. The queues must be connected first."""
    workers = build_workers(settings, in_process=True)
    runners = start_workers(workers, settings)
    try:
        yield workers
    finally:
        await stop_workers(workers, runners, settings)
