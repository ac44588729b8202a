"""Reading analytics for admins (N5): aggregates and signals only, never raw events, always one workspace.

The dashboard and the JSON APIs call the same functions. Figures over a range add up the daily rows; rates are
recomputed from the summed counts (never averaged), and a lesson's average time is weighted by its views.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import OrderedDict
from typing import Any

import msgspec

from app.analytics.signals import DEFAULTS, Thresholds
from app.analytics.tables import AnalyticsSettings, DailyAggregate, Signal, SignalStatus
from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.db import fetch_row
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
    per day, and totals for the range. The figures come from the process's cache while the course's
    aggregate rows in the range are unchanged (see REPORT_HEAD_SQL); the course itself is read every time."""
    head = await fetch_row(REPORT_HEAD_SQL, tenant_id, course_id, window.start, window.end)
    if head is None:
        raise NotFound("No such published course in this workspace.")
    figures = await _figures(tenant_id, course_id, window, (head["aggregate_rows"], head["computed_at"]))
    return {"course_id": course_id, "title": head["title"], "lesson_count": head["lesson_count"],
            "start": window.start, "end": window.end, **figures}


# The course (its newest package, as course_of finds it) and the marker of its aggregates in the range, in one
# indexed round trip. The rollup stamps computed_at = now() on every row it inserts or changes and deletes the
# rows a day no longer produces, so (row count, newest computed_at) changes whenever a figure in the range can.
REPORT_HEAD_SQL = """
SELECT p.title, p.lesson_count, a.aggregate_rows, a.computed_at
FROM (SELECT title, lesson_count FROM course_package WHERE tenant_id = $1 AND syllabus_id = $2
      ORDER BY version DESC LIMIT 1) p
CROSS JOIN (SELECT count(*) AS aggregate_rows, max(computed_at) AS computed_at FROM analytics_daily_aggregate
            WHERE tenant_id = $1 AND course_id = $2 AND day BETWEEN $3 AND $4) a
"""

# Aggregates change only when the analytics job writes them, yet admins (and their dashboards' APIs) read the
# same course and range again and again: the figures are kept per (workspace, course, range) with the marker
# they were computed under, and recomputed as soon as the marker differs. The marker is read BEFORE the figures,
# so a rollup committing in between leaves figures newer than their marker (recomputed once), never older.
REPORT_CACHE_SIZE = 256
_report_cache: OrderedDict[tuple, tuple[tuple, dict[str, Any]]] = OrderedDict()


async def _figures(tenant_id: uuid.UUID, course_id: uuid.UUID, window: DateRange, marker: tuple) -> dict[str, Any]:
    key = (tenant_id, course_id, window.start, window.end)
    cached = _report_cache.get(key)
    if cached is not None and cached[0] == marker:
        _report_cache.move_to_end(key)
        figures = cached[1]
    else:
        figures = await _compute_figures(tenant_id, course_id, window)
        _report_cache[key] = (marker, figures)
        _report_cache.move_to_end(key)
        while len(_report_cache) > REPORT_CACHE_SIZE:
            _report_cache.popitem(last=False)
    # Copies: every reader gets its own rows, so nothing a caller does can alter the cached ones.
    return {"totals": dict(figures["totals"]), "lessons": [dict(row) for row in figures["lessons"]],
            "days": [dict(row) for row in figures["days"]]}


async def _compute_figures(tenant_id: uuid.UUID, course_id: uuid.UUID, window: DateRange) -> dict[str, Any]:
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
    return {"totals": totals, "lessons": lessons, "days": days}


async def funnel(tenant_id: uuid.UUID, course_id: uuid.UUID, window: DateRange) -> dict[str, Any]:
    """The two funnels of N4: viewed → enrolled → completed, and purchased → enrolled → completed."""
    return funnel_of(await course_report(tenant_id, course_id, window))


def funnel_of(report: dict[str, Any]) -> dict[str, Any]:
    t = report["totals"]
    viewed = [("Viewed the course", t["course_views"]), ("Enrolled", t["enrolled"]),
              ("Completed", t["course_completed"])]
    bought = [("Bought", t["purchased"]), ("Enrolled", t["enrolled"]), ("Completed", t["course_completed"])]
    return {"course_id": report["course_id"], "title": report["title"], "start": report["start"], "end": report["end"],
            "view_funnel": _steps(viewed), "purchase_funnel": _steps(bought), "refunds": t["refunds"]}


def _steps(steps: list[tuple[str, int]]) -> list[dict[str, Any]]:
    first = steps[0][1]
    return [{"step": name, "learners": count, "of_first": _rate(count, first)} for name, count in steps]


DASHBOARD_DAYS = (7, 30, 90)


def signals_range(start: dt.date | None, end: dt.date | None) -> DateRange | None:
    """The signals list's range: none (every day) unless a from or a to date is given."""
    return date_range(start, end) if start or end else None


