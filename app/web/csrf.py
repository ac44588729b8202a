"""CSRF protection whose token is bound to the session, and therefore rotates at sign-in and sign-out.

Litestar's CSRF middleware is a plain double-submit cookie: any token that matches the `cw_csrf` cookie
passes, and the cookie outlives sign-in and sign-out, so a token learnt before login (or in another
session on a shared machine) stays good. Here the token is derived from what the request is bound to:

- **Signed in**: `HMAC(SECRET_KEY, "session|" + auth_session.id)`. `auth_session.id` is the SHA-256 of
  the session cookie, new at every sign-in (`start_session`), and gone at sign-out; so the token
  changes at login, dies at logout, and a token of one session is refused in every other session.
  Nothing is stored: the server recomputes the token from the session on every unsafe request, and
  the `cw_csrf` cookie is only a copy for clients (never trusted for a signed-in request).
- **Not signed in** (the login form, accepting an invitation): there is no session yet, so the
  binding is a pre-session random nonce carried in the `cw_csrf` cookie itself, signed
  (`nonce.HMAC(SECRET_KEY, "anonymous|" + nonce)`) so only this server can mint one; the submitted
  token must equal the cookie (double submit). After sign-out a fresh nonce is issued, so a token
  from before sign-in is not good again either.

The token travels as before: the `x-csrftoken` header (htmx, via `hx-headers` on <body>) or the
`_csrf_token` form field (`csrf_input` in templates), both read from Litestar's scope state, which is
set here. A refusal raises PermissionDeniedException("CSRF ..."), worded by app.web.errors.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from app.settings import get_settings
from app.web.requests import add_cookie_header, scope_cookie

COOKIE_NAME = "cw_csrf"
HEADER_NAME = "x-csrftoken"
FORM_FIELD = "_csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# The route option Litestar's own middleware honours; kept so a handler can opt out the same way
# (a webhook authenticated by its signature, say).
EXCLUDE_OPT_KEY = "exclude_from_csrf"


def _sign(message: str) -> str:
    return hmac.new(get_settings().secret_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def session_token(session_id: str) -> str:
    return _sign(f"session|{session_id}")


def new_anonymous_token() -> str:
    nonce = secrets.token_hex(16)
    return f"{nonce}.{_sign(f'anonymous|{nonce}')}"


def _is_anonymous_token(token: str | None) -> bool:
    nonce, _, signature = (token or "").partition(".")
    return bool(nonce) and hmac.compare_digest(signature, _sign(f"anonymous|{nonce}"))


def _session_id(scope: Scope) -> str | None:
    user = scope.get("user")
    return user.session_id if user is not None else None


def _header(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == HEADER_NAME.encode():
            return value.decode("latin-1")
    return None


def _token_for(scope: Scope, cookie: str | None) -> str:
    """The token that is valid for this request's binding right now."""
    session_id = _session_id(scope)
    if session_id is not None:
        return session_token(session_id)
    return cookie if _is_anonymous_token(cookie) else new_anonymous_token()


def _valid(scope: Scope, submitted: str | None, cookie: str | None) -> bool:
    if not submitted:
        return False
    session_id = _session_id(scope)
    if session_id is not None:
        return hmac.compare_digest(submitted, session_token(session_id))
    return _is_anonymous_token(submitted) and cookie is not None and hmac.compare_digest(submitted, cookie)


async def _submitted_token(scope: Scope, receive: Receive) -> str | None:
    header = _header(scope)
    if header:
        return header
    request = scope["litestar_app"].request_class(scope=scope, receive=receive)
    if request.content_type[0] not in (RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART):
        return None
    # Request.form() keeps the parsed body in the scope, so the handler reads it again without a
    # second receive (the same trick Litestar's own CSRF middleware relies on).
    value = (await request.form()).get(FORM_FIELD)
    return value if isinstance(value, str) else None


def verify_token(scope: Scope, submitted: str | None) -> None:
    """For a handler that opts out of the middleware but not out of CSRF: a body the middleware cannot read
    (the analytics beacon carries its token inside its JSON, since sendBeacon cannot set a header)."""
    if not _valid(scope, submitted or _header(scope), scope_cookie(scope, COOKIE_NAME)):
        raise PermissionDeniedException("CSRF token verification failed")


def _excluded(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return bool(handler is not None and handler.opt.get(EXCLUDE_OPT_KEY))


def csrf_middleware(app: ASGIApp) -> ASGIApp:
    """Must run after session_middleware: the binding is the session it loaded into scope["user"]."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/") or _excluded(scope):
            await app(scope, receive, send)
            return
        cookie = scope_cookie(scope, COOKIE_NAME)
        if scope["method"] not in SAFE_METHODS:
            submitted = await _submitted_token(scope, receive)
            if not _valid(scope, submitted, cookie):
                raise PermissionDeniedException("CSRF token verification failed")
        issued = ScopeState.from_scope(scope).csrf_token = _token_for(scope, cookie)
        await app(scope, receive, _send_current_token(scope, send, cookie, issued))

    return middleware


def _send_current_token(scope: Scope, send: Send, cookie: str | None, issued: str) -> Send:
    started_as = _session_id(scope)

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            # The handler may have signed someone in or out (scope["user"] changed): the token follows
            # the new binding, and a sign-out always gets a fresh pre-session nonce, never the old one.
            token = _token_for(scope, None) if _session_id(scope) != started_as else issued
            if token != cookie:
                _set_cookie(scope, token)
        await send(message)

    return wrapped


def _set_cookie(scope: Scope, token: str) -> None:
    settings = get_settings()
    cookie = Cookie(key=COOKIE_NAME, value=token, path="/", httponly=True, samesite="lax",
                    secure=settings.cookie_secure or scope.get("scheme") == "https")
    add_cookie_header(scope, cookie.to_header(header=""))

