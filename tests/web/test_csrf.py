from app.accounts.tables import Membership
from tests.conftest import PASSWORD, csrf_from


async def test_it_refuses_a_form_post_without_a_csrf_token(client, personas):
    await client.get("/login")
    response = await client.post("/login", {"email": personas.admin.email, "password": PASSWORD}, csrf=False)
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert "CSRF" in response.text
    assert client.session_cookie is None


async def test_it_refuses_a_form_post_with_a_wrong_csrf_token(client, personas):
    await client.get("/login")
    response = await client.post("/login", {"email": personas.admin.email, "password": PASSWORD,
                                             "_csrf_token": "forged"}, csrf=False)
    assert response.status_code == 403
    assert client.session_cookie is None


async def test_it_refuses_an_htmx_post_without_the_csrf_header(client, personas):
    await client.login(personas.admin.email)
    response = await client.post(f"/admin/members/{personas.learner.membership_id}/role", {"role": "admin"},
                                 htmx=True, csrf=False)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")  # escaped text, shown as a toast by app.js
    membership = await Membership.select(Membership.role).where(Membership.id == personas.learner.membership_id).first()
    assert membership["role"] == "learner"


async def test_it_refuses_an_htmx_post_with_a_wrong_csrf_header(client, personas):
    await client.login(personas.admin.email)
    response = await client.post(f"/admin/members/{personas.learner.membership_id}/role", {"role": "admin"},
                                 htmx=True, csrf=False, headers={"x-csrftoken": "forged"})
    assert response.status_code == 403


async def test_it_accepts_an_htmx_post_with_the_csrf_header(client, personas):
    await client.login(personas.admin.email)
    response = await client.post(f"/admin/members/{personas.learner.membership_id}/role", {"role": "admin"},
                                 htmx=True)
    assert response.status_code == 200
    assert f'id="member-{personas.learner.membership_id}"' in response.text
    membership = await Membership.select(Membership.role).where(Membership.id == personas.learner.membership_id).first()
    assert membership["role"] == "admin"


async def _set_role(client, membership_id, role: str, token: str):
    return await client.post(f"/admin/members/{membership_id}/role", {"role": role}, htmx=True, csrf=False,
                             headers={"x-csrftoken": token})


async def _role(membership_id) -> str:
    row = await Membership.select(Membership.role).where(Membership.id == membership_id).first()
    return row["role"]


async def test_it_refuses_a_token_from_another_session(client_factory, personas):
    alice, bob = client_factory(), client_factory()
    await alice.login(personas.admin.email)
    await bob.login(personas.owner.email)
    assert alice.csrf and bob.csrf and alice.csrf != bob.csrf
    response = await _set_role(bob, personas.learner.membership_id, "admin", alice.csrf)
    assert response.status_code == 403
    assert await _role(personas.learner.membership_id) == "learner"
    # Even the same person's other session has its own token.
    again = client_factory()
    await again.login(personas.admin.email)
    assert again.csrf != alice.csrf
    response = await _set_role(again, personas.learner.membership_id, "admin", alice.csrf)
    assert response.status_code == 403
    assert await _role(personas.learner.membership_id) == "learner"


async def test_it_rotates_the_token_at_login(client, personas):
    page = await client.get("/login")
    before = client.csrf
    assert before and csrf_from(page.text) == before
    await client.login(personas.admin.email)
    after = client.csrf
    assert after and after != before
    refused = await _set_role(client, personas.learner.membership_id, "admin", before)
    assert refused.status_code == 403
    assert await _role(personas.learner.membership_id) == "learner"
    # The pages of the new session carry the new token, and it works.
    roster = await client.get("/admin/members")
    assert csrf_from(roster.text) == after
    accepted = await _set_role(client, personas.learner.membership_id, "admin", after)
    assert accepted.status_code == 200
    assert await _role(personas.learner.membership_id) == "admin"


async def test_it_rotates_the_token_at_logout(client, personas):
    await client.login(personas.admin.email)
    signed_in = client.csrf
    response = await client.post("/logout")
    assert response.status_code == 303
    signed_out = client.csrf
    assert signed_out and signed_out != signed_in
    # The signed-in token is worthless now, even for the login form...
    refused = await client.post("/login", {"email": personas.admin.email, "password": PASSWORD,
                                           "_csrf_token": signed_in}, csrf=False)
    assert refused.status_code == 403
    assert client.session_cookie is None
    # ...and the fresh pre-session token works.
    await client.login(personas.admin.email)


async def test_it_refuses_a_valid_looking_pre_session_token_that_is_not_the_cookie(client_factory, personas):
    mallory, victim = client_factory(), client_factory()
    await mallory.get("/login")
    await victim.get("/login")
    response = await victim.post("/login", {"email": personas.admin.email, "password": PASSWORD,
                                            "_csrf_token": mallory.csrf}, csrf=False)
    assert response.status_code == 403
    assert victim.session_cookie is None
