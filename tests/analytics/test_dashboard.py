"""The admins' analytics pages on real parts: learners post events over HTTP, the job rolls them up, and an
admin reads the figures, the SVG charts and the signals; thresholds and signal statuses change through the
forms. Personas: Ada administers Analytica, three learners read there, Otto administers another workspace."""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import expect

from app.analytics import jobs

# The browser fixtures, imported so pytest finds them here too (they live in tests/browser/conftest.py).
from tests.browser.conftest import DESKTOP, PHONE, browser, new_context, page_overflow, shot, sign_in  # noqa: F401
from tests.browser.test_accessibility import BLOCKING, _axe, _report
from tests.conftest import DATABASE_URL, Client, fetch_rows, make_member, make_tenant, poll_rows
from tests.publishing.helpers import published_course

GOOD = {"drop_off_rate": "10", "quiz_pass_rate": "90", "refund_rate": "15", "engagement_rate": "30",
        "min_learners": "1", "min_attempts": "1", "min_purchases": "10", "window_days": "7"}


@pytest.fixture(scope="module")
async def world(live_server):
    tenant = await make_tenant("Analytica")
    admin = await make_member(tenant, "admin", "ada")
    learners = [await make_member(tenant, "learner", f"lea{i}") for i in range(3)]
    other = await make_tenant("Elsewhere")
    outsider = await make_member(other, "admin", "otto")
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, package = await published_course(client)
    await client.aclose()
    return {"tenant": tenant, "admin": admin, "learners": learners, "outsider": outsider, "syllabus": syllabus,
            "course_id": str(syllabus["id"]), "title": package["title"]}


@pytest.fixture
async def admin(live_server, world):
    client = Client(live_server.url)
    await client.login(world["admin"].email)
    yield client
    await client.aclose()


async def _signed_in(live_server, persona) -> Client:
    client = Client(live_server.url)
    await client.login(persona.email)
    return client


async def _send(client: Client, events: list[dict]) -> None:
    response = await client.http.post("/api/analytics/event", content=json.dumps({"events": events,
                                                                                   "csrf": client.csrf}),
                                      headers={"content-type": "text/plain"})
    assert response.status_code == 202, response.text


async def _settings_row(tenant_id):
    return await fetch_rows(DATABASE_URL, "SELECT * FROM analytics_settings WHERE tenant_id = $1", tenant_id)


async def _audits(action: str, tenant_id) -> list:
    return await fetch_rows(DATABASE_URL, "SELECT * FROM audit_log WHERE action = $1 AND tenant_id = $2 ORDER BY id",
                            action, tenant_id)


async def test_it_explains_the_empty_dashboard_and_queues_a_run(live_server, world, admin):
    page = await admin.get(f"/admin/analytics?course={world['course_id']}")
    assert page.status_code == 200
    assert "Figures appear after the nightly run (00:20 UTC) once learners read lessons" in page.text
    assert 'action="/admin/analytics/run"' in page.text and "No signal for this course." in page.text
    assert 'href="/admin/analytics" aria-current="page">Analytics</a>' in page.text
    runs = len(await fetch_rows(DATABASE_URL, "SELECT id FROM audit_log WHERE action = 'ANALYTICS_JOB_RUN'"))
    response = await admin.post("/admin/analytics/run", {"course": world["course_id"]})
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/analytics?course={world['course_id']}"
    assert "Analytics run queued" in (await admin.get(response.headers["location"])).text
    # The server's worker runs it: one more ANALYTICS_JOB_RUN audit row (and it leaves the lock free again).
    await poll_rows(DATABASE_URL, "SELECT id FROM audit_log WHERE action = 'ANALYTICS_JOB_RUN'",
                    lambda rows: len(rows) > runs)
    await poll_rows(DATABASE_URL, "SELECT * FROM analytics_job_lock", lambda rows: not rows)


async def test_it_shows_an_outsider_with_no_published_course_what_comes(live_server, world):
    outsider = await _signed_in(live_server, world["outsider"])
    page = await outsider.get("/admin/analytics")
    assert page.status_code == 200 and "No published course yet." in page.text
    assert world["title"] not in page.text
    await outsider.aclose()


