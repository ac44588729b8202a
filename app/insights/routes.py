"""Suggestions: the admins' list, detail, accept and dismiss (pages and JSON APIs), and the analytics page's
"Suggested actions" panel. Thin: parse, call one service, pick a template."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.enums import MediaType, RequestEncodingType
from litestar.handlers import BaseRouteHandler
from litestar.params import Body, Parameter

from app.errors import Conflict, InvalidInput
from app.insights import schemas, services
from app.insights.tables import SuggestionStatus
from app.regeneration import impact
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_admin
from app.web.templating import flash, redirect, render

ADMIN = {"guards": [requires_admin]}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)
STATUS_WORDS = {SuggestionStatus.OPEN.value: "Open", SuggestionStatus.ACCEPTED.value: "Accepted",
                SuggestionStatus.DISMISSED.value: "Dismissed"}
WORDS = {"type_words": services.TYPE_WORDS, "scope_words": services.SCOPE_WORDS, "status_words": STATUS_WORDS,
         "severities": services.SEVERITIES, "nav": "improve", "tab": "suggestions"}

Severity = Annotated[str, Parameter(max_length=8, pattern=inputs.SINGLE_LINE, description="high, medium or low")]
# `scope` is Litestar's name for the ASGI scope: the handlers read the query's scope as `in_scope`.
Scope = Annotated[str, Parameter(query="scope", max_length=16, pattern=inputs.SINGLE_LINE,
                                 description="COURSE, MODULE, LESSON or QUIZ")]
Status = Annotated[str, Parameter(max_length=16, pattern=inputs.SINGLE_LINE,
                                  description="OPEN, ACCEPTED or DISMISSED")]
Course = Annotated[str, Parameter(max_length=64, pattern=inputs.SINGLE_LINE, description="the course's syllabus id")]
PageNumber = inputs.Int4Query(ge=1, le=100_000)


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


def _filters(severity: str, course: str, scope: str, status: str) -> services.Filters:
    try:
        course_id = uuid.UUID(course) if course else None
    except ValueError:
        raise InvalidInput("The course is not a course of this workspace (expected its id).") from None
    services.check_filters(severity, scope, status)
    return services.Filters(severity=severity, course_id=course_id, scope=scope, status=status)


async def suggestion_of_workspace(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The JSON APIs' fetch-with-permission, as a guard: another workspace's suggestion answers 404 before the
    body is read (a body of the wrong kind would otherwise answer first)."""
    await services.get_suggestion(current_user(connection).tenant_id, connection.path_params["suggestion_id"])


# ---------------------------------------------------------------------------------------------
# Pages


@get("/admin/suggestions", **ADMIN)
async def suggestions_page(request: Request, severity: Severity = "", course: Course = "", in_scope: Scope = "",
                           status: Status = "", page: PageNumber = 1) -> Response:
    """Suggestions of the workspace, open ones first, filtered by severity, course, scope and status."""
    tenant = _tenant(request)
    titles = await services.course_titles(tenant)
    typed = {"severity": severity, "course": course, "scope": in_scope, "status": status}
    try:
        result = await services.list_suggestions(tenant, _filters(severity, course, in_scope, status), page)
    except InvalidInput as exc:
        return render(request, "insights/list.html", partial="insights/_list.html", status_code=400,
                      error=exc.message, result=None, titles=titles, typed=typed, **WORDS)
    return render(request, "insights/list.html", partial="insights/_list.html", error=None, result=result,
                  titles=titles, typed=typed, **WORDS)


@get("/admin/suggestions/panel", **ADMIN)
async def suggested_actions(request: Request, course: Course = "") -> Response:
    """The analytics page's "Suggested actions" panel (htmx); without htmx, the list filtered the same way."""
    filters = _filters("", course, "", SuggestionStatus.OPEN.value)
    if not request.htmx or filters.course_id is None:
        return redirect(f"/admin/suggestions?status=OPEN&course={course}")
    rows = await services.open_for_course(_tenant(request), filters.course_id)
    return render(request, "insights/_panel.html", suggestions=rows, course_id=filters.course_id, **WORDS)


async def _detail(request: Request, suggestion_id: uuid.UUID, *, status_code: int = 200, error: str | None = None,
                  failed: str | None = None, note: str = "", instruction: str | None = None,
                  create_job: bool = True) -> Response:
    view = await services.suggestion_page(_tenant(request), suggestion_id, instruction)
    # The loop measured: once something regenerated from it is published, the figure before and after.
    impacts = await impact.impact_for_suggestion(_tenant(request), suggestion_id)
    return render(request, "insights/detail.html", status_code=status_code, error=error, failed=failed, note=note,
                  create_job=create_job, impacts=impacts, **view, **WORDS)


