"""The package builder (B1): pure composition, no database, no clock, no model.

Given an approved syllabus row and the content rows of that syllabus, it picks the approved lesson,
quiz and project for every slot of the outline (the most recently approved one where a slot has
several) and composes a CoursePackage. Anything missing or unapproved is reported, all at once, as a
readable list. The same inputs always give the same bytes and the same SHA-256.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from app.authoring.schemas import Lesson, Project, Quiz
from app.authoring.schemas import Syllabus as SyllabusDoc
from app.publishing.schemas import (
    FORMAT_VERSION,
    CoursePackage,
    PackagedLesson,
    PackagedModule,
    PackagedResource,
    Provenance,
    ProvenanceItem,
)

Slot = tuple[str, int, int | None]  # (kind, module_index, lesson_index or None for a project)


class MissingSlot(msgspec.Struct, frozen=True, kw_only=True):
    """A slot of the outline without an approved item: what the publish panel lists, with a link."""

    kind: str  # LESSON, QUIZ, PROJECT
    module_index: int
    lesson_index: int | None
    title: str  # the outline's lesson (or module) title
    status: str | None  # of the slot's newest item; None when nothing was ever generated for it
    item_id: str | None  # that item


class PackageIncomplete(Exception):
    def __init__(self, problems: list[str], missing: list[MissingSlot] | None = None) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.missing = missing or []


class BuiltPackage(msgspec.Struct, frozen=True):
    package: CoursePackage
    document: bytes  # canonical JSON
    content_hash: str  # SHA-256 of `document`


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _describe(kind: str, module: int, lesson: int | None, title: str) -> str:
    where = f"module {module}, lesson {lesson}" if lesson is not None else f"module {module}"
    return f"{kind.lower().capitalize()} for {where} ({title})"


def slot_rows(items: list[dict[str, Any]]) -> tuple[dict[Slot, dict[str, Any]], dict[Slot, dict[str, Any]]]:
    """Per slot: the approved item that goes into a package (the most recently approved), and the newest
    item that is not superseded (a draft revision waiting for review, a regeneration still running, ...)."""
    approved: dict[Slot, dict[str, Any]] = {}
    latest: dict[Slot, dict[str, Any]] = {}
    for row in sorted(items, key=lambda r: (_iso(r["created_at"]), str(r["id"]))):
        slot = (row["kind"], row["module_index"], row["lesson_index"])
        if row["status"] != "SUPERSEDED":
            latest[slot] = row
        if row["status"] == "APPROVED":
            current = approved.get(slot)
            if current is None or (_iso(row["approved_at"]), str(row["id"])) > (_iso(current["approved_at"]),
                                                                                str(current["id"])):
                approved[slot] = row
    return approved, latest


def build_package(syllabus: dict[str, Any], items: list[dict[str, Any]],
                  resources: dict[int, list[dict[str, Any]]] | None = None) -> BuiltPackage:
    """`resources`: module index -> its live external resources in their order (app/quality/resources.py)."""
    if syllabus["status"] != "APPROVED":
        raise PackageIncomplete([f"The syllabus is {syllabus['status']}, not APPROVED."])
    outline = msgspec.json.decode(syllabus["content"], type=SyllabusDoc)
    approved, latest = slot_rows(items)
    problems: list[str] = []
    missing: list[MissingSlot] = []

    def pick(kind: str, module: int, lesson: int | None, title: str) -> dict[str, Any] | None:
        row = approved.get((kind, module, lesson))
        if row is None:
            newest = latest.get((kind, module, lesson))
            state = newest["status"] if newest else None
            reason = f"is {state.lower()}" if state else "was never generated"
            problems.append(f"{_describe(kind, module, lesson, title)} {reason}, not approved.")
            missing.append(MissingSlot(kind=kind, module_index=module, lesson_index=lesson, title=title,
                                       status=state, item_id=str(newest["id"]) if newest else None))
        return row

    modules: list[PackagedModule] = []
    provenance: list[ProvenanceItem] = []
    course_index = 0
    for module in outline.modules:
        lessons: list[PackagedLesson] = []
        for lesson in module.lessons:
            course_index += 1
            lesson_row = pick("LESSON", module.index, lesson.index, lesson.title)
            quiz_row = pick("QUIZ", module.index, lesson.index, lesson.title)
            if lesson_row is None or quiz_row is None:
                continue
            lessons.append(PackagedLesson(
                index=course_index, module_index=module.index, lesson_index=lesson.index,
                lesson=msgspec.json.decode(lesson_row["content"], type=Lesson),
                quiz=msgspec.json.decode(quiz_row["content"], type=Quiz),
            ))
            provenance += [_provenance(lesson_row), _provenance(quiz_row)]
        project_row = pick("PROJECT", module.index, None, module.title)
        if project_row is None:
            continue
        provenance.append(_provenance(project_row))
        modules.append(PackagedModule(
            index=module.index, title=module.title, summary=module.summary, lessons=lessons,
            project=msgspec.json.decode(project_row["content"], type=Project),
            resources=[PackagedResource(title=r["title"], url=r["url"], kind=r["kind"])
                       for r in (resources or {}).get(module.index, [])],
        ))
    if problems:
        raise PackageIncomplete(problems, missing)

    syllabus_generation = msgspec.json.decode(syllabus["generation"])
    package = CoursePackage(
        format_version=FORMAT_VERSION,
        course=outline.course,
        modules=modules,
        provenance=Provenance(
            course_id=str(syllabus["course_id"]),
            syllabus_id=str(syllabus["id"]),
            syllabus_revision=syllabus["revision"],
            syllabus_hash=syllabus["content_hash"],
            syllabus_prompt_version=syllabus_generation["prompt_version"],
            syllabus_approved_by=str(syllabus["approved_by"]),
            syllabus_approved_at=_iso(syllabus["approved_at"]),
            prompt_versions=sorted({syllabus_generation["prompt_version"]} | {p.prompt_version for p in provenance}),
            approvers=sorted({str(syllabus["approved_by"])} | {p.approved_by for p in provenance}),
            items=provenance,
        ),
    )
    document = msgspec.json.encode(package)
    return BuiltPackage(package, document, hashlib.sha256(document).hexdigest())


def _provenance(row: dict[str, Any]) -> ProvenanceItem:
    generation = msgspec.json.decode(row["generation"]) if row["generation"] else {}
    return ProvenanceItem(
        item_id=str(row["id"]), kind=row["kind"], module_index=row["module_index"], lesson_index=row["lesson_index"],
        content_hash=row["content_hash"], prompt_version=generation.get("prompt_version", ""),
        approved_by=str(row["approved_by"]), approved_at=_iso(row["approved_at"]),
    )
