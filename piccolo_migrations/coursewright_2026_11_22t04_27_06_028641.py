"""Constraints, indexes and the triggers that make the database the backstop for our invariants.

Piccolo runs a migration's raw SQL before its table operations, so this lives in its own migration
after the one that creates the tables.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T04:27:06:027083"
VERSION = "1.38.0"
DESCRIPTION = "constraints, indexes, insert-only audit log, background job state machine"

SQL = r"""
ALTER TABLE membership ADD CONSTRAINT membership_role_check CHECK (role IN ('learner', 'admin', 'owner'));
ALTER TABLE membership ADD CONSTRAINT membership_tenant_user_key UNIQUE (tenant_id, user_id);
CREATE INDEX membership_user_idx ON membership (user_id);
ALTER TABLE app_user ADD CONSTRAINT app_user_email_lowercase CHECK (email = lower(email));
CREATE INDEX auth_session_user_idx ON auth_session (user_id);
CREATE INDEX auth_session_expires_idx ON auth_session (expires_at);
CREATE INDEX login_failure_email_idx ON login_failure (email, created_at);
CREATE INDEX login_failure_ip_idx ON login_failure (ip, created_at);
CREATE INDEX audit_log_tenant_created_idx ON audit_log (tenant_id, created_at DESC, id DESC);
CREATE INDEX audit_log_tenant_action_idx ON audit_log (tenant_id, action, created_at DESC);
CREATE INDEX audit_log_tenant_entity_idx ON audit_log (tenant_id, entity_type, entity_id);
CREATE INDEX audit_log_tenant_actor_idx ON audit_log (tenant_id, actor_id, created_at DESC);
CREATE INDEX background_job_tenant_idx ON background_job (tenant_id, created_at DESC);
ALTER TABLE background_job ADD CONSTRAINT background_job_status_check
    CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED'));

-- One function for every insert-only table: it names the table and the refused operation.
CREATE FUNCTION coursewright_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is insert-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER audit_log_insert_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION coursewright_reject_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION coursewright_reject_change();

-- A job moves QUEUED -> RUNNING -> SUCCEEDED | FAILED (or QUEUED -> FAILED when it never started);
-- a finished job never changes again, and identity columns never change.
CREATE FUNCTION background_job_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.tenant_id <> OLD.tenant_id OR NEW.kind <> OLD.kind
       OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'background_job %: identity columns are immutable', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.status IN ('SUCCEEDED', 'FAILED') THEN
        RAISE EXCEPTION 'background_job %: a % job is final', OLD.id, OLD.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.status <> OLD.status AND NOT (
        (OLD.status = 'QUEUED' AND NEW.status IN ('RUNNING', 'FAILED'))
        OR (OLD.status = 'RUNNING' AND NEW.status IN ('SUCCEEDED', 'FAILED'))
    ) THEN
        RAISE EXCEPTION 'background_job %: % -> % is not a valid transition', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER background_job_state_machine BEFORE UPDATE ON background_job
    FOR EACH ROW EXECUTE FUNCTION background_job_guard();
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="coursewright", description=DESCRIPTION)

    async def run():
        transaction = engine_finder().current_transaction.get()
        await transaction.connection.execute(SQL)

    manager.add_raw(run)
    return manager
