"""Analytics storage. analytics_event itself is a natively partitioned table created by hand-written SQL
(piccolo_migrations/…_analytics_events.py): Piccolo cannot declare partitioning, and the ingestion path writes
it with COPY, never through the ORM."""

from enum import StrEnum

from piccolo.columns import JSONB, UUID, Date, Float, ForeignKey, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.column_types import BigSerial
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Tenant


class EventType(StrEnum):
    COURSE_VIEWED = "course_viewed"
    ENROLLED = "enrolled"
    PURCHASED = "purchased"
    LESSON_VIEWED = "lesson_viewed"
    LESSON_COMPLETED = "lesson_completed"
    QUIZ_ATTEMPTED = "quiz_attempted"
    QUIZ_PASSED = "quiz_passed"
    COURSE_COMPLETED = "course_completed"


class SignalType(StrEnum):
    HIGH_DROP_OFF = "high_drop_off"
    LOW_QUIZ_PASS_RATE = "low_quiz_pass_rate"
    HIGH_REFUND_RATE = "high_refund_rate"
    LOW_ENGAGEMENT = "low_engagement"


class SignalStatus(StrEnum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


class DailyAggregate(Table, tablename="analytics_daily_aggregate"):
    # One row per (course, package version, day, lesson); lesson_index 0 is the course as a whole (funnel,
    # completion, refunds). Written only by the rollup (INSERT … SELECT … ON CONFLICT DO UPDATE).
    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    course_id = UUID()  # the syllabus, as everywhere a learner meets a course
    package_version = Integer()  # 0: events that carried no version
    day = Date()
    lesson_index = Integer()
    views = Integer(default=0)
    unique_viewers = Integer(default=0)
    completions = Integer(default=0)
    completion_rate = Float(null=True, default=None)  # completions / unique viewers
    avg_time_ms = Integer(null=True, default=None)
    median_time_ms = Integer(null=True, default=None)
    quiz_attempts = Integer(default=0)
    quiz_passes = Integer(default=0)
    pass_rate = Float(null=True, default=None)
    course_views = Integer(default=0)  # distinct learners who viewed the course that day
    enrolled = Integer(default=0)
    purchased = Integer(default=0)
    course_completed = Integer(default=0)
    refunds = Integer(default=0)
    computed_at = Timestamptz(default=TimestamptzNow())


class Signal(Table, tablename="analytics_signal"):
    # Insert-only except status (trigger analytics_signal_guard). One per (course, type, lesson, day).
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    course_id = UUID()
    signal_type = Varchar(length=32, choices=SignalType)
    lesson_index = Integer(default=0)  # 0: the course as a whole
    severity = Varchar(length=8)  # low, medium, high
    day = Date()  # the day the rule ran for (the window's last day)
    window_start = Date()
    window_end = Date()
    metrics = JSONB()  # the snapshot the rule saw
    thresholds = JSONB()  # the thresholds and minimum samples it applied
    summary = Text()
    status = Varchar(length=16, choices=SignalStatus, default=SignalStatus.OPEN.value)
    created_at = Timestamptz(default=TimestamptzNow())


class AnalyticsSettings(Table, tablename="analytics_settings"):
    # Per-workspace thresholds; a workspace without a row uses the defaults in app/analytics/signals.py.
    tenant_id = UUID(primary_key=True)  # references tenant (constraint in the hand-written migration)
    drop_off_rate = Numeric(digits=(5, 4))
    quiz_pass_rate = Numeric(digits=(5, 4))
    refund_rate = Numeric(digits=(5, 4))
    engagement_rate = Numeric(digits=(5, 4))
    min_learners = Integer()
    min_attempts = Integer()
    min_purchases = Integer()
    window_days = Integer()
    updated_at = Timestamptz(default=TimestamptzNow())


class JobLock(Table, tablename="analytics_job_lock"):
    # A lock with a time-to-live: a run that died keeps nobody out for longer than its TTL.
    name = Varchar(length=64, primary_key=True)
    holder = Varchar(length=128)
    locked_until = Timestamptz()
