"""Partitions, retention, the signal rules and the database guards of analytics (invariant 7)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import asyncpg
import pytest

from app.analytics import jobs, signals
from app.analytics.observe import analytics_transaction
from app.analytics.tables import SignalType
from tests.conftest import DATABASE_URL, fetch_rows, make_tenant, run_cli

T = signals.Thresholds(min_learners=10, min_attempts=10, min_purchases=5)


async def _execute(sql: str, *args) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def _partitions() -> list[str]:
    rows = await fetch_rows(DATABASE_URL, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                            "WHERE i.inhparent = 'analytics_event'::regclass ORDER BY c.relname")
    return [row["relname"] for row in rows]


async def test_it_creates_partitions_ahead_and_drops_only_whole_expired_months():
    tenant = await make_tenant("Retention")
    await fetch_rows(DATABASE_URL, "SELECT analytics_ensure_partitions(6, 0)")
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=150)
    await _execute("INSERT INTO analytics_event (tenant_id, course_id, event_type, created_at) "
                   "SELECT $1, gen_random_uuid(), 'lesson_viewed', $2 FROM generate_series(1, 7)", tenant["id"], old)
    old_partition = f"analytics_event_{old:%Y_%m}"
    assert old_partition in await _partitions()
    await _execute(f"DROP TABLE analytics_event_{(now + dt.timedelta(days=62)):%Y_%m}")
    created = await jobs.ensure_partitions()
    assert created == [f"analytics_event_{(now + dt.timedelta(days=62)):%Y_%m}"]

    summary = await jobs.apply_retention(now)
    remaining = await _partitions()
    assert old_partition not in remaining and f"analytics_event_{now:%Y_%m}" in remaining
    assert all(name >= f"analytics_event_{(now - dt.timedelta(days=90)):%Y_%m}" for name in remaining)
    assert summary["events_deleted"] >= 7 and old_partition in summary["partitions_dropped"]
    audit = await fetch_rows(DATABASE_URL, "SELECT metadata FROM audit_log WHERE action = 'ANALYTICS_DATA_PRUNED' "
                             "ORDER BY id DESC LIMIT 1")
    assert old_partition in json.loads(audit[0]["metadata"])["partitions_dropped"]


async def _signal(tenant_id, day: dt.date) -> uuid.UUID:
    signal_id = uuid.uuid4()
    await _execute("INSERT INTO analytics_signal (id, tenant_id, course_id, signal_type, lesson_index, severity, day, "
                   "window_start, window_end, metrics, thresholds, summary, status, created_at) VALUES ($1, $2, "
                   "gen_random_uuid(), 'low_engagement', 0, 'low', $3, $3, $3, '{}', '{}', 'test', 'OPEN', now())",
                   signal_id, tenant_id, day)
    return signal_id


async def test_it_keeps_signals_insert_only_except_status_and_prunes_them_after_180_days():
    tenant = await make_tenant("Signals")
    today = dt.datetime.now(dt.UTC).date()
    fresh, stale = await _signal(tenant["id"], today), await _signal(tenant["id"], today - dt.timedelta(days=200))
    with pytest.raises(asyncpg.RaiseError, match="only its status changes"):
        await _execute("UPDATE analytics_signal SET summary = 'rewritten' WHERE id = $1", fresh)
    with pytest.raises(asyncpg.RaiseError, match="signals are kept"):
        await _execute("DELETE FROM analytics_signal WHERE id = $1", fresh)
    await _execute("UPDATE analytics_signal SET status = 'RESOLVED' WHERE id = $1", fresh)
    summary = await jobs.apply_retention()
    assert summary["signals_deleted"] >= 1
    left = {row["id"] for row in await fetch_rows(DATABASE_URL, "SELECT id FROM analytics_signal WHERE tenant_id = $1",
                                                  tenant["id"])}
    assert fresh in left and stale not in left


@pytest.mark.parametrize("statement", [
    "UPDATE content_item SET status = status",
    "DELETE FROM lesson_progress WHERE false",
    "INSERT INTO enrollment SELECT * FROM enrollment WHERE false",
    "UPDATE course_package SET status = status WHERE false",
    "UPDATE purchase SET status = status WHERE false",
])
async def test_it_refuses_any_write_to_content_progress_or_commerce_inside_analytics(statement):
    with pytest.raises(asyncpg.RaiseError, match="analytics observes only"):
        async with analytics_transaction() as conn:
            await conn.execute(statement)


def _lesson(course, index, viewers, attempts=0, passes=0):
    return {"course_id": course, "lesson_index": index, "viewers": viewers, "attempts": attempts, "passes": passes}


def test_it_raises_a_drop_off_only_past_the_threshold_and_the_minimum_sample():
    course = uuid.uuid4()
    rows = [_lesson(course, 1, 20), _lesson(course, 2, 11), _lesson(course, 3, 8), _lesson(course, 4, 2)]
    found = signals.lesson_findings(rows, T)
    # 2: 45 % lost of 20 (> 40 %); 3: 27 % of 11 (below); 4: 75 % of 8 (but 8 < 10 learners: too few to say).
    assert [(f.signal_type, f.lesson_index) for f in found] == [(SignalType.HIGH_DROP_OFF, 2)]
    assert found[0].metrics == {"viewers_before": 20, "viewers": 11, "drop_off_rate": 0.45}


def test_it_raises_a_low_pass_rate_with_enough_attempts_and_grades_its_severity():
    course = uuid.uuid4()
    found = signals.lesson_findings([_lesson(course, 1, 5, attempts=10, passes=1),
                                     _lesson(course, 3, 5, attempts=9, passes=0),
                                     _lesson(course, 5, 5, attempts=40, passes=19)], T)
    assert [(f.lesson_index, f.severity) for f in found] == [(1, "high"), (5, "low")]


def test_it_raises_refund_and_engagement_signals_on_courses():
    course, quiet = uuid.uuid4(), uuid.uuid4()
    rows = [{"course_id": course, "course_views": 40, "purchased": 10, "refunds": 3},
            {"course_id": quiet, "course_views": 9, "purchased": 4, "refunds": 4}]
    found = signals.course_findings(rows, {course: 8, quiet: 0}, T)
    assert {(f.course_id, f.signal_type) for f in found} == {(course, SignalType.HIGH_REFUND_RATE),
                                                              (course, SignalType.LOW_ENGAGEMENT)}


def test_it_backfills_a_range_from_the_cli_and_refuses_a_bad_one():
    today = dt.datetime.now(dt.UTC).date()
    ok = run_cli({}, "analytics", "run", "--from", str(today - dt.timedelta(days=2)), "--to", str(today))
    assert ok.returncode == 0, ok.stderr
    assert "SUCCESS: 3 day(s)" in ok.stdout
    reversed_range = run_cli({}, "analytics", "run", "--from", str(today), "--to", str(today - dt.timedelta(days=1)))
    assert reversed_range.returncode == 1 and "ends before it starts" in reversed_range.stderr
    gone = run_cli({}, "analytics", "run", "--from", str(today - dt.timedelta(days=120)), "--to", str(today))
    assert gone.returncode == 1 and "are gone" in gone.stderr
    bad = run_cli({}, "analytics", "run", "--from", "yesterday")
    assert bad.returncode == 2 and "is not a date" in bad.stderr


async def test_it_answers_unavailable_and_stores_nothing_for_a_month_without_a_partition():
    from app.analytics import events
    from app.errors import Unavailable

    tenant = await make_tenant("Future")
    future = dt.datetime(2031, 6, 1, tzinfo=dt.UTC)
    row = (tenant["id"], None, uuid.uuid4(), 1, 1, "lesson_viewed", None, "{}", None, future)
    with pytest.raises(Unavailable, match="nothing was stored"):
        await events.store([row, row])
    assert await fetch_rows(DATABASE_URL, "SELECT 1 FROM analytics_event WHERE tenant_id = $1", tenant["id"]) == []
