"""Hand edits of a draft syllabus outline: rename, reorder, add and remove modules and lessons.

Part of the authoring services (the writers of `syllabus`). The form is a flat list of rows (app/authoring
README: a module row, then the rows of its lessons); `build_outline` turns what a person typed into the
same `Syllabus` document a model returns, checked field by field against that msgspec type (so every
problem is shown beside its field at once), then run through the same post-processor
(`normalize_syllabus`: trims, renumbers, copies the brief's facts, clamps estimates to the time budget).

`edit_outline` stores it as a new DRAFT revision that supersedes the edited draft, as a redraft does
(`generation._store_syllabus`): compare-and-set on the edited row, one draft per course, revision + 1,
provenance "edited by hand" (OutlineHandEdit) where a generated syllabus keeps its model's metadata.
Only a DRAFT or REJECTED syllabus is edited; an approved one is frozen (new revisions of approved outlines
are not built: package versions and enrollments are keyed by syllabus).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from typing import Annotated, Any

import asyncpg
import msgspec
from msgspec import Meta

from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.authoring import services
from app.authoring.generation import canonical_json, content_hash, syllabus_doc
from app.authoring.normalize import normalize_syllabus
from app.authoring.outline_diff import compare_outlines
from app.authoring.schemas import CourseBrief, CourseMetadata, SyllabusLesson, SyllabusModule
from app.authoring.schemas import Syllabus as SyllabusDoc
from app.authoring.tables import GenerationRun, RunKind, RunStatus, Syllabus, SyllabusStatus
from app.db import engine
from app.errors import Conflict, InvalidInput
from app.web import inputs
from app.web.inputs import explain_validation

EDITABLE = (SyllabusStatus.DRAFT, SyllabusStatus.REJECTED)
PROMPT_VERSION = "edited-by-hand"  # as app.authoring.revisions: what provenance lists instead of a prompt
MAX_ROWS = 200  # 12 modules of 12 lessons, plus the empty rows the form offers
MAX_POSITION = 999


def _rows(item: Any) -> Any:
    # One value per row. A form with a single row sends a single value, which Litestar passes as a string.
    return Annotated[list[item], Meta(max_length=MAX_ROWS)] | item


class OutlineForm(msgspec.Struct, kw_only=True):
    """The outline form as posted: parallel lists, one entry per module row and per lesson row (a browser
    sends every text field, empty or not, in document order). Removal checkboxes send their row's key."""

    description: inputs.Text(5000) = ""
    learning_outcomes: inputs.Text(6000) = ""
    module_key: _rows(inputs.Line(16)) = []
    module_position: _rows(inputs.Line(8)) = []
    module_title: _rows(inputs.Line(200)) = []
    module_summary: _rows(inputs.Text(1000)) = []
    remove_module: _rows(inputs.Line(16)) = []
    lesson_key: _rows(inputs.Line(16)) = []
    lesson_module: _rows(inputs.Line(16)) = []
    lesson_position: _rows(inputs.Line(8)) = []
    lesson_title: _rows(inputs.Line(200)) = []
    lesson_objectives: _rows(inputs.Text(4500)) = []
    lesson_minutes: _rows(inputs.Line(8)) = []
    lesson_prerequisites: _rows(inputs.Text(4500)) = []
    lesson_hooks: _rows(inputs.Text(3000)) = []
    remove_lesson: _rows(inputs.Line(16)) = []
    add: inputs.Line(24) = ""  # "module" or "lesson:<module key>": show the form again with one more empty row


def _as_list(value: list[str] | str) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


# ---------------------------------------------------------------------------------------------
# What the form shows: rows built from a stored outline or from what was posted


class LessonRow(msgspec.Struct, kw_only=True):
    key: str
    position: str = ""
    title: str = ""
    objectives: str = ""  # one per line
    minutes: str = ""
    prerequisites: str = ""
    hooks: str = ""
    remove: bool = False

    @property
    def new(self) -> bool:
        return "x" in self.key

    @property
    def blank(self) -> bool:
        return not any(v.strip() for v in (self.title, self.objectives, self.prerequisites, self.hooks))


