"""Reader details and the header in a real browser (issue 9, items 8 and 9): the tab title, the h1 and focus
follow htmx lesson navigation; a passed quiz moves the progress bar without a reload; "Continue" opens the
first unfinished lesson; a partly answered quiz asks first; the best score shows on return; the admin header
fits one row at 1280 px and folds into a menu on phones; a role change asks first.

One workspace and published course for the module; each test signs in its own learner."""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec
import pytest
from playwright.async_api import Page, expect

from app.accounts.tables import Membership
from app.player.tables import Enrollment, LessonProgress, QuizAttempt
from app.publishing.schemas import CoursePackage, PackagedLesson
from tests.browser.conftest import DESKTOP, PHONE, page_overflow, shot, sign_in
from tests.conftest import Client, Persona, make_member, make_tenant
from tests.publishing.helpers import published_course

pytestmark = pytest.mark.browser


@dataclass
class Course:
    tenant: dict
    admin: Persona
    course_id: str
    lessons: list[PackagedLesson]


@pytest.fixture(scope="module")
async def course(live_server, migrated) -> Course:
    tenant = await make_tenant("Reader")
    admin = await make_member(tenant, "admin", "ada")
    client = Client(live_server.url)
    try:
        await client.login(admin.email)
        syllabus, package = await published_course(client)
    finally:
        await client.aclose()
    lessons = msgspec.json.decode(package["document"], type=CoursePackage).lessons
    return Course(tenant, admin, str(syllabus["id"]), lessons)


async def _learner(new_context, course: Course, viewport: dict = DESKTOP) -> tuple[Page, Persona]:
    learner = await make_member(course.tenant, "learner", "luca")
    page = await (await new_context(viewport)).new_page()
    await sign_in(page, learner.email, landing="/learn")
    await page.locator(f"#course-{course.course_id}").get_by_role("button", name="Enroll").click()
    await page.wait_for_url(re.compile(rf"/learn/{course.course_id}$"))
    return page, learner


async def _answer(page: Page, lesson: PackagedLesson, right: int, answered: int | None = None) -> None:
    """Tick the right option for the first `right` questions, a wrong one for the rest, up to `answered`."""
    fieldsets = page.locator(".quiz-form fieldset")
    for i, question in enumerate(lesson.quiz.questions[:answered]):
        choice = question.correct_index if i < right else (question.correct_index + 1) % 4
        await fieldsets.nth(i).locator("label.quiz-choice").nth(choice).click()


async def _enrollment_id(learner: Persona):
    return (await Enrollment.select(Enrollment.id).where(Enrollment.user_id == learner.user_id).first())["id"]


async def test_title_heading_and_focus_follow_the_lesson(new_context, course):
    page, _learner_ = await _learner(new_context, course)
    await page.goto(f"/learn/{course.course_id}/lesson/1")
    first, second = course.lessons[0].lesson.title, course.lessons[1].lesson.title
    await expect(page).to_have_title(f"{first} · Coursewright")
    await page.evaluate("window.__samePage = true")  # gone if the browser loads a new document
    await page.get_by_role("button", name="Next →").click()
    await page.wait_for_url(re.compile(r"/lesson/2$"))
    await expect(page).to_have_title(f"{second} · Coursewright")
    await expect(page.get_by_role("heading", level=1)).to_have_count(1)
    await expect(page.get_by_role("heading", level=1)).to_have_text(second)
    await expect(page.locator("#page-heading")).to_be_focused()
    assert await page.evaluate("window.__samePage === true")  # an htmx swap, not a page load
    await page.keyboard.press("ArrowLeft")
    await page.wait_for_url(re.compile(r"/lesson/1$"))
    await expect(page).to_have_title(f"{first} · Coursewright")
    await expect(page.locator("#page-heading")).to_be_focused()
    await expect(page.locator("#page-heading")).to_have_text(first)
    await shot(page, "reader-heading-focused")


async def test_a_partly_answered_quiz_asks_first_and_a_pass_moves_the_progress_bar(new_context, course):
    page, learner = await _learner(new_context, course)
    lesson = course.lessons[0]
    total = len(lesson.quiz.questions)
    await page.goto(f"/learn/{course.course_id}/lesson/1")
    await page.evaluate("window.__samePage = true")
    bar = page.locator("#course-progress")
    await expect(bar).to_have_attribute("value", "0")

    # Two of five answered: the browser asks; "Cancel" sends nothing.
    await _answer(page, lesson, right=2, answered=2)
    questions: list[str] = []

    async def dismiss(dialog):
        questions.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", dismiss)
    await page.get_by_role("button", name="Check answers").click()
    await expect(page.locator(".quiz-form")).to_be_visible()
    assert questions == [f"You answered 2 of {total} questions. Submit anyway?"]
    assert await QuizAttempt.count().where(QuizAttempt.enrollment_id == await _enrollment_id(learner)) == 0

    # "OK" sends it: 2 of 5 is a fail, scored as sent.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Check answers").click()
    await expect(page.locator(".quiz-score strong")).to_have_text(f"2 of {total} correct (40%)")
    attempts = await QuizAttempt.select(QuizAttempt.correct).where(
        QuizAttempt.enrollment_id == await _enrollment_id(learner))
    assert [a["correct"] for a in attempts] == [2]

    # All answered: no question; a pass completes the lesson and the bar at the top counts it at once.
    await page.get_by_role("button", name="Try again").click()
    await expect(page.locator("#quiz-heading-1")).to_be_focused()
    await expect(page.locator(".quiz-best-text")).to_have_text(f"Your best: 2 of {total} (40%), not passed yet.")
    page.once("dialog", dismiss)
    await _answer(page, lesson, right=total)
    await page.get_by_role("button", name="Check answers").click()
    await expect(page.locator(".quiz-score .score-note")).to_have_text("Passed: lesson marked complete.")
    assert len(questions) == 1  # no second question
    page.remove_listener("dialog", dismiss)
    await expect(bar).to_have_attribute("value", "1")
    await expect(bar).to_have_attribute("aria-label", f"Course progress: 1 of {len(course.lessons)} lessons done")
    assert await page.evaluate("window.__samePage === true")  # no reload
    await shot(page, "reader-progress-after-quiz")
    done = await LessonProgress.select().where(LessonProgress.enrollment_id == await _enrollment_id(learner))
    assert [(p["lesson_index"], p["completed_via"]) for p in done] == [(1, "QUIZ")]

    # Coming back later: the best attempt is shown above the quiz.
    await page.goto(f"/learn/{course.course_id}/lesson/1")
    await expect(page.locator(".quiz-best-text")).to_have_text(f"Your best: {total} of {total} (100%), passed.")
    await page.locator(".quiz-best").scroll_into_view_if_needed()
    await shot(page, "reader-best-score")


