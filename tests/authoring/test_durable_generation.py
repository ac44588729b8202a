"""Generation survives lost workers, stops and crashes (issue 7): leases, the sweeper, dependents that
follow their lesson, runs that settle, and the buttons that move failed things on.

Rows in a chosen state are written straight to the database (a worker that died mid-call leaves exactly
such rows); the live server's worker and the sweeper called here then do what they do in production.
The live server never touches those rows on its own within a test: it only acts on wake-ups, and its
sweeper only on heartbeats older than the 120 s lease.
"""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from app.audit.services import Actor
from app.authoring import generation
from app.authoring.tables import ContentItem, GenerationRun
from app.jobs.lease import Drain, LeaseLost
from app.llm.prompts import load_prompt
from app.queue import get_queue
from app.settings import get_settings
from tests.authoring.helpers import (
    LONG_AGO,
    approved_syllabus,
    content_run,
    item_row,
    utcnow,
    wait_for_item,
    wait_for_run,
)


@pytest.fixture(scope="module", autouse=True)
async def queues():
    # The sweeper and the wake-ups called from this process talk to the same SAQ queue as the live server.
    from app.queue import close_queue, connect_queues

    await connect_queues()
    yield
    await close_queue()


async def test_it_never_sweeps_an_item_whose_heartbeat_is_fresh_however_old_the_item(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    # A backlog: the lesson was created an hour ago, a worker picked it up a second ago and is heartbeating.
    _run, items = await content_run(syllabus, personas, 1, {("LESSON", 1): "GENERATING"}, attempt=1,
                                    claimed_at=utcnow(), heartbeat_at=utcnow(), created_at=utcnow() - LONG_AGO)
    await generation.sweep_generation()
    row = await item_row(items[("LESSON", 1)])
    assert (row["status"], row["attempt"], row["lost_attempts"]) == ("GENERATING", 1, 0)


async def test_it_requeues_an_item_whose_heartbeat_is_older_than_the_lease_and_keeps_its_attempts(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    stale = utcnow() - LONG_AGO
    _run, items = await content_run(syllabus, personas, 1, {("LESSON", 1): "GENERATING"},
                                     attempt=1, claimed_at=stale, heartbeat_at=stale)
    lesson = items[("LESSON", 1)]
    await generation.sweep_generation()
    row = await item_row(lesson)
    # Re-queued (or already picked up again by the live worker), never failed, the lost attempt counted.
    assert row["status"] in ("QUEUED", "GENERATING", "DRAFT") and row["lost_attempts"] == 1
    assert row["error"] is None
    row = await wait_for_item(lesson, "DRAFT")
    assert row["attempt"] == 2 and row["lost_attempts"] == 1
    # Its quiz followed it: queued when the lesson became a draft, then generated.
    await wait_for_item(items[("QUIZ", 1)], "DRAFT")


async def test_it_fails_a_lesson_whose_worker_was_lost_too_often_and_blocks_what_depends_on_it(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    stale = utcnow() - LONG_AGO
    max_lost = get_settings().generation_max_lost_attempts
    run, items = await content_run(
        syllabus, personas, 1, {("LESSON", 1): "GENERATING", ("QUIZ", 1): "PENDING", ("PROJECT", None): "PENDING"},
        attempt=max_lost, lost_attempts=max_lost - 1, claimed_at=stale, heartbeat_at=stale)
    lesson, quiz, project = items[("LESSON", 1)], items[("QUIZ", 1)], items[("PROJECT", None)]
    await generation.sweep_generation()
    lesson = await item_row(lesson)
    assert lesson["status"] == "FAILED" and lesson["error"].startswith("worker lost: no heartbeat for 120 s")
    for dependent in (quiz, project):
        row = await item_row(dependent)
        assert (row["status"], row["waiting_for"]) == ("BLOCKED", "lesson 1.1")
    # Nothing in the run can move without a person, so the run is finished, not RUNNING forever.
    settled = await GenerationRun.select().where(GenerationRun.id == run["id"]).first()
    assert settled["status"] == "PARTIAL" and (settled["failed"], settled["blocked"]) == (1, 2)
    assert settled["done"] == run["total"] - 3 and settled["finished_at"] is not None

    page = await client.get(f"/admin/items/{quiz['id']}")
    assert "Waiting for lesson 1.1." in page.text and f"/admin/items/{lesson['id']}" in page.text
    assert (await client.post(f"/admin/items/{quiz['id']}/regenerate", {"instruction": ""})).status_code == 409
    run_page = await client.get(f"/admin/runs/{run['id']}")
    assert "Regenerate all failed (1)" in run_page.text and "2 waiting for a failed lesson" in run_page.text

    response = await client.post(f"/admin/runs/{run['id']}/regenerate-failed")
    assert response.status_code == 303
    retry_id = uuid.UUID(response.headers["location"].rsplit("/", 1)[1])
    retry = await wait_for_run(retry_id)
    assert (retry["kind"], retry["source_id"], retry["status"], retry["done"]) == ("RETRY", run["id"], "SUCCEEDED", 1)
    # The new lesson succeeded: its quiz and the module's project resumed, and the first run finished again.
    assert (await wait_for_item(quiz, "DRAFT"))["waiting_for"] is None
    await wait_for_item(project, "DRAFT")
    rerun = await wait_for_run(run["id"])
    assert rerun["status"] == "SUCCEEDED" and (rerun["failed"], rerun["blocked"]) == (0, 0)
    assert (await item_row(lesson))["status"] == "SUPERSEDED"
    again = await client.post(f"/admin/runs/{run['id']}/regenerate-failed")
    assert again.status_code == 409 and "Nothing in this run has failed" in again.text


async def test_a_worker_whose_item_was_taken_over_cannot_store_its_answer(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    stale = utcnow() - LONG_AGO
    _run, items = await content_run(syllabus, personas, 1, {("LESSON", 1): "GENERATING"},
                                     attempt=1, claimed_at=stale, heartbeat_at=stale)
    first_claim = await item_row(items[("LESSON", 1)])
    assert await generation.ITEM_LEASE.requeue(first_claim["id"], 1, lost=True) is not None
    second_claim = await generation.ITEM_LEASE.claim(first_claim["id"])
    assert second_claim["attempt"] == 2
    # The first worker comes back from a long pause with its answer: fenced off by its attempt.
    assert not await generation.ITEM_LEASE.heartbeat(first_claim["id"], 1)
    assert not await generation.settle_item(first_claim, generation.ItemStatus.FAILED, error="late")
    row = await item_row(first_claim)
    assert (row["status"], row["attempt"], row["error"]) == ("GENERATING", 2, None)


async def test_two_lessons_settling_at_once_queue_their_project_exactly_once(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    fresh = utcnow()
    _run, items = await content_run(
        syllabus, personas, 1, {("LESSON", 1): "GENERATING", ("LESSON", 2): "GENERATING", ("QUIZ", 1): "PENDING",
                                ("QUIZ", 2): "PENDING", ("PROJECT", None): "PENDING"},
        attempt=1, claimed_at=fresh, heartbeat_at=fresh)
    value = msgspec.convert(load_prompt("lesson").example_output, type=generation.OUTPUT_TYPES["LESSON"])
    metadata = {"model": "test"}
    lessons = [await item_row(items[("LESSON", n)]) for n in (1, 2)]
    stored = await asyncio.gather(*(generation.settle_item(lesson, generation.ItemStatus.DRAFT, value=value,
                                                           metadata=metadata) for lesson in lessons))
    assert stored == [True, True]
    project = await item_row(items[("PROJECT", None)])
    # Each settler saw the other: the project left PENDING (whatever each transaction saw when it started).
    assert project["status"] in ("QUEUED", "GENERATING", "DRAFT")
    queue = get_queue(generation._task_queue("generate_item"))
    jobs = await queue.jobs([generation.wake_key("generate_item", project["id"], project["queued_at"])])
    assert project["status"] != "QUEUED" or jobs[0] is not None
    await wait_for_item(items[("PROJECT", None)], "DRAFT")
    await wait_for_item(items[("QUIZ", 2)], "DRAFT")


async def test_it_wakes_a_queued_item_whose_wake_up_was_lost(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    # The enqueue after the commit never happened (the queue was down, or the process died in between).
    _run, items = await content_run(syllabus, personas, 1, {("LESSON", 1): "QUEUED"})
    lesson = items[("LESSON", 1)]
    await ContentItem.raw("UPDATE content_item SET queued_at = now() - interval '1 hour' WHERE id = {}", lesson["id"])
    await generation.sweep_generation()  # (or the live server's own sweeper, whichever comes first)
    row = await wait_for_item(lesson, "DRAFT")
    assert row["attempt"] == 1 and row["lost_attempts"] == 0


async def test_hold_heartbeats_while_the_work_runs_and_stops_when_the_lease_is_taken():
    beats: list[float] = []

    async def heartbeat() -> bool:
        beats.append(asyncio.get_running_loop().time())
        return len(beats) < 3

    async def slow_work() -> str:
        await asyncio.sleep(5)
        return "done"

    drain = Drain()
    with pytest.raises(LeaseLost):
        await drain.hold(slow_work(), heartbeat=heartbeat, interval=0.05)
    assert len(beats) == 3

    beats.clear()

    async def quick_work() -> str:
        await asyncio.sleep(0.12)
        return "done"

    assert await drain.hold(quick_work(), heartbeat=heartbeat, interval=0.05) == "done"
    assert 1 <= len(beats) <= 3


async def test_it_tries_a_failed_syllabus_run_again_and_drafts_from_an_edited_brief(client, personas):
    await client.login(personas.admin.email)
    from tests.authoring.helpers import BRIEF, run_id_from

    failing = {**BRIEF, "title": "Broken Brief [mock:syllabus:invalid_json*3]"}
    run = await wait_for_run(run_id_from(await client.post("/admin/courses", failing)))
    assert run["status"] == "FAILED"
    course_page = await client.get(f"/admin/courses/{run['course_id']}")
    assert "Drafting the syllabus failed." in course_page.text and "Try again" in course_page.text
    assert f"/admin/courses/{run['course_id']}/brief" in course_page.text
    retry = await client.post(f"/admin/runs/{run['id']}/retry")
    retried = await wait_for_run(run_id_from(retry))
    assert retried["id"] != run["id"] and retried["kind"] == "SYLLABUS" and retried["status"] == "FAILED"
    assert (await client.post(f"/admin/runs/{run['id']}/retry")).status_code == 303  # a failed run can be retried
    form = await client.get(f"/admin/courses/{run['course_id']}/brief")
    assert form.status_code == 200 and "Broken Brief" in form.text and "Save and draft again" in form.text
    # A bad brief is refused in the form, with what was typed kept.
    bad = await client.post(f"/admin/courses/{run['course_id']}/brief", {**BRIEF, "title": "Fix", "audience": "x"})
    assert bad.status_code == 400 and 'value="Fix"' in bad.text
    fixed = await client.post(f"/admin/courses/{run['course_id']}/brief", {**BRIEF, "title": "Mended Brief"})
    drafted = await wait_for_run(run_id_from(fixed))
    assert drafted["status"] == "SUCCEEDED" and drafted["syllabus_id"]
    from app.authoring.tables import Course

    course = await Course.select().where(Course.id == run["course_id"]).first()
    assert course["title"] == "Mended Brief" and "Mended Brief" in course["brief"]
    succeeded = await client.post(f"/admin/runs/{drafted['id']}/retry")
    assert succeeded.status_code == 409
    # With an approved syllabus the brief is settled.
    assert (await client.post(f"/admin/syllabi/{drafted['syllabus_id']}/approve", {"note": ""})).status_code == 303
    late = await client.post(f"/admin/courses/{run['course_id']}/brief", {**BRIEF, "title": "Too Late Now"})
    assert late.status_code == 409 and "approved syllabus" in late.text
    assert (await Course.select().where(Course.id == run["course_id"]).first())["title"] == "Mended Brief"


async def test_outsiders_cannot_retry_regenerate_or_edit_another_workspace(client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    run, _items = await content_run(syllabus, personas, 1, {})
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    for path in (f"/admin/runs/{run['id']}/retry", f"/admin/runs/{run['id']}/regenerate-failed",
                 f"/admin/courses/{syllabus['course_id']}/brief"):
        assert (await outsider.post(path, {"title": "x"})).status_code == 404, path
    assert (await outsider.get(f"/admin/courses/{syllabus['course_id']}/brief")).status_code == 404
    # Without the CSRF token even the workspace's own admin is refused, and nothing is created.
    for path in (f"/admin/runs/{run['id']}/retry", f"/admin/runs/{run['id']}/regenerate-failed",
                 f"/admin/courses/{syllabus['course_id']}/brief"):
        assert (await client.post(path, {"title": "x"}, csrf=False)).status_code == 403, path
    assert await GenerationRun.count().where(GenerationRun.course_id == syllabus["course_id"]) == 2


async def test_regenerating_the_failed_items_of_a_run_is_audited_under_the_admin(client, personas):
    from app.audit.tables import AuditLog
    from app.authoring import services

    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)
    run, _items = await content_run(syllabus, personas, 1, {("LESSON", 1): "FAILED"})
    actor = Actor(personas.admin.user_id, personas.admin.email)
    retry = await services.regenerate_failed(personas.acme["id"], run["id"], actor=actor)
    audit = await AuditLog.select().where((AuditLog.action == "FAILED_CONTENT_REGENERATION_REQUESTED")
                                          & (AuditLog.entity_id == str(run["id"]))).first()
    assert audit["actor_id"] == personas.admin.user_id and str(retry["id"]) in audit["metadata"]


async def test_a_graceful_stop_lets_calls_finish_within_the_grace_period_and_releases_the_rest(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client, title="Slow Lessons [mock:lesson:slow]")  # each lesson call ~3 s
    _run, items = await content_run(syllabus, personas, 1, {("LESSON", 1): "QUEUED", ("LESSON", 2): "QUEUED",
                                                             ("LESSON", 3): "QUEUED"})
    finishing, cut_off, waiting = items[("LESSON", 1)], items[("LESSON", 2)], items[("LESSON", 3)]
    drain = generation.drain
    drain.open()
    try:
        started = asyncio.create_task(generation.run_item_generation(finishing["id"]))
        await wait_for_item(finishing, "GENERATING")
        # Within the grace period: the call finishes and its draft is stored, nothing is released.
        assert await drain.stop(grace=10) == 0
        assert (await started)["status"] == "DRAFT"
        # While draining, a wake-up is not claimed: the worker leaves the row to the next one.
        drain.open()
        cut = asyncio.create_task(generation.run_item_generation(cut_off["id"]))
        await wait_for_item(cut_off, "GENERATING")
        stopping = asyncio.create_task(drain.stop(grace=0.2))
        parked = asyncio.create_task(generation.run_item_generation(waiting["id"]))
        assert await stopping == 1
        assert await cut == {"item_id": str(cut_off["id"]), "released": True}
        await asyncio.sleep(0.3)
        assert not parked.done() and (await item_row(waiting))["attempt"] == 0
        parked.cancel()
    finally:
        drain.open()
    # The released lesson went back to the queue with a fresh wake-up, no lost attempt counted; the live
    # server's worker generates it again at once, and the never-claimed one after its own wake-up.
    released = await item_row(cut_off)
    assert released["lost_attempts"] == 0 and released["error"] is None
    assert released["status"] in ("QUEUED", "GENERATING")
    done = await wait_for_item(cut_off, "DRAFT")
    assert (done["attempt"], done["lost_attempts"]) == (2, 0)
    finished = await item_row(finishing)
    assert (finished["status"], finished["attempt"]) == ("DRAFT", 1)
