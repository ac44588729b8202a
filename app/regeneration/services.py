"""Regeneration jobs: the control plane (SPEC R1, R2, issue 13 item 9). The only writer of regeneration_job's
PENDING and QUEUED states and of llm_budget; the worker (worker.py) writes RUNNING, COMPLETED and FAILED.

Routes, the suggestion accept and the retry-intent execute call these; none of them runs a generator
(invariant 4): triggering sets the row QUEUED and sends a SAQ wake-up after the commit, and only a worker
claims it. Each transition is one compare-and-set; the trigger regeneration_job_guard is the backstop.

Calling from inside your own transaction: Piccolo's `transaction()` joins an open one (no savepoint), so
`create_job` and `queue_job` simply become part of it. What must wait for the commit (audit rows, which are
written on their own connection, and the wake-up) goes into an `AfterCommit` you pass in and run after your
transaction commits; nothing is audited or woken for work that was rolled back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import msgspec
import structlog

from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.audit.tables import AuditLog
from app.authoring import revisions
from app.authoring import services as authoring
from app.authoring.tables import ContentItem, ItemStatus
from app.db import engine
from app.errors import Conflict, InvalidInput, NotFound
from app.llm.tables import AIUsage
from app.regeneration.schemas import CostEstimate, Instruction
from app.regeneration.tables import JobStatus, LlmBudget, RegenerationJob, RegenerationOutput, TargetType
from app.web.inputs import explain_validation

log = structlog.get_logger(__name__)
PAGE_SIZE = 25
INSTRUCTION_LABELS = {"text": "The instruction", "keep": "Keep", "tone": "Tone", "evidence": "Evidence"}
STATUS_WORDS = {
    JobStatus.PENDING: "Waiting to be triggered", JobStatus.QUEUED: "Queued for a worker",
    JobStatus.RUNNING: "Running", JobStatus.COMPLETED: "Completed", JobStatus.FAILED: "Failed",
}
# Why a job that is not PENDING cannot be triggered, in words.
NOT_TRIGGERABLE = {
    JobStatus.QUEUED: "This job was already triggered; it is waiting for a worker.",
    JobStatus.RUNNING: "This job was already triggered and is running now.",
    JobStatus.COMPLETED: "This job has already run and completed; its new draft is waiting for review.",
    JobStatus.FAILED: "This job has already run and failed; to run it again, create a retry request.",
}


@dataclass
class AfterCommit:
    """What a transition leaves to do once its transaction has committed: audit rows and wake-ups."""

    steps: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    def add(self, step: Callable[[], Awaitable[Any]]) -> None:
        self.steps.append(step)

    async def run(self) -> None:
        steps, self.steps = self.steps, []
        for step in steps:
            await step()


class BudgetExceeded(Conflict):
    """The workspace's monthly LLM budget would be exceeded: the trigger is refused."""

    def __init__(self, cost: CostEstimate) -> None:
        self.estimate = cost
        super().__init__(
            f"This job would exceed the workspace's monthly LLM budget: ${_usd(cost.month_spend_usd)} spent this "
            f"month{_queued_words(cost)}, this job is estimated at ${_usd(cost.estimated_usd)}, and the budget is "
            f"${_usd(cost.budget_usd or Decimal(0))}. Raise the budget or wait for next month.")


def _usd(amount: Decimal) -> str:
    return f"{amount:.4f}" if amount < 1 else f"{amount:.2f}"


def _queued_words(cost: CostEstimate) -> str:
    return f" (plus ${_usd(cost.queued_usd)} for jobs already queued)" if cost.queued_usd else ""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------------------------
# Fetch-with-permission


