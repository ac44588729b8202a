"""Authoring: course briefs, syllabus drafts, content generation, review and approval.

The only writer of course, syllabus, generation_run and content_item. Web routes call the request_*
and review functions; only worker code (tasks/authoring.py) and the demo seeder call the run_*
functions that talk to the LLM (invariant 4). Every state change is one compare-and-set UPDATE that
must change exactly one row; PostgreSQL triggers are the backstop (see app/authoring/README.md).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any
from urllib.parse import urlencode

import asyncpg
import msgspec
import structlog
from piccolo.query.methods.select import Count

from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.authoring import generation, revisions
from app.authoring.generation import (  # noqa: F401  (re-exported: the document helpers live with the generator)
    OUTPUT_TYPES,
    QUIZ_QUESTIONS,
    canonical_json,
    content_hash,
    item_doc,
    syllabus_doc,
)
from app.authoring.schemas import CourseBrief
from app.authoring.tables import (
    ContentItem,
    Course,
    GenerationRun,
    ItemKind,
    ItemStatus,
    RunKind,
    RunStatus,
    Syllabus,
    SyllabusStatus,
)
from app.db import engine
from app.errors import Conflict, InvalidInput, NotFound
from app.web.inputs import FieldProblem, explain_validation

log = structlog.get_logger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _clean_text(raw: str | None, label: str, limit: int = 2000, required: bool = False) -> str | None:
    text = (raw or "").strip()
    if required and not text:
        raise InvalidInput(f"{label} is required.")
    if len(text) > limit:
        raise InvalidInput(f"{label} can have at most {limit} characters.")
    return text or None


# ---------------------------------------------------------------------------------------------
# Fetch-with-permission helpers: a row of another tenant is "not found".


async def get_course(tenant_id: uuid.UUID, course_id: uuid.UUID) -> dict[str, Any]:
    row = await Course.select().where((Course.id == course_id) & (Course.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such course in this workspace.")
    return row


async def get_syllabus(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> dict[str, Any]:
    row = await Syllabus.select().where((Syllabus.id == syllabus_id) & (Syllabus.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such syllabus in this workspace.")
    return row


async def get_run(tenant_id: uuid.UUID, run_id: uuid.UUID) -> dict[str, Any]:
    row = await GenerationRun.select().where(
        (GenerationRun.id == run_id) & (GenerationRun.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound("No such generation run in this workspace.")
    return row


async def get_item(tenant_id: uuid.UUID, item_id: uuid.UUID) -> dict[str, Any]:
    row = await ContentItem.select().where(
        (ContentItem.id == item_id) & (ContentItem.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound("No such content item in this workspace.")
    return row


# ---------------------------------------------------------------------------------------------
# Courses and syllabus drafts


class InvalidField(InvalidInput):
    """InvalidInput about one field of a form: the page shows `problem.message` beside that field."""

    def __init__(self, problem: FieldProblem) -> None:
        super().__init__(f"{problem}.")
        self.problem = problem


# The brief form's labels, so a message names the field as the form does.
BRIEF_LABELS = {"title": "Course title", "audience": "Target audience", "level": "Skill level",
                "time_budget_hours": "Time budget (hours)", "teaching_style": "Teaching style",
                "constraints": "Constraint"}


def parse_brief(data: dict[str, Any]) -> CourseBrief:
    """The admin's form -> a validated CourseBrief, or InvalidField naming the field in words."""
    try:
        return msgspec.convert(data, type=CourseBrief, strict=False)
    except msgspec.ValidationError as exc:
        problem = explain_validation(exc, BRIEF_LABELS)
        # The choices are <select>s: an unknown value means a stale or hand-made form, not a typo.
        message = "must be one of the choices in the list" if problem.message.startswith("Invalid enum") \
            else re.sub(r"(\d)\.0\b", r"\1", problem.message)
        raise InvalidField(FieldProblem(problem.field, problem.label, message)) from None


async def request_course(tenant_id: uuid.UUID, brief: CourseBrief, *, actor: Actor,
                         llm_provider: str | None = None) -> dict[str, Any]:
    """A new course and the run that drafts its syllabus; the worker does the drafting."""
    async with engine().transaction():
        course = (await Course.insert(Course(
            tenant_id=tenant_id, title=brief.title, brief=canonical_json(brief).decode(), created_by=actor.user_id,
        )).returning(*Course.all_columns()))[0]
        run = await _insert_run(tenant_id, course["id"], RunKind.SYLLABUS, actor=actor, total=1,
                                llm_provider=llm_provider)
    await generation.wake_syllabus_run(run["id"], run["queued_at"])
    await audit(AuditAction.COURSE_REQUESTED, actor=actor, tenant_id=tenant_id, entity_type="course",
                entity_id=course["id"], metadata={"title": brief.title, "run_id": str(run["id"])})
    return run


