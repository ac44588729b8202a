"""The loop measured (issue 13 item 8): did the regenerated item help?

For a signal and the package version that first published a regenerated item, the figure that raised the
signal is recomputed from analytics_daily_aggregate twice, learners on each version counted apart (the table
is keyed by package_version):

- before: the version learners had (the newest earlier version carrying the item the job started from),
  over the signal's own window;
- after: the new version, over as many days from its publication (fewer while they have not passed).

Same rules as the signals (app/analytics/signals.py): daily unique learners summed over the window, rates from
summed counts. Until the new version has the workspace's minimum sample, it says "not enough data yet".
Read-only (invariant 7).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from app.analytics.signals import Thresholds, thresholds_for
from app.db import independent_connection
from app.regeneration.lineage import JobRow, Lineage, SignalRow, lineage

FIGURES_SQL = """
SELECT package_version, lesson_index, sum(unique_viewers)::bigint AS viewers,
       sum(quiz_attempts)::bigint AS attempts, sum(quiz_passes)::bigint AS passes,
       sum(course_views)::bigint AS course_views, sum(purchased)::bigint AS purchased, sum(refunds)::bigint AS refunds
FROM analytics_daily_aggregate
WHERE tenant_id = $1 AND course_id = $2 AND lesson_index = ANY($3::int[])
  AND ((package_version = $4 AND day BETWEEN $5 AND $6) OR (package_version = $7 AND day BETWEEN $8 AND $9))
GROUP BY package_version, lesson_index
"""


class Metric(msgspec.Struct, frozen=True):
    label: str  # "Drop-off", "Quiz pass rate", ...
    sample_words: str  # what the sample counts: "learners who read lesson 1"
    lower_is_better: bool
    min_field: str  # the Thresholds field that gives the minimum sample


METRICS = {
    "high_drop_off": Metric("Drop-off", "learners who read the lesson before", True, "min_learners"),
    "low_quiz_pass_rate": Metric("Quiz pass rate", "quiz attempts", False, "min_attempts"),
    "low_engagement": Metric("Learners who start reading", "learners who looked at the course", False, "min_learners"),
    "high_refund_rate": Metric("Refund rate", "purchases", True, "min_purchases"),
}


class Measure(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    start: dt.date
    end: dt.date
    days: int  # days counted so far (the after window may still be running)
    rate: float | None  # None: no sample at all
    sample: int


class Impact(msgspec.Struct, frozen=True, kw_only=True):
    signal_id: uuid.UUID
    signal_type: str
    lesson_index: int
    metric: Metric
    window_days: int
    min_sample: int
    before: Measure | None  # None: no earlier version carried the slot
    after: Measure
    item_id: uuid.UUID  # the regenerated item the new version published

    @property
    def enough(self) -> bool:
        return self.after.sample >= self.min_sample

    @property
    def change(self) -> float | None:
        """After minus before, in rate points (0.1 = ten points); None while it cannot be said."""
        if not self.enough or self.before is None or self.before.rate is None or self.after.rate is None:
            return None
        return self.after.rate - self.before.rate

    @property
    def verdict(self) -> str:
        change = self.change
        if change is None:
            return "Not enough data yet" if not self.enough else "Nothing to compare with"
        if abs(change) < 0.005:
            return "No change"
        better = change < 0 if self.metric.lower_is_better else change > 0
        return "Better" if better else "Worse"


def rate_and_sample(signal_type: str, lesson_index: int,
                    figures: dict[int, dict[str, int]]) -> tuple[float | None, int]:
    """The signal's own figure from summed counts per lesson (0: the course as a whole)."""
    here, empty = figures.get(lesson_index, {}), {}
    if signal_type == "high_drop_off":
        before, now = figures.get(lesson_index - 1, empty).get("viewers", 0), here.get("viewers", 0)
        return (1 - min(now, before) / before if before else None), before
    if signal_type == "low_quiz_pass_rate":
        attempts = here.get("attempts", 0)
        return (here.get("passes", 0) / attempts if attempts else None), attempts
    if signal_type == "low_engagement":
        views, started = figures.get(0, empty).get("course_views", 0), figures.get(1, empty).get("viewers", 0)
        return (min(started, views) / views if views else None), views
    if signal_type == "high_refund_rate":
        bought = figures.get(0, empty).get("purchased", 0)
        return (figures.get(0, empty).get("refunds", 0) / bought if bought else None), bought
    raise ValueError(f"no impact measure for signal type {signal_type!r}")


