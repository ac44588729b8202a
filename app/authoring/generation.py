"""Generation on workers: syllabus runs and content items as durable, leased jobs.

The rows are the truth (app/jobs/lease.py): a SAQ task only wakes a worker, which claims a QUEUED row
with a compare-and-set, heartbeats while the model answers, and writes the result fenced by its claim's
`attempt`. What an item is made from decides when it may run: a lesson is QUEUED at once; a quiz waits
(PENDING) for its lesson and a project for every lesson of its module, and becomes BLOCKED when one of
those fails, until a regenerated one succeeds. A run's counters and status are recomputed from its items
whenever one of them settles, so a run finishes exactly when nothing in it can move without a person,
and reopens when a person's action lets something move again.

Only worker code (tasks/authoring.py), the sweeper and the demo seeder call the run_* functions
(invariant 4). See app/authoring/README.md for the state machines.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import uuid
from collections import OrderedDict
from typing import Any

import msgspec
import structlog

from app.authoring.normalize import normalize_lesson, normalize_syllabus, tidy
from app.authoring.schemas import CourseBrief, Lesson, Project, Quiz
from app.authoring.schemas import Syllabus as SyllabusDoc
from app.authoring.tables import (
    ContentItem,
    Course,
    GenerationRun,
    ItemKind,
    ItemStatus,
    RunStatus,
    Syllabus,
    SyllabusStatus,
)
from app.db import DB_UNAVAILABLE, engine, persist
from app.jobs.lease import LeasedTable, LeaseLost, Released, drain, rewake, wake, wake_key
from app.llm.generate import GenerationFailed, generate
from app.llm.providers import get_provider
from app.metrics import GENERATED_ITEMS, GENERATION_RECOVERIES
from app.settings import get_settings

log = structlog.get_logger(__name__)
QUIZ_QUESTIONS = 5
OUTPUT_TYPES: dict[str, type] = {ItemKind.LESSON: Lesson, ItemKind.QUIZ: Quiz, ItemKind.PROJECT: Project}
MOVING = (ItemStatus.PENDING.value, ItemStatus.QUEUED.value, ItemStatus.GENERATING.value)
ITEM_LEASE = LeasedTable(ContentItem, queued=ItemStatus.QUEUED.value, running=ItemStatus.GENERATING.value)
RUN_LEASE = LeasedTable(GenerationRun, queued=RunStatus.QUEUED.value, running=RunStatus.RUNNING.value,
                        claim_sets=", started_at = coalesce(started_at, now())")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def canonical_json(value: Any) -> bytes:
    """Stable bytes for a typed document: field order from the type, no whitespace."""
    return msgspec.json.encode(value)


def content_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def syllabus_doc(row: dict[str, Any]) -> SyllabusDoc:
    return msgspec.json.decode(row["content"], type=SyllabusDoc)


def item_doc(row: dict[str, Any]) -> Lesson | Quiz | Project | None:
    if row["content"] is None:
        return None
    return msgspec.json.decode(row["content"], type=OUTPUT_TYPES[row["kind"]])


def lease() -> dt.timedelta:
    return dt.timedelta(seconds=get_settings().generation_lease_seconds)


def heartbeat_interval() -> float:
    return get_settings().generation_lease_seconds / 4


# ---------------------------------------------------------------------------------------------
# Wake-ups: after the row is committed; a failed enqueue leaves the row QUEUED for the sweeper.


async def wake_item(item_id: uuid.UUID, queued_at: dt.datetime) -> None:
    from tasks.authoring import generate_item  # tasks import this module

    await wake(generate_item, wake_key("generate_item", item_id, queued_at), item_id=str(item_id))


async def wake_syllabus_run(run_id: uuid.UUID, queued_at: dt.datetime) -> None:
    from tasks.authoring import generate_syllabus

    await wake(generate_syllabus, wake_key("generate_syllabus", run_id, queued_at), run_id=str(run_id))


# ---------------------------------------------------------------------------------------------
# Syllabus runs


async def run_syllabus_generation(run_id: uuid.UUID) -> dict[str, Any]:
    """Worker: draft (or redraft) a syllabus. Safe to run twice: only the claim winner works."""
    async with drain.claimed(RUN_LEASE, run_id, wake_syllabus_run) as run:
        if run is None:
            return {"run_id": str(run_id), "skipped": True}
        return await _draft_syllabus(run)


async def _draft_syllabus(run: dict[str, Any]) -> dict[str, Any]:
    run_id = run["id"]
    course = await Course.select().where(Course.id == run["course_id"]).first()
    brief = msgspec.json.decode(course["brief"], type=CourseBrief)
    previous = await Syllabus.select().where(Syllabus.id == run["source_id"]).first() if run["source_id"] else None
    variables = {
        "brief": msgspec.to_builtins(brief),
        "instruction": run["instruction"],
        "previous": msgspec.json.decode(previous["content"]) if previous else None,
    }
    work = generate("syllabus", SyllabusDoc, variables, tenant_id=run["tenant_id"], run_id=run_id,
                    provider=_provider(run["llm_provider"]))
    try:
        generated = await drain.hold(work, heartbeat=functools.partial(RUN_LEASE.heartbeat, run_id, run["attempt"]),
                                     interval=heartbeat_interval())
    except Released:
        await _release(RUN_LEASE, run_id, run["attempt"], wake_syllabus_run, "SYLLABUS")
        return {"run_id": str(run_id), "released": True}
    except LeaseLost:
        return {"run_id": str(run_id), "lease_lost": True}
    except GenerationFailed as exc:
        GENERATED_ITEMS.labels(kind="SYLLABUS", outcome="failed").inc()
        errors = exc.errors
        await persist(lambda: _finish_syllabus_run(run, error="\n".join(errors)))
        return {"run_id": str(run_id), "status": "FAILED", "errors": errors}
    document = normalize_syllabus(generated.value, brief)
    syllabus_id = await persist(lambda: _store_syllabus(run, previous, document, generated.metadata))
    if syllabus_id is None:
        return {"run_id": str(run_id), "lease_lost": True}
    GENERATED_ITEMS.labels(kind="SYLLABUS", outcome="draft").inc()
    return {"run_id": str(run_id), "status": "SUCCEEDED", "syllabus_id": str(syllabus_id)}


async def _store_syllabus(run: dict[str, Any], previous: dict[str, Any] | None, document: SyllabusDoc,
                          metadata: Any) -> uuid.UUID | None:
    async with engine().transaction():
        if not await _finish_syllabus_run(run):
            return None  # another worker holds this run now
        revision = await Syllabus.count().where(Syllabus.course_id == run["course_id"]) + 1
        syllabus = (await Syllabus.insert(Syllabus(
            tenant_id=run["tenant_id"], course_id=run["course_id"], revision=revision,
            content=canonical_json(document).decode(), content_hash=content_hash(document),
            generation=msgspec.json.encode(metadata).decode(), run_id=run["id"],
            supersedes_id=run["source_id"], instruction=run["instruction"], created_by=run["created_by"],
        )).returning(Syllabus.id))[0]
        # The new draft replaces the course's earlier drafts (unless one was approved meanwhile): a
        # course has one draft under review at a time.
        await Syllabus.update({Syllabus.status: SyllabusStatus.SUPERSEDED.value}).where(
            (Syllabus.course_id == run["course_id"]) & (Syllabus.id != syllabus["id"])
            & Syllabus.status.is_in([SyllabusStatus.DRAFT.value, SyllabusStatus.REJECTED.value])
        )
        await GenerationRun.update({GenerationRun.syllabus_id: syllabus["id"]}).where(GenerationRun.id == run["id"])
    return syllabus["id"]


async def _finish_syllabus_run(run: dict[str, Any], *, error: str | None = None) -> bool:
    """RUNNING -> SUCCEEDED (no error) or FAILED, fenced by the claim's attempt."""
    done = await GenerationRun.update({
        GenerationRun.status: (RunStatus.FAILED if error else RunStatus.SUCCEEDED).value,
        GenerationRun.error: error, GenerationRun.finished_at: _now(), GenerationRun.heartbeat_at: None,
        GenerationRun.done: 0 if error else 1, GenerationRun.failed: 1 if error else 0,
    }).where((GenerationRun.id == run["id"]) & (GenerationRun.status == RunStatus.RUNNING.value)
             & (GenerationRun.attempt == run["attempt"])).returning(GenerationRun.id)
    if done and error:
        log.error("alert:generation_failed", run_id=str(run["id"]), kind="SYLLABUS", error=error[:500])
    return bool(done)


