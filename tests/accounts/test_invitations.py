"""Invitations (issue 8, finding 2b): an admin gets a single-use, expiring, revocable link; nothing about an
existing account reaches the inviting admin before the person accepts."""

import datetime as dt
import re

from app.accounts.tables import AuthSession, Invitation, Membership, User
from app.audit.tables import AuditLog
from tests.conftest import PASSWORD, Client, make_member, make_tenant

LINK = re.compile(r"(https?://[^/\s<]+)?(/invitations/[A-Za-z0-9_-]{20,})")


async def invite(client: Client, email: str, role: str = "learner", **kwargs) -> str:
    response = await client.post("/admin/invitations", {"email": email, "role": role}, **kwargs)
    assert response.status_code == 200, response.text[:500]
    return LINK.search(response.text).group(2)


async def _invitation(email: str) -> dict:
    return await Invitation.select().where(Invitation.email == email).order_by(Invitation.created_at,
                                                                              ascending=False).first()


def _shape(html: str, *secrets: str) -> str:
    """The page with what must differ between two invitations (link, email, times, ids) blanked out."""
    for secret in secrets:
        html = html.replace(secret, "…")
    html = LINK.sub("LINK", html)
    html = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "TIME", html)
    html = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", html)
    html = re.sub(r'(name="_csrf_token" value=")[^"]+', r"\1", html)
    return re.sub(r"request <code>[^<]+", "request", html)


async def test_it_shows_a_link_and_the_same_answer_for_existing_and_unknown_emails(client_factory, personas):
    # Two workspaces alike in every way, one inviting an existing account, the other an unknown email:
    # the two answers must be the same page but for the emails, names, link, times and ids.
    answers = []
    for email in (personas.outsider.email, "nobody-yet@example.test"):
        tenant = await make_tenant("Twin")
        owner = await make_member(tenant, "owner", "twin")
        admin = client_factory()
        await admin.login(owner.email)
        response = await admin.post("/admin/invitations", {"email": email, "role": "learner"}, htmx=True)
        assert response.status_code == 200 and LINK.search(response.text)
        answers.append(_shape(response.text, email, owner.email, tenant["name"]))
    assert answers[0] == answers[1]
    existing = await Invitation.select().where(Invitation.email == personas.outsider.email).first()
    assert existing is not None
    # Nothing about the outsider's account, and no membership for them.
    assert "Oscar" not in answers[0]
    assert await Membership.count().where(Membership.user_id == personas.outsider.user_id) == 1
    assert existing["role"] == "learner" and existing["accepted_at"] is None
    assert existing["expires_at"] - existing["created_at"] > dt.timedelta(days=6, hours=23)
    assert len(existing["token_hash"]) == 64  # only a hash of the token
    assert await AuditLog.count().where(
        (AuditLog.action == "INVITATION_CREATED") & (AuditLog.entity_id == str(existing["id"]))
    ) == 1


async def test_it_lists_a_pending_invitation_with_its_link_shown_once(client, personas):
    await client.login(personas.admin.email)
    response = await client.post("/admin/invitations", {"email": personas.outsider.email, "role": "learner"})
    token = LINK.search(response.text).group(2).rsplit("/", 1)[1]
    row = await _invitation(personas.outsider.email)
    assert row["tenant_id"] == personas.acme["id"] and row["invited_by"] == personas.admin.user_id
    assert token not in str(row.values())
    roster = await client.get("/admin/members")
    assert personas.outsider.email in roster.text and "Oscar" not in roster.text
    assert f"/admin/invitations/{row['id']}/revoke" in roster.text and token not in roster.text


async def test_it_never_shows_the_outsiders_name_or_last_sign_in_before_acceptance(client, personas):
    await User.update({User.name: "Oscar Confidential"}).where(User.id == personas.outsider.user_id)
    await client.login(personas.outsider.email)  # the outsider has a last sign-in to leak
    await client.login(personas.admin.email)
    for page in (await client.post("/admin/invitations", {"email": personas.outsider.email, "role": "admin"}),
                 await client.get("/admin/members")):
        assert "Oscar Confidential" not in page.text


