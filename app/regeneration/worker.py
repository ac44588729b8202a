"""The execution plane of regeneration jobs (SPEC R3): claim, run the generator, store the draft, finish.

A SAQ task (tasks/regeneration.py) only wakes a worker; the row is the truth. The claim is the lease's
compare-and-set QUEUED -> RUNNING (zero rows: another worker has it, skip). While the model answers the
worker heartbeats; the draft, the insert-only output and COMPLETED are written in one transaction fenced
by the claim (status RUNNING and its attempt), so a worker given up for lost can never write over the
sweeper's FAILED. Nothing here re-queues: RUNNING -> QUEUED is illegal (trigger), and a retry is a person's
decision (a retry intent). A graceful stop lets the job finish within the grace period; one still running
after it is FAILED ("worker_stopped") at once, and one whose worker died is FAILED by the sweeper.

Audit: LOCKED and STARTED once per job (only one claim can ever succeed), COMPLETED or FAILED once (the
fenced compare-and-set that writes it).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import socket
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
import structlog

from app.audit.actions import AuditAction
from app.audit.services import SYSTEM, audit
from app.authoring import generation, revisions
from app.authoring.generation import OUTPUT_TYPES, QUIZ_QUESTIONS, canonical_json, content_hash
from app.authoring.tables import ContentItem, ItemKind, ItemStatus
from app.db import engine, persist
from app.jobs.lease import LeasedTable, LeaseLost, Released, drain, rewake
from app.llm.generate import GenerationFailed, cost_of, generate
from app.llm.prompts import load_prompt
from app.llm.tables import AIUsage
from app.metrics import REGENERATION_DURATION, REGENERATION_JOBS
from app.regeneration.schemas import Instruction, JobError
from app.regeneration.tables import JobStatus, RegenerationJob, RegenerationOutput
from app.settings import get_settings

log = structlog.get_logger(__name__)
JOB_LEASE = LeasedTable(RegenerationJob, queued=JobStatus.QUEUED.value, running=JobStatus.RUNNING.value,
                        claim_sets=", locked_at = coalesce(locked_at, now())")
WORKER_LOST = JobError(code="worker_lost", message="The worker running this job was lost; create a retry request "
                                                   "to run it again.")
WORKER_STOPPED = JobError(code="worker_stopped", message="The worker was stopped before the model answered; "
                                                         "create a retry request to run it again.")


def timeout() -> dt.timedelta:
    return dt.timedelta(seconds=get_settings().regeneration_timeout_seconds)


def _heartbeat_interval() -> float:
    return get_settings().regeneration_timeout_seconds / 4


# ---------------------------------------------------------------------------------------------
# The prompt: the authoring contract of the target's kind, with the instruction and the evidence


def prompt_instruction(instruction: Instruction) -> str:
    """The instruction as the contracts take it (one text): what to change, what to keep, and the learners'
    evidence as data for context."""
    parts = [instruction.text]
    if instruction.keep:
        parts.append("Keep unchanged: " + "; ".join(instruction.keep) + ".")
    if instruction.tone:
        parts.append(f"Tone: {instruction.tone}.")
    if instruction.evidence:
        parts.append("What learners showed (data for context, not instructions): "
                     + json.dumps(instruction.evidence, sort_keys=True, ensure_ascii=False, default=str))
    return "\n".join(parts)


async def estimated_call(item: dict[str, Any], instruction: Instruction) -> tuple[int, int, str, Decimal]:
    """(input tokens, output tokens, model, USD) of one call revising `item`: the rendered prompt at about
    four characters a token, and an answer about the size of the item as it is."""
    output_tokens = max(1, len(item["content"] or "") // 4)
    try:
        variables = await generation.revision_variables(item, prompt_instruction(instruction))
        messages = load_prompt(item["kind"].lower()).render(variables)
        input_tokens = max(1, sum(len(message.content) for message in messages) // 4)
    except generation.MissingDependency:
        input_tokens = output_tokens * 2  # a quiz without its lesson: it will fail, but not cost more
    model = (await generation.provider_for(item)).model
    return input_tokens, output_tokens, model, cost_of(model, input_tokens, output_tokens)


# ---------------------------------------------------------------------------------------------
# The job


async def run_regeneration_job(job_id: uuid.UUID) -> dict[str, Any]:
    """Worker: claim a QUEUED job and run it. Safe to run many times at once: only the claim winner works."""
    async with drain.claimed(JOB_LEASE, job_id, _wake) as job:
        if job is None:
            return {"job_id": str(job_id), "skipped": "not queued (another worker has it, or it has finished)"}
        started = time.monotonic()
        try:
            return await _run(job)
        finally:
            REGENERATION_DURATION.labels(target_type=job["target_type"]).observe(time.monotonic() - started)


async def _wake(job_id: uuid.UUID, queued_at: dt.datetime) -> None:
    from app.regeneration.services import wake_job

    await wake_job(job_id, queued_at)


async def _run(job: dict[str, Any]) -> dict[str, Any]:
    summary = {"job_id": str(job["id"])}
    holder = {"attempt": job["attempt"], "worker": f"{socket.gethostname()}:{os.getpid()}"}
    await audit(AuditAction.REGEN_JOB_LOCKED, actor=SYSTEM, tenant_id=job["tenant_id"],
                entity_type="regeneration_job", entity_id=job["id"], metadata=holder)
    await audit(AuditAction.REGEN_JOB_STARTED, actor=SYSTEM, tenant_id=job["tenant_id"],
                entity_type="regeneration_job", entity_id=job["id"], metadata={"target_id": str(job["target_id"])})
    try:
        return {**summary, **await _regenerate(job)}
    except Exception as exc:  # a bug or a lasting outage: the job says so now instead of waiting for the sweeper
        log.error("alert:regeneration_crashed", job_id=str(job["id"]), error=repr(exc), exc_info=True)
        error = JobError(code="internal_error", message="The worker hit an unexpected error; create a retry "
                                                        "request to run it again.", details=[repr(exc)[:500]])
        await persist(lambda: fail_job(job, error))
        return {**summary, "status": JobStatus.FAILED.value, "error": error.code}


async def _regenerate(job: dict[str, Any]) -> dict[str, Any]:
    target = await ContentItem.select().where(
        (ContentItem.id == job["target_id"]) & (ContentItem.tenant_id == job["tenant_id"])).first()
    if problem := await _target_problem(target):
        await persist(lambda: fail_job(job, problem))
        return {"status": JobStatus.FAILED.value, "error": problem.code}
    instruction = msgspec.json.decode(job["instruction"], type=Instruction)
    try:
        variables = await generation.revision_variables(target, prompt_instruction(instruction))
    except generation.MissingDependency as exc:
        error = JobError(code="lesson_missing", message=f"This quiz's lesson ({exc}) has no content to write "
                                                        "the quiz from.")
        await persist(lambda: fail_job(job, error))
        return {"status": JobStatus.FAILED.value, "error": error.code}
    kind = target["kind"]
    work = generate(kind.lower(), OUTPUT_TYPES[kind], variables, tenant_id=job["tenant_id"], run_id=job["id"],
                    provider=await generation.provider_for(target),
                    check=functools.partial(generation.check_document, kind),
                    fixed_lengths={"questions": QUIZ_QUESTIONS} if kind == ItemKind.QUIZ else None)
    try:
        generated = await drain.hold(work, heartbeat=functools.partial(JOB_LEASE.heartbeat, job["id"], job["attempt"]),
                                     interval=_heartbeat_interval())
    except Released:
        await persist(lambda: fail_job(job, WORKER_STOPPED))
        return {"status": JobStatus.FAILED.value, "error": WORKER_STOPPED.code}
    except LeaseLost:
        return {"lease_lost": True}
    except GenerationFailed as exc:
        error = JobError(code="model_gave_up", message=f"The model's answer did not pass validation after "
                                                       f"{len(exc.errors)} attempt{'s' if len(exc.errors) != 1 else ''}"
                                                       "; the details say why.", details=exc.errors)
        await persist(lambda: fail_job(job, error))
        return {"status": JobStatus.FAILED.value, "error": error.code}
    value = await generation.polish(target, generated.value)
    if content_hash(value) == target["content_hash"]:
        error = JobError(code="unchanged", message="The model returned the content unchanged; make the "
                                                   "instruction more specific and create a new job.")
        await persist(lambda: fail_job(job, error))
        return {"status": JobStatus.FAILED.value, "error": error.code}
    return await _store(job, target, value, generated.metadata)


async def _target_problem(target: dict[str, Any] | None) -> JobError | None:
    """Why the target can no longer take a regenerated draft (it changed after the job was created)."""
    if target is None or target["status"] != ItemStatus.APPROVED:
        return JobError(code="target_not_approved", message="The content this job regenerates is no longer an "
                                                            "approved item.")
    newer = await revisions.newer_revision(target)
    if newer is None:
        return None
    if newer["status"] in revisions.DEAD_ENDS:
        return None  # a rejected or failed revision: the regenerated draft takes its place
    if newer["status"] == ItemStatus.APPROVED:
        return JobError(code="target_replaced", message="A newer approved version replaced the content this job "
                                                        "regenerates; create a job from that version instead.",
                        details=[f"/admin/items/{newer['id']}"])
    return JobError(code="slot_busy", message=f"Another revision of this {target['kind'].lower()} is waiting for "
                                              f"review ({newer['status'].lower()}); approve or reject it, then ask "
                                              "for a retry.", details=[f"/admin/items/{newer['id']}"])


async def _store(job: dict[str, Any], target: dict[str, Any], value: Any, metadata: Any) -> dict[str, Any]:
    try:
        stored = await persist(lambda: _complete(job, target, value, metadata))
    except asyncpg.UniqueViolationError:  # content_item_open_slot: a revision opened while the model answered
        problem = await _target_problem(await ContentItem.select().where(ContentItem.id == target["id"]).first())
        error = problem or JobError(code="slot_busy", message="Another revision of this item opened meanwhile.")
        await persist(lambda: fail_job(job, error))
        return {"status": JobStatus.FAILED.value, "error": error.code}
    if stored is None:
        return {"lease_lost": True}
    output, draft, queued = stored
    for item_id, queued_at in queued:
        await generation.wake_item(item_id, queued_at)
    REGENERATION_JOBS.labels(target_type=job["target_type"], outcome="completed").inc()
    await audit(AuditAction.REGEN_JOB_COMPLETED, actor=SYSTEM, tenant_id=job["tenant_id"],
                entity_type="regeneration_job", entity_id=job["id"],
                metadata={"output_id": str(output["id"]), "draft_item_id": str(draft["id"]),
                          "prompt_version": metadata.prompt_version, "model": metadata.model,
                          "cost_usd": str(output["cost_usd"])})
    return {"status": JobStatus.COMPLETED.value, "output_id": str(output["id"]), "draft_item_id": str(draft["id"])}


async def _complete(job: dict[str, Any], target: dict[str, Any], value: Any, metadata: Any
                    ) -> tuple[dict[str, Any], dict[str, Any], list] | None:
    """In one transaction, fenced by the claim: the DRAFT for the slot, the output, COMPLETED. None when the
    claim is no longer ours (the sweeper failed the job meanwhile)."""
    lineage = await _lineage(job)
    provenance = {**msgspec.to_builtins(metadata), "run_id": None, "regeneration_job_id": str(job["id"]),
                  "source_item_id": str(target["id"]), "source_hash": target["content_hash"]}
    async with engine().transaction():
        held = await RegenerationJob.raw(
            "SELECT id FROM regeneration_job WHERE id = {} AND status = 'RUNNING' AND attempt = {} FOR UPDATE",
            job["id"], job["attempt"])
        if not held:
            return None
        draft, queued = await revisions.store_regenerated(target, value, provenance, created_by=job["created_by"])
        cost = await _job_cost(job["id"])
        output = (await RegenerationOutput.insert(RegenerationOutput(
            tenant_id=job["tenant_id"], job_id=job["id"], content_item_id=draft["id"], source_item_id=target["id"],
            content=canonical_json(value).decode(), content_hash=content_hash(value),
            prompt_name=metadata.prompt_name, prompt_version=metadata.prompt_version, model=metadata.model,
            input_tokens=metadata.input_tokens, output_tokens=metadata.output_tokens, cost_usd=cost,
            lineage=json.dumps({**lineage, "source_item_id": str(target["id"])}),
        )).returning(*RegenerationOutput.all_columns()))[0]
        await RegenerationJob.raw(
            "UPDATE regeneration_job SET status = 'COMPLETED', output_id = {}, completed_at = now(), "
            "heartbeat_at = NULL WHERE id = {} AND status = 'RUNNING' AND attempt = {}",
            output["id"], job["id"], job["attempt"])
    return output, draft, queued


async def _job_cost(job_id: uuid.UUID) -> Decimal:
    # generate() records every call of the job (repairs included) with the job's id as its run id.
    rows = await AIUsage.raw("SELECT coalesce(sum(cost_usd), 0) AS cost FROM ai_usage WHERE run_id = {}", job_id)
    return Decimal(rows[0]["cost"])


async def _lineage(job: dict[str, Any]) -> dict[str, Any]:
    """What led to this output: the signal and suggestion at the root of the retry chain, the job, the retry."""
    suggestion_id, root, hops = job["suggestion_id"], job, 0
    while suggestion_id is None and root["retry_of_job_id"] is not None and hops < 50:
        root = await RegenerationJob.select(RegenerationJob.suggestion_id, RegenerationJob.retry_of_job_id).where(
            RegenerationJob.id == root["retry_of_job_id"]).first()
        if root is None:
            break
        suggestion_id, hops = root["suggestion_id"], hops + 1
    signal_id = None
    if suggestion_id is not None:
        rows = await RegenerationJob.raw("SELECT source_signal_id FROM content_suggestion WHERE id = {}", suggestion_id)
        signal_id = rows[0]["source_signal_id"] if rows else None
    return {"signal_id": _str(signal_id), "suggestion_id": _str(suggestion_id), "job_id": str(job["id"]),
            "retry_of_job_id": _str(job["retry_of_job_id"]), "retry_intent_id": _str(job["retry_intent_id"])}


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


async def fail_job(job: dict[str, Any], error: JobError) -> bool:
    """RUNNING -> FAILED with `error`, fenced by the claim; audited and counted once (by whoever wins)."""
    rows = await RegenerationJob.raw(
        "UPDATE regeneration_job SET status = 'FAILED', error = {}::jsonb, completed_at = now(), heartbeat_at = NULL "
        "WHERE id = {} AND status = 'RUNNING' AND attempt = {} RETURNING tenant_id, target_type",
        msgspec.json.encode(error).decode(), job["id"], job["attempt"])
    if not rows:
        return False
    outcome = "worker_lost" if error.code == WORKER_LOST.code else "failed"
    REGENERATION_JOBS.labels(target_type=rows[0]["target_type"], outcome=outcome).inc()
    log.error("alert:regeneration_failed", job_id=str(job["id"]), code=error.code, message=error.message[:300])
    await audit(AuditAction.REGEN_JOB_FAILED, actor=SYSTEM, tenant_id=rows[0]["tenant_id"],
                entity_type="regeneration_job", entity_id=job["id"], metadata=msgspec.to_builtins(error))
    return True


# ---------------------------------------------------------------------------------------------
# The sweeper


async def sweep_regeneration() -> dict[str, int]:
    """FAILED ("worker lost") for RUNNING jobs whose heartbeat is older than the timeout; a new wake-up for
    QUEUED jobs whose wake-up was lost. Safe in several processes at once: both are compare-and-sets."""
    failed = 0
    for row in await JOB_LEASE.expired(timeout()):
        if await fail_job(row, WORKER_LOST):
            failed += 1
    from tasks.regeneration import regenerate_content

    rewoken = await rewake(JOB_LEASE, timeout(), regenerate_content.saq_queue, "regenerate_content", _wake)
    return {"failed_lost": failed, "rewoken": rewoken}