# ---------------------------------------------------------------------------------------------
# Content items


class _MissingDependency(Exception):
    pass


MissingDependency = _MissingDependency  # what a quiz waits for (its lesson): regeneration jobs fail on it


async def run_item_generation(item_id: uuid.UUID) -> dict[str, Any]:
    """Worker: generate one lesson, quiz or project. Safe to run twice: only the claim winner works."""
    async with drain.claimed(ITEM_LEASE, item_id, wake_item) as item:
        if item is None:
            return {"item_id": str(item_id), "skipped": True}
        return await _generate_item(item)


async def _generate_item(item: dict[str, Any]) -> dict[str, Any]:
    item_id = item["id"]
    try:
        document = await _syllabus_document(item["syllabus_id"])
        variables = await _item_variables(item, document)
        provider = _provider(await _run_provider(item["run_id"]))
    except _MissingDependency as exc:
        waiting_for = str(exc)
        await persist(lambda: settle_item(item, ItemStatus.BLOCKED, waiting_for=waiting_for))
        return {"item_id": str(item_id), "status": "BLOCKED", "waiting_for": waiting_for}
    except DB_UNAVAILABLE:
        # Claimed, then the database went away before the call: hand it back rather than wait for the lease.
        await _release(ITEM_LEASE, item_id, item["attempt"], wake_item, item["kind"])
        return {"item_id": str(item_id), "released": True}
    quiz = item["kind"] == ItemKind.QUIZ
    work = generate(item["kind"].lower(), OUTPUT_TYPES[item["kind"]], variables, tenant_id=item["tenant_id"],
                    run_id=item["run_id"], provider=provider,
                    check=functools.partial(check_document, item["kind"]),
                    fixed_lengths={"questions": QUIZ_QUESTIONS} if quiz else None)
    try:
        generated = await drain.hold(work, heartbeat=functools.partial(ITEM_LEASE.heartbeat, item_id, item["attempt"]),
                                     interval=heartbeat_interval())
    except Released:
        await _release(ITEM_LEASE, item_id, item["attempt"], wake_item, item["kind"])
        return {"item_id": str(item_id), "released": True}
    except LeaseLost:
        return {"item_id": str(item_id), "lease_lost": True}
    except GenerationFailed as exc:
        error = "\n".join(exc.errors)
        await persist(lambda: settle_item(item, ItemStatus.FAILED, error=error))
        return {"item_id": str(item_id), "status": "FAILED", "error": error}
    value = generated.value
    if item["kind"] == ItemKind.LESSON:
        outline = document.modules[item["module_index"] - 1].lessons[item["lesson_index"] - 1]
        value = normalize_lesson(value, outline, document.course.level)
    else:
        value = tidy(value)
    stored = await persist(lambda: settle_item(item, ItemStatus.DRAFT, value=value, metadata=generated.metadata))
    if not stored:
        return {"item_id": str(item_id), "lease_lost": True}
    return {"item_id": str(item_id), "status": "DRAFT", "repairs": generated.metadata.repairs}


