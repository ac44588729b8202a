"""Suggestions (SPEC I1-I5): the nightly step that turns the day's signals into suggestions, and the admins'
list, detail, accept and dismiss. This module is the only writer of content_suggestion.

A suggestion is insert-only except its status, which moves once: OPEN -> ACCEPTED | DISMISSED (a
compare-and-set here; the trigger content_suggestion_guard is the backstop). Who decided and why is in the
audit row, with the note.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from app.analytics.observe import analytics_transaction
from app.audit.actions import AuditAction
from app.audit.services import SYSTEM, Actor, audit
from app.db import engine
from app.errors import Conflict, InvalidInput, NotFound
from app.insights import registry
from app.insights.tables import ContentSuggestion, SuggestionScope, SuggestionStatus
from app.publishing import services as publishing
from app.publishing.schemas import CoursePackage

SEVERITIES = ("high", "medium", "low")
NOTE_MAX = 2000
INSTRUCTION_MAX = 2000  # a regeneration job's instruction text (app/regeneration/schemas.py)
PER_PAGE = 25
# Scopes whose target is a content item a regeneration job can redraft (COURSE/MODULE aim at the syllabus).
REGENERABLE = (SuggestionScope.LESSON.value, SuggestionScope.QUIZ.value)


# ---------------------------------------------------------------------------------------------
# Nightly: signals -> suggestions

SIGNALS_SQL = """
SELECT * FROM analytics_signal WHERE day = $1 AND status <> 'RESOLVED'
ORDER BY tenant_id, course_id, lesson_index, signal_type
"""
PACKAGE_SQL = """
SELECT id, version, title, content_hash FROM course_package
WHERE tenant_id = $1 AND syllabus_id = $2 AND status = 'PUBLISHED' ORDER BY version DESC LIMIT 1
"""
INSERT_SQL = """
INSERT INTO content_suggestion (id, tenant_id, course_id, scope, target_id, suggestion_type, severity, message,
                                evidence, source_signal_id, created_by, created_at, status)
VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, NULL, now(), 'OPEN')
ON CONFLICT ON CONSTRAINT content_suggestion_once DO NOTHING
RETURNING id, tenant_id, suggestion_type, scope, target_id, source_signal_id
"""


def _decoded(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


Published = tuple[dict[str, Any], CoursePackage]


async def _package(conn: asyncpg.Connection, tenant_id: uuid.UUID, course_id: uuid.UUID) -> Published | None:
    row = await conn.fetchrow(PACKAGE_SQL, tenant_id, course_id)
    if row is None:
        return None
    document = publishing.cached_document(row["content_hash"])
    if document is None:
        text = await conn.fetchval("SELECT document FROM course_package WHERE id = $1", row["id"])
        document = publishing.parse_document(row["content_hash"], text)
    return dict(row), document


def _lesson_ref(document: CoursePackage, number: int) -> registry.LessonRef | None:
    lessons = document.lessons
    if not 1 <= number <= len(lessons):
        return None
    entry = lessons[number - 1]
    items = {(p.kind, p.module_index, p.lesson_index): p.item_id for p in document.provenance.items}
    lesson_item = items.get(("LESSON", entry.module_index, entry.lesson_index))
    quiz_item = items.get(("QUIZ", entry.module_index, entry.lesson_index))
    if lesson_item is None or quiz_item is None:
        return None
    module = document.modules[entry.module_index - 1]
    return registry.LessonRef(item_id=uuid.UUID(lesson_item), quiz_item_id=uuid.UUID(quiz_item), number=number,
                              module_number=entry.module_index, lesson_number=entry.lesson_index,
                              title=entry.lesson.title, module_title=module.title)


def target_of(package: dict[str, Any], document: CoursePackage, course_id: uuid.UUID,
              lesson_index: int) -> registry.Target:
    """What a signal about `lesson_index` (1-based across the course in package order; 0 = the whole course)
    points at in this published version."""
    return registry.Target(course_id=course_id, course_title=package["title"], package_id=package["id"],
                           package_version=package["version"],
                           lesson=_lesson_ref(document, lesson_index) if lesson_index else None,
                           first_lesson=_lesson_ref(document, 1))


async def suggest_from_signals(day: Any) -> dict[str, Any]:
    """Suggestions for the signals raised for `day`, idempotently: the unique key (signal, type, target)
    makes a second run insert nothing and audit nothing. Runs in an analytics transaction (invariant 7: the
    content tables refuse writes in it); the audit rows follow its commit."""
    created: list[asyncpg.Record] = []
    without_target = 0
    async with analytics_transaction() as conn:
        packages: dict[tuple[uuid.UUID, uuid.UUID], Published | None] = {}
        for row in await conn.fetch(SIGNALS_SQL, day):
            signal = {**dict(row), "metrics": _decoded(row["metrics"]), "thresholds": _decoded(row["thresholds"])}
            key = (signal["tenant_id"], signal["course_id"])
            if key not in packages:
                packages[key] = await _package(conn, *key)
            found = packages[key]
            drafts = registry.suggestions_for(signal, target_of(*found, signal["course_id"], signal["lesson_index"])) \
                if found else []
            if not drafts:
                without_target += 1  # no published version, or the lesson is not in it any more
            for draft in drafts:
                inserted = await conn.fetchrow(
                    INSERT_SQL, signal["tenant_id"], draft.course_id, draft.scope.value, draft.target_id,
                    draft.suggestion_type.value, draft.severity, draft.message,
                    msgspec.json.encode(draft.evidence).decode(), draft.source_signal_id)
                if inserted is not None:
                    created.append(inserted)
    for row in created:
        await audit(AuditAction.CONTENT_SUGGESTION_CREATED, actor=SYSTEM, tenant_id=row["tenant_id"],
                    entity_type="content_suggestion", entity_id=row["id"],
                    metadata={"signal_id": str(row["source_signal_id"]), "type": row["suggestion_type"],
                              "scope": row["scope"], "target_id": str(row["target_id"])})
    return {"day": str(day), "suggestions_created": len(created), "signals_without_target": without_target}


# ---------------------------------------------------------------------------------------------
# Reading


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    severity: str = ""
    course_id: uuid.UUID | None = None
    scope: str = ""
    status: str = ""


class Page(msgspec.Struct, frozen=True):
    rows: list[dict[str, Any]]
    page: int
    has_next: bool


def check_filters(severity: str, scope: str, status: str) -> None:
    if severity not in ("", *SEVERITIES):
        raise InvalidInput("Filter by a severity offered: high, medium or low.")
    if scope not in ("", *SuggestionScope):
        raise InvalidInput("Filter by a scope offered: course, module, lesson or quiz.")
    if status not in ("", *SuggestionStatus):
        raise InvalidInput("Filter by a status offered: open, accepted or dismissed.")


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "evidence": _decoded(row["evidence"])}


async def list_suggestions(tenant_id: uuid.UUID, filters: Filters, page: int = 1,
                           per_page: int = PER_PAGE) -> Page:
    """Open ones first, then by severity (high first), newest first."""
    check_filters(filters.severity, filters.scope, filters.status)
    where, args = ["tenant_id = {}"], [tenant_id]
    for column, value in (("severity", filters.severity), ("course_id", filters.course_id),
                          ("scope", filters.scope), ("status", filters.status)):
        if value:
            where.append(f"{column} = {{}}")
            args.append(value)
    page = max(page, 1)
    # One extra row tells whether there is a next page without a count(*).
    rows = await ContentSuggestion.raw(
        f"SELECT * FROM content_suggestion WHERE {' AND '.join(where)} "
        "ORDER BY status = 'OPEN' DESC, array_position(ARRAY['high', 'medium', 'low']::varchar[], severity), "
        f"created_at DESC, id LIMIT {int(per_page) + 1} OFFSET {(page - 1) * int(per_page)}", *args)
    return Page([_row(r) for r in rows[:per_page]], page, len(rows) > per_page)


async def get_suggestion(tenant_id: uuid.UUID, suggestion_id: uuid.UUID) -> dict[str, Any]:
    row = await ContentSuggestion.select().where(
        (ContentSuggestion.id == suggestion_id) & (ContentSuggestion.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such suggestion in this workspace.")
    return _row(row)


async def open_for_course(tenant_id: uuid.UUID, course_id: uuid.UUID, limit: int = 20) -> list[dict[str, Any]]:
    """The analytics page's "Suggested actions" panel."""
    page = await list_suggestions(tenant_id, Filters(course_id=course_id, status=SuggestionStatus.OPEN.value),
                                  per_page=limit)
    return page.rows


