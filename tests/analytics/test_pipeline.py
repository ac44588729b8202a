"""The analytics pipeline on real parts: a learner's batch through the HTTP endpoint, the rollup and the
signals in the job, the admin APIs. Hand-computed expectations on a small event set."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.analytics import jobs
from tests.conftest import DATABASE_URL, Client, fetch_rows, make_member, make_tenant
from tests.publishing.helpers import published_course


@pytest.fixture(scope="module")
async def course(live_server):
    tenant = await make_tenant("Analytica")
    admin = await make_member(tenant, "admin", "ada")
    learners = [await make_member(tenant, "learner", f"lea{i}") for i in range(3)]
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, package = await published_course(client)
    await client.aclose()
    return {"tenant": tenant, "admin": admin, "learners": learners, "syllabus": syllabus, "package": package}


async def _learner(live_server, persona, syllabus_id) -> Client:
    client = Client(live_server.url)
    await client.login(persona.email)
    assert (await client.post(f"/learn/{syllabus_id}/enroll")).status_code == 303
    return client


async def _send(client: Client, events: list[dict], *, csrf: str | None = "body", content_type="text/plain"):
    body: dict = {"events": events}
    if csrf == "body":
        body["csrf"] = client.csrf
    return await client.http.post("/api/analytics/event", content=json.dumps(body),
                                  headers={"content-type": content_type})


async def test_it_stores_a_batch_with_the_sessions_identity_and_the_version_it_knows(live_server, course):
    client = await _learner(live_server, course["learners"][0], course["syllabus"]["id"])
    course_id = str(course["syllabus"]["id"])
    response = await _send(client, [
        {"type": "course_viewed", "course_id": course_id, "user_id": "00000000-0000-0000-0000-000000000000"},
        {"type": "lesson_viewed", "course_id": course_id, "lesson_index": 1, "time_on_page_ms": 30_000,
         "package_version": 99, "tenant_id": "nope"},
    ])
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 2}
    rows = await fetch_rows(DATABASE_URL, "SELECT * FROM analytics_event WHERE course_id = $1 "
                            "AND event_type <> 'enrolled' ORDER BY event_type",
                            course["syllabus"]["id"])
    assert [(r["event_type"], r["user_id"], r["package_version"], r["tenant_id"]) for r in rows] == [
        ("course_viewed", course["learners"][0].user_id, 1, course["tenant"]["id"]),
        ("lesson_viewed", course["learners"][0].user_id, 1, course["tenant"]["id"]),
    ]
    await client.aclose()


@pytest.mark.parametrize(("events", "words"), [
    ([{"type": "lesson_viewed"}, {"type": "page_scrolled"}], "Event 1"),
    ([{"type": "lesson_viewed"}, {"type": "purchased"}], "Event 1 (counting from 0): purchased is recorded"),
    ([{"type": "lesson_viewed", "lesson_index": -1}], "Event 0"),
    ([{"type": "lesson_viewed", "time_on_page_ms": 10**12}], "Event 0"),
    ([{"type": "lesson_viewed"}] * 1001, "1 to 1000 events"),
    ([], "1 to 1000 events"),
])
async def test_it_refuses_a_bad_batch_whole_and_names_the_first_bad_event(live_server, course, events, words):
    client = await _learner(live_server, course["learners"][1], course["syllabus"]["id"])
    course_id = str(course["syllabus"]["id"])
    filled = [{"course_id": course_id, **event} for event in events]
    before = await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM analytics_event")
    response = await _send(client, filled)
    assert response.status_code == 400, response.text
    assert words in response.json()["detail"]
    assert await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM analytics_event") == before
    await client.aclose()


async def test_it_refuses_malformed_json_a_foreign_course_and_a_missing_token(live_server, course):
    client = await _learner(live_server, course["learners"][1], course["syllabus"]["id"])
    response = await client.http.post("/api/analytics/event", content=b'{"events": [',
                                      headers={"content-type": "text/plain"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]
    foreign = await _send(client, [{"type": "course_viewed", "course_id": "00000000-0000-0000-0000-000000000001"}])
    assert foreign.status_code == 400 and "not one you can see" in foreign.json()["detail"]
    missing = await _send(client, [{"type": "course_viewed", "course_id": str(course["syllabus"]["id"])}], csrf=None)
    assert missing.status_code == 403
    await client.aclose()


async def test_it_rolls_a_day_up_idempotently_and_the_api_reports_it(live_server, course):
    syllabus_id = course["syllabus"]["id"]
    course_id = str(syllabus_id)
    clients = [await _learner(live_server, persona, syllabus_id) for persona in course["learners"]]
    # Lesson 1: three learners, 10 s, 20 s, 60 s (median 20 s); lesson 2: one of them. Two quiz attempts, one pass.
    for client, seconds in zip(clients, (10, 20, 60), strict=True):
        assert (await _send(client, [{"type": "lesson_viewed", "course_id": course_id, "lesson_index": 1,
                                      "time_on_page_ms": seconds * 1000}])).status_code == 202
    await _send(clients[0], [{"type": "lesson_completed", "course_id": course_id, "lesson_index": 1},
                             {"type": "lesson_viewed", "course_id": course_id, "lesson_index": 2,
                              "time_on_page_ms": 5000},
                             {"type": "quiz_attempted", "course_id": course_id, "lesson_index": 1},
                             {"type": "quiz_attempted", "course_id": course_id, "lesson_index": 1},
                             {"type": "quiz_passed", "course_id": course_id, "lesson_index": 1}])
    first = await jobs.run_analytics_jobs()
    assert first["status"] == "SUCCESS", first
    query = ("SELECT lesson_index, views, unique_viewers, completions, completion_rate, avg_time_ms, median_time_ms, "
             "quiz_attempts, quiz_passes, pass_rate, enrolled FROM analytics_daily_aggregate WHERE course_id = $1 "
             "ORDER BY lesson_index")
    rows = await fetch_rows(DATABASE_URL, query, syllabus_id)
    lesson1 = next(r for r in rows if r["lesson_index"] == 1)
    # The first test's learner (lea0, again here) viewed lesson 1 too, for 30 s: four views by three learners.
    assert (lesson1["views"], lesson1["unique_viewers"], lesson1["completions"]) == (4, 3, 1)
    assert (lesson1["avg_time_ms"], lesson1["median_time_ms"]) == (30_000, 25_000)
    assert (lesson1["quiz_attempts"], lesson1["quiz_passes"], lesson1["pass_rate"]) == (2, 1, 0.5)
    again = await jobs.run_analytics_jobs()
    assert again["status"] == "SUCCESS"
    assert await fetch_rows(DATABASE_URL, query, syllabus_id) == rows

    admin = Client(live_server.url)
    await admin.login(course["admin"].email)
    report = (await admin.get(f"/api/admin/analytics/course/{course_id}")).json()
    assert report["totals"]["views"] == 5 and report["lessons"][0]["viewers"] == 3
    assert report["lessons"][1]["drop_off_rate"] == 0.6667
    for client in clients:
        await client.aclose()
    await admin.aclose()


async def test_it_skips_a_second_run_while_one_holds_the_lock(course):
    assert await jobs.take_lock("someone else", dt.timedelta(minutes=5))
    try:
        result = await jobs.run_analytics_jobs()
        assert result["status"] == "SKIPPED"
    finally:
        await jobs.release_lock("someone else")
    rows = await fetch_rows(DATABASE_URL, "SELECT metadata FROM audit_log WHERE action = 'ANALYTICS_JOB_RUN' "
                            "ORDER BY id DESC LIMIT 1")
    assert json.loads(rows[0]["metadata"])["status"] == "SKIPPED"


async def test_it_keeps_an_event_whose_client_clock_is_far_off_but_drops_that_time(live_server, course):
    client = await _learner(live_server, course["learners"][2], course["syllabus"]["id"])
    course_id = str(course["syllabus"]["id"])
    response = await _send(client, [{"type": "course_viewed", "course_id": course_id, "client_ts": 2**53},
                                    {"type": "course_viewed", "course_id": course_id, "client_ts": 0}])
    assert response.status_code == 202, response.text
    rows = await fetch_rows(DATABASE_URL, "SELECT client_ts FROM analytics_event WHERE course_id = $1 "
                            "AND user_id = $2 AND event_type = 'course_viewed'", course["syllabus"]["id"],
                            course["learners"][2].user_id)
    assert [row["client_ts"] for row in rows] == [None, None]
    await client.aclose()


async def test_it_accepts_a_course_published_a_moment_after_the_learners_last_batch(live_server, course):
    """The learner's visible courses are kept for a few seconds; a course not in the kept answer is looked up
    again before the batch is refused."""
    learner = await make_member(course["tenant"], "learner", "newcomer")
    client = await _learner(live_server, learner, course["syllabus"]["id"])
    first = await _send(client, [{"type": "course_viewed", "course_id": str(course["syllabus"]["id"])}])
    assert first.status_code == 202
    admin = Client(live_server.url)
    await admin.login(course["admin"].email)
    second, _package = await published_course(admin)
    await admin.aclose()
    response = await _send(client, [{"type": "course_viewed", "course_id": str(second["id"])}])
    assert response.status_code == 202, response.text
    await client.aclose()