async def _release(table: LeasedTable, row_id: uuid.UUID, attempt: int, wake: Any, kind: str) -> None:
    queued_at = await persist(lambda: table.requeue(row_id, attempt, lost=False))
    if queued_at is not None:
        GENERATION_RECOVERIES.labels(kind=kind, action="released").inc()
        await wake(row_id, queued_at)


def check_document(kind: str, value: Any) -> str | None:
    """The rules every new content document meets beyond its type, whoever wrote it: the model here, a person
    in app.authoring.revisions. A message (with its ` - at `$.path`` suffix) when one is broken."""
    return quiz_rules(value) if kind == ItemKind.QUIZ else None


def quiz_rules(quiz: Quiz) -> str | None:
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
        # Its lesson was rejected or regenerated after this quiz was queued: wait for the new one.
        raise _MissingDependency(f"lesson {item['module_index']}.{item['lesson_index']}")
    return {**base, "module": module_head, "lesson_outline": msgspec.to_builtins(outline),
            "lesson": lesson, "question_count": QUIZ_QUESTIONS}


async def revision_variables(item: dict[str, Any], instruction: str) -> dict[str, Any]:
    """The prompt variables to revise `item` with `instruction`, its content as the previous draft: the same
    contract a regeneration from the review page uses (app/regeneration/worker.py runs jobs with it).
    Raises MissingDependency for a quiz whose lesson has no draft or approved content."""
    document = await _syllabus_document(item["syllabus_id"])
    return await _item_variables({**item, "instruction": instruction, "supersedes_id": item["id"]}, document)


