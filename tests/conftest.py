"""Test harness: a real PostgreSQL, the real app served over HTTP in a subprocess, shared personas.

Database: DATABASE_URL when set (a fresh `coursewright_test` database is created on that server),
otherwise the embedded PostgreSQL under .data/test. The server under test is `coursewright serve`
in a subprocess with its in-process SAQ worker, exactly as a user runs it.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / ".data" / "test"
ARTIFACTS = ROOT / "test-artifacts"
BIN = Path(sys.executable).parent
# One database per test run, so two runs on one machine (a developer and CI, say) never collide.
TEST_DB = f"coursewright_test_{os.getpid()}"
PASSWORD = "correct horse battery"


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _prepare_database() -> str:
    TEST_DATA.mkdir(parents=True, exist_ok=True)
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        # The app's own embedded server: it stops when the last test run using it ends, even after a run
        # that was killed.
        from app.embedded import start_embedded_postgres

        server_url = start_embedded_postgres(TEST_DATA, "postgres")

    async def recreate() -> None:
        conn = await asyncpg.connect(_with_database(server_url, "postgres"))
        try:
            # Drop what earlier runs left behind (their process is gone), then start clean.
            for row in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'coursewright_test_%'"):
                pid = int(row["datname"].rsplit("_", 1)[1])
                if pid == os.getpid() or not _pid_alive(pid):
                    await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{TEST_DB}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    return _with_database(server_url, TEST_DB)


# Configure this process before any app module reads its settings.
DATABASE_URL = _prepare_database()


async def create_database(label: str) -> str:
    """A second, empty database on the test server for tests that run processes of their own (their own
    queue, their own demo data) that the shared live server must not see. Dropped when the run ends."""
    name = f"coursewright_test_{label}_{os.getpid()}"
    conn = await asyncpg.connect(_with_database(DATABASE_URL, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(DATABASE_URL, name)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop this run's databases (`TEST_DB` and every `create_database`) as it ends, instead of leaving
    them for the next run to find. Session fixtures, the live servers among them, are torn down by now;
    FORCE disconnects any process a test started and left running."""

    async def drop() -> None:
        conn = await asyncpg.connect(_with_database(DATABASE_URL, "postgres"))
        try:
            for row in await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE 'coursewright\\_test\\_%' AND datname LIKE $1",
                f"%\\_{os.getpid()}",
            ):
                await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


WEBHOOK_SECRET = "whsec_coursewright_tests_only"
os.environ.update(
    DATABASE_URL=DATABASE_URL,
    DATA_DIR=str(TEST_DATA),
    SEED_DEMO="false",
    LOG_LEVEL="INFO",
    COURSEWRIGHT_ENV="development",
    EXPOSE_QUERY_COUNT="true",
    # Every live server verifies Stripe webhooks with this secret (tests/billing/stripe_fake.py signs with it);
    # purchases complete in the sandbox unless a test starts its own server with BILLING_SANDBOX_MODE=false.
    STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    BILLING_SANDBOX_MODE="true",
)
for name in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "PUBLIC_BASE_URL", "BILLING_SANDBOX_ALLOWED_IN_PRODUCTION"):
    os.environ.pop(name, None)
os.environ.pop("QUEUE_URL", None)
os.environ.pop("MAINTENANCE_MODE", None)

from app.accounts import services as accounts  # noqa: E402
from app.accounts.tables import LoginFailure  # noqa: E402
from app.audit.services import SYSTEM  # noqa: E402
from app.db import migrate  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
async def migrated() -> None:
    await migrate()