async def test_it_refuses_bad_invitations_with_a_readable_message_and_keeps_the_input(client, personas):
    await client.login(personas.admin.email)
    before = await Invitation.count()
    bad_email = await client.post("/admin/invitations", {"email": "not-an-email", "role": "learner"})
    assert bad_email.status_code == 400 and "Enter a valid email address." in bad_email.text
    assert 'value="not-an-email"' in bad_email.text
    nul = await client.post("/admin/invitations", {"email": "a\x00b@example.test", "role": "learner"})
    assert nul.status_code == 400 and "Enter a valid email address." in nul.text
    huge = await client.post("/admin/invitations", {"email": "x" * 100_000 + "@example.test", "role": "learner"})
    assert huge.status_code == 400 and "Enter a valid email address." in huge.text
    unknown_role = await client.post("/admin/invitations", {"email": "role@example.test", "role": "superuser"})
    assert unknown_role.status_code == 400 and "Unknown role" in unknown_role.text
    owner = await client.post("/admin/invitations", {"email": "boss@example.test", "role": "owner"})
    assert owner.status_code == 403 and "Only an owner can invite someone as an owner." in owner.text
    member = await client.post("/admin/invitations", {"email": personas.learner.email, "role": "learner"})
    assert member.status_code == 409 and "already a member of this workspace" in member.text
    # Over htmx the roster comes back in place (htmx swaps only 2xx) with the message and the input.
    inline = await client.post("/admin/invitations", {"email": "bad@", "role": "learner"}, htmx=True)
    assert inline.status_code == 200 and inline.text.startswith('<div id="roster">')
    assert "Enter a valid email address." in inline.text and 'value="bad@"' in inline.text
    assert await Invitation.count() == before


async def test_it_lets_an_owner_invite_an_owner(client, personas):
    await client.login(personas.owner.email)
    await invite(client, "co-owner@example.test", "owner")
    assert (await _invitation("co-owner@example.test"))["role"] == "owner"


async def test_it_accepts_as_a_new_account(client, client_factory, personas):
    await client.login(personas.admin.email)
    link = await invite(client, "New.Person@Example.test", "admin")
    newcomer = client_factory()
    page = await newcomer.get(link)
    assert page.status_code == 200
    assert personas.acme["name"] in page.text and "new.person@example.test" in page.text
    response = await newcomer.post(link, {"action": "create_account", "name": "New Person",
                                          "password": "a-long-password"})
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    user = await User.select().where(User.email == "new.person@example.test").first()
    assert user["name"] == "New Person"
    membership = await Membership.select().where(Membership.user_id == user["id"]).first()
    assert membership["tenant_id"] == personas.acme["id"] and membership["role"] == "admin"
    row = await _invitation("new.person@example.test")
    assert row["accepted_by"] == user["id"] and row["accepted_at"] is not None
    session = await AuthSession.select().where(AuthSession.user_id == user["id"]).first()
    assert session["tenant_id"] == personas.acme["id"]
    assert personas.acme["name"] in (await newcomer.get("/admin")).text
    actions = [r["action"] for r in await AuditLog.select(AuditLog.action).where(
        AuditLog.tenant_id == personas.acme["id"]).order_by(AuditLog.id)]
    assert actions[-3:] == ["USER_CREATED", "INVITATION_ACCEPTED", "MEMBERSHIP_CREATED"]
    # The invitation left the roster's list; the member is on it now, with the details of a member.
    roster = await client.get("/admin/members")
    assert "New Person" in roster.text and "Revoke" not in roster.text


