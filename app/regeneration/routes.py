"""Regeneration jobs: admin pages and JSON APIs (SPEC R2, issue 13 item 9). Routes create and trigger jobs;
they never run a generator (invariant 4): a worker claims a triggered job (app/regeneration/worker.py)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.authoring import services as authoring
from app.errors import InvalidInput
from app.regeneration import services
from app.regeneration.schemas import JobCreate
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_admin
from app.web.templating import flash, redirect, render

ADMIN = {"guards": [requires_admin]}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)
WORDS = {"status_words": services.STATUS_WORDS, "nav": "improve", "tab": "jobs"}


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


# ---------------------------------------------------------------------------------------------
# Pages


async def _list_context(request: Request, filters: services.JobFilter, page: int) -> dict[str, Any]:
    tenant = _tenant(request)
    return {"result": await services.list_jobs(tenant, filters, page), "filters": filters,
            "courses": await services.courses_with_jobs(tenant), "budget": await services.get_budget(tenant),
            "month_spend": await services.month_spend(tenant), **WORDS}


@get("/admin/regeneration-jobs", **ADMIN)
async def list_page(request: Request, status: inputs.QueryLine(16) = "", course: inputs.QueryLine(64) = "",
                    target_type: inputs.QueryLine(16) = "", page: inputs.Int4Query(ge=1, le=10_000) = 1) -> Response:
    """Every regeneration job of the workspace, newest first, by status, course and target type; the budget."""
    try:
        filters, error = services.parse_filter(status, course, target_type), None
    except InvalidInput as exc:
        filters, error = services.JobFilter(), exc.message
    context = await _list_context(request, filters, page)
    return render(request, "regeneration/jobs.html", partial="regeneration/_jobs.html", list_error=error, error=error,
                  status_code=400 if error else 200, raw={"status": status, "course": course,
                                                          "target_type": target_type},
                  budget_error=None, budget_typed=None, **context)


class BudgetForm(msgspec.Struct):
    monthly_usd: inputs.Line(32) = ""


@post("/admin/regeneration-jobs/budget", **ADMIN)
async def budget_form(request: Request, data: Annotated[BudgetForm, Form]) -> Response:
    """Set the workspace's monthly LLM budget (empty: no limit); audited. A bad amount is shown inline."""
    try:
        amount = await services.set_budget(_tenant(request), data.monthly_usd, actor=actor_of(request))
    except InvalidInput as exc:
        context = await _list_context(request, services.JobFilter(), 1)
        return render(request, "regeneration/jobs.html", status_code=422, list_error=None, raw={},
                      budget_error=exc.message, error=exc.message, budget_typed=data.monthly_usd, **context)
    flash(request, "success", f"Monthly LLM budget set to ${amount:.2f}." if amount is not None
          else "Monthly LLM budget removed: no limit.")
    return redirect("/admin/regeneration-jobs")


async def _new_context(request: Request, item_id: uuid.UUID, text: str) -> dict[str, Any]:
    tenant = _tenant(request)
    item = await authoring.get_item(tenant, item_id)
    try:
        # The estimate is for the text as typed (cut to the limit: a too-long one is refused on its own).
        cost = await services.estimate(tenant, item_id, text.strip()[:2000] or "—")
        problem = None
    except InvalidInput as exc:
        cost, problem = None, exc.message
    return {"item": item, "course": await authoring.course_of(tenant, item), "cost": cost, "target_problem": problem,
            "text": text, **WORDS}


@get("/admin/regeneration-jobs/new", **ADMIN)
async def new_page(request: Request, item: inputs.QueryLine(64)) -> Response:
    """The create form for one approved lesson, quiz or project: the instruction, the estimate, the spend."""
    item_id = _item_id(item)
    return render(request, "regeneration/job_new.html", error=None, **await _new_context(request, item_id, ""))


def _item_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput("Open this form from an approved lesson, quiz or project (its page links here).") from None


class JobForm(msgspec.Struct):
    item: inputs.Line(64) = ""
    instruction: inputs.Text(4000) = ""


