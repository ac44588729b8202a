"""Export tasks: a wake-up naming an export row; the row is claimed with a compare-and-set, so a duplicate
or late delivery does nothing (app/jobs/lease.py)."""

import uuid

from app.exports import services
from app.queue import task


@task(timeout=900)
async def build_export(ctx: dict, *, export_id: str) -> dict:
    return await services.run_export(uuid.UUID(export_id))
