"""Admin pages for revising a content item by hand: the structured form, its Markdown preview, and the
"New revision" panel of the item page. Regenerating with an instruction posts to the item's regenerate
route (app/authoring/routes.py); both go through the authoring services (app/authoring/revisions.py).

The form is parsed here, field by field, into the document the schema expects: lists of sentences are one
per line, repeating groups (concepts, questions, rubric criteria) are indexed fields (`concepts-0-title`)
with a remove box and one blank row to add to. The service validates; its messages name JSON paths of the
document, which `EditForm.explain` points back at the form's own fields.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Request, Response, get, post

from app.authoring import revisions, services
from app.authoring.tables import ItemKind
from app.errors import Conflict, InvalidInput
from app.web.auth import actor_of, current_user, requires_admin
from app.web.inputs import explain_validation
from app.web.templating import flash, redirect, render

ADMIN = {"guards": [requires_admin]}
LEVELS = ("beginner", "intermediate", "advanced")
# Per kind: single fields, one-per-line lists, and repeating groups with their fields.
SCALARS = {
    ItemKind.LESSON: ("title", "duration_minutes", "level", "overview", "practice_prompt", "expected_outcome"),
    ItemKind.QUIZ: (),
    ItemKind.PROJECT: ("title", "problem_statement", "estimated_hours"),
}
LISTS = {
    ItemKind.LESSON: ("objectives", "key_takeaways", "prerequisites"),
    ItemKind.QUIZ: (),
    ItemKind.PROJECT: ("constraints", "deliverables"),
}
GROUPS = {
    ItemKind.LESSON: {"concepts": ("title", "explanation", "example")},
    ItemKind.QUIZ: {"questions": ("question", "options-0", "options-1", "options-2", "options-3", "correct_index",
                                  "explanation")},
    ItemKind.PROJECT: {"rubric": ("criterion", "description", "weight")},
}
# Where a lesson's nested document fields sit in the (flat) form.
LESSON_PATHS = {
    ("explanation", "overview"): ["overview"], ("explanation", "concepts"): ["concepts"],
    ("explanation",): ["overview"], ("practice", "prompt"): ["practice_prompt"],
    ("practice", "expected_outcome"): ["expected_outcome"], ("practice",): ["practice_prompt"],
    ("metadata", "level"): ["level"], ("metadata", "prerequisites"): ["prerequisites"], ("metadata",): ["level"],
}
MAX_ROWS = 50  # more rows than any schema allows; higher indexes are ignored
_ROW = re.compile(r"^(concepts|questions|rubric)-(\d{1,3})-")
_PATH = re.compile(r"\.(\w+)|\[(\d+)\]")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass
class EditForm:
    """The edit form's state: every value as typed (text), the rows shown per group, and the problems per field
    (keyed by field name; a group's row or a whole group has a name too: `concepts-1`, `questions-0-options`)."""

    kind: str
    values: dict[str, str] = field(default_factory=dict)
    rows: dict[str, list[int]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def removed(self, group: str, row: int) -> bool:
        return bool(self.values.get(f"{group}-{row}-remove"))

    def blank(self, group: str, row: int) -> bool:
        names = [name for name in GROUPS[self.kind][group] if name != "correct_index"]
        return all(not self.value(f"{group}-{row}-{name}").strip() for name in names)

    def kept(self, group: str) -> list[int]:
        return [row for row in self.rows.get(group, []) if not self.removed(group, row) and not self.blank(group, row)]

    # -- from stored content, and from a submitted form

    @classmethod
    def from_content(cls, kind: str, content: dict[str, Any] | None) -> EditForm:
        form = cls(kind)
        if content is not None:
            form.values = _values_of(kind, content)
            for group in GROUPS[kind]:
                form.rows[group] = sorted({int(m.group(2)) for name in form.values if (m := _ROW.match(name))
                                           and m.group(1) == group})
        form.add_blank_rows()
        return form

    @classmethod
    def from_submission(cls, kind: str, submitted: Any) -> EditForm:
        form = cls(kind, values={name: str(value) for name, value in submitted.items() if not name.startswith("_")})
        for group in GROUPS[kind]:
            form.rows[group] = sorted({int(m.group(2)) for name in form.values
                                       if (m := _ROW.match(name)) and m.group(1) == group
                                       and int(m.group(2)) < MAX_ROWS})
        form.add_blank_rows()
        return form

    def add_blank_rows(self) -> None:
        """One empty row at the end of each group: filling it in adds a concept, question or criterion."""
        for group in GROUPS[self.kind]:
            rows = self.rows.setdefault(group, [])
            if not rows or not self.blank(group, rows[-1]):
                rows.append(rows[-1] + 1 if rows else 0)

    # -- to the document the schema expects

    def data(self) -> dict[str, Any]:
        v = self.value
        if self.kind == ItemKind.LESSON:
            return {
                "title": v("title"), "duration_minutes": v("duration_minutes"), "objectives": _lines(v("objectives")),
                "explanation": {"overview": v("overview"), "concepts": [
                    {"title": v(f"concepts-{i}-title"), "explanation": v(f"concepts-{i}-explanation"),
                     "example": v(f"concepts-{i}-example") or None} for i in self.kept("concepts")]},
                "key_takeaways": _lines(v("key_takeaways")),
                "practice": {"prompt": v("practice_prompt"), "expected_outcome": v("expected_outcome")},
                "metadata": {"level": v("level"), "prerequisites": _lines(v("prerequisites"))},
            }
        if self.kind == ItemKind.QUIZ:
            return {"questions": [
                {"question": v(f"questions-{i}-question"),
                 "options": [v(f"questions-{i}-options-{j}") for j in range(4)],
                 "correct_index": v(f"questions-{i}-correct_index") or None,
                 "explanation": v(f"questions-{i}-explanation")} for i in self.kept("questions")]}
        return {
            "title": v("title"), "problem_statement": v("problem_statement"), "constraints": _lines(v("constraints")),
            "deliverables": _lines(v("deliverables")), "estimated_hours": v("estimated_hours"),
            "rubric": [{"criterion": v(f"rubric-{i}-criterion"), "description": v(f"rubric-{i}-description"),
                        "weight": v(f"rubric-{i}-weight")} for i in self.kept("rubric")],
        }

    def preview(self) -> dict[str, Any]:
        """The document for the preview while it may still be invalid: numbers that are not numbers yet
        become 0, so the learner templates can lay out what was typed."""
        data = self.data()
        if self.kind == ItemKind.LESSON:
            data["duration_minutes"] = _number(data["duration_minutes"], int)
        elif self.kind == ItemKind.QUIZ:
            for question in data["questions"]:
                question["correct_index"] = _number(question["correct_index"] or "", int, -1)
        else:
            data["estimated_hours"] = _number(data["estimated_hours"], float)
            for row in data["rubric"]:
                row["weight"] = _number(row["weight"], int)
        return data

    # -- the service's problems, pointed at this form's fields

    def explain(self, errors: list[msgspec.ValidationError]) -> None:
        for error in errors:
            message, _, path = str(error).rpartition(" - at `")
            if not _:
                message, path = str(error), "$`"
            parts = self._form_path([a or b for a, b in _PATH.findall(path.rstrip("`")[1:])], message)
            at = "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts)
            problem = explain_validation(msgspec.ValidationError(f"{message} - at `{at}`"), revisions.LABELS)
            name = self._anchor(parts)
            words = self._reword(name, problem.message)
            self.problems[name] = f"{self.problems[name]}; {words}" if name in self.problems else words
            self.summary.append((name, f"{problem.label}: {words}" if problem.label else words))

    def _form_path(self, parts: list[str], message: str) -> list[str]:
        if self.kind == ItemKind.LESSON:
            for length in (2, 1):
                if tuple(parts[:length]) in LESSON_PATHS:
                    parts = LESSON_PATHS[tuple(parts[:length])] + parts[length:]
                    break
        if self.kind == ItemKind.PROJECT and not parts and "rubric" in message:
            parts = ["rubric"]  # the weights' sum is checked on the whole project
        if len(parts) > 1 and parts[0] in GROUPS[self.kind] and parts[1].isdigit():
            kept = self.kept(parts[0])
            if int(parts[1]) < len(kept):
                parts = [parts[0], str(kept[int(parts[1])]), *parts[2:]]
        return parts

    def _anchor(self, parts: list[str]) -> str:
        """The deepest field (or row, or group) of the form a path points into: `objectives.2` is the
        objectives box, `questions.0.options` the options of question 1."""
        for length in range(len(parts), 0, -1):
            name = "-".join(parts[:length])
            if name in self.anchors():
                return name
        return ""

    def anchors(self) -> set[str]:
        names = {*SCALARS[self.kind], *LISTS[self.kind]}
        for group, fields in GROUPS[self.kind].items():
            names.add(group)
            for row in self.rows.get(group, []):
                names.add(f"{group}-{row}")
                names.update(f"{group}-{row}-{name}" for name in fields)
                if group == "questions":
                    names.add(f"{group}-{row}-options")
        return names

    def _reword(self, name: str, message: str) -> str:
        if name and not self.value(name).strip() and message.startswith("must be a"):
            return "choose the correct answer" if name.endswith("correct_index") else "is required"
        if message == "must be at least 1 character long":
            return "is required"
        return message

    def number_of(self, group: str, row: int) -> int:
        """A row's number as people count it (1, 2, ...), in the order shown."""
        return self.rows[group].index(row) + 1


def _number(raw: Any, kind: type, default: Any = 0) -> Any:
    try:
        return kind(str(raw).strip())
    except ValueError:
        return default


def _values_of(kind: str, doc: dict[str, Any]) -> dict[str, str]:
    """A stored document as the form's text values."""
    if kind == ItemKind.LESSON:
        values = {"title": doc["title"], "duration_minutes": str(doc["duration_minutes"]),
                  "level": doc["metadata"]["level"], "objectives": "\n".join(doc["objectives"]),
                  "overview": doc["explanation"]["overview"], "key_takeaways": "\n".join(doc["key_takeaways"]),
                  "practice_prompt": doc["practice"]["prompt"], "expected_outcome": doc["practice"]["expected_outcome"],
                  "prerequisites": "\n".join(doc["metadata"].get("prerequisites") or [])}
        for i, concept in enumerate(doc["explanation"]["concepts"]):
            values |= {f"concepts-{i}-title": concept["title"], f"concepts-{i}-explanation": concept["explanation"],
                       f"concepts-{i}-example": concept.get("example") or ""}
        return values
    if kind == ItemKind.QUIZ:
        values = {}
        for i, q in enumerate(doc["questions"]):
            values |= {f"questions-{i}-question": q["question"], f"questions-{i}-explanation": q["explanation"],
                       f"questions-{i}-correct_index": str(q["correct_index"])}
            values |= {f"questions-{i}-options-{j}": option for j, option in enumerate(q["options"])}
        return values
    values = {"title": doc["title"], "problem_statement": doc["problem_statement"],
              "constraints": "\n".join(doc["constraints"]), "deliverables": "\n".join(doc["deliverables"]),
              "estimated_hours": f"{doc['estimated_hours']:g}"}
    for i, row in enumerate(doc["rubric"]):
        values |= {f"rubric-{i}-criterion": row["criterion"], f"rubric-{i}-description": row["description"],
                   f"rubric-{i}-weight": str(row["weight"])}
    return values


# ---------------------------------------------------------------------------------------------
# Handlers


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


async def _page(request: Request, item: dict[str, Any], form: EditForm, *, status_code: int = 200,
                blocked: Conflict | None = None, preview: Any = None) -> Response:
    """The edit page; for the htmx preview only its preview pane."""
    syllabus = await services.get_syllabus(item["tenant_id"], item["syllabus_id"])
    return render(request, "authoring/edit_item.html",
                  partial="authoring/_edit_preview.html" if preview is not None else None,
                  status_code=status_code, item=item, form=form, levels=LEVELS, blocked=blocked,
                  newer=getattr(blocked, "newer", None), preview=preview,
                  course=await services.get_course(item["tenant_id"], syllabus["course_id"]), nav="review")


@get("/admin/items/{item_id:uuid}/edit", **ADMIN)
async def edit_item(request: Request, item_id: uuid.UUID) -> Response:
    item = await services.get_item(_tenant(request), item_id)
    form = EditForm.from_content(item["kind"], await revisions.editable_content(item))
    try:
        await revisions.check_revisable(item)
    except Conflict as exc:
        return await _page(request, item, form, status_code=exc.status_code, blocked=exc)
    return await _page(request, item, form)


@post("/admin/items/{item_id:uuid}/edit", **ADMIN)
async def save_edit(request: Request, item_id: uuid.UUID) -> Response:
    item = await services.get_item(_tenant(request), item_id)
    form = EditForm.from_submission(item["kind"], await request.form())
    try:
        new = await revisions.revise_by_hand(item["tenant_id"], item_id, form.data(), actor=actor_of(request))
    except revisions.InvalidRevision as exc:
        form.explain(exc.errors)
        return await _page(request, item, form, status_code=exc.status_code)
    except InvalidInput as exc:
        form.summary.append(("", exc.message))
        return await _page(request, item, form, status_code=exc.status_code)
    except Conflict as exc:
        return await _page(request, item, form, status_code=exc.status_code, blocked=exc)
    flash(request, "success", "Saved as a new draft. Review and approve it; learners see it in the next version "
                              "you publish.")
    return redirect(f"/admin/items/{new['id']}")


@post("/admin/items/{item_id:uuid}/preview", **ADMIN)
async def preview_edit(request: Request, item_id: uuid.UUID) -> Response:
    """The submitted form as the learner will see it (through the same templates and `md` filter), with
    what still needs fixing; nothing is saved."""
    item = await services.get_item(_tenant(request), item_id)
    form = EditForm.from_submission(item["kind"], await request.form())
    try:
        preview = revisions.validate_revision(item["kind"], form.data())
    except revisions.InvalidRevision as exc:
        form.explain(exc.errors)
        preview = form.preview()
    return await _page(request, item, form, preview=preview)


@get("/admin/items/{item_id:uuid}/new-revision", **ADMIN)
async def new_revision_panel(request: Request, item_id: uuid.UUID) -> Response:
    """The item page's "New revision" panel with what the slot holds now (loaded by the page after it renders)."""
    item = await services.get_item(_tenant(request), item_id)
    return render(request, "authoring/_new_revision.html", item=item, revision_checked=True,
                  newer=await revisions.newer_revision(item))


ROUTES = [edit_item, save_edit, preview_edit, new_revision_panel]
