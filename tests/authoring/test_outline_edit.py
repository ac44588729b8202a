"""Hand edits of a draft syllabus outline (issue 9 item 1), the revision compare (item 5) and the syllabus
page's small things (item 9), over HTTP against the real server; the database is checked after each POST.

The form is read from the edit page itself (every field in document order, as a browser submits it), so
these tests also hold the page and the form parser to the same layout."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser

import msgspec

from app.audit.tables import AuditLog
from app.authoring.schemas import Syllabus as SyllabusDoc
from app.authoring.tables import ContentItem, GenerationRun, Syllabus
from tests.authoring.helpers import draft_syllabus, run_id_from, wait_for_run


class _Form(HTMLParser):
    """The outline form's fields as a browser would send them: (name, value) in document order; unchecked
    checkboxes and buttons left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[list[str]] = []
        self.checkboxes: list[tuple[str, str]] = []  # every checkbox, to tick
        self._textarea: list[str] | None = None
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form" and a.get("class") == "outline-form":
            self._in_form = True
        if not self._in_form or "name" not in a:
            return
        if tag == "input" and a.get("type") == "checkbox":
            self.checkboxes.append((a["name"], a["value"]))
            if "checked" in a:
                self.fields.append([a["name"], a["value"]])
        elif tag == "input":
            self.fields.append([a["name"], a.get("value", "")])
        elif tag == "textarea":
            self._textarea = [a["name"], ""]
            self.fields.append(self._textarea)

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._in_form = False


class OutlineForm:
    def __init__(self, html: str) -> None:
        parser = _Form()
        parser.feed(html)
        self.fields = parser.fields

    def _row(self, key_field: str, key: str) -> int:
        return next(i for i, (name, value) in enumerate(self.fields) if name == key_field and value == key)

    def set(self, row_key: str, name: str, value: str) -> None:
        """Type `value` into field `name` ("lesson_title") of the row whose key is `row_key`."""
        kind = name.split("_")[0]
        start = self._row(f"{kind}_key", row_key)
        index = next(i for i in range(start, len(self.fields)) if self.fields[i][0] == name)
        self.fields[index][1] = value

    def get(self, row_key: str, name: str) -> str:
        kind = name.split("_")[0]
        start = self._row(f"{kind}_key", row_key)
        return next(value for field, value in self.fields[start:] if field == name)

    def tick(self, name: str, key: str) -> None:
        self.fields.append([name, key])

    def data(self) -> dict[str, list[str]]:
        sent: dict[str, list[str]] = {}
        for name, value in self.fields:
            sent.setdefault(name, []).append(value)
        return sent


async def edit_form(client, syllabus_id) -> OutlineForm:
    page = await client.get(f"/admin/syllabi/{syllabus_id}/edit")
    assert page.status_code == 200, page.text[:300]
    return OutlineForm(page.text)


def document(row: dict) -> SyllabusDoc:
    return msgspec.json.decode(row["content"], type=SyllabusDoc)


async def syllabus_row(syllabus_id) -> dict:
    return await Syllabus.select().where(Syllabus.id == syllabus_id).first()


NEW_LESSON = {
    "lesson_title": "Undoing a change you regret",
    "lesson_objectives": "Revert a commit from the history\nExplain what a revert keeps",
    "lesson_minutes": "20",
    "lesson_hooks": "Revert a broken mock-up in the practice repository",
}


