"""Backfill the ai_usage columns added by the previous migration.

Rows written before them were complete when written: they finished when they were created, and their
`model` is the one that answered. Without a finished_at they would count as calls whose worker died.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T09:06:24:000000"
VERSION = "1.38.0"
DESCRIPTION = "ai_usage: backfill response_model and finished_at"

SQL = r"""
UPDATE ai_usage SET response_model = model, finished_at = created_at WHERE finished_at IS NULL;
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="coursewright", description=DESCRIPTION)

    async def run():
        transaction = engine_finder().current_transaction.get()
        await transaction.connection.execute(SQL)

    manager.add_raw(run)
    return manager
