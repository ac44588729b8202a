"""Generation tasks: thin wrappers that call the authoring services with the row's id."""

import uuid

from app.authoring import services
from app.queue import GENERATION_QUEUE, task


@task(timeout=600, queue=GENERATION_QUEUE)
async def generate_syllabus(ctx: dict, *, run_id: str) -> dict:
    return await services.run_syllabus_generation(uuid.UUID(run_id))


@task(timeout=600, queue=GENERATION_QUEUE)
async def generate_item(ctx: dict, *, item_id: str) -> dict:
    return await services.run_item_generation(uuid.UUID(item_id))


@task(timeout=60)
async def fail_lost_generation(ctx: dict) -> dict:
    return await services.fail_lost_generation()
