"""The events the server records where they happen: enrolled, purchased and course_completed."""

from __future__ import annotations

import pytest

from tests.conftest import DATABASE_URL, Client, fetch_rows, make_member, make_tenant, poll_rows
from tests.publishing.helpers import published_course

EVENTS_SQL = ("SELECT event_type::text, user_id, package_version FROM analytics_event WHERE course_id = $1 "
              "AND event_type IN ('enrolled', 'purchased', 'course_completed') ORDER BY event_type")


@pytest.fixture(scope="module")
async def course(live_server):
    tenant = await make_tenant("Observed")
    admin = await make_member(tenant, "admin", "obi")
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, package = await published_course(client)
    yield {"tenant": tenant, "admin": admin, "client": client, "syllabus": syllabus, "package": package}
    await client.aclose()


async def test_it_records_enrolled_once_and_course_completed_when_the_last_lesson_is_done(live_server, course):
    learner = await make_member(course["tenant"], "learner", "ona")
    client = Client(live_server.url)
    await client.login(learner.email)
    syllabus_id = course["syllabus"]["id"]
    assert (await client.post(f"/learn/{syllabus_id}/enroll")).status_code == 303
    assert (await client.post(f"/learn/{syllabus_id}/enroll")).status_code == 303  # already enrolled: no event
    lessons = course["package"]["lesson_count"]
    for index in range(1, lessons + 1):
        assert (await client.post(f"/learn/{syllabus_id}/lesson/{index}/complete")).status_code == 303
    assert (await client.post(f"/learn/{syllabus_id}/lesson/1/complete")).status_code == 303  # again: no event
    rows = await fetch_rows(DATABASE_URL, EVENTS_SQL, syllabus_id)
    mine = [(r["event_type"], r["package_version"]) for r in rows if r["user_id"] == learner.user_id]
    assert mine == [("course_completed", 1), ("enrolled", 1)]
    await client.aclose()


async def test_it_records_purchased_and_enrolled_after_a_paid_checkout(live_server, course):
    syllabus_id = course["syllabus"]["id"]
    created = await course["client"].post("/admin/store/products", {
        "syllabus_id": str(syllabus_id), "title": "Observed course", "price": "25", "currency": "EUR"})
    assert created.status_code == 303, created.text[:300]
    [product] = await fetch_rows(DATABASE_URL, "SELECT id FROM product WHERE syllabus_id = $1", syllabus_id)
    buyer = await make_member(course["tenant"], "learner", "bo")
    client = Client(live_server.url)
    await client.login(buyer.email)
    assert (await client.post(f"/learn/store/products/{product['id']}/buy")).status_code == 303
    rows = await poll_rows(DATABASE_URL, EVENTS_SQL, lambda rows: sum(r["user_id"] == buyer.user_id for r in rows) == 2,
                           syllabus_id, timeout=10)
    assert sorted((r["event_type"], r["package_version"]) for r in rows if r["user_id"] == buyer.user_id) == [
        ("enrolled", 1), ("purchased", 1)]
    await client.aclose()
