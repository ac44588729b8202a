"""Suggestions on real parts: learners' events over HTTP, the nightly job raising signals and suggestions, and
an admin deciding through the pages and the JSON APIs. Personas: Ada administers Insighta, two learners read
there, Otto administers another workspace."""

from __future__ import annotations

import json

import asyncpg
import pytest

from app.analytics import jobs
from app.analytics import services as analytics
from app.audit.services import SYSTEM
from app.publishing import services as publishing
from tests.conftest import DATABASE_URL, Client, fetch_rows, make_member, make_tenant
from tests.publishing.helpers import published_course

LOW_LIMITS = analytics.Thresholds(drop_off_rate=0.1, quiz_pass_rate=0.9, refund_rate=0.15, engagement_rate=0.3,
                                  min_learners=1, min_attempts=1, min_purchases=10, window_days=7)


async def _send(client: Client, events: list[dict]) -> None:
    response = await client.http.post("/api/analytics/event", content=json.dumps({"events": events,
                                                                                   "csrf": client.csrf}),
                                      headers={"content-type": "text/plain"})
    assert response.status_code == 202, response.text


@pytest.fixture(scope="module")
async def world(live_server):
    tenant = await make_tenant("Insighta")
    admin = await make_member(tenant, "admin", "ada")
    learners = [await make_member(tenant, "learner", f"lea{i}") for i in range(2)]
    outsider = await make_member(await make_tenant("Elsewhere"), "admin", "otto")
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, package = await published_course(client)
    await client.aclose()
    await analytics.save_thresholds(tenant["id"], LOW_LIMITS, actor=SYSTEM)
    course = str(syllabus["id"])
    # Both learners open lesson 1, one goes on to lesson 2 (a 50 % drop-off) and passes its quiz once in two.
    for n, persona in enumerate(learners):
        reader = Client(live_server.url)
        await reader.login(persona.email)
        assert (await reader.post(f"/learn/{course}/enroll")).status_code == 303
        await _send(reader, [{"type": "course_viewed", "course_id": course},
                             {"type": "lesson_viewed", "course_id": course, "lesson_index": 1}])
        if n == 0:
            await _send(reader, [{"type": "lesson_viewed", "course_id": course, "lesson_index": 2},
                                 {"type": "quiz_attempted", "course_id": course, "lesson_index": 2},
                                 {"type": "quiz_attempted", "course_id": course, "lesson_index": 2},
                                 {"type": "quiz_passed", "course_id": course, "lesson_index": 2}])
        await reader.aclose()
    first = await jobs.run_analytics_jobs()
    assert first["status"] == "SUCCESS", first
    return {"tenant": tenant, "admin": admin, "outsider": outsider, "syllabus": syllabus, "package": package,
            "course": course, "first_run": first}


@pytest.fixture
async def admin(live_server, world):
    client = Client(live_server.url)
    await client.login(world["admin"].email)
    yield client
    await client.aclose()


async def _suggestions(world) -> list:
    return await fetch_rows(DATABASE_URL, "SELECT * FROM content_suggestion WHERE tenant_id = $1 "
                            "ORDER BY suggestion_type", world["tenant"]["id"])


async def _audits(action: str, tenant_id) -> list:
    return await fetch_rows(DATABASE_URL, "SELECT * FROM audit_log WHERE action = $1 AND tenant_id = $2 ORDER BY id",
                            action, tenant_id)


async def _one(world, suggestion_type: str):
    return next(r for r in await _suggestions(world) if r["suggestion_type"] == suggestion_type)


async def test_it_creates_the_suggestions_of_the_days_signals_once_and_audits_each_once(world):
    rows = await _suggestions(world)
    assert [(r["suggestion_type"], r["scope"], r["status"]) for r in rows] == [
        ("CONTENT_CLARITY", "LESSON", "OPEN"), ("DROP_OFF", "LESSON", "OPEN"), ("HIGH_RETRY", "QUIZ", "OPEN")]
    assert world["first_run"]["suggestions"]["suggestions_created"] >= 3
    again = await jobs.run_analytics_jobs()
    assert again["status"] == "SUCCESS" and again["suggestions"]["suggestions_created"] == 0
    assert [r["id"] for r in await _suggestions(world)] == [r["id"] for r in rows]
    audits = await _audits("CONTENT_SUGGESTION_CREATED", world["tenant"]["id"])
    assert sorted(a["entity_id"] for a in audits) == sorted(str(r["id"]) for r in rows)
    assert all(a["actor_email"] == "system" for a in audits)


