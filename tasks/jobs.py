"""Thin task functions: parse the id, call the service, return its summary."""

import uuid

from app.jobs import services
from app.queue import task


@task(timeout=60)
async def recompute_tenant_stats(ctx: dict, *, job_id: str) -> dict:
    return await services.run_tenant_stats(uuid.UUID(job_id))


@task(timeout=60)
async def fail_lost_jobs(ctx: dict) -> dict:
    return {"failed": await services.fail_lost_jobs()}
