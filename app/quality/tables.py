"""Operations' quality loop (SPEC O1–O4): vetted external resources of a module, stored audit and traffic
reports, the AI spot-check log, and each workspace's coverage settings."""

from enum import StrEnum

from piccolo.columns import JSONB, UUID, Boolean, Date, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Tenant


class ResourceKind(StrEnum):
    ARTICLE = "ARTICLE"
    DOCUMENTATION = "DOCUMENTATION"
    VIDEO = "VIDEO"
    BOOK = "BOOK"
    TOOL = "TOOL"
    COURSE = "COURSE"
    OTHER = "OTHER"


class ReportKind(StrEnum):
    COVERAGE = "COVERAGE"
    TRAFFIC = "TRAFFIC"


class ExternalResource(Table, tablename="external_resource"):
    # A person vetted it (the model never invents URLs). Attached to a module of a course (the course's
    # lineage: syllabus revisions come and go, a module is found by the course and its position); packages
    # copy the resources live when they are built, so removing one changes only the next version.
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    course_id = UUID()  # course.id (the brief), not a syllabus revision
    module_index = Integer()  # 1-based, as the outline shows it
    title = Varchar(length=200)
    url = Varchar(length=2000)  # http or https only (service check and a CHECK constraint)
    kind = Varchar(length=16, choices=ResourceKind, default=ResourceKind.ARTICLE.value)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    removed_by = UUID(null=True, default=None)
    removed_at = Timestamptz(null=True, default=None)


class QualityReport(Table, tablename="quality_report"):
    # Insert-only: one row per stored run of the coverage audit or the traffic report (cron or by hand), so
    # the pages can show the trend over time.
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    kind = Varchar(length=16, choices=ReportKind)
    generated_at = Timestamptz(default=TimestamptzNow())
    parameters = JSONB()  # e.g. {"days": 30, "limit": 20, "questions_target": 20}
    figures = JSONB()  # the structured report the page draws
    text = Text()  # the same report as the CLI prints it
    trigger = Varchar(length=16, default="cron")  # cron | admin | cli


class SpotCheck(Table, tablename="ai_spot_check"):
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    checked_on = Date()
    course_id = UUID()
    module_index = Integer(null=True, default=None)  # NULL: the course as a whole
    traffic = Integer(null=True, default=None)  # learner sessions from the traffic report, when prefilled
    checked = Text()  # what was checked
    observed = Text()  # the behaviour observed
    follow_up = Text(default="")
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class QualitySettings(Table, tablename="quality_settings"):
    # No row: the defaults (20 questions per module, publish gate advisory).
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False, unique=True)
    questions_per_module = Integer(default=20)
    publish_gate_blocking = Boolean(default=False)
    updated_by = UUID(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())
