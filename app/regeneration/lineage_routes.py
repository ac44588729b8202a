"""Lineage pages: where an item came from (backward) and what a signal led to (forward), with the loop measured.
Read-only; one service call each (app/regeneration/lineage.py, impact.py)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get

from app.regeneration import impact as measured
from app.regeneration.lineage import lineage
from app.web.auth import current_user, requires_admin
from app.web.templating import render

ADMIN = {"guards": [requires_admin]}


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


async def _page(request: Request, **start: Any) -> Response:
    tenant = _tenant(request)
    found = await lineage(tenant, **start)
    impacts = await measured.impacts_of(tenant, found)
    return render(request, "regeneration/lineage.html", lineage=found, impacts=impacts, nav="improve")


@get("/admin/lineage/items/{item_id:uuid}", **ADMIN)
async def item_lineage(request: Request, item_id: uuid.UUID) -> Response:
    """Where this content item came from: original generation, or signal → suggestion → job → approval."""
    return await _page(request, item_id=item_id)


@get("/admin/lineage/signals/{signal_id:uuid}", **ADMIN)
async def signal_lineage(request: Request, signal_id: uuid.UUID) -> Response:
    """What a signal led to: suggestions, jobs and their retries, drafts, approvals and published versions."""
    return await _page(request, signal_id=signal_id)


ROUTES = [item_lineage, signal_lineage]