class ModuleRow(msgspec.Struct, kw_only=True):
    key: str
    position: str = ""
    title: str = ""
    summary: str = ""
    remove: bool = False
    lessons: list[LessonRow] = []

    @property
    def new(self) -> bool:
        return "x" in self.key

    @property
    def blank(self) -> bool:
        return not (self.title.strip() or self.summary.strip()) and all(lesson.blank for lesson in self.lessons)


class OutlineEdit(msgspec.Struct, kw_only=True):
    description: str = ""
    learning_outcomes: str = ""
    modules: list[ModuleRow] = []

    @classmethod
    def from_document(cls, doc: SyllabusDoc) -> OutlineEdit:
        """The stored outline as rows, with an empty lesson row per module and an empty module row to fill in."""
        modules = [ModuleRow(
            key=f"m{m.index}", position=str(m.index), title=m.title, summary=m.summary,
            lessons=[LessonRow(key=f"m{m.index}l{lesson.index}", position=str(lesson.index), title=lesson.title,
                               objectives="\n".join(lesson.objectives), minutes=str(lesson.estimated_minutes),
                               prerequisites="\n".join(lesson.prerequisites),
                               hooks="\n".join(lesson.assessment_hooks))
                     for lesson in m.lessons],
        ) for m in doc.modules]
        edit = cls(description=doc.course.description, learning_outcomes="\n".join(doc.course.learning_outcomes),
                   modules=modules)
        for module in modules:
            edit.add_lesson(module.key)
        edit.add_module()
        return edit

    @classmethod
    def from_form(cls, form: OutlineForm) -> OutlineEdit:
        """The rows as posted, in form order. A form whose lists do not line up was not sent by our page."""
        module_cols = [_as_list(c) for c in (form.module_key, form.module_position, form.module_title,
                                             form.module_summary)]
        lesson_cols = [_as_list(c) for c in (form.lesson_key, form.lesson_module, form.lesson_position,
                                             form.lesson_title, form.lesson_objectives, form.lesson_minutes,
                                             form.lesson_prerequisites, form.lesson_hooks)]
        if len({len(c) for c in module_cols}) > 1 or len({len(c) for c in lesson_cols}) > 1:
            raise InvalidInput("The outline form arrived incomplete; reload the page and make your changes again.")
        removed_modules, removed_lessons = set(_as_list(form.remove_module)), set(_as_list(form.remove_lesson))
        modules = {key: ModuleRow(key=key, position=position, title=title, summary=summary,
                                  remove=key in removed_modules)
                   for key, position, title, summary in zip(*module_cols, strict=True)}
        keys = [row[0] for row in zip(*lesson_cols, strict=True)]
        if len(modules) != len(module_cols[0]) or len(set(keys)) != len(keys):
            raise InvalidInput("The outline form names a row twice; reload the page and make your changes again.")
        for key, module_key, position, title, objectives, minutes, prerequisites, hooks in zip(*lesson_cols,
                                                                                               strict=True):
            if module_key not in modules:
                raise InvalidInput("The outline form names a module it does not have; reload the page.")
            modules[module_key].lessons.append(LessonRow(
                key=key, position=position, title=title, objectives=objectives, minutes=minutes,
                prerequisites=prerequisites, hooks=hooks, remove=key in removed_lessons))
        return cls(description=form.description, learning_outcomes=form.learning_outcomes,
                   modules=list(modules.values()))

    def add_lesson(self, module_key: str) -> None:
        for module in self.modules:
            if module.key == module_key:
                module.lessons.append(LessonRow(key=_fresh(module_key + "x", [row.key for row in module.lessons]),
                                                position=str(_next_position(module.lessons))))
                return
        raise InvalidInput("That module is not in the outline any more; reload the page.")

    def add_module(self) -> None:
        module = ModuleRow(key=_fresh("x", [row.key for row in self.modules]),
                           position=str(_next_position(self.modules)))
        self.modules.append(module)
        self.add_lesson(module.key)

    def add_row(self, what: str) -> None:
        if what == "module":
            self.add_module()
        elif what.startswith("lesson:"):
            self.add_lesson(what.removeprefix("lesson:"))
        else:
            raise InvalidInput("Unknown action; use the buttons of the form.")


