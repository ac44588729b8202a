from decimal import Decimal

from piccolo.columns import UUID, Boolean, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.column_types import BigSerial
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class AIUsage(Table, tablename="ai_usage"):
    # One row per provider call, repairs and failures included (A1). It is written before the call
    # (finished_at NULL, input tokens estimated) and completed when the answer or the error arrives, so a
    # call whose worker died still shows its spend.
    id = BigSerial(primary_key=True)
    tenant_id = UUID(null=True, default=None)
    operation = Varchar(length=32)
    provider = Varchar(length=16)
    model = Varchar(length=100)  # the model we asked for: prices and the usage report go by it
    response_model = Varchar(length=100, null=True, default=None)  # the one that answered (often a snapshot)
    prompt_name = Varchar(length=32)
    prompt_version = Varchar(length=64)
    input_tokens = Integer(default=0)
    output_tokens = Integer(default=0)
    cost_usd = Numeric(digits=(12, 6), default=Decimal(0))
    duration_ms = Integer(default=0)
    http_attempts = Integer(default=0)  # 1 + SDK retries (timed-out attempts too); the mock counts 1 per call
    success = Boolean(default=False)
    error = Text(null=True, default=None)
    run_id = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
