"""The nightly rollup (N4): one day of analytics_event into analytics_daily_aggregate, in SQL.

Per (course, package version, lesson) and day: views, unique viewers, completions, completion rate, average
and median time on page, quiz attempts and passes; lesson_index 0 holds the course as a whole: distinct
learners who viewed it, enrolled, bought and completed it, and refunds (read from purchase, the real thing).

Idempotent: the day is computed into a temporary table, upserted (a row changes only when a figure does), and
rows of that day that are no longer produced are deleted, all in one transaction marked as analytics (the
database then refuses any write to content, package or progress tables in it: invariant 7). Days whose raw
events have been dropped by retention are never recomputed: their aggregates are kept forever.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.analytics.observe import analytics_transaction

DAY_SQL = """
CREATE TEMP TABLE rollup_day ON COMMIT DROP AS
WITH ev AS (
    SELECT tenant_id, course_id, package_version, lesson_index, event_type, user_id, time_on_page_ms
    FROM analytics_event WHERE created_at >= $1 AND created_at < $2
), lessons AS (
    SELECT tenant_id, course_id, package_version, lesson_index,
           count(*) FILTER (WHERE event_type = 'lesson_viewed') AS views,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'lesson_viewed') AS unique_viewers,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'lesson_completed') AS completions,
           round(avg(time_on_page_ms) FILTER (WHERE event_type = 'lesson_viewed'))::int AS avg_time_ms,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY time_on_page_ms)
                 FILTER (WHERE event_type = 'lesson_viewed'))::int AS median_time_ms,
           count(*) FILTER (WHERE event_type = 'quiz_attempted') AS quiz_attempts,
           count(*) FILTER (WHERE event_type = 'quiz_passed') AS quiz_passes
    FROM ev WHERE lesson_index > 0 GROUP BY tenant_id, course_id, package_version, lesson_index
), courses AS (
    SELECT tenant_id, course_id, package_version,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'course_viewed') AS course_views,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'enrolled') AS enrolled,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'purchased') AS purchased,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'course_completed') AS course_completed
    FROM ev WHERE event_type IN ('course_viewed', 'enrolled', 'purchased', 'course_completed')
    GROUP BY tenant_id, course_id, package_version
), refunds AS (
    -- A refund counts against the version that was newest when it happened (packages never change, so
    -- recomputing the day later gives the same answer).
    SELECT p.tenant_id, p.syllabus_id AS course_id,
           coalesce((SELECT max(cp.version) FROM course_package cp WHERE cp.syllabus_id = p.syllabus_id
                       AND cp.published_at <= p.refunded_at), 0) AS package_version, count(*) AS refunds
    FROM purchase p WHERE p.status = 'REFUNDED' AND p.refunded_at >= $1 AND p.refunded_at < $2
    GROUP BY 1, 2, 3
)
SELECT tenant_id, course_id, package_version, lesson_index, views, unique_viewers, completions,
       CASE WHEN unique_viewers > 0 THEN least(1.0, completions::float8 / unique_viewers) END AS completion_rate,
       avg_time_ms, median_time_ms, quiz_attempts, quiz_passes,
       CASE WHEN quiz_attempts > 0 THEN quiz_passes::float8 / quiz_attempts END AS pass_rate,
       0 AS course_views, 0 AS enrolled, 0 AS purchased, 0 AS course_completed, 0 AS refunds
FROM lessons
UNION ALL
SELECT coalesce(c.tenant_id, r.tenant_id), coalesce(c.course_id, r.course_id),
       coalesce(c.package_version, r.package_version), 0, 0, 0, 0,
       CASE WHEN coalesce(c.enrolled, 0) > 0 THEN least(1.0, c.course_completed::float8 / c.enrolled) END,
       NULL, NULL, 0, 0, NULL, coalesce(c.course_views, 0), coalesce(c.enrolled, 0), coalesce(c.purchased, 0),
       coalesce(c.course_completed, 0), coalesce(r.refunds, 0)
FROM courses c FULL JOIN refunds r
  ON r.course_id = c.course_id AND r.package_version = c.package_version AND r.tenant_id = c.tenant_id
"""

FIGURES = ("views", "unique_viewers", "completions", "completion_rate", "avg_time_ms", "median_time_ms",
           "quiz_attempts", "quiz_passes", "pass_rate", "course_views", "enrolled", "purchased", "course_completed",
           "refunds")

UPSERT_SQL = f"""
INSERT INTO analytics_daily_aggregate (tenant_id, course_id, package_version, day, lesson_index, {", ".join(FIGURES)},
                                       computed_at)
SELECT tenant_id, course_id, package_version, $1::date, lesson_index, {", ".join(FIGURES)}, now() FROM rollup_day
ON CONFLICT (course_id, package_version, day, lesson_index) DO UPDATE
SET {", ".join(f"{f} = excluded.{f}" for f in FIGURES)}, tenant_id = excluded.tenant_id, computed_at = now()
WHERE ({", ".join(f"analytics_daily_aggregate.{f}" for f in FIGURES)}) IS DISTINCT FROM
      ({", ".join(f"excluded.{f}" for f in FIGURES)})
"""

STALE_SQL = """
DELETE FROM analytics_daily_aggregate a WHERE a.day = $1::date AND NOT EXISTS (
    SELECT 1 FROM rollup_day r WHERE r.course_id = a.course_id AND r.package_version = a.package_version
      AND r.lesson_index = a.lesson_index)
"""


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


async def aggregate_day(day: dt.date) -> dict[str, Any]:
    """Roll one UTC day up; returns how many aggregate rows it produced, changed and removed."""
    start, end = day_bounds(day)
    async with analytics_transaction() as conn:
        await conn.execute(DAY_SQL, start, end)
        produced = await conn.fetchval("SELECT count(*) FROM rollup_day")
        changed = int((await conn.execute(UPSERT_SQL, day)).split()[-1])
        removed = int((await conn.execute(STALE_SQL, day)).split()[-1])
    return {"day": day.isoformat(), "rows": produced, "changed": changed, "removed": removed}
