"""Analytics over HTTP: the player's write-only event endpoint, and the admins' aggregate APIs.

The event endpoint opts out of the CSRF middleware only because the middleware cannot read a JSON body: it
checks the same session-bound token itself, from the `x-csrftoken` header (fetch) or the body's `csrf` field
(navigator.sendBeacon, which cannot set headers).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import Parameter

from app.analytics import events, services
from app.errors import NotFound
from app.web import inputs
from app.web.auth import current_user, requires_admin, requires_login
from app.web.csrf import verify_token

ADMIN = {"guards": [requires_admin]}


@post("/api/analytics/event", guards=[requires_login], status_code=202,
      opt={"exclude_from_csrf": True, "accepts": ("application/json", "text/plain")})
async def ingest_events(request: Request) -> Response:
    """Store a batch of up to 1,000 player events; answers 202 with the count. A bad event refuses the whole
    batch (400, naming the event's index); nothing is stored."""
    user = current_user(request)
    batch = events.parse_batch(await request.body())
    verify_token(request.scope, batch.csrf)
    if user.tenant_id is None:
        raise NotFound("You are not a member of any workspace yet.")
    count = await events.ingest(batch, user.tenant_id, user.user_id)
    return Response(events.Accepted(count), status_code=202)


def _window(start: str, end: str) -> services.DateRange:
    return services.date_range(inputs.parse_date(start, "The start date"), inputs.parse_date(end, "The end date"))


# The range as ?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC days); both optional. One Parameter each: nesting
# inputs.QueryLine() in another Annotated gave two, and Litestar read the first, without the query alias, so
# ?from= and ?to= were silently ignored (the range was always the last 30 days).
From = Annotated[str, Parameter(query="from", max_length=32, pattern=inputs.SINGLE_LINE,
                                description="first day, YYYY-MM-DD (UTC)")]
To = Annotated[str, Parameter(query="to", max_length=32, pattern=inputs.SINGLE_LINE,
                              description="last day, YYYY-MM-DD (UTC)")]


@get("/api/admin/analytics/course/{course_id:uuid}", **ADMIN)
async def course_api(request: Request, course_id: uuid.UUID, start: From = "", end: To = "") -> dict[str, Any]:
    """Aggregates of one course over a date range (default: the last 30 days): totals, per lesson, per day."""
    return await services.course_report(current_user(request).tenant_id, course_id, _window(start, end))


@get("/api/admin/analytics/funnel/{course_id:uuid}", **ADMIN)
async def funnel_api(request: Request, course_id: uuid.UUID, start: From = "", end: To = "") -> dict[str, Any]:
    """The course's funnels over a date range: viewed → enrolled → completed, bought → enrolled → completed."""
    return await services.funnel(current_user(request).tenant_id, course_id, _window(start, end))


ROUTES = [ingest_events, course_api, funnel_api]
