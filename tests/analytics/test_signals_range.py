"""Signals follow the picked range, on the dashboard and on the signals page: a signal shows when its day (the
day its rule ran for) falls in the range. Personas: Rita administers Rangely, Odo administers another workspace."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from tests.conftest import DATABASE_URL, Client, fetch_rows, make_member, make_tenant
from tests.publishing.helpers import published_course

TODAY = dt.datetime.now(dt.UTC).date()
AGES = {"recent": 2, "last_month": 20, "old": 60}  # days before today


@pytest.fixture(scope="module")
async def world(live_server):
    tenant = await make_tenant("Rangely")
    admin = await make_member(tenant, "admin", "rita")
    outsider = await make_member(await make_tenant("Farland"), "admin", "odo")
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, _package = await published_course(client)
    await client.aclose()
    # Signals as the nightly runs of three days would have left them (the job only ever raises today's).
    signals = {}
    for name, age in AGES.items():
        day = TODAY - dt.timedelta(days=age)
        signals[name] = uuid.uuid4()
        await fetch_rows(DATABASE_URL, """
            INSERT INTO analytics_signal (id, tenant_id, course_id, signal_type, lesson_index, severity, day,
                                          window_start, window_end, metrics, thresholds, summary, status, created_at)
            VALUES ($1, $2, $3, 'high_drop_off', 2, 'high', $4, $5, $4, $6, $7, $8, 'OPEN', now())""",
                         signals[name], tenant["id"], syllabus["id"], day, day - dt.timedelta(days=6),
                         json.dumps({"viewers_before": 10, "viewers": 2, "drop_off_rate": 0.8}),
                         json.dumps({"drop_off_rate": 0.4, "min_learners": 5}),
                         f"Lesson 2 lost learners (the run of {day}).")
    return {"tenant": tenant, "admin": admin, "outsider": outsider, "course_id": str(syllabus["id"]),
            "signals": signals}


@pytest.fixture
async def admin(live_server, world):
    client = Client(live_server.url)
    await client.login(world["admin"].email)
    yield client
    await client.aclose()


def _shown(world, html: str) -> set[str]:
    return {name for name, signal_id in world["signals"].items() if f'id="signal-{signal_id}"' in html}


def _ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


async def test_it_shows_on_the_dashboard_the_signals_of_the_picked_range(world, admin):
    course = world["course_id"]
    rows = await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM analytics_signal WHERE course_id = $1",
                            uuid.UUID(course))
    assert rows[0]["n"] == 3
    for days, expected in (("7", {"recent"}), ("30", {"recent", "last_month"}),
                           ("90", {"recent", "last_month", "old"})):
        page = await admin.get(f"/admin/analytics?course={course}&days={days}")
        assert page.status_code == 200 and _shown(world, page.text) == expected, days
    dates = await admin.get(f"/admin/analytics?course={course}&from={_ago(25)}&to={_ago(15)}")
    assert _shown(world, dates.text) == {"last_month"}
    # The link to the signals page carries the range.
    assert f"/admin/analytics/signals?course={course}&amp;from={_ago(25)}&amp;to={_ago(15)}" in dates.text
    empty = await admin.get(f"/admin/analytics?course={course}&from={_ago(14)}&to={_ago(5)}")
    assert _shown(world, empty.text) == set() and "None was raised in this range." in empty.text


async def test_it_filters_the_signals_page_by_the_days_given(world, admin):
    base = f"/admin/analytics/signals?course={world['course_id']}"
    assert _shown(world, (await admin.get(base)).text) == set(AGES)  # no dates: every day
    cases = ((f"&from={_ago(25)}&to={_ago(1)}", {"recent", "last_month"}),
             (f"&from={_ago(60)}&to={_ago(60)}", {"old"}),  # both ends count
             (f"&from={_ago(20)}", {"recent", "last_month"}),  # to defaults to today
             (f"&to={_ago(20)}", {"last_month"}))  # from defaults to 30 days before the to date
    for query, expected in cases:
        page = await admin.get(base + query)
        assert page.status_code == 200 and _shown(world, page.text) == expected, query
    page = (await admin.get(base + f"&from={_ago(25)}&to={_ago(1)}")).text
    assert f"2 signals raised for {_ago(25)} to {_ago(1)}" in page
    assert f'name="from" value="{_ago(25)}"' in page  # the dates typed stay in the form
    none = await admin.get(base + f"&from={_ago(14)}&to={_ago(5)}")
    assert "No signal matches these filters." in none.text


@pytest.mark.parametrize("query", ["from=2026-02-30", "from=yesterday", "from=2026-03-01&to=2026-02-01",
                                   "from=2020-01-01&to=2026-01-01"])
async def test_it_refuses_a_bad_range_on_the_signals_page(world, admin, query):
    response = await admin.get(f"/admin/analytics/signals?{query}")
    assert response.status_code == 400


async def test_it_never_shows_another_workspaces_signals_in_any_range(live_server, world):
    outsider = Client(live_server.url)
    await outsider.login(world["outsider"].email)
    for query in ("", f"?from={_ago(90)}&to={_ago(0)}", f"?course={world['course_id']}&from={_ago(90)}"):
        page = await outsider.get(f"/admin/analytics/signals{query}")
        assert page.status_code == 200 and _shown(world, page.text) == set()
    await outsider.aclose()