@get("/admin/suggestions/{suggestion_id:uuid}", **ADMIN)
async def suggestion_page(request: Request, suggestion_id: uuid.UUID) -> Response:
    """One suggestion: its evidence, the signal behind it, and the accept and dismiss forms."""
    return await _detail(request, suggestion_id)


@get("/admin/suggestions/{suggestion_id:uuid}/json", **ADMIN, media_type=MediaType.JSON)
async def suggestion_evidence(request: Request, suggestion_id: uuid.UUID) -> dict[str, Any]:
    """The suggestion's evidence (the JSON viewer's download)."""
    return (await services.get_suggestion(_tenant(request), suggestion_id))["evidence"]


@post("/admin/suggestions/{suggestion_id:uuid}/accept", **ADMIN)
async def accept_form(request: Request, suggestion_id: uuid.UUID,
                      data: Annotated[schemas.AcceptForm, Form]) -> Response:
    """Accept with a note; with the box ticked, also create the regeneration job and go to it."""
    try:
        result = await services.accept_suggestion(_tenant(request), suggestion_id, data.note, actor=actor_of(request),
                                                  create_job=bool(data.create_job), instruction=data.instruction)
    except (InvalidInput, Conflict) as exc:
        return await _detail(request, suggestion_id, status_code=exc.status_code, error=exc.message, failed="accept",
                             note=data.note, instruction=data.instruction, create_job=bool(data.create_job))
    if result["job"] is not None:
        flash(request, "success", "Suggestion accepted and a regeneration job created: check it, then trigger it.")
        return redirect(f"/admin/regeneration-jobs/{result['job']['id']}")
    flash(request, "success", "Suggestion accepted.")
    return redirect(f"/admin/suggestions/{suggestion_id}")


@post("/admin/suggestions/{suggestion_id:uuid}/dismiss", **ADMIN)
async def dismiss_form(request: Request, suggestion_id: uuid.UUID,
                       data: Annotated[schemas.DismissForm, Form]) -> Response:
    try:
        await services.dismiss_suggestion(_tenant(request), suggestion_id, data.note, actor=actor_of(request))
    except (InvalidInput, Conflict) as exc:
        return await _detail(request, suggestion_id, status_code=exc.status_code, error=exc.message,
                             failed="dismiss", note=data.note)
    flash(request, "success", "Suggestion dismissed.")
    return redirect(f"/admin/suggestions/{suggestion_id}")


# ---------------------------------------------------------------------------------------------
# JSON APIs


@get("/api/admin/suggestions", **ADMIN)
async def list_api(request: Request, severity: Severity = "", course: Course = "", in_scope: Scope = "",
                   status: Status = "", page: PageNumber = 1) -> schemas.SuggestionList:
    """Suggestions of the workspace (25 a page), open ones first, then by severity and age."""
    result = await services.list_suggestions(_tenant(request), _filters(severity, course, in_scope, status), page)
    return schemas.SuggestionList(suggestions=[schemas.suggestion_of(r) for r in result.rows], page=result.page,
                                  has_next=result.has_next)


def _decision(result: dict[str, Any]) -> schemas.SuggestionDecision:
    job = result.get("job")
    return schemas.SuggestionDecision(suggestion=schemas.suggestion_of(result["suggestion"]),
                                      job_id=job["id"] if job else None,
                                      job_url=f"/admin/regeneration-jobs/{job['id']}" if job else None)


@post("/api/admin/suggestions/{suggestion_id:uuid}/accept", guards=[requires_admin, suggestion_of_workspace],
      status_code=200)
async def accept_api(request: Request, suggestion_id: uuid.UUID,
                     data: schemas.SuggestionAccept) -> schemas.SuggestionDecision:
    """Accept an open suggestion (note required); create_job also creates a PENDING regeneration job for its
    lesson or quiz, in the same transaction. 409 when it was already decided."""
    result = await services.accept_suggestion(_tenant(request), suggestion_id, data.note, actor=actor_of(request),
                                              create_job=data.create_job, instruction=data.instruction)
    return _decision(result)


@post("/api/admin/suggestions/{suggestion_id:uuid}/dismiss", guards=[requires_admin, suggestion_of_workspace],
      status_code=200)
async def dismiss_api(request: Request, suggestion_id: uuid.UUID,
                      data: schemas.SuggestionDismiss) -> schemas.SuggestionDecision:
    """Dismiss an open suggestion (note required). 409 when it was already decided."""
    row = await services.dismiss_suggestion(_tenant(request), suggestion_id, data.note, actor=actor_of(request))
    return _decision({"suggestion": row})


ROUTES: list[Any] = [suggestions_page, suggested_actions, suggestion_page, suggestion_evidence, accept_form,
                     dismiss_form, list_api, accept_api, dismiss_api]
