"""Shared steps for authoring tests: drive the real app over HTTP and wait for the real worker."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

from app.authoring.tables import GenerationRun, Syllabus

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