async def get_job(tenant_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    row = await RegenerationJob.select().where(
        (RegenerationJob.id == job_id) & (RegenerationJob.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such regeneration job in this workspace.")
    return row


async def get_output(tenant_id: uuid.UUID, output_id: uuid.UUID | None) -> dict[str, Any] | None:
    if output_id is None:
        return None
    return await RegenerationOutput.select().where(
        (RegenerationOutput.id == output_id) & (RegenerationOutput.tenant_id == tenant_id)).first()


def instruction_of(job: dict[str, Any]) -> Instruction:
    return msgspec.json.decode(job["instruction"], type=Instruction)


def parse_instruction(raw: Any) -> Instruction:
    """A job's instruction from a form's text, a JSON dict or an Instruction; InvalidInput in words."""
    if isinstance(raw, Instruction):
        raw = msgspec.to_builtins(raw)
    elif isinstance(raw, str) or raw is None:
        raw = {"text": raw or ""}
    if isinstance(raw, dict) and isinstance(raw.get("text"), str):
        raw = {**raw, "text": raw["text"].strip()}
    try:
        return msgspec.convert(raw, type=Instruction, strict=False)
    except msgspec.ValidationError as exc:
        problem = explain_validation(exc, INSTRUCTION_LABELS)
        if problem.field == "text" and "at least" in problem.message:
            raise InvalidInput("Say what the new version should change: the instruction is required.") from None
        raise InvalidInput(f"Check the instruction: {problem}.") from None


# ---------------------------------------------------------------------------------------------
# What can be regenerated


async def regenerable_target(tenant_id: uuid.UUID, target_id: uuid.UUID) -> dict[str, Any]:
    """The content item a job may regenerate: an APPROVED lesson, quiz or project of this workspace, the
    newest approved one of its slot. InvalidInput in words otherwise (the target is a field of the form)."""
    item = await ContentItem.select().where(
        (ContentItem.id == target_id) & (ContentItem.tenant_id == tenant_id)).first()
    if item is None:
        raise InvalidInput("Choose an approved lesson, quiz or project of this workspace to regenerate.")
    if item["kind"] not in TargetType.__members__:
        raise InvalidInput("Only a lesson, quiz or project can be regenerated.")
    if item["status"] != ItemStatus.APPROVED:
        raise InvalidInput(f"Only approved content can be regenerated; this {item['kind'].lower()} is "
                           f"{item['status'].lower()}. Review it first, or regenerate it from its review page.")
    newer = await revisions.newer_revision(item)
    if newer is not None and newer["status"] == ItemStatus.APPROVED:
        raise InvalidInput(f"A newer approved version of this {item['kind'].lower()} exists "
                           f"(/admin/items/{newer['id']}); regenerate that one instead.")
    return item


async def open_revision(item: dict[str, Any]) -> dict[str, Any] | None:
    """The draft (or generating, failed, rejected) revision already open for the item's slot, if any: a job
    would have nowhere to put its draft until that one is approved or rejected."""
    newer = await revisions.newer_revision(item)
    return newer if newer is not None and newer["status"] != ItemStatus.APPROVED else None


# ---------------------------------------------------------------------------------------------
# Cost guard


async def month_spend(tenant_id: uuid.UUID) -> Decimal:
    """The workspace's LLM spend since the 1st of this month, UTC (every ai_usage row, all operations)."""
    rows = await AIUsage.raw(
        "SELECT coalesce(sum(cost_usd), 0) AS spent FROM ai_usage WHERE tenant_id = {} "
        "AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'", tenant_id)
    return Decimal(rows[0]["spent"])


async def queued_spend(tenant_id: uuid.UUID, *, besides: uuid.UUID | None = None) -> Decimal:
    """Estimates of jobs triggered but not yet claimed: their calls have not reached ai_usage yet."""
    rows = await RegenerationJob.raw(
        "SELECT coalesce(sum(estimated_cost_usd), 0) AS queued FROM regeneration_job WHERE tenant_id = {} "
        "AND status = 'QUEUED' AND id IS DISTINCT FROM {}", tenant_id, besides)
    return Decimal(rows[0]["queued"])


async def get_budget(tenant_id: uuid.UUID, *, lock: bool = False) -> Decimal | None:
    suffix = " FOR UPDATE" if lock else ""
    rows = await LlmBudget.raw(f"SELECT monthly_usd FROM llm_budget WHERE tenant_id = {{}}{suffix}", tenant_id)
    return Decimal(rows[0]["monthly_usd"]) if rows else None


def _judge(estimated: Decimal, spent: Decimal, queued: Decimal, budget: Decimal | None, **basis: Any
           ) -> CostEstimate:
    return CostEstimate(estimated_usd=estimated, month_spend_usd=spent, queued_usd=queued, budget_usd=budget,
                        would_exceed=budget is not None and spent + queued + estimated > budget, **basis)


async def estimate(tenant_id: uuid.UUID, target_id: uuid.UUID, instruction: Any) -> CostEstimate:
    """The cost of regenerating `target_id` with `instruction`, from the prompt's size and the model's price
    (one call; repairs would add to it), beside this month's spend and the budget."""
    from app.regeneration import worker  # the prompt is built where it is sent

    item = await regenerable_target(tenant_id, target_id)
    input_tokens, output_tokens, model, usd = await worker.estimated_call(item, parse_instruction(instruction))
    return _judge(usd, await month_spend(tenant_id), await queued_spend(tenant_id), await get_budget(tenant_id),
                  input_tokens=input_tokens, output_tokens=output_tokens, model=model)


async def job_estimate(job: dict[str, Any]) -> CostEstimate:
    """A job's stored estimate beside this month's spend and the budget (its detail page, its trigger)."""
    tenant_id = job["tenant_id"]
    return _judge(Decimal(job["estimated_cost_usd"]), await month_spend(tenant_id),
                  await queued_spend(tenant_id, besides=job["id"]), await get_budget(tenant_id))


def parse_budget(raw: str | float | Decimal | None) -> Decimal | None:
    """A budget form's value: USD, 0 or more, at most two decimals; empty means no limit."""
    text = str(raw if raw is not None else "").strip().lstrip("$").replace(",", "")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InvalidInput("The monthly budget must be an amount in US dollars, such as 50 or 12.50.") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInput("The monthly budget must be 0 or more (leave it empty for no limit).")
    if amount >= Decimal("10000000000") or amount != amount.quantize(Decimal("0.01")):
        raise InvalidInput("The monthly budget can have at most two decimals and must be below $10,000,000,000.")
    return amount


async def set_budget(tenant_id: uuid.UUID, raw: str | float | Decimal | None, *, actor: Actor) -> Decimal | None:
    """Set (or with an empty value, remove) the workspace's monthly LLM budget; audited."""
    amount = parse_budget(raw)
    previous = await get_budget(tenant_id)
    if amount is None:
        await LlmBudget.delete().where(LlmBudget.tenant_id == tenant_id)
    else:
        await LlmBudget.raw(
            "INSERT INTO llm_budget (id, tenant_id, monthly_usd, updated_by, updated_at) "
            "VALUES (gen_random_uuid(), {}, {}, {}, now()) ON CONFLICT (tenant_id) DO UPDATE "
            "SET monthly_usd = EXCLUDED.monthly_usd, updated_by = EXCLUDED.updated_by, updated_at = now()",
            tenant_id, amount, actor.user_id)
    await audit(AuditAction.LLM_BUDGET_CHANGED, actor=actor, tenant_id=tenant_id, entity_type="llm_budget",
                entity_id=tenant_id, metadata={"previous_usd": None if previous is None else str(previous),
                                               "monthly_usd": None if amount is None else str(amount)})
    return amount


# ---------------------------------------------------------------------------------------------
# PENDING: create


async def create_job(tenant_id: uuid.UUID, *, target_id: uuid.UUID, instruction: Any, actor: Actor,
                     suggestion_id: uuid.UUID | None = None, retry_of_job_id: uuid.UUID | None = None,
                     retry_intent_id: uuid.UUID | None = None, after_commit: AfterCommit | None = None
                     ) -> dict[str, Any]:
    """A PENDING job to regenerate an approved lesson, quiz or project with an instruction, its estimated
    cost stored. Inside a caller's transaction, pass `after_commit` and run it after the commit."""
    parsed = parse_instruction(instruction)
    later = after_commit if after_commit is not None else AfterCommit()
    async with engine().transaction():
        item = await regenerable_target(tenant_id, target_id)
        await _check_origin(tenant_id, suggestion_id, retry_of_job_id)
        cost = await _estimated_usd(item, parsed)
        job = (await RegenerationJob.insert(RegenerationJob(
            tenant_id=tenant_id, course_id=item["syllabus_id"], target_type=item["kind"], target_id=item["id"],
            instruction=msgspec.json.encode(parsed).decode(), suggestion_id=suggestion_id,
            retry_of_job_id=retry_of_job_id, retry_intent_id=retry_intent_id, estimated_cost_usd=cost,
            created_by=actor.user_id,
        )).returning(*RegenerationJob.all_columns()))[0]
    later.add(lambda: audit(AuditAction.REGEN_JOB_CREATED, actor=actor, tenant_id=tenant_id,
                            entity_type="regeneration_job", entity_id=job["id"], metadata={
                                "target_type": job["target_type"], "target_id": str(job["target_id"]),
                                "instruction": parsed.text, "estimated_cost_usd": str(cost),
                                "suggestion_id": _str(suggestion_id), "retry_of_job_id": _str(retry_of_job_id),
                                "retry_intent_id": _str(retry_intent_id)}))
    if after_commit is None:
        await later.run()
    return job


async def _check_origin(tenant_id: uuid.UUID, suggestion_id: uuid.UUID | None,
                        retry_of_job_id: uuid.UUID | None) -> None:
    """A job's origin must be of the same workspace (its lineage is followed without asking again)."""
    if suggestion_id is not None and not await RegenerationJob.raw(
            "SELECT 1 FROM content_suggestion WHERE id = {} AND tenant_id = {}", suggestion_id, tenant_id):
        raise InvalidInput("No such suggestion in this workspace.")
    if retry_of_job_id is not None:
        await get_job(tenant_id, retry_of_job_id)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


async def _estimated_usd(item: dict[str, Any], instruction: Instruction) -> Decimal:
    from app.regeneration import worker

    return (await worker.estimated_call(item, instruction))[3]


# ---------------------------------------------------------------------------------------------
# PENDING -> QUEUED: trigger


async def trigger_job(tenant_id: uuid.UUID, job_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    """A person's go: cost guard, PENDING -> QUEUED, then (after the commit) the worker's wake-up."""
    later = AfterCommit()
    async with engine().transaction():
        job = await queue_job(tenant_id, job_id, actor=actor, after_commit=later)
    await later.run()
    return job


async def queue_job(tenant_id: uuid.UUID, job_id: uuid.UUID, *, actor: Actor, after_commit: AfterCommit
                    ) -> dict[str, Any]:
    """trigger_job inside the caller's transaction: the wake-up and the audit row go into `after_commit`.
    Conflict (409) unless the job is PENDING; BudgetExceeded (a Conflict) when the budget would be exceeded."""
    async with engine().transaction():
        job = await get_job(tenant_id, job_id)
        if job["status"] != JobStatus.PENDING:
            raise Conflict(NOT_TRIGGERABLE[JobStatus(job["status"])])
        # The budget row is locked so that two triggers at once are judged one after the other.
        budget = await get_budget(tenant_id, lock=True)
        cost = _judge(Decimal(job["estimated_cost_usd"]), await month_spend(tenant_id),
                      await queued_spend(tenant_id, besides=job_id), budget)
        if cost.would_exceed:
            raise BudgetExceeded(cost)
        rows = await RegenerationJob.raw(
            "UPDATE regeneration_job SET status = 'QUEUED', queued_at = now(), triggered_by = {} "
            "WHERE id = {} AND tenant_id = {} AND status = 'PENDING' RETURNING *", actor.user_id, job_id, tenant_id)
        if len(rows) != 1:
            raise Conflict(NOT_TRIGGERABLE[JobStatus((await get_job(tenant_id, job_id))["status"])])
    queued = rows[0]
    after_commit.add(lambda: wake_job(queued["id"], queued["queued_at"]))
    after_commit.add(lambda: audit(AuditAction.REGEN_JOB_TRIGGERED, actor=actor, tenant_id=tenant_id,
                                   entity_type="regeneration_job", entity_id=job_id, metadata={
                                       "estimated_cost_usd": str(cost.estimated_usd),
                                       "month_spend_usd": str(cost.month_spend_usd),
                                       "budget_usd": _str(cost.budget_usd)}))
    return queued


async def wake_job(job_id: uuid.UUID, queued_at: dt.datetime) -> None:
    """Send the worker's wake-up (after the commit). A queue that is away leaves the row QUEUED: the sweeper
    sends it again (lease.rewake)."""
    from app.jobs.lease import wake, wake_key
    from tasks.regeneration import regenerate_content

    await wake(regenerate_content, wake_key("regenerate_content", job_id, queued_at), job_id=str(job_id))


# ---------------------------------------------------------------------------------------------
# Queries for the pages and APIs


class JobFilter(msgspec.Struct, frozen=True, kw_only=True):
    status: JobStatus | None = None
    course_id: uuid.UUID | None = None
    target_type: TargetType | None = None
    target_id: uuid.UUID | None = None

    def query(self, page: int | None = None) -> str:
        pairs = [("status", self.status or ""), ("course", self.course_id or ""),
                 ("target_type", self.target_type or "")]
        return urlencode([(k, v) for k, v in pairs if v] + ([("page", page)] if page else []))


class JobPage(msgspec.Struct, frozen=True, kw_only=True):
    jobs: list[dict[str, Any]]
    total: int
    page: int
    pages: int


def parse_filter(status: str | None, course: str | None, target_type: str | None,
                 target_id: str | None = None) -> JobFilter:
    """The list's query parameters (empty means any); InvalidInput in words for a bad one."""
    try:
        return msgspec.convert({k: v for k, v in {"status": status, "course_id": course, "target_type": target_type,
                                                  "target_id": target_id}.items() if v},
                               type=JobFilter, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"Check the filters: {explain_validation(exc, {'course_id': 'Course'})}.") from None


def _filtered(query: Any, tenant_id: uuid.UUID, filters: JobFilter) -> Any:
    query = query.where(RegenerationJob.tenant_id == tenant_id)
    if filters.status:
        query = query.where(RegenerationJob.status == filters.status.value)
    if filters.course_id:
        query = query.where(RegenerationJob.course_id == filters.course_id)
    if filters.target_type:
        query = query.where(RegenerationJob.target_type == filters.target_type.value)
    if filters.target_id:
        query = query.where(RegenerationJob.target_id == filters.target_id)
    return query


async def list_jobs(tenant_id: uuid.UUID, filters: JobFilter, page: int = 1) -> JobPage:
    """Newest first, with each target's title and course title."""
    total = await _filtered(RegenerationJob.count(), tenant_id, filters)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    jobs = await _filtered(RegenerationJob.select(), tenant_id, filters).order_by(
        RegenerationJob.created_at, ascending=False).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    titles = await _titles(tenant_id, {job["target_id"] for job in jobs})
    for job in jobs:
        job["target_title"], job["course_title"] = titles.get(job["target_id"], ("(unknown)", ""))
        job["instruction_text"] = instruction_of(job).text
    return JobPage(jobs=jobs, total=total, page=page, pages=pages)


async def _titles(tenant_id: uuid.UUID, item_ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
    if not item_ids:
        return {}
    rows = await ContentItem.raw(
        "SELECT i.id, i.title, c.title AS course_title FROM content_item i JOIN syllabus s ON s.id = i.syllabus_id "
        "JOIN course c ON c.id = s.course_id WHERE i.tenant_id = {} AND i.id = ANY({})", tenant_id, list(item_ids))
    return {row["id"]: (row["title"], row["course_title"]) for row in rows}


async def courses_with_jobs(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The courses (syllabus id, title) that have jobs, for the list's course filter."""
    return await RegenerationJob.raw(
        "SELECT DISTINCT j.course_id AS id, c.title FROM regeneration_job j JOIN syllabus s ON s.id = j.course_id "
        "JOIN course c ON c.id = s.course_id WHERE j.tenant_id = {} ORDER BY c.title", tenant_id)


async def audit_trail(tenant_id: uuid.UUID, job_id: uuid.UUID) -> list[dict[str, Any]]:
    return await AuditLog.select().where(
        (AuditLog.tenant_id == tenant_id) & (AuditLog.entity_type == "regeneration_job")
        & (AuditLog.entity_id == str(job_id))).order_by(AuditLog.id)


async def job_detail(tenant_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    """Everything the detail page and the API show: the job, its target, output, draft, trail and cost."""
    job = await get_job(tenant_id, job_id)
    target = await authoring.get_item(tenant_id, job["target_id"])
    output = await get_output(tenant_id, job["output_id"])
    return {
        "job": job, "instruction": msgspec.json.decode(job["instruction"]), "target": target,
        "course": await authoring.course_of(tenant_id, target), "output": output,
        "draft": await authoring.get_item(tenant_id, output["content_item_id"]) if output else None,
        "error": msgspec.json.decode(job["error"]) if job["error"] else None,
        "trail": await audit_trail(tenant_id, job_id), "cost": await job_estimate(job),
        "status_text": STATUS_WORDS[JobStatus(job["status"])],
    }
