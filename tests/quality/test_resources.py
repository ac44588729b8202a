"""External resources of a module (issue 14 item 1): vetted links only (http/https, a real host), added and
removed on the course's Resources page, audited, carried by the next package version to the player and the
exports (rel="noopener noreferrer"), never by the versions already published."""

import uuid

import msgspec

from app.audit.tables import AuditLog
from app.exports import pdf, site
from app.publishing.schemas import CoursePackage
from app.publishing.tables import CoursePackageRow
from app.quality.tables import ExternalResource
from tests.conftest import make_member
from tests.publishing.helpers import published_course

GOOD = {"title": "The Git book, chapter 2", "url": "https://git-scm.com/book/en/v2/Git-Basics", "kind": "BOOK"}


async def _course(client, personas):
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    return syllabus, package


async def _rows(course_id) -> list[dict]:
    return await ExternalResource.select().where(ExternalResource.course_id == course_id).order_by(
        ExternalResource.created_at)


async def test_it_adds_a_resource_to_a_module_and_audits_it(client, personas):
    syllabus, _package = await _course(client, personas)
    course_id = syllabus["course_id"]
    page = await client.get(f"/admin/quality/courses/{course_id}/resources")
    assert page.status_code == 200 and 'id="module-1"' in page.text and 'id="module-2"' in page.text
    response = await client.post(f"/admin/quality/courses/{course_id}/modules/2/resources", GOOD)
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/quality/courses/{course_id}/resources#module-2"
    [row] = await _rows(course_id)
    assert (row["module_index"], row["title"], row["url"], row["kind"]) == (2, GOOD["title"], GOOD["url"], "BOOK")
    assert row["tenant_id"] == personas.acme["id"] and row["created_by"] == personas.admin.user_id
    assert row["removed_at"] is None
    assert await AuditLog.count().where((AuditLog.action == "EXTERNAL_RESOURCE_ADDED")
                                        & (AuditLog.entity_id == str(row["id"]))) == 1
    page = await client.get(f"/admin/quality/courses/{course_id}/resources")
    assert f'<a href="{GOOD["url"]}" rel="noopener noreferrer">{GOOD["title"]}</a>' in page.text


async def test_it_refuses_urls_that_are_not_http_or_https_with_the_input_kept(client, personas):
    syllabus, _package = await _course(client, personas)
    course_id = syllabus["course_id"]
    cases = {
        "javascript:alert(1)": "must start with http:// or https://",
        "ftp://files.example.org/notes.pdf": "must start with http:// or https://",
        "data:text/html;base64,PHNjcmlwdD4=": "must start with http:// or https://",
        "example.org/page": "must start with http:// or https://",
        "https:///no-host": "needs a real host name",
        "https://intranet/page": "needs a real host name",
        "https://example.org/" + "a" * 2000: "longer than 2000 characters",
    }
    for url, words in cases.items():
        response = await client.post(f"/admin/quality/courses/{course_id}/modules/1/resources",
                                     {"title": "Looks harmless", "url": url, "kind": "ARTICLE"})
        assert response.status_code == 422, url
        assert words in response.text, (url, response.text[:300])
        assert 'value="Looks harmless"' in response.text  # the input is kept
    response = await client.post(f"/admin/quality/courses/{course_id}/modules/1/resources",
                                 {"title": "  ", "url": GOOD["url"], "kind": "ARTICLE"})
    assert response.status_code == 422 and "The title is required." in response.text
    response = await client.post(f"/admin/quality/courses/{course_id}/modules/1/resources", {**GOOD, "kind": "MEME"})
    assert response.status_code == 422 and "The kind must be one of" in response.text
    assert await _rows(course_id) == []


async def test_it_answers_404_for_an_unknown_module_or_course(client, personas):
    syllabus, _package = await _course(client, personas)
    course_id = syllabus["course_id"]
    response = await client.post(f"/admin/quality/courses/{course_id}/modules/9/resources", GOOD)
    assert response.status_code == 404 and "no module 9" in response.text
    assert (await client.post(f"/admin/quality/courses/{course_id}/modules/0/resources", GOOD)).status_code == 400
    assert (await client.get(f"/admin/quality/courses/{uuid.uuid4()}/resources")).status_code == 404
    assert await _rows(course_id) == []


