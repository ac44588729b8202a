"""`coursewright worker` and `coursewright seed-demo` as the real processes an operator runs, each against
a database of its own (tables and queue), so the shared live server's worker never takes their jobs.

The worker: a web process without a worker (WORKER_IN_PROCESS=false) only queues; a standalone worker
picks the work up, counts it on its metrics port, and on SIGTERM hands unfinished generation back to the
queue and exits 0; killed with SIGKILL instead, its rows are found by the next worker's sweeper once the
lease expires, re-queued (the lost attempt counted) and finished.
seed-demo: creates the demo workspaces, people and published course, and changes nothing when run again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from app.demo import DEMO_BRIEF, DEMO_PASSWORD, DEMO_TENANTS, DEMO_USERS, PAID_BRIEF
from tests.authoring.helpers import BRIEF
from tests.conftest import (
    ARTIFACTS,
    BIN,
    PASSWORD,
    ROOT,
    Client,
    create_database,
    fetch_rows,
    free_port,
    poll_rows,
    run_cli,
    start_server,
)

ADMIN = "ada@worker.test"

# The analytics demo's 80 simulated learners (app/analytics/demo.py) are counted by tests/analytics.
NOT_READERS = "u.email NOT LIKE 'reader%@learners.demo.coursewright.dev'"











@contextmanager
def _worker(name: str, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, Path]]:
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"worker-{name}.log"
    process = subprocess.Popen([str(BIN / "coursewright"), "worker"], env={**os.environ, **env}, cwd=ROOT,
                               stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    try:
        yield process, log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
async def web_only():
    """A fresh database with an admin, and a web process that runs no worker of its own."""
    url = await create_database("worker")
    env = {"DATABASE_URL": url, "WORKER_IN_PROCESS": "false", "WORKER_METRICS_PORT": "0"}
    assert run_cli(env, "migrate").returncode == 0
    created = run_cli(env, "create-admin", "--email", ADMIN, "--name", "Ada", "--tenant", "worker",
                   "--password", PASSWORD)
    assert created.returncode == 0, created.stderr
    server = start_server("web-only", **env)
    yield url, server
    server.stop()


async def _course(server, title: str) -> tuple[Client, str]:
    client = Client(server.url)
    await client.login(ADMIN)
    response = await client.post("/admin/courses", {**BRIEF, "title": title})
    assert response.status_code == 303
    return client, response.headers["location"].rsplit("/", 1)[1]


async def _content(url: str, client: Client, run_id: str) -> str:
    [run] = await poll_rows(url, "SELECT status, syllabus_id FROM generation_run WHERE id = $1",
                        lambda rows: rows[0]["status"] == "SUCCEEDED", run_id)
    syllabus_id = run["syllabus_id"]
    assert (await client.post(f"/admin/syllabi/{syllabus_id}/approve", {"note": ""})).status_code == 303
    assert (await client.post(f"/admin/syllabi/{syllabus_id}/content")).status_code == 303
    return syllabus_id


ITEMS_SQL = "SELECT id, kind, status, attempt, lost_attempts, error FROM content_item WHERE syllabus_id = $1"


async def test_a_worker_process_picks_up_queued_work_and_stops_cleanly_on_sigterm(web_only):
    url, server = web_only
    client, run_id = await _course(server, "Slow Lessons [mock:lesson:slow]")
    # Nobody works on it yet: the web process only queued it.
    await asyncio.sleep(1)
    [run] = await fetch_rows(url, "SELECT status, attempt FROM generation_run WHERE id = $1", run_id)
    assert (run["status"], run["attempt"]) == ("QUEUED", 0)

    metrics_port = free_port()
    env = {"DATABASE_URL": url, "WORKER_METRICS_PORT": str(metrics_port), "GENERATION_CONCURRENCY": "2",
           "WORKER_SHUTDOWN_GRACE_SECONDS": "0"}
    with _worker("sigterm", env) as (worker, log_path):
        syllabus_id = await _content(url, client, run_id)
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert 'coursewright_jobs_total{outcome="succeeded",task="generate_syllabus"} 1.0' in metrics
        # Stop while slow lessons are being written.
        await poll_rows(url, ITEMS_SQL, lambda rows: any(r["status"] == "GENERATING" for r in rows), syllabus_id)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        assert time.monotonic() - started < 15
    await client.aclose()
    log = log_path.read_text()
    assert "workers_stopping" in log and "releasing_unfinished_work" in log and "Traceback" not in log
    items = await fetch_rows(url, ITEMS_SQL, syllabus_id)
    # Handed back, not lost: nothing is left GENERATING, and no lost attempt was counted.
    assert not [r for r in items if r["status"] == "GENERATING"]
    assert any(r["status"] == "QUEUED" and r["attempt"] == 1 for r in items)
    assert all(r["lost_attempts"] == 0 and r["error"] is None for r in items)


async def test_the_next_worker_recovers_the_work_of_a_killed_one_after_the_lease(web_only):
    url, server = web_only
    client, run_id = await _course(server, "Killed Lessons [mock:lesson:slow]")
    env = {"DATABASE_URL": url, "WORKER_METRICS_PORT": "0", "GENERATION_CONCURRENCY": "8",
           "GENERATION_LEASE_SECONDS": "6"}
    with _worker("killed", env) as (worker, _log):
        syllabus_id = await _content(url, client, run_id)
        await client.aclose()
        await poll_rows(url, ITEMS_SQL, lambda rows: any(r["status"] == "GENERATING" for r in rows), syllabus_id)
        worker.kill()  # no graceful stop: the rows stay GENERATING with their last heartbeat
        worker.wait(10)
    orphans = {r["id"]: r["attempt"] for r in await fetch_rows(url, ITEMS_SQL, syllabus_id)
               if r["status"] == "GENERATING"}
    assert orphans

    with _worker("after-kill", env) as (worker, log_path):
        await poll_rows(url, "SELECT status FROM generation_run WHERE kind = 'CONTENT' AND syllabus_id = $1",
                    lambda rows: rows[0]["status"] == "SUCCEEDED", syllabus_id, timeout=120)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
    items = {r["id"]: r for r in await fetch_rows(url, ITEMS_SQL, syllabus_id)}
    for item_id, attempt in orphans.items():
        row = items[item_id]
        assert (row["status"], row["lost_attempts"], row["attempt"]) == ("DRAFT", 1, attempt + 1)
    assert "generation_requeued" in log_path.read_text()


async def test_seed_demo_creates_the_demo_workspaces_people_and_course_once():
    url = await create_database("seed")
    env = {"DATABASE_URL": url}
    assert run_cli(env, "migrate").returncode == 0
    first = run_cli(env, "seed-demo")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Demo data created." in first.stdout
    for email, _name, role, _other in DEMO_USERS:
        assert f"{role:<8} {email}  /  {DEMO_PASSWORD}" in first.stdout

    tenants = {r["slug"]: r["name"] for r in await fetch_rows(url, "SELECT slug, name FROM tenant")}
    assert tenants == {slug: name for name, slug in DEMO_TENANTS}
    members = {(r["email"], r["slug"]): r["role"] for r in await fetch_rows(
        url, "SELECT u.email, t.slug, m.role FROM membership m JOIN app_user u ON u.id = m.user_id "
             f"JOIN tenant t ON t.id = m.tenant_id WHERE {NOT_READERS}")}
    expected = {}
    for email, _name, *roles in DEMO_USERS:
        for (_tenant_name, slug), role in zip(DEMO_TENANTS, roles, strict=True):
            if role:
                expected[(email, slug)] = role
    assert members == expected
    hasher = PasswordHasher()
    for user in await fetch_rows(url, f"SELECT password_hash FROM app_user u WHERE {NOT_READERS}"):
        assert hasher.verify(user["password_hash"], DEMO_PASSWORD)
    courses = await fetch_rows(url, "SELECT c.title, t.slug FROM course c JOIN tenant t ON t.id = c.tenant_id")
    assert {(c["title"], c["slug"]) for c in courses} == {(DEMO_BRIEF["title"], "demo"), (PAID_BRIEF["title"], "demo")}
    packages = await fetch_rows(url, "SELECT version, archived_at FROM course_package")
    assert [(p["version"], p["archived_at"]) for p in packages] == [(1, None), (1, None)]
    # The learner is enrolled in the free course only: the paid one waits in the store, in sandbox mode.
    [enrollment] = await fetch_rows(url, "SELECT u.email, c.title FROM enrollment e JOIN app_user u ON u.id = "
                                         "e.user_id JOIN syllabus s ON s.id = e.syllabus_id JOIN course c ON "
                                         f"c.id = s.course_id WHERE {NOT_READERS}")
    assert (enrollment["email"], enrollment["title"]) == (DEMO_USERS[2][0], DEMO_BRIEF["title"])
    [product] = await fetch_rows(url, "SELECT c.title, p.price_minor, p.currency, p.active FROM product p "
                                      "JOIN syllabus s ON s.id = p.syllabus_id JOIN course c ON c.id = s.course_id")
    assert tuple(product) == (PAID_BRIEF["title"], 4900, "EUR", True)
    assert {r["status"] for r in await fetch_rows(url, "SELECT status FROM content_item")} == {"APPROVED"}

    counts_sql = ("SELECT (SELECT count(*) FROM tenant) AS tenants, (SELECT count(*) FROM app_user) AS users, "
                  "(SELECT count(*) FROM membership) AS memberships, (SELECT count(*) FROM course) AS courses, "
                  "(SELECT count(*) FROM generation_run) AS runs, (SELECT count(*) FROM course_package) AS packages, "
                  "(SELECT count(*) FROM enrollment) AS enrollments, (SELECT count(*) FROM ai_usage) AS calls, "
                  "(SELECT count(*) FROM audit_log) AS audits, (SELECT count(*) FROM product) AS products")
    [before] = await fetch_rows(url, counts_sql)
    again = run_cli(env, "seed-demo")
    assert again.returncode == 0 and "Demo data already present." in again.stdout
    [after] = await fetch_rows(url, counts_sql)
    assert dict(after) == dict(before)
