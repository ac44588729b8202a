from app.accounts.tables import AuthSession, Membership, User
from app.audit.tables import AuditLog
from tests.conftest import make_member, make_tenant


async def _role(membership_id) -> str:
    row = await Membership.select(Membership.role).where(Membership.id == membership_id).first()
    return row["role"] if row else None


async def test_it_lists_the_members_of_the_current_workspace_only(client, personas):
    await client.login(personas.admin.email)
    page = await client.get("/admin/members")
    assert page.status_code == 200
    for persona in (personas.owner, personas.admin, personas.learner):
        assert persona.email in page.text
    assert personas.outsider.email not in page.text


async def test_it_forbids_admin_pages_to_a_learner(client, personas):
    await client.login(personas.learner.email)
    for path in ("/admin", "/admin/members", "/admin/audit", f"/admin/members/{personas.learner.membership_id}"):
        response = await client.get(path)
        assert response.status_code == 403, path
        assert "This page is for workspace admins." in response.text


async def test_it_sends_anonymous_visitors_to_the_login_page(client, personas):
    response = await client.get("/admin/members")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin/members"


async def test_it_adds_members_only_by_invitation(client, personas):
    # Direct adding by email (which showed another workspace's account) is gone: /admin/invitations.
    await client.login(personas.outsider.email)
    response = await client.post("/admin/members", {"email": personas.learner.email, "role": "learner"})
    assert response.status_code == 405
    assert await Membership.count().where(Membership.user_id == personas.learner.user_id) == 1
    page = await client.get("/admin/members")
    assert 'action="/admin/invitations"' in page.text and "Initial password" not in page.text


async def test_it_promotes_a_learner_and_audits_it(client, personas):
    await client.login(personas.admin.email)
    response = await client.post(f"/admin/members/{personas.learner.membership_id}/role", {"role": "admin"})
    assert response.status_code == 303
    assert await _role(personas.learner.membership_id) == "admin"
    entry = await AuditLog.select().where(
        (AuditLog.action == "ROLE_CHANGED") & (AuditLog.entity_id == str(personas.learner.membership_id))
    ).first()
    assert entry["actor_id"] == personas.admin.user_id
    assert entry["tenant_id"] == personas.acme["id"]
    assert '"from":"learner"' in entry["metadata"].replace(" ", "")


async def test_it_refuses_to_demote_the_last_admin(client, personas):
    tenant = await make_tenant("Solo")
    owner = await make_member(tenant, "owner", "sole")
    await make_member(tenant, "learner", "pupil")
    await client.login(owner.email)
    response = await client.post(f"/admin/members/{owner.membership_id}/role", {"role": "learner"})
    assert response.status_code == 409
    assert "last admin" in response.text
    assert await _role(owner.membership_id) == "owner"
    removal = await client.post(f"/admin/members/{owner.membership_id}/remove")
    assert removal.status_code == 409
    assert await Membership.count().where(Membership.id == owner.membership_id) == 1


async def test_it_lets_an_admin_step_down_when_another_admin_remains(client, personas):
    await client.login(personas.admin.email)
    response = await client.post(f"/admin/members/{personas.admin.membership_id}/role", {"role": "learner"})
    assert response.status_code == 303
    assert await _role(personas.admin.membership_id) == "learner"


async def test_it_reserves_the_owner_role_for_owners(client, personas):
    await client.login(personas.admin.email)
    roster = await client.get("/admin/members")
    assert '<option value="owner"' not in roster.text  # not offered to an admin...
    grant = await client.post(f"/admin/members/{personas.learner.membership_id}/role", {"role": "owner"})
    assert grant.status_code == 403
    demote_owner = await client.post(f"/admin/members/{personas.owner.membership_id}/role", {"role": "admin"})
    assert demote_owner.status_code == 403
    assert await _role(personas.learner.membership_id) == "learner"
    assert await _role(personas.owner.membership_id) == "owner"
    await client.login(personas.owner.email)
    assert '<option value="owner"' in (await client.get("/admin/members")).text  # ...but to an owner