async def test_continue_opens_the_first_unfinished_lesson(new_context, course):
    page, learner = await _learner(new_context, course)
    for index in (1, 3):
        await page.goto(f"/learn/{course.course_id}/lesson/{index}")
        await page.get_by_role("button", name="Mark lesson complete").click()
        await expect(page.get_by_text("You completed this lesson.")).to_be_visible()
    await page.goto(f"/learn/{course.course_id}/lesson/4")
    await page.goto(f"/learn/{course.course_id}")
    await expect(page.locator(".up-next-title")).to_have_text(f"Lesson 2: {course.lessons[1].lesson.title}")
    await shot(page, "reader-overview-continue")
    await page.get_by_role("button", name="Continue", exact=True).click()
    await page.wait_for_url(re.compile(rf"/learn/{course.course_id}/lesson/2$"))
    await page.goto("/learn")
    await page.locator(f"#course-{course.course_id}").get_by_role("button", name="Continue").click()
    await page.wait_for_url(re.compile(rf"/learn/{course.course_id}/lesson/2$"))
    done = await LessonProgress.select().where(LessonProgress.enrollment_id == await _enrollment_id(learner))
    assert sorted(p["lesson_index"] for p in done) == [1, 3]


async def test_the_admin_header_fits_at_1280_and_folds_into_a_menu_on_phones(new_context, course):
    page = await (await new_context(DESKTOP)).new_page()
    await sign_in(page, course.admin.email, landing="/admin")
    await shot(page, "header-desktop-1280")
    links = page.locator("header .nav-links a")
    boxes = [await links.nth(i).bounding_box() for i in range(await links.count())]
    assert len(boxes) >= 8 and all(box is not None for box in boxes)
    assert len({round(box["y"]) for box in boxes}) == 1, boxes  # one row
    account = await page.locator("header .nav-account").bounding_box()
    assert boxes[-1]["x"] + boxes[-1]["width"] <= account["x"], (boxes[-1], account)  # no overlap
    assert abs(account["y"] - boxes[0]["y"]) < 20  # the account menus share the row
    assert await page_overflow(page) == 0
    await expect(page.locator("header .nav-menu")).to_be_hidden()

    phone = await (await new_context(PHONE)).new_page()
    await sign_in(phone, course.admin.email, landing="/admin")
    await expect(phone.locator("header .nav-links")).to_be_hidden()
    menu = phone.locator("header .nav-menu > summary")
    await expect(menu).to_be_visible()
    brand, summary = await phone.locator("header .brand").bounding_box(), await menu.bounding_box()
    assert abs((brand["y"] + brand["height"] / 2) - (summary["y"] + summary["height"] / 2)) < 4  # one row
    await expect(phone.get_by_role("link", name="Members", exact=True)).to_be_hidden()
    await menu.focus()
    await phone.keyboard.press("Enter")  # keyboard opens it
    await expect(phone.get_by_role("link", name="Members", exact=True)).to_be_visible()
    await shot(phone, "header-phone-menu-open")
    assert await page_overflow(phone) == 0
    await phone.get_by_role("link", name="Members", exact=True).click()
    await phone.wait_for_url(re.compile(r"/admin/members$"))
    await expect(phone.locator("header .nav-menu")).not_to_have_attribute("open", "")
    await shot(phone, "header-phone-members")


async def test_a_role_change_asks_first(new_context, course):
    member = await make_member(course.tenant, "learner", "rory")
    page = await (await new_context(DESKTOP)).new_page()
    await sign_in(page, course.admin.email, landing="/admin")
    await page.goto("/admin/members")
    row = page.locator(f"#member-{member.membership_id}")
    select = row.get_by_role("combobox")
    questions: list[str] = []

    async def dismiss(dialog):
        questions.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", dismiss)
    await select.select_option("admin")
    await expect(select).to_have_value("learner")  # "Cancel" puts the select back
    assert questions == ["Change the role of Rory to admin?"]
    role = (await Membership.select(Membership.role).where(Membership.id == member.membership_id).first())["role"]
    assert role == "learner"

    page.once("dialog", lambda dialog: dialog.accept())
    await select.select_option("admin")
    await expect(row).to_contain_text("Rory is now admin.")
    role = (await Membership.select(Membership.role).where(Membership.id == member.membership_id).first())["role"]
    assert role == "admin"
