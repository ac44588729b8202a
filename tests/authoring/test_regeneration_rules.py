"""What may be regenerated or retried, and what a regenerated quiz is made from (A4, A5): a quiz is always
written from the current draft of its lesson, so one regenerated while its lesson is rejected waits
(BLOCKED) for the new lesson; items still being generated cannot be replaced; a failed redraft cannot be
retried once the draft it started from was approved; a wake-up delivered twice does nothing the second
time."""

from __future__ import annotations

import datetime as dt

import pytest

from app.authoring import generation
from app.authoring.tables import ContentItem, GenerationRun, Syllabus
from tests.authoring.helpers import (
    content_run,
    draft_syllabus,
    generated_content,
    item_row,
    run_id_from,
    wait_for_item,
    wait_for_run,
)


@pytest.fixture(scope="module", autouse=True)
async def queues():
    # Wake-ups sent from this process (a quiz released by its new lesson) go to the live server's queue.
    from app.queue import close_queue, connect_queues

    await connect_queues()
    yield
    await close_queue()


async def _item(syllabus: dict, kind: str, module: int = 1, lesson: int | None = 1) -> dict:
    query = ContentItem.select().where((ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.kind == kind)
                                       & (ContentItem.module_index == module)
                                       & (ContentItem.status != "SUPERSEDED"))
    if lesson is not None:
        query = query.where(ContentItem.lesson_index == lesson)
    return await query.first()


async def _replacement(item: dict) -> dict:
    return await ContentItem.select().where(ContentItem.supersedes_id == item["id"]).first()


async def test_it_regenerates_a_quiz_alone_from_its_lesson(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    quiz = await _item(syllabus, "QUIZ")
    response = await client.post(f"/admin/items/{quiz['id']}/regenerate", {"instruction": "Harder questions"})
    assert response.status_code == 303
    new = await _replacement(quiz)
    assert response.headers["location"] == f"/admin/items/{new['id']}"
    done = await wait_for_item(new, "DRAFT")
    assert (done["instruction"], done["waiting_for"]) == ("Harder questions", None)
    assert done["content_hash"] != quiz["content_hash"]
    assert (await item_row(quiz))["status"] == "SUPERSEDED"
    run = await wait_for_run(new["run_id"])
    assert (run["kind"], run["status"], run["source_id"]) == ("ITEM", "SUCCEEDED", quiz["id"])


async def test_a_quiz_regenerated_while_its_lesson_is_rejected_waits_for_the_new_lesson(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    lesson, quiz = await _item(syllabus, "LESSON"), await _item(syllabus, "QUIZ")
    assert (await client.post(f"/admin/items/{lesson['id']}/reject", {"reason": "Off topic"})).status_code == 303
    assert (await client.post(f"/admin/items/{quiz['id']}/regenerate", {"instruction": ""})).status_code == 303
    new_quiz = await _replacement(quiz)
    blocked = await wait_for_item(new_quiz, "BLOCKED")
    assert blocked["waiting_for"] == "lesson 1.1" and blocked["content"] is None
    page = await client.get(f"/admin/items/{new_quiz['id']}")
    assert "Waiting for lesson 1.1." in page.text and f"/admin/items/{lesson['id']}" in page.text
    # Nothing in the quiz's run can move without a person: it is finished, not RUNNING for ever.
    assert (await wait_for_run(new_quiz["run_id"]))["status"] == "FAILED"

    assert (await client.post(f"/admin/items/{lesson['id']}/regenerate", {"instruction": ""})).status_code == 303
    new_lesson = await _replacement(lesson)
    await wait_for_item(new_lesson, "DRAFT")
    done = await wait_for_item(new_quiz, "DRAFT")
    assert done["waiting_for"] is None and done["attempt"] == 1
    assert (await wait_for_run(new_quiz["run_id"]))["status"] == "SUCCEEDED"


async def test_it_refuses_to_replace_items_that_are_still_moving_or_waiting(client, personas):
    await client.login(personas.admin.email)
    syllabus = await draft_syllabus(client)
    assert (await client.post(f"/admin/syllabi/{syllabus['id']}/approve", {"note": ""})).status_code == 303
    now = dt.datetime.now(dt.UTC)
    _run_row, items = await content_run(
        {**syllabus, "status": "APPROVED"}, personas, 1,
        {("LESSON", 1): "GENERATING", ("QUIZ", 1): "PENDING", ("LESSON", 2): "FAILED", ("QUIZ", 2): "BLOCKED"},
        attempt=1, claimed_at=now, heartbeat_at=now)
    await ContentItem.update({ContentItem.waiting_for: "lesson 1.2"}).where(
        ContentItem.id == items[("QUIZ", 2)]["id"])
    for key in (("LESSON", 1), ("QUIZ", 1)):
        response = await client.post(f"/admin/items/{items[key]['id']}/regenerate", {"instruction": ""})
        assert response.status_code == 409 and "still being generated" in response.text, key
    waiting = await client.post(f"/admin/items/{items[('QUIZ', 2)]['id']}/regenerate", {"instruction": ""})
    assert waiting.status_code == 409 and "This item waits for lesson 1.2; regenerate that" in waiting.text
    for key in (("LESSON", 1), ("QUIZ", 1), ("QUIZ", 2)):
        assert await _replacement(items[key]) is None
        assert (await item_row(items[key]))["status"] == items[key]["status"]


async def test_it_refuses_to_retry_a_failed_redraft_once_its_draft_was_approved(client, personas):
    await client.login(personas.admin.email)
    draft = await draft_syllabus(client)
    failing = await client.post(f"/admin/syllabi/{draft['id']}/regenerate",
                                {"instruction": "More depth [mock:syllabus:invalid_json*3]"})
    failed = await wait_for_run(run_id_from(failing))
    assert failed["status"] == "FAILED"
    assert (await client.post(f"/admin/syllabi/{draft['id']}/approve", {"note": ""})).status_code == 303
    response = await client.post(f"/admin/runs/{failed['id']}/retry")
    assert response.status_code == 409 and "The draft this run started from is approved now" in response.text
    assert await GenerationRun.count().where(GenerationRun.course_id == draft["course_id"]) == 2
    assert await Syllabus.count().where(Syllabus.course_id == draft["course_id"]) == 1


async def test_a_wake_up_delivered_again_after_the_work_is_done_does_nothing(client, personas):
    await client.login(personas.admin.email)
    syllabus, run = await generated_content(client)
    lesson = await _item(syllabus, "LESSON")
    # SAQ delivers at least once: a second delivery finds the row no longer QUEUED and leaves it alone.
    assert await generation.run_item_generation(lesson["id"]) == {"item_id": str(lesson["id"]), "skipped": True}
    assert await item_row(lesson) == lesson
    syllabus_run = await GenerationRun.select().where(GenerationRun.syllabus_id == syllabus["id"]).where(
        GenerationRun.kind == "SYLLABUS").first()
    assert await generation.run_syllabus_generation(syllabus_run["id"]) == {"run_id": str(syllabus_run["id"]),
                                                                            "skipped": True}
    assert await GenerationRun.select().where(GenerationRun.id == syllabus_run["id"]).first() == syllabus_run
    assert await Syllabus.count().where(Syllabus.course_id == syllabus["course_id"]) == 1
