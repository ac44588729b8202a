"""Error responses: a styled page for browsers, a short escaped HTML text for HTMX (static/app.js shows it
in the form that sent the request, or as a toast), JSON for /api.

A plain form post refused with 400 or 409 goes back to the page it came from with the message (see
`_back_with_message`); every other error page links back to where the person came from, when that is a
page of ours, and to the nearest page above the failed address, never only to the start page.

Unhandled errors are logged once with their trace and request id; the page shows only the id. A database
that cannot be reached (a restart, a failover) is a 503 with Retry-After, not a 500: the request was fine
and the pool reconnects by itself once the server is back.
"""

from __future__ import annotations

import re
import traceback
from html import escape
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.db import DB_UNAVAILABLE
from app.errors import DomainError, Throttled, Unavailable
from app.web.inputs import describe_problem
from app.web.requests import request_id
from app.web.templating import flash, redirect, render

log = structlog.get_logger("coursewright.errors")

TITLES = {
    400: "That request did not make sense",
    401: "Please sign in",
    402: "This course is sold",
    403: "You don't have access to this",
    404: "Page not found",
    405: "Method not allowed",
    409: "That conflicts with the current state",
    410: "No longer available",
    413: "That request is too large",
    415: "That kind of request body is not accepted here",
    429: "Slow down a little",
    500: "Something went wrong on our side",
    503: "Down for maintenance",
}
DB_OUTAGE_TITLE = "Temporarily unavailable"
DB_OUTAGE_MESSAGE = ("Coursewright cannot reach its database for a moment. Nothing was lost; "
                     "please try again in a few seconds.")
DB_OUTAGE_RETRY_AFTER_SECONDS = 5


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or ("application/json" in accept and "text/html" not in accept)


def error_response(request: Request, status: int, message: str, headers: dict[str, str] | None = None,
                   title: str | None = None) -> Response:
    rid = request_id(request.scope)
    headers = dict(headers or {})
    if wants_json(request):
        # `detail` and `status_code` repeat `error` and `status` under Litestar's names: the OpenAPI document
        # describes every 400 with Litestar's error schema, and the body must match what is documented.
        body = {"error": message, "status": status, "request_id": rid, "detail": message, "status_code": status}
        return Response(body, status_code=status, headers=headers, media_type=MediaType.JSON)
    if request.headers.get("hx-request") == "true":
        # htmx does not swap error responses; static/app.js shows this text inside the form that sent the
        # request, or in a toast (as text, never as markup). Escaped, because messages can echo input and a
        # browser opening this URL directly would render it.
        return Response(escape(message), status_code=status, headers=headers, media_type=MediaType.HTML)
    if back := _back_with_message(request, status, message):
        return back
    came_from = _came_from(request)
    return render(request, "errors/error.html", status_code=status, headers=headers,
                  status=status, title=title or TITLES.get(status, "Error"), message=message,
                  back=_link(came_from) if came_from and came_from != _here(request) else None,
                  nearest=_link(_nearest_page(request, came_from)))


# Statuses a plain form post goes back with: bad input (400) and a state that moved on (409: approve twice,
# generate content twice, retry a run that did not fail). The page the person acted on shows the message
# and everything it offers to move on (Post/Redirect/Get), instead of an error page. Not for 403/404/429
# (the previous page cannot fix those, and 429 must keep its Retry-After), nor 5xx (its status matters to
# monitoring), nor GET (the page that failed is the one asked for: going "back" to it would loop).
BACK_WITH_MESSAGE = {400, 402, 409}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _back_with_message(request: Request, status: int, message: str) -> Response | None:
    if request.method != "POST" or status not in BACK_WITH_MESSAGE:
        return None
    target = _came_from(request)
    if target is None or urlsplit(target).path == request.url.path:
        return None  # no page of ours to go back to (or only to this address): the error page instead
    flash(request, "error", message)
    return redirect(target)


def _came_from(request: Request) -> str | None:
    """The page of this site the request came from (path and query, from the Referer), or None. Only the
    same host: a Referer is sent by the browser, but a link to another site must never be followed or
    offered, and a path with control characters would end up in a Location header."""
    referer = request.headers.get("referer", "")
    if not referer or len(referer) > 2000:
        return None
    try:
        parts = urlsplit(referer)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.netloc != request.headers.get("host"):
        return None
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target or _CONTROL.search(target):
        return None
    return target


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _nearest_page(request: Request, came_from: str | None) -> str | None:
    """The closest page above the failed address that exists (`/admin/items/<id>` for a refused
    `/admin/items/<id>/approve`), other than the page the person came from."""
    segments = request.url.path.rstrip("/").split("/")
    admin = getattr(request.scope.get("user"), "is_admin", False)
    last = len(segments) if request.method != "GET" else len(segments) - 1
    for end in range(last, 1, -1):
        path = "/".join(segments[:end])
        if path == (came_from or "").split("?")[0] or (path.startswith("/admin") and not admin):
            continue
        try:
            request.app.asgi_router.handle_routing(path=path, method="GET")
        except HTTPException:
            continue
        return path
    return None