def regenerable(suggestion: dict[str, Any]) -> bool:
    return suggestion["scope"] in REGENERABLE


def _figure(name: str, value: Any) -> str:
    # Rates are stored as fractions (0.6818); people read them as percentages.
    if name.endswith("_rate") and isinstance(value, int | float) and 0 <= value <= 1:
        return f"{value:.0%}"
    return str(value)


def default_instruction(suggestion: dict[str, Any]) -> str:
    """The instruction a regeneration job starts from: what the suggestion says and the figures behind it.
    The admin may edit it before the job is created."""
    evidence = suggestion["evidence"]
    metrics = sorted((evidence.get("metrics") or {}).items())
    figures = ", ".join(f"{name.replace('_', ' ')} {_figure(name, value)}" for name, value in metrics)
    window = evidence.get("window", {})
    text = suggestion["message"]
    if figures:
        text += f"\nWhat learners showed ({window.get('start', '?')} to {window.get('end', '?')}): {figures}."
    return text


# ---------------------------------------------------------------------------------------------
# Deciding: OPEN -> ACCEPTED | DISMISSED, once


def _note(note: str | None) -> str:
    cleaned = (note or "").strip()
    if not cleaned:
        raise InvalidInput("Write a note: say why, so the next person knows.")
    if len(cleaned) > NOTE_MAX:
        raise InvalidInput(f"The note is at most {NOTE_MAX} characters.")
    return cleaned


def _instruction(text: str | None, suggestion: dict[str, Any]) -> str:
    cleaned = (text or "").strip() or default_instruction(suggestion)
    if len(cleaned) > INSTRUCTION_MAX:
        raise InvalidInput(f"The instruction is at most {INSTRUCTION_MAX} characters.")
    return cleaned


STATUS_WORDS = {SuggestionStatus.OPEN.value: "open", SuggestionStatus.ACCEPTED.value: "accepted",
                SuggestionStatus.DISMISSED.value: "dismissed"}


async def _decide(tenant_id: uuid.UUID, suggestion_id: uuid.UUID, to: SuggestionStatus) -> dict[str, Any]:
    rows = await ContentSuggestion.raw(
        "UPDATE content_suggestion SET status = {} WHERE id = {} AND tenant_id = {} AND status = 'OPEN' RETURNING *",
        to.value, suggestion_id, tenant_id)
    if rows:
        return _row(rows[0])
    current = await get_suggestion(tenant_id, suggestion_id)  # 404 for another workspace's
    raise Conflict(f"This suggestion was already {STATUS_WORDS.get(current['status'], current['status'])}; "
                   "a decision is made once.")


async def accept_suggestion(tenant_id: uuid.UUID, suggestion_id: uuid.UUID, note: str | None, *, actor: Actor,
                            create_job: bool = False, instruction: str | None = None) -> dict[str, Any]:
    """Accept, and optionally create a PENDING regeneration job for the target in the same transaction.
    Returns {"suggestion": row, "job": job row or None}."""
    note = _note(note)
    suggestion = await get_suggestion(tenant_id, suggestion_id)
    if create_job and not regenerable(suggestion):
        raise InvalidInput("A regeneration job redrafts a lesson or a quiz; this suggestion is about the whole "
                           "course. Accept it without a job.")
    text = _instruction(instruction, suggestion) if create_job else None
    from app.regeneration import services as regeneration  # imported late: regeneration builds on insights

    later = regeneration.AfterCommit()
    job = None
    async with engine().transaction():
        decided = await _decide(tenant_id, suggestion_id, SuggestionStatus.ACCEPTED)
        if text is not None:
            job = await regeneration.create_job(tenant_id, target_id=decided["target_id"],
                                                instruction=job_instruction(decided, text), actor=actor,
                                                suggestion_id=decided["id"], after_commit=later)
    await audit(AuditAction.CONTENT_SUGGESTION_ACCEPTED, actor=actor, tenant_id=tenant_id,
                entity_type="content_suggestion", entity_id=suggestion_id,
                metadata={"note": note, "job_id": str(job["id"]) if job else None})
    await later.run()
    return {"suggestion": decided, "job": job}


