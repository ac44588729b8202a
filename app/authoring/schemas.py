"""msgspec types at the authoring boundaries: the course brief (form), and what the LLM must return.

Constraints live here (Meta) and are enforced by our own validation on every response; the JSON
Schemas in schemas/*.schema.json are exported from these types (`coursewright export-schemas`) and a
test fails when they drift.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.web import inputs

Level = Literal["beginner", "intermediate", "advanced"]
TeachingStyle = Literal["practical", "conceptual", "socratic", "project-based", "exam-focused"]

Title = Annotated[str, Meta(min_length=5, max_length=200)]
Sentence = Annotated[str, Meta(min_length=3, max_length=500)]
Paragraph = Annotated[str, Meta(min_length=50, max_length=5000)]
Minutes = Annotated[int, Meta(ge=5, le=600)]

COMMON_CONSTRAINTS = ("exam-focused", "project-based", "practical", "hands-on labs", "no prior experience")


# ---------------------------------------------------------------------------------------------
# The brief an admin fills in (A4 inputs)


class CourseBrief(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title
    audience: Annotated[str, Meta(min_length=3, max_length=300)]
    level: Level
    time_budget_hours: Annotated[float, Meta(ge=1, le=200)]
    teaching_style: TeachingStyle
    constraints: Annotated[list[Annotated[str, Meta(min_length=2, max_length=60)]], Meta(max_length=10)] = []


# ---------------------------------------------------------------------------------------------
# Syllabus (A4): course metadata, modules -> lessons


class SyllabusLesson(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    index: Annotated[int, Meta(ge=1)]
    title: Title
    objectives: Annotated[list[Sentence], Meta(min_length=1, max_length=8)]
    prerequisites: Annotated[list[Sentence], Meta(max_length=8)]
    estimated_minutes: Minutes
    assessment_hooks: Annotated[list[Sentence], Meta(min_length=1, max_length=5)]


class SyllabusModule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    index: Annotated[int, Meta(ge=1)]
    title: Title
    summary: Annotated[str, Meta(min_length=20, max_length=1000)]
    lessons: Annotated[list[SyllabusLesson], Meta(min_length=1, max_length=12)]


class CourseMetadata(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title
    description: Paragraph
    audience: Annotated[str, Meta(min_length=3, max_length=300)]
    level: Level
    time_budget_hours: Annotated[float, Meta(ge=1, le=200)]
    teaching_style: TeachingStyle
    constraints: list[str]
    learning_outcomes: Annotated[list[Sentence], Meta(min_length=2, max_length=10)]


class Syllabus(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    course: CourseMetadata
    modules: Annotated[list[SyllabusModule], Meta(min_length=1, max_length=12)]


# ---------------------------------------------------------------------------------------------
# Lesson (A5, seed 003 §7.1)


class Concept(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Annotated[str, Meta(min_length=3, max_length=200)]
    explanation: Paragraph
    example: Annotated[str, Meta(max_length=3000)] | None = None


class Explanation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    overview: Paragraph
    concepts: Annotated[list[Concept], Meta(min_length=1, max_length=8)]


class Practice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    prompt: Annotated[str, Meta(min_length=30, max_length=3000)]
    expected_outcome: Annotated[str, Meta(min_length=30, max_length=3000)]


class LessonMetadata(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    level: Level
    prerequisites: Annotated[list[Sentence], Meta(max_length=8)] = []


class Lesson(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title
    duration_minutes: Minutes
    objectives: Annotated[list[Sentence], Meta(min_length=1, max_length=8)]
    explanation: Explanation
    key_takeaways: Annotated[list[Sentence], Meta(min_length=2, max_length=8)]
    practice: Practice
    metadata: LessonMetadata


# ---------------------------------------------------------------------------------------------
# Quiz per lesson (A5, seed 003 §7.3): exactly four options, correct index 0-3


class QuizQuestion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    question: Annotated[str, Meta(min_length=10, max_length=500)]
    options: Annotated[list[Annotated[str, Meta(min_length=1, max_length=300)]], Meta(min_length=4, max_length=4)]
    correct_index: Annotated[int, Meta(ge=0, le=3)]
    explanation: Annotated[str, Meta(min_length=20, max_length=1000)]

    def __post_init__(self) -> None:
        if len({option.strip().lower() for option in self.options}) != 4:
            raise ValueError("the four options must be different")


class Quiz(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    questions: Annotated[list[QuizQuestion], Meta(min_length=3, max_length=10)]



# ---------------------------------------------------------------------------------------------
# Project per module (A5, seed 003 §7.4): rubric weights sum to 100


class RubricCriterion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    criterion: Annotated[str, Meta(min_length=3, max_length=200)]
    description: Annotated[str, Meta(min_length=10, max_length=1000)]
    weight: Annotated[int, Meta(ge=1, le=100)]


class Project(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title
    problem_statement: Annotated[str, Meta(min_length=100, max_length=5000)]
    constraints: Annotated[list[Sentence], Meta(min_length=1, max_length=10)]
    deliverables: Annotated[list[Sentence], Meta(min_length=1, max_length=10)]
    rubric: Annotated[list[RubricCriterion], Meta(min_length=2, max_length=8)]
    estimated_hours: Annotated[float, Meta(ge=0.5, le=100)]

    def __post_init__(self) -> None:
        total = sum(c.weight for c in self.rubric)
        if total != 100:
            raise ValueError(f"rubric weights must sum to 100, got {total}")


# ---------------------------------------------------------------------------------------------
# Admin forms (strings; the services validate and answer with readable messages)


class CourseBriefForm(msgspec.Struct):
    # Bounds and the no-control-characters rule of app.web.inputs; the finer rules (CourseBrief) are
    # checked by the service, which re-shows the form with its message.
    title: inputs.Title = ""
    audience: inputs.Line(300) = ""
    level: inputs.Line(32) = ""
    time_budget_hours: inputs.Line(32) = ""
    teaching_style: inputs.Line(32) = ""
    constraints: Annotated[list[inputs.Line(60)], Meta(max_length=len(COMMON_CONSTRAINTS))] | inputs.Line(60) = []
    other_constraints: inputs.Line(1000) = ""

    @classmethod
    def from_brief(cls, brief: dict) -> CourseBriefForm:
        """The form as the admin would have filled it in for a stored brief (to edit it)."""
        common = [c for c in brief["constraints"] if c in COMMON_CONSTRAINTS]
        other = [c for c in brief["constraints"] if c not in COMMON_CONSTRAINTS]
        return cls(title=brief["title"], audience=brief["audience"], level=brief["level"],
                   time_budget_hours=f"{brief['time_budget_hours']:g}", teaching_style=brief["teaching_style"],
                   constraints=common, other_constraints=", ".join(other))

    def as_brief_data(self) -> dict:
        picked = [self.constraints] if isinstance(self.constraints, str) else list(self.constraints)
        picked += [part for part in self.other_constraints.split(",")]
        constraints = list(dict.fromkeys(c.strip().lower() for c in picked if c.strip()))
        return {
            "title": self.title.strip(), "audience": self.audience.strip(), "level": self.level.strip(),
            "time_budget_hours": self.time_budget_hours.strip() or None, "teaching_style": self.teaching_style.strip(),
            "constraints": constraints,
        }


class NoteForm(msgspec.Struct):
    note: inputs.Text() = ""


class ReasonForm(msgspec.Struct):
    reason: inputs.Text() = ""


class InstructionForm(msgspec.Struct):
    instruction: inputs.Text() = ""


class ApproveForm(msgspec.Struct):
    note: inputs.Text() = ""
    then: inputs.Line(16) = ""  # "next": open the next item waiting for review afterwards


class BulkReviewForm(msgspec.Struct):
    """The review queue's bulk bar. The queue's filters ride along, so the answer shows the same page."""

    action: inputs.Line(16) = ""  # approve | reject
    # A generous bound for the form parser only; the service allows services.BULK_LIMIT and says so.
    item_ids: Annotated[list[inputs.UUIDText], Meta(max_length=1000)] | inputs.UUIDText = []
    note: inputs.Text() = ""  # the approval note, or the reason to reject
    syllabus: inputs.UUIDText = ""
    module: inputs.Line(16) = ""
    kind: inputs.Line(16) = ""
    status: inputs.Line(16) = ""
    page: inputs.Line(16) = ""

    @property
    def ids(self) -> list[str]:
        return [self.item_ids] if isinstance(self.item_ids, str) else list(self.item_ids)