async def polish(item: dict[str, Any], value: Any) -> Any:
    """The post-processor (A3) for a newly generated document of `item`'s slot: a lesson keeps its outline's
    title, duration and objectives; everything is trimmed."""
    if item["kind"] != ItemKind.LESSON:
        return tidy(value)
    document = await _syllabus_document(item["syllabus_id"])
    outline = document.modules[item["module_index"] - 1].lessons[item["lesson_index"] - 1]
    return normalize_lesson(value, outline, document.course.level)


async def provider_for(item: dict[str, Any]) -> Any:
    """The provider that wrote `item`'s run (the demo course stays on the mock), else the configured one."""
    return _provider(await _run_provider(item["run_id"]))


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


# ---------------------------------------------------------------------------------------------
# Settling: an item leaves GENERATING, what depends on it follows, its runs are recomputed.


async def settle_item(item: dict[str, Any], status: ItemStatus, *, value: Any = None, metadata: Any = None,
                      error: str | None = None, waiting_for: str | None = None) -> bool:
    """GENERATING -> DRAFT | FAILED | BLOCKED for the claim `item` came from, in one transaction with its
    dependents and runs; then wakes what became QUEUED. False when the claim was no longer ours."""
    changes: dict[Any, Any] = {ContentItem.status: status.value, ContentItem.error: error,
                               ContentItem.waiting_for: waiting_for, ContentItem.heartbeat_at: None}
    if value is not None:
        changes |= {ContentItem.content: canonical_json(value).decode(), ContentItem.content_hash: content_hash(value),
                    ContentItem.generated_at: _now(),
                    ContentItem.generation: msgspec.json.encode(metadata).decode()}
    async with engine().transaction():
        stored = await ContentItem.update(changes).where(
            (ContentItem.id == item["id"]) & (ContentItem.status == ItemStatus.GENERATING.value)
            & (ContentItem.attempt == item["attempt"])
        ).returning(ContentItem.id)
        if not stored:
            return False
        queued, runs = [], {item["run_id"]}
        if item["kind"] == ItemKind.LESSON:
            queued, dependent_runs = await resolve_dependents(item["syllabus_id"], item["module_index"])
            runs |= dependent_runs
        await settle_runs(runs)
    GENERATED_ITEMS.labels(kind=item["kind"], outcome=status.value.lower()).inc()
    if status == ItemStatus.FAILED:
        log.error("alert:generation_failed", item_id=str(item["id"]), kind=item["kind"], error=(error or "")[:500])
    for dependent_id, queued_at in queued:
        await wake_item(dependent_id, queued_at)
    return True


LESSON_STATES_SQL = """
SELECT lesson_index,
       bool_or(status IN ('DRAFT', 'APPROVED')) AS ready,
       bool_or(status IN ('FAILED', 'REJECTED')) AS failed
FROM content_item
WHERE syllabus_id = {} AND module_index = {} AND kind = 'LESSON' AND status <> 'SUPERSEDED'
GROUP BY lesson_index
"""