async def test_it_accepts_with_an_existing_account_of_another_workspace(client, client_factory, personas):
    await client.login(personas.admin.email)
    link = await invite(client, personas.outsider.email)
    outsider = client_factory()
    wrong = await outsider.post(link, {"action": "sign_in", "email": personas.outsider.email, "password": "nope-nope"})
    assert wrong.status_code == 400 and "Invalid email or password." in wrong.text
    assert (await _invitation(personas.outsider.email))["accepted_at"] is None
    response = await outsider.post(link, {"action": "sign_in", "email": personas.outsider.email,
                                          "password": PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/learn"
    rows = await Membership.select(Membership.tenant_id, Membership.role).where(
        Membership.user_id == personas.outsider.user_id)
    assert {(r["tenant_id"], r["role"]) for r in rows} == {(personas.globex["id"], "admin"),
                                                           (personas.acme["id"], "learner")}
    assert (await _invitation(personas.outsider.email))["accepted_by"] == personas.outsider.user_id
    # Now a member: the admin may see their member page.
    membership = next(r for r in await Membership.select().where(Membership.user_id == personas.outsider.user_id)
                      if r["tenant_id"] == personas.acme["id"])
    assert (await client.get(f"/admin/members/{membership['id']}")).status_code == 200


async def test_it_accepts_for_the_signed_in_account(client, client_factory, personas):
    await client.login(personas.admin.email)
    link = await invite(client, "anything@example.test")
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    page = await outsider.get(link)
    assert personas.outsider.email in page.text and 'value="accept"' in page.text
    response = await outsider.post(link, {"action": "accept"})
    assert response.status_code == 303
    assert await Membership.count().where(
        (Membership.user_id == personas.outsider.user_id) & (Membership.tenant_id == personas.acme["id"])) == 1


async def test_it_accepts_only_once(client, client_factory, personas):
    await client.login(personas.admin.email)
    link = await invite(client, "once@example.test")
    first = client_factory()
    assert (await first.post(link, {"action": "create_account", "name": "Once", "password": "a-long-password"})
            ).status_code == 303
    second = client_factory()
    await second.login(personas.outsider.email)
    again = await second.post(link, {"action": "accept"})
    assert again.status_code == 410 and "already been used" in again.text
    assert await Membership.count().where(Membership.user_id == personas.outsider.user_id) == 1
    page = await client_factory().get(link)
    assert page.status_code == 410 and "already been used" in page.text


async def test_it_refuses_an_expired_invitation_and_re_sends_it(client, client_factory, personas):
    await client.login(personas.admin.email)
    link = await invite(client, "late@example.test")
    old = await _invitation("late@example.test")
    await Invitation.update({Invitation.expires_at: dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)}).where(
        Invitation.id == old["id"])
    visitor = client_factory()
    page = await visitor.get(link)
    assert page.status_code == 410 and "This invitation has expired." in page.text
    refused = await visitor.post(link, {"action": "create_account", "name": "Late", "password": "a-long-password"})
    assert refused.status_code == 410
    assert await User.count().where(User.email == "late@example.test") == 0
    roster = await client.get("/admin/members")
    assert "expired" in roster.text and f"/admin/invitations/{old['id']}/resend" in roster.text
    resent = await client.post(f"/admin/invitations/{old['id']}/resend", htmx=True)
    assert resent.status_code == 200
    new_link = LINK.search(resent.text).group(2)
    assert new_link != link
    assert (await Invitation.select().where(Invitation.id == old["id"]).first())["revoked_at"] is not None
    fresh = await _invitation("late@example.test")
    assert fresh["id"] != old["id"] and fresh["expires_at"] > dt.datetime.now(dt.UTC)
    accepted = await visitor.post(new_link, {"action": "create_account", "name": "Late", "password": "a-long-password"})
    assert accepted.status_code == 303


async def test_it_refuses_a_revoked_invitation(client, client_factory, personas):
    await client.login(personas.admin.email)
    link = await invite(client, "revoked@example.test")
    row = await _invitation("revoked@example.test")
    response = await client.post(f"/admin/invitations/{row['id']}/revoke")
    assert response.status_code == 303
    assert (await Invitation.select().where(Invitation.id == row["id"]).first())["revoked_at"] is not None
    assert await AuditLog.count().where(
        (AuditLog.action == "INVITATION_REVOKED") & (AuditLog.entity_id == str(row["id"]))) == 1
    visitor = client_factory()
    page = await visitor.get(link)
    assert page.status_code == 410 and "withdrawn" in page.text
    refused = await visitor.post(link, {"action": "create_account", "name": "Rev", "password": "a-long-password"})
    assert refused.status_code == 410
    assert await User.count().where(User.email == "revoked@example.test") == 0
    twice = await client.post(f"/admin/invitations/{row['id']}/revoke")
    assert twice.status_code == 409


async def test_it_answers_404_to_another_workspace_and_to_learners(client, personas):
    await client.login(personas.admin.email)
    await invite(client, "mine@example.test")
    row = await _invitation("mine@example.test")
    await client.login(personas.outsider.email)
    for action in ("revoke", "resend"):
        response = await client.post(f"/admin/invitations/{row['id']}/{action}")
        assert response.status_code == 404, action
    await client.login(personas.learner.email)
    assert (await client.post(f"/admin/invitations/{row['id']}/revoke")).status_code == 403
    assert (await client.post("/admin/invitations", {"email": "x@example.test", "role": "admin"})).status_code == 403
    after = await Invitation.select().where(Invitation.id == row["id"]).first()
    assert after["revoked_at"] is None
    assert await Invitation.count().where(Invitation.tenant_id == personas.acme["id"]) == 1


async def test_it_answers_404_for_an_unknown_or_mangled_link(client_factory, personas):
    visitor = client_factory()
    for token in ("not-a-real-token-at-all-0000000000", "a%00b", "x" * 5000):
        response = await visitor.get(f"/invitations/{token}")
        assert response.status_code in (400, 404), token
    posted = await visitor.post("/invitations/not-a-real-token-at-all-0000000000",
                                {"action": "create_account", "name": "X", "password": "a-long-password"})
    assert posted.status_code == 404


async def test_it_tells_a_member_they_already_belong(client, client_factory, personas):
    await client.login(personas.admin.email)
    link = await invite(client, "someone@example.test")
    learner = client_factory()
    await learner.login(personas.learner.email)
    page = await learner.get(link)
    assert "You are already a member of" in page.text
    response = await learner.post(link, {"action": "accept"})
    assert response.status_code == 409 and "already a member" in response.text
    assert (await _invitation("someone@example.test"))["accepted_at"] is None  # still usable by its invitee


async def test_it_refuses_a_bad_new_account_and_keeps_the_input(client, client_factory, personas):
    await client.login(personas.admin.email)
    link = await invite(client, "careful@example.test")
    visitor = client_factory()
    huge = await visitor.post(link, {"action": "create_account", "name": "N" * 100_000, "password": "a-long-password"})
    assert huge.status_code == 400 and "Names can have at most 200 characters" in huge.text
    assert "N" * 100_000 in huge.text  # the input is kept
    nul = await visitor.post(link, {"action": "create_account", "name": "Ni\x00na", "password": "a-long-password"})
    assert nul.status_code == 400 and "control characters" in nul.text
    short = await visitor.post(link, {"action": "create_account", "name": "Nina", "password": "short"})
    assert short.status_code == 400 and "at least 8 characters" in short.text and 'value="Nina"' in short.text
    taken = await client_factory().post(await invite(client, personas.outsider.email),
                                        {"action": "create_account", "name": "Imposter", "password": "a-long-password"})
    assert taken.status_code == 409 and "sign in with it instead" in taken.text
    assert await User.count().where(User.email == "careful@example.test") == 0
    assert (await User.select(User.name).where(User.id == personas.outsider.user_id).first())["name"] == "Oscar"
    assert (await _invitation("careful@example.test"))["accepted_at"] is None


async def test_it_counts_a_failed_sign_in_on_the_invitation_page_for_throttling(client, client_factory, personas):
    await client.login(personas.admin.email)
    link = await invite(client, personas.outsider.email)
    visitor = client_factory()
    for _ in range(10):
        await visitor.post(link, {"action": "sign_in", "email": personas.outsider.email, "password": "wrong-one"})
    blocked = await visitor.post(link, {"action": "sign_in", "email": personas.outsider.email, "password": PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert await Membership.count().where(Membership.user_id == personas.outsider.user_id) == 1


async def test_it_keeps_the_cli_path_of_creating_members_directly(personas):
    member = await make_member(personas.acme, "learner", "direct")
    assert await Membership.count().where(Membership.id == member.membership_id) == 1
