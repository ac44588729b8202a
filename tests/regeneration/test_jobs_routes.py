"""Regeneration job pages and APIs over real HTTP: create by hand, trigger (PENDING only, 409 otherwise), the
budget form and the cost guard, filters, the outsider's 404 and the learner's 403; and the whole loop on the
real server and its in-process worker: create -> trigger -> COMPLETED -> a draft with its diff -> approve ->
publish v2."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from decimal import Decimal

import msgspec

from app.authoring.tables import ContentItem
from app.llm.tables import AIUsage
from app.publishing.tables import CoursePackageRow
from app.regeneration.tables import LlmBudget, RegenerationJob, RegenerationOutput
from tests.publishing.helpers import published_course
from tests.regeneration.helpers import approved_module, job_row


async def _admin(client_factory, persona):
    client = client_factory()
    await client.login(persona.email)
    return client


def _job_id(response) -> uuid.UUID:
    assert response.status_code == 303, response.text[:500]
    match = re.fullmatch(r"/admin/regeneration-jobs/([0-9a-f-]{36})", response.headers["location"])
    assert match, response.headers["location"]
    return uuid.UUID(match.group(1))


async def _wait_for(job_id: uuid.UUID, *statuses: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await job_row(job_id)
        if row["status"] in statuses:
            return row
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} is {row['status']}, expected {statuses}")


async def test_it_creates_a_job_by_hand_from_the_approved_items_page(client_factory, personas):
    made = await approved_module(personas)
    admin = await _admin(client_factory, personas.admin)
    item_page = await admin.get(f"/admin/items/{made['QUIZ']['id']}")
    assert f"/admin/regeneration-jobs/new?item={made['QUIZ']['id']}" in item_page.text
    form = await admin.get(f"/admin/regeneration-jobs/new?item={made['QUIZ']['id']}")
    assert form.status_code == 200 and "Estimated cost" in form.text and "Spent this month" in form.text
    refused = await admin.post("/admin/regeneration-jobs", {"item": str(made["QUIZ"]["id"]), "instruction": "  "})
    assert refused.status_code == 422 and "the instruction is required" in refused.text
    assert await RegenerationJob.count().where(RegenerationJob.target_id == made["QUIZ"]["id"]) == 0
    too_long = "x" * 2001
    refused = await admin.post("/admin/regeneration-jobs", {"item": str(made["QUIZ"]["id"]), "instruction": too_long})
    assert refused.status_code == 422 and too_long in refused.text  # the input is kept
    job_id = _job_id(await admin.post("/admin/regeneration-jobs", {"item": str(made["QUIZ"]["id"]),
                                                                   "instruction": "Make question 2 clearer"}))
    row = await job_row(job_id)
    assert row["status"] == "PENDING" and row["target_id"] == made["QUIZ"]["id"]
    assert row["created_by"] == personas.admin.user_id
    detail = await admin.get(f"/admin/regeneration-jobs/{job_id}")
    assert detail.status_code == 200
    assert "Make question 2 clearer" in detail.text and 'id="trigger-form"' in detail.text
    assert "Waiting to be triggered" in detail.text and "Created" in detail.text  # the audit trail
    listing = await admin.get("/admin/regeneration-jobs?status=PENDING&target_type=QUIZ")
    assert f'id="job-{job_id}"' in listing.text
    assert f'id="job-{job_id}"' not in (await admin.get("/admin/regeneration-jobs?target_type=LESSON")).text
    assert (await admin.get("/admin/regeneration-jobs?status=SOMETIMES")).status_code == 400


async def test_it_triggers_only_a_pending_job_and_says_why_not_otherwise(client_factory, personas):
    made = await approved_module(personas)
    admin = await _admin(client_factory, personas.admin)
    job_id = _job_id(await admin.post("/admin/regeneration-jobs", {"item": str(made["PROJECT"]["id"]),
                                                                   "instruction": "Smaller scope"}))
    triggered = await admin.post(f"/admin/regeneration-jobs/{job_id}/trigger")
    assert triggered.status_code == 303 and triggered.headers["location"] == f"/admin/regeneration-jobs/{job_id}"
    assert (await job_row(job_id))["status"] in ("QUEUED", "RUNNING", "COMPLETED")
    again = await admin.post(f"/admin/regeneration-jobs/{job_id}/trigger")
    assert again.status_code == 409 and "already" in again.text
    api_again = await admin.http.post(f"/api/admin/regeneration-jobs/{job_id}/trigger",
                                      headers={"x-csrftoken": admin.csrf})
    assert api_again.status_code == 409 and "already" in api_again.json()["error"]
    assert (await admin.http.get(f"/api/admin/regeneration-jobs/{job_id}/trigger")).status_code == 405
    assert (await admin.http.delete(f"/api/admin/regeneration-jobs/{job_id}",
                                    headers={"x-csrftoken": admin.csrf})).status_code == 405
    row = await _wait_for(job_id, "COMPLETED", "FAILED")
    assert row["status"] == "COMPLETED", row["error"]


async def test_the_apis_create_list_show_and_trigger(client_factory, personas):
    made = await approved_module(personas)
    admin = await _admin(client_factory, personas.admin)
    headers = {"x-csrftoken": admin.csrf}
    bad = await admin.http.post("/api/admin/regeneration-jobs", headers=headers,
                                json={"target_id": str(made["LESSON"]["id"]), "instruction": {"text": ""}})
    assert bad.status_code == 400
    created = await admin.http.post("/api/admin/regeneration-jobs", headers=headers, json={
        "target_id": str(made["LESSON"]["id"]), "instruction": {"text": "Shorter", "keep": ["the analogy"]}})
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "PENDING" and job["instruction"]["keep"] == ["the analogy"]
    listed = (await admin.http.get("/api/admin/regeneration-jobs", params={"status": "PENDING"})).json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and listed["total"] == 1
    shown = (await admin.http.get(f"/api/admin/regeneration-jobs/{job['id']}")).json()
    assert shown["job"]["id"] == job["id"] and shown["output"] is None and not shown["cost"]["would_exceed"]
    queued = await admin.http.post(f"/api/admin/regeneration-jobs/{job['id']}/trigger", headers=headers)
    assert queued.status_code == 200 and queued.json()["status"] == "QUEUED"
    row = await _wait_for(uuid.UUID(job["id"]), "COMPLETED", "FAILED")
    shown = (await admin.http.get(f"/api/admin/regeneration-jobs/{job['id']}")).json()
    assert shown["job"]["status"] == row["status"] == "COMPLETED"
    assert shown["output"]["lineage"]["job_id"] == job["id"] and shown["draft_item_id"]


async def test_the_budget_form_and_the_cost_guard(client_factory, personas):
    made = await approved_module(personas)
    admin = await _admin(client_factory, personas.admin)
    for bad in ("lots", "-5", "1.999"):
        refused = await admin.post("/admin/regeneration-jobs/budget", {"monthly_usd": bad})
        assert refused.status_code == 422 and "monthly budget" in refused.text and f'value="{bad}"' in refused.text
    assert await LlmBudget.count().where(LlmBudget.tenant_id == personas.acme["id"]) == 0
    saved = await admin.post("/admin/regeneration-jobs/budget", {"monthly_usd": "2"})
    assert saved.status_code == 303
    assert (await LlmBudget.select().where(LlmBudget.tenant_id == personas.acme["id"]).first())["monthly_usd"] \
        == Decimal("2.00")
    await AIUsage.insert(AIUsage(tenant_id=personas.acme["id"], operation="lesson", provider="mock", model="mock-1",
                                 prompt_name="lesson", prompt_version="v", cost_usd=Decimal("2.40"), success=True))
    job_id = _job_id(await admin.post("/admin/regeneration-jobs", {"item": str(made["LESSON"]["id"]),
                                                                   "instruction": "Shorter"}))
    detail = await admin.get(f"/admin/regeneration-jobs/{job_id}")
    assert "would go over the monthly budget" in detail.text
    refused = await admin.post(f"/admin/regeneration-jobs/{job_id}/trigger")
    assert refused.status_code == 409
    assert "$2.40 spent this month" in refused.text and "the budget is $2.00" in refused.text
    assert (await job_row(job_id))["status"] == "PENDING"
    assert (await admin.post("/admin/regeneration-jobs/budget", {"monthly_usd": ""})).status_code == 303
    assert await LlmBudget.count().where(LlmBudget.tenant_id == personas.acme["id"]) == 0


async def test_another_workspace_gets_404_and_a_learner_403(client_factory, personas):
    made = await approved_module(personas)
    admin = await _admin(client_factory, personas.admin)
    job_id = _job_id(await admin.post("/admin/regeneration-jobs", {"item": str(made["LESSON"]["id"]),
                                                                   "instruction": "Shorter"}))
    outsider = await _admin(client_factory, personas.outsider)
    for path in (f"/admin/regeneration-jobs/{job_id}", f"/api/admin/regeneration-jobs/{job_id}",
                 f"/admin/regeneration-jobs/new?item={made['LESSON']['id']}"):
        assert (await outsider.get(path)).status_code == 404, path
    assert (await outsider.post(f"/admin/regeneration-jobs/{job_id}/trigger")).status_code == 404
    assert (await outsider.http.post(f"/api/admin/regeneration-jobs/{job_id}/trigger",
                                     headers={"x-csrftoken": outsider.csrf})).status_code == 404
    refused = await outsider.post("/admin/regeneration-jobs", {"item": str(made["LESSON"]["id"]),
                                                              "instruction": "Mine now"})
    assert refused.status_code == 404  # another workspace's item is not found, as everywhere
    listed = (await outsider.http.get("/api/admin/regeneration-jobs")).json()
    assert listed["total"] == 0
    assert (await job_row(job_id))["status"] == "PENDING"
    learner = await _admin(client_factory, personas.learner)
    assert (await learner.get(f"/admin/regeneration-jobs/{job_id}")).status_code == 403
    assert await RegenerationJob.count().where(RegenerationJob.tenant_id == personas.globex["id"]) == 0


async def test_the_loop_from_a_job_to_a_published_second_version(client_factory, personas):
    admin = await _admin(client_factory, personas.admin)
    syllabus, package = await published_course(admin)
    quiz = await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.kind == "QUIZ") & (ContentItem.module_index == 1)
        & (ContentItem.lesson_index == 1) & (ContentItem.status == "APPROVED")).first()
    job_id = _job_id(await admin.post("/admin/regeneration-jobs", {"item": str(quiz["id"]),
                                                                   "instruction": "Reword the questions"}))
    assert (await admin.post(f"/admin/regeneration-jobs/{job_id}/trigger")).status_code == 303
    row = await _wait_for(job_id, "COMPLETED", "FAILED")
    assert row["status"] == "COMPLETED", row["error"]
    output = await RegenerationOutput.select().where(RegenerationOutput.id == row["output_id"]).first()
    detail = await admin.get(f"/admin/regeneration-jobs/{job_id}")
    assert f'href="/admin/items/{output["content_item_id"]}"' in detail.text
    assert "Locked" in detail.text and "Completed" in detail.text
    review = await admin.get(f"/admin/items/{output['content_item_id']}")
    assert review.status_code == 200
    old, new = (msgspec.json.decode(quiz["content"]), msgspec.json.decode(output["content"]))
    # The mock reshuffles a quiz's answers by the instruction: the review calls the answer-key change out.
    assert [q["correct_index"] for q in old["questions"]] != [q["correct_index"] for q in new["questions"]]
    assert "Answer key changed" in review.text
    assert f"/admin/regeneration-jobs/{job_id}" in review.text  # provenance names the job
    approved = await admin.post(f"/admin/items/{output['content_item_id']}/approve", {"note": "better"})
    assert approved.status_code == 303
    published = await admin.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert published.status_code == 303, published.text[:300]
    versions = await CoursePackageRow.select(CoursePackageRow.version, CoursePackageRow.document).where(
        CoursePackageRow.syllabus_id == syllabus["id"]).order_by(CoursePackageRow.version)
    assert [v["version"] for v in versions] == [package["version"], package["version"] + 1]
    assert output["content_hash"] in versions[-1]["document"]  # v2 carries the regenerated quiz


async def test_the_review_of_a_regenerated_lesson_is_side_by_side(client_factory, personas):
    made = await approved_module(personas)
    admin = await _admin(client_factory, personas.admin)
    job_id = _job_id(await admin.post("/admin/regeneration-jobs", {"item": str(made["LESSON"]["id"]),
                                                                   "instruction": "Use a shorter example"}))
    assert (await admin.post(f"/admin/regeneration-jobs/{job_id}/trigger")).status_code == 303
    row = await _wait_for(job_id, "COMPLETED", "FAILED")
    assert row["status"] == "COMPLETED", row["error"]
    output = await RegenerationOutput.select().where(RegenerationOutput.id == row["output_id"]).first()
    review = (await admin.get(f"/admin/items/{output['content_item_id']}")).text
    # Each changed text is two columns: what learners see today (removals struck), then the draft (additions).
    pairs = re.findall(r'<div class="side side-old">(.*?)</div>\s*<div class="side side-new">(.*?)</div>', review,
                       re.S)
    assert pairs, review[:2000]
    assert all("Approved version" in old and "This draft" in new for old, new in pairs)
    assert all("<ins>" not in old and "<del>" not in new for old, new in pairs)
    assert any("<del>" in old for old, _ in pairs) or any("<ins>" in new for _, new in pairs)
