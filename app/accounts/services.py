"""Accounts: tenants, users, memberships, login, server-side sessions and the admin roster.

This module is the only writer of its tables. Every function that takes a tenant id scopes its
queries by it, so a row of another tenant is simply "not found".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import secrets
import uuid
from enum import StrEnum
from typing import Any

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.accounts.tables import (
    ADMIN_ROLES,
    AuthSession,
    Invitation,
    LoginFailure,
    Membership,
    Role,
    Tenant,
    User,
)
from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.db import engine, fetch_row
from app.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, Throttled
from app.metrics import LOGINS
from app.settings import get_settings

_hasher = PasswordHasher()
# Verifying against this when the account does not exist keeps "unknown user" and "wrong password"
# equally slow, so response time does not reveal which emails have accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# C0/C1 control characters: never part of an email, a name or a password people type.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
MIN_PASSWORD_LENGTH = 8
INVALID_CREDENTIALS = "Invalid email or password."


# ---------------------------------------------------------------------------------------------
# Users and tenants


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if len(email) > 320 or _CONTROL_RE.search(email) or not _EMAIL_RE.match(email):
        raise InvalidInput("Enter a valid email address.")
    return email


def printable(raw: str) -> str:
    """`raw` without control characters: safe to show back in a form or store in a log line."""
    return _CONTROL_RE.sub("", raw)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > 1024:
        raise InvalidInput("Passwords can have at most 1024 characters.")
    if _CONTROL_RE.search(password):
        # authenticate() refuses these, so such a password could never be used to sign in.
        raise InvalidInput("Passwords cannot contain control characters.")
    return _hasher.hash(password)


async def create_tenant(name: str, slug: str, *, actor: Actor) -> dict[str, Any]:
    name, slug = name.strip(), slug.strip().lower()
    if not name:
        raise InvalidInput("A workspace needs a name.")
    if not _SLUG_RE.match(slug):
        raise InvalidInput("Workspace slugs use lowercase letters, digits and dashes.")
    if await Tenant.exists().where(Tenant.slug == slug):
        raise Conflict(f"A workspace with the slug {slug!r} already exists.")
    tenant = (await Tenant.insert(Tenant(name=name, slug=slug)).returning(*Tenant.all_columns()))[0]
    await audit(AuditAction.TENANT_CREATED, actor=actor, tenant_id=tenant["id"], entity_type="tenant",
                entity_id=tenant["id"], metadata={"slug": slug})
    return tenant


async def create_user(email: str, name: str, password: str, *, actor: Actor, tenant_id: uuid.UUID | None) -> dict:
    email = normalize_email(email)
    name = name.strip()
    if not name:
        raise InvalidInput("Enter the person's name.")
    if len(name) > 200:
        raise InvalidInput(f"Names can have at most 200 characters; this one has {len(name):,}.")
    if _CONTROL_RE.search(name):
        raise InvalidInput("Names cannot contain control characters (such as a NUL byte).")
    if await User.exists().where(User.email == email):
        raise Conflict(f"An account for {email} already exists.")
    user = (
        await User.insert(User(email=email, name=name, password_hash=hash_password(password))).returning(
            User.id, User.email, User.name
        )
    )[0]
    await audit(AuditAction.USER_CREATED, actor=actor, tenant_id=tenant_id, entity_type="user",
                entity_id=user["id"], metadata={"email": email})
    return user


async def add_membership(tenant_id: uuid.UUID, user_id: uuid.UUID, role: str, *, actor: Actor) -> dict:
    role = _parse_role(role)
    if await Membership.exists().where((Membership.tenant_id == tenant_id) & (Membership.user_id == user_id)):
        raise Conflict("This person is already a member of the workspace.")
    membership = (
        await Membership.insert(Membership(tenant_id=tenant_id, user_id=user_id, role=role)).returning(Membership.id)
    )[0]
    await audit(AuditAction.MEMBERSHIP_CREATED, actor=actor, tenant_id=tenant_id, entity_type="membership",
                entity_id=membership["id"], metadata={"user_id": str(user_id), "role": role})
    return membership


def _parse_role(role: str) -> str:
    try:
        return Role(role.strip().lower()).value
    except ValueError:
        raise InvalidInput(f"Unknown role {role!r}; choose learner, admin or owner.") from None


# ---------------------------------------------------------------------------------------------
# Login and throttling


async def authenticate(email_raw: str, password: str, *, ip: str, request_id: str = "") -> dict[str, Any]:
    """Return the user for these credentials, or raise InvalidInput (same message for every failure)
    or Throttled (too many recent failures for this account from this address, for the account, or
    for the address)."""
    # A control character (a NUL, say) can be part of no email or password we store: such an attempt is
    # a failure like any other (it counts for throttling), and is stored without the characters,
    # because PostgreSQL refuses a NUL in text.
    malformed = bool(_CONTROL_RE.search(email_raw) or _CONTROL_RE.search(password)) or len(password) > 1024
    email = _CONTROL_RE.sub("", email_raw).strip().lower()[:320]
    pair_failures = await _check_throttle(email, ip)
    await asyncio.sleep(login_delay(pair_failures))
    user = None
    if email and not malformed:
        user = await User.select().where(User.email == email).first()
    # Always run argon2, against a dummy hash when there is no usable account: an unknown email then
    # takes as long as a wrong password, so response time does not tell which emails have accounts.
    usable = user is not None and user["is_active"] and not malformed
    password_ok = _verify(user["password_hash"] if usable else None, password)
    if not (usable and password_ok):
        await LoginFailure.insert(LoginFailure(email=email, ip=ip[:64]))
        LOGINS.labels(outcome="failure").inc()
        await audit(AuditAction.USER_LOGIN_FAILED, actor=Actor(None, email or None, ip, request_id),
                    tenant_id=None, entity_type="user", entity_id=user["id"] if user else "")
        raise InvalidInput(INVALID_CREDENTIALS)
    if _hasher.check_needs_rehash(user["password_hash"]):
        await User.update({User.password_hash: _hasher.hash(password)}).where(User.id == user["id"])
    await User.update({User.last_login_at: dt.datetime.now(dt.UTC)}).where(User.id == user["id"])
    LOGINS.labels(outcome="success").inc()
    return user


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def login_delay(pair_failures: int) -> float:
    """Seconds to wait before checking a password from a pair (account, address) that has been failing:
    nothing for the first few typos, then doubling up to a cap. Only the failing pair waits; the
    account's owner signing in from elsewhere does not."""
    settings = get_settings()
    over = pair_failures - settings.login_delay_free_failures
    if over <= 0 or settings.login_delay_base_ms == 0:
        return 0.0
    return min(settings.login_delay_base_ms * 2 ** min(over - 1, 30), settings.login_delay_max_ms) / 1000


