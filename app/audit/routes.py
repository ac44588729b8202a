"""Admin audit log browser: filters, HTMX pagination, one entry's details."""

from __future__ import annotations

from litestar import Request, Response, get

from app.audit.actions import AuditAction
from app.audit.services import AuditFilter, entity_links, filter_choices, get_audit_entry, list_audit
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
    if action and action not in AuditAction.__members__:
        raise InvalidInput(f"Unknown action {action!r}.")
    filters = AuditFilter(
        actor=actor.strip(), action=action, entity_type=entity_type.strip(), entity_id=entity_id.strip(),
        date_from=inputs.parse_date(date_from, "From"), date_to=inputs.parse_date(date_to, "To"),
    )
    tenant_id = current_user(request).tenant_id
    result = await list_audit(tenant_id, filters, page=page)
    # The filter form is only on the full page; an htmx page turn swaps the table alone.
    choices = None if request.htmx else await filter_choices(tenant_id)
    return render(request, "audit/list.html", partial="audit/_table.html", result=result, filters=filters,
                  choices=choices, action_words=action_words, entity_words=entity_words, nav="audit")


@get("/admin/audit/{entry_id:int}", guards=[requires_admin])
async def audit_entry(request: Request, entry_id: inputs.PathInt8) -> Response:
    tenant_id = current_user(request).tenant_id
    entry = await get_audit_entry(tenant_id, entry_id)
    links = await entity_links(tenant_id, [entry])
    return render(request, "audit/entry.html", entry=entry, link=links.get(entry["id"]), action_words=action_words,
                  entity_words=entity_words, nav="audit")


ROUTES = [audit_log, audit_entry]
