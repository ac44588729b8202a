"""Reading analytics for admins (N5): aggregates and signals only, never raw events, always one workspace.

The dashboard and the JSON APIs call the same functions. Figures over a range add up the daily rows; rates are
recomputed from the summed counts (never averaged), and a lesson's average time is weighted by its views.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from app.analytics.signals import DEFAULTS, Thresholds
from app.analytics.tables import AnalyticsSettings, DailyAggregate, Signal, SignalStatus
from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.errors import InvalidInput, NotFound
from app.publishing import services as publishing

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30


class DateRange(msgspec.Struct, frozen=True):
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def date_range(start: dt.date | None, end: dt.date | None, today: dt.date | None = None) -> DateRange:
    """The range asked for; the last 30 days when none is given. Refuses a reversed or too long one."""
    today = today or dt.datetime.now(dt.UTC).date()
    end = end or today
    start = start or end - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise InvalidInput("The range starts after it ends.")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(f"Pick a range of at most {MAX_RANGE_DAYS} days.")
    return DateRange(start, end)


async def course_of(tenant_id: uuid.UUID, course_id: uuid.UUID) -> dict[str, Any]:
    """A course (syllabus) of this workspace that has been published; anything else is "not found"."""
    rows = await publishing.latest_packages(tenant_id)
    for row in rows:
        if row["syllabus_id"] == course_id:
            return row
    raise NotFound("No such published course in this workspace.")


LESSONS_SQL = """
SELECT lesson_index, sum(views)::bigint AS views, sum(unique_viewers)::bigint AS viewers,
       sum(completions)::bigint AS completions, sum(quiz_attempts)::bigint AS quiz_attempts,
       sum(quiz_passes)::bigint AS quiz_passes,
       (sum(avg_time_ms::float8 * views) FILTER (WHERE avg_time_ms IS NOT NULL)
        / nullif(sum(views) FILTER (WHERE avg_time_ms IS NOT NULL), 0))::int AS avg_time_ms,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY median_time_ms) AS median_time_ms
FROM analytics_daily_aggregate
WHERE tenant_id = {} AND course_id = {} AND day BETWEEN {} AND {} AND lesson_index > 0
GROUP BY lesson_index ORDER BY lesson_index
"""

DAYS_SQL = """
SELECT day, sum(views) FILTER (WHERE lesson_index > 0)::bigint AS views,
       sum(unique_viewers) FILTER (WHERE lesson_index = 1)::bigint AS started,
       sum(completions) FILTER (WHERE lesson_index > 0)::bigint AS completions,
       sum(course_views)::bigint AS course_views, sum(enrolled)::bigint AS enrolled,
       sum(purchased)::bigint AS purchased, sum(course_completed)::bigint AS course_completed,
       sum(refunds)::bigint AS refunds, sum(quiz_attempts)::bigint AS quiz_attempts,
       sum(quiz_passes)::bigint AS quiz_passes
