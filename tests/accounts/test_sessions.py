"""Server-side sessions after sign-in: sliding expiry (the row and the cookie are extended when a session
is used again after the touch interval), expired sessions refused and their cookie dropped, the hourly
purge of expired sessions and old login failures, and a session whose workspace membership was removed.

Ages are set by moving the session row's timestamps back, as time passing would leave them.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from app.accounts.services import SESSION_TOUCH_INTERVAL
from app.accounts.tables import AuthSession, LoginFailure, Membership
from app.settings import get_settings
from tasks.housekeeping import purge_expired_sessions
from tests.conftest import get_with_cookie, make_member

TTL = dt.timedelta(hours=get_settings().session_ttl_hours)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _session(token: str) -> dict | None:
    return await AuthSession.select().where(AuthSession.id == _key(token)).first()


async def _age(token: str, *, last_seen: dt.timedelta, expires_in: dt.timedelta) -> None:
    await AuthSession.update({AuthSession.last_seen_at: _now() - last_seen,
                              AuthSession.expires_at: _now() + expires_in}).where(AuthSession.id == _key(token))


def _session_cookie(response) -> str | None:
    return next((h for h in response.headers.get_list("set-cookie") if h.startswith("cw_session=")), None)


async def test_it_extends_a_session_used_again_after_the_touch_interval(client, personas, live_server):
    await client.login(personas.admin.email)
    token = client.session_cookie
    # Most of its lifetime is gone: an hour left, last seen just over the touch interval ago.
    await _age(token, last_seen=SESSION_TOUCH_INTERVAL + dt.timedelta(minutes=1), expires_in=dt.timedelta(hours=1))
    before = _now()
    page = await get_with_cookie(live_server.url, "/admin", token)
    assert page.status_code == 200
    row = await _session(token)
    assert before - dt.timedelta(seconds=5) <= row["last_seen_at"] <= _now()
    assert before + TTL - dt.timedelta(seconds=5) <= row["expires_at"] <= _now() + TTL
    # The cookie is set again with the same token and the full lifetime, so the browser keeps it as long.
    cookie = _session_cookie(page)
    assert cookie is not None and cookie.startswith(f"cw_session={token};")
    assert f"Max-Age={int(TTL.total_seconds())}" in cookie and "HttpOnly" in cookie


async def test_it_does_not_write_a_session_used_again_within_the_touch_interval(client, personas, live_server):
    await client.login(personas.admin.email)
    token = client.session_cookie
    await _age(token, last_seen=dt.timedelta(minutes=2), expires_in=dt.timedelta(hours=1))
    aged = await _session(token)
    page = await get_with_cookie(live_server.url, "/admin", token)
    assert page.status_code == 200 and _session_cookie(page) is None
    row = await _session(token)
    assert (row["last_seen_at"], row["expires_at"]) == (aged["last_seen_at"], aged["expires_at"])


async def test_it_refuses_an_expired_session_and_drops_its_cookie(client, personas, live_server):
    await client.login(personas.learner.email)
    token = client.session_cookie
    await _age(token, last_seen=dt.timedelta(hours=2), expires_in=-dt.timedelta(seconds=1))
    page = await get_with_cookie(live_server.url, "/learn", token)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    cookie = _session_cookie(page)
    assert cookie is not None and cookie.split(";")[0] in ("cw_session=", "cw_session=\"\"") and "Max-Age=0" in cookie
    # Refusing it is not a refresh: the row keeps its past expiry until the purge removes it.
    assert (await _session(token))["expires_at"] < _now()


async def test_the_purge_deletes_expired_sessions_and_old_login_failures_only(client, client_factory, personas):
    await client.login(personas.admin.email)
    expired = client.session_cookie
    other = client_factory()
    await other.login(personas.learner.email)
    alive = other.session_cookie
    await _age(expired, last_seen=dt.timedelta(days=15), expires_in=-dt.timedelta(minutes=1))
    old = (await LoginFailure.insert(LoginFailure(email="old@example.test", ip="10.0.0.1"))
           .returning(LoginFailure.id))[0]["id"]
    await LoginFailure.update({LoginFailure.created_at: _now() - dt.timedelta(days=2)}).where(LoginFailure.id == old)
    recent = (await LoginFailure.insert(LoginFailure(email="recent@example.test", ip="10.0.0.1"))
              .returning(LoginFailure.id))[0]["id"]

    summary = await purge_expired_sessions({})

    assert summary["sessions_deleted"] >= 1 and summary["login_failures_deleted"] >= 1
    assert await _session(expired) is None
    assert await _session(alive) is not None
    assert not await LoginFailure.exists().where(LoginFailure.id == old)
    assert await LoginFailure.exists().where(LoginFailure.id == recent)
    assert await AuthSession.count().where(AuthSession.expires_at < _now()) == 0
    again = await purge_expired_sessions({})
    assert again == {"sessions_deleted": 0, "login_failures_deleted": 0}


async def test_it_moves_a_session_to_another_workspace_when_its_membership_is_removed(client, personas, live_server):
    # Adam administers Acme and is also a learner at Globex; Acme removes him while he is signed in.
    await Membership.insert(Membership(tenant_id=personas.globex["id"], user_id=personas.admin.user_id,
                                       role="learner"))
    await client.login(personas.admin.email)
    token = client.session_cookie
    assert (await _session(token))["tenant_id"] == personas.acme["id"]
    await Membership.delete().where(Membership.id == personas.admin.membership_id)

    admin_page = await get_with_cookie(live_server.url, "/admin", token)
    assert admin_page.status_code == 403
    assert (await _session(token))["tenant_id"] == personas.globex["id"]
    home = await get_with_cookie(live_server.url, "/learn", token)
    assert home.status_code == 200 and personas.globex["name"] in home.text


async def test_a_session_without_any_membership_left_sees_no_workspace(client, personas, live_server):
    lone = await make_member(personas.acme, "learner", "lou")
    await client.login(lone.email)
    token = client.session_cookie
    await Membership.delete().where(Membership.id == lone.membership_id)
    home = await get_with_cookie(live_server.url, "/learn", token)
    assert home.status_code == 200 and personas.acme["name"] not in home.text
    # The session still belongs to him, but it no longer opens Acme's pages.
    assert (await get_with_cookie(live_server.url, "/admin", token)).status_code == 403
