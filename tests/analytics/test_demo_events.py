"""The demo's analytics (issue 12, item 10): simulated learners' three weeks of events, stored through the
ingestion code path, rolled up, with signals; deterministic and seeded once. Run against a test workspace's
published course, not the whole demo (which drafts a course through the workers)."""

from __future__ import annotations

import datetime as dt

import pytest

from app.analytics import demo as analytics_demo
from app.analytics.demo import DAYS, seed_demo_analytics
from tests.conftest import DATABASE_URL, Client, fetch_rows, make_member, make_tenant
from tests.publishing.helpers import published_course

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
async def seeded(live_server):
    tenant = await make_tenant("Demo")
    admin = await make_member(tenant, "admin", "dee")
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, _package = await published_course(client)
    await client.aclose()
    # Another workspace with its own course: nothing of the seeding reaches it.
    other = await make_tenant("Bystander")
    other_admin = await make_member(other, "admin", "by")
    client = Client(live_server.url)
    await client.login(other_admin.email)
    other_syllabus, _ = await published_course(client)
    await client.aclose()
    # Simulated learners are per install (fixed addresses): this test module owns them in this database.
    assert await seed_demo_analytics(tenant["id"], syllabus["id"], today=TODAY) is True
    return {"tenant": tenant, "admin": admin, "syllabus": syllabus, "other": other, "other_syllabus": other_syllabus}


PLAYER_EVENTS = "event_type NOT IN ('enrolled', 'purchased', 'course_completed')"


async def test_it_seeds_three_weeks_of_events_through_ingestion_with_aggregates_and_a_signal(seeded, live_server):
    course_id = seeded["syllabus"]["id"]
    # The player's events (the server records enrolled "now", when the demo enrolls its learners).
    days = await fetch_rows(DATABASE_URL, "SELECT DISTINCT created_at::date AS day FROM analytics_event "
                            f"WHERE course_id = $1 AND {PLAYER_EVENTS} ORDER BY 1", course_id)
    first_day = TODAY - dt.timedelta(days=DAYS)
    assert all(first_day <= r["day"] < TODAY for r in days)
    assert len(days) == DAYS, [r["day"] for r in days]
    # The ingestion path stamped every event: the learner's workspace, the version they are enrolled on.
    rows = await fetch_rows(DATABASE_URL, "SELECT tenant_id, package_version, count(*) AS n, "
                            f"count(DISTINCT user_id) AS learners FROM analytics_event WHERE course_id = $1 AND "
                            f"{PLAYER_EVENTS} GROUP BY 1, 2", course_id)
    assert [(r["tenant_id"], r["package_version"]) for r in rows] == [(seeded["tenant"]["id"], 1)]
    assert rows[0]["learners"] == analytics_demo.LEARNERS and rows[0]["n"] > 500
    members = await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM membership m JOIN app_user u "
                               "ON u.id = m.user_id JOIN enrollment e ON e.user_id = u.id AND e.syllabus_id = $2 "
                               "WHERE m.tenant_id = $1 AND m.role = 'learner' AND u.email LIKE 'reader%'",
                               seeded["tenant"]["id"], course_id)
    assert members[0]["n"] == analytics_demo.LEARNERS

    aggregates = await fetch_rows(DATABASE_URL, "SELECT day, lesson_index, views, quiz_attempts, quiz_passes, enrolled "
                                  "FROM analytics_daily_aggregate WHERE course_id = $1", course_id)
    # The simulated days, and today (the readers' enrollments, recorded by the server as they were made).
    assert {r["day"] for r in aggregates} == {r["day"] for r in days} | {TODAY}
    enrolled = sum(r["enrolled"] for r in aggregates if r["day"] == TODAY and r["lesson_index"] == 0)
    assert enrolled == analytics_demo.LEARNERS
    by_lesson: dict[int, list[int]] = {}
    for r in aggregates:  # per lesson over the three weeks: views, quiz attempts, quiz passes
        sums = by_lesson.setdefault(r["lesson_index"], [0, 0, 0])
        for n, key in enumerate(("views", "quiz_attempts", "quiz_passes")):
            sums[n] += r[key]
    views = [by_lesson[i][0] for i in sorted(by_lesson) if i > 0]
    assert views == sorted(views, reverse=True) and views[0] > 40  # fewer learners as the course goes on
    hard = by_lesson[analytics_demo.HARD_QUIZ]
    assert hard[2] / hard[1] < 0.5  # the hard quiz

    signals = await fetch_rows(DATABASE_URL, "SELECT signal_type, lesson_index, day, summary FROM analytics_signal "
                               "WHERE course_id = $1", course_id)
    kinds = {(r["signal_type"], r["lesson_index"]) for r in signals}
    assert ("low_quiz_pass_rate", analytics_demo.HARD_QUIZ) in kinds, signals
    assert ("high_drop_off", analytics_demo.DROP_AFTER + 1) in kinds, signals
    assert {r["day"] for r in signals} == {TODAY - dt.timedelta(days=1)}

    # The admin sees it over the API; the other workspace has nothing.
    admin = Client(live_server.url)
    await admin.login(seeded["admin"].email)
    report = (await admin.get(f"/api/admin/analytics/course/{course_id}")).json()
    assert report["totals"]["views"] == sum(views) and len(report["days"]) == len(days) + 1  # and today
    assert report["totals"]["enrolled"] == analytics_demo.LEARNERS
    await admin.aclose()
    other = await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM analytics_event WHERE tenant_id = $1",
                             seeded["other"]["id"])
    assert other[0]["n"] == 0


async def test_it_seeds_nothing_the_second_time(seeded):
    count = "SELECT count(*) AS n FROM analytics_event WHERE course_id = $1"
    before = await fetch_rows(DATABASE_URL, count, seeded["syllabus"]["id"])
    assert await seed_demo_analytics(seeded["tenant"]["id"], seeded["syllabus"]["id"], today=TODAY) is False
    assert await fetch_rows(DATABASE_URL, count, seeded["syllabus"]["id"]) == before


def test_it_tells_the_same_story_every_time():
    import random
    import uuid

    course = uuid.UUID(int=1)
    lessons = list(range(1, 9))
    story = [analytics_demo._sessions(random.Random(n), course, lessons, dt.date(2026, 11, 1), n) for n in range(5)]
    again = [analytics_demo._sessions(random.Random(n), course, lessons, dt.date(2026, 11, 1), n) for n in range(5)]
    assert story == again and all(sessions for sessions in story)


async def test_it_does_nothing_without_the_demo_course(seeded):
    assert await seed_demo_analytics(seeded["tenant"]["id"], None) is False