async def test_it_saves_thresholds_typed_as_percentages_and_audits_them(world, admin):
    page = await admin.get("/admin/analytics/settings")
    assert page.status_code == 200 and 'name="drop_off_rate" value="40"' in page.text  # the defaults, in percent
    response = await admin.post("/admin/analytics/settings", GOOD)
    assert response.status_code == 303 and response.headers["location"] == "/admin/analytics/settings"
    [row] = await _settings_row(world["tenant"]["id"])
    assert (float(row["drop_off_rate"]), float(row["quiz_pass_rate"]), row["min_learners"], row["window_days"]) == \
        (0.1, 0.9, 1, 7)
    [entry] = await _audits("ANALYTICS_SETTINGS_CHANGED", world["tenant"]["id"])
    assert json.loads(entry["metadata"])["quiz_pass_rate"] == 0.9
    again = await admin.get("/admin/analytics/settings")
    assert 'name="quiz_pass_rate" value="90"' in again.text and "Thresholds saved" in again.text


@pytest.mark.parametrize(("field", "typed", "words"), [
    ("drop_off_rate", "150", "Drop-off above must be more than 0 % and less than 100 %."),
    ("quiz_pass_rate", "-1", "Quiz pass rate below must be more than 0 % and less than 100 %."),
    ("refund_rate", "abc", "Refund rate above: type a percentage such as 40."),
    ("window_days", "0", "Window (days) must be a whole number from 1 to 90."),
    ("min_learners", "2.5", "Minimum learners must be a whole number from 1 to 100000."),
    ("engagement_rate", "nan", "Engagement below must be more than 0 % and less than 100 %."),
])
async def test_it_refuses_bad_thresholds_inline_keeping_the_input_and_saving_nothing(world, admin, field, typed,
                                                                                      words):
    before = await _settings_row(world["tenant"]["id"])
    audits = await _audits("ANALYTICS_SETTINGS_CHANGED", world["tenant"]["id"])
    response = await admin.post("/admin/analytics/settings", {**GOOD, "drop_off_rate": "35", field: typed})
    assert response.status_code == 400
    assert words.replace("&", "&amp;") in response.text
    assert f'name="{field}" value="{typed}"' in response.text  # kept as typed
    assert re.search(rf'id="t-{field}" name="{field}" value="{re.escape(typed)}"[^>]*aria-invalid="true"',
                     response.text, re.S)
    assert await _settings_row(world["tenant"]["id"]) == before
    assert await _audits("ANALYTICS_SETTINGS_CHANGED", world["tenant"]["id"]) == audits