async def resolve_dependents(syllabus_id: uuid.UUID, module_index: int
                             ) -> tuple[list[tuple[uuid.UUID, dt.datetime]], set[uuid.UUID]]:
    """Queue or block the module's waiting quizzes and project by the state of their lessons. Call inside
    a transaction. The waiting rows are locked first, so two lessons settling at once are judged one
    after the other and the second sees the first (otherwise each could see the other still running and
    leave the project waiting forever). Returns the newly queued (id, queued_at) and the runs touched."""
    waiting = await ContentItem.raw(
        "SELECT id, kind, lesson_index, status, run_id FROM content_item WHERE syllabus_id = {} "
        "AND module_index = {} AND kind IN ('QUIZ', 'PROJECT') AND status IN ('PENDING', 'BLOCKED') "
        "ORDER BY id FOR UPDATE", syllabus_id, module_index)
    if not waiting:
        return [], set()
    lessons = {row["lesson_index"]: row for row in await ContentItem.raw(LESSON_STATES_SQL, syllabus_id, module_index)}
    document = await _syllabus_document(syllabus_id)
    module_lessons = [lesson.index for lesson in document.modules[module_index - 1].lessons]
    queued, runs = [], set()
    for row in waiting:
        needs = [row["lesson_index"]] if row["kind"] == ItemKind.QUIZ else module_lessons
        failed = [n for n in needs if n in lessons and lessons[n]["failed"] and not lessons[n]["ready"]]
        if all(n in lessons and lessons[n]["ready"] for n in needs):
            rows = await ContentItem.raw(
                "UPDATE content_item SET status = 'QUEUED', queued_at = now(), waiting_for = NULL "
                "WHERE id = {} RETURNING queued_at", row["id"])
            queued.append((row["id"], rows[0]["queued_at"]))
        elif failed:
            waiting_for = ", ".join(f"lesson {module_index}.{n}" for n in failed)
            await ContentItem.update({ContentItem.status: ItemStatus.BLOCKED.value,
                                      ContentItem.waiting_for: waiting_for}).where(ContentItem.id == row["id"])
        else:
            continue
        runs.add(row["run_id"])
    return queued, runs


RUN_COUNTS_SQL = """
UPDATE generation_run r SET
    done = c.done, failed = c.failed, blocked = c.blocked,
    status = CASE WHEN c.moving > 0 THEN 'RUNNING' WHEN c.failed + c.blocked = 0 THEN 'SUCCEEDED'
                  WHEN c.done = 0 THEN 'FAILED' ELSE 'PARTIAL' END,
    finished_at = CASE WHEN c.moving > 0 THEN NULL ELSE coalesce(r.finished_at, now()) END
FROM (SELECT count(*) FILTER (WHERE content IS NOT NULL) AS done,
             count(*) FILTER (WHERE status = 'FAILED') AS failed,
             count(*) FILTER (WHERE status = 'BLOCKED') AS blocked,
             count(*) FILTER (WHERE status IN ('PENDING', 'QUEUED', 'GENERATING')) AS moving
      FROM content_item WHERE run_id = {}) c
WHERE r.id = {} AND r.kind <> 'SYLLABUS'
RETURNING r.status
"""


async def settle_runs(run_ids: set[uuid.UUID | None]) -> None:
    """Recompute each run's counters and status from its items. Call inside a transaction: the runs are
    locked first (in id order, so concurrent settlers never deadlock), and the counts are read after the
    lock, so the last item of a run to settle always sees all the others."""
    ids = sorted(run_id for run_id in run_ids if run_id is not None)
    if not ids:
        return
    await GenerationRun.raw("SELECT id FROM generation_run WHERE id = ANY({}) ORDER BY id FOR UPDATE", ids)
    for run_id in ids:
        await GenerationRun.raw(RUN_COUNTS_SQL, run_id, run_id)


# ---------------------------------------------------------------------------------------------
# The sweeper: lost workers, lost wake-ups, stranded dependents and runs


