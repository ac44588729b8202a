import asyncpg
import msgspec
import pytest

from app.audit.tables import AuditLog
from app.authoring.schemas import Lesson, Quiz
from app.authoring.schemas import Syllabus as SyllabusDoc
from app.authoring.tables import ContentItem
from tests.authoring.helpers import draft_syllabus, generated_content, wait_for_run
from tests.conftest import DATABASE_URL


async def _items(syllabus_id, **where) -> list[dict]:
    query = ContentItem.select().where(ContentItem.syllabus_id == syllabus_id)
    for column, value in where.items():
        query = query.where(getattr(ContentItem, column) == value)
    return await query


async def test_it_refuses_content_for_a_draft_syllabus(client, personas):
    await client.login(personas.admin.email)
    syllabus = await draft_syllabus(client)
    response = await client.post(f"/admin/syllabi/{syllabus['id']}/content")
    assert response.status_code == 409 and "approved syllabus" in response.text
    assert await ContentItem.count().where(ContentItem.syllabus_id == syllabus["id"]) == 0
    # The database refuses it too, whatever the code path.
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        with pytest.raises(asyncpg.PostgresError, match="only be generated from an APPROVED syllabus"):
            await conn.execute(
                "INSERT INTO content_item (id, tenant_id, syllabus_id, kind, module_index, lesson_index, title, status,"
                " created_at) VALUES (gen_random_uuid(), $1, $2, 'LESSON', 1, 1, 'x', 'PENDING', now())",
                personas.acme["id"], syllabus["id"])
        with pytest.raises(asyncpg.PostgresError, match="only be generated from an APPROVED syllabus"):
            await conn.execute(
                "INSERT INTO generation_run (id, tenant_id, course_id, syllabus_id, kind, status, total, done, failed,"
                " created_at) VALUES (gen_random_uuid(), $1, $2, $3, 'CONTENT', 'QUEUED', 1, 0, 0, now())",
                personas.acme["id"], syllabus["course_id"], syllabus["id"])
    finally:
        await conn.close()


async def test_it_generates_every_lesson_quiz_and_project_as_drafts(client, personas):
    await client.login(personas.admin.email)
    syllabus, run = await generated_content(client)
    document = msgspec.json.decode(syllabus["content"], type=SyllabusDoc)
    lessons = sum(len(m.lessons) for m in document.modules)
    assert run["status"] == "SUCCEEDED"
    expected = 2 * lessons + len(document.modules)
    assert (run["total"], run["done"], run["failed"]) == (expected, expected, 0)
    items = await _items(syllabus["id"])
    assert {i["status"] for i in items} == {"DRAFT"}
    assert sorted({i["kind"] for i in items}) == ["LESSON", "PROJECT", "QUIZ"]
    first = next(i for i in items if i["kind"] == "LESSON" and (i["module_index"], i["lesson_index"]) == (1, 1))
    lesson = msgspec.json.decode(first["content"], type=Lesson)
    outline = document.modules[0].lessons[0]
    assert lesson.title == outline.title and lesson.duration_minutes == outline.estimated_minutes
    meta = msgspec.json.decode(first["generation"])
    assert meta["prompt_version"].startswith("lesson/v2+") and meta["run_id"] == str(run["id"])
    assert {"model", "temperature", "seed", "input_tokens", "output_tokens", "duration_ms", "repairs",
            "validation_passed"} <= set(meta)
    quiz = next(i for i in items if i["kind"] == "QUIZ" and (i["module_index"], i["lesson_index"]) == (1, 1))
    assert len(msgspec.json.decode(quiz["content"], type=Quiz).questions) == 5
    again = await client.post(f"/admin/syllabi/{syllabus['id']}/content")
    assert again.status_code == 409 and await ContentItem.count().where(
        ContentItem.syllabus_id == syllabus["id"]) == len(items)


