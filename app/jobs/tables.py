from enum import StrEnum

from piccolo.columns import JSONB, UUID, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.column_types import BigSerial
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Tenant


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class BackgroundJob(Table, tablename="background_job"):
    # The source of truth for a job's state; SAQ only carries this row's id (see app/jobs/README.md).
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    kind = Varchar(length=64)
    status = Varchar(length=16, choices=JobStatus, default=JobStatus.QUEUED.value)
    requested_by = UUID(null=True, default=None)
    result = JSONB(null=True, default=None)
    error = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)


class TenantStats(Table, tablename="tenant_stats"):
    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    job_id = ForeignKey(BackgroundJob, null=False, unique=True)
    members = Integer()
    admins = Integer()
    learners = Integer()
    audit_events = Integer()
    computed_at = Timestamptz(default=TimestamptzNow())