async def test_it_aims_at_the_lesson_and_quiz_items_of_the_newest_published_version(world):
    package = await publishing.newest_published(world["tenant"]["id"], world["syllabus"]["id"])
    document = await publishing.document_of(package)
    second = document.lessons[1]
    items = {(p.kind, p.module_index, p.lesson_index): p.item_id for p in document.provenance.items}
    drop, retry = await _one(world, "DROP_OFF"), await _one(world, "HIGH_RETRY")
    assert str(drop["target_id"]) == items[("LESSON", second.module_index, second.lesson_index)]
    assert str(retry["target_id"]) == items[("QUIZ", second.module_index, second.lesson_index)]
    evidence = json.loads(drop["evidence"])
    assert evidence["metrics"] == {"viewers_before": 2, "viewers": 1, "drop_off_rate": 0.5}
    assert evidence["thresholds"]["drop_off_rate"] == 0.1 and evidence["window"]["end"]
    assert evidence["target"]["lesson"] == {
        "number": 2, "module": second.module_index, "lesson": second.lesson_index, "title": second.lesson.title,
        "module_title": document.modules[second.module_index - 1].title,
        "lesson_item_id": str(drop["target_id"]), "quiz_item_id": str(retry["target_id"])}
    assert evidence["target"]["package_version"] == package["version"]
    assert second.lesson.title in drop["message"] and "50%" in drop["message"]


async def test_it_lets_only_the_status_change_and_only_forward_even_in_raw_sql(world):
    row = await _one(world, "CONTENT_CLARITY")
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        for statement in ("UPDATE content_suggestion SET message = 'edited' WHERE id = $1",
                          "UPDATE content_suggestion SET severity = 'low' WHERE id = $1",
                          "UPDATE content_suggestion SET target_id = gen_random_uuid() WHERE id = $1",
                          "DELETE FROM content_suggestion WHERE id = $1"):
            with pytest.raises(asyncpg.RaiseError):
                await conn.execute(statement, row["id"])
        # Forward once, then never back: tried inside a transaction that is rolled back, so the row stays OPEN.
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("UPDATE content_suggestion SET status = 'DISMISSED' WHERE id = $1", row["id"])
        with pytest.raises(asyncpg.RaiseError, match="DISMISSED -> OPEN is not allowed"):
            await conn.execute("UPDATE content_suggestion SET status = 'OPEN' WHERE id = $1", row["id"])
        await transaction.rollback()
    finally:
        await conn.close()
    assert (await _one(world, "CONTENT_CLARITY"))["status"] == "OPEN"


async def test_it_lists_filters_and_shows_a_suggestion_with_its_evidence(world, admin):
    drop = await _one(world, "DROP_OFF")
    page = await admin.get("/admin/suggestions")
    assert page.status_code == 200 and f'id="suggestion-{drop["id"]}"' in page.text
    assert 'aria-current="page">Suggestions</a>' in page.text and 'badge severity-' in page.text
    quizzes = (await admin.get("/admin/suggestions?scope=QUIZ")).text
    assert "Quiz failed often" in quizzes and f'id="suggestion-{drop["id"]}"' not in quizzes
    none = (await admin.get(f"/admin/suggestions?course={world['course']}&status=DISMISSED&severity=low")).text
    assert "No suggestion matches these filters." in none
    refused = await admin.get("/admin/suggestions?severity=urgent")
    assert refused.status_code == 400 and "Filter by a severity offered" in refused.text
    detail = await admin.get(f"/admin/suggestions/{drop['id']}")
    assert detail.status_code == 200 and drop["message"] in detail.text
    assert f'href="/admin/suggestions/{drop["id"]}/json"' in detail.text and 'class="json-viewer"' in detail.text
    assert f"/admin/analytics/signals?course={world['course']}#signal-{drop['source_signal_id']}" in detail.text
    assert 'name="create_job" value="on" checked' in detail.text and "Estimated cost" in detail.text
    assert "What learners showed" in detail.text  # the instruction, prefilled from the evidence
    assert "drop off rate 50%" in detail.text and "drop off rate 0.5" not in detail.text  # rates in words
    assert (await admin.get(f"/admin/suggestions/{drop['id']}/json")).json() == json.loads(drop["evidence"])


