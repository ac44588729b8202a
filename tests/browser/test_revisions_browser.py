"""Revisions in a real browser (issue 9): an admin edits a published lesson by hand, reviews the new draft with
its word diff, approves and publishes version 2, and a learner on version 1 switches and reads the edit; an
approved quiz regenerated with an instruction; an invalid hand edit keeps the input and says what is wrong
beside the field.

Screenshots: test-artifacts/screenshots/revisions-*.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from app.authoring.tables import ContentItem
from tests.browser.conftest import PHONE, page_overflow, shot, sign_in
from tests.publishing.helpers import published_course

pytestmark = pytest.mark.browser

UUID = r"[0-9a-f-]{36}"
EDITED = "Rewritten by hand: a merge conflict is just two edits to the same lines, and you choose which one wins."


async def _shot(page: Page, name: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, name)


async def _first(syllabus: dict, kind: str) -> dict:
    return await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.kind == kind) & (ContentItem.module_index == 1)
        & (ContentItem.lesson_index == 1)).first()


async def _open_edit_form(page: Page, item: dict) -> None:
    await page.goto(f"/admin/items/{item['id']}")
    panel = page.locator("#new-revision")
    await expect(panel.get_by_role("heading", name="New revision")).to_be_visible()
    await panel.get_by_role("button", name="Edit by hand").click()
    await page.wait_for_url(re.compile(rf"/admin/items/{item['id']}/edit$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Edit the {item['kind'].lower()} by hand")


async def test_a_hand_edited_published_lesson_reaches_a_learner_as_version_2(new_context, client, client_factory,
                                                                             personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    course_id = str(syllabus["id"])
    lesson = await _first(syllabus, "LESSON")
    learner = client_factory()
    await learner.login(personas.learner.email)
    assert (await learner.post(f"/learn/{course_id}/enroll")).status_code == 303

    admin = await (await new_context()).new_page()
    await sign_in(admin, personas.admin.email, landing="/admin")
    await _open_edit_form(admin, lesson)
    overview = admin.get_by_label("Overview", exact=True)
    await expect(overview).to_have_value(re.compile("This lesson covers"))
    await _shot(admin, "revisions-edit-form")

    # The preview renders the typed Markdown through the learner's templates, without saving anything.
    await overview.fill(EDITED + " Read **both sides** before you pick one.")
    await admin.get_by_role("button", name="Preview").click()
    pane = admin.locator("#preview-pane")
    await expect(pane.locator(".lesson .lead strong")).to_have_text("both sides")
    await expect(pane).to_contain_text("Rewritten by hand")
    await _shot(admin, "revisions-edit-preview")

    await admin.get_by_role("button", name="Save as a new draft").click()
    await admin.wait_for_url(re.compile(rf"/admin/items/{UUID}$"))
    new_id = admin.url.rsplit("/", 1)[1]
    assert new_id != str(lesson["id"])
    await expect(admin.locator(".flash-success").first).to_contain_text("Saved as a new draft")
    await expect(admin.locator(".hand-edited")).to_contain_text(f"Edited by hand by {personas.admin.email}")
    diff = admin.locator("#revision-diff")
    await expect(diff).to_be_visible()
    await expect(diff.locator("ins").filter(has_text="Rewritten").first).to_be_visible()
    await expect(diff.locator("del").first).to_be_visible()
    await _shot(admin, "revisions-review-draft")

    # The approved lesson stays as it is and points to its revision.
    await admin.goto(f"/admin/items/{lesson['id']}")
    await expect(admin.locator("#new-revision .revision-newer")).to_contain_text("A newer revision is in review")
    await admin.locator("#new-revision .revision-newer a").click()
    await admin.wait_for_url(re.compile(rf"/admin/items/{new_id}$"))

    await admin.locator(f'form[action="/admin/items/{new_id}/approve"]').get_by_role(
        "button", name="Approve", exact=True).click()
    await expect(admin.locator(".flash-success").first).to_contain_text("Approved")
    await admin.goto(f"/admin/syllabi/{course_id}")
    publish = admin.locator(f'form[action="/admin/syllabi/{course_id}/publish"] button[type=submit]')
    await expect(publish).to_be_enabled()
    await publish.click()
    await admin.wait_for_url(re.compile(rf"/admin/packages/{course_id}$"))
    await expect(admin.locator("#version-2")).to_be_visible()

    # The learner, still on version 1, is offered version 2 and reads the edited lesson after switching.
    reader = await (await new_context()).new_page()
    await sign_in(reader, personas.learner.email, landing="/learn")
    await reader.goto(f"/learn/{course_id}")
    await expect(reader.locator(".upgrade-note")).to_contain_text("Version 2 of this course is available")
    await reader.get_by_role("button", name="Switch to version 2").click()
    await expect(reader.locator(".upgrade-note")).to_have_count(0)
    await reader.goto(f"/learn/{course_id}/lesson/1")
    await expect(reader.locator(".lesson .lead")).to_contain_text(EDITED)
    await expect(reader.locator(".lesson .lead strong")).to_have_text("both sides")
    await _shot(reader, "revisions-learner-v2-lesson")


async def test_an_approved_quiz_is_regenerated_with_an_instruction(new_context, client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    quiz = await _first(syllabus, "QUIZ")
    page = await (await new_context()).new_page()
    await sign_in(page, personas.admin.email, landing="/admin")
    # The quiz's edit form: four options per question, the correct one a radio button.
    await _open_edit_form(page, quiz)
    first = page.locator("#f-questions-0")
    await expect(first.locator("input[type=radio]")).to_have_count(4)
    await expect(first.locator("input[type=radio]:checked")).to_have_count(1)
    assert await page_overflow(page) == 0
    await _shot(page, "revisions-edit-quiz")
    await page.goto(f"/admin/items/{quiz['id']}")
    panel = page.locator("#new-revision")
    await panel.get_by_label("Regenerate with an instruction").fill("Make the distractors more plausible")
    await _shot(page, "revisions-quiz-new-revision")
    await panel.get_by_role("button", name="Regenerate").click()
    # The page is already on an item address: wait for another item's (the new draft's), not just any.
    await page.wait_for_url(lambda url: re.search(rf"/admin/items/{UUID}$", url) is not None
                            and not url.endswith(str(quiz["id"])), timeout=30_000)
    new_id = page.url.rsplit("/", 1)[1]
    assert new_id != str(quiz["id"])
    # The page follows the worker until the draft is there, then shows it for review with its diff.
    await expect(page.locator(f'form[action="/admin/items/{new_id}/approve"]')).to_be_visible(timeout=30_000)
    await expect(page.locator(".quiz-questions > li")).to_have_count(5)
    await expect(page.locator(".learner-preview")).not_to_contain_text("plausible")
    await _shot(page, "revisions-quiz-regenerated")
    row = await ContentItem.select(ContentItem.status).where(ContentItem.id == quiz["id"]).first()
    assert row["status"] == "APPROVED"


async def test_an_invalid_hand_edit_shows_the_error_beside_the_field_and_keeps_the_input(new_context, client,
                                                                                       personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    lesson = await _first(syllabus, "LESSON")
    page = await (await new_context()).new_page()
    await sign_in(page, personas.admin.email, landing="/admin")
    await _open_edit_form(page, lesson)
    duration = page.get_by_label("Duration (minutes)")
    await duration.fill("abc")
    await page.get_by_label("Overview", exact=True).fill("Too short to teach anything.")
    await page.get_by_role("button", name="Save as a new draft").click()

    summary = page.locator(".error-summary")
    await expect(summary).to_have_attribute("role", "alert")
    await expect(summary).to_contain_text("2 things to fix")
    await expect(summary.get_by_role("link", name="Duration (minutes): must be a whole number")).to_have_attribute(
        "href", "#f-duration_minutes")
    await expect(duration).to_have_value("abc")
    await expect(duration).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#e-duration_minutes")).to_have_text("must be a whole number")
    await expect(duration).to_have_attribute("aria-describedby", re.compile("e-duration_minutes"))
    overview = page.get_by_label("Overview", exact=True)
    await expect(overview).to_have_value("Too short to teach anything.")
    await expect(page.locator("#e-overview")).to_have_text("must be at least 50 characters long")
    await _shot(page, "revisions-edit-invalid")
    await summary.get_by_role("link", name=re.compile("Overview")).click()
    await expect(page).to_have_url(re.compile("#f-overview$"))

    # A project's form on a phone: the rubric as rows of fields, nothing wider than the screen.
    project = await ContentItem.select().where((ContentItem.syllabus_id == syllabus["id"])
                                               & (ContentItem.kind == "PROJECT")).first()
    phone = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True)).new_page()
    await sign_in(phone, personas.admin.email, landing="/admin")
    await phone.goto(f"/admin/items/{project['id']}/edit")
    await expect(phone.locator("#f-rubric-0-weight")).not_to_have_value("")
    assert await page_overflow(phone) == 0
    await _shot(phone, "revisions-edit-project-phone")
    assert await ContentItem.count().where(ContentItem.syllabus_id == syllabus["id"]) == \
        await ContentItem.count().where((ContentItem.syllabus_id == syllabus["id"])
                                        & (ContentItem.status == "APPROVED"))
