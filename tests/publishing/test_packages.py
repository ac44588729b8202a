import asyncio
import hashlib

import asyncpg
import msgspec
import pytest

from app.audit.services import Actor
from app.audit.tables import AuditLog
from app.authoring.tables import ContentItem, Syllabus
from app.errors import Conflict
from app.publishing import services
from app.publishing.builder import PackageIncomplete, build_package
from app.publishing.schemas import CoursePackage
from app.publishing.tables import CoursePackageRow
from tests.authoring.helpers import generated_content
from tests.conftest import DATABASE_URL
from tests.publishing.helpers import approve_everything, new_quiz_approved, published_course


async def _rows(syllabus_id):
    syllabus = await Syllabus.select().where(Syllabus.id == syllabus_id).first()
    return syllabus, await ContentItem.select().where(ContentItem.syllabus_id == syllabus_id)


async def test_it_builds_the_same_bytes_and_hash_twice(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    await approve_everything(client, syllabus["id"])
    first = build_package(*await _rows(syllabus["id"]))
    items = list(reversed((await _rows(syllabus["id"]))[1]))  # row order must not matter
    second = build_package((await _rows(syllabus["id"]))[0], items)
    assert first.document == second.document
    assert first.content_hash == second.content_hash == hashlib.sha256(first.document).hexdigest()
    assert msgspec.json.decode(first.document, type=CoursePackage) == first.package


async def test_it_refuses_to_build_with_unapproved_or_missing_items_and_lists_them(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    await client.post(f"/admin/syllabi/{syllabus['id']}/modules/1/approve", {"note": ""})
    syllabus_row, items = await _rows(syllabus["id"])
    with pytest.raises(PackageIncomplete) as excinfo:
        build_package(syllabus_row, items)
    problems = excinfo.value.problems
    assert problems and all("not approved" in p for p in problems)
    assert any("Lesson for module 2, lesson 1" in p and "is draft" in p for p in problems)
    assert not any("module 1," in p for p in problems)
    without_quiz = [i for i in items if not (i["kind"] == "QUIZ" and i["module_index"] == 1)]
    with pytest.raises(PackageIncomplete) as excinfo:
        build_package(syllabus_row, without_quiz)
    assert any("Quiz for module 1, lesson 1" in p and "never generated" in p for p in excinfo.value.problems)
    response = await client.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert response.status_code == 400 and "cannot be published yet" in response.text
    assert await CoursePackageRow.count().where(CoursePackageRow.syllabus_id == syllabus["id"]) == 0


async def test_it_publishes_version_one_validated_and_audited(client, personas):
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    assert package["version"] == 1 and package["status"] == "PUBLISHED"
    assert hashlib.sha256(package["document"].encode()).hexdigest() == package["content_hash"]
    document = msgspec.json.decode(package["document"], type=CoursePackage)
    assert document.provenance.syllabus_id == str(syllabus["id"])
    assert document.provenance.prompt_versions and document.provenance.approvers == [str(personas.admin.user_id)]
    assert package["lesson_count"] == len(document.lessons)
    assert await AuditLog.count().where(
        (AuditLog.action == "PACKAGE_PUBLISHED") & (AuditLog.entity_id == str(package["id"]))) == 1
    again = await client.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert again.status_code == 409 and "Nothing changed since version 1" in again.text


async def test_it_increments_versions_when_content_changes(client, personas):
    await client.login(personas.admin.email)
    syllabus, first = await published_course(client)
    # Lesson 1.2's quiz: new_quiz_approved below opens the slot of lesson 1.1's, and a slot has one open item.
    quiz = await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.kind == "QUIZ") & (ContentItem.module_index == 1)
        & (ContentItem.lesson_index == 2)).first()
    # Approved content never changes in place: regenerating it makes a new draft revision for the slot, and until
    # a revision is approved there is nothing new to publish. A new approved item for the slot makes version 2.
    assert (await client.post(f"/admin/items/{quiz['id']}/regenerate", {"instruction": "x"})).status_code == 303
    assert (await ContentItem.select(ContentItem.status).where(ContentItem.id == quiz["id"]).first())["status"] == \
        "APPROVED"
    assert (await client.post(f"/admin/syllabi/{syllabus['id']}/publish")).status_code == 409
    await new_quiz_approved(personas, syllabus)
    assert (await client.post(f"/admin/syllabi/{syllabus['id']}/publish")).status_code == 303
    second = await CoursePackageRow.select().where(
        (CoursePackageRow.syllabus_id == syllabus["id"]) & (CoursePackageRow.version == 2)).first()
    assert second["content_hash"] != first["content_hash"]
    assert (await CoursePackageRow.select(CoursePackageRow.document).where(
        CoursePackageRow.id == first["id"]).first())["document"] == first["document"]  # v1 untouched