async def _check_throttle(email: str, ip: str) -> int:
    """Raise Throttled when the pair, the account or the address is over its limit; else return how many
    recent failures the pair has (for the delay). See README: the pair limit is the tight one."""
    settings = get_settings()
    window = dt.timedelta(seconds=settings.login_window_seconds)
    since = dt.datetime.now(dt.UTC) - window
    pair_failures = 0
    for label, where, limit in (
        ("pair", (LoginFailure.email == email) & (LoginFailure.ip == ip), settings.login_max_failures_per_pair),
        ("account", LoginFailure.email == email, settings.login_max_failures_per_account),
        ("ip", LoginFailure.ip == ip, settings.login_max_failures_per_ip),
    ):
        # The newest `limit` failures inside the window: the key is throttled when there are `limit` of
        # them, and free again once the oldest of those leaves the window.
        recent = await (
            LoginFailure.select(LoginFailure.created_at)
            .where(where & (LoginFailure.created_at > since))
            .order_by(LoginFailure.created_at, ascending=False)
            .limit(limit)
        )
        if label == "pair":
            pair_failures = len(recent)
        if len(recent) >= limit:
            retry_after = (recent[-1]["created_at"] + window - dt.datetime.now(dt.UTC)).total_seconds()
            LOGINS.labels(outcome="throttled").inc()
            raise Throttled("Too many failed sign-in attempts. Try again in a few minutes.",
                            retry_after=max(1, int(retry_after) + 1))
    return pair_failures


