"""Sign-in, sign-out, workspace switching, and the roster pages for admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.accounts import services
from app.accounts.schemas import LoginForm, MemberInvite, RoleUpdate, TenantSwitchForm
from app.audit.actions import AuditAction
from app.audit.services import audit
from app.errors import DomainError, InvalidInput, Throttled
from app.web.auth import (
    actor_of,
    clear_session_cookie,
    current_user,
    requires_admin,
    requires_login,
    session_token,
    set_session_cookie,
)
from app.web.requests import client_ip, request_id
from app.web.templating import flash, redirect, render

Form = Body(media_type=RequestEncodingType.URL_ENCODED)


def _home_for(request: Request) -> str:
    user = current_user(request)
    if user is None:
        return "/login"
    return "/admin" if user.is_admin else "/learn"


def _safe_next(target: str) -> str | None:
    # Only local paths: "//evil.example" or "https://..." would make login an open redirect.
    # A control character would end up in the Location header.
    local = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if local and services.printable(target) == target else None


@get("/", sync_to_thread=False)
def home(request: Request) -> Response:
    return redirect(_home_for(request))


@get("/login")
async def login_page(request: Request, next: str = "") -> Response:
    if current_user(request) is not None:
        return redirect(_safe_next(next) or _home_for(request))
    return render(request, "accounts/login.html", next=_safe_next(next) or "", email="", error=None)


@post("/login")
async def login(request: Request, data: Annotated[LoginForm, Form]) -> Response:
    ip = client_ip(request.scope)
    try:
        user = await services.authenticate(data.email, data.password, ip=ip, request_id=request_id(request.scope))
    except (InvalidInput, Throttled) as exc:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
        return render(request, "accounts/login.html", status_code=exc.status_code, headers=headers,
                      next=_safe_next(data.next) or "", email=services.printable(data.email)[:320],
                      error=exc.message)
    token = await services.start_session(
        user["id"], ip=ip, user_agent=request.headers.get("user-agent", ""), replaces=session_token(request)
    )
    set_session_cookie(request.scope, token)
    session = await services.load_session(token)
    await audit(AuditAction.USER_LOGIN, actor=session.actor(ip, request_id(request.scope)), tenant_id=session.tenant_id,
                entity_type="user", entity_id=user["id"])
    request.scope["user"] = session
    return redirect(_safe_next(data.next) or _home_for(request))


@post("/logout")
async def logout(request: Request) -> Response:
    user, token = current_user(request), session_token(request)
    if token:
        await services.end_session(token)
    clear_session_cookie(request.scope)
    if user is not None:
        await audit(AuditAction.USER_LOGOUT, actor=actor_of(request), tenant_id=user.tenant_id,
                    entity_type="user", entity_id=user.user_id)
    request.scope["user"] = None  # the CSRF token follows: a fresh pre-session token (app/web/csrf.py)
    flash(request, "info", "You have been signed out.")
    return redirect("/login")


@post("/tenants/switch", guards=[requires_login])
async def switch_tenant(request: Request, data: Annotated[TenantSwitchForm, Form]) -> Response:
    try:
        tenant_id = uuid.UUID(data.tenant_id)
    except ValueError:
        raise InvalidInput("Choose a workspace from the list.") from None
    user = current_user(request)
    await services.switch_tenant(user, tenant_id, actor=actor_of(request))
    name = next(m.name for m in user.memberships if m.tenant_id == tenant_id)
    flash(request, "success", f"Switched to {name}.")
    request.scope["user"] = await services.load_session(session_token(request))
    return redirect(_home_for(request))


# ---------------------------------------------------------------------------------------------
# Roster (admins)


async def _roster_context(request: Request, **extra: object) -> dict[str, object]:
    user = current_user(request)
    return {
        "members": await services.list_members(user.tenant_id),
        "nav": "members",
        **extra,
    }


@get("/admin/members", guards=[requires_admin])
async def roster(request: Request) -> Response:
    return render(request, "admin/members.html", partial="admin/_roster.html", **await _roster_context(request))


@post("/admin/members", guards=[requires_admin])
async def invite_member(request: Request, data: Annotated[MemberInvite, Form]) -> Response:
    user = current_user(request)
    try:
        member = await services.invite_member(
            user.tenant_id, email=data.email, name=data.name, role=data.role, password=data.password,
            actor=actor_of(request), actor_role=user.role,
        )
    except DomainError as exc:
        # Re-show the form with what was typed (minus the password) and the reason.
        return render(request, "admin/members.html", partial="admin/_roster.html", status_code=exc.status_code,
                      **await _roster_context(request, form=data, form_error=exc.message))
    message = f"{member['name']} ({member['email']}) joined as {member['role']}."
    if request.htmx:
        return render(request, "admin/members.html", partial="admin/_roster.html",
                      **await _roster_context(request, notice=message))
    flash(request, "success", message)
    return redirect("/admin/members")


@get("/admin/members/{membership_id:uuid}", guards=[requires_admin])
async def member_detail(request: Request, membership_id: uuid.UUID) -> Response:
    member = await services.get_membership(current_user(request).tenant_id, membership_id)
    return render(request, "admin/member.html", member=member, nav="members")


@post("/admin/members/{membership_id:uuid}/role", guards=[requires_admin])
async def change_role(request: Request, membership_id: uuid.UUID, data: Annotated[RoleUpdate, Form]) -> Response:
    user = current_user(request)
    member = await services.change_role(user.tenant_id, membership_id, data.role, actor=actor_of(request),
                                        actor_role=user.role)
    if request.htmx:
        admins = await services.admin_count(user.tenant_id)
        return render(request, "admin/_member_row.html", member=member, admin_count=admins, oob_warning=True,
                      notice=f"{member['name']} is now {member['role']}.")
    flash(request, "success", f"{member['name']} is now {member['role']}.")
    return redirect("/admin/members")


@post("/admin/members/{membership_id:uuid}/remove", guards=[requires_admin])
async def remove_member(request: Request, membership_id: uuid.UUID) -> Response:
    user = current_user(request)
    member = await services.get_membership(user.tenant_id, membership_id)
    await services.remove_member(user.tenant_id, membership_id, actor=actor_of(request), actor_role=user.role)
    flash(request, "success", f"{member['name']} was removed from the workspace.")
    return redirect("/admin/members")


ROUTES = [home, login_page, login, logout, switch_tenant, roster, invite_member, member_detail, change_role,
          remove_member]
