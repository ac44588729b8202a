"""Insights and regeneration guards (SPEC I1, R1, R5; invariant 2): a suggestion changes only its status, forward
once; a regeneration job moves only along PENDING -> QUEUED -> RUNNING -> COMPLETED | FAILED and its identity
never changes; a regeneration output is insert-only; a retry intent is approved once and then consumed or
rejected, forward only. None of these rows is ever deleted."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T20:23:52:000000"
VERSION = "1.38.0"
DESCRIPTION = "insights and regeneration: keys and guards"

SQL = r"""
ALTER TABLE content_suggestion ADD CONSTRAINT content_suggestion_once
    UNIQUE NULLS NOT DISTINCT (source_signal_id, suggestion_type, target_id);
CREATE INDEX content_suggestion_tenant_status_idx ON content_suggestion (tenant_id, status, created_at DESC);
ALTER TABLE content_suggestion ADD CONSTRAINT content_suggestion_severity
    CHECK (severity IN ('low', 'medium', 'high'));

CREATE FUNCTION content_suggestion_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'content_suggestion %: suggestions are kept', OLD.id;
    END IF;
    IF (to_jsonb(NEW) - 'status') <> (to_jsonb(OLD) - 'status') THEN
        RAISE EXCEPTION 'content_suggestion %: only its status changes', OLD.id;
    END IF;
    IF NEW.status <> OLD.status AND NOT (OLD.status = 'OPEN' AND NEW.status IN ('ACCEPTED', 'DISMISSED')) THEN
        RAISE EXCEPTION 'content_suggestion %: % -> % is not allowed', OLD.id, OLD.status, NEW.status;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER content_suggestion_guard BEFORE UPDATE OR DELETE ON content_suggestion
    FOR EACH ROW EXECUTE FUNCTION content_suggestion_guard();

CREATE INDEX regeneration_job_tenant_status_idx ON regeneration_job (tenant_id, status, created_at DESC);
CREATE INDEX regeneration_job_target_idx ON regeneration_job (target_id);
CREATE INDEX regeneration_job_running_idx ON regeneration_job (heartbeat_at) WHERE status = 'RUNNING';
ALTER TABLE regeneration_job ADD CONSTRAINT regeneration_job_finished_sane CHECK (
    (status <> 'COMPLETED' OR (output_id IS NOT NULL AND completed_at IS NOT NULL))
    AND (status <> 'FAILED' OR (error IS NOT NULL AND completed_at IS NOT NULL)));
ALTER TABLE regeneration_job ADD CONSTRAINT regeneration_job_retry_sane
    CHECK ((retry_intent_id IS NULL) = (retry_of_job_id IS NULL));

CREATE FUNCTION regeneration_job_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    fixed text[] := ARRAY['id', 'tenant_id', 'course_id', 'target_type', 'target_id', 'instruction',
                          'suggestion_id', 'retry_of_job_id', 'retry_intent_id', 'estimated_cost_usd',
                          'created_by', 'created_at'];
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'regeneration_job %: jobs are kept', OLD.id;
    END IF;
    IF OLD.status IN ('COMPLETED', 'FAILED') THEN
        RAISE EXCEPTION 'regeneration_job %: a % job is final', OLD.id, OLD.status;
    END IF;
    IF (SELECT bool_or(to_jsonb(NEW) -> k IS DISTINCT FROM to_jsonb(OLD) -> k) FROM unnest(fixed) AS k) THEN
        RAISE EXCEPTION 'regeneration_job %: what a job regenerates, and from what, never changes', OLD.id;
    END IF;
    IF OLD.output_id IS NOT NULL AND NEW.output_id IS DISTINCT FROM OLD.output_id THEN
        RAISE EXCEPTION 'regeneration_job %: its output is set once', OLD.id;
    END IF;
    IF NEW.status <> OLD.status AND NOT (
        (OLD.status = 'PENDING' AND NEW.status = 'QUEUED') OR
        (OLD.status = 'QUEUED' AND NEW.status = 'RUNNING') OR
        (OLD.status = 'RUNNING' AND NEW.status IN ('COMPLETED', 'FAILED'))) THEN
        RAISE EXCEPTION 'regeneration_job %: % -> % is not allowed (PENDING -> QUEUED -> RUNNING -> COMPLETED | FAILED)',
            OLD.id, OLD.status, NEW.status;
    END IF;
    IF NEW.output_id IS NOT NULL AND OLD.output_id IS NULL AND NEW.status <> 'COMPLETED' THEN
        RAISE EXCEPTION 'regeneration_job %: an output is set only as the job completes', OLD.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER regeneration_job_guard BEFORE UPDATE OR DELETE ON regeneration_job
    FOR EACH ROW EXECUTE FUNCTION regeneration_job_guard();