async def purge_login_failures(older_than: dt.timedelta) -> int:
    rows = await LoginFailure.delete().where(LoginFailure.created_at < dt.datetime.now(dt.UTC) - older_than).returning(
        LoginFailure.id
    )
    return len(rows)


# ---------------------------------------------------------------------------------------------
# Server-side sessions


class MembershipSummary(msgspec.Struct, frozen=True):
    tenant_id: uuid.UUID
    name: str
    role: str


class SessionUser(msgspec.Struct, frozen=True, kw_only=True):
    """Who is signed in, in which workspace, with what role: loaded once per request in one query."""

    session_id: str
    user_id: uuid.UUID
    email: str
    name: str
    tenant_id: uuid.UUID | None
    tenant_name: str | None
    role: str | None
    admin_count: int
    memberships: list[MembershipSummary]
    refreshed: bool = False  # expiry was just extended: the cookie's Max-Age should follow

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER.value

    @property
    def assignable_roles(self) -> list[str]:
        """Roles this user may grant; mirrors the owner rule enforced in change_role/create_invitation."""
        return [r.value for r in Role if self.is_owner or r is not Role.OWNER]

    def can_manage(self, member_role: str) -> bool:
        return self.is_owner or member_role != Role.OWNER.value

    def actor(self, ip: str = "", request_id: str = "") -> Actor:
        return Actor(self.user_id, self.email, ip, request_id)


SESSION_SQL = """
SELECT s.id AS session_id, s.user_id, s.tenant_id, s.last_seen_at, u.email, u.name, u.is_active,
       m.role, t.name AS tenant_name,
       (SELECT count(*) FROM membership a WHERE a.tenant_id = s.tenant_id AND a.role IN ('admin', 'owner'))
           AS admin_count,
       (SELECT coalesce(json_agg(json_build_object('tenant_id', t2.id, 'name', t2.name, 'role', m2.role)
                                 ORDER BY t2.name), '[]')
          FROM membership m2 JOIN tenant t2 ON t2.id = m2.tenant_id WHERE m2.user_id = s.user_id) AS memberships
FROM auth_session s
JOIN app_user u ON u.id = s.user_id
LEFT JOIN membership m ON m.user_id = s.user_id AND m.tenant_id = s.tenant_id
LEFT JOIN tenant t ON t.id = s.tenant_id AND m.id IS NOT NULL
WHERE s.id = $1 AND s.expires_at > now()
"""
# Sliding expiry is refreshed at most this often, so reading a page is not a write on every request.
SESSION_TOUCH_INTERVAL = dt.timedelta(minutes=10)


def _session_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(
    user_id: uuid.UUID, *, ip: str, user_agent: str, replaces: str | None = None, tenant_id: uuid.UUID | None = None
) -> str:
    """Create a new session and return its cookie token. `replaces` (the old cookie) is deleted: a
    login always gets a fresh session id, so a planted pre-login id is worthless (session fixation).
    The session opens in `tenant_id` when given (a workspace just joined), else the oldest membership."""
    if replaces:
        await end_session(replaces)
    first = {"tenant_id": tenant_id} if tenant_id else (
        await Membership.select(Membership.tenant_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at)
        .first()
    )
    token = secrets.token_urlsafe(32)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=get_settings().session_ttl_hours)
    await AuthSession.insert(
        AuthSession(id=_session_key(token), user_id=user_id, tenant_id=first["tenant_id"] if first else None,
                    expires_at=expires, ip=ip[:64], user_agent=user_agent[:300])
    )
    return token


