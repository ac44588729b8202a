"""The publish panel on the syllabus page: each state says what stops publishing (with a link to each item) or what
the next version would change, and a refused publish or archive answers inline with the way forward, never with
the bare error page."""

import re

from app.audit.tables import AuditLog
from app.authoring.tables import ContentItem
from app.publishing.tables import CoursePackageRow
from tests.authoring.helpers import approved_syllabus, content_run, generated_content
from tests.publishing.helpers import approve_everything, new_quiz_approved, published_course

ERROR_PAGE = "That request did not make sense"  # the bare error page's title (app/web/errors.py)


def _panel(html: str) -> str:
    match = re.search(r'<section class="publish-panel[^"]*" id="publish".*?</section>', html, re.S)
    assert match, "no publish panel on the page"
    return match.group(0)


def _publish_button(panel: str) -> str | None:
    match = re.search(r"<button[^>]*>Publish version \d+</button>", panel)
    return match.group(0) if match else None


async def _versions(syllabus_id) -> int:
    return await CoursePackageRow.count().where(CoursePackageRow.syllabus_id == syllabus_id)


async def test_it_says_there_is_nothing_to_publish_before_content_is_generated(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    panel = _panel((await client.get(f"/admin/syllabi/{syllabus['id']}")).text)
    assert "Nothing to publish yet: generate the course content first." in panel
    assert "disabled" in _publish_button(panel)


async def test_it_disables_publishing_while_content_is_still_generating(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    await content_run(syllabus, personas, 1, {("QUIZ", 1): "PENDING"})
    panel = _panel((await client.get(f"/admin/syllabi/{syllabus['id']}")).text)
    assert "Content is still being generated: 1 item to go." in panel
    assert "disabled" in _publish_button(panel)


async def test_it_lists_each_unapproved_item_with_its_status_and_a_link(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    assert (await client.post(f"/admin/syllabi/{syllabus['id']}/modules/1/approve", {"note": ""})).status_code == 303
    waiting = await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.status == "DRAFT"))
    assert waiting and all(row["module_index"] != 1 for row in waiting)
    panel = _panel((await client.get(f"/admin/syllabi/{syllabus['id']}")).text)
    assert "disabled" in _publish_button(panel)
    assert f"these {len(waiting)} items are approved" in panel
    for row in waiting:
        assert f'href="/admin/items/{row["id"]}"' in panel
    assert panel.count("Draft, waiting for review") == len(waiting)
    assert "DRAFT" not in re.sub(r"<[^>]+>", "", panel)  # statuses as words, not codes


async def test_it_offers_version_one_when_everything_is_approved(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    await approve_everything(client, syllabus["id"])
    panel = _panel((await client.get(f"/admin/syllabi/{syllabus['id']}")).text)
    assert _publish_button(panel) == '<button type="submit">Publish version 1</button>'
    assert "Every lesson, quiz and project is approved." in panel


async def test_it_offers_no_publish_button_when_nothing_changed_since_the_last_version(client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    panel = _panel((await client.get(f"/admin/syllabi/{syllabus['id']}")).text)
    assert "Nothing changed since version 1" in panel and _publish_button(panel) is None
    assert f'href="/admin/review?syllabus={syllabus["id"]}&amp;status=APPROVED"' in panel  # revise content
    assert f'href="/admin/packages/{syllabus["id"]}"' in panel


async def test_it_offers_the_next_version_and_says_what_changed(client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    await new_quiz_approved(personas, syllabus)
    quiz = await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.kind == "QUIZ") & (ContentItem.module_index == 1)
        & (ContentItem.lesson_index == 1) & (ContentItem.supersedes_id.is_not_null())).first()
    panel = _panel((await client.get(f"/admin/syllabi/{syllabus['id']}")).text)
    assert _publish_button(panel) == '<button type="submit">Publish version 2</button>'
    assert "Changed since version 1: <strong>1 lesson changed" in panel
    assert f'href="/admin/items/{quiz["id"]}"' in panel  # the changed quiz, linked


async def test_a_refused_publish_answers_400_inline_with_the_links_and_publishes_nothing(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    assert (await client.post(f"/admin/syllabi/{syllabus['id']}/modules/1/approve", {"note": ""})).status_code == 303
    draft = await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.status == "DRAFT")).first()
    response = await client.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert response.status_code == 400 and ERROR_PAGE not in response.text
    panel = _panel(response.text)
    assert re.search(r'role="alert">\s*<strong>This course cannot be published yet:</strong>', panel)
    assert f'href="/admin/items/{draft["id"]}"' in panel and "disabled" in _publish_button(panel)
    assert "<h1>Syllabus, revision" in response.text  # the syllabus page itself, not a dead end
    assert await _versions(syllabus["id"]) == 0

    # htmx gets the message alone (static/app.js shows it in the form that sent it, inside the panel).
    htmx = await client.post(f"/admin/syllabi/{syllabus['id']}/publish", htmx=True)
    assert htmx.status_code == 400 and htmx.text.startswith("This course cannot be published yet:")
    assert await _versions(syllabus["id"]) == 0


async def test_publishing_unchanged_content_answers_409_inline(client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    response = await client.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert response.status_code == 409 and "That conflicts with the current state" not in response.text
    panel = _panel(response.text)
    assert re.search(r'role="alert">\s*<strong>Nothing changed since version 1; there is nothing new to publish.',
                     panel)
    assert "status=APPROVED" in panel and _publish_button(panel) is None
    assert await _versions(syllabus["id"]) == 1


async def test_archiving_twice_answers_409_inline_with_a_link_to_the_versions(client, personas):
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    assert (await client.post(f"/admin/packages/{package['id']}/archive")).status_code == 303
    for again in (await client.post(f"/admin/packages/{package['id']}/archive"),
                  await client.get(f"/admin/packages/{package['id']}/archive")):
        assert again.status_code == 409 and "That conflicts with the current state" not in again.text
        assert re.search(r'role="alert"><strong>Version 1 is already archived.</strong>', again.text)
        assert f'href="/admin/packages/{syllabus["id"]}" class="head-link">Back to all versions' in again.text
        assert "Archive version 1</button>" not in again.text
    row = await CoursePackageRow.select(CoursePackageRow.status).where(CoursePackageRow.id == package["id"]).first()
    assert row["status"] == "ARCHIVED"
    assert await AuditLog.count().where(
        (AuditLog.action == "PACKAGE_ARCHIVED") & (AuditLog.entity_id == str(package["id"]))) == 1


async def test_an_outsider_gets_no_panel_and_cannot_publish(client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    await approve_everything(client, syllabus["id"])
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    assert (await outsider.get(f"/admin/syllabi/{syllabus['id']}")).status_code == 404
    assert (await outsider.post(f"/admin/syllabi/{syllabus['id']}/publish")).status_code == 404
    assert (await outsider.post(f"/admin/syllabi/{syllabus['id']}/publish", htmx=True)).status_code == 404
    assert await _versions(syllabus["id"]) == 0


async def test_it_names_new_revisions_that_are_not_approved_yet(client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    lesson = await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.kind == "LESSON")
        & (ContentItem.module_index == 1) & (ContentItem.lesson_index == 2)).first()
    response = await client.post(f"/admin/items/{lesson['id']}/regenerate", {"instruction": "use a retail example"})
    assert response.status_code == 303
    revision = await ContentItem.select().where(ContentItem.supersedes_id == lesson["id"]).first()
    panel = _panel((await client.get(f"/admin/syllabi/{syllabus['id']}")).text)
    # The approved lesson is still what would be published: nothing changed yet, and the revision is named.
    assert "Nothing changed since version 1" in panel and _publish_button(panel) is None
    assert "1 new revision is not approved yet" in panel
    assert f'href="/admin/items/{revision["id"]}"' in panel
