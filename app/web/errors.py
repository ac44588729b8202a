"""Error responses: a styled page for browsers, a short text for HTMX (shown as a toast), JSON for /api.

Unhandled errors are logged once with their trace and request id; the page shows only the id.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.errors import DomainError, Throttled
from app.web.inputs import describe_problem
from app.web.requests import request_id
from app.web.templating import redirect, render

log = structlog.get_logger("coursewright.errors")

TITLES = {
    400: "That request did not make sense",
    401: "Please sign in",
    403: "You don't have access to this",
    404: "Page not found",
    405: "Method not allowed",
    409: "That conflicts with the current state",
    410: "No longer available",
    413: "That request is too large",
    429: "Slow down a little",
    500: "Something went wrong on our side",
    503: "Down for maintenance",
}


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or ("application/json" in accept and "text/html" not in accept)


def error_response(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    rid = request_id(request.scope)
    headers = dict(headers or {})
    if _wants_json(request):
        return Response({"error": message, "status": status, "request_id": rid}, status_code=status,
                        headers=headers, media_type=MediaType.JSON)
    if request.headers.get("hx-request") == "true":
        # htmx does not swap error responses; static/app.js shows this text in a toast instead.
        return Response(message, status_code=status, headers=headers, media_type=MediaType.TEXT)
    return render(request, "errors/error.html", status_code=status, headers=headers,
                  status=status, title=TITLES.get(status, "Error"), message=message)


def _validation_message(exc: ValidationException) -> str:
    problems = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            key = item.get("key") or item.get("source") or "input"
            problems.append(f"{key}: {describe_problem(str(item.get('message', 'invalid')))}")
    return "The submitted data is invalid" + (f" ({'; '.join(problems)})." if problems else ".")


def handle_http_exception(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, NotAuthorizedException) and not _wants_json(request):
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
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
    return error_response(request, exc.status_code, exc.message, headers=headers)


def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", request_id=request_id(request.scope), path=request.url.path,
                  method=request.method, exc_info=exc)
    return error_response(request, HTTP_500_INTERNAL_SERVER_ERROR,
                          "An unexpected error occurred. It has been logged; quote the request id if you report it.")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: handle_http_exception,
    DomainError: handle_domain_error,
    Exception: handle_unexpected,
}
