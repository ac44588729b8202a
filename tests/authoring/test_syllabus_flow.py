import msgspec

from app.audit.tables import AuditLog
from app.authoring.schemas import Syllabus as SyllabusDoc
from app.authoring.tables import Course, GenerationRun, Syllabus
from app.llm.tables import AIUsage
from tests.authoring.helpers import BRIEF, draft_syllabus, run_id_from, wait_for_run


async def test_it_drafts_a_syllabus_from_a_brief_on_the_worker(client, personas):
    await client.login(personas.admin.email)
    response = await client.post("/admin/courses", BRIEF)
    run_id = run_id_from(response)
    progress = await client.get(f"/admin/runs/{run_id}")
    assert progress.status_code == 200  # the heading says the draft is ready once it is (it may be by now)
    assert "Drafting the syllabus" in progress.text or "The syllabus draft is ready" in progress.text
    run = await wait_for_run(run_id)
    assert run["status"] == "SUCCEEDED" and (run["done"], run["total"]) == (1, 1)
    syllabus = await Syllabus.select().where(Syllabus.id == run["syllabus_id"]).first()
    assert syllabus["status"] == "DRAFT" and syllabus["tenant_id"] == personas.acme["id"]
    document = msgspec.json.decode(syllabus["content"], type=SyllabusDoc)
    assert document.course.title == BRIEF["title"]
    assert document.course.constraints == ["hands-on labs", "uses github desktop"]
    assert sum(lesson.estimated_minutes for m in document.modules for lesson in m.lessons) <= 3 * 60
    generation = msgspec.json.decode(syllabus["generation"])
    assert generation["prompt_version"].startswith("syllabus/v2+") and generation["model"] == "mock-1"
    assert generation["run_id"] == str(run_id) and generation["validation_passed"] is True
    assert await AIUsage.count().where((AIUsage.run_id == run_id) & (AIUsage.operation == "syllabus")) == 1
    # The finished progress partial stops polling and links to the draft.
    partial = await client.get(f"/admin/runs/{run_id}", headers={"HX-Request": "true"})
    assert "hx-trigger" not in partial.text and f"/admin/syllabi/{syllabus['id']}" in partial.text