async def regenerate_syllabus(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, instruction: str, *,
                              actor: Actor) -> dict[str, Any]:
    """Redraft with an instruction. The old draft stays readable until the new one supersedes it."""
    instruction = _clean_text(instruction, "The instruction", required=True)
    syllabus = await get_syllabus(tenant_id, syllabus_id)
    if syllabus["status"] not in (SyllabusStatus.DRAFT, SyllabusStatus.REJECTED):
        raise Conflict("Only a draft or rejected syllabus can be redrafted; this one is "
                       f"{syllabus['status'].lower()}.")
    run = await _insert_run(tenant_id, syllabus["course_id"], RunKind.SYLLABUS, actor=actor, total=1,
                            source_id=syllabus_id, instruction=instruction)
    await generation.wake_syllabus_run(run["id"], run["queued_at"])
    await audit(AuditAction.SYLLABUS_REGENERATION_REQUESTED, actor=actor, tenant_id=tenant_id,
                entity_type="syllabus", entity_id=syllabus_id,
                metadata={"instruction": instruction, "run_id": str(run["id"])})
    return run


async def retry_syllabus_run(tenant_id: uuid.UUID, run_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    """A failed syllabus run again, as a new run with the same brief, starting point and instruction."""
    failed = await get_run(tenant_id, run_id)
    if failed["kind"] != RunKind.SYLLABUS or failed["status"] != RunStatus.FAILED:
        raise Conflict("Only a failed syllabus draft can be tried again; this run is "
                       f"{failed['status'].lower()}.")
    source_id = failed["source_id"]
    if source_id is not None:
        source = await get_syllabus(tenant_id, source_id)
        if source["status"] not in (SyllabusStatus.DRAFT, SyllabusStatus.REJECTED):
            raise Conflict(f"The draft this run started from is {source['status'].lower()} now; "
                           "redraft from the course's current syllabus instead.")
    run = await _insert_run(tenant_id, failed["course_id"], RunKind.SYLLABUS, actor=actor, total=1,
                            source_id=source_id, instruction=failed["instruction"],
                            llm_provider=failed["llm_provider"])
    await generation.wake_syllabus_run(run["id"], run["queued_at"])
    await audit(AuditAction.SYLLABUS_RUN_RETRIED, actor=actor, tenant_id=tenant_id, entity_type="generation_run",
                entity_id=run_id, metadata={"new_run_id": str(run["id"])})
    return run


async def update_brief(tenant_id: uuid.UUID, course_id: uuid.UUID, brief: CourseBrief, *,
                       actor: Actor) -> dict[str, Any]:
    """Change the brief of a course that has no approved syllabus yet, and draft a syllabus from it."""
    course = await get_course(tenant_id, course_id)
    if await Syllabus.exists().where((Syllabus.course_id == course_id)
                                     & (Syllabus.status == SyllabusStatus.APPROVED.value)):
        raise Conflict("This course has an approved syllabus, so its brief is settled; "
                       "redraft or revise the syllabus instead.")
    async with engine().transaction():
        await Course.update({Course.title: brief.title, Course.brief: canonical_json(brief).decode()}).where(
            Course.id == course_id)
        run = await _insert_run(tenant_id, course_id, RunKind.SYLLABUS, actor=actor, total=1)
    await generation.wake_syllabus_run(run["id"], run["queued_at"])
    await audit(AuditAction.COURSE_BRIEF_UPDATED, actor=actor, tenant_id=tenant_id, entity_type="course",
                entity_id=course_id, metadata={"previous": msgspec.json.decode(course["brief"]),
                                               "run_id": str(run["id"])})
    return run


async def _insert_run(tenant_id: uuid.UUID, course_id: uuid.UUID, kind: RunKind, *, actor: Actor, total: int,
                      syllabus_id: uuid.UUID | None = None, source_id: uuid.UUID | None = None,
                      instruction: str | None = None, status: RunStatus = RunStatus.QUEUED,
                      llm_provider: str | None = None) -> dict[str, Any]:
    now = _now()
    return (await GenerationRun.insert(GenerationRun(
        tenant_id=tenant_id, course_id=course_id, kind=kind.value, total=total, syllabus_id=syllabus_id,
        source_id=source_id, instruction=instruction, created_by=actor.user_id, status=status.value,
        started_at=now if status == RunStatus.RUNNING else None, llm_provider=llm_provider,
        queued_at=now if status == RunStatus.QUEUED else None,
    )).returning(*GenerationRun.all_columns()))[0]


async def approve_syllabus(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, note: str | None, *,
                           actor: Actor) -> dict[str, Any]:
    note = _clean_text(note, "The note")
    syllabus = await get_syllabus(tenant_id, syllabus_id)
    changed = await Syllabus.update({
        Syllabus.status: SyllabusStatus.APPROVED.value, Syllabus.approved_by: actor.user_id,
        Syllabus.approved_at: _now(), Syllabus.approval_note: note, Syllabus.approved_hash: syllabus["content_hash"],
    }).where((Syllabus.id == syllabus_id) & (Syllabus.status == SyllabusStatus.DRAFT.value)).returning(Syllabus.id)
    if len(changed) != 1:
        raise Conflict(f"Only a draft can be approved; this syllabus is {syllabus['status'].lower()}.")
    await audit(AuditAction.SYLLABUS_APPROVED, actor=actor, tenant_id=tenant_id, entity_type="syllabus",
                entity_id=syllabus_id, metadata={"content_hash": syllabus["content_hash"], "note": note})
    return await get_syllabus(tenant_id, syllabus_id)


async def reject_syllabus(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, reason: str, *,
                          actor: Actor) -> dict[str, Any]:
    reason = _clean_text(reason, "A reason", required=True)
    syllabus = await get_syllabus(tenant_id, syllabus_id)
    changed = await Syllabus.update({
        Syllabus.status: SyllabusStatus.REJECTED.value, Syllabus.rejected_by: actor.user_id,
        Syllabus.rejected_at: _now(), Syllabus.rejection_reason: reason,
    }).where((Syllabus.id == syllabus_id) & (Syllabus.status == SyllabusStatus.DRAFT.value)).returning(Syllabus.id)
    if len(changed) != 1:
        raise Conflict(f"Only a draft can be rejected; this syllabus is {syllabus['status'].lower()}.")
    await audit(AuditAction.SYLLABUS_REJECTED, actor=actor, tenant_id=tenant_id, entity_type="syllabus",
                entity_id=syllabus_id, metadata={"reason": reason})
    return await get_syllabus(tenant_id, syllabus_id)


# ---------------------------------------------------------------------------------------------
# Content generation: fan-out per module, lessons -> quiz per lesson -> project per module


async def request_content(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, *, actor: Actor,
                          llm_provider: str | None = None) -> dict[str, Any]:
    """One item per lesson, quiz and project. Lessons are queued at once; a quiz waits for its lesson and a
    project for its module's lessons (generation.resolve_dependents queues them)."""
    syllabus = await get_syllabus(tenant_id, syllabus_id)
    if syllabus["status"] != SyllabusStatus.APPROVED:
        raise Conflict("Content can only be generated from an approved syllabus. Approve the syllabus first.")
    if await GenerationRun.exists().where(
        (GenerationRun.syllabus_id == syllabus_id) & (GenerationRun.kind == RunKind.CONTENT.value)
    ):
        raise Conflict("Content for this syllabus has already been requested; regenerate single items instead.")
    document = syllabus_doc(syllabus)
    slots = [(ItemKind.LESSON, m.index, lesson.index, lesson.title) for m in document.modules for lesson in m.lessons]
    slots += [(ItemKind.QUIZ, m.index, lesson.index, f"Quiz: {lesson.title}")
              for m in document.modules for lesson in m.lessons]
    slots += [(ItemKind.PROJECT, m.index, None, f"Project: {m.title}") for m in document.modules]
    now = _now()
    async with engine().transaction():
        run = await _insert_run(tenant_id, syllabus["course_id"], RunKind.CONTENT, actor=actor, total=len(slots),
                                syllabus_id=syllabus_id, status=RunStatus.RUNNING, llm_provider=llm_provider)
        lessons = await ContentItem.insert(*[
            ContentItem(tenant_id=tenant_id, syllabus_id=syllabus_id, run_id=run["id"], kind=kind.value,
                        module_index=module, lesson_index=lesson, title=title[:200], created_by=actor.user_id,
                        status=(ItemStatus.QUEUED if kind == ItemKind.LESSON else ItemStatus.PENDING).value,
                        queued_at=now if kind == ItemKind.LESSON else None)
            for kind, module, lesson, title in slots
        ]).returning(ContentItem.id, ContentItem.kind)
    for item in lessons:
        if item["kind"] == ItemKind.LESSON:
            await generation.wake_item(item["id"], now)
    await audit(AuditAction.CONTENT_GENERATION_REQUESTED, actor=actor, tenant_id=tenant_id, entity_type="syllabus",
                entity_id=syllabus_id, metadata={"run_id": str(run["id"]), "items": len(slots)})
    return run


# ---------------------------------------------------------------------------------------------
# Review: approve, reject, regenerate one item, approve a whole module


async def approve_item(tenant_id: uuid.UUID, item_id: uuid.UUID, note: str | None, *, actor: Actor) -> dict:
    note = _clean_text(note, "The note")
    item = await get_item(tenant_id, item_id)
    changed = await ContentItem.update({
        ContentItem.status: ItemStatus.APPROVED.value, ContentItem.approved_by: actor.user_id,
        ContentItem.approved_at: _now(), ContentItem.approval_note: note,
        ContentItem.approved_hash: item["content_hash"],
    }).where((ContentItem.id == item_id) & (ContentItem.status == ItemStatus.DRAFT.value)).returning(ContentItem.id)
    if len(changed) != 1:
        raise Conflict(f"Only a draft can be approved; this item is {item['status'].lower()}.")
    await audit(AuditAction.CONTENT_APPROVED, actor=actor, tenant_id=tenant_id, entity_type="content_item",
                entity_id=item_id, metadata={"kind": item["kind"], "content_hash": item["content_hash"], "note": note})
    return await get_item(tenant_id, item_id)


async def reject_item(tenant_id: uuid.UUID, item_id: uuid.UUID, reason: str, *, actor: Actor) -> dict:
    reason = _clean_text(reason, "A reason", required=True)
    item = await get_item(tenant_id, item_id)
    changed = await ContentItem.update({
        ContentItem.status: ItemStatus.REJECTED.value, ContentItem.rejected_by: actor.user_id,
        ContentItem.rejected_at: _now(), ContentItem.rejection_reason: reason,
    }).where((ContentItem.id == item_id) & (ContentItem.status == ItemStatus.DRAFT.value)).returning(ContentItem.id)
    if len(changed) != 1:
        raise Conflict(f"Only a draft can be rejected; this item is {item['status'].lower()}.")
    await audit(AuditAction.CONTENT_REJECTED, actor=actor, tenant_id=tenant_id, entity_type="content_item",
                entity_id=item_id, metadata={"kind": item["kind"], "reason": reason})
    return await get_item(tenant_id, item_id)


REPLACEABLE = (ItemStatus.DRAFT, ItemStatus.FAILED, ItemStatus.REJECTED)


async def regenerate_item(tenant_id: uuid.UUID, item_id: uuid.UUID, instruction: str | None, *,
                          actor: Actor) -> dict[str, Any]:
    """A new item supersedes this draft/failed/rejected one; a worker generates it. From an approved item it
    is a new revision (app/authoring/revisions.py): the approved row stays, and stays published, until the
    revision is approved; an instruction says what to change."""
    instruction = _clean_text(instruction, "The instruction")
    item = await get_item(tenant_id, item_id)
    revision_of_approved = item["status"] == ItemStatus.APPROVED
    if revision_of_approved:
        await revisions.check_revisable(item)
        if not instruction:
            raise InvalidInput("Say what the new revision should change: an approved item is regenerated only "
                               "with an instruction.")
    elif item["status"] not in REPLACEABLE:
        raise Conflict(_not_replaceable(item))
    syllabus = await get_syllabus(tenant_id, item["syllabus_id"])
    try:
        async with engine().transaction():
            run = await _insert_run(tenant_id, syllabus["course_id"], RunKind.ITEM, actor=actor, total=1,
                                    syllabus_id=item["syllabus_id"], source_id=item_id, instruction=instruction,
                                    status=RunStatus.RUNNING)
            [new], queued = await _replace_items([item], run, instruction, actor)
    except asyncpg.UniqueViolationError:  # the content_item_open_slot index: a revision opened meanwhile
        await revisions.check_revisable(await get_item(tenant_id, item_id))
        raise Conflict("This item changed meanwhile; reload it and try again.") from None
    for queued_id, queued_at in queued:
        await generation.wake_item(queued_id, queued_at)
    await audit(AuditAction.CONTENT_REGENERATION_REQUESTED, actor=actor, tenant_id=tenant_id,
                entity_type="content_item", entity_id=item_id,
                metadata={"new_item_id": str(new["id"]), "instruction": instruction,
                          "revision_of_approved": revision_of_approved})
    return new


async def regenerate_failed(tenant_id: uuid.UUID, run_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    """Every FAILED item of a run, regenerated in one new run (lessons first: their quizzes and projects
    wait for them)."""
    source = await get_run(tenant_id, run_id)
    failed = await ContentItem.select().where(
        (ContentItem.run_id == run_id) & (ContentItem.status == ItemStatus.FAILED.value)
    ).order_by(ContentItem.kind).order_by(ContentItem.module_index).order_by(ContentItem.lesson_index)
    if not failed:
        raise Conflict("Nothing in this run has failed; there is nothing to regenerate.")
    async with engine().transaction():
        run = await _insert_run(tenant_id, source["course_id"], RunKind.RETRY, actor=actor, total=len(failed),
                                syllabus_id=source["syllabus_id"], source_id=run_id, status=RunStatus.RUNNING,
                                llm_provider=source["llm_provider"])
        _new, queued = await _replace_items(failed, run, None, actor)
    for queued_id, queued_at in queued:
        await generation.wake_item(queued_id, queued_at)
    await audit(AuditAction.FAILED_CONTENT_REGENERATION_REQUESTED, actor=actor, tenant_id=tenant_id,
                entity_type="generation_run", entity_id=run_id,
                metadata={"new_run_id": str(run["id"]), "items": [str(item["id"]) for item in failed]})
    return run


async def _replace_items(items: list[dict[str, Any]], run: dict[str, Any], instruction: str | None,
                         actor: Actor) -> tuple[list[dict[str, Any]], list[tuple[uuid.UUID, dt.datetime]]]:
    """Inside a transaction: supersede each item and insert its successor in `run`. A lesson is queued at
    once; a quiz or project is judged by its lessons. Returns the new rows and what to wake. An approved
    item is not superseded: its successor is a revision, and the newest approved item is what gets published."""
    now = _now()
    new_rows, queued, modules = [], [], set()
    for item in items:
        superseded = await ContentItem.update({ContentItem.status: ItemStatus.SUPERSEDED.value}).where(
            (ContentItem.id == item["id"]) & (ContentItem.status == item["status"])
        ).returning(ContentItem.id) if item["status"] != ItemStatus.APPROVED else [item]
        if len(superseded) != 1:
            raise Conflict(f"{item['title']} changed meanwhile; reload and try again.")
        lesson = item["kind"] == ItemKind.LESSON
        new_rows.append((await ContentItem.insert(ContentItem(
            tenant_id=item["tenant_id"], syllabus_id=item["syllabus_id"], run_id=run["id"], kind=item["kind"],
            module_index=item["module_index"], lesson_index=item["lesson_index"], title=item["title"],
            supersedes_id=item["id"], instruction=instruction, created_by=actor.user_id,
            status=(ItemStatus.QUEUED if lesson else ItemStatus.PENDING).value, queued_at=now if lesson else None,
        )).returning(*ContentItem.all_columns()))[0])
        if lesson:
            queued.append((new_rows[-1]["id"], now))
        else:
            modules.add((item["syllabus_id"], item["module_index"]))
    runs = {run["id"], *(item["run_id"] for item in items if item["status"] != ItemStatus.APPROVED)}
    for syllabus_id, module_index in sorted(modules):
        module_queued, module_runs = await generation.resolve_dependents(syllabus_id, module_index)
        queued += module_queued
        runs |= module_runs
    await generation.settle_runs(runs)
    return new_rows, queued


def _not_replaceable(item: dict[str, Any]) -> str:
    if item["status"] == ItemStatus.BLOCKED:
        return (f"This item waits for {item['waiting_for']}; regenerate that, and this one follows by itself.")
    if item["status"] in (ItemStatus.PENDING, ItemStatus.QUEUED, ItemStatus.GENERATING):
        return "This item is still being generated; wait for it to finish."
    return f"Only a draft, failed or rejected item can be regenerated; this one is {item['status'].lower()}."


async def approve_module(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, module_index: int, note: str | None, *,
                         actor: Actor) -> int:
    """Approve every draft of one module, each with its own audit row; returns how many."""
    await get_syllabus(tenant_id, syllabus_id)
    drafts = await ContentItem.select(ContentItem.id).where(
        (ContentItem.syllabus_id == syllabus_id) & (ContentItem.tenant_id == tenant_id)
        & (ContentItem.module_index == module_index) & (ContentItem.status == ItemStatus.DRAFT.value)
    )
    approved = 0
    for row in drafts:
        try:
            await approve_item(tenant_id, row["id"], note, actor=actor)
            approved += 1
        except Conflict:
            pass  # approved (or changed) by someone else meanwhile
    return approved


# ---------------------------------------------------------------------------------------------
# Review at speed: many items at once, and the next item waiting


BULK_LIMIT = 200


class BulkOutcome(msgspec.Struct, frozen=True, kw_only=True):
    verb: str  # "Approved" or "Rejected"
    done: list[dict[str, Any]]
    skipped: list[dict[str, Any]]  # changed by someone else meanwhile (approved, rejected, regenerated)

    def summary(self) -> str:
        text = f"{self.verb} {len(self.done)}" if self.done else f"Nothing {self.verb.lower()}"
        if self.skipped:
            titles = ", ".join(item["title"] for item in self.skipped[:5])
            more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
            text += f"; {len(self.skipped)} had already changed: {titles}{more}"
        return text + "."


async def review_items(tenant_id: uuid.UUID, action: str, raw_ids: list[str], note: str | None, *,
                       actor: Actor) -> BulkOutcome:
    """The review queue's bulk bar: approve or reject the selected items (`note` is the reason to reject)."""
    if action == "approve":
        return await approve_items(tenant_id, _parse_ids(raw_ids), note, actor=actor)
    if action == "reject":
        return await reject_items(tenant_id, _parse_ids(raw_ids), note, actor=actor)
    raise InvalidInput("Choose “Approve selected” or “Reject selected”.")


async def approve_items(tenant_id: uuid.UUID, item_ids: list[uuid.UUID], note: str | None, *,
                        actor: Actor) -> BulkOutcome:
    """Each item through approve_item (its own compare-and-set and audit row); items that are no longer
    drafts are skipped and reported, not an error: a colleague got there first."""
    items = await _selected_items(tenant_id, item_ids, "approve")
    note = _clean_text(note, "The note")
    return await _each(items, "Approved", lambda item: approve_item(tenant_id, item["id"], note, actor=actor))


async def reject_items(tenant_id: uuid.UUID, item_ids: list[uuid.UUID], reason: str | None, *,
                       actor: Actor) -> BulkOutcome:
    items = await _selected_items(tenant_id, item_ids, "reject")
    if not (reason or "").strip():
        raise InvalidInput("Rejecting needs a reason: type it in the note field; it is recorded for every "
                           "selected item.")
    reason = _clean_text(reason, "The reason")
    return await _each(items, "Rejected", lambda item: reject_item(tenant_id, item["id"], reason, actor=actor))


def _parse_ids(raw_ids: list[str]) -> list[uuid.UUID]:
    try:
        return list(dict.fromkeys(uuid.UUID(raw) for raw in raw_ids))
    except ValueError:
        raise InvalidInput("The selection contains something that is not an item; reload the page and "
                           "select again.") from None


async def _selected_items(tenant_id: uuid.UUID, item_ids: list[uuid.UUID], verb: str) -> list[dict[str, Any]]:
    """All of the selected items, in the order given, or InvalidInput before anything changes."""
    if not item_ids:
        raise InvalidInput(f"Select the items to {verb} first: tick their boxes in the table.")
    if len(item_ids) > BULK_LIMIT:
        raise InvalidInput(f"Select at most {BULK_LIMIT} items at a time; {len(item_ids)} were sent.")
    rows = await ContentItem.select(ContentItem.id, ContentItem.title).where(
        ContentItem.id.is_in(item_ids) & (ContentItem.tenant_id == tenant_id))
    by_id = {row["id"]: row for row in rows}
    if len(by_id) != len(item_ids):
        raise InvalidInput("Some of the selected items are not in this workspace; reload the page and select again.")
    return [by_id[item_id] for item_id in item_ids]


async def _each(items: list[dict[str, Any]], verb: str, transition: Any) -> BulkOutcome:
    done, skipped = [], []
    for item in items:
        try:
            done.append(await transition(item))
        except Conflict:
            skipped.append(item)
    return BulkOutcome(verb=verb, done=done, skipped=skipped)


class ReviewPosition(msgspec.Struct, frozen=True, kw_only=True):
    """Where an item stands among the drafts of its course, in queue order."""

    waiting: int  # drafts in the course, this item included if it is one
    position: int | None  # this item's place among them (None: it is not a draft)
    next: dict[str, Any] | None  # the next other draft, wrapping to the start
    previous: dict[str, Any] | None


def _queue_key(row: dict[str, Any]) -> tuple:
    # The review queue's order within a course (list_items): module, kind, lesson (a project has none).
    return row["module_index"], row["kind"], row["lesson_index"] or 0


async def review_position(item: dict[str, Any]) -> ReviewPosition:
    """The drafts around `item` in its course, for "Approve and next", "Skip" and the j/k shortcuts. One
    query: a course has at most a few hundred items, and only the drafts' keys are read."""
    drafts = sorted(await ContentItem.select(
        ContentItem.id, ContentItem.title, ContentItem.kind, ContentItem.module_index, ContentItem.lesson_index,
    ).where((ContentItem.syllabus_id == item["syllabus_id"]) & (ContentItem.tenant_id == item["tenant_id"])
            & (ContentItem.status == ItemStatus.DRAFT.value)), key=_queue_key)
    key = _queue_key(item)
    before = [row for row in drafts if row["id"] != item["id"] and _queue_key(row) <= key]
    after = [row for row in drafts if row["id"] != item["id"] and _queue_key(row) > key]
    is_draft = any(row["id"] == item["id"] for row in drafts)
    return ReviewPosition(waiting=len(drafts), position=len(before) + 1 if is_draft else None,
                          next=(after + before)[0] if after or before else None,
                          previous=(after + before)[-1] if after or before else None)


async def course_of(tenant_id: uuid.UUID, item: dict[str, Any]) -> dict[str, Any]:
    return await get_course(tenant_id, (await get_syllabus(tenant_id, item["syllabus_id"]))["course_id"])


# ---------------------------------------------------------------------------------------------
# Queries for the admin pages


async def list_courses(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    courses = await Course.select().where(Course.tenant_id == tenant_id).order_by(Course.created_at, ascending=False)
    latest = await Syllabus.raw(
        "SELECT DISTINCT ON (course_id) course_id, id, status, revision FROM syllabus WHERE tenant_id = {} "
        "ORDER BY course_id, revision DESC", tenant_id)
    runs = await GenerationRun.raw(
        "SELECT DISTINCT ON (course_id) course_id, id, kind, status, total, done, failed FROM generation_run "
        "WHERE tenant_id = {} ORDER BY course_id, created_at DESC", tenant_id)
    by_course = {row["course_id"]: row for row in latest}
    run_by_course = {row["course_id"]: row for row in runs}
    return [{**c, "syllabus": by_course.get(c["id"]), "run": run_by_course.get(c["id"])} for c in courses]


async def course_syllabi(tenant_id: uuid.UUID, course_id: uuid.UUID) -> list[dict[str, Any]]:
    return await Syllabus.select(
        Syllabus.id, Syllabus.revision, Syllabus.status, Syllabus.created_at, Syllabus.instruction,
        Syllabus.approved_at,
    ).where((Syllabus.course_id == course_id) & (Syllabus.tenant_id == tenant_id)).order_by(
        Syllabus.revision, ascending=False)


async def course_runs(tenant_id: uuid.UUID, course_id: uuid.UUID) -> list[dict[str, Any]]:
    return await GenerationRun.select().where(
        (GenerationRun.course_id == course_id) & (GenerationRun.tenant_id == tenant_id)
    ).order_by(GenerationRun.created_at, ascending=False).limit(20)


async def content_run_for(syllabus_id: uuid.UUID) -> dict[str, Any] | None:
    return await GenerationRun.select().where(
        (GenerationRun.syllabus_id == syllabus_id) & (GenerationRun.kind == RunKind.CONTENT.value)
    ).first()


async def blocking_lessons(item: dict[str, Any]) -> list[dict[str, Any]]:
    """What a BLOCKED item waits for: the failed or rejected lessons it is made from, to link to."""
    if item["status"] != ItemStatus.BLOCKED:
        return []
    query = ContentItem.select(ContentItem.id, ContentItem.title, ContentItem.lesson_index, ContentItem.status).where(
        (ContentItem.syllabus_id == item["syllabus_id"]) & (ContentItem.module_index == item["module_index"])
        & (ContentItem.kind == ItemKind.LESSON.value)
        & ContentItem.status.is_in([ItemStatus.FAILED.value, ItemStatus.REJECTED.value, *generation.MOVING])
    )
    if item["kind"] == ItemKind.QUIZ:
        query = query.where(ContentItem.lesson_index == item["lesson_index"])
    return await query.order_by(ContentItem.lesson_index)


class ItemFilter(msgspec.Struct, frozen=True, kw_only=True):
    syllabus_id: uuid.UUID | None = None
    module_index: int | None = None
    kind: str | None = None
    status: str | None = ItemStatus.DRAFT.value  # None: every status but superseded

    def query(self, page: int | None = None, *, status: str | None = None) -> str:
        """The queue's URL query for these filters (status "ALL" for none), to keep them in links; `status`
        overrides the status filter."""
        pairs = [("syllabus", self.syllabus_id or ""), ("module", self.module_index or ""), ("kind", self.kind or ""),
                 ("status", status or self.status or "ALL")]
        return urlencode(pairs + ([("page", page)] if page else []))


PAGE_SIZE = 50


class ItemPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of the review queue: `items` are rows first..last of `total`."""

    items: list[dict[str, Any]]
    total: int
    page: int
    pages: int

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0


def _filtered(query: Any, tenant_id: uuid.UUID, filters: ItemFilter, *, by_status: bool = True) -> Any:
    query = query.where(ContentItem.tenant_id == tenant_id)
    if by_status and filters.status:
        query = query.where(ContentItem.status == filters.status)
    else:
        query = query.where(ContentItem.status != ItemStatus.SUPERSEDED.value)
    if filters.syllabus_id:
        query = query.where(ContentItem.syllabus_id == filters.syllabus_id)
    if filters.module_index:
        query = query.where(ContentItem.module_index == filters.module_index)
    if filters.kind:
        query = query.where(ContentItem.kind == filters.kind)
    return query


async def list_items(tenant_id: uuid.UUID, filters: ItemFilter, page: int = 1) -> ItemPage:
    """A page of the queue in queue order (course, module, kind, lesson). A page past the end shows the last
    one: a bookmarked page 5 of a queue that has since shrunk still shows what is left."""
    total = await _filtered(ContentItem.count(), tenant_id, filters)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages)
    query = _filtered(ContentItem.select(
        ContentItem.id, ContentItem.syllabus_id, ContentItem.kind, ContentItem.module_index, ContentItem.lesson_index,
        ContentItem.title, ContentItem.status, ContentItem.error, ContentItem.waiting_for, ContentItem.created_at,
        ContentItem.generated_at, ContentItem.approved_at,
    ), tenant_id, filters)
    items = await query.order_by(ContentItem.syllabus_id).order_by(ContentItem.module_index).order_by(
        ContentItem.kind).order_by(ContentItem.lesson_index).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    return ItemPage(items=items, total=total, page=page, pages=pages)


async def status_counts(tenant_id: uuid.UUID, filters: ItemFilter) -> dict[str, int]:
    """How many items of each status match the other filters ("Waiting for review (12)"), "ALL" for all."""
    rows = await _filtered(ContentItem.select(ContentItem.status, Count()), tenant_id, filters,
                           by_status=False).group_by(ContentItem.status)
    counts = {row["status"]: row["count"] for row in rows}
    return {**counts, "ALL": sum(counts.values())}


async def review_counts(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> dict[int, dict[str, int]]:
    """Per module: how many items are in each status (superseded ones left out)."""
    rows = await ContentItem.raw(
        "SELECT module_index, status, count(*) AS n FROM content_item WHERE tenant_id = {} AND syllabus_id = {} "
        "AND status <> 'SUPERSEDED' GROUP BY module_index, status", tenant_id, syllabus_id)
    counts: dict[int, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["module_index"], {})[row["status"]] = row["n"]
    return counts


async def reviewable_syllabi(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    return await Syllabus.select(Syllabus.id, Syllabus.course_id.title.as_alias("title"), Syllabus.revision).where(
        (Syllabus.tenant_id == tenant_id) & (Syllabus.status == SyllabusStatus.APPROVED.value)
    ).order_by(Syllabus.created_at, ascending=False)
