"""Shared steps for authoring tests: drive the real app over HTTP and wait for the real worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import uuid

import msgspec

from app.authoring.schemas import Syllabus as SyllabusDoc
from app.authoring.tables import ContentItem, GenerationRun, Syllabus
from app.llm.prompts import load_prompt

BRIEF = {
    "title": "Practical Git for Designers",
    "audience": "product designers who hand off files by email",
    "level": "beginner",
    "time_budget_hours": "3",
    "teaching_style": "practical",
    "constraints": ["hands-on labs"],
    "other_constraints": "uses GitHub Desktop",
}


async def wait_for_run(run_id: uuid.UUID, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = await GenerationRun.select().where(GenerationRun.id == run_id).first()
        if run["status"] not in ("QUEUED", "RUNNING"):
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} still {run['status']} after {timeout} s")


def run_id_from(response) -> uuid.UUID:
    assert response.status_code == 303, response.text[:500]
    match = re.fullmatch(r"/admin/runs/([0-9a-f-]{36})", response.headers["location"])
    assert match, response.headers["location"]
    return uuid.UUID(match.group(1))


async def draft_syllabus(client, **brief_overrides) -> dict:
    response = await client.post("/admin/courses", {**BRIEF, **brief_overrides})
    run = await wait_for_run(run_id_from(response))
    assert run["status"] == "SUCCEEDED", run["error"]
    return await Syllabus.select().where(Syllabus.id == run["syllabus_id"]).first()


async def approved_syllabus(client, **brief_overrides) -> dict:
    syllabus = await draft_syllabus(client, **brief_overrides)
    response = await client.post(f"/admin/syllabi/{syllabus['id']}/approve", {"note": "looks right"})
    assert response.status_code == 303, response.text[:300]
    return await Syllabus.select().where(Syllabus.id == syllabus["id"]).first()


async def generated_content(client, **brief_overrides) -> tuple[dict, dict]:
    syllabus = await approved_syllabus(client, **brief_overrides)
    run = await wait_for_run(run_id_from(await client.post(f"/admin/syllabi/{syllabus['id']}/content")))
    return syllabus, run


# Rows written straight to the database, as a worker that died mid-call leaves them (durable-generation,
# sweeper and lease tests).

LONG_AGO = dt.timedelta(hours=1)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def syllabus_document(syllabus: dict) -> SyllabusDoc:
    return msgspec.json.decode(syllabus["content"], type=SyllabusDoc)


async def content_run(syllabus: dict, personas, module_index: int, states: dict[tuple[str, int | None], str],
                      **lease) -> tuple[dict, dict[tuple[str, int | None], dict]]:
    """A CONTENT run over one module, its items in the given states (default DRAFT), as a crashed worker
    or an earlier release would leave them. Keys are (kind, lesson_index); a project's index is None."""
    module = syllabus_document(syllabus).modules[module_index - 1]
    slots = [("LESSON", lesson.index) for lesson in module.lessons]
    slots += [("QUIZ", lesson.index) for lesson in module.lessons] + [("PROJECT", None)]
    run = (await GenerationRun.insert(GenerationRun(
        tenant_id=personas.acme["id"], course_id=syllabus["course_id"], syllabus_id=syllabus["id"], kind="CONTENT",
        status="RUNNING", total=len(slots), started_at=utcnow(),
    )).returning(*GenerationRun.all_columns()))[0]
    items = {}
    for kind, lesson_index in slots:
        status = states.get((kind, lesson_index), "DRAFT")
        example = load_prompt(kind.lower()).example_output
        content = msgspec.json.encode(example).decode() if status == "DRAFT" else None
        extra = lease if status == "GENERATING" else {}
        items[(kind, lesson_index)] = (await ContentItem.insert(ContentItem(
            tenant_id=personas.acme["id"], syllabus_id=syllabus["id"], run_id=run["id"], kind=kind,
            module_index=module_index, lesson_index=lesson_index, title=f"{kind.title()} {module_index}.{lesson_index}",
            status=status, content=content, content_hash="0" * 64 if content else None,
            queued_at=utcnow() if status == "QUEUED" else None, **extra,
        )).returning(*ContentItem.all_columns()))[0]
    return run, items


async def item_row(item: dict) -> dict:
    return await ContentItem.select().where(ContentItem.id == item["id"]).first()


async def wait_for_item(item: dict, *statuses: str, timeout: float = 30) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        row = await item_row(item)
        if row["status"] in statuses:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"item {item['id']} is {row['status']}, expected {statuses}")