@post("/admin/regeneration-jobs", **ADMIN)
async def create_page(request: Request, data: Annotated[JobForm, Form]) -> Response:
    """Create a PENDING job from the form; it runs only once someone triggers it on its page."""
    item_id = _item_id(data.item)
    try:
        job = await services.create_job(_tenant(request), target_id=item_id, instruction={"text": data.instruction},
                                        actor=actor_of(request))
    except InvalidInput as exc:
        context = await _new_context(request, item_id, data.instruction)
        return render(request, "regeneration/job_new.html", status_code=422, error=exc.message, **context)
    flash(request, "success", "Regeneration job created. Check the estimate, then trigger it.")
    return redirect(f"/admin/regeneration-jobs/{job['id']}")


@get("/admin/regeneration-jobs/{job_id:uuid}", **ADMIN)
async def detail_page(request: Request, job_id: uuid.UUID) -> Response:
    """A job: its target, instruction, status, output or error, cost, audit trail; Trigger while PENDING."""
    detail = await services.job_detail(_tenant(request), job_id)
    return render(request, "regeneration/job.html", partial="regeneration/_job_status.html", **detail, **WORDS)


@post("/admin/regeneration-jobs/{job_id:uuid}/trigger", **ADMIN)
async def trigger_page(request: Request, job_id: uuid.UUID) -> Response:
    """PENDING -> QUEUED (cost guard first). Not PENDING, or over budget: 409 with the reason in words."""
    await services.trigger_job(_tenant(request), job_id, actor=actor_of(request))
    flash(request, "success", "Triggered: a worker picks the job up shortly; this page follows it.")
    return redirect(f"/admin/regeneration-jobs/{job_id}")


# ---------------------------------------------------------------------------------------------
# JSON APIs (SPEC R2)


def _job_json(job: dict[str, Any]) -> dict[str, Any]:
    return {**job, "instruction": msgspec.json.decode(job["instruction"]),
            "error": msgspec.json.decode(job["error"]) if job["error"] else None,
            "status_words": services.STATUS_WORDS[job["status"]]}


@get("/api/admin/regeneration-jobs", **ADMIN)
async def list_api(request: Request, status: inputs.QueryLine(16) = "", course: inputs.QueryLine(64) = "",
                   target_type: inputs.QueryLine(16) = "", target_id: inputs.QueryLine(64) = "",
                   page: inputs.Int4Query(ge=1, le=10_000) = 1) -> dict[str, Any]:
    """Regeneration jobs, newest first. Filters: status (PENDING, QUEUED, RUNNING, COMPLETED, FAILED), course
    (the syllabus id), target_type (LESSON, QUIZ, PROJECT), target_id (the content item)."""
    filters = services.parse_filter(status, course, target_type, target_id)
    result = await services.list_jobs(_tenant(request), filters, page)
    return {"jobs": [_job_json(job) for job in result.jobs], "total": result.total, "page": result.page,
            "pages": result.pages}


@get("/api/admin/regeneration-jobs/{job_id:uuid}", **ADMIN)
async def detail_api(request: Request, job_id: uuid.UUID) -> dict[str, Any]:
    """One job with its output (the new draft's content and lineage) and its cost estimate."""
    detail = await services.job_detail(_tenant(request), job_id)
    output = detail["output"]
    if output is not None:
        output = {**output, "content": msgspec.json.decode(output["content"]),
                  "lineage": msgspec.json.decode(output["lineage"])}
    return {"job": _job_json(detail["job"]), "output": output, "cost": detail["cost"],
            "draft_item_id": detail["draft"]["id"] if detail["draft"] else None}


@post("/api/admin/regeneration-jobs", status_code=201, **ADMIN)
async def create_api(request: Request, data: JobCreate) -> dict[str, Any]:
    """Create a PENDING job for an approved lesson, quiz or project: {"target_id", "instruction": {"text", ...}}."""
    job = await services.create_job(_tenant(request), target_id=data.target_id, instruction=data.instruction,
                                    suggestion_id=data.suggestion_id, actor=actor_of(request))
    return _job_json(job)


@post("/api/admin/regeneration-jobs/{job_id:uuid}/trigger", status_code=200, **ADMIN)
async def trigger_api(request: Request, job_id: uuid.UUID) -> dict[str, Any]:
    """PENDING -> QUEUED and a worker's wake-up. 409 when the job is not PENDING or the budget would be exceeded."""
    return _job_json(await services.trigger_job(_tenant(request), job_id, actor=actor_of(request)))


ROUTES: list[Any] = [list_page, budget_form, new_page, create_page, detail_page, trigger_page, list_api, detail_api,
                     create_api, trigger_api]
