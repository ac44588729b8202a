"""Publishing in a real browser: the admin's published courses, versions, the JSON of a version, the diff of two
versions (answer-key changes called out) and archiving; then the published course as a learner reads it on a phone.

Each test saves full-page screenshots to test-artifacts/screenshots/publishing-*.png.
"""

from __future__ import annotations

import re

import msgspec
import pytest
from playwright.async_api import Page, expect

from app.publishing.schemas import CoursePackage
from app.publishing.tables import CoursePackageRow
from tests.browser.conftest import PHONE, SCREENSHOTS, page_overflow, shot, sign_in
from tests.publishing.helpers import new_quiz_approved, published_course

pytestmark = pytest.mark.browser


def _nav(page: Page, name: str):
    return page.locator("header.site-header").get_by_role("link", name=name, exact=True)


async def _shot(page: Page, name: str) -> None:
    """A full-page screenshot from the top, so the sticky header sits where it belongs; nothing scrolls sideways."""
    await page.evaluate("window.scrollTo(0, 0)")
    assert await page_overflow(page) == 0, f"{name}: the page is wider than the screen"
    await shot(page, name)


async def _screen_shot(page: Page, name: str, element: str | None = None) -> None:
    """What the screen shows (or one element, with the sticky header and lesson bar laid out in place so they do not
    cover it): full-page shots of a long lesson on a phone are too tall to review."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if element is None:
        await page.screenshot(path=SCREENSHOTS / f"{name}.png")
        return
    # Through the CSSOM, not an added <style> element: the Content-Security-Policy refuses inline styles.
    pin = "static => document.querySelectorAll('.site-header, .lesson-nav').forEach(e => static " \
          "? e.style.setProperty('position', 'static', 'important') : e.style.removeProperty('position'))"
    await page.evaluate(pin, True)
    await page.locator(element).first.screenshot(path=SCREENSHOTS / f"{name}.png")
    await page.evaluate(pin, False)


async def _two_versions(client, personas) -> dict:
    """A course published as version 1, then (a quiz of module 1 regenerated and approved) as version 2."""
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    await new_quiz_approved(personas, syllabus)
    response = await client.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert response.status_code == 303, response.text[:400]
    return syllabus


async def test_an_admin_browses_versions_compares_them_and_archives_one(new_context, client, personas):
    syllabus = await _two_versions(client, personas)
    syllabus_id = str(syllabus["id"])
    page = await (await new_context()).new_page()
    await sign_in(page, personas.admin.email, landing="/admin")

    # Published courses: one row per course, its newest version.
    await _nav(page, "Published").click()
    await page.wait_for_url(re.compile(r"/admin/packages$"))
    row = page.locator(f"#package-{syllabus_id}")
    await expect(row).to_contain_text("v2")
    await expect(row.locator(".badge")).to_have_text("published")
    await _shot(page, "publishing-packages")

    # The course's versions, newest first.
    await row.locator("a.row-title").click()
    await page.wait_for_url(re.compile(rf"/admin/packages/{syllabus_id}$"))
    await expect(page.locator("tbody tr")).to_have_count(2)
    await expect(page.locator("tbody tr").first).to_have_id("version-2")
    for version in (1, 2):
        await expect(page.locator(f"#version-{version} .badge")).to_have_text("published")
    await _shot(page, "publishing-versions")

    # Version 1: facts, modules and its JSON in a collapsed viewer with copy and download.
    await page.locator("#version-1").get_by_role("link", name="v1", exact=True).click()
    await page.wait_for_url(re.compile(rf"/admin/packages/{syllabus_id}/v/1$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("v1")
    viewer = page.locator("details.json-viewer")
    await expect(viewer.locator("pre.json")).to_be_hidden()
    await viewer.locator("summary").click()
    await expect(viewer.locator("pre.json")).to_be_visible()
    await expect(viewer.locator("pre.json")).to_contain_text('"format_version"')
    await expect(viewer.get_by_role("button", name="Copy")).to_be_visible()
    await expect(viewer.get_by_role("link", name="Download")).to_have_attribute(
        "href", f"/admin/packages/{syllabus_id}/v/1/json"
    )
    await _shot(page, "publishing-version-json")

    # Compare v1 with v2 through the form: the changed quiz is an answer-key change, called out twice.
    await page.get_by_role("link", name="All versions").click()
    await page.wait_for_url(re.compile(rf"/admin/packages/{syllabus_id}$"))
    picker = page.locator("form.diff-picker")
    await picker.get_by_label("From").select_option("1")
    await picker.get_by_label("To").select_option("2")
    await picker.get_by_role("button", name="Show differences").click()
    await page.wait_for_url(re.compile(rf"/admin/packages/{syllabus_id}/diff\?a=1&b=2$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("v1 → v2")
    await expect(page.locator(".answer-key-alert")).to_contain_text("answer-key change")
    changed = page.locator("article.diff-entry.has-answer-key")
    await expect(changed).to_have_count(1)
    await expect(changed.locator(".diff-where")).to_have_text("M1 · L1")
    await expect(changed.locator(".diff-badges")).to_contain_text("Changed")
    await expect(changed.locator(".answer-key-change").first).to_contain_text("Answer key changed")
    await expect(changed.get_by_role("link", name="Quiz", exact=True)).to_have_attribute(
        "href", re.compile(r"^/admin/items/[0-9a-f-]{36}$"))
    # Unchanged lessons are collapsed under one line.
    unchanged = page.locator("details.diff-unchanged")
    await expect(unchanged.locator("li").first).to_be_hidden()
    await unchanged.locator("summary").click()
    await expect(unchanged.locator("li").first).to_be_visible()
    await _shot(page, "publishing-diff")

    # Archive v1 through its confirmation page, which says what happens to its learners first.
    await page.get_by_role("link", name="All versions").click()
    await page.wait_for_url(re.compile(rf"/admin/packages/{syllabus_id}$"))
    # (Each version links to the diff with the one before it.)
    await expect(page.locator("#version-2").get_by_role("link", name="Compare with v1")).to_have_attribute(
        "href", f"/admin/packages/{syllabus_id}/diff?a=1&b=2")
    await expect(page.locator("#version-1 .compare-link")).to_have_count(0)
    await page.locator("#version-1").get_by_role("button", name="Archive…").click()
    await page.wait_for_url(re.compile(r"/admin/packages/[0-9a-f-]{36}/archive$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Archive version 1 of")
    await expect(page.locator(".archive-learners")).to_have_text(
        "No learner is enrolled on version 1; new learners enroll on version 2."
    )
    await _shot(page, "publishing-archive-confirm")
    await page.get_by_role("button", name="Archive version 1").click()
    await page.wait_for_url(re.compile(rf"/admin/packages/{syllabus_id}$"))
    await expect(page.locator(".flash-info").first).to_contain_text(
        "Version 1 is archived; learners no longer see it. No learner was enrolled on it."
    )
    await expect(page.locator("#version-1 .badge")).to_have_text("archived")
    await expect(page.locator("#version-1").get_by_role("button", name="Archive")).to_have_count(0)
    await expect(page.locator("#version-2 .badge")).to_have_text("published")
    statuses = {
        r["version"]: r["status"]
        for r in await CoursePackageRow.select(CoursePackageRow.version, CoursePackageRow.status).where(
            CoursePackageRow.syllabus_id == syllabus_id
        )
    }
    assert statuses == {1: "ARCHIVED", 2: "PUBLISHED"}
    await _shot(page, "publishing-versions-archived")

    # The same pages on a phone: stacked rows, nothing wider than the screen.
    phone = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)).new_page()
    await sign_in(phone, personas.admin.email, landing="/admin")
    pages = {
        "versions": f"/admin/packages/{syllabus_id}",
        "version": f"/admin/packages/{syllabus_id}/v/2",
        "diff": f"/admin/packages/{syllabus_id}/diff?a=1&b=2",
        "packages": "/admin/packages",
    }
    for name, path in pages.items():
        await phone.goto(path)
        await expect(phone.get_by_role("heading", level=1)).to_be_visible()
        if name == "version":
            await phone.locator("details.json-viewer summary").click()
            await expect(phone.locator("pre.json")).to_be_visible()
        await _shot(phone, f"publishing-phone-{name}")


async def test_a_learner_reads_the_published_course_on_a_phone_and_is_offered_the_new_version(
    new_context, client, personas
):
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    course_id = str(syllabus["id"])
    lessons = msgspec.json.decode(package["document"], type=CoursePackage).lessons
    questions = lessons[0].quiz.questions
    page = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)).new_page()
    await sign_in(page, personas.learner.email, landing="/learn")

    # Enroll from the catalog card, then start from the course overview.
    card = page.locator(f"#course-{course_id}")
    await expect(card).to_contain_text(package["title"])
    await _shot(page, "publishing-learner-phone-catalog")
    await card.get_by_role("button", name="Enroll").click()
    await page.wait_for_url(re.compile(rf"/learn/{course_id}$"))
    await expect(page.locator(".progress-panel")).to_contain_text("lessons done")
    await page.get_by_role("button", name="Start the course").click()
    await page.wait_for_url(re.compile(rf"/learn/{course_id}/lesson/1$"))
    await expect(page.get_by_role("button", name="Mark lesson complete")).to_be_visible()
    assert await page_overflow(page) == 0
    nav = await page.locator(".lesson-nav").bounding_box()  # previous / next float just above the bottom edge
    assert nav and 0 < PHONE["height"] - (nav["y"] + nav["height"]) < 20, nav
    await _screen_shot(page, "publishing-learner-phone-lesson")
    await _screen_shot(page, "publishing-learner-phone-quiz-question", ".quiz-form fieldset")

    # The quiz: four right, the last one wrong; a pass completes the lesson in the box above the quiz too.
    fieldsets = page.locator(".quiz-form fieldset")
    await expect(fieldsets).to_have_count(len(questions))
    for i, question in enumerate(questions):
        right = i < len(questions) - 1
        await (
            fieldsets.nth(i)
            .locator("label.quiz-choice")
            .nth(question.correct_index if right else (question.correct_index + 1) % 4)
            .click()
        )
    await page.get_by_role("button", name="Check answers").click()
    n = len(questions)
    pct = round(100 * (n - 1) / n)
    await expect(page.locator(".quiz-score")).to_contain_text(f"{n - 1} of {n} correct ({pct}%)")
    await expect(page.locator(".quiz-score")).to_contain_text("lesson marked complete")
    await expect(page.locator(".quiz-feedback > li.wrong")).to_have_count(1)
    await expect(page.locator(".quiz-feedback > li.right")).to_have_count(n - 1)
    await expect(page.locator("#complete-1")).to_contain_text("You completed this lesson.")
    assert await page_overflow(page) == 0
    await _screen_shot(page, "publishing-learner-phone-quiz-result", ".lesson-quiz")

    # Version 2 is published: the learner keeps reading version 1 and is offered the switch.
    await new_quiz_approved(personas, syllabus)
    assert (await client.post(f"/admin/syllabi/{course_id}/publish")).status_code == 303
    await page.get_by_role("link", name="All lessons").click()
    await page.wait_for_url(re.compile(rf"/learn/{course_id}$"))
    await expect(page.locator(".upgrade-note")).to_contain_text("Version 2 of this course is available")
    await expect(page.locator(".progress-panel")).to_contain_text(f"1 of {len(lessons)}")
    await expect(page.locator("#module-1 .lesson-list > li.done")).to_have_count(1)
    await expect(page.get_by_role("button", name="Continue", exact=True)).to_be_visible()
    await _shot(page, "publishing-learner-phone-course")


async def test_archiving_the_only_version_tells_the_admin_and_then_the_learner_that_the_course_is_withdrawn(
    new_context, client, client_factory, personas
):
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    course_id = str(syllabus["id"])
    learner = client_factory()
    await learner.login(personas.learner.email)
    assert (await learner.post(f"/learn/{course_id}/enroll")).status_code == 303

    admin = await (await new_context()).new_page()
    await sign_in(admin, personas.admin.email, landing="/admin")
    await admin.goto(f"/admin/packages/{course_id}")
    await admin.locator("#version-1").get_by_role("button", name="Archive…").click()
    await admin.wait_for_url(re.compile(rf"/admin/packages/{package['id']}/archive$"))
    await expect(admin.locator(".archive-learners")).to_contain_text("so the course is withdrawn")
    await expect(admin.locator(".archive-learners")).to_contain_text("the 1 learner enrolled on it sees")
    await _shot(admin, "publishing-archive-confirm-withdraw")
    await admin.get_by_role("button", name="Archive version 1").click()
    await expect(admin.locator(".flash-info").first).to_contain_text("the course is withdrawn for its 1 learner")

    page = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)).new_page()
    await sign_in(page, personas.learner.email, landing="/learn")
    await expect(page.locator(f"#course-{course_id}")).to_have_count(0)
    response = await page.goto(f"/learn/{course_id}/lesson/1")
    assert response is not None and response.status == 410
    await expect(page.get_by_role("heading", level=1)).to_have_text("This course was withdrawn")
    await expect(page.locator(".course-withdrawn")).to_contain_text(package["title"])
    await _shot(page, "publishing-learner-phone-withdrawn")
    await page.get_by_role("button", name="Back to your courses").click()
    await page.wait_for_url(re.compile(r"/learn$"))
