"""Admin authoring pages: course briefs, generation progress, syllabus and content review, AI usage.

Routes only create rows and enqueue jobs through the services; no route ever calls a generator.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.authoring import services
from app.authoring.schemas import (
    COMMON_CONSTRAINTS,
    ApproveForm,
    BulkReviewForm,
    CourseBriefForm,
    InstructionForm,
    NoteForm,
    ReasonForm,
    TeachingStyle,
)
from app.authoring.tables import ItemKind, ItemStatus, RunKind, RunStatus
from app.errors import Conflict, InvalidInput
from app.llm import usage
from app.publishing import services as publishing
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_admin
from app.web.templating import flash, redirect, render

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
ADMIN = {"guards": [requires_admin]}
STYLES = list(TeachingStyle.__args__)
LEVELS = ["beginner", "intermediate", "advanced"]


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


def _json_download(body: str, filename: str) -> Response:
    pretty = msgspec.json.format(body.encode(), indent=2)
    return Response(pretty, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# ---------------------------------------------------------------------------------------------
# Courses and the syllabus brief


@get("/admin/courses", **ADMIN)
async def courses(request: Request) -> Response:
    return render(request, "authoring/courses.html", courses=await services.list_courses(_tenant(request)),
                  nav="courses")


def _brief_form(request: Request, form: CourseBriefForm | None = None, error: InvalidInput | None = None,
                status_code: int = 200, course: dict | None = None) -> Response:
    """The brief form: a new course, or (with `course`) the brief of an existing one to draft again. A
    field's problem (services.InvalidField) is shown beside that field."""
    return render(request, "authoring/new_course.html", status_code=status_code, form=form or CourseBriefForm(),
                  error=error.message if error else None, problem=getattr(error, "problem", None), levels=LEVELS,
                  styles=STYLES, common_constraints=COMMON_CONSTRAINTS, course=course, nav="courses")


@get("/admin/courses/new", **ADMIN)
async def new_course(request: Request) -> Response:
    return _brief_form(request)


@post("/admin/courses", **ADMIN)
async def create_course(request: Request, data: Annotated[CourseBriefForm, Form]) -> Response:
    try:
        brief = services.parse_brief(data.as_brief_data())
    except InvalidInput as exc:
        return _brief_form(request, data, exc, status_code=400)
    run = await services.request_course(_tenant(request), brief, actor=actor_of(request))
    return redirect(f"/admin/runs/{run['id']}")


@get("/admin/courses/{course_id:uuid}", **ADMIN)
async def course_detail(request: Request, course_id: uuid.UUID) -> Response:
    tenant = _tenant(request)
    course = await services.get_course(tenant, course_id)
    return render(request, "authoring/course.html", course=course, brief=msgspec.json.decode(course["brief"]),
                  syllabi=await services.course_syllabi(tenant, course_id),
                  runs=await services.course_runs(tenant, course_id), nav="courses")


@get("/admin/courses/{course_id:uuid}/brief", **ADMIN)
async def edit_brief(request: Request, course_id: uuid.UUID) -> Response:
    course = await services.get_course(_tenant(request), course_id)
    return _brief_form(request, CourseBriefForm.from_brief(msgspec.json.decode(course["brief"])), course=course)


@post("/admin/courses/{course_id:uuid}/brief", **ADMIN)
async def update_brief(request: Request, course_id: uuid.UUID, data: Annotated[CourseBriefForm, Form]) -> Response:
    course = await services.get_course(_tenant(request), course_id)
    try:
        brief = services.parse_brief(data.as_brief_data())
        run = await services.update_brief(_tenant(request), course_id, brief, actor=actor_of(request))
    except (InvalidInput, Conflict) as exc:
        return _brief_form(request, data, exc, status_code=exc.status_code, course=course)
    return redirect(f"/admin/runs/{run['id']}")


# ---------------------------------------------------------------------------------------------
# Generation progress