async def test_it_saves_a_renamed_reordered_extended_and_trimmed_outline_as_a_new_draft(client, personas):
    await client.login(personas.admin.email)
    draft = await draft_syllabus(client)
    before = document(draft)
    assert len(before.modules) >= 2 and len(before.modules[0].lessons) >= 2
    form = await edit_form(client, draft["id"])
    form.set("m1l1", "lesson_title", "Why designers keep versions")  # rename
    form.set("m1", "module_position", "2")  # move module 1 after module 2
    form.set("m2", "module_position", "1")
    for name, value in NEW_LESSON.items():  # add: the empty lesson row of module 1
        form.set("m1x1", name, value)
    form.tick("remove_lesson", "m1l2")  # remove
    response = await client.post(f"/admin/syllabi/{draft['id']}/edit", form.data())

    assert response.status_code == 303, response.text[:500]
    new_id = re.fullmatch(r"/admin/syllabi/([0-9a-f-]{36})#changes", response.headers["location"]).group(1)
    new, old = await syllabus_row(new_id), await syllabus_row(draft["id"])
    assert (new["status"], new["revision"], new["supersedes_id"]) == ("DRAFT", draft["revision"] + 1, draft["id"])
    assert new["created_by"] == personas.admin.user_id and new["run_id"] is None and new["instruction"] is None
    assert old["status"] == "SUPERSEDED"
    provenance = msgspec.json.decode(new["generation"])
    assert provenance["edited_by_hand"] is True and provenance["editor_id"] == str(personas.admin.user_id)
    assert provenance["editor_email"] == personas.admin.email and "model" not in provenance
    assert (provenance["source_syllabus_id"], provenance["source_revision"]) == (str(draft["id"]), draft["revision"])

    after = document(new)
    assert [m.title for m in after.modules[:2]] == [before.modules[1].title, before.modules[0].title]
    assert [m.index for m in after.modules] == list(range(1, len(before.modules) + 1))  # renumbered
    moved = after.modules[1]
    kept = [lesson.title for lesson in before.modules[0].lessons]
    expected = ["Why designers keep versions", *kept[2:], NEW_LESSON["lesson_title"]]
    assert [lesson.title for lesson in moved.lessons] == expected
    assert [lesson.index for lesson in moved.lessons] == list(range(1, len(expected) + 1))
    added = moved.lessons[-1]
    assert added.objectives == ["Revert a commit from the history", "Explain what a revert keeps"]
    assert (added.estimated_minutes, added.prerequisites) == (20, [])
    assert after.course == before.course and after.modules[2:] == before.modules[2:]

    entry = await AuditLog.select().where((AuditLog.action == "SYLLABUS_EDITED_BY_HAND")
                                          & (AuditLog.entity_id == str(draft["id"]))).first()
    assert entry["actor_id"] == personas.admin.user_id
    metadata = msgspec.json.decode(entry["metadata"]) if isinstance(entry["metadata"], str) else entry["metadata"]
    assert metadata["new_syllabus_id"] == new_id and "1 lesson added" in metadata["changes"]

    # The new revision's page says who wrote it and loads what changed; the compare page shows it.
    page = await client.get(f"/admin/syllabi/{new_id}")
    assert "Edited by hand by " + personas.admin.email in page.text
    assert f'hx-get="/admin/syllabi/{new_id}/compare"' in page.text
    compare = await client.get(f"/admin/syllabi/{new_id}/compare")
    assert compare.status_code == 200
    text = compare.text
    assert f"Revision {draft['revision']} → revision {new['revision']}" in text
    for words in ("1 lesson renamed", "1 lesson added", "1 lesson removed", "1 module moved"):
        assert words in text, words
    assert "<ins>" in text and "<del>" in text
    partial = await client.get(f"/admin/syllabi/{new_id}/compare", headers={"HX-Request": "true"})
    assert "<html" not in partial.text and "1 lesson renamed" in partial.text


async def test_it_refuses_an_invalid_outline_beside_its_fields_and_keeps_what_was_typed(client, personas):
    await client.login(personas.admin.email)
    draft = await draft_syllabus(client)
    before = await Syllabus.count().where(Syllabus.course_id == draft["course_id"])
    form = await edit_form(client, draft["id"])
    form.set("m1", "module_title", "A module title typed but not saved")
    form.set("m1l1", "lesson_title", "")  # empty lesson title
    form.set("m1l2", "lesson_minutes", "abc")  # minutes that are not a number
    second = document(draft).modules[1]
    for n in range(1, len(second.lessons) + 1):  # a module left with no lessons
        form.tick("remove_lesson", f"m2l{n}")
    response = await client.post(f"/admin/syllabi/{draft['id']}/edit", form.data())

    assert response.status_code == 400
    html = response.text
    assert 'role="alert"' in html and "Nothing was saved yet: 3 things to fix." in html
    assert "Module 1, lesson 1 › Title: must be at least 5 characters long" in html
    assert "Module 1, lesson 2 › Minutes: must be a whole number of minutes" in html
    assert "Module 2 › Lessons: needs at least one lesson" in html
    # Each message sits beside its field, which is marked invalid and points at it.
    assert re.search(r'id="lesson-m1l1-title"[^>]*aria-invalid="true" aria-describedby="lesson-m1l1-title-error"', html)
    assert '<small class="field-error" id="lesson-m1l2-minutes-error">must be a whole number of minutes</small>' in html
    assert 'id="module-m2-lessons"' in html
    # Everything typed is still there, ticks included.
    again = OutlineForm(html)
    assert again.get("m1", "module_title") == "A module title typed but not saved"
    assert again.get("m1l2", "lesson_minutes") == "abc" and again.get("m1l1", "lesson_title") == ""
    assert ["remove_lesson", "m2l1"] in again.fields
    assert await Syllabus.count().where(Syllabus.course_id == draft["course_id"]) == before
    assert (await syllabus_row(draft["id"]))["status"] == "DRAFT"