FROM analytics_daily_aggregate WHERE tenant_id = {} AND course_id = {} AND day BETWEEN {} AND {}
GROUP BY day ORDER BY day
"""


def _rate(part: int | None, whole: int | None) -> float | None:
    return round(part / whole, 4) if whole else None


async def course_report(tenant_id: uuid.UUID, course_id: uuid.UUID, window: DateRange) -> dict[str, Any]:
    """Per lesson (views, learners, completions, drop-off from the lesson before, time, quiz pass rate),
    per day, and totals for the range."""
    course = await course_of(tenant_id, course_id)
    lessons = await DailyAggregate.raw(LESSONS_SQL, tenant_id, course_id, window.start, window.end)
    days = await DailyAggregate.raw(DAYS_SQL, tenant_id, course_id, window.start, window.end)
    previous = None
    for lesson in lessons:
        lesson["completion_rate"] = _rate(lesson["completions"], lesson["viewers"])
        lesson["pass_rate"] = _rate(lesson["quiz_passes"], lesson["quiz_attempts"])
        lesson["drop_off_rate"] = (round(1 - min(lesson["viewers"], previous) / previous, 4)
                                   if previous and lesson["lesson_index"] > 1 else None)
        previous = lesson["viewers"]
    totals = {key: sum(day[key] or 0 for day in days) for key in
              ("views", "completions", "course_views", "enrolled", "purchased", "course_completed", "refunds",
               "quiz_attempts", "quiz_passes")}
    totals["pass_rate"] = _rate(totals["quiz_passes"], totals["quiz_attempts"])
    totals["course_completion_rate"] = _rate(totals["course_completed"], totals["enrolled"])
    totals["refund_rate"] = _rate(totals["refunds"], totals["purchased"])
    return {"course_id": course_id, "title": course["title"], "lesson_count": course["lesson_count"],
            "start": window.start, "end": window.end, "totals": totals, "lessons": lessons, "days": days}


async def funnel(tenant_id: uuid.UUID, course_id: uuid.UUID, window: DateRange) -> dict[str, Any]:
    """The two funnels of N4: viewed → enrolled → completed, and purchased → enrolled → completed."""
    report = await course_report(tenant_id, course_id, window)
    t = report["totals"]
    viewed = [("Viewed the course", t["course_views"]), ("Enrolled", t["enrolled"]),
              ("Completed", t["course_completed"])]
    bought = [("Bought", t["purchased"]), ("Enrolled", t["enrolled"]), ("Completed", t["course_completed"])]
    return {"course_id": course_id, "title": report["title"], "start": window.start, "end": window.end,
            "view_funnel": _steps(viewed), "purchase_funnel": _steps(bought), "refunds": t["refunds"]}


def _steps(steps: list[tuple[str, int]]) -> list[dict[str, Any]]:
    first = steps[0][1]
    return [{"step": name, "learners": count, "of_first": _rate(count, first)} for name, count in steps]


async def list_signals(tenant_id: uuid.UUID, *, course_id: uuid.UUID | None = None, status: str | None = None,
                       limit: int = 100) -> list[dict[str, Any]]:
    query = Signal.select().where(Signal.tenant_id == tenant_id)
    if course_id is not None:
        query = query.where(Signal.course_id == course_id)
    if status is not None:
        query = query.where(Signal.status == status)
    return await query.order_by(Signal.day, ascending=False).order_by(Signal.created_at, ascending=False).limit(limit)


async def set_signal_status(tenant_id: uuid.UUID, signal_id: uuid.UUID, status: str, *, actor: Actor) -> dict:
    try:
        new = SignalStatus(status)
    except ValueError:
        raise InvalidInput("Mark a signal open, acknowledged or resolved.") from None
    rows = await Signal.raw("UPDATE analytics_signal SET status = {} WHERE id = {} AND tenant_id = {} RETURNING *",
                            new.value, signal_id, tenant_id)
    if not rows:
        raise NotFound("No such signal in this workspace.")
    await audit(AuditAction.ANALYTICS_SIGNAL_STATUS_CHANGED, actor=actor, tenant_id=tenant_id,
                entity_type="analytics_signal", entity_id=signal_id, metadata={"status": new.value})
    return rows[0]


async def thresholds(tenant_id: uuid.UUID) -> Thresholds:
    row = await AnalyticsSettings.select().where(AnalyticsSettings.tenant_id == tenant_id).first()
    if row is None:
        return DEFAULTS
    return Thresholds(**{name: float(row[name]) if name.endswith("rate") else row[name]
                         for name in msgspec.structs.asdict(DEFAULTS)})


async def save_thresholds(tenant_id: uuid.UUID, new: Thresholds, *, actor: Actor) -> Thresholds:
    rates = ("drop_off_rate", "quiz_pass_rate", "refund_rate", "engagement_rate")
    for name in rates:
        if not 0 < getattr(new, name) < 1:
            raise InvalidInput(f"{name.replace('_', ' ').capitalize()} must be between 0 and 1 (e.g. 0.4 for 40 %).")
    for name in ("min_learners", "min_attempts", "min_purchases"):
        if not 1 <= getattr(new, name) <= 100_000:
            raise InvalidInput(f"{name.replace('_', ' ').capitalize()} must be between 1 and 100000.")
    if not 1 <= new.window_days <= 90:
        raise InvalidInput("The window is 1 to 90 days.")
    values = msgspec.structs.asdict(new)
    columns = ", ".join(values)
    await AnalyticsSettings.raw(
        f"INSERT INTO analytics_settings (tenant_id, {columns}, updated_at) VALUES ({{}}, "
        f"{', '.join('{}' for _ in values)}, now()) ON CONFLICT (tenant_id) DO UPDATE SET "
        f"{', '.join(f'{c} = excluded.{c}' for c in values)}, updated_at = now()", tenant_id, *values.values())
    await audit(AuditAction.ANALYTICS_SETTINGS_CHANGED, actor=actor, tenant_id=tenant_id, entity_type="analytics",
                entity_id="thresholds", metadata=values)
    return new
