"""run_analytics_jobs (N7): partitions → rollup → signals → suggestions → retention, once at a time.

A lock row with a time-to-live (analytics_job_lock) keeps a second run out while one runs, across workers
and processes; a run that died holds it only until its TTL. The SAQ cron job is `unique` as well, but that
only stops the same job being queued twice, not a CLI backfill racing the cron. Every run ends in one log
line `{job, status, duration_ms}`, one ANALYTICS_JOB_RUN audit row (SUCCESS, FAILED or SKIPPED), a counter and
a duration histogram; a failure is reported, never raised into the worker.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid
from typing import Any

import structlog

from app.analytics import rollup, signals
from app.analytics.observe import analytics_transaction
from app.audit.actions import AuditAction
from app.audit.services import SYSTEM, audit
from app.db import independent_connection
from app.errors import InvalidInput
from app.insights import services as insights
from app.metrics import ANALYTICS_JOB_DURATION, ANALYTICS_JOB_RUNS

log = structlog.get_logger("coursewright.analytics")

JOB = "run_analytics_jobs"
LOCK_TTL = dt.timedelta(minutes=30)
PARTITION_MONTHS_BACK = 1
PARTITION_MONTHS_AHEAD = 3
EVENT_RETENTION = dt.timedelta(days=90)
SIGNAL_RETENTION = dt.timedelta(days=180)
MAX_BACKFILL_DAYS = 366


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def take_lock(holder: str, ttl: dt.timedelta = LOCK_TTL) -> bool:
    async with independent_connection() as conn:
        row = await conn.fetchrow(
            "INSERT INTO analytics_job_lock (name, holder, locked_until) VALUES ($1, $2, now() + $3::interval) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, locked_until = excluded.locked_until "
            "WHERE analytics_job_lock.locked_until < now() RETURNING holder", JOB, holder, ttl)
    return row is not None


async def release_lock(holder: str) -> None:
    async with independent_connection() as conn:
        await conn.execute("DELETE FROM analytics_job_lock WHERE name = $1 AND holder = $2", JOB, holder)


async def ensure_partitions(months_back: int = PARTITION_MONTHS_BACK) -> list[str]:
    async with independent_connection() as conn:
        rows = await conn.fetch("SELECT analytics_ensure_partitions($1, $2) AS name", months_back,
                                PARTITION_MONTHS_AHEAD)
    return [row["name"] for row in rows]


async def apply_retention(now: dt.datetime | None = None) -> dict[str, Any]:
    """Raw events older than 90 days go by whole partitions (a month is dropped once all of it is that old);
    signals after 180 days; aggregates stay. Each pruning is audited with its counts."""
    now = now or dt.datetime.now(dt.UTC)
    async with analytics_transaction(retention=True) as conn:
        dropped = [dict(r) for r in await conn.fetch("SELECT * FROM analytics_drop_partitions_before($1)",
                                                     now - EVENT_RETENTION)]
        status = await conn.execute("DELETE FROM analytics_signal WHERE day < $1", (now - SIGNAL_RETENTION).date())
    signals_deleted = int(status.split()[-1])
    summary = {"partitions_dropped": [d["partition_name"] for d in dropped],
               "events_deleted": sum(d["row_count"] for d in dropped), "signals_deleted": signals_deleted}
    if dropped or signals_deleted:
        await audit(AuditAction.ANALYTICS_DATA_PRUNED, actor=SYSTEM, tenant_id=None, entity_type="analytics",
                    entity_id="retention", metadata=summary)
    return summary


def days_to_roll(today: dt.date) -> list[dt.date]:
    # Yesterday is final after midnight; today so far keeps the dashboard fresh until tomorrow's run.
    return [today - dt.timedelta(days=1), today]


async def run_analytics_jobs(days: list[dt.date] | None = None, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The whole nightly pipeline; returns its summary (status SUCCESS, FAILED or SKIPPED). Never raises."""
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    days = days or days_to_roll(now.date())
    holder = _holder()
    summary: dict[str, Any] = {"job": JOB, "days": [d.isoformat() for d in days]}
    try:
        if not await take_lock(holder):
            summary["status"] = "SKIPPED"
            summary["reason"] = "another run holds the lock"
        else:
            try:
                summary["partitions_created"] = await ensure_partitions()
                summary["rollup"] = [await rollup.aggregate_day(day) for day in days]
                summary["signals"] = await signals.raise_signals(days[-1])
                summary["suggestions"] = await insights.suggest_from_signals(days[-1])
                summary["retention"] = await apply_retention(now)
                summary["status"] = "SUCCESS"
            finally:
                await release_lock(holder)
    except Exception as exc:  # noqa: BLE001 - reported below, never raised into the worker
        summary["status"] = "FAILED"
        summary["error"] = f"{type(exc).__name__}: {exc}"[:1000]
        log.error("alert:job_failed", job=JOB, error=summary["error"], exc_info=exc)
    summary["duration_ms"] = round((time.perf_counter() - started) * 1000)
    ANALYTICS_JOB_RUNS.labels(status=summary["status"]).inc()
    ANALYTICS_JOB_DURATION.observe(summary["duration_ms"] / 1000)
    log.info("analytics_job_run", job=JOB, status=summary["status"], duration_ms=summary["duration_ms"])
    await audit(AuditAction.ANALYTICS_JOB_RUN, actor=SYSTEM, tenant_id=None, entity_type="analytics",
                entity_id=JOB, metadata=summary)
    return summary


def backfill_days(start: dt.date, end: dt.date, today: dt.date) -> list[dt.date]:
    """The days of a CLI backfill, refused when they make no sense or their raw events are gone."""
    if end < start:
        raise InvalidInput("The backfill ends before it starts.")
    if end > today:
        raise InvalidInput(f"The backfill cannot go past today ({today}).")
    if (end - start).days + 1 > MAX_BACKFILL_DAYS:
        raise InvalidInput(f"Backfill at most {MAX_BACKFILL_DAYS} days at a time.")
    oldest = today - EVENT_RETENTION + dt.timedelta(days=1)
    if start < oldest:
        raise InvalidInput(f"Raw events before {oldest} are gone (kept {EVENT_RETENTION.days} days); their "
                           "aggregates are kept as they are.")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