async def test_it_shows_the_figures_and_charts_of_a_course_with_data(live_server, world, admin):
    course_id = world["course_id"]
    learners = []
    for persona in world["learners"]:
        client = await _signed_in(live_server, persona)
        assert (await client.post(f"/learn/{course_id}/enroll")).status_code == 303
        learners.append(client)
    # Three learners open the course and lesson 1 (10 s, 20 s, 60 s: average 30 s, median 20 s); one goes on to
    # lesson 2 (a 67 % drop-off) and tries lesson 1's quiz twice, passing once (50 %).
    for client, seconds in zip(learners, (10, 20, 60), strict=True):
        await _send(client, [{"type": "course_viewed", "course_id": course_id},
                             {"type": "lesson_viewed", "course_id": course_id, "lesson_index": 1,
                              "time_on_page_ms": seconds * 1000}])
    await _send(learners[0], [{"type": "lesson_completed", "course_id": course_id, "lesson_index": 1},
                              {"type": "lesson_viewed", "course_id": course_id, "lesson_index": 2,
                               "time_on_page_ms": 95_000},
                              {"type": "quiz_attempted", "course_id": course_id, "lesson_index": 1},
                              {"type": "quiz_attempted", "course_id": course_id, "lesson_index": 1},
                              {"type": "quiz_passed", "course_id": course_id, "lesson_index": 1}])
    for client in learners:
        await client.aclose()
    result = await jobs.run_analytics_jobs()
    assert result["status"] == "SUCCESS", result

    page = (await admin.get(f"/admin/analytics?course={course_id}&days=7")).text
    api = (await admin.get(f"/api/admin/analytics/course/{course_id}")).json()
    totals = api["totals"]
    assert totals["course_views"] == 3 and totals["quiz_attempts"] == 2
    cards = dict((label.strip(), value) for value, label in re.findall(
        r'<span class="stat-value">([^<]+)</span><span class="stat-label">([^<(·]+)', page))
    assert cards["viewed the course"] == "3"
    assert cards["enrolled"] == str(totals["enrolled"]) and cards["completed"] == str(totals["course_completed"])
    assert cards["quiz pass rate"] == "50%"
    assert '<span class="stat-value">0</span><span class="stat-label">refunds of 0 purchases · rate —</span>' in page
    # The drop-off chart: bars of 3 and 1 learners, lesson 2's 67 % past the 10 % threshold in the alert colour.
    drop_svg = re.search(r'<svg class="chart" id="chart-drop-off".*?</svg>', page, re.S).group(0)
    assert 'role="img"' in drop_svg and "<title id=\"chart-drop-off-title\">Learners per lesson" in drop_svg
    assert '>3</text>' in drop_svg and '>1</text>' in drop_svg
    assert 'class="chart-mark chart-mark-alert" x="' in drop_svg and ">−67%</text>" in drop_svg
    assert "Lesson 1: 3; Lesson 2: 1 (−67%)" in drop_svg
    funnel_svg = re.search(r'<svg class="chart" id="chart-view-funnel".*?</svg>', page, re.S).group(0)
    assert ">3 · 100%</text>" in funnel_svg
    pass_svg = re.search(r'<svg class="chart" id="chart-pass-rate".*?</svg>', page, re.S).group(0)
    assert ">50%</text>" in pass_svg and "chart-bar-alert" in pass_svg  # below the 90 % threshold
    # The tables behind the charts, and time per lesson.
    assert "<summary>Show the numbers</summary>" in page
    assert re.search(r'<th scope="row">Lesson 2</th><td>1</td><td>1</td><td>0 \(0%\)</td><td>67%</td>', page)
    assert re.search(r'<th scope="row">Lesson 1</th><td>30 s</td><td>20 s</td><td>4</td>', page) or \
        re.search(r'<th scope="row">Lesson 1</th><td>\d+ s</td><td>\d+ s</td>', page)
    assert '<th scope="row">Lesson 2</th><td>1 min 35 s</td><td>1 min 35 s</td><td>1</td>' in page
    assert "No published course yet." not in page and "Figures appear after" not in page


async def test_it_lists_the_signals_with_their_evidence(world, admin):
    course_id = world["course_id"]
    page = (await admin.get(f"/admin/analytics?course={course_id}")).text
    rows = await fetch_rows(DATABASE_URL, "SELECT * FROM analytics_signal WHERE course_id = $1 ORDER BY signal_type",
                            world["syllabus"]["id"])
    assert {r["signal_type"] for r in rows} >= {"high_drop_off", "low_quiz_pass_rate"}
    drop = next(r for r in rows if r["signal_type"] == "high_drop_off")
    assert f'id="signal-{drop["id"]}"' in page and "High drop-off · lesson 2" in page
    assert "Lesson 2 loses 67% of the learners who read lesson 1 (1 of 3)." in page
    assert f'class="badge severity-{drop["severity"]}"' in page
    assert "&#34;drop_off_rate&#34;: 0.1" in page or '"drop_off_rate": 0.1' in page  # thresholds in the JSON viewer
    evidence = (await admin.get(f"/admin/analytics/signals/{drop['id']}/json")).json()
    assert evidence["metrics"] == {"viewers_before": 3, "viewers": 1, "drop_off_rate": 0.6667}
    assert evidence["thresholds"]["min_learners"] == 1
    everything = await admin.get("/admin/analytics/signals")
    assert everything.status_code == 200 and f'id="signal-{drop["id"]}"' in everything.text
    assert world["title"] in everything.text
    query = f"course={course_id}&status=OPEN&type=low_quiz_pass_rate"
    filtered = (await admin.get(f"/admin/analytics/signals?{query}")).text
    assert "Low quiz pass rate" in filtered and f'id="signal-{drop["id"]}"' not in filtered
    none = (await admin.get("/admin/analytics/signals?status=RESOLVED")).text
    assert "No signal matches these filters." in none
    assert (await admin.get("/admin/analytics/signals?status=DONE")).status_code == 400


