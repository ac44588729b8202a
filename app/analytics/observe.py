"""Invariant 7 (analytics observes only), in code: every analytics write runs in a transaction that tells
PostgreSQL it is analytics, and the trigger analytics_observes_only on each content, package, progress and
commerce table then refuses any INSERT, UPDATE, DELETE or TRUNCATE in it. A bug in a rollup or a signal rule
cannot reach learners' content or progress, however it is written."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from app.db import independent_connection


@contextlib.asynccontextmanager
async def analytics_transaction(*, retention: bool = False) -> AsyncIterator[asyncpg.Connection]:
    async with independent_connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL coursewright.analytics = 'on'")
        if retention:
            # Retention is the one deleter of signals (analytics_signal_guard lets only it through).
            await conn.execute("SET LOCAL coursewright.analytics_retention = 'on'")
        yield conn
