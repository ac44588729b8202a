"""Authoring: course briefs, syllabus drafts, content generation, review and approval.

The only writer of course, syllabus, generation_run and content_item. Web routes call the request_*
and review functions; only worker code (tasks/authoring.py) and the demo seeder call the run_*
functions that talk to the LLM (invariant 4). Every state change is one compare-and-set UPDATE that
must change exactly one row; PostgreSQL triggers are the backstop (see app/authoring/README.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import OrderedDict
from typing import Any

import msgspec
import structlog

from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.authoring.normalize import normalize_lesson, normalize_syllabus, tidy
from app.authoring.schemas import CourseBrief, Lesson, Project, Quiz
from app.authoring.schemas import Syllabus as SyllabusDoc
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
from app.llm.generate import GenerationFailed, generate
from app.metrics import GENERATED_ITEMS
from app.queue import enqueue

log = structlog.get_logger(__name__)
QUIZ_QUESTIONS = 5
OPEN_ITEM_STATES = (ItemStatus.PENDING, ItemStatus.GENERATING, ItemStatus.DRAFT, ItemStatus.FAILED,
                    ItemStatus.REJECTED)
OUTPUT_TYPES: dict[str, type] = {ItemKind.LESSON: Lesson, ItemKind.QUIZ: Quiz, ItemKind.PROJECT: Project}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def canonical_json(value: Any) -> bytes:
    """Stable bytes for a typed document: field order from the type, no whitespace."""
    return msgspec.json.encode(value)


def content_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


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


def syllabus_doc(row: dict[str, Any]) -> SyllabusDoc:
    return msgspec.json.decode(row["content"], type=SyllabusDoc)


def item_doc(row: dict[str, Any]) -> Lesson | Quiz | Project | None:
    if row["content"] is None:
        return None
    return msgspec.json.decode(row["content"], type=OUTPUT_TYPES[row["kind"]])


# ---------------------------------------------------------------------------------------------
# Courses and syllabus drafts


def parse_brief(data: dict[str, Any]) -> CourseBrief:
    """The admin's form -> a validated CourseBrief, or InvalidInput naming the field."""
    try:
        return msgspec.convert(data, type=CourseBrief, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"Check the course brief: {exc}.") from None


async def request_course(tenant_id: uuid.UUID, brief: CourseBrief, *, actor: Actor) -> dict[str, Any]:
    """A new course and the run that drafts its syllabus; the worker does the drafting."""
    async with engine().transaction():
        course = (await Course.insert(Course(
            tenant_id=tenant_id, title=brief.title, brief=canonical_json(brief).decode(), created_by=actor.user_id,
        )).returning(*Course.all_columns()))[0]
        run = await _insert_run(tenant_id, course["id"], RunKind.SYLLABUS, actor=actor, total=1)
    await _enqueue_syllabus(run)
    await audit(AuditAction.COURSE_REQUESTED, actor=actor, tenant_id=tenant_id, entity_type="course",
                entity_id=course["id"], metadata={"title": brief.title, "run_id": str(run["id"])})
    return run


async def regenerate_syllabus(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, instruction: str, *,
                              actor: Actor) -> dict[str, Any]:
    """Redraft with an instruction. The old draft stays readable until the new one supersedes it."""
    instruction = _clean_text(instruction, "The instruction", required=True)
    syllabus = await get_syllabus(tenant_id, syllabus_id)
    if syllabus["status"] not in (SyllabusStatus.DRAFT, SyllabusStatus.REJECTED):
        raise Conflict(f"Only a draft or rejected syllabus can be redrafted; this one is {syllabus['status']}.")
    run = await _insert_run(tenant_id, syllabus["course_id"], RunKind.SYLLABUS, actor=actor, total=1,
                            source_id=syllabus_id, instruction=instruction)
    await _enqueue_syllabus(run)
    await audit(AuditAction.SYLLABUS_REGENERATION_REQUESTED, actor=actor, tenant_id=tenant_id,
                entity_type="syllabus", entity_id=syllabus_id,
                metadata={"instruction": instruction, "run_id": str(run["id"])})
    return run


