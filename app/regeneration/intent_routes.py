"""Retry intents: a person's reasoned, approved request to run a failed regeneration job again (SPEC R5).
Pages (the retry section of a failed job, the list, a request's page, the execute confirmation) and the JSON
APIs. Routes create and decide intents; the new job runs on a worker (invariant 4)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.errors import InvalidInput
from app.regeneration import intents
from app.regeneration.intents import FieldError, IntentCreate, IntentReject
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_admin
from app.web.requests import FORM_MEDIA_TYPES
from app.web.templating import flash, redirect, render

ADMIN = {"guards": [requires_admin]}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)
WORDS = {"reason_words": intents.REASON_WORDS, "status_words": intents.STATUS_WORDS, "nav": "improve",
         "tab": "intents"}


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


def _uuid_or_none(raw: str, field: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        raise FieldError(field, "The job filter must be a regeneration job's id.") from None


# ---------------------------------------------------------------------------------------------
# Pages


class IntentForm(msgspec.Struct):
    reason_code: inputs.Line(32) = ""
    reason_text: inputs.Text() = ""


class RejectForm(msgspec.Struct):
    note: inputs.Text() = ""


@get("/admin/regeneration-jobs/{job_id:uuid}/retry-intents", **ADMIN)
async def job_retry_section(request: Request, job_id: uuid.UUID) -> Response:
    """The retry section of a failed job (the job page loads it when it was not rendered with it)."""
    section = await intents.retry_section(_tenant(request), job_id)
    return render(request, "regeneration/intent_new.html", partial="regeneration/_retry_section.html",
                  **section, form={}, error=None, field=None, **WORDS)


@post("/admin/regeneration-jobs/{job_id:uuid}/retry-intents", **ADMIN)
async def create_from_form(request: Request, job_id: uuid.UUID, data: Annotated[IntentForm, Form]) -> Response:
    tenant = _tenant(request)
    try:
        intent = await intents.create_intent(tenant, job_id, data.reason_code, data.reason_text,
                                             actor=actor_of(request))
    except FieldError as exc:
        section = await intents.retry_section(tenant, job_id)
        return render(request, "regeneration/intent_new.html", status_code=400, **section,
                      form=msgspec.structs.asdict(data), error=exc.message, field=exc.field, **WORDS)
    flash(request, "success", "Retry requested. An admin approves it, then it can be carried out.")
    return redirect(f"/admin/retry-intents/{intent['id']}")


@get("/admin/retry-intents", **ADMIN)
async def list_page(request: Request, status: inputs.QueryLine(16) = "", job: inputs.QueryLine(64) = "",
                    page: inputs.Int4Query(ge=1, le=10_000) = 1) -> Response:
    """Every retry request of the workspace, newest first, by status and job."""
    try:
        result = await intents.list_intents(_tenant(request), job_id=_uuid_or_none(job, "job"),
                                            status=status or None, page=page)
        error = None
    except InvalidInput as exc:
        result, error = intents.IntentPage(rows=[], page=1, has_next=False), exc.message
    return render(request, "regeneration/intents.html", partial="regeneration/_intent_list.html",
                  status_code=400 if error else 200, result=result, filters={"status": status, "job": job},
                  list_error=error, error=error, **WORDS)


@get("/admin/retry-intents/{intent_id:uuid}", **ADMIN)
async def detail_page(request: Request, intent_id: uuid.UUID) -> Response:
    intent = await intents.get_intent(_tenant(request), intent_id)
    return render(request, "regeneration/intent.html", intent=intent, error=None, note="", **WORDS)


@post("/admin/retry-intents/{intent_id:uuid}/approve", **ADMIN)
async def approve_page(request: Request, intent_id: uuid.UUID) -> Response:
    await intents.approve_intent(_tenant(request), intent_id, actor=actor_of(request))
    flash(request, "success", "Retry approved. It can be carried out now.")
    return redirect(f"/admin/retry-intents/{intent_id}")


@post("/admin/retry-intents/{intent_id:uuid}/reject", **ADMIN)
async def reject_page(request: Request, intent_id: uuid.UUID, data: Annotated[RejectForm, Form]) -> Response:
    tenant = _tenant(request)
    try:
        await intents.reject_intent(tenant, intent_id, data.note, actor=actor_of(request))
    except FieldError as exc:
        intent = await intents.get_intent(tenant, intent_id)
        return render(request, "regeneration/intent.html", status_code=400, intent=intent, error=exc.message,
                      note=data.note, **WORDS)
    flash(request, "success", "Retry refused.")
    return redirect(f"/admin/retry-intents/{intent_id}")


@get("/admin/retry-intents/{intent_id:uuid}/execute", **ADMIN)
async def confirm_execute(request: Request, intent_id: uuid.UUID) -> Response:
    """The confirmation step: what will run, what it is estimated to cost, and the month's budget."""
    tenant = _tenant(request)
    intent = await intents.get_intent(tenant, intent_id)
    if intent["status"] != intents.IntentStatus.PENDING or intent["approved_at"] is None:
        return redirect(f"/admin/retry-intents/{intent_id}")
    estimate = await intents.estimate_retry(tenant, intent)
    return render(request, "regeneration/intent_execute.html", intent=intent, estimate=estimate, **WORDS)


