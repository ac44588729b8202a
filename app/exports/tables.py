from enum import StrEnum

from piccolo.columns import JSONB, UUID, Bytea, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.column_types import BigSerial
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Tenant
from app.publishing.tables import CoursePackageRow


class ExportFormat(StrEnum):
    PDF = "PDF"
    SCORM = "SCORM"
    HTML = "HTML"


class ExportStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class PackageExport(Table, tablename="package_export"):
    # One row per (package version, format, options, exporter version): a second request finds it and,
    # once SUCCEEDED, is served from `content` without a job. Leased like generation (app/jobs/lease.py);
    # the trigger package_export_guard keeps the state machine and freezes a SUCCEEDED row's bytes.
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    package_id = ForeignKey(CoursePackageRow, null=False)
    format = Varchar(length=8, choices=ExportFormat)
    options = JSONB(default="{}")
    exporter_version = Varchar(length=32)
    status = Varchar(length=16, choices=ExportStatus, default=ExportStatus.QUEUED.value)
    content = Bytea(null=True, default=None)
    sha256 = Varchar(length=64, null=True, default=None)
    size_bytes = Integer(null=True, default=None)
    report = JSONB(null=True, default=None)
    error = Text(null=True, default=None)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    queued_at = Timestamptz(default=TimestamptzNow())
    claimed_at = Timestamptz(null=True, default=None)
    heartbeat_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    attempt = Integer(default=0)
    lost_attempts = Integer(default=0)


class ExportRequest(Table, tablename="export_request"):
    # The rate limiter's memory, in PostgreSQL so that every web process counts the same requests: one row
    # per export a person asked to be built (cache hits are free and not recorded).
    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    user_id = UUID()
    syllabus_id = UUID()
    export_id = UUID()
    created_at = Timestamptz(default=TimestamptzNow())
