"""The AI spot-check log (SPEC O3): create (prefilled from the traffic report), edit, delete with a
confirmation, inline errors with the input kept, audit rows, the Markdown export, and other workspaces."""

from __future__ import annotations

import datetime as dt

import pytest

from app.audit.tables import AuditLog
from app.quality.spot_checks import markdown_cell
from app.quality.tables import SpotCheck
from tests.conftest import Client
from tests.publishing.helpers import published_course

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture
async def course(personas, client):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    return syllabus


def _form(course, **changes) -> dict:
    return {"checked_on": str(TODAY), "course_id": str(course["course_id"]), "module_index": "1", "traffic": "12",
            "checked": "Lesson 1 hint | solution", "observed": "Gave the answer\nat once", "follow_up": "none",
            **changes}


async def _actions(tenant_id) -> list[str]:
    rows = await AuditLog.select(AuditLog.action).where(
        (AuditLog.tenant_id == tenant_id) & (AuditLog.entity_type == "ai_spot_check")).order_by(AuditLog.id)
    return [r["action"] for r in rows]


async def test_it_logs_edits_and_deletes_a_spot_check(personas, client, course):
    prefilled = await client.get(f"/admin/quality/spot-checks?course={course['course_id']}&module=1&sessions=12")
    assert prefilled.status_code == 200 and 'name="traffic" min="0" value="12"' in prefilled.text
    created = await client.post("/admin/quality/spot-checks", _form(course))
    assert created.status_code == 303 and created.headers["location"] == "/admin/quality/spot-checks"
    [row] = await SpotCheck.select().where(SpotCheck.tenant_id == personas.acme["id"])
    assert (row["checked_on"], row["course_id"], row["module_index"], row["traffic"], row["observed"]) == (
        TODAY, course["course_id"], 1, 12, "Gave the answer\nat once")
    assert row["created_by"] == personas.admin.user_id
    assert (await client.get(f"/admin/quality/spot-checks/{row['id']}/edit")).status_code == 200
    edited = await client.post(f"/admin/quality/spot-checks/{row['id']}", _form(course, module_index="",
                                                                                follow_up="Prompt v3"))
    assert edited.status_code == 303
    row = await SpotCheck.select().where(SpotCheck.id == row["id"]).first()
    assert row["module_index"] is None and row["follow_up"] == "Prompt v3"
    confirm = await client.get(f"/admin/quality/spot-checks/{row['id']}/delete")
    assert confirm.status_code == 200 and "Delete spot check" in confirm.text
    assert await SpotCheck.count().where(SpotCheck.id == row["id"]) == 1  # asking deletes nothing
    deleted = await client.post(f"/admin/quality/spot-checks/{row['id']}/delete")
    assert deleted.status_code == 303
    assert await SpotCheck.count().where(SpotCheck.id == row["id"]) == 0
    assert await _actions(personas.acme["id"]) == ["SPOT_CHECK_LOGGED", "SPOT_CHECK_UPDATED", "SPOT_CHECK_DELETED"]


@pytest.mark.parametrize(("changes", "words"), [
    ({"checked_on": ""}, "Say on which day"),
    ({"checked_on": str(TODAY + dt.timedelta(days=1))}, "cannot be in the future"),
    ({"checked_on": "yesterday"}, "a date like"),
    ({"course_id": "not-a-course"}, "published courses"),
    ({"module_index": "99"}, "Choose a module of this course"),
    ({"traffic": "-3"}, "whole number"),
    ({"checked": "  "}, "What was checked is required"),
    ({"observed": "x" * 4001}, "at most 4000 characters"),
    ({"follow_up": ""}, "The follow-up is required"),
])
async def test_it_refuses_bad_input_inline_and_keeps_what_was_typed(personas, client, course, changes, words):
    response = await client.post("/admin/quality/spot-checks", _form(course, **changes))
    assert response.status_code == 400
    assert words in response.text
    kept = "Gave the answer" if "checked" in changes else "Lesson 1 hint | solution"
    assert kept in response.text  # the typed text is kept
    assert await SpotCheck.count().where(SpotCheck.tenant_id == personas.acme["id"]) == 0


async def test_it_exports_the_log_as_markdown_with_cells_escaped(personas, client, course):
    assert (await client.post("/admin/quality/spot-checks", _form(course))).status_code == 303
    response = await client.get("/admin/quality/spot-checks.md")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.headers["content-disposition"].startswith('attachment; filename="ai-spot-check-log-')
    lines = response.text.splitlines()
    assert lines[2] == "| Date | Course / module | Traffic (sessions) | Checked | Observed | Follow-up |"
    assert lines[4].startswith(f"| {TODAY} | ") and lines[4].endswith(
        "| 12 | Lesson 1 hint \\| solution | Gave the answer<br>at once | none |")
    assert len(lines) == 5
    assert markdown_cell("a|b\r\nc\\") == "a\\|b<br>c\\\\"


async def test_it_answers_404_to_another_workspace(personas, client, course, live_server):
    assert (await client.post("/admin/quality/spot-checks", _form(course))).status_code == 303
    row = await SpotCheck.select().where(SpotCheck.tenant_id == personas.acme["id"]).first()
    outsider = Client(live_server.url)
    await outsider.login(personas.outsider.email)
    try:
        assert (await outsider.get(f"/admin/quality/spot-checks/{row['id']}/edit")).status_code == 404
        assert (await outsider.get(f"/admin/quality/spot-checks/{row['id']}/delete")).status_code == 404
        assert (await outsider.post(f"/admin/quality/spot-checks/{row['id']}", _form(course))).status_code == 404
        assert (await outsider.post(f"/admin/quality/spot-checks/{row['id']}/delete")).status_code == 404
        # Another workspace cannot log a check about Acme's course, and does not see Acme's log.
        assert (await outsider.post("/admin/quality/spot-checks", _form(course))).status_code == 400
        assert "Lesson 1 hint" not in (await outsider.get("/admin/quality/spot-checks.md")).text
        assert "Lesson 1 hint" not in (await outsider.get("/admin/quality/spot-checks")).text
    finally:
        await outsider.aclose()
    assert await SpotCheck.count().where(SpotCheck.id == row["id"]) == 1
    assert await SpotCheck.count().where(SpotCheck.tenant_id == personas.globex["id"]) == 0
