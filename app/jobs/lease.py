"""Leases for durable jobs: the database row is the truth, a SAQ task is only a wake-up.

A leased table has a status column with a "queued" and a "running" value and the columns `queued_at`,
`claimed_at`, `heartbeat_at`, `attempt` and `lost_attempts`. A worker claims a queued row with a
compare-and-set that bumps `attempt`; `attempt` is then the fencing token of that claim: heartbeats and
every later write of the holder carry it, so a worker that was given up for lost can never overwrite the
work of the one that took over. While the work runs, `hold()` refreshes `heartbeat_at`. The sweeper
re-queues a row whose heartbeat is older than the lease (never by creation time: a long backlog is not a
lost worker), counting it in `lost_attempts`; the domain decides when too many lost attempts end it.

A graceful stop (`Drain`) stops claiming, lets running work finish within a grace period and releases
the rest back to queued, so the next worker starts on it at once instead of waiting for the sweeper.

Generation (content items and syllabus runs) uses this; exports, regeneration and analytics jobs are to
use the same functions with their own table.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from piccolo.table import Table

from app.db import DB_UNAVAILABLE, persist

log = structlog.get_logger(__name__)
T = TypeVar("T")

Wake = Callable[[uuid.UUID, dt.datetime], Awaitable[None]]  # enqueues a row's wake-up for its queued_at
PARK_S = 3.0  # how long a wake-up that arrives while draining waits for the stop to cancel it


class LeaseLost(Exception):
    """The sweeper gave this row to another worker (our heartbeats stopped reaching the database)."""


class Released(Exception):
    """The worker is stopping: the work was cut short and its row goes back to the queue."""


@dataclass(frozen=True)
class LeasedTable:
    table: type[Table]
    queued: str
    running: str
    claim_sets: str = ""  # extra assignments on claim, e.g. ", started_at = coalesce(started_at, now())"

    @property
    def name(self) -> str:
        return self.table._meta.tablename

    async def claim(self, row_id: uuid.UUID) -> dict[str, Any] | None:
        rows = await self.table.raw(
            f"UPDATE {self.name} SET status = '{self.running}', attempt = attempt + 1, claimed_at = now(), "
            f"heartbeat_at = now(){self.claim_sets} WHERE id = {{}} AND status = '{self.queued}' RETURNING *",
            row_id)
        return rows[0] if rows else None

    async def heartbeat(self, row_id: uuid.UUID, attempt: int) -> bool:
        rows = await self.table.raw(
            f"UPDATE {self.name} SET heartbeat_at = now() WHERE id = {{}} AND status = '{self.running}' "
            "AND attempt = {} RETURNING id", row_id, attempt)
        return bool(rows)

    async def requeue(self, row_id: uuid.UUID, attempt: int, *, lost: bool) -> dt.datetime | None:
        """Running -> queued: a graceful release (lost=False) or a lost worker (lost=True, counted)."""
        rows = await self.table.raw(
            f"UPDATE {self.name} SET status = '{self.queued}', queued_at = now(), claimed_at = NULL, "
            f"heartbeat_at = NULL, lost_attempts = lost_attempts + {int(lost)} "
            f"WHERE id = {{}} AND status = '{self.running}' AND attempt = {{}} RETURNING queued_at", row_id, attempt)
        return rows[0]["queued_at"] if rows else None

    async def expired(self, lease: dt.timedelta) -> list[dict[str, Any]]:
        """Running rows whose holder stopped heartbeating more than a lease ago."""
        return await self.table.raw(
            f"SELECT id, attempt, lost_attempts FROM {self.name} WHERE status = '{self.running}' "
            "AND heartbeat_at < now() - {}::interval ORDER BY heartbeat_at", lease)

    async def waiting(self, older_than: dt.timedelta) -> list[dict[str, Any]]:
        """Queued rows that have waited a while: their wake-up may have been lost."""
        return await self.table.raw(
            f"SELECT id, queued_at FROM {self.name} WHERE status = '{self.queued}' "
            "AND queued_at < now() - {}::interval", older_than)

    async def touch(self, row_id: uuid.UUID) -> dt.datetime | None:
        """A new queueing time for a row that is still queued (its next wake-up gets a new key)."""
        rows = await self.table.raw(
            f"UPDATE {self.name} SET queued_at = now() WHERE id = {{}} AND status = '{self.queued}' "
            "RETURNING queued_at", row_id)
        return rows[0]["queued_at"] if rows else None

    async def touch_queued(self, row_id: uuid.UUID, queued_at: dt.datetime) -> dt.datetime | None:
        """A new wake-up for a queued row (compare-and-set on queued_at, so one sweeper wins)."""
        rows = await self.table.raw(
            f"UPDATE {self.name} SET queued_at = now() WHERE id = {{}} AND status = '{self.queued}' "
            "AND queued_at = {} RETURNING queued_at", row_id, queued_at)
        return rows[0]["queued_at"] if rows else None


def wake_key(task_name: str, row_id: uuid.UUID, queued_at: dt.datetime) -> str:
    """One SAQ job key per time a row was queued: duplicate wake-ups of one queueing collapse, and a row
    queued again (released, re-queued) gets a fresh job even while SAQ still remembers the old one."""
    return f"{task_name}:{row_id}:{queued_at.isoformat()}"


class Drain:
    """This process's leased work, and its graceful stop (see the module docstring)."""

    def __init__(self) -> None:
        self.draining = False
        self._holders: set[asyncio.Task] = set()
        self._release: asyncio.Event | None = None

    def open(self) -> None:
        """A worker (re)starts in this process: claiming is allowed again."""
        self.draining = False
        self._release = None

    def _release_event(self) -> asyncio.Event:
        if self._release is None:
            self._release = asyncio.Event()
        return self._release

    @contextlib.asynccontextmanager
    async def claimed(self, table: LeasedTable, row_id: uuid.UUID, wake: Wake) -> AsyncIterator[dict[str, Any] | None]:
        """A worker's claim of a woken row, held for the block (None: someone else has it). The whole span
        from claim to stored result counts as running work for stop(). While draining it never claims: it
        waits to be cancelled by the worker's stop, which hands the SAQ job back to the queue. That wait is
        bounded, because on Python 3.11 a cancellation that races a dequeue can be lost; then the row gets
        a fresh wake-up (`wake`) for the next worker instead."""
        if self.draining:
            try:
                await asyncio.wait_for(asyncio.Event().wait(), PARK_S)
            except TimeoutError:
                if (queued_at := await persist(lambda: table.touch(row_id))) is not None:
                    await wake(row_id, queued_at)
            yield None
            return
        row = await persist(lambda: table.claim(row_id))
        if row is None:
            yield None
            return
        holder = asyncio.current_task()
        assert holder is not None
        self._holders.add(holder)
        try:
            yield row
        finally:
            self._holders.discard(holder)

    async def stop(self, grace: float) -> int:
        """Stop claiming, give running work `grace` seconds, then release what is left; returns how
        many were released."""
        self.draining = True
        if self._holders:
            await asyncio.wait(set(self._holders), timeout=grace)
        left = set(self._holders)
        if left:
            log.info("releasing_unfinished_work", count=len(left))
            self._release_event().set()
            await asyncio.wait(left, timeout=30)
        return len(left)

    async def hold(self, work: Awaitable[T], *, heartbeat: Callable[[], Awaitable[bool]], interval: float) -> T:
        """Run `work` (inside claimed()) while heartbeating every `interval` seconds. Raises LeaseLost when a
        heartbeat finds the row taken over, Released when the worker stops before the work finishes."""
        job = asyncio.ensure_future(work)
        released = asyncio.ensure_future(self._release_event().wait())
        try:
            while True:
                await asyncio.wait({job, released}, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
                if job.done():
                    return job.result()
                if released.done():
                    raise Released()
                try:
                    alive = await heartbeat()
                except DB_UNAVAILABLE as exc:
                    # Keep working: the answer can still be stored once the database is back, and the
                    # lease is long enough to ride out a short outage.
                    log.warning("heartbeat_failed", error=repr(exc))
                    continue
                if not alive:
                    raise LeaseLost()
        finally:
            for task in (job, released):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task


drain = Drain()


# ---------------------------------------------------------------------------------------------
# Wake-ups: every leased kind of row (generation, exports) sends and re-sends them the same way.


async def wake(task: Any, key: str, **kwargs: str) -> None:
    """Send a row's wake-up. A queue that is away is an alert, not an error: the row stays QUEUED and the
    sweeper's rewake() sends the wake-up again once the queue is back."""
    from app.queue import enqueue

    try:
        await enqueue(task, key=key, **kwargs)
    except Exception as exc:
        log.error("alert:enqueue_failed", task=task.__qualname__, key=key, error=repr(exc))


# SAQ job states of a wake-up that is still waiting for a worker. Any other state of the wake-up of a row
# that has been QUEUED for half a lease means no worker is going to claim it: it was never enqueued, it
# finished without claiming (an outage), or it is "active" in a worker that died before claiming (SAQ
# itself would only notice at the task's timeout).
WAITING_JOB_STATES = ("new", "queued")


async def rewake(table: LeasedTable, lease: dt.timedelta, queue_name: str, task_name: str,
                 send: Callable[[uuid.UUID, dt.datetime], Awaitable[None]]) -> int:
    """QUEUED rows whose wake-up will never reach a worker get a new one (`send`); rows whose job is still
    waiting in a backlog are left alone. Returns how many were woken."""
    from app.metrics import GENERATION_RECOVERIES
    from app.queue import get_queue

    rows = await table.waiting(lease / 2)
    if not rows:
        return 0
    jobs = await get_queue(queue_name).jobs(wake_key(task_name, row["id"], row["queued_at"]) for row in rows)
    woken = 0
    for row, job in zip(rows, jobs, strict=True):
        if job is not None and job.status in WAITING_JOB_STATES:
            continue
        queued_at = await table.touch_queued(row["id"], row["queued_at"])
        if queued_at is not None:
            GENERATION_RECOVERIES.labels(kind=table.name, action="rewoken").inc()
            await send(row["id"], queued_at)
            woken += 1
    return woken