async def test_it_refuses_a_decision_without_a_note_keeping_the_input_and_changing_nothing(world, admin):
    drop = await _one(world, "DROP_OFF")
    response = await admin.post(f"/admin/suggestions/{drop['id']}/accept",
                                {"note": "  ", "create_job": "on", "instruction": "Shorter intro, please"})
    assert response.status_code == 400 and "Write a note" in response.text
    assert 'role="alert" id="accept-error"' in response.text and "Shorter intro, please</textarea>" in response.text
    assert (await admin.post(f"/admin/suggestions/{drop['id']}/dismiss", {"note": ""})).status_code == 400
    assert (await _one(world, "DROP_OFF"))["status"] == "OPEN"
    assert await fetch_rows(DATABASE_URL, "SELECT 1 FROM regeneration_job WHERE suggestion_id = $1", drop["id"]) == []


async def test_it_accepts_with_a_pending_regeneration_job_in_one_go_and_audits_the_note(world, admin):
    drop = await _one(world, "DROP_OFF")
    response = await admin.post(f"/admin/suggestions/{drop['id']}/accept",
                                {"note": "Learners stall here", "create_job": "on",
                                 "instruction": "Open with a worked example."})
    assert response.status_code == 303, response.text[:500]
    [job] = await fetch_rows(DATABASE_URL, "SELECT * FROM regeneration_job WHERE suggestion_id = $1", drop["id"])
    assert response.headers["location"] == f"/admin/regeneration-jobs/{job['id']}"
    assert (job["status"], job["target_id"], job["tenant_id"]) == ("PENDING", drop["target_id"], world["tenant"]["id"])
    instruction = json.loads(job["instruction"])
    assert instruction["text"] == "Open with a worked example."
    assert instruction["evidence"] == json.loads(drop["evidence"])
    assert (await _one(world, "DROP_OFF"))["status"] == "ACCEPTED"
    [audit] = await _audits("CONTENT_SUGGESTION_ACCEPTED", world["tenant"]["id"])
    assert audit["entity_id"] == str(drop["id"])
    assert json.loads(audit["metadata"]) == {"note": "Learners stall here", "job_id": str(job["id"])}
    again = await admin.post(f"/admin/suggestions/{drop['id']}/dismiss", {"note": "changed my mind"})
    assert again.status_code == 409 and "already accepted; a decision is made once" in again.text
    assert (await _one(world, "DROP_OFF"))["status"] == "ACCEPTED"
    page = (await admin.get(f"/admin/suggestions/{drop['id']}")).text
    assert f'href="/admin/regeneration-jobs/{job["id"]}"' in page and 'action="/admin/suggestions' not in page


