"""Leases while a worker drains (app/jobs/lease.py): a wake-up that arrives after the stop began claims
nothing; if the stop does not cancel it within PARK_S (a cancellation lost to the Python 3.11 dequeue
race), it gives its row a fresh wake-up for the next worker instead of swallowing it."""

from __future__ import annotations

import time

import pytest

from app.authoring import generation
from app.jobs import lease
from tests.authoring.helpers import approved_syllabus, content_run, item_row, wait_for_item


@pytest.fixture(scope="module", autouse=True)
async def queues():
    from app.queue import close_queue, connect_queues

    await connect_queues()
    yield
    await close_queue()


async def test_a_wake_up_parked_while_draining_wakes_its_row_again_after_the_park_time(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    _run, items = await content_run(syllabus, personas, 1, {("LESSON", 1): "QUEUED"})
    lesson = await item_row(items[("LESSON", 1)])
    drain = generation.drain
    assert await drain.stop(grace=0) == 0  # this process is stopping: it claims nothing any more
    try:
        started = time.monotonic()
        result = await generation.run_item_generation(lesson["id"])
        waited = time.monotonic() - started
    finally:
        drain.open()
    assert result == {"item_id": str(lesson["id"]), "skipped": True}
    assert lease.PARK_S - 0.1 <= waited < lease.PARK_S + 2
    row = await item_row(lesson)
    # Queued again under a new wake-up key (the live server's worker may have taken it already) ...
    assert row["status"] in ("QUEUED", "GENERATING", "DRAFT") and row["queued_at"] > lesson["queued_at"]
    # ... and generated once, by that worker: the parked wake-up claimed nothing.
    done = await wait_for_item(lesson, "DRAFT")
    assert (done["attempt"], done["lost_attempts"]) == (1, 0)


async def test_a_row_that_is_no_longer_queued_is_not_touched(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    _run, items = await content_run(syllabus, personas, 1, {})
    draft = items[("LESSON", 1)]
    assert await generation.ITEM_LEASE.touch(draft["id"]) is None
    assert await generation.ITEM_LEASE.claim(draft["id"]) is None
    assert await generation.ITEM_LEASE.requeue(draft["id"], 0, lost=True) is None
    assert await item_row(draft) == draft
