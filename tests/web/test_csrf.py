from app.accounts.tables import Membership
from tests.conftest import PASSWORD


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