def job_instruction(suggestion: dict[str, Any], text: str) -> dict[str, Any]:
    return {"text": text, "evidence": suggestion["evidence"]}


async def estimate_for(tenant_id: uuid.UUID, suggestion: dict[str, Any], text: str) -> Any:
    """The cost guard's estimate for a job from this suggestion (shown before it is created)."""
    from app.regeneration import services as regeneration

    return await regeneration.estimate(tenant_id, suggestion["target_id"], job_instruction(suggestion, text))


async def dismiss_suggestion(tenant_id: uuid.UUID, suggestion_id: uuid.UUID, note: str | None, *,
                             actor: Actor) -> dict[str, Any]:
    note = _note(note)
    decided = await _decide(tenant_id, suggestion_id, SuggestionStatus.DISMISSED)
    await audit(AuditAction.CONTENT_SUGGESTION_DISMISSED, actor=actor, tenant_id=tenant_id,
                entity_type="content_suggestion", entity_id=suggestion_id, metadata={"note": note})
    return decided



# ---------------------------------------------------------------------------------------------
# What the pages show around a suggestion

TYPE_WORDS = {"LOW_COMPLETION": "Low completion", "HIGH_RETRY": "Quiz failed often", "DROP_OFF": "Drop-off",
              "LOW_ENGAGEMENT": "Low engagement", "CONTENT_CLARITY": "Content clarity"}
SCOPE_WORDS = {"COURSE": "Course", "MODULE": "Module", "LESSON": "Lesson", "QUIZ": "Quiz"}


async def course_titles(tenant_id: uuid.UUID) -> dict[uuid.UUID, str]:
    return {row["syllabus_id"]: row["title"] for row in await publishing.latest_packages(tenant_id)}


def target_url(suggestion: dict[str, Any]) -> str:
    if suggestion["scope"] in REGENERABLE:
        return f"/admin/items/{suggestion['target_id']}"
    return f"/admin/syllabi/{suggestion['target_id']}"


async def jobs_of(tenant_id: uuid.UUID, suggestion_id: uuid.UUID) -> list[dict[str, Any]]:
    from app.regeneration.tables import RegenerationJob

    return await RegenerationJob.select(RegenerationJob.id, RegenerationJob.status, RegenerationJob.created_at).where(
        (RegenerationJob.tenant_id == tenant_id) & (RegenerationJob.suggestion_id == suggestion_id)
    ).order_by(RegenerationJob.created_at)


async def suggestion_page(tenant_id: uuid.UUID, suggestion_id: uuid.UUID,
                          instruction: str | None = None) -> dict[str, Any]:
    """The detail page: the suggestion, its course, the signal behind it (while retention keeps it), the jobs
    it led to, and, while it is open and aims at a lesson or quiz, the job's instruction and cost estimate."""
    from app.analytics import services as analytics

    suggestion = await get_suggestion(tenant_id, suggestion_id)
    signal = None
    if suggestion["source_signal_id"] is not None:
        try:
            signal = await analytics.get_signal(tenant_id, suggestion["source_signal_id"])
        except NotFound:
            signal = None  # pruned after 180 days; the evidence keeps what it said
    text = instruction if instruction is not None else default_instruction(suggestion)
    estimate, estimate_problem = None, None
    if suggestion["status"] == SuggestionStatus.OPEN.value and regenerable(suggestion):
        try:
            estimate = await estimate_for(tenant_id, suggestion, text.strip() or default_instruction(suggestion))
        except InvalidInput as exc:
            estimate_problem = exc.message
    titles = await course_titles(tenant_id)
    return {"suggestion": suggestion, "course_title": titles.get(suggestion["course_id"]), "signal": signal,
            "jobs": await jobs_of(tenant_id, suggestion_id), "instruction": text, "estimate": estimate,
            "estimate_problem": estimate_problem, "target_url": target_url(suggestion),
            "regenerable": regenerable(suggestion)}
