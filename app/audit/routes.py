"""Admin audit log browser: filters, HTMX pagination, one entry's details."""

from __future__ import annotations

import datetime as dt

from litestar import Request, Response, get

from app.audit.actions import AuditAction
from app.audit.services import AuditFilter, get_audit_entry, list_audit
from app.errors import InvalidInput
from app.web.auth import current_user, requires_admin
from app.web.templating import render


def _date(raw: str, label: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{label} must be a date like 2026-01-31.") from None


@get("/admin/audit", guards=[requires_admin])
async def audit_log(
    request: Request,
    actor: str = "",
    action: str = "",
    entity_type: str = "",
    entity_id: str = "",
    date_from: str = "",
    date_to: str = "",
    page: int = 1,
) -> Response:
    if action and action not in AuditAction.__members__:
        raise InvalidInput(f"Unknown action {action!r}.")
    filters = AuditFilter(
        actor=actor.strip()[:320], action=action, entity_type=entity_type.strip()[:64],
        entity_id=entity_id.strip()[:64], date_from=_date(date_from, "From"), date_to=_date(date_to, "To"),
    )
    result = await list_audit(current_user(request).tenant_id, filters, page=max(1, min(page, 10_000)))
    return render(request, "audit/list.html", partial="audit/_table.html", result=result, filters=filters,
                  actions=[a.value for a in AuditAction], nav="audit")


@get("/admin/audit/{entry_id:int}", guards=[requires_admin])
async def audit_entry(request: Request, entry_id: int) -> Response:
    entry = await get_audit_entry(current_user(request).tenant_id, entry_id)
    return render(request, "audit/entry.html", entry=entry, nav="audit")


ROUTES = [audit_log, audit_entry]