# ---------------------------------------------------------------------------------------------
# The server under test


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`coursewright <args>` as a real process, with `env` on top of this run's environment."""
    return subprocess.run([str(BIN / "coursewright"), *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


async def fetch_rows(url: str, query: str, *args) -> list[asyncpg.Record]:
    """Rows of another database (one a subprocess under test uses) over a short-lived connection."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def poll_rows(url: str, query: str, predicate, *args, timeout: float = 90) -> list[asyncpg.Record]:
    """Re-run `query` until `predicate(rows)` holds; fail with the last rows after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    rows: list[asyncpg.Record] = []
    while time.monotonic() < deadline:
        rows = await fetch_rows(url, query, *args)
        if predicate(rows):
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting on {query!r}: {rows}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_server(name: str, **env: str) -> LiveServer:
    """Run `coursewright serve` on a free port and wait until /health/ready answers 200."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log_path = ARTIFACTS / f"server-{name}.log"
    proc_env = {**os.environ, "PORT": str(port), **env}
    process = subprocess.Popen(
        [str(BIN / "coursewright"), "serve", "--no-prepare"],
        env=proc_env,
        cwd=ROOT,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server {name} exited with {process.returncode}:\n{server.log()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/health/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server {name} did not become ready:\n{server.log()[-3000:]}")


@pytest.fixture(scope="session")
def live_server(migrated: None) -> Iterator[LiveServer]:
    server = start_server("main")
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------------
# HTTP client that behaves like a browser: cookies, CSRF token on unsafe requests


class Client:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=20)

    @property
    def csrf(self) -> str:
        return self.http.cookies.get("cw_csrf", "")

    async def get(self, path: str, **kwargs) -> httpx.Response:
        return await self.http.get(path, **kwargs)

    async def post(self, path: str, data: dict | None = None, *, csrf: bool = True, htmx: bool = False,
                   headers: dict | None = None, **kwargs) -> httpx.Response:
        if csrf and not self.csrf:
            await self.http.get("/login")  # any GET sets the CSRF cookie
        headers = dict(headers or {})
        if htmx:
            headers["HX-Request"] = "true"
            if csrf:
                headers["x-csrftoken"] = self.csrf
        elif csrf:
            data = {**(data or {}), "_csrf_token": self.csrf}
        return await self.http.post(path, data=data, headers=headers, **kwargs)

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = await self.post("/login", {"email": email, "password": password})
        assert response.status_code == 303, f"login failed for {email}: {response.status_code}\n{response.text[:500]}"
        return response

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get("cw_session")

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def client_factory(live_server: LiveServer) -> AsyncIterator:
    clients: list[Client] = []

    def make(base_url: str | None = None) -> Client:
        client = Client(base_url or live_server.url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(client_factory) -> Client:
    return client_factory()


# ---------------------------------------------------------------------------------------------
# Personas: Olivia owns Acme, Adam administers it, Lena learns there; Oscar is an admin of Globex.


@dataclass
class Persona:
    email: str
    user_id: uuid.UUID
    membership_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str


@dataclass
class Personas:
    acme: dict
    globex: dict
    owner: Persona
    admin: Persona
    learner: Persona
    outsider: Persona


async def make_member(tenant: dict, role: str, label: str) -> Persona:
    email = f"{label}-{secrets.token_hex(4)}@example.test"
    user = await accounts.create_user(email, label.title(), PASSWORD, actor=SYSTEM, tenant_id=tenant["id"])
    membership = await accounts.add_membership(tenant["id"], user["id"], role, actor=SYSTEM)
    return Persona(email, user["id"], membership["id"], tenant["id"], role)


async def make_tenant(name: str) -> dict:
    slug = f"{name.lower()}-{secrets.token_hex(4)}"
    return await accounts.create_tenant(f"{name} {slug[-8:]}", slug, actor=SYSTEM)


@pytest.fixture
async def personas(migrated: None) -> Personas:
    acme, globex = await make_tenant("Acme"), await make_tenant("Globex")
    return Personas(
        acme=acme,
        globex=globex,
        owner=await make_member(acme, "owner", "olivia"),
        admin=await make_member(acme, "admin", "adam"),
        learner=await make_member(acme, "learner", "lena"),
        outsider=await make_member(globex, "admin", "oscar"),
    )


@pytest.fixture(autouse=True)
async def clear_login_failures(migrated: None) -> None:
    # Every test signs in from 127.0.0.1; failures from one test must not throttle the next.
    await LoginFailure.delete(force=True)


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF input in page"
    return match.group(1)


async def get_with_cookie(base_url: str, path: str, token: str) -> httpx.Response:
    """GET with exactly this session cookie and nothing else (no shared jar)."""
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False) as http:
        return await http.get(path, headers={"cookie": f"cw_session={token}"})
