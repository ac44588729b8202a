"""Revisions of content items (A7, issue 9): edit by hand or regenerate with an instruction. A revision of an
approved item is a new DRAFT for the same slot; the approved row never changes and stays published until the
revision is approved and a new version is published. Hand edits are validated like the model's output and
record their editor instead of a model."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import msgspec
import pytest

from app.audit.tables import AuditLog
from app.authoring.schemas import Quiz
from app.authoring.tables import ContentItem
from app.publishing.schemas import CoursePackage
from app.publishing.tables import CoursePackageRow
from tests.authoring.helpers import generated_content, item_row, wait_for_item
from tests.publishing.helpers import published_course


@pytest.fixture(scope="module", autouse=True)
async def queues():
    # Wake-ups sent from this process go to the live server's queue.
    from app.queue import close_queue, connect_queues

    await connect_queues()
    yield
    await close_queue()


class _FormFields(HTMLParser):
    """The values a browser would submit for the edit form: inputs, checked radios/boxes, textareas, selects."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and name != "_csrf_token":
            if a.get("type") in ("radio", "checkbox"):
                if "checked" in a:
                    self.values[name] = a.get("value", "on")
            else:
                self.values[name] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            # The HTML parser hands over the text after the newline a browser drops after <textarea>.
            self.values[self._textarea] += data


def form_of(html: str) -> dict[str, str]:
    form = html.split('class="edit-form"', 1)[1].split("</form>", 1)[0]
    parser = _FormFields()
    parser.feed("<form " + form)
    return {name: value.removeprefix("\n") for name, value in parser.values.items()}


async def _slot(syllabus: dict, kind: str, module: int = 1, lesson: int | None = 1) -> list[dict]:
    query = ContentItem.select().where((ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.kind == kind)
                                       & (ContentItem.module_index == module))
    query = query.where(ContentItem.lesson_index.is_null() if lesson is None else ContentItem.lesson_index == lesson)
    return await query.order_by(ContentItem.created_at)


async def _edit_form(client, item: dict) -> dict[str, str]:
    page = await client.get(f"/admin/items/{item['id']}/edit")
    assert page.status_code == 200, page.text[:500]
    return form_of(page.text)


