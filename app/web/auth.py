"""Session cookie -> signed-in user, guards for pages, and the maintenance gate."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from app.accounts.services import SessionUser, load_session
from app.audit.services import Actor
from app.settings import get_settings
from app.web.requests import add_cookie_header, client_ip, request_id, scope_cookie

SESSION_COOKIE = "cw_session"
# Paths that stay reachable in maintenance mode, so admins can still sign in and work.
MAINTENANCE_EXEMPT = ("/login", "/logout", "/admin", "/tenants/", "/health/", "/metrics", "/static/")


def session_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        scope["user"] = None
        if scope["type"] == "http" and not scope["path"].startswith("/static/"):
            token = scope_cookie(scope, SESSION_COOKIE)
            if token:
                scope["user"] = await load_session(token)
                if scope["user"] is None:
                    clear_session_cookie(scope)  # expired or revoked: drop the stale cookie
                elif scope["user"].refreshed:
                    set_session_cookie(scope, token)  # sliding expiry: the cookie lives as long as the row
        await app(scope, receive, send)

    return middleware


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> SessionUser | None:
    return connection.scope.get("user")


def session_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    return connection.cookies.get(SESSION_COOKIE)


def actor_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    user = current_user(connection)
    ip, rid = client_ip(connection.scope), request_id(connection.scope)
    return user.actor(ip, rid) if user else Actor(None, None, ip, rid)


def _secure(scope: Scope) -> bool:
    return get_settings().cookie_secure or scope.get("scheme") == "https"


def set_session_cookie(scope: Scope, token: str) -> None:
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=token,
        max_age=get_settings().session_ttl_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=_secure(scope),
        path="/",
    )
    add_cookie_header(scope, cookie.to_header(header=""))


def clear_session_cookie(scope: Scope) -> None:
    cookie = Cookie(key=SESSION_COOKIE, value="", max_age=0, httponly=True, samesite="lax", secure=_secure(scope))
    add_cookie_header(scope, cookie.to_header(header=""))


def requires_login(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if current_user(connection) is None:
        raise NotAuthorizedException("Sign in to continue.")


def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    user = current_user(connection)
    if user is None:
        raise NotAuthorizedException("Sign in to continue.")
    if not user.is_admin:
        raise PermissionDeniedException("This page is for workspace admins.")


class MaintenanceModeError(HTTPException):
    status_code = 503
    detail = "Coursewright is down for maintenance. Please try again soon."


async def maintenance_gate(request: Any) -> None:
    """before_request hook (P5): learner traffic gets a 503 page; admins keep working."""
    if not get_settings().maintenance_mode or request.url.path.startswith(MAINTENANCE_EXEMPT):
        return
    user = current_user(request)
    if user is not None and user.is_admin:
        return
    raise MaintenanceModeError(headers={"Retry-After": "300"})
