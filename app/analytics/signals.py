"""Rule-based signals (N6), computed from the daily aggregates only, over a window of days.

- high_drop_off (a lesson): of the learners who viewed the lesson before it, the share who did not view this
  one is above the threshold;
- low_quiz_pass_rate (a lesson): passes / attempts below the threshold;
- high_refund_rate (the course): refunds / purchases above the threshold (real refunds, from commerce);
- low_engagement (the course): of the learners who looked at the course, the share who opened its first
  lesson is below the threshold.

Each rule needs a minimum sample before it speaks, and records the figures it saw and the thresholds it
applied. Counts add up daily unique learners over the window (a learner on two days counts twice on both
sides of each ratio), which keeps the rules on aggregates alone. The same condition on the same day is one
signal (unique key; a second run the same day inserts nothing).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import msgspec

from app.analytics.observe import analytics_transaction
from app.analytics.tables import SignalType


class Thresholds(msgspec.Struct, frozen=True):
    drop_off_rate: float = 0.4  # above: a lesson loses too many learners
    quiz_pass_rate: float = 0.5  # below: a quiz fails too many
    refund_rate: float = 0.15  # above: too many purchases refunded
    engagement_rate: float = 0.3  # below: too few who look at the course start reading
    min_learners: int = 20
    min_attempts: int = 20
    min_purchases: int = 10
    window_days: int = 7


DEFAULTS = Thresholds()


def _float(value: Any) -> float:
    return float(value) if isinstance(value, Decimal) else value


async def thresholds_for(conn: Any, tenant_id: uuid.UUID) -> Thresholds:
    row = await conn.fetchrow("SELECT * FROM analytics_settings WHERE tenant_id = $1", tenant_id)
    if row is None:
        return DEFAULTS
    return Thresholds(**{name: _float(row[name]) for name in msgspec.structs.asdict(DEFAULTS)})


LESSONS_SQL = """
SELECT tenant_id, course_id, lesson_index, sum(unique_viewers)::bigint AS viewers,
       sum(quiz_attempts)::bigint AS attempts, sum(quiz_passes)::bigint AS passes
FROM analytics_daily_aggregate WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 AND lesson_index > 0
GROUP BY tenant_id, course_id, lesson_index ORDER BY course_id, lesson_index
"""
COURSES_SQL = """
SELECT tenant_id, course_id, sum(course_views)::bigint AS course_views, sum(purchased)::bigint AS purchased,
       sum(refunds)::bigint AS refunds
FROM analytics_daily_aggregate WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 AND lesson_index = 0
GROUP BY tenant_id, course_id ORDER BY course_id
"""
INSERT_SQL = """
INSERT INTO analytics_signal (id, tenant_id, course_id, signal_type, lesson_index, severity, day, window_start,
                              window_end, metrics, thresholds, summary, status, created_at)
VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11, 'OPEN', now())
ON CONFLICT (course_id, signal_type, lesson_index, day) DO NOTHING
"""


class Finding(msgspec.Struct, frozen=True):
    course_id: uuid.UUID
    signal_type: SignalType
    lesson_index: int
    severity: str
    metrics: dict[str, Any]
    summary: str


def _severity(ratio: float) -> str:
    """How far past the threshold (ratio 1.0 = just past it)."""
    return "high" if ratio >= 1.5 else "medium" if ratio >= 1.2 else "low"


def lesson_findings(rows: list[dict[str, Any]], t: Thresholds) -> list[Finding]:
    findings = []
    previous: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rows:
        course, lesson = row["course_id"], row["lesson_index"]
        before = previous.get(course)
        previous[course] = row
        if before is not None and before["lesson_index"] == lesson - 1 and before["viewers"] >= t.min_learners:
            drop = 1 - min(row["viewers"], before["viewers"]) / before["viewers"]
            if drop > t.drop_off_rate:
                findings.append(Finding(
                    course, SignalType.HIGH_DROP_OFF, lesson, _severity(drop / t.drop_off_rate),
                    {"viewers_before": before["viewers"], "viewers": row["viewers"], "drop_off_rate": round(drop, 4)},
                    f"Lesson {lesson} loses {drop:.0%} of the learners who read lesson {lesson - 1} "
                    f"({row['viewers']} of {before['viewers']})."))
        if row["attempts"] >= t.min_attempts:
            rate = row["passes"] / row["attempts"]
            if rate < t.quiz_pass_rate:
                findings.append(Finding(
                    course, SignalType.LOW_QUIZ_PASS_RATE, lesson,
                    _severity((1 - rate) / (1 - t.quiz_pass_rate) if t.quiz_pass_rate < 1 else 1.0),
                    {"attempts": row["attempts"], "passes": row["passes"], "pass_rate": round(rate, 4)},
                    f"The quiz of lesson {lesson} is passed in {rate:.0%} of {row['attempts']} attempts."))
    return findings


def course_findings(rows: list[dict[str, Any]], first_lesson: dict[uuid.UUID, int], t: Thresholds) -> list[Finding]:
    findings = []
    for row in rows:
        course = row["course_id"]
        if row["purchased"] >= t.min_purchases:
            rate = row["refunds"] / row["purchased"]
            if rate > t.refund_rate:
                findings.append(Finding(
                    course, SignalType.HIGH_REFUND_RATE, 0, _severity(rate / t.refund_rate),
                    {"purchases": row["purchased"], "refunds": row["refunds"], "refund_rate": round(rate, 4)},
                    f"{row['refunds']} of {row['purchased']} purchases were refunded ({rate:.0%})."))
        if row["course_views"] >= t.min_learners:
            started = min(first_lesson.get(course, 0), row["course_views"])
            rate = started / row["course_views"]
            if rate < t.engagement_rate:
                findings.append(Finding(
                    course, SignalType.LOW_ENGAGEMENT, 0,
                    _severity((1 - rate) / (1 - t.engagement_rate) if t.engagement_rate < 1 else 1.0),
                    {"course_viewers": row["course_views"], "started": started, "engagement_rate": round(rate, 4)},
                    f"Only {rate:.0%} of the {row['course_views']} learners who looked at the course opened its "
                    "first lesson."))
    return findings


async def raise_signals(day: dt.date) -> dict[str, Any]:
    """Run every rule for every workspace over the window ending on `day`; returns how many were new."""
    created = 0
    async with analytics_transaction() as conn:
        tenants = [r["tenant_id"] for r in await conn.fetch(
            "SELECT DISTINCT tenant_id FROM analytics_daily_aggregate WHERE day BETWEEN $1 AND $2",
            day - dt.timedelta(days=90), day)]
        for tenant_id in tenants:
            t = await thresholds_for(conn, tenant_id)
            start = day - dt.timedelta(days=t.window_days - 1)
            lessons = [dict(r) for r in await conn.fetch(LESSONS_SQL, tenant_id, start, day)]
            courses = [dict(r) for r in await conn.fetch(COURSES_SQL, tenant_id, start, day)]
            first = {r["course_id"]: r["viewers"] for r in lessons if r["lesson_index"] == 1}
            applied = msgspec.json.encode(t).decode()
            for finding in lesson_findings(lessons, t) + course_findings(courses, first, t):
                status = await conn.execute(
                    INSERT_SQL, tenant_id, finding.course_id, finding.signal_type.value, finding.lesson_index,
                    finding.severity, day, start, day, msgspec.json.encode(finding.metrics).decode(), applied,
                    finding.summary)
                created += int(status.split()[-1])
    return {"day": day.isoformat(), "signals_created": created}