async def test_it_adds_empty_rows_without_saving_and_saves_nothing_unchanged(client, personas):
    await client.login(personas.admin.email)
    draft = await draft_syllabus(client)
    form = await edit_form(client, draft["id"])
    form.set("m1l1", "lesson_title", "Typed before adding a row")
    more = await client.post(f"/admin/syllabi/{draft['id']}/edit", {**form.data(), "add": "lesson:m1"})
    assert more.status_code == 200
    again = OutlineForm(more.text)
    assert again.get("m1l1", "lesson_title") == "Typed before adding a row"
    new_rows = [value for name, value in again.fields if name == "lesson_key" and value.startswith("m1x")]
    assert new_rows == ["m1x1", "m1x2"]
    modules = await client.post(f"/admin/syllabi/{draft['id']}/edit", {**form.data(), "add": "module"})
    assert OutlineForm(modules.text).data()["module_key"][-2:] == ["x1", "x2"]
    assert await Syllabus.count().where(Syllabus.course_id == draft["course_id"]) == 1

    unchanged = await client.post(f"/admin/syllabi/{draft['id']}/edit", (await edit_form(client, draft["id"])).data())
    assert unchanged.status_code == 303 and unchanged.headers["location"] == f"/admin/syllabi/{draft['id']}"
    assert await Syllabus.count().where(Syllabus.course_id == draft["course_id"]) == 1
    assert (await syllabus_row(draft["id"]))["status"] == "DRAFT"


async def test_it_refuses_to_edit_an_approved_syllabus(client, personas):
    await client.login(personas.admin.email)
    draft = await draft_syllabus(client)
    form = await edit_form(client, draft["id"])
    assert (await client.post(f"/admin/syllabi/{draft['id']}/approve", {"note": ""})).status_code == 303
    page = await client.get(f"/admin/syllabi/{draft['id']}")
    assert f"/admin/syllabi/{draft['id']}/edit" not in page.text  # no hand edit offered
    refused = await client.get(f"/admin/syllabi/{draft['id']}/edit")
    assert refused.status_code == 409 and "approved, so its outline can no longer change" in refused.text
    form.set("m1l1", "lesson_title", "Too late for this rename")
    posted = await client.post(f"/admin/syllabi/{draft['id']}/edit", form.data())
    assert posted.status_code == 409 and "can no longer change" in posted.text
    assert "Too late for this rename" in posted.text  # the form comes back with what was typed
    assert await Syllabus.count().where(Syllabus.course_id == draft["course_id"]) == 1
    assert (await syllabus_row(draft["id"]))["status"] == "APPROVED"


async def test_it_hides_outlines_from_other_workspaces(client, client_factory, personas):
    await client.login(personas.admin.email)
    draft = await draft_syllabus(client)
    form = await edit_form(client, draft["id"])
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    assert (await outsider.get(f"/admin/syllabi/{draft['id']}/edit")).status_code == 404
    for extra in ({}, {"add": "module"}):
        assert (await outsider.post(f"/admin/syllabi/{draft['id']}/edit", {**form.data(), **extra})).status_code == 404
    assert (await outsider.get(f"/admin/syllabi/{draft['id']}/compare")).status_code == 404
    assert (await client.get(f"/admin/syllabi/{draft['id']}/compare?with=not-a-uuid")).status_code == 400
    assert await Syllabus.count().where(Syllabus.course_id == draft["course_id"]) == 1
    assert (await syllabus_row(draft["id"]))["status"] == "DRAFT"


