from decimal import Decimal
from enum import StrEnum

from piccolo.columns import JSONB, UUID, ForeignKey, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Tenant


class JobStatus(StrEnum):
    PENDING = "PENDING"  # created, awaiting a person's trigger
    QUEUED = "QUEUED"  # triggered; a SAQ wake-up was sent
    RUNNING = "RUNNING"  # a worker claimed it (compare-and-set on QUEUED)
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class TargetType(StrEnum):
    LESSON = "LESSON"
    QUIZ = "QUIZ"
    PROJECT = "PROJECT"


class RetryReason(StrEnum):
    TRANSIENT_FAILURE = "TRANSIENT_FAILURE"
    BAD_INPUT = "BAD_INPUT"
    IMPROVED_PROMPT = "IMPROVED_PROMPT"
    INFRA_ERROR = "INFRA_ERROR"
    OTHER = "OTHER"


class IntentStatus(StrEnum):
    PENDING = "PENDING"
    CONSUMED = "CONSUMED"
    REJECTED = "REJECTED"


class RegenerationJob(Table, tablename="regeneration_job"):
    # PENDING -> QUEUED -> RUNNING -> COMPLETED | FAILED and nothing else (trigger regeneration_job_guard,
    # SPEC R1). The row is the truth; the SAQ task only carries its id. The lease columns let the shared
    # machinery (app/jobs/lease.py) claim, heartbeat and find lost holders; a lost holder's job is FAILED
    # ("worker lost"), never re-queued: a retry is a person's decision (retry_intent).
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    course_id = UUID()  # the syllabus of the target
    target_type = Varchar(length=16, choices=TargetType)
    target_id = UUID()  # the APPROVED content item to regenerate
    instruction = JSONB()  # validated against app/regeneration/schemas.Instruction
    status = Varchar(length=16, choices=JobStatus, default=JobStatus.PENDING.value)
    suggestion_id = UUID(null=True, default=None)  # the accepted suggestion it came from, if any
    retry_of_job_id = UUID(null=True, default=None)
    retry_intent_id = UUID(null=True, default=None, unique=True)
    estimated_cost_usd = Numeric(digits=(12, 6), default=Decimal(0))
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    triggered_by = UUID(null=True, default=None)
    queued_at = Timestamptz(null=True, default=None)
    claimed_at = Timestamptz(null=True, default=None)
    locked_at = Timestamptz(null=True, default=None)  # first claim (R1's name for it)
    heartbeat_at = Timestamptz(null=True, default=None)
    attempt = Integer(default=0)
    lost_attempts = Integer(default=0)
    completed_at = Timestamptz(null=True, default=None)
    output_id = UUID(null=True, default=None)  # set once, with COMPLETED
    error = JSONB(null=True, default=None)  # {"code": ..., "message": ...} with FAILED


class RegenerationOutput(Table, tablename="regeneration_output"):
    # Insert-only (trigger regeneration_output_frozen). One per job (job_id unique): two workers can never
    # both write one.
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    job_id = UUID(unique=True)
    content_item_id = UUID()  # the new DRAFT content item for the target's slot
    source_item_id = UUID()  # the approved item it was made from
    content = JSONB()
    content_hash = Varchar(length=64)
    prompt_name = Varchar(length=32)
    prompt_version = Varchar(length=64)
    model = Varchar(length=100)
    input_tokens = Integer(default=0)
    output_tokens = Integer(default=0)
    cost_usd = Numeric(digits=(12, 6), default=Decimal(0))
    lineage = JSONB()  # signal, suggestion, job, retry chain: what led to this output
    created_at = Timestamptz(default=TimestamptzNow())


class RetryIntent(Table, tablename="retry_intent"):
    # A person's reasoned request to run a FAILED job again (SPEC R5). Status moves forward once:
    # PENDING -> CONSUMED | REJECTED (trigger retry_intent_guard). Executing it creates the new job in the
    # same transaction; regeneration_job.retry_intent_id is unique, so it is consumed at most once.
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    job_id = UUID()  # the FAILED job
    reason_code = Varchar(length=32, choices=RetryReason)
    reason_text = Text()
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    approved_by = UUID(null=True, default=None)
    approved_at = Timestamptz(null=True, default=None)
    status = Varchar(length=16, choices=IntentStatus, default=IntentStatus.PENDING.value)
    decided_by = UUID(null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)
    new_job_id = UUID(null=True, default=None)  # set once, with CONSUMED
    rejection_note = Text(null=True, default=None)


class LlmBudget(Table, tablename="llm_budget"):
    # A workspace's monthly LLM budget for regeneration (cost guard); no row: no limit.
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False, unique=True)
    monthly_usd = Numeric(digits=(12, 2))
    updated_by = UUID(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())
