"""GENERATION_CONCURRENCY (A3): a worker process never runs more generation calls at once than the limit,
however many items are queued, and it keeps the limit full while work is waiting.

A server of its own (its own database and queue) with a limit of 2 generates a course whose lessons the
mock answers slowly ([mock:lesson:slow], 3 s each). The database is sampled through the first round and
into the second, and the claim and finish times of the lessons are checked for overlaps.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from tests.authoring.helpers import BRIEF
from tests.conftest import PASSWORD, Client, create_database, run_cli, start_server

LIMIT = 2
COUNTS_SQL = """
SELECT count(*) FILTER (WHERE status = 'GENERATING') AS generating,
       count(*) FILTER (WHERE status = 'QUEUED') AS queued,
       count(*) FILTER (WHERE kind = 'LESSON' AND status = 'DRAFT') AS lessons_done
FROM content_item
"""





async def _wait_for_row(conn: asyncpg.Connection, query: str, timeout: float = 30) -> asyncpg.Record:
    deadline = time.monotonic() + timeout
    while (row := await conn.fetchrow(query)) is None:
        assert time.monotonic() < deadline, f"timed out waiting for {query!r}"
        await asyncio.sleep(0.1)
    return row


def _max_overlap(intervals: list[tuple]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:  # at equal times an end (-1) sorts before a start (+1)
        running += step
        peak = max(peak, running)
    return peak


async def test_it_never_generates_more_items_at_once_than_the_limit_and_keeps_the_limit_busy():
    url = await create_database("concurrency")
    env = {"DATABASE_URL": url, "GENERATION_CONCURRENCY": str(LIMIT), "WORKER_SHUTDOWN_GRACE_SECONDS": "0"}
    assert run_cli(env, "migrate").returncode == 0
    created = run_cli(env, "create-admin", "--email", "ada@limit.test", "--name", "Ada", "--tenant", "limit",
                   "--password", PASSWORD)
    assert created.returncode == 0, created.stderr
    server = start_server("concurrency", **env)
    client = Client(server.url)
    conn = await asyncpg.connect(url)
    try:
        await client.login("ada@limit.test")
        await client.post("/admin/courses", {**BRIEF, "title": "Slow Lessons [mock:lesson:slow]"})
        syllabus = await _wait_for_row(conn, "SELECT id FROM syllabus")
        assert (await client.post(f"/admin/syllabi/{syllabus['id']}/approve", {"note": ""})).status_code == 303
        assert (await client.post(f"/admin/syllabi/{syllabus['id']}/content")).status_code == 303
        lessons = await conn.fetchval("SELECT count(*) FROM content_item WHERE kind = 'LESSON'")
        assert lessons > 2 * LIMIT  # enough for the limit to bind through two rounds

        # Sampled every 50 ms until the first round of slow lessons is done and the second one runs.
        samples = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            samples.append(sample := await conn.fetchrow(COUNTS_SQL))
            if sample["lessons_done"] >= LIMIT and sample["generating"] == LIMIT:
                break
            await asyncio.sleep(0.05)
        # Every lesson a worker has claimed so far, from its claim to its draft (or to now, if still running).
        intervals = [(row["claimed_at"], row["until"]) for row in await conn.fetch(
            "SELECT claimed_at, coalesce(generated_at, now()) AS until FROM content_item "
            "WHERE kind = 'LESSON' AND claimed_at IS NOT NULL")]
    finally:
        await conn.close()
        await client.aclose()
        server.stop()

    assert max(sample["generating"] for sample in samples) == LIMIT
    # The limit was what held the rest back: work waited while the limit was full ...
    assert any(sample["generating"] == LIMIT and sample["queued"] > 0 for sample in samples)
    # ... and the worker started the waiting lessons as slots freed up.
    assert samples[-1]["lessons_done"] >= LIMIT and samples[-1]["generating"] == LIMIT
    assert len(intervals) >= 2 * LIMIT and _max_overlap(intervals) == LIMIT