async def test_it_removes_a_member(client, personas):
    await client.login(personas.admin.email)
    response = await client.post(f"/admin/members/{personas.learner.membership_id}/remove")
    assert response.status_code == 303
    assert await Membership.count().where(Membership.id == personas.learner.membership_id) == 0
    assert await User.count().where(User.id == personas.learner.user_id) == 1  # the account stays
    assert await AuditLog.count().where(
        (AuditLog.action == "MEMBERSHIP_REMOVED") & (AuditLog.entity_id == str(personas.learner.membership_id))
    ) == 1


async def test_it_answers_404_for_another_workspaces_member(client, personas):
    await client.login(personas.outsider.email)
    detail = await client.get(f"/admin/members/{personas.learner.membership_id}")
    assert detail.status_code == 404
    change = await client.post(f"/admin/members/{personas.learner.membership_id}/role", {"role": "admin"})
    assert change.status_code == 404
    remove = await client.post(f"/admin/members/{personas.learner.membership_id}/remove")
    assert remove.status_code == 404
    assert await _role(personas.learner.membership_id) == "learner"


async def test_it_warns_while_a_workspace_has_fewer_than_two_admins(client, personas):
    tenant = await make_tenant("Lonely")
    owner = await make_member(tenant, "owner", "lone")
    await client.login(owner.email)
    page = await client.get("/admin/members")
    assert "Only 1 admin in this workspace." in page.text
    second = await make_member(tenant, "learner", "second")
    promoted = await client.post(f"/admin/members/{second.membership_id}/role", {"role": "admin"})
    assert promoted.status_code == 303
    page = await client.get("/admin/members")
    assert "admin in this workspace" not in page.text
    # The Acme personas have an owner and an admin: no warning there.
    await client.login(personas.admin.email)
    assert "admin in this workspace" not in (await client.get("/admin")).text


async def test_it_switches_between_workspaces(client, personas):
    await make_member(personas.globex, "learner", "dual")  # noise: another Globex member
    both = await make_member(personas.globex, "learner", "both")
    await Membership.insert(Membership(tenant_id=personas.acme["id"], user_id=both.user_id, role="admin"))
    await client.login(both.email)
    home = await client.get("/")
    first_tenant = (await AuthSession.select(AuthSession.tenant_id).where(AuthSession.user_id == both.user_id).first())
    target = personas.acme if first_tenant["tenant_id"] == personas.globex["id"] else personas.globex
    response = await client.post("/tenants/switch", {"tenant_id": str(target["id"])})
    assert response.status_code == 303
    session = await AuthSession.select(AuthSession.tenant_id).where(AuthSession.user_id == both.user_id).first()
    assert session["tenant_id"] == target["id"]
    assert home.status_code == 303
    assert await AuditLog.count().where(
        (AuditLog.action == "TENANT_SWITCHED") & (AuditLog.actor_id == both.user_id)
    ) == 1


async def test_it_refuses_to_switch_into_a_workspace_you_do_not_belong_to(client, personas):
    await client.login(personas.learner.email)
    response = await client.post("/tenants/switch", {"tenant_id": str(personas.globex["id"])})
    assert response.status_code == 404
    bad = await client.post("/tenants/switch", {"tenant_id": "not-a-uuid"})
    assert bad.status_code == 400
    session = await AuthSession.select(AuthSession.tenant_id).where(
        AuthSession.user_id == personas.learner.user_id).first()
    assert session["tenant_id"] == personas.acme["id"]


async def test_it_keeps_one_admin_when_two_admins_demote_each_other_at_once(client_factory, personas):
    import asyncio

    tenant = await make_tenant("Duel")
    first, second = await make_member(tenant, "admin", "ann"), await make_member(tenant, "admin", "ben")
    a, b = client_factory(), client_factory()
    await a.login(first.email)
    await b.login(second.email)
    responses = await asyncio.gather(
        a.post(f"/admin/members/{second.membership_id}/role", {"role": "learner"}),
        b.post(f"/admin/members/{first.membership_id}/role", {"role": "learner"}),
    )
    assert sorted(r.status_code for r in responses) in ([303, 403], [303, 409])
    roles = [await _role(first.membership_id), await _role(second.membership_id)]
    assert sorted(roles) == ["admin", "learner"]
