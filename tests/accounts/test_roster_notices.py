"""The roster's notices appear once (issue 9, item 9): the invitation notice sits above the roster, never in
every member row, and the invitee's "You joined" notice shows on the page they land on and not again."""

import re

from app.accounts.tables import Membership
from tests.accounts.test_invitations import invite


async def test_it_shows_the_invitation_notice_once(client, personas):
    await client.login(personas.admin.email)
    response = await client.post("/admin/invitations", {"email": "ivy@example.test", "role": "learner"}, htmx=True)
    assert response.text.count("Invitation created for ivy@example.test") == 1
    assert len(re.findall(r'<tr id="member-', response.text)) == 3  # the rows are there, without it


async def test_it_shows_the_joined_notice_once(client, client_factory, personas):
    await client.login(personas.admin.email)
    link = await invite(client, "june@example.test", htmx=True)
    invitee = client_factory()
    accepted = await invitee.post(link, {"action": "create_account", "name": "June", "password": "a-long-password"})
    assert accepted.status_code == 303
    assert await Membership.count().where(Membership.tenant_id == personas.acme["id"]) == 4
    landing = await invitee.get(accepted.headers["location"])
    assert landing.text.count("You joined") == 1
    assert "You joined" not in (await invitee.get(accepted.headers["location"])).text
    roster = await client.get("/admin/members")
    assert "You joined" not in roster.text and roster.text.count('class="member-name">June</a>') == 1


async def test_the_role_select_asks_before_changing(client, personas):
    await client.login(personas.admin.email)
    roster = await client.get("/admin/members")
    row = roster.text[roster.text.index(f'id="member-{personas.learner.membership_id}"'):]
    assert 'data-confirm-role="Change the role of Lena to {role}?"' in row[:1500]
