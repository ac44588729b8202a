"""The quality loop's scheduled reports (SPEC O1, O2), stored per workspace for the admin pages."""

from app.accounts.tables import Tenant
from app.quality.coverage import store_coverage_report
from app.quality.traffic import store_for_every_workspace
from app.queue import task


@task(timeout=900)
async def coverage_audit_cron(ctx: dict) -> dict:
    # Mondays 09:30 UTC, the seeds' weekly coverage loop: one stored COVERAGE report per workspace, so the
    # Coverage page shows the trend.
    stored = 0
    for tenant in await Tenant.select(Tenant.id).order_by(Tenant.id):
        await store_coverage_report(tenant["id"], trigger="cron")
        stored += 1
    return {"workspaces": stored}


@task(timeout=900)
async def traffic_report_cron(ctx: dict) -> dict:
    # Mondays and Thursdays, like the seeds' automation: the report the bi-weekly sweep and spot checks start from.
    return await store_for_every_workspace()
