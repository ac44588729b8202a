"""The player's analytics emitters end to end (issue 12, N3): a learner reads lessons and takes a quiz in
real chromium; static/analytics.js sends the events as beacons; they land in analytics_event; the job rolls
them up; the admin reads the figures over the API (and on the dashboard page when it exists)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import msgspec
import pytest
from playwright.async_api import Page, expect

from app.analytics import jobs
from app.publishing.schemas import CoursePackage
from tests.browser.conftest import shot, sign_in
from tests.conftest import DATABASE_URL, Client, fetch_rows, make_member, make_tenant
from tests.publishing.helpers import published_course

pytestmark = pytest.mark.browser

EVENTS_SQL = ("SELECT event_type, lesson_index, time_on_page_ms, user_id, tenant_id, package_version, metadata "
              "FROM analytics_event WHERE course_id = $1 AND event_type NOT IN ('enrolled', 'purchased', "
              "'course_completed') ORDER BY created_at, event_type")  # the player's events only


async def _events_until(course_id: uuid.UUID, wanted: list[tuple[str, int]], timeout: float = 15) -> list:
    """Poll the database until the beacons carrying `wanted` (type, lesson) arrived, in any order."""
    deadline = time.monotonic() + timeout
    rows: list = []
    while time.monotonic() < deadline:
        rows = await fetch_rows(DATABASE_URL, EVENTS_SQL, course_id)
        seen = sorted((r["event_type"], r["lesson_index"]) for r in rows)
        if seen == sorted(wanted):
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"events never matched: wanted {sorted(wanted)}, have "
                         f"{sorted((r['event_type'], r['lesson_index']) for r in rows)}")


async def _answer(page: Page, questions, right: bool) -> None:
    fieldsets = page.locator(".quiz-form fieldset")
    await expect(fieldsets).to_have_count(len(questions))
    for i, question in enumerate(questions):
        choice = question.correct_index if right else (question.correct_index + 1) % len(question.options)
        await fieldsets.nth(i).locator("label.quiz-choice").nth(choice).click()
    await page.get_by_role("button", name="Check answers").click()


async def test_it_sends_a_learners_reading_as_beacons_and_the_admin_sees_the_numbers(new_context, live_server):
    tenant = await make_tenant("Beacons")
    admin = await make_member(tenant, "admin", "bea")
    learner = await make_member(tenant, "learner", "ben")
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, package = await published_course(client)
    await client.aclose()
    course_id = syllabus["id"]
    lessons = msgspec.json.decode(package["document"], type=CoursePackage).lessons

    page = await (await new_context()).new_page()
    await sign_in(page, learner.email, landing="/learn")
    await page.goto(f"/learn/{course_id}")
    await page.get_by_role("button", name="Enroll in this course").click()
    await page.wait_for_url(re.compile(rf"/learn/{course_id}$"))
    # The preview before enrolling and the overview after it: two course views, sent when each page is left.
    await page.get_by_role("button", name="Start the course").click()
    await page.wait_for_url(re.compile(rf"/learn/{course_id}/lesson/1$"))
    started = time.monotonic()
    await page.wait_for_timeout(1200)
    # A failed attempt, "Try again" (the same lesson view goes on), then a pass that completes the lesson.
    await _answer(page, lessons[0].quiz.questions, right=False)
    await expect(page.locator(".quiz-score .score-note")).to_contain_text("Review the explanations")
    await page.get_by_role("button", name="Try again").click()
    await _answer(page, lessons[0].quiz.questions, right=True)
    await expect(page.locator(".quiz-score .score-note")).to_have_text("Passed: lesson marked complete.")
    await shot(page, "analytics-learner-quiz-passed")
    await page.get_by_role("button", name="Next →").click()  # an htmx swap: lesson 1's view ends here
    await page.wait_for_url(re.compile(rf"/learn/{course_id}/lesson/2$"))
    lesson1_wall_ms = (time.monotonic() - started) * 1000
    await page.wait_for_timeout(800)
    await page.get_by_role("button", name="Mark lesson complete").click()
    await expect(page.get_by_text("You completed this lesson.")).to_be_visible()
    await page.get_by_role("link", name="All lessons").click()  # a full navigation: pagehide flushes the queue
    await page.wait_for_url(re.compile(rf"/learn/{course_id}$"))

    # Three course views: the preview, the overview after enrolling, and this one (sent a moment after).
    wanted = [("course_viewed", 0)] * 3 + [("lesson_viewed", 1), ("quiz_attempted", 1),
              ("quiz_attempted", 1), ("quiz_passed", 1), ("lesson_completed", 1), ("lesson_viewed", 2),
              ("lesson_completed", 2)]
    rows = await _events_until(course_id, wanted)
    assert {(r["user_id"], r["tenant_id"], r["package_version"]) for r in rows} == {
        (learner.user_id, tenant["id"], 1)}
    views = {r["lesson_index"]: r["time_on_page_ms"] for r in rows if r["event_type"] == "lesson_viewed"}
    assert 1200 <= views[1] <= lesson1_wall_ms + 500, views
    assert 800 <= views[2] < 60_000, views
    scores = sorted(msgspec.json.decode(r["metadata"])["score_pct"] for r in rows
                    if r["event_type"] == "quiz_attempted")
    assert scores == [0, 100]

    summary = await jobs.run_analytics_jobs()
    assert summary["status"] == "SUCCESS", summary
    aggregates = await fetch_rows(
        DATABASE_URL, "SELECT lesson_index, views, completions, quiz_attempts, quiz_passes "
        "FROM analytics_daily_aggregate WHERE course_id = $1 ORDER BY lesson_index", course_id)
    by_lesson = {r["lesson_index"]: r for r in aggregates}
    assert (by_lesson[1]["views"], by_lesson[1]["completions"], by_lesson[1]["quiz_attempts"],
            by_lesson[1]["quiz_passes"]) == (1, 1, 2, 1)
    assert (by_lesson[2]["views"], by_lesson[2]["completions"]) == (1, 1)

    admin_client = Client(live_server.url)
    await admin_client.login(admin.email)
    report = (await admin_client.get(f"/api/admin/analytics/course/{course_id}")).json()
    assert report["totals"]["views"] == 2 and report["totals"]["completions"] == 2
    assert (report["totals"]["quiz_attempts"], report["totals"]["quiz_passes"], report["totals"]["pass_rate"]) == (
        2, 1, 0.5)
    assert report["lessons"][0]["viewers"] == 1 and report["lessons"][0]["completion_rate"] == 1
    await admin_client.aclose()
    # And on the dashboard page, in the browser.
    admin_page = await (await new_context()).new_page()
    await sign_in(admin_page, admin.email, landing="/admin")
    await admin_page.goto(f"/admin/analytics?course={course_id}")
    await expect(admin_page.locator("select[name=course]")).to_have_value(str(course_id))
    viewed = admin_page.locator(".stat", has_text="viewed the course").locator(".stat-value")
    await expect(viewed).to_have_text(str(report["totals"]["course_views"]))  # one learner, one day
    await expect(admin_page.locator("svg").first).to_be_visible()
    await shot(admin_page, "analytics-dashboard-after-beacons")

    # An outsider: an admin of another workspace sees none of it.
    other = await make_member(await make_tenant("Elsewhere"), "admin", "oz")
    outsider = Client(live_server.url)
    await outsider.login(other.email)
    assert (await outsider.get(f"/api/admin/analytics/course/{course_id}")).status_code == 404
    await outsider.aclose()


async def test_it_counts_only_visible_time_and_never_gets_in_the_way(new_context, live_server):
    """A hidden page stops the clock and sends what it has; a failing endpoint breaks nothing on the page."""
    tenant = await make_tenant("Visible")
    admin = await make_member(tenant, "admin", "vi")
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, _package = await published_course(client)
    assert (await client.post(f"/learn/{syllabus['id']}/enroll")).status_code == 303
    await client.aclose()
    course_id = syllabus["id"]

    context = await new_context()
    page = await context.new_page()
    await sign_in(page, admin.email, landing="/admin")
    await page.goto(f"/learn/{course_id}/lesson/1")
    await page.wait_for_timeout(600)
    # Hide the page as a tab switch does (headless chromium has no tab to switch to), for 3 s.
    hide = """() => { Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
                      document.dispatchEvent(new Event('visibilitychange')); }"""
    await page.evaluate(hide)
    await page.wait_for_timeout(3000)
    rows = await _events_until(course_id, [("lesson_viewed", 1)])
    assert 600 <= rows[0]["time_on_page_ms"] < 2500, rows[0]["time_on_page_ms"]

    # The endpoint failing (500) or unreachable: the learner notices nothing and no script error is thrown
    # (new_context fails the test on any uncaught error).
    await page.route("**/api/analytics/event", lambda route: route.fulfill(status=500, body="down"))
    await page.goto(f"/learn/{course_id}")
    await page.locator("a.continue-button").click()
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await expect(page.locator(".flash-error")).to_have_count(0)