async def test_two_concurrent_publishes_never_share_a_version(client, personas):
    await client.login(personas.admin.email)
    syllabus, _first = await published_course(client)
    await new_quiz_approved(personas, syllabus)
    actor = Actor(personas.admin.user_id, personas.admin.email)
    results = await asyncio.gather(
        services.publish_package(personas.acme["id"], syllabus["id"], actor=actor),
        services.publish_package(personas.acme["id"], syllabus["id"], actor=actor),
        return_exceptions=True,
    )
    published = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, Conflict)]
    # Same content twice: one gets version 2, the other is told nothing changed (never a duplicate 2).
    assert [p["version"] for p in published] == [2] and len(refused) == 1
    versions = [r["version"] for r in await CoursePackageRow.select(CoursePackageRow.version).where(
        CoursePackageRow.syllabus_id == syllabus["id"])]
    assert sorted(versions) == [1, 2]


async def test_the_database_refuses_changes_to_a_published_package(client, personas):
    await client.login(personas.admin.email)
    _syllabus, package = await published_course(client)
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        for statement in ("UPDATE course_package SET document = '{}' WHERE id = $1",
                          "UPDATE course_package SET content_hash = 'x' WHERE id = $1",
                          "DELETE FROM course_package WHERE id = $1"):
            with pytest.raises(asyncpg.PostgresError, match="course_package"):
                await conn.execute(statement, package["id"])
        with pytest.raises(asyncpg.PostgresError, match="insert-only"):
            await conn.execute("TRUNCATE course_package CASCADE")
        await conn.execute("UPDATE course_package SET status = 'ARCHIVED', archived_at = now() WHERE id = $1",
                           package["id"])
        with pytest.raises(asyncpg.PostgresError, match="ARCHIVED -> PUBLISHED is not a valid transition"):
            await conn.execute("UPDATE course_package SET status = 'PUBLISHED', archived_at = NULL WHERE id = $1",
                               package["id"])
    finally:
        await conn.close()
    row = await CoursePackageRow.select().where(CoursePackageRow.id == package["id"]).first()
    assert row["document"] == package["document"] and row["status"] == "ARCHIVED"


async def test_it_archives_a_version_once(client, personas):
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    response = await client.post(f"/admin/packages/{package['id']}/archive")
    assert response.status_code == 303
    assert (await CoursePackageRow.select(CoursePackageRow.status).where(
        CoursePackageRow.id == package["id"]).first())["status"] == "ARCHIVED"
    assert (await client.post(f"/admin/packages/{package['id']}/archive")).status_code == 409
    assert await AuditLog.count().where(
        (AuditLog.action == "PACKAGE_ARCHIVED") & (AuditLog.entity_id == str(package["id"]))) == 1


async def test_it_shows_versions_json_and_a_diff_that_calls_out_answer_key_changes(client, personas):
    await client.login(personas.admin.email)
    syllabus, first = await published_course(client)
    await new_quiz_approved(personas, syllabus)
    assert (await client.post(f"/admin/syllabi/{syllabus['id']}/publish")).status_code == 303
    listing = await client.get(f"/admin/packages/{syllabus['id']}")
    assert listing.status_code == 200 and "v1" in listing.text and "v2" in listing.text
    assert first["content_hash"][:12] in listing.text
    download = await client.get(f"/admin/packages/{syllabus['id']}/v/1/json")
    assert hashlib.sha256(download.content).hexdigest() == first["content_hash"]
    diff = await client.get(f"/admin/packages/{syllabus['id']}/diff", params={"a": 1, "b": 2})
    assert diff.status_code == 200
    assert "Answer key" in diff.text and "answer-key change" in diff.text
    assert "M1 · L1" in diff.text


async def test_it_hides_packages_of_other_workspaces(client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    for path in (f"/admin/packages/{syllabus['id']}/v/1", f"/admin/packages/{syllabus['id']}/v/1/json",
                 f"/api/courses/{syllabus['id']}", f"/api/courses/{syllabus['id']}/1"):
        assert (await outsider.get(path)).status_code == 404, path
    assert (await outsider.post(f"/admin/packages/{package['id']}/archive")).status_code == 404
    assert (await outsider.post(f"/admin/syllabi/{syllabus['id']}/publish")).status_code == 404
    assert str(syllabus["id"]) not in (await outsider.get("/api/courses")).text


async def test_the_syllabus_page_offers_publishing(client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    page = await client.get(f"/admin/syllabi/{syllabus['id']}")
    # Nothing changed since: no publish button, a way to revise instead (tests/publishing/test_publish_panel.py).
    assert "Nothing changed since version 1" in page.text and "Publish version 2" not in page.text