_PAGE_NAMES = [(re.compile(pattern), name) for pattern, name in (
    (r"/admin/items/[^/]+", "the item"), (r"/admin/syllabi/[^/]+", "the syllabus"),
    (r"/admin/runs/[^/]+", "the generation run"), (r"/admin/courses/new", "the new course"),
    (r"/admin/courses/[^/]+/brief", "the course brief"), (r"/admin/courses/[^/]+", "the course"),
    (r"/admin/courses", "the courses"), (r"/admin/review", "the review queue"),
    (r"/admin/packages(/.*)?", "the published courses"), (r"/admin/members(/.*)?", "the members"),
    (r"/admin/audit(/.*)?", "the audit log"), (r"/admin/jobs(/.*)?", "the background jobs"),
    (r"/admin", "the dashboard"), (r"/learn/[^/]+/lesson/\d+", "the lesson"), (r"/learn/[^/]+(/.*)?", "the course"),
    (r"/learn", "your courses"),
)]


def _link(target: str | None) -> dict[str, str] | None:
    if target is None:
        return None
    path = target.split("?")[0]
    name = next((name for pattern, name in _PAGE_NAMES if pattern.fullmatch(path)), "the previous page")
    return {"href": target, "name": name}


def _validation_message(exc: ValidationException) -> str:
    problems = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            key = item.get("key") or item.get("source") or "input"
            problems.append(f"{key}: {describe_problem(str(item.get('message', 'invalid')))}")
    return "The submitted data is invalid" + (f" ({'; '.join(problems)})." if problems else ".")


def handle_http_exception(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, NotAuthorizedException) and not wants_json(request):
        target = f"/login?next={quote(request.url.path)}"
        if request.headers.get("hx-request") == "true":
            return Response("", status_code=200, headers={"HX-Redirect": target})
        return redirect(target)
    if isinstance(exc, ValidationException):
        return error_response(request, 400, _validation_message(exc))
    status = exc.status_code
    message = exc.detail if exc.detail and exc.detail != HTTPStatus(status).phrase else _default_message(status)
    if status == 403 and message.startswith("CSRF"):
        message = ("This form has expired or was sent from another site, so it was refused (CSRF check). "
                   "Reload the page and try again.")
    return error_response(request, status, message, headers=exc.headers)


def _default_message(status: int) -> str:
    return {
        404: "We could not find that page. It may have moved, or the link may be wrong.",
        405: "That address does not accept this kind of request.",
        413: "The request body is larger than this server accepts.",
    }.get(status, TITLES.get(status, "Error"))


def handle_domain_error(request: Request, exc: DomainError) -> Response:
    if isinstance(exc, Unavailable):  # an outage of something we need, not maintenance
        return error_response(request, 503, exc.message, title=DB_OUTAGE_TITLE, headers={"Retry-After": "60"})
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
    return error_response(request, exc.status_code, exc.message, headers=headers)


def handle_database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database_unavailable", request_id=request_id(request.scope), path=request.url.path,
                method=request.method, error=repr(exc))
    return error_response(request, 503, DB_OUTAGE_MESSAGE, title=DB_OUTAGE_TITLE,
                          headers={"Retry-After": str(DB_OUTAGE_RETRY_AFTER_SECONDS)})


_CLOSED = re.compile(r"\bclos(ed|ing)\b")


def _is_database_outage(exc: BaseException) -> bool:
    """A refused, dropped or shutting-down database connection (app/db.py's DB_UNAVAILABLE). OSError is too
    broad alone (a missing file is a bug, not an outage): it counts when asyncpg raised it while connecting."""
    for error in (exc, exc.__cause__, exc.__context__):
        if not isinstance(error, DB_UNAVAILABLE):
            continue
        if isinstance(error, asyncpg.InterfaceError) and not _CLOSED.search(str(error)):
            continue  # misuse ("another operation is in progress") is a bug, not an outage
        if not isinstance(error, OSError) or isinstance(error, ConnectionError):
            return True
        if any("asyncpg" in frame.filename for frame in traceback.extract_tb(error.__traceback__)):
            return True
    return False


def handle_unexpected(request: Request, exc: Exception) -> Response:
    if _is_database_outage(exc):
        return handle_database_unavailable(request, exc)
    log.exception("unhandled_error", request_id=request_id(request.scope), path=request.url.path,
                  method=request.method, exc_info=exc)
    return error_response(request, HTTP_500_INTERNAL_SERVER_ERROR,
                          "An unexpected error occurred. It has been logged; quote the request id if you report it.")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: handle_http_exception,
    DomainError: handle_domain_error,
    Exception: handle_unexpected,
}
