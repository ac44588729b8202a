"""Authoring end to end in a real browser: brief, syllabus run, review and approval, content run, module
approval, review queue filters and the learner previews of a lesson, a quiz and a project.

Each test saves full-page screenshots to test-artifacts/screenshots/authoring-*.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from app.authoring.tables import ContentItem, GenerationRun, Syllabus
from tests.authoring.helpers import draft_syllabus, generated_content
from tests.browser.conftest import PHONE, page_overflow, shot, sign_in

pytestmark = pytest.mark.browser

UUID = r"[0-9a-f-]{36}"
TITLE = "Practical Git for Designers"


def _nav(page: Page, name: str):
    return page.locator("header.site-header").get_by_role("link", name=name, exact=True)


def _id_from(url: str, kind: str) -> str:
    match = re.search(rf"/admin/{kind}/({UUID})", url)
    assert match, url
    return match.group(1)


async def _shot(page: Page, name: str) -> None:
    """A full-page screenshot from the top, so the sticky header sits where it belongs."""
    await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, name)


async def _items(syllabus_id: str, **where) -> list[dict]:
    query = ContentItem.select().where(ContentItem.syllabus_id == syllabus_id)
    for column, value in where.items():
        query = query.where(getattr(ContentItem, column) == value)
    return await query


async def _open_first(page: Page, kind: str) -> None:
    """From the review queue: narrow to one content type, then open its first item."""
    await page.get_by_label("Type").select_option(kind)
    await page.wait_for_url(re.compile(rf"kind={kind}"))
    rows = page.locator("#review-table tbody tr")
    await expect(rows.first.locator(".badge").first).to_have_text(kind.lower())
    await rows.first.get_by_role("link").click()
    await page.wait_for_url(re.compile(rf"/admin/items/{UUID}$"))
    await expect(page.get_by_role("heading", name="As the learner will see it")).to_be_visible()


async def test_an_admin_drafts_approves_and_reviews_a_course(page: Page, personas):
    await sign_in(page, personas.admin.email, landing="/admin")
    await _nav(page, "Courses").click()
    await page.wait_for_url(re.compile(r"/admin/courses$"))
    await expect(page.locator(".empty-state")).to_contain_text("No courses yet")
    await _shot(page, "authoring-courses-empty")

    # The brief.
    await page.get_by_role("button", name="New course").click()
    await page.wait_for_url(re.compile(r"/admin/courses/new$"))
    await page.get_by_label("Course title").fill(TITLE)
    await page.get_by_label("Target audience").fill("product designers who hand off files by email")
    await page.get_by_label("Skill level").select_option("beginner")
    await page.get_by_label("Time budget (hours)").fill("3")
    await page.get_by_label("Teaching style").select_option("practical")
    await page.get_by_label("hands-on labs").check()
    await page.get_by_label("Other constraints").fill("uses GitHub Desktop")
    await _shot(page, "authoring-new-course")
    await page.get_by_role("button", name="Draft the syllabus").click()

    # The syllabus run: the partial polls every second until the link to the draft appears.
    await page.wait_for_url(re.compile(rf"/admin/runs/{UUID}$"))
    heading = page.get_by_role("heading", level=1)
    await expect(heading).to_have_text(re.compile("Drafting the syllabus|The syllabus draft is ready"))
    await _shot(page, "authoring-run-syllabus")
    review_link = page.get_by_role("button", name="Review the draft syllabus")
    await expect(review_link).to_be_visible(timeout=20_000)
    await expect(heading).to_have_text("The syllabus draft is ready")  # the heading follows the run
    await expect(page.locator(".run-progress")).to_contain_text("1 of 1")
    await _shot(page, "authoring-run-syllabus-finished")

    # The draft: an outline of modules and lessons, and the stored JSON.
    await review_link.click()
    await page.wait_for_url(re.compile(rf"/admin/syllabi/{UUID}$"))
    syllabus_id = _id_from(page.url, "syllabi")
    row = await Syllabus.select(Syllabus.status, Syllabus.content).where(Syllabus.id == syllabus_id).first()
    assert row["status"] == "DRAFT"
    await expect(page.locator("h1 .badge")).to_have_text("draft")
    outline = page.locator("article.outline")
    await expect(outline).to_contain_text(TITLE)
    modules = outline.locator(".outline-module")
    module_count = await modules.count()
    assert module_count >= 2
    first_lesson = modules.first.locator(".outline-lessons > li").first
    await expect(first_lesson).to_contain_text("min")
    await first_lesson.locator("summary").click()
    await expect(first_lesson).to_contain_text("Objectives")

    viewer = page.locator("details.json-viewer")
    await expect(viewer.locator("pre.json")).to_be_hidden()
    await viewer.locator("summary").click()
    await expect(viewer.locator("pre.json")).to_be_visible()
    await expect(viewer.locator("pre.json")).to_contain_text('"modules"')
    await _shot(page, "authoring-syllabus-draft")

    approve = page.locator(f'form[action="/admin/syllabi/{syllabus_id}/approve"]')
    await approve.get_by_label("Note").fill("Good shape for a first cohort")
    page.once("dialog", lambda dialog: dialog.accept())  # approving asks first: it cannot be undone
    await approve.get_by_role("button", name="Approve syllabus").click()
    await expect(page.locator(".flash-success").first).to_contain_text("Syllabus approved")
    await expect(page.locator("h1 .badge")).to_have_text("approved")
    row = await Syllabus.select(Syllabus.status, Syllabus.approval_note).where(Syllabus.id == syllabus_id).first()
    assert (row["status"], row["approval_note"]) == ("APPROVED", "Good shape for a first cohort")

    # The content run: every lesson, a quiz per lesson and a project per module.
    await page.get_by_role("button", name="Generate content").click()
    await page.wait_for_url(re.compile(rf"/admin/runs/{UUID}$"))
    run_id = _id_from(page.url, "runs")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Generating course content")
    total = (await GenerationRun.select(GenerationRun.total).where(GenerationRun.id == run_id).first())["total"]
    assert total == len(await _items(syllabus_id)) > module_count
    await _shot(page, "authoring-run-content")
    await expect(page.locator(".run-progress")).to_contain_text(f"{total} of {total}", timeout=30_000)
    by_module = page.get_by_role("button", name="Review the content by module")
    await expect(by_module).to_be_visible()
    await expect(page.locator(".run-progress .badge").first).to_have_text("succeeded")
    await _shot(page, "authoring-run-content-finished")

    # Approve module 1 from the syllabus page, through the confirm() dialog.
    await by_module.click()
    await page.wait_for_url(re.compile(rf"/admin/syllabi/{syllabus_id}$"))
    module_1 = await _items(syllabus_id, module_index=1)
    assert {i["status"] for i in module_1} == {"DRAFT"}
    row_1 = page.locator("#module-1")
    await expect(row_1.get_by_role("button", name="Approve module drafts")).to_be_visible()
    await _shot(page, "authoring-syllabus-approved")

    dialogs: list[str] = []

    async def accept(dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    await row_1.get_by_role("button", name="Approve module drafts").click()
    await expect(page.locator(".flash-success").first).to_contain_text(f"Approved {len(module_1)} drafts in module 1.")
    page.remove_listener("dialog", accept)
    assert len(dialogs) == 1 and "module 1" in dialogs[0], dialogs
    await expect(row_1.get_by_role("button", name="Approve module drafts")).to_have_count(0)
    await expect(row_1.locator("td").nth(2)).to_have_text(str(len(module_1)))
    assert {i["status"] for i in await _items(syllabus_id, module_index=1)} == {"APPROVED"}
    assert {i["status"] for i in await _items(syllabus_id, module_index=2)} == {"DRAFT"}
    await expect(page.locator("#module-2").get_by_role("button", name="Approve module drafts")).to_be_visible()
    await _shot(page, "authoring-syllabus-module-approved")

    # The review queue opens on what waits for review; the status select swaps the table in place (HTMX)
    # and pushes the filter to the URL.
    await _nav(page, "Review").click()
    await page.wait_for_url(re.compile(r"/admin/review$"))
    rows = page.locator("#review-table tbody tr")
    await expect(rows).to_have_count(min(total - len(module_1), 50))
    await expect(page.get_by_label("Status")).to_have_value("DRAFT")
    await _shot(page, "authoring-review-queue-drafts")
    await page.get_by_label("Status").select_option("APPROVED")
    await page.wait_for_url(re.compile(r"status=APPROVED"))
    await expect(rows).to_have_count(len(module_1))
    await expect(rows.locator(".badge.status-approved")).to_have_count(len(module_1))
    await page.get_by_label("Status").select_option("ALL")
    await expect(rows).to_have_count(min(total, 50))
    await _shot(page, "authoring-review-queue")
    await page.get_by_label("Status").select_option("DRAFT")
    await expect(rows).to_have_count(min(total - len(module_1), 50))

    # A lesson, as the learner will read it.
    await _open_first(page, "LESSON")
    lesson = page.locator(".learner-preview article.lesson")
    await expect(lesson.get_by_role("heading", name="Objectives")).to_be_visible()
    await expect(lesson.locator(".objectives li").first).to_be_visible()
    assert await lesson.locator(".concept").count() >= 1
    await expect(lesson.locator(".practice")).to_contain_text("Practice")
    await expect(page.locator(".review-actions").get_by_role("button", name="Approve", exact=True)).to_be_visible()
    await _shot(page, "authoring-item-lesson")

    # A quiz: four lettered options per question, the correct one marked. Back to the queue by the item's own
    # link: history.back() would show the cached HTMX partial of that URL (the response has no Vary: HX-Request).
    await page.locator(".back-link").click()
    await page.wait_for_url(re.compile(rf"/admin/review\?syllabus={syllabus_id}&module="))
    await _open_first(page, "QUIZ")
    questions = page.locator(".learner-preview .quiz-question")
    assert await questions.count() == 5
    first = questions.first
    await expect(first.locator(".quiz-options > li")).to_have_count(4)
    await expect(first.locator(".quiz-options > li.correct")).to_have_count(1)
    await expect(first.locator(".quiz-options > li.correct")).to_contain_text("Correct answer")
    await expect(questions.locator(".quiz-options > li.correct")).to_have_count(5)
    await _shot(page, "authoring-item-quiz")

    # A project with its rubric.
    await page.locator(".back-link").click()
    await page.wait_for_url(re.compile(rf"/admin/review\?syllabus={syllabus_id}&module="))
    await _open_first(page, "PROJECT")
    await expect(page.locator(".learner-preview article.project")).to_contain_text("Rubric")
    await _shot(page, "authoring-item-project")

    # The course list, now with the course, and the AI usage it cost.
    await _nav(page, "Courses").click()
    await expect(page.locator("table")).to_contain_text(TITLE)
    await _shot(page, "authoring-courses")
    await _nav(page, "AI usage").click()
    await page.wait_for_url(re.compile(r"/admin/ai-usage$"))
    for operation in ("syllabus", "lesson", "quiz", "project"):
        await expect(page.locator("table")).to_contain_text(operation)
    await _shot(page, "authoring-ai-usage")


async def test_authoring_pages_fit_a_phone_screen(new_context, client, personas):
    context = await new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = await context.new_page()
    await sign_in(page, personas.admin.email, landing="/admin")

    async def visit(path: str, name: str) -> None:
        await page.goto(path)
        await expect(page.locator("main")).to_be_visible()
        assert await page_overflow(page) == 0, path
        await _shot(page, f"authoring-phone-{name}")

    await visit("/admin/courses", "courses-empty")
    await expect(page.locator(".empty-state")).to_be_visible()
    await visit("/admin/courses/new", "new-course")

    await client.login(personas.admin.email)
    draft = await draft_syllabus(client, title="Data Storytelling with Spreadsheets")
    await visit(f"/admin/syllabi/{draft['id']}", "syllabus-draft")
    await expect(page.get_by_role("button", name="Approve syllabus")).to_be_visible()
    syllabus, run = await generated_content(client)
    assert run["status"] == "SUCCEEDED"
    await visit("/admin/courses", "courses")
    await visit(f"/admin/courses/{syllabus['course_id']}", "course")
    await visit(f"/admin/runs/{run['id']}", "run-finished")
    await visit(f"/admin/syllabi/{syllabus['id']}", "syllabus-approved")
    await page.locator("details.json-viewer > summary").click()
    assert await page_overflow(page) == 0
    await visit("/admin/review", "review-queue")
    for kind in ("LESSON", "QUIZ", "PROJECT"):
        item = (await _items(syllabus["id"], kind=kind))[0]
        await visit(f"/admin/items/{item['id']}", f"item-{kind.lower()}")
    await visit("/admin/ai-usage", "ai-usage")


async def test_an_admin_moves_failed_generation_on_from_the_pages_that_show_it(page: Page, client, personas):
    await sign_in(page, personas.admin.email, landing="/admin")
    # A syllabus draft that fails: the course page offers to try again or to edit the brief.
    await page.goto("/admin/courses/new")
    await page.get_by_label("Course title").fill("Broken Brief [mock:syllabus:invalid_json*3]")
    await page.get_by_label("Target audience").fill("designers who hand off files by email")
    await page.get_by_role("button", name="Draft the syllabus").click()
    await expect(page.get_by_role("button", name="Try again")).to_be_visible()
    # Links styled as buttons carry role="button".
    await expect(page.get_by_role("button", name="Edit the brief")).to_be_visible()
    await _shot(page, "authoring-run-syllabus-failed")
    await page.get_by_role("link", name=re.compile("Broken Brief")).first.click()
    await expect(page.get_by_text("Drafting the syllabus failed.")).to_be_visible()
    await _shot(page, "authoring-course-syllabus-failed")
    await page.locator("#no-syllabus").get_by_role("button", name="Edit the brief").click()
    await expect(page.get_by_role("heading", name="Edit the brief")).to_be_visible()
    await page.get_by_label("Course title").fill("Mended Brief")
    await _shot(page, "authoring-edit-brief")
    await page.get_by_role("button", name="Save and draft again").click()
    await page.get_by_role("button", name="Review the draft syllabus").click()
    await expect(page.get_by_role("heading", name="Mended Brief", exact=True)).to_be_visible()

    # Lessons that fail: their quizzes and projects wait, and every page says what to do.
    await client.login(personas.admin.email)
    syllabus, run = await generated_content(client, title="Failing Lessons [mock:lesson:invalid_json*3]")
    await page.goto(f"/admin/runs/{run['id']}")
    await expect(page.get_by_text(re.compile(r"\d+ waiting for a failed lesson"))).to_be_visible()
    await expect(page.get_by_role("button", name=re.compile(r"Regenerate all failed \(\d+\)"))).to_be_visible()
    await _shot(page, "authoring-run-content-failed")
    quiz = (await _items(str(syllabus["id"]), kind="QUIZ", module_index=1, lesson_index=1))[0]
    await page.goto(f"/admin/items/{quiz['id']}")
    await expect(page.get_by_text("Waiting for lesson 1.1.")).to_be_visible()
    await _shot(page, "authoring-item-blocked")
    await page.locator(".flash-warning").get_by_role("link").first.click()
    await expect(page.get_by_text("Generation failed.")).to_be_visible()
    await page.goto(f"/admin/syllabi/{syllabus['id']}")
    await _shot(page, "authoring-syllabus-blocked")
    await page.goto(f"/admin/runs/{run['id']}")
    await page.get_by_role("button", name=re.compile("Regenerate all failed")).click()
    await expect(page.get_by_role("heading", name="Regenerating failed items")).to_be_visible()
    retry = await GenerationRun.select().where(GenerationRun.source_id == run["id"]).first()
    assert retry["kind"] == "RETRY" and retry["total"] == run["failed"]
