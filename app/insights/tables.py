from enum import StrEnum

from piccolo.columns import JSONB, UUID, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Tenant


class SuggestionScope(StrEnum):
    COURSE = "COURSE"
    MODULE = "MODULE"
    LESSON = "LESSON"
    QUIZ = "QUIZ"


class SuggestionType(StrEnum):
    LOW_COMPLETION = "LOW_COMPLETION"
    HIGH_RETRY = "HIGH_RETRY"
    DROP_OFF = "DROP_OFF"
    LOW_ENGAGEMENT = "LOW_ENGAGEMENT"
    CONTENT_CLARITY = "CONTENT_CLARITY"


class SuggestionStatus(StrEnum):
    OPEN = "OPEN"
    ACCEPTED = "ACCEPTED"
    DISMISSED = "DISMISSED"


class ContentSuggestion(Table, tablename="content_suggestion"):
    # Insert-only except status, which moves forward once: OPEN -> ACCEPTED | DISMISSED (trigger
    # content_suggestion_guard). Unique on (source_signal_id, suggestion_type, target_id): the nightly job
    # may run a day twice and still create one suggestion.
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    course_id = UUID()  # the syllabus, as everywhere a learner meets a course
    scope = Varchar(length=16, choices=SuggestionScope)
    target_id = UUID()  # the content item (LESSON/QUIZ), else the syllabus (COURSE/MODULE)
    suggestion_type = Varchar(length=32, choices=SuggestionType)
    severity = Varchar(length=8)  # low, medium, high (the signal's)
    message = Text()
    evidence = JSONB()  # the signal's metrics, window and thresholds, and what the target was
    source_signal_id = UUID(null=True, default=None)  # NULL: written by hand by an admin
    created_by = UUID(null=True, default=None)  # NULL: the nightly job
    created_at = Timestamptz(default=TimestamptzNow())
    status = Varchar(length=16, choices=SuggestionStatus, default=SuggestionStatus.OPEN.value)
    # Who decided and why is in the audit log (SUGGESTION_ACCEPTED / SUGGESTION_DISMISSED with the note):
    # status stays the only mutable column, as the SPEC (I1) asks.
