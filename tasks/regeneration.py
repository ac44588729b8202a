"""Regeneration tasks: a wake-up that names a job; the worker claims the row with a compare-and-set, so a
duplicate, late or retried delivery does nothing (app/regeneration/worker.py)."""

import uuid

from app.queue import GENERATION_QUEUE, task
from app.regeneration import worker


@task(timeout=600, queue=GENERATION_QUEUE)
async def regenerate_content(ctx: dict, *, job_id: str) -> dict:
    return await worker.run_regeneration_job(uuid.UUID(job_id))