@get("/admin/runs/{run_id:uuid}", **ADMIN)
async def run_detail(request: Request, run_id: uuid.UUID) -> Response:
    run = await services.get_run(_tenant(request), run_id)
    course = await services.get_course(_tenant(request), run["course_id"])
    return render(request, "authoring/run.html", partial="authoring/_run.html", run=run, course=course,
                  RunKind=RunKind, RunStatus=RunStatus, nav="courses")


@post("/admin/runs/{run_id:uuid}/retry", **ADMIN)
async def retry_run(request: Request, run_id: uuid.UUID) -> Response:
    run = await services.retry_syllabus_run(_tenant(request), run_id, actor=actor_of(request))
    return redirect(f"/admin/runs/{run['id']}")


@post("/admin/runs/{run_id:uuid}/regenerate-failed", **ADMIN)
async def regenerate_failed(request: Request, run_id: uuid.UUID) -> Response:
    run = await services.regenerate_failed(_tenant(request), run_id, actor=actor_of(request))
    flash(request, "info", f"Regenerating {run['total']} failed item{'s' if run['total'] != 1 else ''}; "
                           "what waited for them follows by itself.")
    return redirect(f"/admin/runs/{run['id']}")


# ---------------------------------------------------------------------------------------------
# Syllabus review


@get("/admin/syllabi/{syllabus_id:uuid}", **ADMIN)
async def syllabus_detail(request: Request, syllabus_id: uuid.UUID) -> Response:
    tenant = _tenant(request)
    syllabus = await services.get_syllabus(tenant, syllabus_id)
    content_run = await services.content_run_for(syllabus_id)
    return render(
        request, "authoring/syllabus.html", syllabus=syllabus,
        doc=services.syllabus_doc(syllabus), generation=msgspec.json.decode(syllabus["generation"]),
        course=await services.get_course(tenant, syllabus["course_id"]), content_run=content_run,
        counts=await services.review_counts(tenant, syllabus_id) if content_run else {},
        readiness=await publishing.publish_readiness(tenant, syllabus_id), nav="courses",
    )


@get("/admin/syllabi/{syllabus_id:uuid}/json", **ADMIN, media_type="application/json")
async def syllabus_json(request: Request, syllabus_id: uuid.UUID) -> Response:
    syllabus = await services.get_syllabus(_tenant(request), syllabus_id)
    return _json_download(syllabus["content"], f"syllabus-{syllabus_id}.json")


@post("/admin/syllabi/{syllabus_id:uuid}/approve", **ADMIN)
async def approve_syllabus(request: Request, syllabus_id: uuid.UUID, data: Annotated[NoteForm, Form]) -> Response:
    await services.approve_syllabus(_tenant(request), syllabus_id, data.note, actor=actor_of(request))
    flash(request, "success", "Syllabus approved. It can no longer change; content can now be generated from it.")
    return redirect(f"/admin/syllabi/{syllabus_id}")


@post("/admin/syllabi/{syllabus_id:uuid}/reject", **ADMIN)
async def reject_syllabus(request: Request, syllabus_id: uuid.UUID, data: Annotated[ReasonForm, Form]) -> Response:
    await services.reject_syllabus(_tenant(request), syllabus_id, data.reason, actor=actor_of(request))
    flash(request, "info", "Syllabus rejected. You can redraft it with an instruction.")
    return redirect(f"/admin/syllabi/{syllabus_id}")


@post("/admin/syllabi/{syllabus_id:uuid}/regenerate", **ADMIN)
async def regenerate_syllabus(request: Request, syllabus_id: uuid.UUID,
                              data: Annotated[InstructionForm, Form]) -> Response:
    run = await services.regenerate_syllabus(_tenant(request), syllabus_id, data.instruction,
                                             actor=actor_of(request))
    return redirect(f"/admin/runs/{run['id']}")


