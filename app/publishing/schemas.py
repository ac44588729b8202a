"""The CoursePackage document (B1): a frozen composition of an approved syllabus and its approved
lessons, quizzes and projects. Field order is fixed by these types and lists are in course order, so
the same approved set always encodes to the same bytes (and SHA-256)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.authoring.schemas import CourseMetadata, Lesson, Project, Quiz

FORMAT_VERSION = "1"


class PackagedLesson(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    index: int  # position in the whole course, from 1: the learner's /lesson/{index}
    module_index: int
    lesson_index: int  # position inside its module, from 1
    lesson: Lesson
    quiz: Quiz


class PackagedResource(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A vetted external link (app/quality/resources.py), copied when the version was built."""

    title: str
    url: Annotated[str, msgspec.Meta(pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://")]  # also checked when it was added
    kind: str


# omit_defaults: a module without resources encodes exactly as before they existed, so older packages keep
# their bytes and hash, and "nothing changed since vN" still holds for them.
class PackagedModule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    index: int
    title: str
    summary: str
    lessons: list[PackagedLesson]
    project: Project
    resources: list[PackagedResource] = []


class ProvenanceItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    item_id: str
    kind: Literal["LESSON", "QUIZ", "PROJECT"]
    module_index: int
    lesson_index: int | None
    content_hash: str
    prompt_version: str
    approved_by: str
    approved_at: str


class Provenance(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    course_id: str
    syllabus_id: str
    syllabus_revision: int
    syllabus_hash: str
    syllabus_prompt_version: str
    syllabus_approved_by: str
    syllabus_approved_at: str
    prompt_versions: list[str]  # sorted, distinct
    approvers: list[str]  # sorted, distinct user ids
    items: list[ProvenanceItem]  # course order: module, then lessons and quizzes, then the project


class CoursePackage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    format_version: Literal["1"]
    course: CourseMetadata
    modules: list[PackagedModule]
    provenance: Provenance

    @property
    def lessons(self) -> list[PackagedLesson]:
        return [lesson for module in self.modules for lesson in module.lessons]