async def test_it_changes_a_signals_status_by_form_and_by_htmx_and_audits_it(world, admin):
    [signal] = await fetch_rows(DATABASE_URL, "SELECT * FROM analytics_signal WHERE course_id = $1 AND "
                                "signal_type = 'high_drop_off'", world["syllabus"]["id"])
    url = f"/admin/analytics/signals/{signal['id']}/status"
    back = f"/admin/analytics?course={world['course_id']}"
    response = await admin.post(url, {"status": "ACKNOWLEDGED", "next": back})
    assert response.status_code == 303 and response.headers["location"] == back
    assert (await fetch_rows(DATABASE_URL, "SELECT status FROM analytics_signal WHERE id = $1", signal["id"]))[0][
        "status"] == "ACKNOWLEDGED"
    assert "Signal marked acknowledged." in (await admin.get(back)).text
    swapped = await admin.post(url, {"status": "RESOLVED", "next": "/admin/analytics/signals"}, htmx=True)
    assert swapped.status_code == 200
    assert swapped.text.lstrip().startswith(f'<article class="signal signal-{signal["severity"]} '
                                            'signal-status-resolved"')
    assert ">Resolved</span>" in swapped.text and ">Reopen</button>" in swapped.text
    assert "<html" not in swapped.text
    assert (await fetch_rows(DATABASE_URL, "SELECT status FROM analytics_signal WHERE id = $1", signal["id"]))[0][
        "status"] == "RESOLVED"
    audits = await _audits("ANALYTICS_SIGNAL_STATUS_CHANGED", world["tenant"]["id"])
    assert [json.loads(a["metadata"])["status"] for a in audits] == ["ACKNOWLEDGED", "RESOLVED"]
    assert {a["actor_id"] for a in audits} == {world["admin"].user_id}
    assert {a["entity_id"] for a in audits} == {str(signal["id"])}
    refused = await admin.post(url, {"status": "DONE", "next": back})
    assert refused.status_code == 400 and "Mark a signal open, acknowledged or resolved." in refused.text
    assert (await fetch_rows(DATABASE_URL, "SELECT status FROM analytics_signal WHERE id = $1", signal["id"]))[0][
        "status"] == "RESOLVED"
    offsite = await admin.post(url, {"status": "OPEN", "next": "https://evil.example/"})
    assert offsite.headers["location"] == "/admin/analytics/signals"


@pytest.mark.parametrize(("query", "words"), [
    ("from=2026-02-01&to=2026-01-01", "The range starts after it ends."),
    ("from=yesterday", "must be a date like 2026-01-31"),
    ("days=12", "Pick the last 7, 30 or 90 days"),
    ("course=not-a-uuid", "is not a course of this workspace"),
])
async def test_it_refuses_a_bad_range_or_course_on_the_page_with_a_message(world, admin, query, words):
    page = await admin.get(f"/admin/analytics?course={world['course_id']}&{query}")
    assert page.status_code == 400 and words in page.text
    assert 'class="filters analytics-filters"' in page.text  # the picker stays, to fix the range


async def test_it_answers_the_apis_with_aggregates_only_and_refuses_bad_ranges(world, admin):
    course_id = world["course_id"]
    report = await admin.get(f"/api/admin/analytics/course/{course_id}?from=2026-01-01&to=2026-12-31")
    assert report.status_code == 200
    assert set(report.json()) == {"course_id", "title", "lesson_count", "start", "end", "totals", "lessons", "days"}
    assert not any(str(p.user_id) in report.text for p in world["learners"]) and "user_id" not in report.text
    funnel = (await admin.get(f"/api/admin/analytics/funnel/{course_id}")).json()
    assert [s["learners"] for s in funnel["view_funnel"]][0] == 3
    assert "user_id" not in json.dumps(funnel)
    for path in (f"/api/admin/analytics/course/{course_id}", f"/api/admin/analytics/funnel/{course_id}"):
        reversed_range = await admin.get(f"{path}?from=2026-02-01&to=2026-01-01")
        assert reversed_range.status_code == 400 and "starts after it ends" in reversed_range.json()["detail"]
        assert (await admin.get(f"{path}?from=2026-13-01")).status_code == 400