@post("/admin/syllabi/{syllabus_id:uuid}/content", **ADMIN)
async def generate_content(request: Request, syllabus_id: uuid.UUID) -> Response:
    run = await services.request_content(_tenant(request), syllabus_id, actor=actor_of(request))
    return redirect(f"/admin/runs/{run['id']}")


@post("/admin/syllabi/{syllabus_id:uuid}/modules/{module_index:int}/approve", **ADMIN)
async def approve_module(request: Request, syllabus_id: uuid.UUID, module_index: inputs.PathInt4,
                         data: Annotated[NoteForm, Form]) -> Response:
    count = await services.approve_module(_tenant(request), syllabus_id, module_index, data.note,
                                          actor=actor_of(request))
    flash(request, "success" if count else "info",
          f"Approved {count} draft{'s' if count != 1 else ''} in module {module_index}.")
    return redirect(f"/admin/syllabi/{syllabus_id}#module-{module_index}")


# ---------------------------------------------------------------------------------------------
# Content review queue and items


def _filters(syllabus: str, module: str, kind: str, status: str) -> services.ItemFilter:
    try:
        syllabus_id = uuid.UUID(syllabus) if syllabus else None
        module_index = int(module) if module else None
    except ValueError:
        raise InvalidInput("Choose a course from the list and a module number.") from None
    if module_index is not None and not 1 <= module_index <= inputs.INT4_MAX:
        raise InvalidInput("Choose a module number from the list.")
    if kind and kind not in ItemKind.__members__:
        raise InvalidInput(f"Unknown content type {kind!r}.")
    if status and status != "ALL" and status not in ItemStatus.__members__:
        raise InvalidInput(f"Unknown status {status!r}.")
    # The queue opens on what waits for review; "ALL" asks for every status but superseded.
    return services.ItemFilter(syllabus_id=syllabus_id, module_index=module_index, kind=kind or None,
                               status=None if status == "ALL" else status or ItemStatus.DRAFT.value)


