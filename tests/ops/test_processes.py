"""What `make run` starts, stopping it stops: `coursewright serve` on its own embedded PostgreSQL (no
DATABASE_URL, a fresh DATA_DIR), stopped the ways a user stops it, and `make stop` for what is left."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from app.embedded import embedded_postgres_pid, embedded_postgres_users, stop_embedded_postgres
from tests.conftest import ARTIFACTS, BIN, DATABASE_URL, ROOT, free_port

READY_SECONDS = 60  # a fresh data dir: initdb, then every migration


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # A short path: the server's Unix socket lives in it, and socket paths are limited to ~100 bytes.
    path = Path(tempfile.mkdtemp(prefix="cw-proc-"))
    yield path
    stop_embedded_postgres(path)  # whatever a failed test left running
    shutil.rmtree(path, ignore_errors=True)


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATA_DIR": str(data_dir), "SEED_DEMO": "false", **extra}
    env.pop("DATABASE_URL")  # so the process starts the embedded server itself, as `make run` does
    return env


def _start(data_dir: Path, name: str, *args: str, **env: str) -> subprocess.Popen:
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / f"process-{name}.log").open("w")
    return subprocess.Popen([str(BIN / "coursewright"), *args], env=_env(data_dir, **env), cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)


def _serve(data_dir: Path, name: str) -> subprocess.Popen:
    port = free_port()
    process = _start(data_dir, name, "serve", PORT=str(port))
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, (ARTIFACTS / f"process-{name}.log").read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"serve {name} never became ready")


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _postgres_gone(data_dir: Path, postmaster: int) -> bool:
    return not _running(postmaster) and not (data_dir / "postgres" / "postmaster.pid").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_it_stops_its_embedded_postgres_when_serve_is_stopped(data_dir, signum):
    serve = _serve(data_dir, f"serve-{signum.name}")
    postmaster = embedded_postgres_pid(data_dir)
    assert postmaster is not None and embedded_postgres_users(data_dir) == [serve.pid]
    serve.send_signal(signum)
    assert serve.wait(25) != -signal.SIGKILL
    assert _wait_until(lambda: _postgres_gone(data_dir, postmaster), 5)


def test_it_leaves_postgres_to_a_worker_still_using_it(data_dir):
    serve = _serve(data_dir, "serve-with-worker")
    postmaster = embedded_postgres_pid(data_dir)
    worker = _start(data_dir, "worker-after-serve", "worker")
    assert _wait_until(lambda: worker.pid in embedded_postgres_users(data_dir), 20)
    serve.terminate()
    serve.wait(25)
    time.sleep(1)  # time enough for a wrong stop to have happened
    assert _running(postmaster) and worker.poll() is None
    assert embedded_postgres_users(data_dir) == [worker.pid]
    worker.terminate()
    assert worker.wait(25) == 0
    assert _wait_until(lambda: _postgres_gone(data_dir, postmaster), 5)


def test_it_forgets_a_user_that_was_killed(data_dir):
    # SIGKILL runs no exit hook: the killed process stays in the list of users, and used to keep the
    # server running forever, since no later process was ever the last one.
    killed = _serve(data_dir, "serve-killed")
    postmaster = embedded_postgres_pid(data_dir)
    killed.kill()
    killed.wait(5)
    serve = _serve(data_dir, "serve-after-kill")
    assert embedded_postgres_pid(data_dir) == postmaster  # the next run reused the running server
    serve.terminate()
    serve.wait(25)
    assert _wait_until(lambda: _postgres_gone(data_dir, postmaster), 5)


async def test_it_stops_what_was_left_running_with_make_stop(data_dir):
    serve = _serve(data_dir, "serve-make-stop")
    postmaster = embedded_postgres_pid(data_dir)
    stopped = subprocess.run(["make", "--no-print-directory", "stop", f"DATA_DIR={data_dir}"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped pid {serve.pid}" in stopped.stdout
    assert serve.poll() is not None
    assert _wait_until(lambda: _postgres_gone(data_dir, postmaster), 5)
    # The test suite's own server is in use by this very run: `make stop` leaves it alone.
    conn = await asyncpg.connect(DATABASE_URL)
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()
