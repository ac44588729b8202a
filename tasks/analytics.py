"""The nightly analytics run (cron) and the dashboard's "refresh now"."""

from app.analytics.jobs import run_analytics_jobs
from app.queue import task


@task(timeout=3600)
async def analytics_nightly(ctx: dict) -> dict:
    return await run_analytics_jobs()