@post("/admin/retry-intents/{intent_id:uuid}/execute", **ADMIN)
async def execute_page(request: Request, intent_id: uuid.UUID) -> Response:
    done = await intents.execute_intent(_tenant(request), intent_id, actor=actor_of(request))
    flash(request, "success" if done.created else "info",
          "Retry carried out: this is the new job." if done.created else "This retry was already carried out.")
    return redirect(f"/admin/regeneration-jobs/{done.job['id']}")


# ---------------------------------------------------------------------------------------------
# JSON APIs (SPEC R5)


def _api_input(exc: FieldError) -> InvalidInput:
    return InvalidInput(f"{exc.field}: {exc.message}")


@post("/api/admin/retry-intents", status_code=201, **ADMIN)
async def create_api(request: Request, data: IntentCreate) -> dict[str, Any]:
    """Ask for a retry of a FAILED job (reason_code: TRANSIENT_FAILURE, BAD_INPUT, IMPROVED_PROMPT, INFRA_ERROR
    or OTHER; reason_text required). 409 when the job did not fail or already has an open request."""
    try:
        return await intents.create_intent(_tenant(request), data.job_id, data.reason_code, data.reason_text,
                                           actor=actor_of(request))
    except FieldError as exc:
        raise _api_input(exc) from None


@get("/api/admin/retry-intents", **ADMIN)
async def list_api(request: Request, job_id: inputs.QueryLine(64) = "", status: inputs.QueryLine(16) = "",
                   page: inputs.Int4Query(ge=1, le=10_000) = 1) -> dict[str, Any]:
    """Retry requests, newest first; `job_id` narrows them to one failed job, `status` to PENDING, CONSUMED
    or REJECTED."""
    try:
        result = await intents.list_intents(_tenant(request), job_id=_uuid_or_none(job_id, "job_id"),
                                            status=status or None, page=page)
    except FieldError as exc:
        raise _api_input(exc) from None
    return {"intents": result.rows, "page": result.page, "has_next": result.has_next}


@get("/api/admin/retry-intents/{intent_id:uuid}", **ADMIN)
async def detail_api(request: Request, intent_id: uuid.UUID) -> dict[str, Any]:
    return await intents.get_intent(_tenant(request), intent_id)


@post("/api/admin/retry-intents/{intent_id:uuid}/approve", status_code=200, **ADMIN)
async def approve_api(request: Request, intent_id: uuid.UUID) -> dict[str, Any]:
    return await intents.approve_intent(_tenant(request), intent_id, actor=actor_of(request))


# The body is read by hand, after the tenant check: another workspace's id is a 404 whatever the body is
# (a typed `data` would answer a form body 415 before the handler could say "not found").
@post("/api/admin/retry-intents/{intent_id:uuid}/reject", status_code=200, **ADMIN,
      opt={"accepts": ("application/json", *FORM_MEDIA_TYPES)})
async def reject_api(request: Request, intent_id: uuid.UUID) -> dict[str, Any]:
    """Refuse an open request; JSON body {"note": "..."} (required). Final."""
    tenant = _tenant(request)
    await intents.get_intent(tenant, intent_id)
    try:
        data = msgspec.json.decode(await request.body(), type=IntentReject)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise InvalidInput('note: send a JSON body {"note": "why it is refused"}.') from None
    try:
        return await intents.reject_intent(tenant, intent_id, data.note, actor=actor_of(request))
    except FieldError as exc:
        raise _api_input(exc) from None


@post("/api/admin/retry-intents/{intent_id:uuid}/execute", status_code=200, **ADMIN)
async def execute_api(request: Request, intent_id: uuid.UUID) -> dict[str, Any]:
    """Carry out an approved request: the new job is created and triggered (QUEUED). Executing it again
    answers with the same job (`created`: false) and makes nothing."""
    done = await intents.execute_intent(_tenant(request), intent_id, actor=actor_of(request))
    return {"intent": done.intent, "job": done.job, "created": done.created}


ROUTES = [job_retry_section, create_from_form, list_page, detail_page, approve_page, reject_page, confirm_execute,
          execute_page, create_api, list_api, detail_api, approve_api, reject_api, execute_api]