async def load_session(token: str) -> SessionUser | None:
    row = await fetch_row(SESSION_SQL, _session_key(token))
    if row is None or not row["is_active"]:
        return None
    memberships = msgspec.json.decode(row["memberships"], type=list[MembershipSummary])
    if row["role"] is None and memberships:
        # The current workspace membership was removed: fall back to another workspace.
        await AuthSession.update({AuthSession.tenant_id: memberships[0].tenant_id}).where(
            AuthSession.id == row["session_id"]
        )
        return await load_session(token)
    refreshed = dt.datetime.now(dt.UTC) - row["last_seen_at"] > SESSION_TOUCH_INTERVAL
    if refreshed:
        ttl = dt.timedelta(hours=get_settings().session_ttl_hours)
        await AuthSession.update(
            {AuthSession.last_seen_at: dt.datetime.now(dt.UTC), AuthSession.expires_at: dt.datetime.now(dt.UTC) + ttl}
        ).where(AuthSession.id == row["session_id"])
    return SessionUser(
        session_id=row["session_id"],
        user_id=row["user_id"],
        email=row["email"],
        name=row["name"],
        tenant_id=row["tenant_id"] if row["role"] else None,
        tenant_name=row["tenant_name"],
        role=row["role"],
        admin_count=row["admin_count"] if row["role"] else 0,
        memberships=memberships,
        refreshed=refreshed,
    )


async def end_session(token: str) -> None:
    await AuthSession.delete().where(AuthSession.id == _session_key(token))


async def switch_tenant(session: SessionUser, tenant_id: uuid.UUID, *, actor: Actor) -> None:
    if not any(m.tenant_id == tenant_id for m in session.memberships):
        raise NotFound("You are not a member of that workspace.")
    await AuthSession.update({AuthSession.tenant_id: tenant_id}).where(AuthSession.id == session.session_id)
    await audit(AuditAction.TENANT_SWITCHED, actor=actor, tenant_id=tenant_id, entity_type="tenant",
                entity_id=tenant_id, metadata={"from": str(session.tenant_id) if session.tenant_id else None})


async def purge_expired_sessions() -> int:
    rows = await AuthSession.delete().where(AuthSession.expires_at < dt.datetime.now(dt.UTC)).returning(AuthSession.id)
    return len(rows)


# ---------------------------------------------------------------------------------------------
# Roster


def _member_columns() -> tuple:
    return (
        Membership.id,
        Membership.role,
        Membership.created_at,
        Membership.user_id.id.as_alias("user_id"),
        Membership.user_id.email.as_alias("email"),
        Membership.user_id.name.as_alias("name"),
        Membership.user_id.last_login_at.as_alias("last_login_at"),
    )


