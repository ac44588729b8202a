"""Admin pages for a syllabus outline: edit a draft by hand, and compare two revisions of a course's outline."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter

from app.authoring import outline, services
from app.authoring.outline import InvalidOutline, OutlineEdit, OutlineForm, OutlineProblem
from app.authoring.outline_diff import compare_outlines
from app.errors import Conflict
from app.web.auth import actor_of, current_user, requires_admin
from app.web.templating import flash, redirect, render

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
ADMIN = {"guards": [requires_admin]}


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


async def _form(request: Request, syllabus: dict[str, Any], edit: OutlineEdit, *,
                problems: list[OutlineProblem] | None = None, error: str | None = None,
                status_code: int = 200) -> Response:
    course = await services.get_course(_tenant(request), syllabus["course_id"])
    problems = problems or []
    return render(request, "authoring/edit_outline.html", status_code=status_code, syllabus=syllabus, course=course,
                  doc=services.syllabus_doc(syllabus), edit=edit, problems=problems,
                  errors={p.field: p.message for p in problems}, error=error, nav="courses")


@get("/admin/syllabi/{syllabus_id:uuid}/edit", **ADMIN)
async def edit_outline(request: Request, syllabus_id: uuid.UUID) -> Response:
    syllabus = await outline.editable_syllabus(_tenant(request), syllabus_id)
    return await _form(request, syllabus, OutlineEdit.from_document(services.syllabus_doc(syllabus)))


@post("/admin/syllabi/{syllabus_id:uuid}/edit", **ADMIN)
async def save_outline(request: Request, syllabus_id: uuid.UUID, data: Annotated[OutlineForm, Form]) -> Response:
    tenant = _tenant(request)
    edit = OutlineEdit.from_form(data)
    if data.add:  # "Add a lesson" / "Add a module": the same form with one more empty row, nothing saved
        syllabus = await outline.editable_syllabus(tenant, syllabus_id)
        edit.add_row(data.add)
        return await _form(request, syllabus, edit)
    try:
        new = await outline.edit_outline(tenant, syllabus_id, edit, actor=actor_of(request))
    except (InvalidOutline, Conflict) as exc:
        syllabus = await services.get_syllabus(tenant, syllabus_id)
        return await _form(request, syllabus, edit, problems=getattr(exc, "problems", None),
                           error=None if isinstance(exc, InvalidOutline) else exc.message,
                           status_code=exc.status_code)
    if new is None:
        flash(request, "info", "Nothing changed, so no new revision was saved.")
        return redirect(f"/admin/syllabi/{syllabus_id}")
    flash(request, "success", f"Saved as revision {new['revision']}, a new draft to review. The changes are below.")
    return redirect(f"/admin/syllabi/{new['id']}#changes")


@get("/admin/syllabi/{syllabus_id:uuid}/compare", **ADMIN)
async def compare_revisions(request: Request, syllabus_id: uuid.UUID,
                            other: Annotated[uuid.UUID | None, Parameter(query="with")] = None) -> Response:
    tenant = _tenant(request)
    older, newer = await outline.revisions_to_compare(tenant, syllabus_id, other)
    diff = compare_outlines(services.syllabus_doc(older), services.syllabus_doc(newer)) if newer else None
    course = await services.get_course(tenant, older["course_id"])
    return render(request, "authoring/compare_outline.html", partial="authoring/_outline_diff.html",
                  syllabus_id=syllabus_id, older=older, newer=newer, diff=diff, course=course,
                  made_by=msgspec.json.decode(newer["generation"]) if newer else {}, embedded=bool(request.htmx),
                  revisions=[] if request.htmx else await services.course_syllabi(tenant, course["id"]), nav="courses")


ROUTES = [edit_outline, save_outline, compare_revisions]
