from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from enum import Enum
from piccolo.columns.column_types import Varchar

ID = "2026-12-01T10:20:53:433536"
VERSION = "1.38.0"
DESCRIPTION = "generation_run.kind choices gain RETRY (Python-side only; the CHECK constraint changed in 2026-12-01T09:04:00)"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="coursewright", description=DESCRIPTION
    )

    manager.alter_column(
        table_class_name="GenerationRun",
        tablename="generation_run",
        column_name="kind",
        db_column_name="kind",
        params={
            "choices": Enum(
                "RunKind",
                {
                    "SYLLABUS": "SYLLABUS",
                    "CONTENT": "CONTENT",
                    "ITEM": "ITEM",
                    "RETRY": "RETRY",
                },
            )
        },
        old_params={
            "choices": Enum(
                "RunKind",
                {"SYLLABUS": "SYLLABUS", "CONTENT": "CONTENT", "ITEM": "ITEM"},
            )
        },
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