async def _insert_run(tenant_id: uuid.UUID, course_id: uuid.UUID, kind: RunKind, *, actor: Actor, total: int,
                      syllabus_id: uuid.UUID | None = None, source_id: uuid.UUID | None = None,
                      instruction: str | None = None, status: RunStatus = RunStatus.QUEUED) -> dict[str, Any]:
    return (await GenerationRun.insert(GenerationRun(
        tenant_id=tenant_id, course_id=course_id, kind=kind.value, total=total, syllabus_id=syllabus_id,
        source_id=source_id, instruction=instruction, created_by=actor.user_id, status=status.value,
        started_at=_now() if status == RunStatus.RUNNING else None,
    )).returning(*GenerationRun.all_columns()))[0]


async def _enqueue_syllabus(run: dict[str, Any]) -> None:
    from tasks.authoring import generate_syllabus  # tasks import this module

    try:
        await enqueue(generate_syllabus, run_id=str(run["id"]))
    except Exception as exc:
        await _finish_run(run["id"], RunStatus.FAILED, error=f"Could not enqueue: {exc}")
        raise


async def run_syllabus_generation(run_id: uuid.UUID) -> dict[str, Any]:
    """Worker: draft (or redraft) a syllabus. Safe to run twice: only the claim winner works."""
    run = await _claim_run(run_id)
    if run is None:
        return {"run_id": str(run_id), "skipped": True}
    course = (await Course.select().where(Course.id == run["course_id"]).first())
    brief = msgspec.json.decode(course["brief"], type=CourseBrief)
    previous = await Syllabus.select().where(Syllabus.id == run["source_id"]).first() if run["source_id"] else None
    variables = {
        "brief": msgspec.to_builtins(brief),
        "instruction": run["instruction"],
        "previous": msgspec.json.decode(previous["content"]) if previous else None,
    }
    try:
        generated = await generate("syllabus", SyllabusDoc, variables, tenant_id=run["tenant_id"], run_id=run_id)
    except GenerationFailed as exc:
        GENERATED_ITEMS.labels(kind="SYLLABUS", outcome="failed").inc()
        await _finish_run(run_id, RunStatus.FAILED, error="\n".join(exc.errors), failed=1)
        return {"run_id": str(run_id), "status": "FAILED", "errors": exc.errors}
    document = normalize_syllabus(generated.value, brief)
    async with engine().transaction():
        revision = await Syllabus.count().where(Syllabus.course_id == run["course_id"]) + 1
        syllabus = (await Syllabus.insert(Syllabus(
            tenant_id=run["tenant_id"], course_id=run["course_id"], revision=revision,
            content=canonical_json(document).decode(), content_hash=content_hash(document),
            generation=msgspec.json.encode(generated.metadata).decode(), run_id=run_id,
            supersedes_id=run["source_id"], instruction=run["instruction"], created_by=run["created_by"],
        )).returning(Syllabus.id))[0]
        if previous is not None:
            # The redraft replaces the draft it started from (unless that was approved meanwhile).
            await Syllabus.update({Syllabus.status: SyllabusStatus.SUPERSEDED.value}).where(
                (Syllabus.id == previous["id"])
                & Syllabus.status.is_in([SyllabusStatus.DRAFT.value, SyllabusStatus.REJECTED.value])
            )
        await GenerationRun.update({GenerationRun.syllabus_id: syllabus["id"]}).where(GenerationRun.id == run_id)
        await _finish_run(run_id, RunStatus.SUCCEEDED, done=1)
    GENERATED_ITEMS.labels(kind="SYLLABUS", outcome="draft").inc()
    return {"run_id": str(run_id), "status": "SUCCEEDED", "syllabus_id": str(syllabus["id"])}


async def _claim_run(run_id: uuid.UUID) -> dict[str, Any] | None:
    rows = await GenerationRun.update(
        {GenerationRun.status: RunStatus.RUNNING.value, GenerationRun.started_at: _now()}
    ).where((GenerationRun.id == run_id) & (GenerationRun.status == RunStatus.QUEUED.value)).returning(
        *GenerationRun.all_columns()
    )
    return rows[0] if rows else None


async def _finish_run(run_id: uuid.UUID, status: RunStatus, *, error: str | None = None, done: int = 0,
                      failed: int = 0) -> None:
    await GenerationRun.update({
        GenerationRun.status: status.value, GenerationRun.error: error, GenerationRun.finished_at: _now(),
        GenerationRun.done: GenerationRun.done + done, GenerationRun.failed: GenerationRun.failed + failed,
    }).where((GenerationRun.id == run_id) & GenerationRun.status.is_in([RunStatus.QUEUED.value,
                                                                         RunStatus.RUNNING.value]))


