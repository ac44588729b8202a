"""A twelve-lesson course with demo-like reading (learners dropping off lesson after lesson, quizzes of mixed
difficulty) drawn in a real browser: no two texts of the quiz pass-rate or drop-off chart overlap, measured
with the browser's own font metrics, and screenshots are kept for review (test-artifacts/screenshots/).
Personas: Dana administers Dozenly, eight learners read there."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import expect

from app.analytics import jobs

# The browser fixtures, imported so pytest finds them here too (they live in tests/browser/conftest.py).
from tests.browser.conftest import DESKTOP, PHONE, browser, new_context, page_overflow, shot, sign_in  # noqa: F401
from tests.conftest import Client, make_member, make_tenant
from tests.publishing.helpers import published_course

LESSONS = 12
# Boxes of every text in a chart, as the browser lays them out, and the pairs that intersect.
OVERLAPS_JS = """(id) => {
  const boxes = [...document.querySelectorAll(`#${id} text`)].map(t => [t.textContent, t.getBoundingClientRect()]);
  const hits = [];
  boxes.forEach(([a, r], i) => boxes.slice(i + 1).forEach(([b, s]) => {
    // 3 px apart at least: texts that touch read as one ("100%8 of 8")
    if (r.left < s.right + 3 && s.left < r.right + 3 && r.top < s.bottom && s.top < r.bottom) hits.push(`${a} / ${b}`);
  }));
  return {texts: boxes.length, hits};
}"""


@pytest.fixture(scope="module")
async def world(live_server):
    tenant = await make_tenant("Dozenly")
    admin = await make_member(tenant, "admin", "dana")
    learners = [await make_member(tenant, "learner", f"dozen{i}") for i in range(8)]
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, package = await published_course(client, time_budget_hours="6")  # the mock plans 12 lessons
    await client.aclose()
    assert package["lesson_count"] == LESSONS
    course_id = str(syllabus["id"])
    # Learner i reads lessons 1 to 12 - i (a steady drop-off) and takes each lesson's quiz, failing the
    # even lessons' quizzes once before passing (a 50 % pass rate there, 100 % elsewhere).
    for i, persona in enumerate(learners):
        reader = Client(live_server.url)
        await reader.login(persona.email)
        assert (await reader.post(f"/learn/{course_id}/enroll")).status_code == 303
        events = [{"type": "course_viewed", "course_id": course_id}]
        for n in range(1, LESSONS + 1 - i):
            events += [{"type": "lesson_viewed", "course_id": course_id, "lesson_index": n,
                        "time_on_page_ms": 60_000 + 7_000 * n + 3_000 * i},
                       {"type": "lesson_completed", "course_id": course_id, "lesson_index": n}]
            events += [{"type": "quiz_attempted", "course_id": course_id, "lesson_index": n}] * (2 if n % 2 == 0 else 1)
            events.append({"type": "quiz_passed", "course_id": course_id, "lesson_index": n})
        response = await reader.http.post("/api/analytics/event", headers={"content-type": "text/plain"},
                                          content=json.dumps({"events": events, "csrf": reader.csrf}))
        assert response.status_code == 202, response.text
        await reader.aclose()
    result = await jobs.run_analytics_jobs()
    assert result["status"] == "SUCCESS", result
    return {"admin": admin, "course_id": course_id}


async def test_it_draws_twelve_lessons_without_overlapping_labels(world, new_context):  # noqa: F811
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = await (await new_context(viewport)).new_page()
        await sign_in(page, world["admin"].email, landing="/admin")
        await page.goto(f"/admin/analytics?course={world['course_id']}")
        chart = page.get_by_role("img", name="Quiz pass rate per lesson")
        await expect(chart).to_be_visible()
        await expect(chart.locator("text.chart-label")).to_have_text([f"Lesson {n}" for n in range(1, LESSONS + 1)])
        for chart_id in ("chart-pass-rate", "chart-drop-off"):
            found = await page.evaluate(OVERLAPS_JS, chart_id)
            assert found["texts"] > LESSONS and found["hits"] == [], (name, chart_id, found)
        await shot(page, f"analytics-12-lessons-{name}")
        assert await page_overflow(page) == 0, name  # twelve rows make the charts taller, never wider
