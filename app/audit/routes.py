"""Admin audit log browser: filters, HTMX pagination, one entry's details."""

from __future__ import annotations

from litestar import Request, Response, get

from app.audit.actions import AuditAction
from app.audit.services import AuditFilter, get_audit_entry, list_audit
from app.errors import InvalidInput
from app.web import inputs
from app.web.auth import current_user, requires_admin
from app.web.templating import render


@get("/admin/audit", guards=[requires_admin])
async def audit_log(
    request: Request,
    actor: inputs.QueryLine(320) = "",
    action: inputs.QueryLine(64) = "",
    entity_type: inputs.QueryLine(64) = "",
    entity_id: inputs.QueryLine(64) = "",
    date_from: inputs.QueryLine(32) = "",
    date_to: inputs.QueryLine(32) = "",
    page: inputs.Int4Query(ge=1, le=10_000) = 1,
) -> Response:
    if action and action not in AuditAction.__members__:
        raise InvalidInput(f"Unknown action {action!r}.")
    filters = AuditFilter(
        actor=actor.strip(), action=action, entity_type=entity_type.strip(), entity_id=entity_id.strip(),
        date_from=inputs.parse_date(date_from, "From"), date_to=inputs.parse_date(date_to, "To"),
    )
    result = await list_audit(current_user(request).tenant_id, filters, page=page)
    return render(request, "audit/list.html", partial="audit/_table.html", result=result, filters=filters,
                  actions=[a.value for a in AuditAction], nav="audit")


@get("/admin/audit/{entry_id:int}", guards=[requires_admin])
async def audit_entry(request: Request, entry_id: inputs.PathInt8) -> Response:
    entry = await get_audit_entry(current_user(request).tenant_id, entry_id)
    return render(request, "audit/entry.html", entry=entry, nav="audit")


ROUTES = [audit_log, audit_entry]
