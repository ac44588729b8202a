"""Database wiring: which server, the Piccolo engine, migrations, and connections outside transactions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from functools import cache
from typing import TypeVar

import asyncpg
import structlog
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.apps.migrations.tables import Migration
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine

from app.settings import PROJECT_ROOT, get_settings

T = TypeVar("T")
APP_NAME = "coursewright"
MIGRATIONS_DIR = PROJECT_ROOT / "piccolo_migrations"
# Arbitrary constant: serialises migrations when web and worker processes start at the same time.
MIGRATION_LOCK_KEY = 0x436F7572  # "Cour"

_database_url: str | None = None


def database_url() -> str:
    """The PostgreSQL URL this process uses; starts the embedded server when DATABASE_URL is unset."""
    global _database_url
    if _database_url is None:
        settings = get_settings()
        if settings.database_url:
            _database_url = settings.database_url
        else:
            from app.embedded import start_embedded_postgres

            _database_url = start_embedded_postgres(settings.data_dir)
    return _database_url


@cache
def engine() -> PostgresEngine:
    db = engine_finder()
    assert isinstance(db, PostgresEngine), "Coursewright runs on PostgreSQL only"
    return db


# Per-request SQL query counting: the web middleware starts a counter, every pooled connection reports
# each query to it. It feeds a Prometheus histogram and the query budgets asserted in tests.
_query_log = structlog.get_logger("coursewright.sql")
_query_counter: ContextVar[list[int] | None] = ContextVar("query_counter", default=None)


def start_query_count() -> list[int]:
    counter = [0]
    _query_counter.set(counter)
    return counter


def _count_query(record: asyncpg.connection.LoggedQuery) -> None:
    counter = _query_counter.get()
    if counter is not None:
        counter[0] += 1
        if _query_log.isEnabledFor(logging.DEBUG):
            _query_log.debug("sql", query=" ".join(record.query.split())[:300], ms=round(record.elapsed * 1000, 2))


async def init_pool_connection(conn: asyncpg.Connection) -> None:
    conn.add_query_logger(_count_query)


async def reset_pool_connection(conn: asyncpg.Connection) -> None:
    """Replaces asyncpg's default reset on release ("SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL"), a round trip after every pooled query. asyncpg still rolls back an open transaction
    first; we hold no session state on pooled connections (no SET, LISTEN, cursors or session advisory
    locks: the migration lock uses its own connection, SAQ its own pool)."""


POOL_OPTIONS = {"init": init_pool_connection, "reset": reset_pool_connection}


@contextlib.asynccontextmanager
async def independent_connection() -> AsyncIterator[asyncpg.Connection]:
    """A connection that is not part of the caller's Piccolo transaction (used by audit writes)."""
    db = engine()
    if db.pool is not None:
        async with db.pool.acquire() as conn:
            yield conn
    else:
        conn = await db.get_new_connection()
        try:
            yield conn
        finally:
            await conn.close()


async def fetch_row(query: str, *args: object) -> asyncpg.Record | None:
    """One raw asyncpg round trip for a hot read path (the per-request session and learner lookups),
    skipping the query builder; outside any Piccolo transaction."""
    async with independent_connection() as conn:
        return await conn.fetchrow(query, *args)


# What a briefly unreachable PostgreSQL raises: refused or dropped connections, a server shutting down.
# InternalClientError: a pooled connection left mid-operation when the server went away.
DB_UNAVAILABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                  asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.CannotConnectNowError,
                  asyncpg.exceptions.InternalClientError)
_outage_log = structlog.get_logger("coursewright.db")


async def persist(write: Callable[[], Awaitable[T]], *, patience: float = 120.0) -> T:
    """Run a write a worker must not lose (a finished draft, its usage row, a release), retrying while
    PostgreSQL is briefly unreachable. Gives up after `patience` seconds (the caller's job then fails and
    its lease runs out). `write` must be safe to repeat: a compare-and-set, or a whole transaction."""
    deadline = time.monotonic() + patience
    pause = 0.2
    while True:
        try:
            return await write()
        except DB_UNAVAILABLE as exc:
            if time.monotonic() > deadline:
                raise
            _outage_log.warning("database_unavailable_retrying", error=repr(exc), retry_in_s=pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)


@cache
def expected_migrations() -> frozenset[str]:
    modules = BaseMigrationManager().get_migration_modules(str(MIGRATIONS_DIR))
    return frozenset(modules)


async def pending_migrations() -> list[str]:
    try:
        ran = await Migration.get_migrations_which_ran(app_name=APP_NAME)
    except asyncpg.UndefinedTableError:
        ran = []
    return sorted(expected_migrations() - set(ran))


async def migrate() -> list[str]:
    """Apply pending migrations under an advisory lock; returns the ids that were applied."""
    conn = await engine().get_new_connection()
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        pending = await pending_migrations()
        if pending:
            result = await run_forwards(APP_NAME)
            if not result.success:
                raise RuntimeError(f"Migrations failed: {result.message}")
        return pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        await conn.close()