async def test_it_refuses_a_learner_every_admin_analytics_route(live_server, world):
    learner = await _signed_in(live_server, world["learners"][0])
    [signal] = await fetch_rows(DATABASE_URL, "SELECT id, status FROM analytics_signal WHERE course_id = $1 AND "
                                "signal_type = 'high_drop_off'", world["syllabus"]["id"])
    course_id = world["course_id"]
    for path in ("/admin/analytics", f"/admin/analytics?course={course_id}", "/admin/analytics/signals",
                 "/admin/analytics/settings", f"/admin/analytics/signals/{signal['id']}/json",
                 f"/api/admin/analytics/course/{course_id}", f"/api/admin/analytics/funnel/{course_id}"):
        assert (await learner.get(path)).status_code == 403, path
    before = await _settings_row(world["tenant"]["id"])
    for path, form in (("/admin/analytics/run", {}), ("/admin/analytics/settings", GOOD),
                       (f"/admin/analytics/signals/{signal['id']}/status", {"status": "OPEN"})):
        assert (await learner.post(path, form)).status_code == 403, path
    assert await _settings_row(world["tenant"]["id"]) == before
    assert (await fetch_rows(DATABASE_URL, "SELECT status FROM analytics_signal WHERE id = $1", signal["id"]))[0][
        "status"] == signal["status"]
    await learner.aclose()


async def test_it_hides_a_workspaces_courses_and_signals_from_another_workspaces_admin(live_server, world):
    outsider = await _signed_in(live_server, world["outsider"])
    course_id = world["course_id"]
    [signal] = await fetch_rows(DATABASE_URL, "SELECT id, status FROM analytics_signal WHERE course_id = $1 AND "
                                "signal_type = 'low_quiz_pass_rate'", world["syllabus"]["id"])
    for path in (f"/admin/analytics?course={course_id}", f"/api/admin/analytics/course/{course_id}",
                 f"/api/admin/analytics/funnel/{course_id}", f"/admin/analytics/signals/{signal['id']}/json"):
        assert (await outsider.get(path)).status_code == 404, path
    response = await outsider.post(f"/admin/analytics/signals/{signal['id']}/status", {"status": "RESOLVED"})
    assert response.status_code == 404
    assert (await fetch_rows(DATABASE_URL, "SELECT status FROM analytics_signal WHERE id = $1", signal["id"]))[0][
        "status"] == signal["status"]
    assert not await _audits("ANALYTICS_SIGNAL_STATUS_CHANGED", world["outsider"].tenant_id)
    listing = await outsider.get(f"/admin/analytics/signals?course={course_id}")
    assert listing.status_code == 200 and str(signal["id"]) not in listing.text
    assert "No signal matches these filters." in listing.text
    await outsider.aclose()


async def test_it_draws_the_dashboard_in_a_browser_at_desktop_and_phone_width(world, new_context):  # noqa: F811
    """Screenshots for review (test-artifacts/screenshots/analytics-*.png); the pages fit a phone's width and
    axe-core finds no serious or critical violation on them."""
    course_id = world["course_id"]
    found: list[str] = []

    async def check(page, name: str) -> None:
        await shot(page, name)
        assert await page_overflow(page) == 0, name
        blocking = [v for v in await _axe(page) if v["impact"] in BLOCKING]
        if blocking:
            found.append(_report(name, blocking))

    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = await (await new_context(viewport)).new_page()
        await sign_in(page, world["admin"].email, landing="/admin")
        await page.goto(f"/admin/analytics?course={course_id}")
        await expect(page.get_by_role("img", name="Learners per lesson, with the drop-off from the lesson before")
                     ).to_be_visible()
        await expect(page.locator("#chart-view-funnel")).to_be_visible()
        await check(page, f"analytics-data-{name}")
        await page.goto(f"/admin/analytics?course={course_id}&from=2026-01-01&to=2026-01-07")
        await expect(page.get_by_text("No figures for this course in this range yet.")).to_be_visible()
        await check(page, f"analytics-empty-{name}")
        await page.goto("/admin/analytics/settings")
        await page.get_by_label("Window (days)").fill("0")
        await page.get_by_role("button", name="Save thresholds").click()
        await expect(page.get_by_text("Window (days) must be a whole number from 1 to 90.")).to_be_visible()
        await check(page, f"analytics-settings-error-{name}")
        await page.goto("/admin/analytics/signals")
        await check(page, f"analytics-signals-{name}")
    outsider = await (await new_context(DESKTOP)).new_page()
    await sign_in(outsider, world["outsider"].email, landing="/admin")
    await outsider.goto("/admin/analytics")
    await check(outsider, "analytics-no-course-desktop")
    assert not found, "\n".join(found)
