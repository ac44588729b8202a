"""An enqueue that fails is an error, never a silent loss (STYLE 10): with the Redis broker gone, asking
for workspace stats records the job as FAILED with the reason and answers with an error instead of a
"recomputing" promise that no worker will keep (503, try again); generation wake-ups leave their rows QUEUED for the
sweeper, which sends them again once the broker is back."""

from __future__ import annotations

import asyncio
import time

from app.audit.tables import AuditLog
from app.jobs.tables import BackgroundJob
from tests.authoring.helpers import BRIEF, run_id_from
from tests.conftest import PASSWORD, Client, create_database, fetch_rows, run_cli, start_server
from tests.jobs.test_redis_queue import redis_dir, redis_server, start_redis  # noqa: F401  (fixtures)


async def test_it_fails_the_job_it_could_not_enqueue_and_says_so(client_factory, personas, redis_server):  # noqa: F811
    app = start_server("enqueue-failure", QUEUE_URL=redis_server.url, WORKER_IN_PROCESS="false")
    try:
        client = client_factory(app.url)
        await client.login(personas.owner.email)
        redis_server.stop()
        response = await client.post("/admin/stats")
        assert response.status_code == 503 and response.headers["retry-after"] == "60"
        assert "The job queue cannot be reached right now, so nothing was started." in response.text
        assert "Temporarily unavailable" in response.text and "Recomputing workspace stats" not in response.text
        [job] = await BackgroundJob.select().where(BackgroundJob.tenant_id == personas.acme["id"])
        assert job["status"] == "FAILED" and job["error"].startswith("Could not enqueue:")
        assert job["finished_at"] is not None and job["started_at"] is None
        # Nothing was requested as far as the audit log goes: only enqueued jobs are audited.
        assert await AuditLog.count().where((AuditLog.action == "JOB_REQUESTED")
                                            & (AuditLog.entity_id == str(job["id"]))) == 0
    finally:
        app.stop()


async def test_a_generation_wake_up_lost_to_a_broker_outage_is_sent_again_when_it_returns(redis_server,  # noqa: F811
                                                                                          redis_dir):  # noqa: F811
    # Its own database: this server's sweeper runs with a 4 s lease and must not touch other tests' rows.
    url = await create_database("broker")
    env = {"DATABASE_URL": url, "QUEUE_URL": redis_server.url, "GENERATION_LEASE_SECONDS": "4"}
    assert run_cli(env, "migrate").returncode == 0
    assert run_cli(env, "create-admin", "--email", "ada@broker.test", "--name", "Ada", "--tenant", "broker",
                "--password", PASSWORD).returncode == 0
    app = start_server("broker-outage", **env)
    client = Client(app.url)
    try:
        await client.login("ada@broker.test")
        redis_server.stop()
        # The course and its run are stored; only the wake-up is lost, and that is an alert, not an error page.
        run_id = run_id_from(await client.post("/admin/courses", BRIEF))
        [run] = await fetch_rows(url, "SELECT status, attempt FROM generation_run WHERE id = $1", run_id)
        assert (run["status"], run["attempt"]) == ("QUEUED", 0)
        assert "alert:enqueue_failed" in app.log()
        again = start_redis("broker-again", redis_dir, port=redis_server.port)
        try:
            deadline = time.monotonic() + 60
            while (await fetch_rows(url, "SELECT status FROM generation_run WHERE id = $1", run_id))[0]["status"] \
                    in ("QUEUED", "RUNNING"):
                assert time.monotonic() < deadline, "the run was never woken again"
                await asyncio.sleep(0.2)
        finally:
            again.stop()
        [run] = await fetch_rows(url, "SELECT status, attempt, lost_attempts, syllabus_id FROM generation_run "
                                  "WHERE id = $1", run_id)
        assert (run["status"], run["attempt"], run["lost_attempts"]) == ("SUCCEEDED", 1, 0)
        assert run["syllabus_id"] is not None
    finally:
        await client.aclose()
        app.stop()