async def test_it_answers_the_apis_with_filters_decisions_and_conflicts(world, admin):
    retry = await _one(world, "HIGH_RETRY")
    listed = (await admin.get(f"/api/admin/suggestions?scope=QUIZ&course={world['course']}")).json()
    assert [s["id"] for s in listed["suggestions"]] == [str(retry["id"])] and listed["has_next"] is False
    assert listed["suggestions"][0]["evidence"]["metrics"]["pass_rate"] == 0.5
    open_ones = (await admin.get("/api/admin/suggestions?status=OPEN")).json()["suggestions"]
    assert {s["status"] for s in open_ones} == {"OPEN"}
    assert (await admin.get("/api/admin/suggestions?status=MAYBE")).status_code == 400
    assert (await admin.get("/api/admin/suggestions?course=not-a-uuid")).status_code == 400
    url = f"/api/admin/suggestions/{retry['id']}/dismiss"
    headers = {"x-csrftoken": admin.csrf, "content-type": "application/json"}
    assert (await admin.http.post(url, content=b'{"note": ""}', headers=headers)).status_code == 400
    assert (await admin.http.post(url, content=b'{"nope": 1}', headers=headers)).status_code == 400
    assert (await admin.http.post(url, content=b'{"note": "fine as it is"}')).status_code == 403  # no CSRF token
    done = await admin.http.post(url, content=b'{"note": "fine as it is"}', headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["suggestion"]["status"] == "DISMISSED" and done.json()["job_id"] is None
    assert (await _one(world, "HIGH_RETRY"))["status"] == "DISMISSED"
    conflict = await admin.http.post(f"/api/admin/suggestions/{retry['id']}/accept",
                                     content=b'{"note": "after all"}', headers=headers)
    assert conflict.status_code == 409 and "already dismissed" in conflict.json()["detail"]
    [audit] = await _audits("CONTENT_SUGGESTION_DISMISSED", world["tenant"]["id"])
    assert json.loads(audit["metadata"]) == {"note": "fine as it is"}


async def test_it_accepts_through_the_api_with_a_job_from_the_prefilled_instruction(world, admin):
    clarity = await _one(world, "CONTENT_CLARITY")
    response = await admin.http.post(f"/api/admin/suggestions/{clarity['id']}/accept",
                                     content=json.dumps({"note": "yes", "create_job": True}),
                                     headers={"x-csrftoken": admin.csrf, "content-type": "application/json"})
    assert response.status_code == 200, response.text
    body = response.json()
    [job] = await fetch_rows(DATABASE_URL, "SELECT * FROM regeneration_job WHERE suggestion_id = $1", clarity["id"])
    assert body["job_id"] == str(job["id"]) and body["job_url"] == f"/admin/regeneration-jobs/{job['id']}"
    assert json.loads(job["instruction"])["text"].startswith(clarity["message"])
    assert job["status"] == "PENDING"


async def test_it_shows_the_open_suggestions_in_the_course_analytics_panel(world, admin):
    dashboard = (await admin.get(f"/admin/analytics?course={world['course']}")).text
    assert f'hx-get="/admin/suggestions/panel?course={world["course"]}"' in dashboard
    panel = await admin.get(f"/admin/suggestions/panel?course={world['course']}", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "Suggested actions" in panel.text
    open_ids = [str(r["id"]) for r in await _suggestions(world) if r["status"] == "OPEN"]
    for suggestion_id in open_ids:
        assert f'href="/admin/suggestions/{suggestion_id}"' in panel.text
    decided = [str(r["id"]) for r in await _suggestions(world) if r["status"] != "OPEN"]
    assert decided and all(f"panel-suggestion-{i}" not in panel.text for i in decided)
    plain = await admin.get(f"/admin/suggestions/panel?course={world['course']}")
    assert plain.status_code == 303 and plain.headers["location"].startswith("/admin/suggestions?status=OPEN")


async def test_it_hides_a_workspaces_suggestions_from_another_workspaces_admin(live_server, world):
    outsider = Client(live_server.url)
    await outsider.login(world["outsider"].email)
    row = (await _suggestions(world))[0]
    sid = row["id"]
    for path in (f"/admin/suggestions/{sid}", f"/admin/suggestions/{sid}/json"):
        assert (await outsider.get(path)).status_code == 404, path
    for path in (f"/admin/suggestions/{sid}/accept", f"/admin/suggestions/{sid}/dismiss"):
        assert (await outsider.post(path, {"note": "mine now"})).status_code == 404, path
    headers = {"x-csrftoken": outsider.csrf, "content-type": "application/json"}
    for path in (f"/api/admin/suggestions/{sid}/accept", f"/api/admin/suggestions/{sid}/dismiss"):
        response = await outsider.http.post(path, content=b'{"note": "mine now"}', headers=headers)
        assert response.status_code == 404, path
    assert (await outsider.get("/api/admin/suggestions")).json()["suggestions"] == []
    assert "No suggestion yet." in (await outsider.get("/admin/suggestions")).text
    assert (await _suggestions(world))[0]["status"] == row["status"]
    await outsider.aclose()
