"""The learner's path in a real browser, on the demo course the first run publishes."""

import pytest
from playwright.async_api import Page, expect

from app.accounts.tables import User
from app.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo
from app.player.tables import Enrollment, LessonProgress, QuizAttempt
from tests.browser.conftest import page_overflow, shot, sign_in

pytestmark = pytest.mark.browser
LEARNER = DEMO_USERS[2][0]


@pytest.fixture
async def demo() -> None:
    await seed_demo()  # idempotent: another test may have seeded it already


async def test_a_learner_reads_lessons_takes_the_quiz_and_sees_progress(page: Page, demo):
    await sign_in(page, LEARNER, DEMO_PASSWORD, landing="/learn")
    await expect(page.get_by_role("heading", name="Your courses")).to_be_visible()
    await shot(page, "learner-home")
    await page.get_by_role("link", name="Python for Data Analysis").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Python for Data Analysis")
    await shot(page, "learner-course-overview")

    await page.get_by_role("button", name="Start the course").click()
    await page.wait_for_url("**/lesson/1")
    await expect(page.locator(".lesson h2").first).to_be_visible()
    title_1 = await page.locator(".lesson h2").first.inner_text()
    await expect(page.get_by_text("Objectives")).to_be_visible()
    await shot(page, "learner-lesson-1")

    await page.get_by_role("button", name="Next →").click()  # an htmx swap with a pushed URL
    await page.wait_for_url("**/lesson/2")
    await expect(page.locator(".lesson h2").first).not_to_have_text(title_1)
    await page.keyboard.press("ArrowLeft")  # keyboard navigation back to lesson 1
    await page.wait_for_url("**/lesson/1")

    questions = page.locator(".quiz-form fieldset")
    count = await questions.count()
    assert count == 5
    for i in range(count):
        await questions.nth(i).locator("input[type=radio]").first.check()
    await page.get_by_role("button", name="Check answers").click()
    score = page.locator(".quiz-score")
    await expect(score).to_contain_text(f"of {count} correct")
    await expect(page.locator(".quiz-feedback li").first).to_be_visible()
    await shot(page, "learner-quiz-result")
    attempts = await QuizAttempt.count()
    assert attempts >= 1

    await page.goto(page.url.rsplit("/lesson/", 1)[0] + "/lesson/2")
    await page.get_by_role("button", name="Mark lesson complete").click()
    await expect(page.get_by_text("You completed this lesson.")).to_be_visible()
    await page.get_by_role("link", name="All lessons").click()
    progress = page.locator(".progress-panel")
    await expect(progress).to_contain_text("of")
    await expect(progress).not_to_contain_text("0 of")
    await expect(page.get_by_role("button", name="Continue where you left off")).to_be_visible()
    await shot(page, "learner-course-progress")
    learner = await User.select(User.id).where(User.email == LEARNER).first()
    enrollment = await Enrollment.select(Enrollment.id).where(Enrollment.user_id == learner["id"]).first()
    assert await LessonProgress.count().where(LessonProgress.enrollment_id == enrollment["id"]) >= 1


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
