"""Cron tasks that keep tables small."""

import datetime as dt

from app.accounts import services
from app.queue import task


@task(timeout=120)
async def purge_expired_sessions(ctx: dict) -> dict:
    sessions = await services.purge_expired_sessions()
    failures = await services.purge_login_failures(older_than=dt.timedelta(days=1))
    return {"sessions_deleted": sessions, "login_failures_deleted": failures}