def _fresh(prefix: str, taken: list[str]) -> str:
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


def _next_position(rows: list[Any]) -> int:
    numbers = [int(row.position) for row in rows if row.position.strip().isdigit()]
    return min(max(numbers, default=0) + 1, MAX_POSITION)


# ---------------------------------------------------------------------------------------------
# Validation: field by field against the Syllabus type, then the post-processor


class OutlineProblem(msgspec.Struct, frozen=True):
    """A problem with one field of the form: `field` is the id of its input ("lesson-m1l2-title")."""

    field: str
    label: str
    message: str

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"


class InvalidOutline(InvalidInput):
    def __init__(self, problems: list[OutlineProblem]) -> None:
        self.problems = problems
        super().__init__("Check the outline: " + "; ".join(str(p) for p in problems))

    def by_field(self) -> dict[str, str]:
        return {problem.field: problem.message for problem in self.problems}


FIELD_WORDS = {
    "title": "Title", "summary": "Summary", "objectives": "Objectives", "estimated_minutes": "Minutes",
    "prerequisites": "Prerequisites", "assessment_hooks": "Assessment", "description": "Description",
    "learning_outcomes": "Learning outcomes", "position": "Position", "lessons": "Lessons",
}
FORM_FIELD = {"estimated_minutes": "minutes", "assessment_hooks": "hooks"}  # schema field -> form field


@functools.cache
def _field_type(struct: type, name: str) -> type:
    """A one-field struct with `name` exactly as `struct` declares it, so one field is checked alone and
    msgspec's message still carries its path."""
    declared = {field.name: field.type for field in msgspec.structs.fields(struct)}
    return msgspec.defstruct(f"{struct.__name__}_{name}", [(name, declared[name])])


