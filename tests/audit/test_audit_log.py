import uuid

import asyncpg
import pytest
from prometheus_client import REGISTRY

from app.audit.actions import AuditAction
from app.audit.services import SYSTEM, audit
from app.audit.tables import AuditLog
from tests.conftest import DATABASE_URL


async def test_it_writes_an_audit_row_for_a_login(client, personas):
    await client.login(personas.admin.email)
    row = await AuditLog.select().where(
        (AuditLog.action == "USER_LOGIN") & (AuditLog.actor_id == personas.admin.user_id)
    ).first()
    assert row is not None
    assert row["tenant_id"] == personas.acme["id"]
    assert row["actor_email"] == personas.admin.email
    assert row["ip"] == "127.0.0.1"
    assert row["request_id"]


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET action = 'TAMPERED' WHERE id = $1",
    "DELETE FROM audit_log WHERE id = $1",
])
async def test_it_refuses_raw_sql_that_changes_audit_rows(personas, statement):
    row = await AuditLog.select(AuditLog.id).where(AuditLog.tenant_id == personas.acme["id"]).first()
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        with pytest.raises(asyncpg.PostgresError, match="audit_log is insert-only"):
            await conn.execute(statement, row["id"])
        with pytest.raises(asyncpg.PostgresError, match="audit_log is insert-only"):
            await conn.execute("TRUNCATE audit_log")
    finally:
        await conn.close()
    assert await AuditLog.count().where(AuditLog.id == row["id"]) == 1


async def test_it_never_raises_when_an_audit_write_fails():
    failures_before = REGISTRY.get_sample_value("coursewright_audit_write_failures_total") or 0
    # A value the JSON encoder cannot handle makes the write fail; the caller must not notice.
    written = await audit(AuditAction.USER_CREATED, actor=SYSTEM, tenant_id=None, metadata={"bad": object()})
    assert written is False
    assert REGISTRY.get_sample_value("coursewright_audit_write_failures_total") == failures_before + 1


async def test_it_filters_the_audit_log_by_action_and_actor(client, personas):
    await client.login(personas.admin.email)
    await client.post(f"/admin/members/{personas.learner.membership_id}/role", {"role": "admin"})
    page = await client.get("/admin/audit", params={"action": "ROLE_CHANGED"})
    assert page.status_code == 200
    assert '<span class="badge action" title="ROLE_CHANGED">Role changed</span>' in page.text
    assert 'title="USER_LOGIN">Signed in</span>' not in page.text
    by_actor = await client.get("/admin/audit", params={"actor": personas.owner.email})
    assert "No audit entries match these filters." in by_actor.text


async def test_it_paginates_with_htmx_partials(client, personas):
    for i in range(30):
        await audit(AuditAction.JOB_REQUESTED, actor=SYSTEM, tenant_id=personas.acme["id"],
                    entity_type="background_job", entity_id=f"job-{i}")
    await client.login(personas.admin.email)
    first = await client.get("/admin/audit", params={"entity_type": "background_job"})
    assert "Older →" in first.text
    partial = await client.get("/admin/audit", params={"entity_type": "background_job", "page": 2},
                               headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert partial.text.lstrip().startswith("<div id=\"audit-table\">")
    assert "<html" not in partial.text
    assert "job-4" in partial.text and "job-29" not in partial.text
    assert "← Newer" in partial.text


async def test_it_rejects_malformed_filters_with_a_readable_message(client, personas):
    await client.login(personas.admin.email)
    bad_date = await client.get("/admin/audit", params={"date_from": "yesterday"})
    assert bad_date.status_code == 400 and "must be a date" in bad_date.text
    bad_action = await client.get("/admin/audit", params={"action": "DROP_TABLES"})
    assert bad_action.status_code == 400 and "Unknown action" in bad_action.text
    bad_page = await client.get("/admin/audit", params={"page": "two"})
    assert bad_page.status_code == 400
    assert "<h1>That request did not make sense</h1>" in bad_page.text and "page" in bad_page.text


async def test_it_shows_one_entry_of_the_own_workspace_and_hides_others(client, personas):
    await client.login(personas.admin.email)
    own = await AuditLog.select(AuditLog.id).where(AuditLog.tenant_id == personas.acme["id"]).first()
    assert (await client.get(f"/admin/audit/{own['id']}")).status_code == 200
    await audit(AuditAction.USER_LOGIN, actor=SYSTEM, tenant_id=personas.globex["id"], entity_id=str(uuid.uuid4()))
    foreign = await AuditLog.select(AuditLog.id).where(AuditLog.tenant_id == personas.globex["id"]).first()
    response = await client.get(f"/admin/audit/{foreign['id']}")
    assert response.status_code == 404
    listing = await client.get("/admin/audit", params={"entity_type": "tenant"})
    assert str(personas.globex["id"]) not in listing.text