async def approve_syllabus(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, note: str | None, *,
                           actor: Actor) -> dict[str, Any]:
    note = _clean_text(note, "The note")
    syllabus = await get_syllabus(tenant_id, syllabus_id)
    changed = await Syllabus.update({
        Syllabus.status: SyllabusStatus.APPROVED.value, Syllabus.approved_by: actor.user_id,
        Syllabus.approved_at: _now(), Syllabus.approval_note: note, Syllabus.approved_hash: syllabus["content_hash"],
    }).where((Syllabus.id == syllabus_id) & (Syllabus.status == SyllabusStatus.DRAFT.value)).returning(Syllabus.id)
    if len(changed) != 1:
        raise Conflict(f"Only a draft can be approved; this syllabus is {syllabus['status']}.")
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
        raise Conflict(f"Only a draft can be rejected; this syllabus is {syllabus['status']}.")
    await audit(AuditAction.SYLLABUS_REJECTED, actor=actor, tenant_id=tenant_id, entity_type="syllabus",
                entity_id=syllabus_id, metadata={"reason": reason})
    return await get_syllabus(tenant_id, syllabus_id)


# ---------------------------------------------------------------------------------------------
# Content generation: fan-out per module, lessons -> quiz per lesson -> project per module


async def request_content(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
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
    async with engine().transaction():
        run = await _insert_run(tenant_id, syllabus["course_id"], RunKind.CONTENT, actor=actor, total=len(slots),
                                syllabus_id=syllabus_id, status=RunStatus.RUNNING)
        await ContentItem.insert(*[
            ContentItem(tenant_id=tenant_id, syllabus_id=syllabus_id, run_id=run["id"], kind=kind.value,
                        module_index=module, lesson_index=lesson, title=title[:200], created_by=actor.user_id)
            for kind, module, lesson, title in slots
        ])
    lessons = await ContentItem.select(ContentItem.id).where(
        (ContentItem.run_id == run["id"]) & (ContentItem.kind == ItemKind.LESSON.value)
    ).order_by(ContentItem.module_index).order_by(ContentItem.lesson_index)
    for item in lessons:
        await _enqueue_item(item["id"])
    await audit(AuditAction.CONTENT_GENERATION_REQUESTED, actor=actor, tenant_id=tenant_id, entity_type="syllabus",
                entity_id=syllabus_id, metadata={"run_id": str(run["id"]), "items": len(slots)})
    return run


async def _enqueue_item(item_id: uuid.UUID) -> None:
    from tasks.authoring import generate_item

    try:
        await enqueue(generate_item, key=f"generate_item:{item_id}", item_id=str(item_id))
    except Exception as exc:
        await _fail_item(item_id, f"Could not enqueue: {exc}", from_status=ItemStatus.PENDING)
        raise


async def run_item_generation(item_id: uuid.UUID) -> dict[str, Any]:
    """Worker: generate one lesson, quiz or project. Safe to run twice: only the claim winner works."""
    claimed = await ContentItem.update({ContentItem.status: ItemStatus.GENERATING.value}).where(
        (ContentItem.id == item_id) & (ContentItem.status == ItemStatus.PENDING.value)
    ).returning(*ContentItem.all_columns())
    if not claimed:
        return {"item_id": str(item_id), "skipped": True}
    item = claimed[0]
    document = await _syllabus_document(item["syllabus_id"])
    try:
        variables = await _item_variables(item, document)
        generated = await generate(item["kind"].lower(), OUTPUT_TYPES[item["kind"]], variables,
                                   tenant_id=item["tenant_id"], run_id=item["run_id"],
                                   check=_quiz_rules if item["kind"] == ItemKind.QUIZ else None)
    except (GenerationFailed, _MissingDependency) as exc:
        error = "\n".join(exc.errors) if isinstance(exc, GenerationFailed) else str(exc)
        await _fail_item(item_id, error, from_status=ItemStatus.GENERATING)
        await _after_item(item)
        return {"item_id": str(item_id), "status": "FAILED", "error": error}
    value = generated.value
    if item["kind"] == ItemKind.LESSON:
        outline = document.modules[item["module_index"] - 1].lessons[item["lesson_index"] - 1]
        value = normalize_lesson(value, outline, document.course.level)
    else:
        value = tidy(value)
    async with engine().transaction():  # the draft and its run's counter commit together
        stored = await ContentItem.update({
            ContentItem.status: ItemStatus.DRAFT.value, ContentItem.content: canonical_json(value).decode(),
            ContentItem.content_hash: content_hash(value), ContentItem.generated_at: _now(),
            ContentItem.generation: msgspec.json.encode(generated.metadata).decode(), ContentItem.error: None,
        }).where((ContentItem.id == item_id) & (ContentItem.status == ItemStatus.GENERATING.value)).returning(
            ContentItem.id
        )
        if not stored:
            raise RuntimeError(f"content item {item_id} left GENERATING while it was being generated")
        await _count_run(item["run_id"], done=1)
    GENERATED_ITEMS.labels(kind=item["kind"], outcome="draft").inc()
    await _after_item(item)
    return {"item_id": str(item_id), "status": "DRAFT", "repairs": generated.metadata.repairs}


class _MissingDependency(Exception):
    pass


def _quiz_rules(quiz: Quiz) -> str | None:
    """Rules for newly generated quizzes. They are checked at generation, not in the Quiz type, because
    the type also decodes published packages, which must stay readable when a rule is added later."""
    if len(quiz.questions) != QUIZ_QUESTIONS:
        return f"expected exactly {QUIZ_QUESTIONS} questions, got {len(quiz.questions)} - at `$.questions`"
    if len({q.question.strip().lower() for q in quiz.questions}) != len(quiz.questions):
        return "each question must be asked only once - at `$.questions`"
    return None


async def _item_variables(item: dict[str, Any], document: SyllabusDoc) -> dict[str, Any]:
    module = document.modules[item["module_index"] - 1]
    base = {
        "course": msgspec.to_builtins(document.course),
        "instruction": item["instruction"],
        "previous": msgspec.json.decode(prev["content"]) if (prev := await _superseded(item)) else None,
    }
    module_head = {"index": module.index, "title": module.title, "summary": module.summary}
    if item["kind"] == ItemKind.PROJECT:
        return {**base, "module": {**module_head, "lessons": msgspec.to_builtins(module.lessons)}}
    outline = module.lessons[item["lesson_index"] - 1]
    if item["kind"] == ItemKind.LESSON:
        return {**base, "module": module_head, "lesson": msgspec.to_builtins(outline),
                "lesson_titles_in_module": [lesson.title for lesson in module.lessons]}
    lesson = await _lesson_content(item["syllabus_id"], item["module_index"], item["lesson_index"])
    if lesson is None:
        raise _MissingDependency("The lesson this quiz is about has no generated content yet; "
                                 "regenerate the lesson, then this quiz.")
    return {**base, "module": module_head, "lesson_outline": msgspec.to_builtins(outline),
            "lesson": lesson, "question_count": QUIZ_QUESTIONS}


async def _superseded(item: dict[str, Any]) -> dict[str, Any] | None:
    if item["supersedes_id"] is None:
        return None
    previous = await ContentItem.select(ContentItem.content).where(ContentItem.id == item["supersedes_id"]).first()
    return previous if previous and previous["content"] else None


async def _lesson_content(syllabus_id: uuid.UUID, module_index: int, lesson_index: int) -> dict | None:
    row = await ContentItem.select(ContentItem.content).where(
        (ContentItem.syllabus_id == syllabus_id) & (ContentItem.kind == ItemKind.LESSON.value)
        & (ContentItem.module_index == module_index) & (ContentItem.lesson_index == lesson_index)
        & ContentItem.status.is_in([ItemStatus.DRAFT.value, ItemStatus.APPROVED.value])
    ).order_by(ContentItem.created_at, ascending=False).first()
    return msgspec.json.decode(row["content"]) if row else None


async def _fail_item(item_id: uuid.UUID, error: str, *, from_status: ItemStatus) -> None:
    failed = await ContentItem.update({ContentItem.status: ItemStatus.FAILED.value, ContentItem.error: error}).where(
        (ContentItem.id == item_id) & (ContentItem.status == from_status.value)
    ).returning(ContentItem.run_id, ContentItem.kind)
    if failed:
        GENERATED_ITEMS.labels(kind=failed[0]["kind"], outcome="failed").inc()
        log.error("alert:generation_failed", item_id=str(item_id), kind=failed[0]["kind"], error=error[:500])
        await _count_run(failed[0]["run_id"], failed=1)


async def _count_run(run_id: uuid.UUID | None, *, done: int = 0, failed: int = 0) -> None:
    """Count one finished item; the run that reaches its total finishes (PARTIAL when some failed)."""
    if run_id is None:
        return
    rows = await GenerationRun.update({
        GenerationRun.done: GenerationRun.done + done, GenerationRun.failed: GenerationRun.failed + failed,
    }).where(GenerationRun.id == run_id).returning(GenerationRun.done, GenerationRun.failed, GenerationRun.total)
    counts = rows[0]
    if counts["done"] + counts["failed"] >= counts["total"]:
        status = RunStatus.SUCCEEDED if counts["failed"] == 0 else (
            RunStatus.FAILED if counts["done"] == 0 else RunStatus.PARTIAL)
        await GenerationRun.update({GenerationRun.status: status.value, GenerationRun.finished_at: _now()}).where(
            (GenerationRun.id == run_id) & (GenerationRun.status == RunStatus.RUNNING.value)
        )


DEPENDENTS_SQL = """
SELECT
  (SELECT id FROM content_item WHERE run_id = {} AND module_index = {} AND kind = 'QUIZ' AND lesson_index = {}
      AND status = 'PENDING') AS quiz_id,
  (SELECT count(*) FROM content_item WHERE run_id = {} AND module_index = {} AND kind = 'LESSON'
      AND status IN ('PENDING', 'GENERATING')) AS unsettled_lessons,
  (SELECT id FROM content_item WHERE run_id = {} AND module_index = {} AND kind = 'PROJECT'
      AND status = 'PENDING') AS project_id
"""


async def _after_item(item: dict[str, Any]) -> None:
    """Enqueue what waited for this item: a lesson's quiz, and the project once its module's lessons settle."""
    # Only the first generation of a course fans out: a regenerated item (it supersedes another) does not
    # regenerate its quiz; the reviewer decides.
    if item["kind"] != ItemKind.LESSON or item["run_id"] is None or item["supersedes_id"] is not None:
        return
    run, module = item["run_id"], item["module_index"]
    waiting = (await ContentItem.raw(DEPENDENTS_SQL, run, module, item["lesson_index"], run, module, run,
                                     module))[0]
    if waiting["quiz_id"]:
        await _enqueue_item(waiting["quiz_id"])
    if waiting["unsettled_lessons"] == 0 and waiting["project_id"]:
        # Two lessons settling at once may both get here; the job key makes the second enqueue a no-op.
        await _enqueue_item(waiting["project_id"])


# An approved or draft syllabus's content never changes (trigger), so its parsed document is cached by id.
_SYLLABUS_CACHE_SIZE = 64
_syllabus_documents: OrderedDict[uuid.UUID, SyllabusDoc] = OrderedDict()


async def _syllabus_document(syllabus_id: uuid.UUID) -> SyllabusDoc:
    document = _syllabus_documents.get(syllabus_id)
    if document is None:
        row = await Syllabus.select(Syllabus.content).where(Syllabus.id == syllabus_id).first()
        document = _syllabus_documents[syllabus_id] = syllabus_doc(row)
        if len(_syllabus_documents) > _SYLLABUS_CACHE_SIZE:
            _syllabus_documents.popitem(last=False)
    return document


# Longer than the generation task timeout: anything still in flight after this lost its worker.
LOST_AFTER = dt.timedelta(minutes=15)


async def fail_lost_generation() -> dict[str, int]:
    """Sweeper: items stuck GENERATING and syllabus runs stuck RUNNING after a worker died."""
    cutoff = _now() - LOST_AFTER
    stuck = await ContentItem.select(ContentItem.id).where(
        (ContentItem.status == ItemStatus.GENERATING.value) & (ContentItem.created_at < cutoff)
    )
    for row in stuck:
        await _fail_item(row["id"], "worker lost: no result within 15 minutes", from_status=ItemStatus.GENERATING)
    runs = await GenerationRun.update({
        GenerationRun.status: RunStatus.FAILED.value, GenerationRun.finished_at: _now(),
        GenerationRun.error: "worker lost: no result within 15 minutes",
    }).where(
        (GenerationRun.kind == RunKind.SYLLABUS.value) & (GenerationRun.status == RunStatus.RUNNING.value)
        & (GenerationRun.started_at < cutoff)
    ).returning(GenerationRun.id)
    return {"items": len(stuck), "syllabus_runs": len(runs)}


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
        raise Conflict(f"Only a draft can be approved; this item is {item['status']}.")
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
        raise Conflict(f"Only a draft can be rejected; this item is {item['status']}.")
    await audit(AuditAction.CONTENT_REJECTED, actor=actor, tenant_id=tenant_id, entity_type="content_item",
                entity_id=item_id, metadata={"kind": item["kind"], "reason": reason})
    return await get_item(tenant_id, item_id)


async def regenerate_item(tenant_id: uuid.UUID, item_id: uuid.UUID, instruction: str | None, *,
                          actor: Actor) -> dict[str, Any]:
    """A new PENDING item supersedes this draft/failed/rejected one; a worker generates it."""
    instruction = _clean_text(instruction, "The instruction")
    item = await get_item(tenant_id, item_id)
    if item["status"] not in (ItemStatus.DRAFT, ItemStatus.FAILED, ItemStatus.REJECTED):
        raise Conflict(f"Only a draft, failed or rejected item can be regenerated; this one is {item['status']}.")
    async with engine().transaction():
        superseded = await ContentItem.update({ContentItem.status: ItemStatus.SUPERSEDED.value}).where(
            (ContentItem.id == item_id) & (ContentItem.status == item["status"])
        ).returning(ContentItem.id)
        if len(superseded) != 1:
            raise Conflict("This item changed meanwhile; reload and try again.")
        syllabus = await get_syllabus(tenant_id, item["syllabus_id"])
        run = await _insert_run(tenant_id, syllabus["course_id"], RunKind.ITEM, actor=actor, total=1,
                                syllabus_id=item["syllabus_id"], source_id=item_id, instruction=instruction,
                                status=RunStatus.RUNNING)
        new = (await ContentItem.insert(ContentItem(
            tenant_id=tenant_id, syllabus_id=item["syllabus_id"], run_id=run["id"], kind=item["kind"],
            module_index=item["module_index"], lesson_index=item["lesson_index"], title=item["title"],
            supersedes_id=item_id, instruction=instruction, created_by=actor.user_id,
        )).returning(*ContentItem.all_columns()))[0]
    await _enqueue_item(new["id"])
    await audit(AuditAction.CONTENT_REGENERATION_REQUESTED, actor=actor, tenant_id=tenant_id,
                entity_type="content_item", entity_id=item_id,
                metadata={"new_item_id": str(new["id"]), "instruction": instruction})
    return new


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


class ItemFilter(msgspec.Struct, frozen=True, kw_only=True):
    syllabus_id: uuid.UUID | None = None
    module_index: int | None = None
    kind: str | None = None
    status: str | None = None


async def list_items(tenant_id: uuid.UUID, filters: ItemFilter, limit: int = 200) -> list[dict[str, Any]]:
    query = ContentItem.select(
        ContentItem.id, ContentItem.syllabus_id, ContentItem.kind, ContentItem.module_index, ContentItem.lesson_index,
        ContentItem.title, ContentItem.status, ContentItem.error, ContentItem.created_at, ContentItem.generated_at,
        ContentItem.approved_at,
    ).where(ContentItem.tenant_id == tenant_id)
    if filters.status:
        query = query.where(ContentItem.status == filters.status)
    else:
        query = query.where(ContentItem.status != ItemStatus.SUPERSEDED.value)
    if filters.syllabus_id:
        query = query.where(ContentItem.syllabus_id == filters.syllabus_id)
    if filters.module_index:
        query = query.where(ContentItem.module_index == filters.module_index)
    if filters.kind:
        query = query.where(ContentItem.kind == filters.kind)
    return await query.order_by(ContentItem.syllabus_id).order_by(ContentItem.module_index).order_by(
        ContentItem.kind).order_by(ContentItem.lesson_index).limit(limit)


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