def _check(struct: type, name: str, value: Any) -> str | None:
    try:
        msgspec.convert({name: value}, type=_field_type(struct, name))
    except msgspec.ValidationError as exc:
        problem = explain_validation(exc)
        line = problem.field.split(".")[1] if problem.field.count(".") == 1 else None
        message = problem.message.replace(" entries", " lines").replace(" entry", " line")
        return f"line {int(line) + 1} {message}" if line is not None else message
    return None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _number(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() and len(raw) <= 6 else None


class _Collector:
    def __init__(self) -> None:
        self.problems: list[OutlineProblem] = []

    def add(self, field: str, label: str, message: str | None) -> None:
        if message:
            self.problems.append(OutlineProblem(field, label, message))


def _position_key(row: ModuleRow | LessonRow, order: int, label: str, found: _Collector) -> tuple[int, int]:
    prefix = "lesson" if isinstance(row, LessonRow) else "module"
    if not row.position.strip():
        return (MAX_POSITION + 1, order)  # no number: after the numbered rows, in form order
    number = _number(row.position)
    if number is None or not 1 <= number <= MAX_POSITION:
        found.add(f"{prefix}-{row.key}-position", f"{label} › Position",
                  f"must be a whole number from 1 to {MAX_POSITION}")
        return (MAX_POSITION + 1, order)
    return (number, order)


def _lesson_data(row: LessonRow, label: str, found: _Collector) -> dict[str, Any]:
    data: dict[str, Any] = {
        "index": 1, "title": row.title.strip(), "objectives": _lines(row.objectives),
        "prerequisites": _lines(row.prerequisites), "assessment_hooks": _lines(row.hooks),
    }
    minutes = _number(row.minutes)
    if not row.minutes.strip():
        found.add(f"lesson-{row.key}-minutes", f"{label} › Minutes", "is required")
    elif minutes is None:
        found.add(f"lesson-{row.key}-minutes", f"{label} › Minutes", "must be a whole number of minutes")
    else:
        data["estimated_minutes"] = minutes
    for name, value in data.items():
        if name != "index":
            form_field = FORM_FIELD.get(name, name)
            found.add(f"lesson-{row.key}-{form_field}", f"{label} › {FIELD_WORDS[name]}",
                      _check(SyllabusLesson, name, value))
    return data


def build_outline(edit: OutlineEdit, brief: CourseBrief) -> SyllabusDoc:
    """What the person typed as a normalized Syllabus document, or InvalidOutline with every problem."""
    found = _Collector()
    course = {
        "title": brief.title, "audience": brief.audience, "level": brief.level,
        "time_budget_hours": brief.time_budget_hours, "teaching_style": brief.teaching_style,
        "constraints": list(brief.constraints), "description": edit.description.strip(),
        "learning_outcomes": _lines(edit.learning_outcomes),
    }
    for name in ("description", "learning_outcomes"):
        found.add(f"course-{name}", FIELD_WORDS[name], _check(CourseMetadata, name, course[name]))
    modules = []
    for m, module in enumerate(edit.modules, start=1):
        label = f"New module {m}" if module.new else f"Module {m}"
        if module.remove or (module.new and module.blank):
            continue
        data = {"index": 1, "title": module.title.strip(), "summary": module.summary.strip()}
        for name in ("title", "summary"):
            found.add(f"module-{module.key}-{name}", f"{label} › {FIELD_WORDS[name]}",
                      _check(SyllabusModule, name, data[name]))
        lessons = []
        for n, lesson in enumerate(module.lessons, start=1):
            if lesson.remove or (lesson.new and lesson.blank):
                continue
            lesson_label = f"{label}, new lesson {n}" if lesson.new else f"{label}, lesson {n}"
            lessons.append((_position_key(lesson, n, lesson_label, found), _lesson_data(lesson, lesson_label, found)))
        if not lessons:
            found.add(f"module-{module.key}-lessons", f"{label} › Lessons",
                      "needs at least one lesson (remove the module, or keep or add a lesson)")
        elif len(lessons) > 12:
            found.add(f"module-{module.key}-lessons", f"{label} › Lessons", "can have at most 12 lessons")
        data["lessons"] = [lesson for _key, lesson in sorted(lessons, key=lambda pair: pair[0])]
        modules.append((_position_key(module, m, label, found), data))
    if not modules:
        found.add("outline-modules", "Modules", "the outline needs at least one module")
    elif len(modules) > 12:
        found.add("outline-modules", "Modules", "the outline can have at most 12 modules")
    if found.problems:
        raise InvalidOutline(found.problems)
    document = {"course": course, "modules": [data for _key, data in sorted(modules, key=lambda pair: pair[0])]}
    try:
        return normalize_syllabus(msgspec.convert(document, type=SyllabusDoc), brief)
    except msgspec.ValidationError as exc:  # every field was checked above: only a rule of the whole is left
        problem = explain_validation(exc, FIELD_WORDS)
        raise InvalidOutline([OutlineProblem("outline-modules", problem.label or "Outline", problem.message)]) from None


# ---------------------------------------------------------------------------------------------
# The transition


class OutlineHandEdit(msgspec.Struct, frozen=True, kw_only=True):
    """Provenance of a revision a person wrote, stored where a generated syllabus keeps its GenerationMetadata
    (the same shape as app.authoring.revisions.HandEdit, for a syllabus)."""

    edited_by_hand: bool = True
    editor_id: str
    editor_email: str | None
    source_syllabus_id: str
    source_revision: int
    source_hash: str
    edited_at: str
    prompt_version: str = PROMPT_VERSION
    validation_passed: bool = True


async def editable_syllabus(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> dict[str, Any]:
    """The syllabus, if its outline may be edited by hand now; Conflict (409) saying why not otherwise."""
    syllabus = await services.get_syllabus(tenant_id, syllabus_id)
    if syllabus["status"] == SyllabusStatus.APPROVED:
        raise Conflict("This syllabus is approved, so its outline can no longer change. Content is generated "
                       "from it as it is.")
    if syllabus["status"] not in EDITABLE:
        raise Conflict("A newer draft replaced this syllabus; edit the course's current draft instead.")
    if await GenerationRun.exists().where(
        (GenerationRun.course_id == syllabus["course_id"]) & (GenerationRun.kind == RunKind.SYLLABUS.value)
        & GenerationRun.status.is_in([RunStatus.QUEUED.value, RunStatus.RUNNING.value])
    ):
        raise Conflict("A new draft of this syllabus is being written; it would replace your edit. "
                       "Wait for it, then edit the new draft.")
    return syllabus


async def edit_outline(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, edit: OutlineEdit, *,
                       actor: Actor) -> dict[str, Any] | None:
    """A new DRAFT revision with the outline a person wrote; None when it equals the edited draft."""
    syllabus = await editable_syllabus(tenant_id, syllabus_id)
    course = await services.get_course(tenant_id, syllabus["course_id"])
    document = build_outline(edit, msgspec.json.decode(course["brief"], type=CourseBrief))
    if content_hash(document) == syllabus["content_hash"]:
        return None
    provenance = OutlineHandEdit(
        editor_id=str(actor.user_id), editor_email=actor.email, source_syllabus_id=str(syllabus_id),
        source_revision=syllabus["revision"], source_hash=syllabus["content_hash"],
        edited_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    try:
        new = await _store(syllabus, document, provenance, actor)
    except asyncpg.UniqueViolationError:  # syllabus_course_revision_key: a redraft landed meanwhile
        raise Conflict("Another revision of this syllabus was saved meanwhile; reload it and edit that one.") from None
    await audit(AuditAction.SYLLABUS_EDITED_BY_HAND, actor=actor, tenant_id=tenant_id, entity_type="syllabus",
                entity_id=syllabus_id, metadata={
                    "new_syllabus_id": str(new["id"]), "revision": new["revision"],
                    "source_hash": syllabus["content_hash"], "content_hash": new["content_hash"],
                    "changes": compare_outlines(syllabus_doc(syllabus), document).summary(),
                })
    return new


async def _store(syllabus: dict[str, Any], document: SyllabusDoc, provenance: OutlineHandEdit,
                 actor: Actor) -> dict[str, Any]:
    async with engine().transaction():
        superseded = await Syllabus.update({Syllabus.status: SyllabusStatus.SUPERSEDED.value}).where(
            (Syllabus.id == syllabus["id"]) & (Syllabus.status == syllabus["status"])
        ).returning(Syllabus.id)
        if len(superseded) != 1:
            raise Conflict("This syllabus changed meanwhile (approved, rejected or replaced); reload it.")
        # One draft under review per course, as after a redraft.
        await Syllabus.update({Syllabus.status: SyllabusStatus.SUPERSEDED.value}).where(
            (Syllabus.course_id == syllabus["course_id"]) & (Syllabus.id != syllabus["id"])
            & Syllabus.status.is_in([SyllabusStatus.DRAFT.value, SyllabusStatus.REJECTED.value])
        )
        revision = await Syllabus.count().where(Syllabus.course_id == syllabus["course_id"]) + 1
        return (await Syllabus.insert(Syllabus(
            tenant_id=syllabus["tenant_id"], course_id=syllabus["course_id"], revision=revision,
            content=canonical_json(document).decode(), content_hash=content_hash(document),
            generation=msgspec.json.encode(provenance).decode(), supersedes_id=syllabus["id"],
            created_by=actor.user_id,
        )).returning(*Syllabus.all_columns()))[0]


# ---------------------------------------------------------------------------------------------
# Comparing two revisions of a course's outline


async def revisions_to_compare(tenant_id: uuid.UUID, syllabus_id: uuid.UUID,
                               other_id: uuid.UUID | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(older, newer) of the syllabus and `other_id` (a revision of the same course), or of the syllabus and
    the one it superseded (or else its previous revision) when no other is named: (syllabus, None) if none."""
    syllabus = await services.get_syllabus(tenant_id, syllabus_id)
    if other_id is None:
        other = None
        if syllabus["supersedes_id"] is not None:
            other = await Syllabus.select().where(Syllabus.id == syllabus["supersedes_id"]).first()
        if other is None:
            other = await Syllabus.select().where(
                (Syllabus.course_id == syllabus["course_id"]) & (Syllabus.revision == syllabus["revision"] - 1)
            ).first()
        if other is None:
            return syllabus, None
    else:
        other = await services.get_syllabus(tenant_id, other_id)
        if other["course_id"] != syllabus["course_id"]:
            raise InvalidInput("Only two revisions of the same course can be compared; choose one from the list.")
    return (other, syllabus) if other["revision"] < syllabus["revision"] else (syllabus, other)