def _new_id(response) -> str:
    assert response.status_code == 303, response.text[:2000]
    match = re.fullmatch(r"/admin/items/([0-9a-f-]{36})", response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


NEW_OVERVIEW = ("Rewritten by hand: this lesson now opens with a **worked example** of a merge conflict, "
                "resolved step by step in GitHub Desktop.")


async def test_it_revises_an_approved_lesson_by_hand_and_publishes_it_as_the_next_version(client, personas):
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    [lesson] = await _slot(syllabus, "LESSON")
    [quiz] = await _slot(syllabus, "QUIZ")
    fields = await _edit_form(client, lesson)
    assert fields["title"] == lesson["title"] and fields["level"] == "beginner"
    assert fields["concepts-0-title"] and "concepts-0-remove" not in fields  # prefilled, nothing ticked

    # The form as it was is no revision at all.
    unchanged = await client.post(f"/admin/items/{lesson['id']}/edit", fields)
    assert unchanged.status_code == 400 and "Nothing changed" in unchanged.text

    fields["overview"] = NEW_OVERVIEW
    fields["key_takeaways"] += "\nResolve conflicts early, in small steps"
    new_id = _new_id(await client.post(f"/admin/items/{lesson['id']}/edit", fields))
    new = await ContentItem.select().where(ContentItem.id == new_id).first()
    assert (new["status"], new["supersedes_id"], new["created_by"], new["run_id"]) == (
        "DRAFT", lesson["id"], personas.admin.user_id, None)
    assert (new["kind"], new["module_index"], new["lesson_index"], new["title"]) == (
        "LESSON", 1, 1, lesson["title"])
    content = msgspec.json.decode(new["content"])
    assert content["explanation"]["overview"] == NEW_OVERVIEW
    assert content["key_takeaways"][-1] == "Resolve conflicts early, in small steps"
    generation = msgspec.json.decode(new["generation"])
    assert generation["edited_by_hand"] is True and generation["editor_email"] == personas.admin.email
    assert generation["editor_id"] == str(personas.admin.user_id)
    assert (generation["source_item_id"], generation["source_hash"]) == (str(lesson["id"]), lesson["content_hash"])
    assert "model" not in generation
    # The approved lesson, and its quiz, are exactly as they were.
    assert await item_row(lesson) == lesson and await item_row(quiz) == quiz
    entry = await AuditLog.select().where((AuditLog.action == "CONTENT_EDITED_BY_HAND")
                                          & (AuditLog.entity_id == str(lesson["id"]))).first()
    metadata = msgspec.json.decode(entry["metadata"]) if isinstance(entry["metadata"], str) else entry["metadata"]
    assert metadata["new_item_id"] == new_id and metadata["revision_of_approved"] is True

    page = await client.get(f"/admin/items/{new_id}")
    assert f"Edited by hand by {personas.admin.email}" in page.text and "worked example" in page.text

    # One open revision per slot: the approved lesson now points to it instead of offering a second one.
    panel = await client.get(f"/admin/items/{lesson['id']}/new-revision", headers={"HX-Request": "true"})
    assert "A newer revision is in review" in panel.text and f"/admin/items/{new_id}" in panel.text
    fields["overview"] = NEW_OVERVIEW + " Twice."
    again = await client.post(f"/admin/items/{lesson['id']}/edit", fields)
    assert again.status_code == 409 and f'href="/admin/items/{new_id}"' in again.text
    regenerate = await client.post(f"/admin/items/{lesson['id']}/regenerate", {"instruction": "Shorter"})
    assert regenerate.status_code == 409 and f"/admin/items/{new_id}" in regenerate.text
    assert len(await _slot(syllabus, "LESSON")) == 2

    # Approve the revision and publish: version 2 carries the edit, the quiz is still the approved one.
    assert (await client.post(f"/admin/items/{new_id}/approve", {"note": ""})).status_code == 303
    assert (await client.post(f"/admin/syllabi/{syllabus['id']}/publish")).status_code == 303
    v2 = await CoursePackageRow.select().where((CoursePackageRow.syllabus_id == syllabus["id"])
                                                & (CoursePackageRow.version == 2)).first()
    document = msgspec.json.decode(v2["document"], type=CoursePackage)
    first = document.modules[0].lessons[0]
    assert first.lesson.explanation.overview == NEW_OVERVIEW
    assert first.quiz == msgspec.json.decode(quiz["content"], type=Quiz)
    provenance = next(p for p in document.provenance.items if p.item_id == new_id)
    assert provenance.prompt_version == "edited-by-hand"
    assert (await item_row(lesson))["status"] == "APPROVED"
    assert package["version"] == 1


async def test_it_refuses_invalid_hand_edits_field_by_field_and_keeps_the_input(client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    [lesson] = await _slot(syllabus, "LESSON")
    [quiz] = await _slot(syllabus, "QUIZ")
    before = await ContentItem.count().where(ContentItem.syllabus_id == syllabus["id"])
    good = await _edit_form(client, lesson)

    cases = [
        ({"overview": "Too short, but kept."}, "f-overview", "Overview: must be at least 50 characters long"),
        ({"duration_minutes": "abc"}, "f-duration_minutes", "Duration (minutes): must be a whole number"),
        ({"objectives": "  \n "}, "f-objectives", "Objectives: needs at least 1 entry"),
        ({"concepts-0-explanation": "Short."}, "f-concepts-0-explanation",
         "Concept 1 › explanation: must be at least 50 characters long"),
        ({"title": "Bad\x00title"}, "f-title", "Title: must not contain control characters"),
    ]
    for change, anchor, message in cases:
        response = await client.post(f"/admin/items/{lesson['id']}/edit", {**good, **change})
        assert response.status_code == 400, (change, response.text[:300])
        assert message in response.text, (change, re.findall(r'class="field-error">([^<]*)', response.text))
        assert 'role="alert"' in response.text and f'href="#{anchor}"' in response.text
        assert f'id="{anchor}"' in response.text and 'aria-invalid="true"' in response.text
        kept = form_of(response.text)
        for name, value in change.items():
            if "\x00" not in value:
                assert kept[name] == value, name
        assert kept["practice_prompt"] == good["practice_prompt"]

    # A removed concept shifts the rows: the message still names the row as shown on the form.
    removed = {**good, "concepts-0-remove": "1", "concepts-1-title": "ab"}
    response = await client.post(f"/admin/items/{lesson['id']}/edit", removed)
    assert response.status_code == 400 and "Concept 2 › title: must be at least 3 characters long" in response.text
    assert form_of(response.text)["concepts-0-remove"] == "1"

    quiz_form = await _edit_form(client, quiz)
    assert quiz_form["questions-0-correct_index"] in "0123"
    quiz_cases = [
        ({"questions-1-options-3": ""}, "f-questions-1-options-3", "Question 2 › option 4: is required"),
        ({"questions-0-correct_index": "7"}, "f-questions-0-correct_index",
         "Question 1 › correct answer: must be at most 3"),
        ({"questions-2-options-1": quiz_form["questions-2-options-0"]}, "f-questions-2",
         "the four options must be different"),
        ({"questions-4-remove": "1"}, "f-questions", "expected exactly 5"),
    ]
    for change, anchor, message in quiz_cases:
        response = await client.post(f"/admin/items/{quiz['id']}/edit", {**quiz_form, **change})
        assert response.status_code == 400, (change, response.text[:300])
        assert message in response.text, (change, re.findall(r'class="field-error"[^>]*>([^<]*)', response.text))
        assert f'href="#{anchor}"' in response.text and f'id="{anchor}"' in response.text
        kept = form_of(response.text)
        # (An answer "7" has no radio button to show it on: none is checked.)
        assert all(kept.get(name) == (None if value == "7" else value) for name, value in change.items()), change
    without_answer = {name: value for name, value in quiz_form.items() if name != "questions-3-correct_index"}
    response = await client.post(f"/admin/items/{quiz['id']}/edit", without_answer)
    assert response.status_code == 400 and "Question 4 › correct answer: choose the correct answer" in response.text

    assert await ContentItem.count().where(ContentItem.syllabus_id == syllabus["id"]) == before
    assert await item_row(lesson) == lesson and await item_row(quiz) == quiz


async def test_it_regenerates_an_approved_quiz_with_an_instruction_as_a_new_revision(client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    [lesson] = await _slot(syllabus, "LESSON")
    [quiz] = await _slot(syllabus, "QUIZ")
    refused = await client.post(f"/admin/items/{quiz['id']}/regenerate", {"instruction": ""})
    assert refused.status_code == 400 and "instruction" in refused.text
    page = await client.get(f"/admin/items/{quiz['id']}")
    assert 'id="new-revision"' in page.text and "Regenerate with an instruction" in page.text

    instruction = "Ask about rebasing with a pelican-themed repository"
    new_id = _new_id(await client.post(f"/admin/items/{quiz['id']}/regenerate", {"instruction": instruction}))
    new = await wait_for_item({"id": new_id}, "DRAFT", "FAILED")
    assert (new["status"], new["supersedes_id"], new["instruction"]) == ("DRAFT", quiz["id"], instruction)
    assert new["content_hash"] != quiz["content_hash"]
    assert "pelican" not in new["content"].lower() and "rebasing" not in new["content"].lower()
    assert await item_row(quiz) == quiz and await item_row(lesson) == lesson
    assert len(await _slot(syllabus, "LESSON")) == 1
    entry = await AuditLog.select().where((AuditLog.action == "CONTENT_REGENERATION_REQUESTED")
                                          & (AuditLog.entity_id == str(quiz["id"]))).first()
    metadata = msgspec.json.decode(entry["metadata"]) if isinstance(entry["metadata"], str) else entry["metadata"]
    assert metadata["revision_of_approved"] is True and metadata["new_item_id"] == new_id
    page = await client.get(f"/admin/items/{new_id}")
    assert instruction in page.text  # admins see what was asked; learners never do


async def test_a_hand_edited_rejected_lesson_lets_its_waiting_quiz_be_generated(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    [lesson] = await _slot(syllabus, "LESSON")
    [quiz] = await _slot(syllabus, "QUIZ")
    fields = await _edit_form(client, lesson)
    assert (await client.post(f"/admin/items/{lesson['id']}/reject", {"reason": "Too dry"})).status_code == 303
    assert (await client.post(f"/admin/items/{quiz['id']}/regenerate", {"instruction": ""})).status_code == 303
    [_old_quiz, new_quiz] = await _slot(syllabus, "QUIZ")
    assert (await wait_for_item(new_quiz, "BLOCKED"))["waiting_for"] == "lesson 1.1"

    fields["overview"] = NEW_OVERVIEW
    new_id = _new_id(await client.post(f"/admin/items/{lesson['id']}/edit", fields))
    assert (await item_row(lesson))["status"] == "SUPERSEDED"
    assert (await ContentItem.select().where(ContentItem.id == new_id).first())["status"] == "DRAFT"
    done = await wait_for_item(new_quiz, "DRAFT")
    assert done["waiting_for"] is None


async def test_the_preview_renders_the_form_through_the_learner_templates_and_the_sanitizer(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    [lesson] = await _slot(syllabus, "LESSON")
    fields = await _edit_form(client, lesson)
    fields["overview"] = "A **bold** start <script>alert('x')</script> and <img src=x onerror=alert(1)> more text here."
    fields["concepts-0-title"] = "<b>Typed</b> title"
    before = await ContentItem.count().where(ContentItem.syllabus_id == syllabus["id"])
    response = await client.post(f"/admin/items/{lesson['id']}/preview", fields, htmx=True)
    assert response.status_code == 200
    assert "<strong>bold</strong>" in response.text and "&lt;script&gt;" in response.text
    assert "<script>alert" not in response.text and "<img" not in response.text
    assert "&lt;b&gt;Typed&lt;/b&gt; title" in response.text
    assert 'class="lesson reading"' in response.text and "<html" not in response.text  # the pane only
    # Without htmx it is the whole edit page, the preview filled in and the input kept.
    fields["duration_minutes"] = "abc"
    page = await client.post(f"/admin/items/{lesson['id']}/preview", fields)
    assert page.status_code == 200 and "<html" in page.text and "<strong>bold</strong>" in page.text
    assert "Not valid yet" in page.text and form_of(page.text)["duration_minutes"] == "abc"
    assert await ContentItem.count().where(ContentItem.syllabus_id == syllabus["id"]) == before


async def test_revision_routes_answer_404_to_another_workspace(client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    [lesson] = await _slot(syllabus, "LESSON")
    fields = await _edit_form(client, lesson)
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    base = f"/admin/items/{lesson['id']}"
    assert (await outsider.get(f"{base}/edit")).status_code == 404
    assert (await outsider.get(f"{base}/new-revision")).status_code == 404
    for path in (f"{base}/edit", f"{base}/preview", f"{base}/regenerate"):
        assert (await outsider.post(path, {**fields, "overview": NEW_OVERVIEW, "instruction": "x"})).status_code == 404
    assert len(await _slot(syllabus, "LESSON")) == 1 and await item_row(lesson) == lesson
