"""The learner's path in a real browser: on a course this test publishes (exact figures), and on the demo course the
first run publishes (it reads well on a phone)."""

import re

import msgspec
import pytest
from playwright.async_api import Page, expect

from app.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo
from app.player.tables import Enrollment, LessonProgress, QuizAttempt
from app.publishing.schemas import CoursePackage
from tests.browser.conftest import page_overflow, shot, sign_in
from tests.publishing.helpers import published_course

pytestmark = pytest.mark.browser
LEARNER = DEMO_USERS[2][0]


@pytest.fixture
async def demo() -> None:
    await seed_demo()  # idempotent: another test may have seeded it already


def _percent(done: int, total: int) -> int:
    return int(100 * done / total + 0.5)  # Jinja's round(): halves go up


async def test_a_learner_reads_lessons_takes_the_quiz_and_sees_progress(page: Page, client, personas):
    # Its own workspace, course and learner: every figure below is exact, whatever other tests did.
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    course_id = str(syllabus["id"])
    lessons = msgspec.json.decode(package["document"], type=CoursePackage).lessons
    total = len(lessons)

    await sign_in(page, personas.learner.email, landing="/learn")
    await expect(page.get_by_role("heading", name="Your courses")).to_be_visible()
    await page.locator(f"#course-{course_id}").get_by_role("button", name="Enroll").click()
    await page.wait_for_url(re.compile(rf"/learn/{course_id}$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(package["title"])
    await expect(page.locator(".progress-figure")).to_have_text(f"0 of {total} lessons done 0%")
    await shot(page, "learner-course-overview")

    await page.get_by_role("button", name="Start the course").click()
    await page.wait_for_url(re.compile(rf"/learn/{course_id}/lesson/1$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(lessons[0].lesson.title)
    await expect(page.get_by_text("Objectives")).to_be_visible()
    await shot(page, "learner-lesson-1")

    await page.get_by_role("button", name="Next →").click()  # an htmx swap with a pushed URL
    await page.wait_for_url(re.compile(rf"/learn/{course_id}/lesson/2$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(lessons[1].lesson.title)
    await page.keyboard.press("ArrowLeft")  # keyboard navigation back to lesson 1
    await page.wait_for_url(re.compile(rf"/learn/{course_id}/lesson/1$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(lessons[0].lesson.title)

    # All answers right but the last: a pass, which completes lesson 1.
    questions = lessons[0].quiz.questions
    fieldsets = page.locator(".quiz-form fieldset")
    await expect(fieldsets).to_have_count(len(questions))
    for i, question in enumerate(questions):
        choice = question.correct_index if i < len(questions) - 1 else (question.correct_index + 1) % 4
        await fieldsets.nth(i).locator("label.quiz-choice").nth(choice).click()
    await page.get_by_role("button", name="Check answers").click()
    right, n = len(questions) - 1, len(questions)
    score = round(100 * right / n)
    await expect(page.locator(".quiz-score strong")).to_have_text(f"{right} of {n} correct ({score}%)")
    await expect(page.locator(".quiz-score .score-note")).to_have_text("Passed: lesson marked complete.")
    await expect(page.locator(".quiz-feedback > li.wrong")).to_have_count(1)
    await shot(page, "learner-quiz-result")
    enrollment = await Enrollment.select(Enrollment.id, Enrollment.package_id).where(
        Enrollment.user_id == personas.learner.user_id).first()
    assert enrollment["package_id"] == package["id"]
    attempts = await QuizAttempt.select().where(QuizAttempt.enrollment_id == enrollment["id"])
    assert [(a["module_index"], a["lesson_index"], a["correct"], a["total"], a["passed"]) for a in attempts] == [
        (lessons[0].module_index, lessons[0].lesson_index, right, n, True)]

    await page.goto(f"/learn/{course_id}/lesson/2")
    await page.get_by_role("button", name="Mark lesson complete").click()
    await expect(page.get_by_text("You completed this lesson.")).to_be_visible()
    await page.get_by_role("link", name="All lessons").click()
    await page.wait_for_url(re.compile(rf"/learn/{course_id}$"))
    await expect(page.locator(".progress-figure")).to_have_text(f"2 of {total} lessons done {_percent(2, total)}%")
    resume = page.get_by_role("button", name="Continue", exact=True)  # the first lesson not done yet
    await expect(resume).to_have_attribute("href", f"/learn/{course_id}/lesson/3")
    await expect(page.locator(".lesson-list > li.done")).to_have_count(2)
    await shot(page, "learner-course-progress")
    progress = await LessonProgress.select().where(LessonProgress.enrollment_id == enrollment["id"]).order_by(
        LessonProgress.module_index, LessonProgress.lesson_index)
    assert [(p["module_index"], p["lesson_index"], p["completed_via"]) for p in progress] == [
        (lessons[0].module_index, lessons[0].lesson_index, "QUIZ"),
        (lessons[1].module_index, lessons[1].lesson_index, "BUTTON")]


async def test_lessons_read_well_on_a_phone(new_context, demo):
    context = await new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    await sign_in(page, LEARNER, DEMO_PASSWORD, landing="/learn")
    await page.get_by_role("link", name="Python for Data Analysis").first.click()
    link = page.locator("a[href*='/lesson/3']").first
    await link.click()
    await page.wait_for_url("**/lesson/3")
    assert await page_overflow(page) == 0
    await shot(page, "phone-learner-lesson")