async def sweep_generation() -> dict[str, int]:
    """Re-queue what lost its worker (heartbeat older than the lease), fail it after too many lost
    attempts, wake QUEUED rows whose wake-up is gone, and settle anything a crash left half-done."""
    settings = get_settings()
    summary = {"requeued": 0, "failed": 0, "rewoken": 0, "dependents": 0, "runs": 0}
    for item in await ITEM_LEASE.expired(lease()):
        if item["lost_attempts"] + 1 >= settings.generation_max_lost_attempts:
            error = _worker_lost(item["lost_attempts"] + 1)
            if await settle_item(await _full_item(item["id"]), ItemStatus.FAILED, error=error):
                GENERATION_RECOVERIES.labels(kind="ITEM", action="failed_lost").inc()
                summary["failed"] += 1
        elif (queued_at := await ITEM_LEASE.requeue(item["id"], item["attempt"], lost=True)) is not None:
            GENERATION_RECOVERIES.labels(kind="ITEM", action="requeued_lost").inc()
            log.warning("generation_requeued", item_id=str(item["id"]), lost_attempts=item["lost_attempts"] + 1)
            await wake_item(item["id"], queued_at)
            summary["requeued"] += 1
    for run in await RUN_LEASE.expired(lease()):
        if run["lost_attempts"] + 1 >= settings.generation_max_lost_attempts:
            full = await GenerationRun.select().where(GenerationRun.id == run["id"]).first()
            if await _finish_syllabus_run(full, error=_worker_lost(run["lost_attempts"] + 1)):
                summary["failed"] += 1
        elif (queued_at := await RUN_LEASE.requeue(run["id"], run["attempt"], lost=True)) is not None:
            GENERATION_RECOVERIES.labels(kind="SYLLABUS", action="requeued_lost").inc()
            await wake_syllabus_run(run["id"], queued_at)
            summary["requeued"] += 1
    summary["rewoken"] = await rewake(ITEM_LEASE, lease(), _task_queue("generate_item"), "generate_item",
                                      wake_item)
    summary["rewoken"] += await rewake(RUN_LEASE, lease(), _task_queue("generate_syllabus"), "generate_syllabus",
                                       wake_syllabus_run)
    summary["dependents"], summary["runs"] = await _settle_stranded()
    return summary


def _worker_lost(attempts: int) -> str:
    seconds = get_settings().generation_lease_seconds
    return (f"worker lost: no heartbeat for {seconds} s, {attempts} time{'s' if attempts != 1 else ''}; "
            "gave up. Regenerate it to try again.")


async def _full_item(item_id: uuid.UUID) -> dict[str, Any]:
    return await ContentItem.select().where(ContentItem.id == item_id).first()


def _task_queue(task_name: str) -> str:
    from tasks import authoring as tasks

    return getattr(tasks, task_name).saq_queue


STRANDED_MODULES_SQL = """
SELECT DISTINCT syllabus_id, module_index FROM content_item
WHERE status = 'PENDING' AND kind IN ('QUIZ', 'PROJECT') AND created_at < now() - {}::interval
"""
STRANDED_RUNS_SQL = """
SELECT id FROM generation_run r WHERE kind <> 'SYLLABUS' AND status = 'RUNNING'
  AND NOT EXISTS (SELECT 1 FROM content_item i
                  WHERE i.run_id = r.id AND i.status IN ('PENDING', 'QUEUED', 'GENERATING'))
"""


async def _settle_stranded() -> tuple[int, int]:
    """What a crash between two steps could leave behind: quizzes and projects still PENDING although
    their lessons settled, and runs still RUNNING although nothing in them moves."""
    queued_total = 0
    for module in await ContentItem.raw(STRANDED_MODULES_SQL, lease()):
        async with engine().transaction():
            queued, runs = await resolve_dependents(module["syllabus_id"], module["module_index"])
            await settle_runs(runs)
        for dependent_id, queued_at in queued:
            await wake_item(dependent_id, queued_at)
        queued_total += len(queued)
    runs = {row["id"] for row in await GenerationRun.raw(STRANDED_RUNS_SQL)}
    if runs:
        async with engine().transaction():
            await settle_runs(runs)
    return queued_total, len(runs)


# ---------------------------------------------------------------------------------------------
# Caches of things that never change


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


# A run's provider is fixed when the run is created.
_run_providers: OrderedDict[uuid.UUID, str | None] = OrderedDict()


async def _run_provider(run_id: uuid.UUID | None) -> str | None:
    if run_id is None:
        return None
    if run_id not in _run_providers:
        row = await GenerationRun.select(GenerationRun.llm_provider).where(GenerationRun.id == run_id).first()
        _run_providers[run_id] = row["llm_provider"] if row else None
        if len(_run_providers) > _SYLLABUS_CACHE_SIZE:
            _run_providers.popitem(last=False)
    return _run_providers[run_id]


def _provider(name: str | None) -> Any:
    """The configured provider, or the mock for a run that asked for it (the demo course is demo data,
    whatever LLM_PROVIDER says)."""
    settings = get_settings()
    if name is None or name == settings.llm_provider:
        return get_provider(settings)
    assert name == "mock", name
    return get_provider(msgspec.structs.replace(settings, llm_provider="mock", llm_model="mock-1"))
