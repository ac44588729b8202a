import asyncio
import time
import uuid

import asyncpg
import pytest

from app.jobs.tables import BackgroundJob, TenantStats
from app.queue import close_queue, enqueue, get_queue
from tasks.jobs import recompute_tenant_stats
from tests.conftest import DATABASE_URL


async def _wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await predicate():
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


async def test_it_runs_a_job_enqueued_by_a_request_on_the_worker(client, personas):
    await client.login(personas.admin.email)
    response = await client.post("/admin/stats", htmx=True)
    assert response.status_code == 200
    job = await BackgroundJob.select().where(BackgroundJob.tenant_id == personas.acme["id"]).first()
    assert job is not None and f'id="job-{job["id"]}"' in response.text
    assert 'hx-trigger="load delay:500ms, every 1s"' in response.text  # polls while unfinished

    async def finished():
        row = await BackgroundJob.select().where(BackgroundJob.id == job["id"]).first()
        return row if row["status"] in ("SUCCEEDED", "FAILED") else None

    done = await _wait_for(finished)
    assert done["status"] == "SUCCEEDED", done["error"]
    stats = await TenantStats.select().where(TenantStats.job_id == job["id"]).first()
    assert (stats["members"], stats["admins"], stats["learners"]) == (3, 2, 1)
    assert stats["audit_events"] >= 1
    # The status partial stops polling once the job is finished and shows the figures.
    partial = await client.get(f"/admin/jobs/{job['id']}", headers={"HX-Request": "true"})
    assert "hx-trigger" not in partial.text.split('id="stats"')[0]
    assert "succeeded" in partial.text and ">3<" in partial.text


async def test_it_has_one_effect_when_the_same_job_is_delivered_twice(personas):
    job = (await BackgroundJob.insert(BackgroundJob(tenant_id=personas.acme["id"], kind="tenant_stats"))
           .returning(BackgroundJob.id))[0]
    queue = get_queue()  # this process's queue: the same PostgreSQL the server's worker consumes
    await queue.connect()
    try:
        deliveries = [await enqueue(recompute_tenant_stats, job_id=str(job["id"])) for _ in range(2)]

        async def both_done():
            jobs = [await queue.job(d.key) for d in deliveries]
            return jobs if all(j.status == "complete" for j in jobs) else None

        results = [j.result for j in await _wait_for(both_done)]
    finally:
        await close_queue()
    assert sorted(r["skipped"] for r in results) == [False, True]
    assert await TenantStats.count().where(TenantStats.job_id == job["id"]) == 1
    row = await BackgroundJob.select().where(BackgroundJob.id == job["id"]).first()
    assert row["status"] == "SUCCEEDED"


@pytest.mark.parametrize("statement", [
    "UPDATE background_job SET status = 'RUNNING' WHERE id = $1",
    "UPDATE background_job SET status = 'QUEUED' WHERE id = $1",
    "UPDATE background_job SET kind = 'other' WHERE id = $1",
])
async def test_it_enforces_the_job_state_machine_in_the_database(personas, statement):
    job = (await BackgroundJob.insert(BackgroundJob(tenant_id=personas.acme["id"], kind="tenant_stats",
                                                    status="QUEUED")).returning(BackgroundJob.id))[0]
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute("UPDATE background_job SET status = 'RUNNING' WHERE id = $1", job["id"])
        await conn.execute("UPDATE background_job SET status = 'SUCCEEDED' WHERE id = $1", job["id"])
        with pytest.raises(asyncpg.PostgresError, match="background_job"):
            await conn.execute(statement, job["id"])
    finally:
        await conn.close()


async def test_it_hides_another_workspaces_job(client, personas):
    job = (await BackgroundJob.insert(BackgroundJob(tenant_id=personas.globex["id"], kind="tenant_stats"))
           .returning(BackgroundJob.id))[0]
    await client.login(personas.admin.email)
    assert (await client.get(f"/admin/jobs/{job['id']}")).status_code == 404
    assert (await client.get(f"/admin/jobs/{uuid.uuid4()}")).status_code == 404


async def test_it_fails_jobs_whose_worker_was_lost(personas):
    import datetime as dt

    from app.jobs.services import fail_lost_jobs

    now = dt.datetime.now(dt.UTC)
    lost, fresh = [
        (await BackgroundJob.insert(BackgroundJob(tenant_id=personas.acme["id"], kind="tenant_stats"))
         .returning(BackgroundJob.id))[0]["id"]
        for _ in range(2)
    ]
    await BackgroundJob.update({BackgroundJob.status: "RUNNING", BackgroundJob.started_at: now - dt.timedelta(hours=1)}
                               ).where(BackgroundJob.id == lost)
    await BackgroundJob.update({BackgroundJob.status: "RUNNING", BackgroundJob.started_at: now}
                               ).where(BackgroundJob.id == fresh)
    assert await fail_lost_jobs() >= 1
    rows = {r["id"]: r for r in await BackgroundJob.select().where(BackgroundJob.id.is_in([lost, fresh]))}
    assert rows[lost]["status"] == "FAILED" and "worker lost" in rows[lost]["error"]
    assert rows[fresh]["status"] == "RUNNING"
