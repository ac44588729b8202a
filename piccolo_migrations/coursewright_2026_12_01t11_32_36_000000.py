"""invitation: an invitation ends once (accepted or revoked, never both), an accepted one names its
account, and the roster's list of pending invitations is one index scan."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T11:32:36:000000"
VERSION = "1.38.0"
DESCRIPTION = "invitation: constraints and pending index"

SQL = r"""
ALTER TABLE invitation ADD CONSTRAINT invitation_ends_once
    CHECK (accepted_at IS NULL OR revoked_at IS NULL);
ALTER TABLE invitation ADD CONSTRAINT invitation_accepted_by_someone
    CHECK ((accepted_at IS NULL) = (accepted_by IS NULL));
ALTER TABLE invitation ADD CONSTRAINT invitation_role_known
    CHECK (role IN ('learner', 'admin', 'owner'));
CREATE INDEX invitation_pending_idx ON invitation (tenant_id, created_at)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="coursewright", description=DESCRIPTION)

    async def run():
        transaction = engine_finder().current_transaction.get()
        await transaction.connection.execute(SQL)

    manager.add_raw(run)
    return manager
