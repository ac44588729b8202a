"""msgspec types at the suggestions' boundaries: the JSON APIs and the accept/dismiss forms."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec

from app.web import inputs

Note = Annotated[str, msgspec.Meta(max_length=2000, pattern=inputs.MULTI_LINE,
                                   description="why (required; kept in the audit log)")]
InstructionText = Annotated[str, msgspec.Meta(max_length=2000, pattern=inputs.MULTI_LINE,
                                              description="what the regeneration should change")]


class Suggestion(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    course_id: uuid.UUID
    scope: str  # COURSE, MODULE, LESSON, QUIZ
    target_id: uuid.UUID  # a content item (LESSON, QUIZ) or the syllabus (COURSE, MODULE)
    suggestion_type: str
    severity: str  # high, medium, low
    message: str
    evidence: dict[str, Any]
    source_signal_id: uuid.UUID | None
    status: str  # OPEN, ACCEPTED, DISMISSED
    created_at: dt.datetime


class SuggestionList(msgspec.Struct, frozen=True, kw_only=True):
    suggestions: list[Suggestion]
    page: int
    has_next: bool


class SuggestionAccept(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST /api/admin/suggestions/{id}/accept. With create_job, a PENDING regeneration job for the target is
    created in the same transaction; instruction defaults to one written from the evidence."""

    note: Note
    create_job: bool = False
    instruction: InstructionText | None = None


class SuggestionDismiss(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    note: Note


class SuggestionDecision(msgspec.Struct, frozen=True, kw_only=True):
    suggestion: Suggestion
    job_id: uuid.UUID | None = None
    job_url: str | None = None


class AcceptForm(msgspec.Struct):
    note: inputs.Text(2000) = ""
    create_job: inputs.Line(8) = ""  # the checkbox: "on" when ticked
    instruction: inputs.Text(2000) = ""


class DismissForm(msgspec.Struct):
    note: inputs.Text(2000) = ""


def suggestion_of(row: dict[str, Any]) -> Suggestion:
    return msgspec.convert(row, type=Suggestion, from_attributes=False, strict=False)
