"""Generation tasks: thin wrappers that call the generation functions with the row's id.

A task is only a wake-up: the row it names is claimed with a compare-and-set, so a duplicate, late or
retried delivery does nothing (app/jobs/lease.py).
"""

import uuid

from app.authoring import generation
from app.queue import GENERATION_QUEUE, task


@task(timeout=600, queue=GENERATION_QUEUE)
async def generate_syllabus(ctx: dict, *, run_id: str) -> dict:
    return await generation.run_syllabus_generation(uuid.UUID(run_id))


@task(timeout=600, queue=GENERATION_QUEUE)
async def generate_item(ctx: dict, *, item_id: str) -> dict:
    return await generation.run_item_generation(uuid.UUID(item_id))