CREATE FUNCTION regeneration_job_starts_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'PENDING' THEN
        RAISE EXCEPTION 'regeneration_job: a job starts PENDING (got %)', NEW.status;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER regeneration_job_starts_pending BEFORE INSERT ON regeneration_job
    FOR EACH ROW EXECUTE FUNCTION regeneration_job_starts_pending();

CREATE FUNCTION regeneration_output_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'regeneration_output: outputs are insert-only (invariant 2)';
END $$;
CREATE TRIGGER regeneration_output_frozen BEFORE UPDATE OR DELETE ON regeneration_output
    FOR EACH ROW EXECUTE FUNCTION regeneration_output_frozen();
CREATE TRIGGER regeneration_output_no_truncate BEFORE TRUNCATE ON regeneration_output
    FOR EACH STATEMENT EXECUTE FUNCTION regeneration_output_frozen();

CREATE INDEX retry_intent_job_idx ON retry_intent (job_id);
ALTER TABLE retry_intent ADD CONSTRAINT retry_intent_text_given CHECK (length(btrim(reason_text)) > 0);
ALTER TABLE retry_intent ADD CONSTRAINT retry_intent_consumed_sane
    CHECK (status <> 'CONSUMED' OR (new_job_id IS NOT NULL AND approved_at IS NOT NULL));
CREATE UNIQUE INDEX retry_intent_one_consumer ON retry_intent (new_job_id) WHERE new_job_id IS NOT NULL;

CREATE FUNCTION retry_intent_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mutable text[] := ARRAY['status', 'approved_by', 'approved_at', 'decided_by', 'decided_at', 'new_job_id',
                            'rejection_note'];
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'retry_intent %: intents are kept', OLD.id;
    END IF;
    IF (to_jsonb(NEW) - mutable) <> (to_jsonb(OLD) - mutable) THEN
        RAISE EXCEPTION 'retry_intent %: only its decision changes', OLD.id;
    END IF;
    IF OLD.status <> 'PENDING' THEN
        RAISE EXCEPTION 'retry_intent %: a % intent is final', OLD.id, OLD.status;
    END IF;
    IF NEW.status NOT IN ('PENDING', 'CONSUMED', 'REJECTED') THEN
        RAISE EXCEPTION 'retry_intent %: unknown status %', OLD.id, NEW.status;
    END IF;
    IF OLD.approved_at IS NOT NULL AND (NEW.approved_at IS DISTINCT FROM OLD.approved_at
                                        OR NEW.approved_by IS DISTINCT FROM OLD.approved_by) THEN
        RAISE EXCEPTION 'retry_intent %: its approval is given once', OLD.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER retry_intent_guard BEFORE UPDATE OR DELETE ON retry_intent
    FOR EACH ROW EXECUTE FUNCTION retry_intent_guard();

ALTER TABLE llm_budget ADD CONSTRAINT llm_budget_positive CHECK (monthly_usd >= 0);
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="coursewright", description=DESCRIPTION)

    async def run():
        transaction = engine_finder().current_transaction.get()
        await transaction.connection.execute(SQL)

    manager.add_raw(run)
    return manager
