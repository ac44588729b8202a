"""The audit log: one writer (`audit`) that never raises, and tenant-scoped readers for the admin page."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import msgspec
import structlog

from app.audit.actions import AuditAction
from app.audit.tables import AuditLog
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
    return AuditPage(rows=rows[:per_page], page=page, has_next=len(rows) > per_page)


async def get_audit_entry(tenant_id: uuid.UUID, entry_id: int) -> dict[str, Any]:
    row = await AuditLog.select().where((AuditLog.id == entry_id) & (AuditLog.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such audit entry in this workspace.")
    return row


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
