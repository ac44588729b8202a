"""QUEUE_URL=redis://... : the same request -> SAQ -> worker -> database path over a Redis broker."""

import asyncio
import time

import pytest

from app.jobs.tables import BackgroundJob, TenantStats
from tests.conftest import start_server

REDIS_URL = "redis://127.0.0.1:6379/7"


@pytest.fixture(scope="module")
def redis_server(live_server):
    server = start_server("redis-queue", QUEUE_URL=REDIS_URL)
    yield server
    server.stop()


async def test_it_runs_jobs_through_a_redis_broker(client_factory, personas, redis_server):
    client = client_factory(redis_server.url)
    await client.login(personas.owner.email)
    response = await client.post("/admin/stats", htmx=True)
    assert response.status_code == 200
    job = await BackgroundJob.select().where(BackgroundJob.tenant_id == personas.acme["id"]).first()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = await BackgroundJob.select(BackgroundJob.status).where(BackgroundJob.id == job["id"]).first()
        if row["status"] == "SUCCEEDED":
            break
        await asyncio.sleep(0.2)
    assert row["status"] == "SUCCEEDED"
    assert await TenantStats.count().where(TenantStats.job_id == job["id"]) == 1
    assert "RedisQueue" in redis_server.log()
