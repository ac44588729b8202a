"""Per-request plumbing: request id, client address, security headers, one access log line per response."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.db import start_query_count
from app.metrics import DB_QUERIES_PER_REQUEST
from app.settings import get_settings

log = structlog.get_logger("coursewright.http")
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

# Only our own files may run or style a page: every script and stylesheet is a static file (htmx's
# injected indicator style is switched off in layout/base.html), so an injected <script> or style=""
# attribute is refused by the browser. data: images are Pico's inline SVG icons (checkboxes, selects).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
}
HSTS = "max-age=31536000; includeSubDomains"


def request_id(scope: Scope) -> str:
    """The request's id: a sane incoming X-Request-ID (from a proxy) or a new one, fixed on first use."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        state["request_id"] = incoming if _INCOMING_ID.match(incoming) else uuid.uuid4().hex[:16]
    return state["request_id"]


def client_ip(scope: Scope) -> str:
    hops = get_settings().trusted_proxy_hops
    if hops:
        forwarded = dict(scope.get("headers", [])).get(b"x-forwarded-for", b"").decode("latin-1")
        chain = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(chain) >= hops:
            return chain[-hops][:64]
    client = scope.get("client")
    return client[0] if client else ""


def served_over_https(scope: Scope) -> bool:
    """HTTPS as the browser sees it. The scheme is "https" when uvicorn terminates TLS, or when a trusted
    proxy says so in X-Forwarded-Proto (uvicorn honours it when TRUSTED_PROXY_HOPS > 0). COOKIE_SECURE=true
    (the production default) declares that the site is only served over HTTPS, which covers a TLS proxy
    whose headers we do not trust; browsers ignore HSTS on a plain-HTTP answer anyway (RFC 6797 8.1)."""
    return scope.get("scheme") == "https" or get_settings().cookie_secure


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        state["started"] = time.perf_counter()
        state["db_queries"] = start_query_count()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id(scope))
        await app(scope, receive, send)

    return middleware


async def stamp_response(message: Message, scope: Scope) -> None:
    """before_send hook: runs for every response, routed or not (404s included)."""
    if message["type"] != "http.response.start" or scope.get("type") != "http":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers["x-request-id"] = request_id(scope)
    for name, value in SECURITY_HEADERS.items():
        headers[name] = value
    if served_over_https(scope):
        headers["strict-transport-security"] = HSTS
    state = scope.get("state", {})
    for cookie in state.get("set_cookies", ()):
        headers.add("set-cookie", cookie)
    queries = state.get("db_queries")
    if queries is not None:
        DB_QUERIES_PER_REQUEST.observe(queries[0])
        if get_settings().expose_query_count:
            headers["x-db-queries"] = str(queries[0])
    path = scope.get("path", "")
    if path.startswith("/static/") or path in ("/metrics", "/health/live"):
        return
    started = state.get("started")
    log.info(
        "request",
        request_id=request_id(scope),
        method=scope.get("method"),
        path=path,
        status=message["status"],
        duration_ms=round((time.perf_counter() - started) * 1000, 2) if started else None,
        ip=client_ip(scope),
        db_queries=queries[0] if queries is not None else None,
    )


def add_cookie_header(scope: Scope, header_value: str) -> None:
    scope.setdefault("state", {}).setdefault("set_cookies", []).append(header_value)
