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
import uuid
from typing import Annotated, Any

import asyncpg
import msgspec
import structlog

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


def _client_time(ms: int | None, now: dt.datetime) -> dt.datetime | None:
    if ms is None:
        return None
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return when if abs(when - now) <= CLIENT_CLOCK_SLACK else None


def rows_for(batch: EventBatch, tenant_id: uuid.UUID, user_id: uuid.UUID, visible: dict[uuid.UUID, int],
             now: dt.datetime) -> list[tuple[Any, ...]]:
    """The rows to store, or InvalidInput for the first event that may not be stored (nothing is stored)."""
    rows = []
    for index, event in enumerate(batch.events):
        if event.type in SERVER_ONLY:
            raise InvalidInput(f"Event {index} (counting from 0): {event.type.value} is recorded by the server "
                               "where it happens, not sent by the player.")
        version = visible.get(event.course_id)
        if version is None:
            raise InvalidInput(f"Event {index} (counting from 0): course {event.course_id} is not one you can see.")
        rows.append((tenant_id, user_id, event.course_id, version, event.lesson_index, event.type.value,
                     event.time_on_page_ms, msgspec.json.encode(event.metadata).decode(),
                     _client_time(event.client_ts, now), now))
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
    visible = await visible_courses(tenant_id, user_id)
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