async def test_it_approves_an_edited_revision_and_generates_content_from_it(client, personas):
    await client.login(personas.admin.email)
    draft = await draft_syllabus(client)
    form = await edit_form(client, draft["id"])
    for name, value in NEW_LESSON.items():
        form.set("m1x1", name, value)
    form.set("m1l1", "lesson_title", "Why designers keep versions")
    saved = await client.post(f"/admin/syllabi/{draft['id']}/edit", form.data())
    new_id = saved.headers["location"].split("/")[3].split("#")[0]
    page = await client.get(f"/admin/syllabi/{new_id}")
    assert 'data-confirm="Approve revision 2 of this syllabus? This cannot be undone' in page.text
    assert (await client.post(f"/admin/syllabi/{new_id}/approve", {"note": "edited by hand"})).status_code == 303
    assert (await syllabus_row(new_id))["status"] == "APPROVED"
    run = await wait_for_run(run_id_from(await client.post(f"/admin/syllabi/{new_id}/content")), timeout=60)
    assert run["status"] == "SUCCEEDED", run["error"]
    lessons = await ContentItem.select(ContentItem.title, ContentItem.module_index, ContentItem.lesson_index).where(
        (ContentItem.syllabus_id == new_id) & (ContentItem.kind == "LESSON")).order_by(ContentItem.lesson_index)
    module_1 = [row["title"] for row in lessons if row["module_index"] == 1]
    assert module_1[0] == "Why designers keep versions" and module_1[-1] == NEW_LESSON["lesson_title"]
    assert len(lessons) == sum(len(m.lessons) for m in document(await syllabus_row(new_id)).modules)


async def test_it_says_when_the_draft_is_ready_and_stops_polling(client, personas):
    await client.login(personas.admin.email)
    response = await client.post("/admin/courses", {
        "title": "Practical Git for Designers", "audience": "product designers", "level": "beginner",
        "time_budget_hours": "3", "teaching_style": "practical"})
    run = await wait_for_run(run_id_from(response))
    partial = await client.get(f"/admin/runs/{run['id']}", headers={"HX-Request": "true"})
    assert "<h1>The syllabus draft is ready</h1>" in partial.text and "hx-trigger" not in partial.text
    assert f'<a href="/admin/syllabi/{run["syllabus_id"]}">review the draft</a>' in partial.text
    page = await client.get(f"/admin/runs/{run['id']}")
    assert page.text.count("<h1>") == 1 and "The syllabus draft is ready" in page.text


async def test_it_edits_a_rejected_draft_but_not_while_a_redraft_runs(client, personas):
    await client.login(personas.admin.email)
    draft = await draft_syllabus(client)
    assert (await client.post(f"/admin/syllabi/{draft['id']}/reject", {"reason": "Too shallow"})).status_code == 303
    form = await edit_form(client, draft["id"])
    form.set("m1l1", "lesson_title", "Why designers keep versions")
    saved = await client.post(f"/admin/syllabi/{draft['id']}/edit", form.data())
    assert saved.status_code == 303
    new_id = saved.headers["location"].split("/")[3].split("#")[0]
    assert (await syllabus_row(draft["id"]))["status"] == "SUPERSEDED"
    assert (await syllabus_row(new_id))["status"] == "DRAFT"

    # A redraft being written would replace a hand edit: editing waits for it.
    running = (await GenerationRun.insert(GenerationRun(
        tenant_id=personas.acme["id"], course_id=draft["course_id"], kind="SYLLABUS", status="RUNNING", total=1,
        source_id=new_id)).returning(GenerationRun.id))[0]
    refused = await client.get(f"/admin/syllabi/{new_id}/edit")
    assert refused.status_code == 409 and "being written" in refused.text
    await GenerationRun.update({GenerationRun.status: "FAILED"}).where(GenerationRun.id == running["id"])
    assert (await client.get(f"/admin/syllabi/{new_id}/edit")).status_code == 200


async def test_it_lets_one_of_two_simultaneous_edits_win(client, client_factory, personas):
    await client.login(personas.admin.email)
    draft = await draft_syllabus(client)
    other = client_factory()
    await other.login(personas.admin.email)
    first, second = await edit_form(client, draft["id"]), await edit_form(other, draft["id"])
    first.set("m1l1", "lesson_title", "Why designers keep versions")
    second.set("m1l1", "lesson_title", "Versions for designers, explained")
    responses = await asyncio.gather(client.post(f"/admin/syllabi/{draft['id']}/edit", first.data()),
                                     other.post(f"/admin/syllabi/{draft['id']}/edit", second.data()))
    assert sorted(r.status_code for r in responses) == [303, 409]
    lost = next(r for r in responses if r.status_code == 409)
    assert "changed meanwhile" in lost.text or "newer draft replaced" in lost.text
    rows = await Syllabus.select(Syllabus.revision, Syllabus.status).where(Syllabus.course_id == draft["course_id"])
    assert sorted((r["revision"], r["status"]) for r in rows) == [(1, "SUPERSEDED"), (2, "DRAFT")]
