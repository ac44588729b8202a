"""An enqueue that fails is an error, never a silent loss (STYLE 10): with the Redis broker gone, asking
for workspace stats records the job as FAILED with the reason and answers with an error instead of a
"recomputing" promise that no worker will keep (503, try again); generation wake-ups leave their rows QUEUED for the
sweeper instead (tests/authoring/test_durable_generation.py)."""

from __future__ import annotations

from app.audit.tables import AuditLog
from app.jobs.tables import BackgroundJob
from tests.conftest import start_server
from tests.jobs.test_redis_queue import redis_dir, redis_server  # noqa: F401  (fixtures)


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
