"""The course report is kept in the web process between rollups: a repeated read costs the session and one
indexed query, and the figures change as soon as the job has written new aggregates (no stale read).
Personas: Cara administers Cachetown, two learners read there, Oskar administers another workspace."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from app.analytics import jobs
from tests.conftest import DATABASE_URL, Client, fetch_rows, make_member, make_tenant
from tests.publishing.helpers import published_course


@pytest.fixture(scope="module")
async def world(live_server):
    tenant = await make_tenant("Cachetown")
    admin = await make_member(tenant, "admin", "cara")
    learners = [await make_member(tenant, "learner", f"leo{i}") for i in range(2)]
    outsider = await make_member(await make_tenant("Othertown"), "admin", "oskar")
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, _package = await published_course(client)
    await client.aclose()
    return {"tenant": tenant, "admin": admin, "learners": learners, "outsider": outsider,
            "syllabus_id": syllabus["id"], "course_id": str(syllabus["id"])}


async def _signed_in(live_server, persona) -> Client:
    client = Client(live_server.url)
    await client.login(persona.email)
    return client


async def _read(client: Client, course_id: str, lessons: list[int]) -> None:
    events = [{"type": "course_viewed", "course_id": course_id}]
    events += [{"type": "lesson_viewed", "course_id": course_id, "lesson_index": n, "time_on_page_ms": 30_000}
               for n in lessons]
    response = await client.http.post("/api/analytics/event", headers={"content-type": "text/plain"},
                                      content=json.dumps({"events": events, "csrf": client.csrf}))
    assert response.status_code == 202, response.text


async def _rollup() -> None:
    result = await jobs.run_analytics_jobs()
    assert result["status"] == "SUCCESS", result


def _viewers(report: dict) -> dict[int, int]:
    return {lesson["lesson_index"]: lesson["viewers"] for lesson in report["lessons"]}


async def _stored_viewers(course_id: uuid.UUID) -> dict[int, int]:
    rows = await fetch_rows(DATABASE_URL, "SELECT lesson_index, sum(unique_viewers)::int AS viewers FROM "
                            "analytics_daily_aggregate WHERE course_id = $1 AND lesson_index > 0 GROUP BY 1",
                            course_id)
    return {row["lesson_index"]: row["viewers"] for row in rows}


async def test_it_serves_new_figures_right_after_each_rollup(live_server, world):
    course_id, api = world["course_id"], f"/api/admin/analytics/course/{world['course_id']}"
    admin = await _signed_in(live_server, world["admin"])
    first, second = [await _signed_in(live_server, p) for p in world["learners"]]
    for learner in (first, second):
        assert (await learner.post(f"/learn/{course_id}/enroll")).status_code == 303
    await _read(first, course_id, [1])
    await _rollup()

    computed = await admin.get(api)
    assert computed.status_code == 200 and _viewers(computed.json()) == {1: 1}
    again = await admin.get(api)
    assert again.json() == computed.json()
    # Computed: session, course and marker, lessons, days. Kept: session, course and marker.
    assert (int(computed.headers["x-db-queries"]), int(again.headers["x-db-queries"])) == (4, 2)

    # New events are not figures until the job rolls them up (aggregates only) ...
    await _read(second, course_id, [1, 2])
    assert _viewers((await admin.get(api)).json()) == {1: 1}
    # ... and the first read after the rollup has them.
    await _rollup()
    assert await _stored_viewers(world["syllabus_id"]) == {1: 2, 2: 1}
    fresh = await admin.get(api)
    assert _viewers(fresh.json()) == {1: 2, 2: 1}
    assert fresh.json()["totals"]["views"] == 3 and int(fresh.headers["x-db-queries"]) == 4
    # The dashboard page reads the same report: its table has the new figures too.
    page = (await admin.get(f"/admin/analytics?course={course_id}")).text
    assert '<th scope="row">Lesson 2</th><td>1</td>' in page

    # A rollup that only removes rows (lesson 2's events gone) changes the marker as well.
    await fetch_rows(DATABASE_URL, "DELETE FROM analytics_event WHERE course_id = $1 AND lesson_index = 2",
                     world["syllabus_id"])
    await _rollup()
    assert await _stored_viewers(world["syllabus_id"]) == {1: 2}
    assert _viewers((await admin.get(api)).json()) == {1: 2}
    for client in (admin, first, second):
        await client.aclose()


async def test_it_keeps_workspaces_and_ranges_apart_in_the_cache(live_server, world):
    course_id, api = world["course_id"], f"/api/admin/analytics/course/{world['course_id']}"
    admin = await _signed_in(live_server, world["admin"])
    warmed = await admin.get(api)
    assert warmed.status_code == 200 and warmed.json()["lessons"]
    outsider = await _signed_in(live_server, world["outsider"])
    for path in (api, f"/api/admin/analytics/funnel/{course_id}"):
        assert (await outsider.get(path)).status_code == 404  # the owner's cached report stays theirs
    assert (await admin.get(f"/api/admin/analytics/course/{uuid.uuid4()}")).status_code == 404
    # Another range is another entry: a month long ago has no figures.
    old = dt.date.today() - dt.timedelta(days=200)
    earlier = (await admin.get(f"{api}?from={old}&to={old + dt.timedelta(days=29)}")).json()
    assert earlier["lessons"] == [] and earlier["totals"]["views"] == 0
    assert (await admin.get(api)).json() == warmed.json()
    for client in (admin, outsider):
        await client.aclose()
