"""Learner events in (N1, N2): validate a batch, stamp it with the session's identity, store it with one COPY.

Write-only by design: the request reads no analytics table and runs no business logic. It reads one thing
besides the session: which courses this learner may see (published courses of their workspace) and the version
each is on for them, in one query, so an event can only name a course the learner could have been looking at,
and carries the version the server knows they read (never one the client claims).

The CSRF token travels inside the JSON body (`"csrf": "..."`): navigator.sendBeacon cannot set headers. The
token is the same session-bound one every other form and HTMX request sends (app/web/csrf.py).
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from typing import Annotated, Any

import asyncpg
import msgspec
import structlog
from asyncpg.pgproto.pgproto import UUID as PgUUID

from app.analytics.tables import EventType
from app.db import independent_connection
from app.errors import InvalidInput, Unavailable
from app.metrics import ANALYTICS_EVENTS

log = structlog.get_logger("coursewright.analytics")

MAX_BATCH = 1000
MAX_LESSON_INDEX = 10_000
MAX_TIME_ON_PAGE_MS = 24 * 60 * 60 * 1000
MAX_METADATA_KEYS = 16
MAX_METADATA_VALUE = 200
# A client clock more than a day off is a broken clock: its time is dropped, the event kept.
CLIENT_CLOCK_SLACK = dt.timedelta(days=1)

# Told by the server where they happen (enrolling, paying, finishing): a client saying so is refused.
SERVER_ONLY = frozenset({EventType.ENROLLED, EventType.PURCHASED, EventType.COURSE_COMPLETED})
COLUMNS = ("tenant_id", "user_id", "course_id", "package_version", "lesson_index", "event_type", "time_on_page_ms",
           "metadata", "client_ts", "created_at")

MetadataValue = Annotated[str, msgspec.Meta(max_length=MAX_METADATA_VALUE)] | int | float | bool | None


class IncomingEvent(msgspec.Struct, forbid_unknown_fields=False, frozen=True):
    """One event as the player sends it. Any user, tenant or version field a client adds is ignored."""

    type: EventType
    course_id: uuid.UUID
    lesson_index: Annotated[int, msgspec.Meta(ge=0, le=MAX_LESSON_INDEX)] = 0
    time_on_page_ms: Annotated[int, msgspec.Meta(ge=0, le=MAX_TIME_ON_PAGE_MS)] | None = None
    client_ts: Annotated[int, msgspec.Meta(ge=0, le=2**53)] | None = None  # milliseconds since the epoch
    metadata: Annotated[dict[Annotated[str, msgspec.Meta(max_length=40)], MetadataValue],
                        msgspec.Meta(max_length=MAX_METADATA_KEYS)] = {}


class EventBatch(msgspec.Struct, frozen=True):
    events: Annotated[list[IncomingEvent], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]
    csrf: str | None = None


class Accepted(msgspec.Struct, frozen=True):
    accepted: int


_AT = re.compile(r"\$\.events\[(\d+)\](.*)$")


def parse_batch(body: bytes) -> EventBatch:
    """The batch, or InvalidInput naming the first bad event by its index (counted from 0)."""
    try:
        return msgspec.json.decode(body, type=EventBatch)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        match = _AT.match(where.rstrip("`"))
        if match:
            field = match.group(2).lstrip(".") or "the event"
            raise InvalidInput(f"Event {match.group(1)} (counting from 0): {message} in {field}.") from None
        if "events" in where and "length" in message:
            raise InvalidInput(f"A batch holds 1 to {MAX_BATCH} events: {message}.") from None
        raise InvalidInput(f"The batch is not valid: {message}{' at ' + where.rstrip('`') if where else ''}.") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"The body is not valid JSON: {exc}.") from None


VISIBLE_SQL = """
SELECT p.syllabus_id, max(p.version) AS version FROM course_package p
WHERE p.tenant_id = $1 AND p.status = 'PUBLISHED' GROUP BY p.syllabus_id
UNION ALL
SELECT e.syllabus_id, -p.version FROM enrollment e JOIN course_package p ON p.id = e.package_id
WHERE e.tenant_id = $1 AND e.user_id = $2 AND e.revoked_at IS NULL
"""


async def visible_courses(tenant_id: uuid.UUID, user_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """The courses the learner may see, with the version they read (their enrollment's, else the newest)."""
    async with independent_connection() as conn:
        rows = await conn.fetch(VISIBLE_SQL, tenant_id, user_id)
    versions: dict[uuid.UUID, int] = {}
    enrolled: dict[uuid.UUID, int] = {}
    for row in rows:
        if row["version"] < 0:
            enrolled[row["syllabus_id"]] = -row["version"]
        else:
            versions[row["syllabus_id"]] = row["version"]
    return {course: enrolled.get(course, version) for course, version in versions.items()}


# A player flushes a batch every few seconds, and each one used to cost a query (a third of the request's
# time under load). What a learner may see changes rarely, so it is kept per (tenant, user) for a few seconds.
# A course missing from the cached answer is looked up again before the batch is refused (a course published
# a moment ago is accepted at once); an enrollment revoked or a newer version pinned shows within VISIBLE_TTL.
VISIBLE_TTL = 5.0
VISIBLE_CACHE_MAX = 10_000
_visible_cache: dict[tuple[uuid.UUID, uuid.UUID], tuple[float, dict[int, int]]] = {}


async def _visible_by_int(tenant_id: uuid.UUID, user_id: uuid.UUID) -> dict[int, int]:
    # Keyed by the UUID's integer: hashing uuid.UUID runs Python code, an int hashes in C (1,000 events a batch).
    visible = {course.int: version for course, version in (await visible_courses(tenant_id, user_id)).items()}
    if len(_visible_cache) >= VISIBLE_CACHE_MAX:
        _visible_cache.clear()
    _visible_cache[(tenant_id, user_id)] = (time.monotonic() + VISIBLE_TTL, visible)
    return visible


async def cached_visible(tenant_id: uuid.UUID, user_id: uuid.UUID, batch: EventBatch) -> dict[int, int]:
    """visible_courses keyed by course.int, from the cache unless stale or missing a course the batch names."""
    hit = _visible_cache.get((tenant_id, user_id))
    if hit is not None and hit[0] > time.monotonic():
        visible = hit[1]
        if all(course in visible for course in {event.course_id.int for event in batch.events}):
            return visible
    return await _visible_by_int(tenant_id, user_id)


def rows_for(batch: EventBatch, tenant_id: uuid.UUID, user_id: uuid.UUID, visible: dict[int, int],
             now: dt.datetime) -> list[tuple[Any, ...]]:
    """The rows to store, or InvalidInput for the first event that may not be stored (nothing is stored).
    `visible` maps course.int to the version. The loop runs 1,000 times a batch, so it does only C-level work
    per event where it can: identity tests for the server-only types (an Enum hashes in Python), integer
    bounds for the client clock, the last course's version reused while the course does not change."""
    now_ms = now.timestamp() * 1000
    slack_ms = CLIENT_CLOCK_SLACK.total_seconds() * 1000
    earliest, latest = now_ms - slack_ms, now_ms + slack_ms
    fromtimestamp, utc, encode = dt.datetime.fromtimestamp, dt.UTC, msgspec.json.encode
    enrolled, purchased, completed = EventType.ENROLLED, EventType.PURCHASED, EventType.COURSE_COMPLETED
    # asyncpg writes its own UUID type straight from memory; a uuid.UUID costs a Python .bytes call per value.
    tenant, user = PgUUID(tenant_id.bytes), PgUUID(user_id.bytes)
    last_course, course_id, version = -1, None, None
    rows = []
    for index, event in enumerate(batch.events):
        kind = event.type
        if kind is enrolled or kind is purchased or kind is completed:
            raise InvalidInput(f"Event {index} (counting from 0): {kind.value} is recorded by the server "
                               "where it happens, not sent by the player.")
        course = event.course_id.int
        if course != last_course:
            version = visible.get(course)
            if version is None:
                raise InvalidInput(f"Event {index} (counting from 0): course {event.course_id} is not one you can "
                                   "see.")
            last_course, course_id = course, PgUUID(event.course_id.bytes)
        ms = event.client_ts
        client_time = fromtimestamp(ms / 1000, utc) if ms is not None and earliest <= ms <= latest else None
        # A StrEnum member is a str: asyncpg encodes it as the enum's text without .value.
        rows.append((tenant, user, course_id, version, event.lesson_index, kind, event.time_on_page_ms,
                     encode(event.metadata).decode() if event.metadata else "{}", client_time, now))
    return rows


async def store(rows: list[tuple[Any, ...]]) -> int:
    """One COPY for the whole batch: all rows or none."""
    try:
        async with independent_connection() as conn:
            await conn.copy_records_to_table("analytics_event", records=rows, columns=COLUMNS)
    except asyncpg.CheckViolationError as exc:
        if "no partition" not in str(exc):
            raise
        # Partitions are made ahead by the nightly job, never here: a missing one means the job has not run
        # for months. The player drops the batch (it never retries); the operator runs `coursewright analytics run`.
        log.error("alert:analytics_partition_missing", error=str(exc))
        raise Unavailable("Learner events cannot be stored right now (this month's storage is not ready); "
                          "nothing was stored.") from None
    return len(rows)


async def ingest(batch: EventBatch, tenant_id: uuid.UUID, user_id: uuid.UUID, *,
                 now: dt.datetime | None = None) -> int:
    """Check and store one parsed batch of a learner's events; returns how many were stored."""
    visible = await cached_visible(tenant_id, user_id, batch)
    count = await store(rows_for(batch, tenant_id, user_id, visible, now or dt.datetime.now(dt.UTC)))
    ANALYTICS_EVENTS.labels(source="player").inc(count)
    return count


async def record(event_type: EventType, *, tenant_id: uuid.UUID, user_id: uuid.UUID | None, course_id: uuid.UUID,
                 package_version: int = 0, lesson_index: int = 0, metadata: dict[str, Any] | None = None,
                 at: dt.datetime | None = None) -> None:
    """A server-side event (enrolled, purchased, course_completed), written after the action it observes.
    Never raises: analytics observes, and a lost event must never undo or block what happened."""
    try:
        async with independent_connection() as conn:
            await conn.execute(
                "INSERT INTO analytics_event (tenant_id, user_id, course_id, package_version, lesson_index, "
                "event_type, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)", tenant_id,
                user_id, course_id, package_version, lesson_index, event_type.value,
                msgspec.json.encode(metadata or {}).decode(), at or dt.datetime.now(dt.UTC))
        ANALYTICS_EVENTS.labels(source="server").inc()
    except Exception as exc:  # noqa: BLE001 - see docstring
        ANALYTICS_EVENTS.labels(source="lost").inc()
        log.warning("analytics_event_lost", event_type=event_type.value, error=repr(exc))
