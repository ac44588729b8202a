"""Admin audit log browser: filters, HTMX pagination, one entry's details."""

from __future__ import annotations

import uuid

from litestar import Request, Response, get

from app.audit.actions import AuditAction
from app.audit.services import AuditFilter, AuditPage, entity_links, filter_choices, get_audit_entry, list_audit
from app.audit.words import action_words, entity_words
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
    tenant_id = current_user(request).tenant_id
    try:
        if action and action not in AuditAction.__members__:
            raise InvalidInput(f"Unknown action {action!r}: choose one from the list.")
        filters = AuditFilter(
            actor=actor.strip(), action=action, entity_type=entity_type.strip(), entity_id=entity_id.strip(),
            date_from=inputs.parse_date(date_from, "From"), date_to=inputs.parse_date(date_to, "To"),
        )
    except InvalidInput as exc:
        # A value no form control sends (a typed or stale URL): said above the filters, which start afresh.
        return await _audit_page(request, tenant_id, AuditFilter(), None, error=exc.message, status_code=400)
    return await _audit_page(request, tenant_id, filters, await list_audit(tenant_id, filters, page=page))


async def _audit_page(request: Request, tenant_id: uuid.UUID, filters: AuditFilter, result: AuditPage | None, *,
                      error: str | None = None, status_code: int = 200) -> Response:
    # The filter form is only on the full page; an htmx page turn swaps the table alone.
    choices = None if request.htmx else await filter_choices(tenant_id)
    return render(request, "audit/list.html", partial="audit/_table.html", result=result, filters=filters,
                  choices=choices, error=error, status_code=status_code, action_words=action_words,
                  entity_words=entity_words, nav="audit")


@get("/admin/audit/{entry_id:int}", guards=[requires_admin])
async def audit_entry(request: Request, entry_id: inputs.PathInt8) -> Response:
    tenant_id = current_user(request).tenant_id
    entry = await get_audit_entry(tenant_id, entry_id)
    links = await entity_links(tenant_id, [entry])
    return render(request, "audit/entry.html", entry=entry, link=links.get(entry["id"]), action_words=action_words,
                  entity_words=entity_words, nav="audit")


ROUTES = [audit_log, audit_entry]