def _lessons(signal: SignalRow) -> list[int]:
    if signal.signal_type == "high_drop_off":
        return [signal.lesson_index - 1, signal.lesson_index]
    if signal.signal_type == "low_engagement":
        return [0, 1]
    return [signal.lesson_index]


async def measure(tenant_id: uuid.UUID, signal: SignalRow, *, old_version: int | None, new_version: int,
                  published_on: dt.date, item_id: uuid.UUID, today: dt.date | None = None) -> Impact:
    today = today or dt.datetime.now(dt.UTC).date()
    window = (signal.window_end - signal.window_start).days + 1
    after_end = min(published_on + dt.timedelta(days=window - 1), max(today, published_on))
    async with independent_connection() as conn:
        limits: Thresholds = await thresholds_for(conn, tenant_id)
        rows = await conn.fetch(FIGURES_SQL, tenant_id, signal.course_id, _lessons(signal),
                                old_version if old_version is not None else -1, signal.window_start, signal.window_end,
                                new_version, published_on, after_end)
    by_version: dict[int, dict[int, dict[str, int]]] = {}
    for row in rows:
        by_version.setdefault(row["package_version"], {})[row["lesson_index"]] = dict(row)
    metric = METRICS[signal.signal_type]

    def measured(version: int, start: dt.date, end: dt.date) -> Measure:
        rate, sample = rate_and_sample(signal.signal_type, signal.lesson_index, by_version.get(version, {}))
        return Measure(version=version, start=start, end=end, days=(end - start).days + 1, rate=rate, sample=sample)

    before = measured(old_version, signal.window_start, signal.window_end) if old_version is not None else None
    return Impact(signal_id=signal.id, signal_type=signal.signal_type, lesson_index=signal.lesson_index,
                  metric=metric, window_days=window, min_sample=int(getattr(limits, metric.min_field)),
                  before=before, after=measured(new_version, published_on, after_end), item_id=item_id)


async def impacts_of(tenant_id: uuid.UUID, found: Lineage, today: dt.date | None = None) -> list[Impact]:
    """One measure per signal and regenerated item that a package version has published."""
    rows, impacts = found.rows, []
    for output in rows.outputs:
        job = next((j for j in rows.jobs if j.id == output.job_id), None)
        signal = _signal_of(found, job)
        carrying = sorted((p for p in rows.packages if output.content_item_id in p.item_ids), key=lambda p: p.version)
        if signal is None or signal.signal_type not in METRICS or not carrying:
            continue
        first = carrying[0]
        earlier = [p.version for p in rows.packages
                   if output.source_item_id in p.item_ids and p.version < first.version
                   and p.syllabus_id == first.syllabus_id]
        old = max(earlier) if earlier else (first.version - 1 or None)
        impacts.append(await measure(tenant_id, signal, old_version=old, new_version=first.version,
                                     published_on=first.published_at.astimezone(dt.UTC).date(),
                                     item_id=output.content_item_id, today=today))
    return impacts


def _signal_of(found: Lineage, job: JobRow | None) -> SignalRow | None:
    # A retry job may not carry the suggestion itself: the job it retried (up to the first) does.
    jobs = {j.id: j for j in found.rows.jobs}
    while job is not None and job.suggestion_id is None:
        job = jobs.get(job.retry_of_job_id) if job.retry_of_job_id else None
    suggestion = next((s for s in found.rows.suggestions if job and s.id == job.suggestion_id), None)
    if suggestion is None:
        return None
    return next((g for g in found.rows.signals if g.id == suggestion.source_signal_id), None)


async def impact_for_suggestion(tenant_id: uuid.UUID, suggestion_id: uuid.UUID) -> list[Impact]:
    """For the suggestion page (templates/regeneration/_impact.html, `impacts`): empty until something of it
    is published. Raises NotFound for another workspace's suggestion."""
    return await impacts_of(tenant_id, await lineage(tenant_id, suggestion_id=suggestion_id))


def as_percent(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"
