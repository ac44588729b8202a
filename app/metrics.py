"""Prometheus metrics of our own; HTTP request metrics come from Litestar's PrometheusMiddleware."""

from prometheus_client import Counter, Histogram

JOBS = Counter("coursewright_jobs_total", "Background task runs by task and outcome", ["task", "outcome"])
JOB_DURATION = Histogram(
    "coursewright_job_duration_seconds",
    "Background task run time",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900),
)
JOB_PICKUP_DELAY = Histogram(
    "coursewright_job_pickup_delay_seconds",
    "Time from enqueue to a worker starting the task",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300),
)
AUDIT_WRITES = Counter("coursewright_audit_writes_total", "Audit rows written", ["action"])
AUDIT_FAILURES = Counter("coursewright_audit_write_failures_total", "Audit writes that failed (action still ran)")
LOGINS = Counter("coursewright_logins_total", "Login attempts by outcome", ["outcome"])
LLM_CALLS = Counter("coursewright_llm_calls_total", "LLM provider calls", ["operation", "model", "outcome"])
LLM_TOKENS = Counter("coursewright_llm_tokens_total", "LLM tokens", ["operation", "model", "direction"])
LLM_COST = Counter("coursewright_llm_cost_usd_total", "Estimated LLM cost in USD", ["operation", "model"])
GENERATED_ITEMS = Counter("coursewright_generated_items_total", "Generated artifacts by kind and outcome",
                          ["kind", "outcome"])
GENERATION_RECOVERIES = Counter(
    "coursewright_generation_recoveries_total",
    "Generation work moved on without its worker: released on stop, re-queued or failed after a lost lease, re-woken",
    ["kind", "action"])
REGENERATION_JOBS = Counter("coursewright_regeneration_jobs_total",
                            "Regeneration jobs finished by a worker or the sweeper, by target type and outcome "
                            "(completed, failed, worker_lost)", ["target_type", "outcome"])
REGENERATION_DURATION = Histogram("coursewright_regeneration_job_seconds",
                                  "Time from a regeneration job's claim to its end", ["target_type"],
                                  buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600))
DB_QUERIES_PER_REQUEST = Histogram("coursewright_db_queries_per_request", "SQL queries per HTTP request",
                                   buckets=(0, 1, 2, 3, 5, 8, 13, 21, 50))
EXPORTS = Counter("coursewright_exports_total", "Export builds by format and outcome", ["format", "outcome"])
EXPORT_DURATION = Histogram("coursewright_export_duration_seconds", "Time to build one export", ["format"],
                            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 15, 60, 300))
PURCHASES = Counter("coursewright_purchases_total", "Purchase steps by outcome (checkout_started, checkout_failed, "
                    "paid, expired, refunded) and mode (stripe, sandbox)", ["outcome", "mode"])
BILLING_EVENTS = Counter("coursewright_billing_webhook_events_total", "Stripe webhook events by type and outcome "
                         "(processed, ignored, duplicate, rejected, failed, bad_signature)", ["type", "outcome"])
BILLING_WEBHOOK_FAILURES = Counter(
    "coursewright_billing_webhook_failures_total",
    "Stripe webhook events whose processing failed (answered 500; alert:billing_webhook_failed)")
BILLING_WEBHOOK_DURATION = Histogram(
    "coursewright_billing_webhook_seconds", "Time to verify, record and process one Stripe webhook event",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5))
ANALYTICS_EVENTS = Counter("coursewright_analytics_events_total", "Learner events stored, by source (player, server; "
                           "lost: a server event that could not be written)", ["source"])
ANALYTICS_JOB_RUNS = Counter("coursewright_analytics_job_runs_total", "run_analytics_jobs runs by status "
                             "(SUCCESS, FAILED, SKIPPED)", ["status"])
ANALYTICS_JOB_DURATION = Histogram("coursewright_analytics_job_seconds", "Time of one run_analytics_jobs run",
                                   buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600))
