"""package_export: one row per (version, format, options, exporter version); the state machine and the
frozen bytes of a finished export as a trigger; the rate limiter's window as one index scan."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T15:17:33:000000"
VERSION = "1.38.0"
DESCRIPTION = "package_export: key, state machine trigger, rate limit index"

SQL = r"""
CREATE UNIQUE INDEX package_export_key ON package_export (package_id, format, options, exporter_version);
ALTER TABLE package_export ADD CONSTRAINT package_export_format_known CHECK (format IN ('PDF', 'SCORM', 'HTML'));
ALTER TABLE package_export ADD CONSTRAINT package_export_status_known
    CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED'));
ALTER TABLE package_export ADD CONSTRAINT package_export_succeeded_has_bytes
    CHECK (status <> 'SUCCEEDED' OR (content IS NOT NULL AND sha256 IS NOT NULL AND size_bytes IS NOT NULL));
CREATE INDEX export_request_window_idx ON export_request (user_id, syllabus_id, created_at);

CREATE FUNCTION package_export_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.tenant_id <> OLD.tenant_id OR NEW.package_id <> OLD.package_id
       OR NEW.format <> OLD.format OR NEW.options <> OLD.options OR NEW.exporter_version <> OLD.exporter_version
       OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'package_export % : its key never changes', OLD.id;
    END IF;
    IF OLD.status = 'SUCCEEDED' THEN
        RAISE EXCEPTION 'package_export % is SUCCEEDED: its content is immutable', OLD.id;
    END IF;
    IF NEW.status <> OLD.status AND NOT (
        (OLD.status = 'QUEUED' AND NEW.status IN ('RUNNING', 'FAILED'))
        OR (OLD.status = 'RUNNING' AND NEW.status IN ('QUEUED', 'SUCCEEDED', 'FAILED'))
        OR (OLD.status = 'FAILED' AND NEW.status = 'QUEUED')
    ) THEN
        RAISE EXCEPTION 'package_export %: % -> % is not a transition', OLD.id, OLD.status, NEW.status;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER package_export_guard BEFORE UPDATE ON package_export
    FOR EACH ROW EXECUTE FUNCTION package_export_guard();
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="coursewright", description=DESCRIPTION)

    async def run():
        transaction = engine_finder().current_transaction.get()
        await transaction.connection.execute(SQL)

    manager.add_raw(run)
    return manager