async def test_it_polls_while_the_run_is_unfinished(client, personas):
    await client.login(personas.admin.email)
    run = (await GenerationRun.insert(GenerationRun(
        tenant_id=personas.acme["id"], course_id=(await Course.insert(Course(
            tenant_id=personas.acme["id"], title="Pending course", brief="{}")).returning(Course.id))[0]["id"],
        kind="SYLLABUS", total=1)).returning(GenerationRun.id))[0]
    partial = await client.get(f"/admin/runs/{run['id']}", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in partial.text and "0 of 1" in partial.text
    assert "<html" not in partial.text


async def test_it_shows_the_draft_as_a_learner_would_and_its_json(client, personas):
    await client.login(personas.admin.email)
    syllabus = await draft_syllabus(client)
    page = await client.get(f"/admin/syllabi/{syllabus['id']}")
    document = msgspec.json.decode(syllabus["content"], type=SyllabusDoc)
    assert page.status_code == 200
    assert document.modules[0].title in page.text and document.modules[0].lessons[0].title in page.text
    assert 'class="json-viewer"' in page.text and "Approve syllabus" in page.text
    download = await client.get(f"/admin/syllabi/{syllabus['id']}/json")
    assert download.headers["content-disposition"].startswith("attachment")
    assert msgspec.json.decode(download.content, type=SyllabusDoc) == document


async def test_it_approves_a_draft_once_and_audits_it(client, personas):
    await client.login(personas.admin.email)
    syllabus = await draft_syllabus(client)
    response = await client.post(f"/admin/syllabi/{syllabus['id']}/approve", {"note": "Ship it"})
    assert response.status_code == 303
    row = await Syllabus.select().where(Syllabus.id == syllabus["id"]).first()
    assert row["status"] == "APPROVED" and row["approved_by"] == personas.admin.user_id
    assert row["approval_note"] == "Ship it" and row["approved_hash"] == row["content_hash"]
    again = await client.post(f"/admin/syllabi/{syllabus['id']}/approve", {"note": ""})
    assert again.status_code == 409 and "Only a draft can be approved" in again.text
    audit = await AuditLog.select().where(
        (AuditLog.action == "SYLLABUS_APPROVED") & (AuditLog.entity_id == str(syllabus["id"]))
    )
    assert len(audit) == 1 and audit[0]["actor_id"] == personas.admin.user_id


async def test_it_rejects_with_a_reason_and_refuses_an_empty_one(client, personas):
    await client.login(personas.admin.email)
    syllabus = await draft_syllabus(client)
    empty = await client.post(f"/admin/syllabi/{syllabus['id']}/reject", {"reason": "  "})
    assert empty.status_code == 400 and "A reason is required." in empty.text
    assert (await Syllabus.select(Syllabus.status).where(Syllabus.id == syllabus["id"]).first())["status"] == "DRAFT"
    rejected = await client.post(f"/admin/syllabi/{syllabus['id']}/reject", {"reason": "Too shallow"})
    assert rejected.status_code == 303
    row = await Syllabus.select().where(Syllabus.id == syllabus["id"]).first()
    assert (row["status"], row["rejection_reason"]) == ("REJECTED", "Too shallow")
    assert (await client.post(f"/admin/syllabi/{syllabus['id']}/approve", {})).status_code == 409


async def test_it_redrafts_with_an_instruction_into_a_new_revision(client, personas):
    await client.login(personas.admin.email)
    first = await draft_syllabus(client)
    response = await client.post(f"/admin/syllabi/{first['id']}/regenerate",
                                 {"instruction": "Add a module on resolving merge conflicts"})
    run = await wait_for_run(run_id_from(response))
    second = await Syllabus.select().where(Syllabus.id == run["syllabus_id"]).first()
    assert second["revision"] == 2 and second["supersedes_id"] == first["id"]
    assert second["instruction"] == "Add a module on resolving merge conflicts"
    assert second["content_hash"] != first["content_hash"]
    old = await Syllabus.select(Syllabus.status).where(Syllabus.id == first["id"]).first()
    assert old["status"] == "SUPERSEDED"
    empty = await client.post(f"/admin/syllabi/{second['id']}/regenerate", {"instruction": ""})
    assert empty.status_code == 400


async def test_it_explains_what_is_wrong_with_a_bad_brief_and_creates_nothing(client, personas):
    await client.login(personas.admin.email)
    before = await Course.count()
    for field, value, message in (
        ("title", "Git", "title"),
        ("time_budget_hours", "lots", "time_budget_hours"),
        ("time_budget_hours", "0", "time_budget_hours"),
        ("level", "wizard", "level"),
        ("teaching_style", "shouting", "teaching_style"),
    ):
        response = await client.post("/admin/courses", {**BRIEF, field: value})
        assert response.status_code == 400, (field, value)
        assert "Check the course brief" in response.text and message in response.text
        assert 'value="product designers who hand off files by email"' in response.text  # kept
    assert await Course.count() == before


async def test_it_hides_drafts_from_other_workspaces(client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus = await draft_syllabus(client)
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    for path in (f"/admin/syllabi/{syllabus['id']}", f"/admin/syllabi/{syllabus['id']}/json",
                 f"/admin/runs/{syllabus['run_id']}", f"/admin/courses/{syllabus['course_id']}"):
        assert (await outsider.get(path)).status_code == 404, path
    approve = await outsider.post(f"/admin/syllabi/{syllabus['id']}/approve", {"note": "mine now"})
    assert approve.status_code == 404
    assert (await Syllabus.select(Syllabus.status).where(Syllabus.id == syllabus["id"]).first())["status"] == "DRAFT"
    listing = await outsider.get("/admin/courses")
    assert BRIEF["title"] not in listing.text


async def test_it_keeps_learners_out_of_authoring(client, personas):
    await client.login(personas.learner.email)
    assert (await client.get("/admin/courses")).status_code == 403
    assert (await client.post("/admin/courses", BRIEF)).status_code == 403