async def test_it_approves_a_module_item_by_item_with_audit_rows(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    module_items = await _items(syllabus["id"], module_index=1)
    response = await client.post(f"/admin/syllabi/{syllabus['id']}/modules/1/approve", {"note": "reviewed"})
    assert response.status_code == 303
    approved = await _items(syllabus["id"], module_index=1)
    assert {i["status"] for i in approved} == {"APPROVED"}
    assert all(i["approved_hash"] == i["content_hash"] and i["approved_by"] == personas.admin.user_id
               for i in approved)
    assert {i["status"] for i in await _items(syllabus["id"], module_index=2)} == {"DRAFT"}
    audits = await AuditLog.count().where(
        (AuditLog.action == "CONTENT_APPROVED") & AuditLog.entity_id.is_in([str(i["id"]) for i in module_items]))
    assert audits == len(module_items)
    page = await client.get(f"/admin/syllabi/{syllabus['id']}")
    assert "Approve module drafts" in page.text  # still offered for module 2


async def test_it_approves_one_item_once(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    item = (await _items(syllabus["id"], kind="PROJECT"))[0]
    page = await client.get(f"/admin/items/{item['id']}")
    assert page.status_code == 200 and "As the learner will see it" in page.text and "Rubric" in page.text
    assert (await client.post(f"/admin/items/{item['id']}/approve", {"note": ""})).status_code == 303
    again = await client.post(f"/admin/items/{item['id']}/approve", {"note": ""})
    assert again.status_code == 409
    # A revision of an approved item needs an instruction (tests/authoring/test_revisions.py has the rest).
    assert (await client.post(f"/admin/items/{item['id']}/regenerate", {"instruction": ""})).status_code == 400
    assert await ContentItem.count().where(ContentItem.supersedes_id == item["id"]) == 0


async def test_it_regenerates_one_item_with_an_instruction(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    old = next(i for i in await _items(syllabus["id"], kind="LESSON") if i["module_index"] == 1)
    response = await client.post(f"/admin/items/{old['id']}/regenerate", {"instruction": "Use a bakery example"})
    assert response.status_code == 303
    new = await ContentItem.select().where(ContentItem.supersedes_id == old["id"]).first()
    run = await wait_for_run(new["run_id"])
    assert run["kind"] == "ITEM" and run["status"] == "SUCCEEDED"
    new = await ContentItem.select().where(ContentItem.id == new["id"]).first()
    assert new["status"] == "DRAFT" and new["instruction"] == "Use a bakery example"
    # The instruction changes the draft but never reaches learner-facing text.
    assert "bakery" not in new["content"].lower() and new["content_hash"] != old["content_hash"]
    assert (await ContentItem.select(ContentItem.status).where(ContentItem.id == old["id"]).first())["status"] \
        == "SUPERSEDED"
    queue = await client.get("/admin/review", params={"syllabus": str(syllabus["id"]), "module": "1",
                                                      "kind": "LESSON"})
    assert str(new["id"]) in queue.text and str(old["id"]) not in queue.text


async def test_it_shows_failed_items_with_their_error_and_blocks_what_depends_on_them(client, personas):
    await client.login(personas.admin.email)
    # The mock fails every lesson attempt of this course: lessons fail, so their quizzes and projects wait.
    syllabus, run = await generated_content(client, title="Failing Lessons [mock:lesson:invalid_json*3]")
    assert run["status"] == "FAILED" and run["done"] == 0
    lessons = await _items(syllabus["id"], kind="LESSON")
    assert run["failed"] == len(lessons) and run["blocked"] == run["total"] - len(lessons)
    failed_lesson = lessons[0]
    assert failed_lesson["status"] == "FAILED"
    assert "attempt 3: invalid JSON" in failed_lesson["error"]
    quiz = next(i for i in await _items(syllabus["id"], kind="QUIZ")
                if (i["module_index"], i["lesson_index"]) == (failed_lesson["module_index"],
                                                              failed_lesson["lesson_index"]))
    assert quiz["status"] == "BLOCKED" and quiz["error"] is None
    assert quiz["waiting_for"] == f"lesson {failed_lesson['module_index']}.{failed_lesson['lesson_index']}"
    assert {i["status"] for i in await _items(syllabus["id"], kind="PROJECT")} == {"BLOCKED"}
    queue = await client.get("/admin/review", params={"syllabus": str(syllabus["id"]), "status": "FAILED"})
    assert "attempt 1: invalid JSON" in queue.text
    page = await client.get(f"/admin/items/{failed_lesson['id']}")
    assert "Generation failed." in page.text and "Regenerate" in page.text
    page = await client.get(f"/admin/items/{quiz['id']}")
    assert "Waiting for lesson" in page.text and f"/admin/items/{failed_lesson['id']}" in page.text
    assert (await client.post(f"/admin/items/{quiz['id']}/regenerate", {"instruction": ""})).status_code == 409
    run_page = await client.get(f"/admin/runs/{run['id']}")
    assert "Regenerate all failed" in run_page.text


async def test_it_rejects_malformed_review_filters(client, personas):
    await client.login(personas.admin.email)
    for params in ({"syllabus": "not-a-uuid"}, {"kind": "VIDEO"}, {"status": "DONE"}, {"module": "one"}):
        response = await client.get("/admin/review", params=params)
        assert response.status_code == 400, params


async def test_it_hides_content_from_other_workspaces(client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, run = await generated_content(client)
    item = (await _items(syllabus["id"]))[0]
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    for path in (f"/admin/items/{item['id']}", f"/admin/items/{item['id']}/json", f"/admin/runs/{run['id']}"):
        assert (await outsider.get(path)).status_code == 404, path
    for path in (f"/admin/items/{item['id']}/approve", f"/admin/syllabi/{syllabus['id']}/modules/1/approve",
                 f"/admin/syllabi/{syllabus['id']}/content"):
        assert (await outsider.post(path, {"note": ""})).status_code == 404, path
    assert (await ContentItem.select(ContentItem.status).where(ContentItem.id == item["id"]).first())["status"] \
        == "DRAFT"
    queue = await outsider.get("/admin/review")
    assert str(item["id"]) not in queue.text


async def test_it_reports_usage_per_day_operation_and_model(client, personas):
    await client.login(personas.admin.email)
    await generated_content(client)
    page = await client.get("/admin/ai-usage")
    assert page.status_code == 200
    for operation in ("syllabus", "lesson", "quiz", "project"):
        assert f"<td>{operation}</td>" in page.text
    assert "mock-1" in page.text
