"""Quality loop guards: external resource URLs are http(s) only, stored reports are insert-only, and settings stay
within range."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T20:38:09:000000"
VERSION = "1.38.0"
DESCRIPTION = "quality: resource URL check, insert-only reports, settings ranges"

SQL = r"""
ALTER TABLE external_resource ADD CONSTRAINT external_resource_http_only CHECK (url ~* '^https?://[^\s/]+');
ALTER TABLE external_resource ADD CONSTRAINT external_resource_module CHECK (module_index >= 1);
CREATE INDEX external_resource_course_idx ON external_resource (tenant_id, course_id, module_index)
    WHERE removed_at IS NULL;

CREATE INDEX quality_report_kind_idx ON quality_report (tenant_id, kind, generated_at DESC);
CREATE FUNCTION quality_report_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'quality_report: stored reports are insert-only';
END $$;
CREATE TRIGGER quality_report_frozen BEFORE UPDATE OR DELETE ON quality_report
    FOR EACH ROW EXECUTE FUNCTION quality_report_frozen();

ALTER TABLE quality_settings ADD CONSTRAINT quality_settings_questions CHECK (questions_per_module BETWEEN 1 AND 500);
CREATE INDEX ai_spot_check_tenant_idx ON ai_spot_check (tenant_id, checked_on DESC);
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="coursewright", description=DESCRIPTION)

    async def run():
        transaction = engine_finder().current_transaction.get()
        await transaction.connection.execute(SQL)

    manager.add_raw(run)
    return manager
