"""The audit log: one writer (`audit`) that never raises, and tenant-scoped readers for the admin page."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlencode

import msgspec
import structlog

from app.audit.actions import AuditAction
from app.audit.tables import AuditLog
from app.audit.words import action_words, entity_words
from app.db import independent_connection
from app.errors import NotFound
from app.metrics import AUDIT_FAILURES, AUDIT_WRITES

log = structlog.get_logger(__name__)

# An audit write that takes longer than this is abandoned (and counted) rather than holding up the action.
AUDIT_TIMEOUT_SECONDS = 2.0

INSERT_SQL = """
INSERT INTO audit_log (tenant_id, actor_id, actor_email, action, entity_type, entity_id, metadata, ip, request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
"""


class Actor(msgspec.Struct, frozen=True):
    """Who did something, and from where: a signed-in user, or the system (jobs, CLI)."""

    user_id: uuid.UUID | None
    email: str | None
    ip: str = ""
    request_id: str = ""


SYSTEM = Actor(user_id=None, email="system")


async def audit(
    action: AuditAction,
    *,
    actor: Actor,
    tenant_id: uuid.UUID | None,
    entity_type: str = "",
    entity_id: Any = "",
    metadata: dict[str, Any] | None = None,
) -> bool:
    """Record one audit row on its own connection, after the action it describes.

    Never raises: invariant 5 says an audit failure never blocks the action. A failure is logged with
    an `alert:` prefix and counted in `coursewright_audit_write_failures_total`. Returns whether it wrote.
    """
    try:
        payload = msgspec.json.encode(metadata or {}).decode()
        async with asyncio.timeout(AUDIT_TIMEOUT_SECONDS), independent_connection() as conn:
            await conn.execute(
                INSERT_SQL,
                tenant_id,
                actor.user_id,
                actor.email,
                AuditAction(action).value,
                entity_type,
                str(entity_id),
                payload,
                actor.ip,
                actor.request_id,
            )
    except Exception:  # deliberate: see docstring
        AUDIT_FAILURES.inc()
        log.exception("alert:audit_write_failed", action=str(action), entity_type=entity_type, entity_id=str(entity_id))
        return False
    AUDIT_WRITES.labels(action=AuditAction(action).value).inc()
    return True


class AuditFilter(msgspec.Struct, frozen=True, kw_only=True):
    actor: str = ""
    action: str = ""
    entity_type: str = ""
    entity_id: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None


class AuditPage(msgspec.Struct, frozen=True):
    rows: list[dict[str, Any]]
    page: int
    has_next: bool
    links: dict[int, str] = {}  # row id -> the page of the entity it names (see entity_links)


async def list_audit(tenant_id: uuid.UUID, filters: AuditFilter, page: int = 1, per_page: int = 25) -> AuditPage:
    query = AuditLog.select().where(AuditLog.tenant_id == tenant_id)
    if filters.actor:
        query = query.where(AuditLog.actor_email.ilike(f"%{filters.actor}%"))
    if filters.action:
        query = query.where(AuditLog.action == filters.action)
    if filters.entity_type:
        query = query.where(AuditLog.entity_type == filters.entity_type)
    if filters.entity_id:
        query = query.where(AuditLog.entity_id == filters.entity_id)
    if filters.date_from:
        query = query.where(AuditLog.created_at >= _day_start(filters.date_from))
    if filters.date_to:
        query = query.where(AuditLog.created_at < _day_start(filters.date_to + dt.timedelta(days=1)))
    page = max(page, 1)
    # One extra row tells whether there is a next page without a count(*) over the whole log.
    rows = await query.order_by(AuditLog.id, ascending=False).limit(per_page + 1).offset((page - 1) * per_page)
    return AuditPage(rows=rows[:per_page], page=page, has_next=len(rows) > per_page,
                     links=await entity_links(tenant_id, rows[:per_page]))


async def get_audit_entry(tenant_id: uuid.UUID, entry_id: int) -> dict[str, Any]:
    row = await AuditLog.select().where((AuditLog.id == entry_id) & (AuditLog.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such audit entry in this workspace.")
    return row


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


# ---------------------------------------------------------------------------------------------
# Audit rows for people: the page of the entity a row names, and the filter choices that exist

# Entities whose page address is their id alone (rows that are never deleted).
_PAGE_OF = {
    "course": "/admin/courses/{}",
    "syllabus": "/admin/syllabi/{}",
    "content_item": "/admin/items/{}",
    "generation_run": "/admin/runs/{}",
    "background_job": "/admin/jobs/{}",
    "package_export": "/admin/exports/{}",
    "product": "/admin/store#product-{}",
    "purchase": "/admin/store/purchases#purchase-{}",
    "billing_event": "/admin/store/events/{}",
    "content_suggestion": "/admin/suggestions/{}",
    "regeneration_job": "/admin/regeneration-jobs/{}",
    "retry_intent": "/admin/retry-intents/{}",
}

# Entities whose page needs a lookup, or that may be gone (a removed member, an invitation no longer open,
# a person who left the workspace): one query for a whole page of rows. No row, no link.
LINKS_SQL = """
SELECT 'course_package' AS type, p.id AS id, p.syllabus_id AS parent, p.version::text AS detail
FROM course_package p WHERE p.tenant_id = $1 AND p.id = ANY($2::uuid[])
UNION ALL
SELECT 'membership', m.id, NULL, NULL FROM membership m WHERE m.tenant_id = $1 AND m.id = ANY($3::uuid[])
UNION ALL
SELECT 'user', m.user_id, m.id, NULL FROM membership m WHERE m.tenant_id = $1 AND m.user_id = ANY($4::uuid[])
UNION ALL
SELECT 'enrollment', e.id, e.syllabus_id, u.email
FROM enrollment e JOIN app_user u ON u.id = e.user_id WHERE e.tenant_id = $1 AND e.id = ANY($5::uuid[])
UNION ALL
SELECT 'invitation', i.id, NULL, NULL FROM invitation i
WHERE i.tenant_id = $1 AND i.id = ANY($6::uuid[]) AND i.accepted_at IS NULL AND i.revoked_at IS NULL
"""
_LOOKED_UP = ("course_package", "membership", "user", "enrollment", "invitation")


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _href(kind: str, entity_id: uuid.UUID, parent: uuid.UUID | None, detail: str | None) -> str:
    if kind == "course_package":
        return f"/admin/packages/{parent}/v/{detail}"
    if kind == "membership":
        return f"/admin/members/{entity_id}"
    if kind == "user":
        return f"/admin/members/{parent}"
    if kind == "enrollment":
        return f"/admin/packages/{parent}/learners?{urlencode({'q': detail})}"
    return f"/admin/members#invitation-{entity_id}"


async def entity_links(tenant_id: uuid.UUID, rows: list[dict[str, Any]]) -> dict[int, str]:
    """The page of the entity each audit row names (row id -> address), for the rows that have one."""
    links: dict[int, str] = {}
    wanted: dict[str, set[uuid.UUID]] = {kind: set() for kind in _LOOKED_UP}
    for row in rows:
        entity_id = _uuid(row["entity_id"]) if row["entity_id"] else None
        if entity_id is None:
            continue
        if row["entity_type"] in _PAGE_OF:
            links[row["id"]] = _PAGE_OF[row["entity_type"]].format(entity_id)
        elif row["entity_type"] in wanted:
            wanted[row["entity_type"]].add(entity_id)
    if not any(wanted.values()):
        return links
    async with independent_connection() as conn:
        found = await conn.fetch(LINKS_SQL, tenant_id, *(list(wanted[kind]) for kind in _LOOKED_UP))
    pages = {(r["type"], r["id"]): _href(r["type"], r["id"], r["parent"], r["detail"]) for r in found}
    for row in rows:
        entity_id = _uuid(row["entity_id"]) if row["entity_id"] else None
        if (row["entity_type"], entity_id) in pages:
            links[row["id"]] = pages[(row["entity_type"], entity_id)]
    return links


class FilterChoices(msgspec.Struct, frozen=True):
    actions: list[str]  # the actions in this workspace's log, in the order of their words
    entity_types: list[str]


async def filter_choices(tenant_id: uuid.UUID) -> FilterChoices:
    """The actions and entity types that occur in this workspace's log (a filter offers nothing that would
    match no row)."""
    async with independent_connection() as conn:
        row = await conn.fetchrow(
            "SELECT coalesce(array_agg(DISTINCT action), '{}') AS actions, "
            "coalesce(array_agg(DISTINCT entity_type) FILTER (WHERE entity_type <> ''), '{}') AS entity_types "
            "FROM audit_log WHERE tenant_id = $1", tenant_id)
    return FilterChoices(sorted(row["actions"], key=action_words), sorted(row["entity_types"], key=entity_words))