async def list_members(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    return await (
        Membership.select(*_member_columns())
        .where(Membership.tenant_id == tenant_id)
        .order_by(Membership.user_id.name)
    )


async def get_membership(tenant_id: uuid.UUID, membership_id: uuid.UUID) -> dict[str, Any]:
    """Fetch-with-permission: the membership only if it belongs to this tenant, else 404."""
    row = (
        await Membership.select(*_member_columns())
        .where((Membership.id == membership_id) & (Membership.tenant_id == tenant_id))
        .first()
    )
    if row is None:
        raise NotFound("No such member in this workspace.")
    return row


# ---------------------------------------------------------------------------------------------
# Invitations (README: Invitation). Nothing here tells the inviting admin whether an account exists
# for the email: creating an invitation reads no user row at all.


class InvitationState(StrEnum):
    PENDING = "pending"
    EXPIRED = "expired"
    ACCEPTED = "accepted"
    REVOKED = "revoked"


def _invitation_state(row: dict[str, Any]) -> InvitationState:
    if row["revoked_at"] is not None:
        return InvitationState.REVOKED
    if row["accepted_at"] is not None:
        return InvitationState.ACCEPTED
    if row["expires_at"] <= dt.datetime.now(dt.UTC):
        return InvitationState.EXPIRED
    return InvitationState.PENDING


def _with_state(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "state": _invitation_state(row).value}


async def create_invitation(
    tenant_id: uuid.UUID, *, email: str, role: str, actor: Actor, actor_role: str
) -> tuple[dict[str, Any], str]:
    """A new pending invitation and the token of its link (shown once; only its hash is stored)."""
    role = _parse_role(role)
    if role == Role.OWNER.value and actor_role != Role.OWNER.value:
        raise Forbidden("Only an owner can invite someone as an owner.")
    email = normalize_email(email)
    # Only this workspace's own members are looked up (the admin sees them on the roster anyway); an
    # account elsewhere is never consulted, so the answer cannot reveal it.
    if await Membership.exists().where((Membership.tenant_id == tenant_id) & (Membership.user_id.email == email)):
        raise Conflict(f"{email} is already a member of this workspace.")
    token = secrets.token_urlsafe(32)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=get_settings().invitation_ttl_hours)
    row = (
        await Invitation.insert(
            Invitation(tenant_id=tenant_id, email=email, role=role, token_hash=_token_hash(token),
                       invited_by=actor.user_id, expires_at=expires)
        ).returning(*Invitation.all_columns())
    )[0]
    await audit(AuditAction.INVITATION_CREATED, actor=actor, tenant_id=tenant_id, entity_type="invitation",
                entity_id=row["id"], metadata={"email": email, "role": role, "expires_at": expires.isoformat()})
    return _with_state(row), token


