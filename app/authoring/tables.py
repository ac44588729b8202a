from enum import StrEnum

from piccolo.columns import JSONB, UUID, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Tenant


class SyllabusStatus(StrEnum):
    DRAFT = "DRAFT"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    SUPERSEDED = "SUPERSEDED"


class ItemStatus(StrEnum):
    PENDING = "PENDING"  # waiting for what it is made from (a quiz for its lesson, a project for its lessons)
    QUEUED = "QUEUED"  # ready; a worker will claim it
    BLOCKED = "BLOCKED"  # what it is made from failed; resumes when that succeeds
    GENERATING = "GENERATING"
    DRAFT = "DRAFT"
    FAILED = "FAILED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    SUPERSEDED = "SUPERSEDED"


class ItemKind(StrEnum):
    LESSON = "LESSON"
    QUIZ = "QUIZ"
    PROJECT = "PROJECT"


class RunKind(StrEnum):
    SYLLABUS = "SYLLABUS"  # draft (or redraft) a syllabus
    CONTENT = "CONTENT"  # every lesson, quiz and project of an approved syllabus
    ITEM = "ITEM"  # regenerate one content item
    RETRY = "RETRY"  # regenerate every failed item of another run (source_id)


class RunStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"  # finished, some items failed
    FAILED = "FAILED"


class Course(Table, tablename="course"):
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    title = Varchar(length=200)
    brief = JSONB()  # the CourseBrief the admin submitted
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class GenerationRun(Table, tablename="generation_run"):
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    course_id = ForeignKey(Course, null=False)
    syllabus_id = UUID(null=True, default=None)  # CONTENT/ITEM: the approved syllabus; SYLLABUS: the result
    source_id = UUID(null=True, default=None)  # a regeneration's starting point (syllabus or item)
    kind = Varchar(length=16, choices=RunKind)
    status = Varchar(length=16, choices=RunStatus, default=RunStatus.QUEUED.value)
    instruction = Text(null=True, default=None)
    total = Integer(default=0)
    done = Integer(default=0)
    failed = Integer(default=0)
    error = Text(null=True, default=None)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    blocked = Integer(default=0)
    # "mock" for the demo course, whatever LLM_PROVIDER says; None: the configured provider.
    llm_provider = Varchar(length=16, null=True, default=None)
    # Lease (app/jobs/lease.py): set while a worker holds the row.
    queued_at = Timestamptz(null=True, default=None)
    claimed_at = Timestamptz(null=True, default=None)
    heartbeat_at = Timestamptz(null=True, default=None)
    attempt = Integer(default=0)
    lost_attempts = Integer(default=0)


class Syllabus(Table, tablename="syllabus"):
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    course_id = ForeignKey(Course, null=False)
    revision = Integer()
    status = Varchar(length=16, choices=SyllabusStatus, default=SyllabusStatus.DRAFT.value)
    content = JSONB()
    content_hash = Varchar(length=64)
    generation = JSONB()  # A8 metadata: model, prompt version, temperature, seed, tokens, duration, repairs, run
    run_id = UUID(null=True, default=None)
    supersedes_id = UUID(null=True, default=None)
    instruction = Text(null=True, default=None)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    approved_by = UUID(null=True, default=None)
    approved_at = Timestamptz(null=True, default=None)
    approval_note = Text(null=True, default=None)
    approved_hash = Varchar(length=64, null=True, default=None)
    rejected_by = UUID(null=True, default=None)
    rejected_at = Timestamptz(null=True, default=None)
    rejection_reason = Text(null=True, default=None)


class ContentItem(Table, tablename="content_item"):
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    syllabus_id = ForeignKey(Syllabus, null=False)
    run_id = UUID(null=True, default=None)
    kind = Varchar(length=16, choices=ItemKind)
    module_index = Integer()
    lesson_index = Integer(null=True, default=None)  # None for a module's project
    title = Varchar(length=200)  # from the syllabus outline, for lists
    status = Varchar(length=16, choices=ItemStatus, default=ItemStatus.PENDING.value)
    content = JSONB(null=True, default=None)
    content_hash = Varchar(length=64, null=True, default=None)
    generation = JSONB(null=True, default=None)
    error = Text(null=True, default=None)
    waiting_for = Text(null=True, default=None)  # BLOCKED: what it waits for, in words
    supersedes_id = UUID(null=True, default=None)
    instruction = Text(null=True, default=None)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    # Lease (app/jobs/lease.py): set while a worker holds the row.
    queued_at = Timestamptz(null=True, default=None)
    claimed_at = Timestamptz(null=True, default=None)
    heartbeat_at = Timestamptz(null=True, default=None)
    attempt = Integer(default=0)
    lost_attempts = Integer(default=0)
    generated_at = Timestamptz(null=True, default=None)
    approved_by = UUID(null=True, default=None)
    approved_at = Timestamptz(null=True, default=None)
    approval_note = Text(null=True, default=None)
    approved_hash = Varchar(length=64, null=True, default=None)
    rejected_by = UUID(null=True, default=None)
    rejected_at = Timestamptz(null=True, default=None)
    rejection_reason = Text(null=True, default=None)
