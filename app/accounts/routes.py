"""Sign-in, sign-out, workspace switching, and the roster pages for admins."""

from __future__ import annotations

import uuid
from typing import Annotated

import structlog
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.accounts import services
from app.accounts.schemas import InvitationAnswer, InvitationCreate, LoginForm, RoleUpdate, TenantSwitchForm
from app.audit.actions import AuditAction
from app.audit.services import audit
from app.errors import Conflict, DomainError, Forbidden, InvalidInput, Throttled
from app.web import inputs
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
log = structlog.get_logger("coursewright.accounts")


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
async def login_page(request: Request, next: inputs.QueryLine(2000) = "") -> Response:
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
        "invitations": await services.list_open_invitations(user.tenant_id),
        "nav": "members",
        **extra,
    }


@get("/admin/members", guards=[requires_admin])
async def roster(request: Request) -> Response:
    return _roster_page(request, await _roster_context(request))


def _roster_page(request: Request, context: dict[str, object], status_code: int = 200) -> Response:
    return render(request, "admin/members.html", partial="admin/_roster.html", status_code=status_code, **context)


def _invitation_link(request: Request, token: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/invitations/{token}"


async def _show_new_link(request: Request, invitation: dict, token: str, verb: str) -> Response:
    # The link is shown once, in this response (only its hash is stored), and logged for the operator
    # until email delivery exists. The answer is the same whether or not the email has an account.
    link = _invitation_link(request, token)
    log.info("invitation_link", invitation_id=str(invitation["id"]), tenant_id=str(invitation["tenant_id"]),
             email=invitation["email"], role=invitation["role"], link=link)
    notice = f"Invitation {verb} for {invitation['email']} as {invitation['role']}. Send them this link:"
    return _roster_page(request, await _roster_context(request, roster_notice=notice, invitation_link=link,
                                                      link_expires=invitation["expires_at"]))


@post("/admin/invitations", guards=[requires_admin])
async def create_invitation(request: Request, data: Annotated[InvitationCreate, Form]) -> Response:
    user = current_user(request)
    try:
        invitation, token = await services.create_invitation(
            user.tenant_id, email=data.email, role=data.role, actor=actor_of(request), actor_role=user.role
        )
    except DomainError as exc:
        form = {"email": services.printable(data.email), "role": services.printable(data.role)}
        # htmx swaps only 2xx answers: the form comes back in place with its message and the typed
        # input; a plain form post gets the real status.
        return _roster_page(request, await _roster_context(request, form=form, form_error=exc.message),
                            status_code=200 if request.htmx else exc.status_code)
    return await _show_new_link(request, invitation, token, "created")


@post("/admin/invitations/{invitation_id:uuid}/resend", guards=[requires_admin])
async def resend_invitation(request: Request, invitation_id: uuid.UUID) -> Response:
    user = current_user(request)
    invitation, token = await services.resend_invitation(user.tenant_id, invitation_id, actor=actor_of(request),
                                                         actor_role=user.role)
    return await _show_new_link(request, invitation, token, "renewed")


@post("/admin/invitations/{invitation_id:uuid}/revoke", guards=[requires_admin])
async def revoke_invitation(request: Request, invitation_id: uuid.UUID) -> Response:
    user = current_user(request)
    invitation = await services.revoke_invitation(user.tenant_id, invitation_id, actor=actor_of(request))
    message = f"The invitation for {invitation['email']} was revoked; its link no longer works."
    if request.htmx:
        return _roster_page(request, await _roster_context(request, roster_notice=message))
    flash(request, "success", message)
    return redirect("/admin/members")


# ---------------------------------------------------------------------------------------------
# Accepting an invitation (anyone holding the link)


def _invitation_page(request: Request, invitation: dict, status_code: int = 200,
                     headers: dict[str, str] | None = None, **context: object) -> Response:
    user = current_user(request)
    member = user is not None and any(m.tenant_id == invitation["tenant_id"] for m in user.memberships)
    return render(request, "accounts/invitation.html", status_code=status_code, headers=headers,
                  invitation=invitation, already_member=member, **context)


@get("/invitations/{token:str}")
async def invitation_page(request: Request, token: str) -> Response:
    invitation = await services.find_invitation(token)
    if invitation["state"] != services.InvitationState.PENDING:
        return _invitation_page(request, invitation, status_code=410, ended=services.INVITATION_ENDED[
            services.InvitationState(invitation["state"])])
    return _invitation_page(request, invitation)


@post("/invitations/{token:str}")
async def answer_invitation(request: Request, token: str, data: Annotated[InvitationAnswer, Form]) -> Response:
    user, ip, rid = current_user(request), client_ip(request.scope), request_id(request.scope)
    try:
        accepted, user_id = await services.answer_invitation(
            token, data.action, signed_in=user.user_id if user else None, email=data.email,
            password=data.password, name=data.name, ip=ip, request_id=rid,
        )
    except (InvalidInput, Conflict, Forbidden, Throttled, services.InvitationEnded) as exc:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
        form = {"action": data.action, "email": services.printable(data.email),
                "name": services.printable(data.name)}  # kept as typed (minus control characters)
        return _invitation_page(request, await services.find_invitation(token), status_code=exc.status_code,
                                headers=headers, error=exc.message, form=form)
    await _sign_in_to(request, user_id, accepted["tenant_id"])
    flash(request, "success", f"You joined {accepted['tenant_name']} as {accepted['role']}.")
    return redirect(_home_for(request))


async def _sign_in_to(request: Request, user_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    """A fresh session for the account that accepted, opened in the workspace it just joined."""
    token = await services.start_session(user_id, ip=client_ip(request.scope),
                                         user_agent=request.headers.get("user-agent", ""),
                                         replaces=session_token(request), tenant_id=tenant_id)
    set_session_cookie(request.scope, token)
    request.scope["user"] = await services.load_session(token)  # the CSRF token follows the new session


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


ROUTES = [home, login_page, login, logout, switch_tenant, roster, create_invitation, resend_invitation,
          revoke_invitation, invitation_page, answer_invitation, member_detail, change_role, remove_member]
