"""The generation sweeper beyond content items (tests/authoring/test_durable_generation.py has those): a
syllabus run whose worker died is re-queued with the lost attempt counted and drafted by the next worker,
or failed with the "worker lost" message after GENERATION_MAX_LOST_ATTEMPTS; quizzes left PENDING and runs
left RUNNING by a crash between two steps are moved on.

Rows are written in the state a dead worker leaves them; the sweep runs here, and the live server's
worker then does what it does in production (its own sweeper may get to a row first: same result).
"""

from __future__ import annotations

import pytest

from app.authoring import generation
from app.authoring.tables import ContentItem, Course, GenerationRun, Syllabus
from app.settings import get_settings
from tests.authoring.helpers import (
    BRIEF,
    LONG_AGO,
    approved_syllabus,
    content_run,
    item_row,
    run_id_from,
    utcnow,
    wait_for_item,
    wait_for_run,
)


@pytest.fixture(scope="module", autouse=True)
async def queues():
    # The sweeper's wake-ups go to the same SAQ queue the live server's worker reads.
    from app.queue import close_queue, connect_queues

    await connect_queues()
    yield
    await close_queue()


async def _course_with_a_draft(client) -> tuple[dict, dict]:
    """A course whose first syllabus run succeeded, and that draft."""
    first = await wait_for_run(run_id_from(await client.post("/admin/courses", BRIEF)))
    assert first["status"] == "SUCCEEDED"
    return first, await Syllabus.select().where(Syllabus.id == first["syllabus_id"]).first()


async def _abandoned_syllabus_run(first: dict, personas, *, attempt: int, lost_attempts: int) -> dict:
    """A redraft a worker claimed and then died holding: RUNNING, its heartbeat an hour old."""
    stale = utcnow() - LONG_AGO
    return (await GenerationRun.insert(GenerationRun(
        tenant_id=personas.acme["id"], course_id=first["course_id"], kind="SYLLABUS", status="RUNNING",
        total=1, source_id=first["syllabus_id"], instruction="Shorter modules", created_by=personas.admin.user_id,
        started_at=stale, claimed_at=stale, heartbeat_at=stale, attempt=attempt, lost_attempts=lost_attempts,
    )).returning(*GenerationRun.all_columns()))[0]


async def _run(run: dict) -> dict:
    return await GenerationRun.select().where(GenerationRun.id == run["id"]).first()


async def test_it_requeues_a_syllabus_run_whose_worker_was_lost_and_the_next_worker_drafts_it(client, personas):
    await client.login(personas.admin.email)
    first, draft = await _course_with_a_draft(client)
    abandoned = await _abandoned_syllabus_run(first, personas, attempt=1, lost_attempts=0)

    await generation.sweep_generation()

    row = await _run(abandoned)
    assert row["lost_attempts"] == 1 and row["error"] is None
    assert row["status"] in ("QUEUED", "RUNNING", "SUCCEEDED")
    done = await wait_for_run(abandoned["id"])
    assert (done["status"], done["attempt"], done["lost_attempts"]) == ("SUCCEEDED", 2, 1)
    redraft = await Syllabus.select().where(Syllabus.id == done["syllabus_id"]).first()
    assert (redraft["revision"], redraft["supersedes_id"], redraft["instruction"]) == (2, draft["id"],
                                                                                      "Shorter modules")
    assert (await Syllabus.select().where(Syllabus.id == draft["id"]).first())["status"] == "SUPERSEDED"


async def test_it_fails_a_syllabus_run_lost_too_often_and_offers_to_try_again(client, personas):
    await client.login(personas.admin.email)
    first, draft = await _course_with_a_draft(client)
    max_lost = get_settings().generation_max_lost_attempts
    abandoned = await _abandoned_syllabus_run(first, personas, attempt=max_lost, lost_attempts=max_lost - 1)

    await generation.sweep_generation()

    row = await _run(abandoned)
    lease = get_settings().generation_lease_seconds
    assert row["status"] == "FAILED" and row["finished_at"] is not None and row["heartbeat_at"] is None
    assert row["error"] == (f"worker lost: no heartbeat for {lease} s, {max_lost} times; gave up. "
                            "Regenerate it to try again.")
    assert (row["failed"], row["done"], row["attempt"], row["syllabus_id"]) == (1, 0, max_lost, None)
    # Nothing was drafted for it, and the earlier draft is still the one under review.
    assert await Syllabus.count().where(Syllabus.course_id == first["course_id"]) == 1
    assert (await Syllabus.select().where(Syllabus.id == draft["id"]).first())["status"] == "DRAFT"
    page = await client.get(f"/admin/runs/{abandoned['id']}")
    assert page.status_code == 200 and "worker lost: no heartbeat" in page.text
    # A second sweep finds nothing left to do for it.
    await generation.sweep_generation()
    assert (await _run(abandoned))["status"] == "FAILED"


async def test_it_queues_a_quiz_left_pending_although_its_lesson_is_a_draft(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    # A crash between storing lesson 1.1 and queueing its quiz: the quiz waits for nothing, for ever.
    # (created_at is immutable, so the helper's quiz 1.1 is set aside and an hour-old one takes its slot.)
    run, items = await content_run(syllabus, personas, 1, {("QUIZ", 1): "SUPERSEDED"})
    old = items[("QUIZ", 1)]
    quiz = (await ContentItem.insert(ContentItem(
        tenant_id=old["tenant_id"], syllabus_id=old["syllabus_id"], run_id=run["id"], kind="QUIZ", module_index=1,
        lesson_index=1, title=old["title"], status="PENDING", created_at=utcnow() - LONG_AGO,
    )).returning(*ContentItem.all_columns()))[0]

    await generation.sweep_generation()

    row = await item_row(quiz)
    assert row["status"] in ("QUEUED", "GENERATING", "DRAFT") and row["queued_at"] is not None
    done = await wait_for_item(quiz, "DRAFT")
    assert (done["attempt"], done["lost_attempts"], done["waiting_for"]) == (1, 0, None)
    settled = await wait_for_run(run["id"])
    assert (settled["status"], settled["done"], settled["failed"]) == ("SUCCEEDED", run["total"], 0)


async def test_it_leaves_a_young_pending_quiz_to_its_lesson(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    # Just created: its lesson is still being written by a live worker, which queues the quiz itself.
    _run_row, items = await content_run(syllabus, personas, 1, {("LESSON", 1): "GENERATING", ("QUIZ", 1): "PENDING"},
                                         attempt=1, claimed_at=utcnow(), heartbeat_at=utcnow())
    await generation.sweep_generation()
    assert (await item_row(items[("QUIZ", 1)]))["status"] == "PENDING"
    assert (await item_row(items[("LESSON", 1)]))["status"] == "GENERATING"


async def test_it_finishes_a_run_left_running_with_nothing_left_to_move(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    # Every item settled, but the crash came before the run was recomputed.
    run, items = await content_run(syllabus, personas, 1, {("LESSON", 2): "FAILED"})
    assert (await _run(run))["status"] == "RUNNING"

    await generation.sweep_generation()

    settled = await _run(run)
    assert (settled["status"], settled["done"], settled["failed"]) == ("PARTIAL", run["total"] - 1, 1)
    assert settled["finished_at"] is not None
    course = await Course.select().where(Course.id == syllabus["course_id"]).first()
    page = await client.get(f"/admin/runs/{run['id']}")
    assert page.status_code == 200 and course["title"] in page.text and "Regenerate all failed (1)" in page.text