async def list_open_invitations(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Pending and expired invitations (the roster offers Revoke and Re-send); ended ones live in the audit log."""
    rows = await (
        Invitation.select(*Invitation.all_columns())
        .where((Invitation.tenant_id == tenant_id) & Invitation.accepted_at.is_null() & Invitation.revoked_at.is_null())
        .order_by(Invitation.created_at, ascending=False)
    )
    return [_with_state(row) for row in rows]


async def get_invitation(tenant_id: uuid.UUID, invitation_id: uuid.UUID) -> dict[str, Any]:
    """Fetch-with-permission: the invitation only if it belongs to this tenant, else 404."""
    row = await Invitation.select(*Invitation.all_columns()).where(
        (Invitation.id == invitation_id) & (Invitation.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound("No such invitation in this workspace.")
    return _with_state(row)


async def revoke_invitation(tenant_id: uuid.UUID, invitation_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    invitation = await get_invitation(tenant_id, invitation_id)
    changed = await Invitation.update({Invitation.revoked_at: dt.datetime.now(dt.UTC)}).where(
        (Invitation.id == invitation_id) & (Invitation.tenant_id == tenant_id)
        & Invitation.accepted_at.is_null() & Invitation.revoked_at.is_null()
    ).returning(Invitation.id)
    if len(changed) != 1:
        raise Conflict(f"This invitation was already {(await get_invitation(tenant_id, invitation_id))['state']}.")
    await audit(AuditAction.INVITATION_REVOKED, actor=actor, tenant_id=tenant_id, entity_type="invitation",
                entity_id=invitation_id, metadata={"email": invitation["email"], "role": invitation["role"]})
    return invitation


async def resend_invitation(
    tenant_id: uuid.UUID, invitation_id: uuid.UUID, *, actor: Actor, actor_role: str
) -> tuple[dict[str, Any], str]:
    """A new link for the same email and role; the old link stops working (revoked)."""
    old = await get_invitation(tenant_id, invitation_id)
    if old["role"] == Role.OWNER.value and actor_role != Role.OWNER.value:
        raise Forbidden("Only an owner can invite someone as an owner.")
    await revoke_invitation(tenant_id, invitation_id, actor=actor)
    return await create_invitation(tenant_id, email=old["email"], role=old["role"], actor=actor,
                                   actor_role=actor_role)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


INVITATION_ENDED = {
    InvitationState.EXPIRED: "This invitation has expired. Ask the person who invited you for a new link.",
    InvitationState.ACCEPTED: "This invitation has already been used. Each link works once.",
    InvitationState.REVOKED: "This invitation was withdrawn by the workspace's admins.",
}


def _ended_message(invitation: dict[str, Any]) -> str:
    return INVITATION_ENDED.get(InvitationState(invitation["state"]), INVITATION_ENDED[InvitationState.ACCEPTED])


class InvitationEnded(DomainError):
    """The link was valid once but is no longer (410 Gone), with the reason in words."""

    status_code = 410


async def find_invitation(token: str) -> dict[str, Any]:
    """The invitation behind a link, with its workspace's name, whatever its state; 404 when unknown."""
    if not token or len(token) > 200:
        raise NotFound("This invitation link is not valid. Check that you copied all of it.")
    row = await Invitation.select(
        *Invitation.all_columns(), Invitation.tenant_id.name.as_alias("tenant_name")
    ).where(Invitation.token_hash == _token_hash(token)).first()
    if row is None:
        raise NotFound("This invitation link is not valid. Check that you copied all of it.")
    return _with_state(row)


async def accept_invitation(token: str, user_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    """Join the invitation's workspace as `user_id` (whoever holds the link and signs in: README).

    Single use: the compare-and-set on `accepted_at IS NULL` lets exactly one of two racing accepts
    through; the membership is inserted in the same transaction, so a refused insert un-uses the link.
    """
    invitation = await find_invitation(token)
    if invitation["state"] != InvitationState.PENDING:
        raise InvitationEnded(_ended_message(invitation))
    tenant_id = invitation["tenant_id"]
    if await Membership.exists().where((Membership.tenant_id == tenant_id) & (Membership.user_id == user_id)):
        raise Conflict(f"You are already a member of {invitation['tenant_name']}.")
    now = dt.datetime.now(dt.UTC)
    async with engine().transaction():
        used = await Invitation.update({Invitation.accepted_at: now, Invitation.accepted_by: user_id}).where(
            (Invitation.id == invitation["id"]) & Invitation.accepted_at.is_null()
            & Invitation.revoked_at.is_null() & (Invitation.expires_at > now)
        ).returning(Invitation.id)
        if len(used) != 1:
            # Lost a race since we looked: another accept, a revoke, or the clock ended it.
            raise InvitationEnded(_ended_message(await find_invitation(token)))
        membership = (
            await Membership.insert(Membership(tenant_id=tenant_id, user_id=user_id, role=invitation["role"]))
            .returning(Membership.id)
        )[0]
    await audit(AuditAction.INVITATION_ACCEPTED, actor=actor, tenant_id=tenant_id, entity_type="invitation",
                entity_id=invitation["id"], metadata={"email": invitation["email"], "role": invitation["role"],
                                                      "user_id": str(user_id)})
    await audit(AuditAction.MEMBERSHIP_CREATED, actor=actor, tenant_id=tenant_id, entity_type="membership",
                entity_id=membership["id"], metadata={"user_id": str(user_id), "role": invitation["role"],
                                                      "invitation_id": str(invitation["id"])})
    return {**invitation, "membership_id": membership["id"]}


class InvitationAction(StrEnum):
    ACCEPT = "accept"  # signed in already: join with this account
    SIGN_IN = "sign_in"  # an existing account: email and password
    CREATE_ACCOUNT = "create_account"  # a new account for the invited email: name and password


async def answer_invitation(
    token: str, action: str, *, signed_in: uuid.UUID | None, email: str, password: str, name: str,
    ip: str, request_id: str,
) -> tuple[dict[str, Any], uuid.UUID]:
    """Accept with the account the person chose; returns the accepted invitation and that account's id."""
    invitation = await find_invitation(token)
    if invitation["state"] != InvitationState.PENDING:
        raise InvitationEnded(_ended_message(invitation))
    if action == InvitationAction.ACCEPT and signed_in is not None:
        user_id = signed_in
    elif action == InvitationAction.SIGN_IN:
        # The ordinary sign-in: same answers, same throttling, same timing as /login.
        user_id = (await authenticate(email, password, ip=ip, request_id=request_id))["id"]
    elif action == InvitationAction.CREATE_ACCOUNT:
        if await User.exists().where(User.email == invitation["email"]):
            # Told to the holder of the link (the invitee), never to the inviting admin.
            raise Conflict(f"An account for {invitation['email']} already exists: sign in with it instead.")
        actor = Actor(None, invitation["email"], ip, request_id)
        user_id = (await create_user(invitation["email"], name, password, actor=actor,
                                     tenant_id=invitation["tenant_id"]))["id"]
    else:
        raise InvalidInput("Choose whether to sign in or to create an account.")
    email_of = await User.select(User.email).where(User.id == user_id).first()
    accepted = await accept_invitation(token, user_id, actor=Actor(user_id, email_of["email"], ip, request_id))
    return accepted, user_id


async def change_role(
    tenant_id: uuid.UUID, membership_id: uuid.UUID, new_role: str, *, actor: Actor, actor_role: str
) -> dict[str, Any]:
    new_role = _parse_role(new_role)
    async with engine().transaction():
        member = await _lock_member(tenant_id, membership_id)
        old_role = member["role"]
        if old_role == new_role:
            return member
        if Role.OWNER.value in (old_role, new_role) and actor_role != Role.OWNER.value:
            raise Forbidden("Only an owner can grant or remove the owner role.")
        if old_role in ADMIN_ROLES and new_role not in ADMIN_ROLES:
            await _refuse_last_admin(tenant_id, "demote")
        changed = await Membership.update({Membership.role: new_role}).where(
            (Membership.id == membership_id) & (Membership.role == old_role)
        ).returning(Membership.id)
        if len(changed) != 1:
            raise Conflict("This member's role changed meanwhile; reload and try again.")
    await audit(AuditAction.ROLE_CHANGED, actor=actor, tenant_id=tenant_id, entity_type="membership",
                entity_id=membership_id, metadata={"email": member["email"], "from": old_role, "to": new_role})
    return await get_membership(tenant_id, membership_id)


async def remove_member(tenant_id: uuid.UUID, membership_id: uuid.UUID, *, actor: Actor, actor_role: str) -> None:
    async with engine().transaction():
        member = await _lock_member(tenant_id, membership_id)
        if member["role"] == Role.OWNER.value and actor_role != Role.OWNER.value:
            raise Forbidden("Only an owner can remove an owner.")
        if member["role"] in ADMIN_ROLES:
            await _refuse_last_admin(tenant_id, "remove")
        await Membership.delete().where((Membership.id == membership_id) & (Membership.tenant_id == tenant_id))
    await audit(AuditAction.MEMBERSHIP_REMOVED, actor=actor, tenant_id=tenant_id, entity_type="membership",
                entity_id=membership_id, metadata={"email": member["email"], "role": member["role"]})


async def _lock_member(tenant_id: uuid.UUID, membership_id: uuid.UUID) -> dict[str, Any]:
    # Locking the tenant row serialises concurrent role changes in one workspace, so two admins
    # demoting each other at the same moment cannot both pass the last-admin check.
    await Tenant.raw("SELECT id FROM tenant WHERE id = {} FOR UPDATE", tenant_id)
    return await get_membership(tenant_id, membership_id)


async def _refuse_last_admin(tenant_id: uuid.UUID, verb: str) -> None:
    if await admin_count(tenant_id) <= 1:
        raise Conflict(
            f"You cannot {verb} the last admin of this workspace: promote someone else to admin first."
        )


async def admin_count(tenant_id: uuid.UUID) -> int:
    return await Membership.count().where(
        (Membership.tenant_id == tenant_id) & Membership.role.is_in(sorted(ADMIN_ROLES))
    )
