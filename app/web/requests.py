"""Per-request plumbing: request id, client address, security headers, one access log line per response."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Mapping

import structlog
from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.db import start_query_count
from app.metrics import DB_QUERIES_PER_REQUEST
from app.ops.alerts import record_response
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
    record_response(message["status"], path)  # alert:error_spike
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


def scope_cookie(scope: Scope, name: str) -> str | None:
    """A cookie's value read straight from the ASGI scope, for middleware that runs before any Request exists."""
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name and v:
                    return v
    return None


def add_cookie_header(scope: Scope, header_value: str) -> None:
    scope.setdefault("state", {}).setdefault("set_cookies", []).append(header_value)


# ---------------------------------------------------------------------------------------------
# HTTP method details Litestar leaves to us: HEAD on every GET route, a truthful Allow header.

_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def allowed_methods(routes: Iterable[object]) -> dict[str, str]:
    """The Allow header of every route path. Litestar's automatic OPTIONS answer lists only the methods of
    the first handler registered for a path (GET /login but not POST /login); HEAD is added wherever GET is,
    because `answer_head_and_allow` serves it."""
    methods: dict[str, set[str]] = {}
    for route in routes:
        if isinstance(route, HTTPRoute):
            methods.setdefault(route.path_format, set()).update(route.methods)
    return {path: _allow(found) for path, found in methods.items()}


def _allow(methods: Iterable[str]) -> str:
    methods = set(methods) | {"OPTIONS"}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def answer_head_and_allow(app: ASGIApp, allow_by_path: dict[str, str]) -> ASGIApp:
    """Wraps Litestar's handler (inside its before_send hooks). A HEAD request is served as the GET it
    stands for, minus the body (RFC 9110 9.3.2), so no route needs a HEAD handler of its own. Litestar
    routes before any middleware runs, which is why this sits outside the router rather than in the
    middleware list. Allow headers (OPTIONS answers, 405s) are made to list every method of the path."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        inner = {**scope, "method": "GET"} if head else scope  # the outer scope keeps HEAD for the access log

        async def send_fixed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                if "allow" in headers:
                    path = inner.get("path_template")
                    listed = allow_by_path.get(path) if scope["method"] == "OPTIONS" and path else None
                    headers["allow"] = listed or _allow(m.strip() for m in headers["allow"].split(","))
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await app(inner, receive, send_fixed)

    return wrapped


# ---------------------------------------------------------------------------------------------
# 415 for a body the route does not read

FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_ACCEPTED_BY_ENCODING = {
    RequestEncodingType.URL_ENCODED: FORM_MEDIA_TYPES,
    RequestEncodingType.MULTI_PART: ("multipart/form-data",),
    RequestEncodingType.JSON: ("application/json",),
}


def accepted_media_types(handler: HTTPRouteHandler) -> tuple[str, ...]:
    """What a handler reads from a body: its `data` parameter's encoding (JSON unless a Body() says
    otherwise), or, without one, a form: the CSRF token of a plain form post rides in its body."""
    if declared := handler.opt.get("accepts"):
        return tuple(declared)  # a handler that reads its raw body says what it reads (the Stripe webhook)
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return FORM_MEDIA_TYPES
    encoding = getattr(data.kwarg_definition, "media_type", None) or RequestEncodingType.JSON
    return _ACCEPTED_BY_ENCODING.get(encoding, (str(encoding),))


def _has_body(headers: Mapping[str, str]) -> bool:
    return headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers


def refuse_unsupported_media_type(request: Request) -> None:
    """Before the handler parses anything: a body of a kind the route does not read is a 415 with the
    kinds it does read, instead of a confusing 400 about fields that look missing."""
    if request.method in _BODYLESS_METHODS or not _has_body(request.headers):
        return
    accepted = accepted_media_types(request.route_handler)
    sent = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if sent not in accepted:
        raise HTTPException(
            status_code=415,
            detail=f"This address reads {' or '.join(accepted)} request bodies, not {sent or 'an unlabelled body'}.")