async def test_it_removes_a_resource_softly(client, personas):
    syllabus, _package = await _course(client, personas)
    course_id = syllabus["course_id"]
    await client.post(f"/admin/quality/courses/{course_id}/modules/1/resources", GOOD)
    [row] = await _rows(course_id)
    response = await client.post(f"/admin/quality/resources/{row['id']}/remove")
    assert response.status_code == 303
    [row] = await _rows(course_id)
    assert row["removed_at"] is not None and row["removed_by"] == personas.admin.user_id
    assert await AuditLog.count().where((AuditLog.action == "EXTERNAL_RESOURCE_REMOVED")
                                        & (AuditLog.entity_id == str(row["id"]))) == 1
    assert (await client.post(f"/admin/quality/resources/{row['id']}/remove")).status_code == 303  # harmless
    assert await AuditLog.count().where((AuditLog.action == "EXTERNAL_RESOURCE_REMOVED")
                                        & (AuditLog.entity_id == str(row["id"]))) == 1
    page = await client.get(f"/admin/quality/courses/{course_id}/resources")
    assert GOOD["url"] not in page.text


async def test_it_keeps_another_workspace_out(client, client_factory, personas):
    syllabus, _package = await _course(client, personas)
    course_id = syllabus["course_id"]
    await client.post(f"/admin/quality/courses/{course_id}/modules/1/resources", GOOD)
    [row] = await _rows(course_id)
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    assert (await outsider.get(f"/admin/quality/courses/{course_id}/resources")).status_code == 404
    assert (await outsider.post(f"/admin/quality/courses/{course_id}/modules/1/resources", GOOD)).status_code == 404
    assert (await outsider.post(f"/admin/quality/resources/{row['id']}/remove")).status_code == 404
    [row] = await _rows(course_id)
    assert row["removed_at"] is None and len(await _rows(course_id)) == 1
    learner = client_factory()
    await learner.login(personas.learner.email)
    assert (await learner.get(f"/admin/quality/courses/{course_id}/resources")).status_code in (403, 404)


async def test_the_next_version_carries_them_to_the_player_and_the_exports_but_not_the_old_one(
        client, client_factory, personas):
    syllabus, v1 = await _course(client, personas)
    course_id, syllabus_id = syllabus["course_id"], syllabus["id"]
    enrolled = client_factory()
    await enrolled.login(personas.learner.email)
    assert (await enrolled.post(f"/learn/{syllabus_id}/enroll")).status_code == 303  # on version 1

    await client.post(f"/admin/quality/courses/{course_id}/modules/1/resources", GOOD)
    response = await client.post(f"/admin/syllabi/{syllabus_id}/publish")
    assert response.status_code == 303, response.text[:300]
    v2 = await CoursePackageRow.select().where(
        (CoursePackageRow.syllabus_id == syllabus_id) & (CoursePackageRow.version == 2)).first()
    old = msgspec.json.decode(v1["document"], type=CoursePackage)
    new = msgspec.json.decode(v2["document"], type=CoursePackage)
    assert [m.resources for m in old.modules] == [[], []]
    assert '"resources"' not in v1["document"]  # an old document is unchanged (and still parses)
    assert [(r.title, r.url, r.kind) for r in new.modules[0].resources] == [(GOOD["title"], GOOD["url"], "BOOK")]
    assert new.modules[1].resources == []

    link = f'<a href="{GOOD["url"]}" rel="noopener noreferrer">{GOOD["title"]}</a>'
    on_v1 = await enrolled.get(f"/learn/{syllabus_id}")
    assert on_v1.status_code == 200 and GOOD["url"] not in on_v1.text
    newcomer = await make_member(personas.acme, "learner", "nina")
    fresh = client_factory()
    await fresh.login(newcomer.email)
    on_v2 = await fresh.get(f"/learn/{syllabus_id}")
    assert on_v2.status_code == 200 and link in on_v2.text

    assert link.encode() in site.site_pages(new)["index.html"]
    assert GOOD["url"].encode() not in site.site_pages(old)["index.html"]
    assert link in pdf.course_html(new) and GOOD["url"] not in pdf.course_html(old)

    # Removing it changes only the next version; the published one keeps its copy.
    [row] = await _rows(course_id)
    await client.post(f"/admin/quality/resources/{row['id']}/remove")
    v2_again = await CoursePackageRow.select().where(CoursePackageRow.id == v2["id"]).first()
    assert v2_again["document"] == v2["document"]