def _page_number(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= inputs.INT4_MAX:
        return 1
    return int(raw)


async def _review_page(request: Request, filters: services.ItemFilter, page: int, *, status_code: int = 200,
                       **context: object) -> Response:
    tenant = _tenant(request)
    return render(request, "authoring/review.html", partial="authoring/_review_table.html", status_code=status_code,
                  result=await services.list_items(tenant, filters, page), filters=filters,
                  counts=await services.status_counts(tenant, filters),
                  syllabi=await services.reviewable_syllabi(tenant), kinds=list(ItemKind),
                  statuses=list(ItemStatus), nav="review", **context)


@get("/admin/review", **ADMIN)
async def review_queue(request: Request, syllabus: inputs.QueryLine(64) = "", module: inputs.QueryLine(16) = "",
                       kind: inputs.QueryLine(16) = "", status: inputs.QueryLine(16) = "",
                       page: inputs.Int4Query(ge=1) = 1) -> Response:
    return await _review_page(request, _filters(syllabus, module, kind, status), page)


@post("/admin/review/bulk", **ADMIN)
async def bulk_review(request: Request, data: Annotated[BulkReviewForm, Form]) -> Response:
    filters, page = _filters(data.syllabus, data.module, data.kind, data.status), _page_number(data.page)
    try:
        outcome = await services.review_items(_tenant(request), data.action, data.ids, data.note,
                                              actor=actor_of(request))
    except InvalidInput as exc:
        if request.htmx:
            raise  # app.js shows the message inside the bulk form; the selection and the note stay as they are
        return await _review_page(request, filters, page, status_code=400, bulk_error=exc.message,
                                  selected=set(data.ids), note=data.note)
    if request.htmx:
        return await _review_page(request, filters, page, bulk_notice=outcome.summary(), bulk_ok=bool(outcome.done))
    flash(request, "success" if outcome.done else "warning", outcome.summary())
    return redirect(f"/admin/review?{filters.query(page)}")


@get("/admin/items/{item_id:uuid}", **ADMIN)
async def item_detail(request: Request, item_id: uuid.UUID) -> Response:
    tenant = _tenant(request)
    item = await services.get_item(tenant, item_id)
    syllabus = await services.get_syllabus(tenant, item["syllabus_id"])
    return render(request, "authoring/item.html", item=item, doc=services.item_doc(item),
                  blockers=await services.blocking_lessons(item),
                  generation=msgspec.json.decode(item["generation"]) if item["generation"] else None,
                  syllabus=syllabus, course=await services.get_course(tenant, syllabus["course_id"]),
                  review=await services.review_position(item), revision=await publishing.revision_review(tenant, item),
                  nav="review")


@get("/admin/items/{item_id:uuid}/json", **ADMIN, media_type="application/json")
async def item_json(request: Request, item_id: uuid.UUID) -> Response:
    item = await services.get_item(_tenant(request), item_id)
    if item["content"] is None:
        raise InvalidInput("This item has no generated content yet.")
    return _json_download(item["content"], f"{item['kind'].lower()}-{item_id}.json")


@post("/admin/items/{item_id:uuid}/approve", **ADMIN)
async def approve_item(request: Request, item_id: uuid.UUID, data: Annotated[ApproveForm, Form]) -> Response:
    """Approve, then stay on the item, or ("Approve and next") open the next draft of the course."""
    tenant = _tenant(request)
    item = await services.approve_item(tenant, item_id, data.note, actor=actor_of(request))
    if data.then != "next":
        flash(request, "success", f"Approved: {item['title']}.")
        return redirect(f"/admin/items/{item_id}")
    following = (await services.review_position(item)).next
    if following is None:
        course = await services.course_of(tenant, item)
        flash(request, "success", f"Approved: {item['title']}. Nothing left to review in {course['title']}.")
        return redirect(f"/admin/review?{services.ItemFilter(syllabus_id=item['syllabus_id']).query()}")
    flash(request, "success", f"Approved: {item['title']}. Next: {following['title']}.")
    return redirect(f"/admin/items/{following['id']}")


@post("/admin/items/{item_id:uuid}/reject", **ADMIN)
async def reject_item(request: Request, item_id: uuid.UUID, data: Annotated[ReasonForm, Form]) -> Response:
    item = await services.reject_item(_tenant(request), item_id, data.reason, actor=actor_of(request))
    flash(request, "info", f"Rejected: {item['title']}. Regenerate it with an instruction when ready.")
    return redirect(f"/admin/items/{item_id}")


@post("/admin/items/{item_id:uuid}/regenerate", **ADMIN)
async def regenerate_item(request: Request, item_id: uuid.UUID, data: Annotated[InstructionForm, Form]) -> Response:
    source = await services.get_item(_tenant(request), item_id)
    new = await services.regenerate_item(_tenant(request), item_id, data.instruction, actor=actor_of(request))
    # An approved item is never replaced: the new draft is its next revision and goes through review.
    flash(request, "info", "Regenerating a new revision; learners keep the approved one until you approve the "
                           "draft and publish." if source["status"] == "APPROVED" else
                           "Regenerating; the new draft replaces this one when it is ready.")
    return redirect(f"/admin/items/{new['id']}")


# ---------------------------------------------------------------------------------------------
# AI usage (O5)


@get("/admin/ai-usage", **ADMIN)
async def ai_usage(request: Request, days: inputs.Int4Query(ge=1, le=365) = 30) -> Response:
    rows = await usage.usage_by_day(_tenant(request), days)
    return render(request, "authoring/ai_usage.html", rows=rows, totals=usage.totals(rows), days=days,
                  nav="ai-usage")


ROUTES = [
    courses, new_course, create_course, course_detail, edit_brief, update_brief, run_detail, retry_run,
    regenerate_failed, syllabus_detail, syllabus_json,
    approve_syllabus, reject_syllabus, regenerate_syllabus, generate_content, approve_module, review_queue,
    bulk_review, item_detail, item_json, approve_item, reject_item, regenerate_item, ai_usage,
]
