"""Approved means frozen, enforced by PostgreSQL triggers whatever the code path (raw SQL here)."""

import asyncpg
import pytest

from app.authoring.tables import ContentItem, Syllabus
from tests.authoring.helpers import draft_syllabus, generated_content
from tests.conftest import DATABASE_URL


async def _sql(statement: str, *args) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(statement, *args)
    finally:
        await conn.close()


@pytest.mark.parametrize("statement", [
    "UPDATE syllabus SET content = '{}'::jsonb WHERE id = $1",
    "UPDATE syllabus SET status = 'SUPERSEDED' WHERE id = $1",
    "UPDATE syllabus SET approval_note = 'edited later' WHERE id = $1",
    "DELETE FROM syllabus WHERE id = $1",
])
async def test_it_freezes_an_approved_syllabus(client, personas, statement):
    await client.login(personas.admin.email)
    syllabus = await draft_syllabus(client)
    await client.post(f"/admin/syllabi/{syllabus['id']}/approve", {"note": ""})
    with pytest.raises(asyncpg.PostgresError, match="syllabus"):
        await _sql(statement, syllabus["id"])
    row = await Syllabus.select().where(Syllabus.id == syllabus["id"]).first()
    assert row["status"] == "APPROVED" and row["content"] == syllabus["content"]


async def test_it_never_rewrites_a_drafts_content(client, personas):
    await client.login(personas.admin.email)
    syllabus = await draft_syllabus(client)
    with pytest.raises(asyncpg.PostgresError, match="immutable"):
        await _sql("UPDATE syllabus SET content = '{}'::jsonb WHERE id = $1", syllabus["id"])
    await _sql("UPDATE syllabus SET status = 'REJECTED', rejection_reason = 'x' WHERE id = $1", syllabus["id"])
    with pytest.raises(asyncpg.PostgresError, match="REJECTED -> APPROVED is not a valid transition"):
        await _sql("UPDATE syllabus SET status = 'APPROVED', approved_by = gen_random_uuid(), approved_at = now(),"
                   " approved_hash = content_hash WHERE id = $1", syllabus["id"])


async def test_it_refuses_an_approval_of_other_content_than_the_stored_one(client, personas):
    await client.login(personas.admin.email)
    syllabus = await draft_syllabus(client)
    with pytest.raises(asyncpg.PostgresError, match="syllabus_approval_complete"):
        await _sql("UPDATE syllabus SET status = 'APPROVED', approved_by = gen_random_uuid(), approved_at = now(),"
                   " approved_hash = 'not-the-hash' WHERE id = $1", syllabus["id"])


@pytest.mark.parametrize("statement", [
    "UPDATE content_item SET content = '{}'::jsonb WHERE id = $1",
    "UPDATE content_item SET status = 'SUPERSEDED' WHERE id = $1",
    "UPDATE content_item SET approval_note = 'edited later' WHERE id = $1",
    "DELETE FROM content_item WHERE id = $1",
])
async def test_it_freezes_approved_content(client, personas, statement):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    item = await ContentItem.select().where(ContentItem.syllabus_id == syllabus["id"]).first()
    await client.post(f"/admin/items/{item['id']}/approve", {"note": ""})
    with pytest.raises(asyncpg.PostgresError, match="content_item"):
        await _sql(statement, item["id"])
    row = await ContentItem.select().where(ContentItem.id == item["id"]).first()
    assert row["status"] == "APPROVED" and row["content"] == item["content"]


async def test_it_writes_generated_content_only_once(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    item = await ContentItem.select().where(ContentItem.syllabus_id == syllabus["id"]).first()
    assert item["status"] == "DRAFT"
    with pytest.raises(asyncpg.PostgresError, match="generated content is immutable"):
        await _sql("UPDATE content_item SET content = '{}'::jsonb WHERE id = $1", item["id"])
    with pytest.raises(asyncpg.PostgresError, match="not a valid transition"):
        await _sql("UPDATE content_item SET status = 'PENDING' WHERE id = $1", item["id"])