def dashboard_range(days: str, start: dt.date | None, end: dt.date | None,
                    today: dt.date | None = None) -> tuple[DateRange, int | None]:
    """The dashboard's range: dates when given, else the last 7, 30 or 90 days (30 by default). Returns the
    range and the number of days picked (None for dates)."""
    if start or end:
        return date_range(start, end, today), None
    if days not in ("", *map(str, DASHBOARD_DAYS)):
        raise InvalidInput("Pick the last 7, 30 or 90 days, or a from and a to date.")
    picked = int(days or DEFAULT_RANGE_DAYS)
    today = today or dt.datetime.now(dt.UTC).date()
    return date_range(today - dt.timedelta(days=picked - 1), today), picked


async def dashboard(tenant_id: uuid.UUID, course_id: uuid.UUID | None, window: DateRange) -> dict[str, Any]:
    """Everything the dashboard page shows for one course (the first published one when none is picked)."""
    courses = await published_courses(tenant_id)
    if course_id is None and courses:
        course_id = courses[0]["syllabus_id"]
    if course_id is None:
        return {"courses": courses, "report": None}
    report = await course_report(tenant_id, course_id, window)
    totals = report["totals"]
    return {"courses": courses, "report": report, "funnel": funnel_of(report),
            "has_figures": bool(report["lessons"]) or any(totals[k] for k in ("course_views", "enrolled", "purchased")),
            "signals": await list_signals(tenant_id, course_id=course_id, window=window, limit=50),
            "thresholds": await thresholds(tenant_id)}


def evidence_of(signal: dict[str, Any]) -> dict[str, Any]:
    """What a signal saw and the thresholds it applied, as one JSON document (the page's viewer, the download)."""
    def decoded(value: Any) -> Any:
        return msgspec.json.decode(value) if isinstance(value, str | bytes) else value

    return {"signal_type": signal["signal_type"], "lesson_index": signal["lesson_index"],
            "window": {"start": signal["window_start"].isoformat(), "end": signal["window_end"].isoformat()},
            "metrics": decoded(signal["metrics"]), "thresholds": decoded(signal["thresholds"])}


async def published_courses(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The courses the dashboard can pick from: those of this workspace with a published version."""
    return await publishing.latest_packages(tenant_id, published_only=True)


async def list_signals(tenant_id: uuid.UUID, *, course_id: uuid.UUID | None = None, status: str | None = None,
                       signal_type: str | None = None, window: DateRange | None = None,
                       limit: int = 100) -> list[dict[str, Any]]:
    """Signals newest first; with a window, those whose day (the day their rule ran for) falls in it."""
    query = Signal.select().where(Signal.tenant_id == tenant_id)
    if window is not None:
        query = query.where((Signal.day >= window.start) & (Signal.day <= window.end))
    if course_id is not None:
        query = query.where(Signal.course_id == course_id)
    if status is not None:
        query = query.where(Signal.status == status)
    if signal_type is not None:
        query = query.where(Signal.signal_type == signal_type)
    rows = await query.order_by(Signal.day, ascending=False).order_by(Signal.created_at, ascending=False).limit(limit)
    return [{**row, "evidence": evidence_of(row)} for row in rows]


async def get_signal(tenant_id: uuid.UUID, signal_id: uuid.UUID) -> dict[str, Any]:
    row = await Signal.select().where((Signal.id == signal_id) & (Signal.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such signal in this workspace.")
    return row


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
    return {**rows[0], "evidence": evidence_of(rows[0])}


async def thresholds(tenant_id: uuid.UUID) -> Thresholds:
    row = await AnalyticsSettings.select().where(AnalyticsSettings.tenant_id == tenant_id).first()
    if row is None:
        return DEFAULTS
    return Thresholds(**{name: float(row[name]) if name.endswith("rate") else row[name]
                         for name in msgspec.structs.asdict(DEFAULTS)})


class ThresholdProblem(InvalidInput):
    """A threshold typed into the settings form that cannot be used; `field` names the input to mark."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


RATE_FIELDS = ("drop_off_rate", "quiz_pass_rate", "refund_rate", "engagement_rate")
COUNT_FIELDS = {"min_learners": (1, 100_000), "min_attempts": (1, 100_000), "min_purchases": (1, 100_000),
                "window_days": (1, 90)}


def thresholds_from_form(typed: dict[str, str], labels: dict[str, str]) -> Thresholds:
    """Thresholds from the settings form, where rates are typed as percentages (40 means 0.4)."""
    values: dict[str, Any] = {}
    for name in RATE_FIELDS:
        text = typed.get(name, "").strip().removesuffix("%").strip().replace(",", ".")
        try:
            percent = float(text)
        except ValueError:
            raise ThresholdProblem(name, f"{labels[name]}: type a percentage such as 40.") from None
        if not 0 < percent < 100:  # also refuses nan and inf, which compare false
            raise ThresholdProblem(name, f"{labels[name]} must be more than 0 % and less than 100 %.")
        values[name] = round(percent / 100, 4)
    for name, (low, high) in COUNT_FIELDS.items():
        text = typed.get(name, "").strip()
        if not text.isdecimal() or not low <= int(text) <= high:
            raise ThresholdProblem(name, f"{labels[name]} must be a whole number from {low} to {high}.")
        values[name] = int(text)
    return Thresholds(**values)


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
