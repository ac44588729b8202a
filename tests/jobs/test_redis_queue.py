"""QUEUE_URL=redis://... : the same request -> SAQ -> worker -> database path over a Redis broker.

Each test starts its own Debian `redis-server` (installed by `make test`) on a free port, with nothing
saved to disk, and stops it: the suite needs no Redis on the machine and never touches one that runs there.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from app.jobs.tables import BackgroundJob, TenantStats
from tests.conftest import ARTIFACTS, free_port, start_server


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def start_redis(name: str, workdir: Path, port: int | None = None) -> RedisServer:
    """A private redis-server on 127.0.0.1 that keeps nothing on disk; returns once it answers PING."""
    executable = shutil.which("redis-server")
    assert executable, "redis-server is missing: `make test` installs it (scripts/install-debian-package.sh)"
    port = port or free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=(ARTIFACTS / f"redis-{name}.log").open("w"), stderr=subprocess.STDOUT,
    )
    server = RedisServer(port, process)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert process.poll() is None, (ARTIFACTS / f"redis-{name}.log").read_text()
        try:
            if client.ping():
                return server
        except redis.ConnectionError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"redis-server {name} did not answer PING on port {port}")


@pytest.fixture
def redis_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cw-redis-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def redis_server(redis_dir) -> Iterator[RedisServer]:
    server = start_redis("queue", redis_dir)
    yield server
    server.stop()


async def test_it_runs_jobs_through_a_redis_broker(client_factory, personas, live_server, redis_server):
    app = start_server("redis-queue", QUEUE_URL=redis_server.url)
    try:
        client = client_factory(app.url)
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
        assert "RedisQueue" in app.log()
        # The jobs went through our Redis: SAQ's keys for our queue are there.
        assert redis.Redis(port=redis_server.port).keys("saq:coursewright*")
    finally:
        app.stop()


def test_it_is_not_ready_while_redis_is_down(live_server, redis_server, redis_dir):
    app = start_server("redis-down", QUEUE_URL=redis_server.url, WORKER_IN_PROCESS="false")
    try:
        redis_server.stop()
        down = httpx.get(f"{app.url}/health/ready", timeout=10)
        assert down.status_code == 503
        assert down.json()["queue"].startswith("Redis broker unreachable")
        assert down.json()["database"] == "ok"
        again = start_redis("queue-again", redis_dir, port=redis_server.port)
        try:
            assert httpx.get(f"{app.url}/health/ready", timeout=10).status_code == 200
        finally:
            again.stop()
    finally:
        app.stop()
