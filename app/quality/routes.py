"""The admins' quality pages: the coverage audit (rollup, gaps in triage order with a link to the place that
fixes each, completeness, practice, the trend of stored runs, run-now, the coverage settings) and the
external resources of a course's modules."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.errors import InvalidInput
from app.quality import coverage, gate, resources
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_admin
from app.web.templating import flash, redirect, render

ADMIN = {"guards": [requires_admin]}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


async def _coverage_page(request: Request, *, settings_form: dict[str, Any] | None = None,
                         settings_error: str | None = None, status_code: int = 200) -> Response:
    tenant = _tenant(request)
    settings = await gate.settings_of(tenant)
    courses = await coverage.course_coverage(tenant, questions_target=settings["questions_per_module"])
    form = settings_form or {"questions_per_module": str(settings["questions_per_module"]),
                             "publish_gate_blocking": settings["publish_gate_blocking"]}
    return render(request, "quality/coverage.html", status_code=status_code, courses=courses,
                  gaps=coverage.gaps(courses), completeness=coverage.completeness(courses),
                  practice=coverage.practice_distribution(courses), reports=await coverage.stored_reports(tenant),
                  settings=settings, form=form, settings_error=settings_error, error=settings_error,
                  gap_words=coverage.GAP_WORDS,
                  nav="quality")


@get("/admin/quality/coverage", **ADMIN)
async def coverage_page(request: Request) -> Response:
    """Per published course and module: the seeds' baselines, gaps in triage order, and the stored runs."""
    return await _coverage_page(request)


@post("/admin/quality/coverage/run", **ADMIN)
async def run_audit(request: Request) -> Response:
    """Store a coverage report now (the weekly cron's run, by hand)."""
    report = await coverage.store_coverage_report(_tenant(request), trigger="admin")
    figures = report["figures"]
    flash(request, "success", f"Coverage audit stored: {figures['modules_covered']} of {figures['modules_total']} "
                              f"modules fully covered ({figures['percent']:g}%).")
    return redirect("/admin/quality/coverage")


@post("/admin/quality/settings", **ADMIN)
async def save_settings(request: Request, data: Annotated[gate.SettingsForm, Form]) -> Response:
    try:
        await gate.save_settings(_tenant(request), data, actor=actor_of(request))
    except InvalidInput as exc:
        kept = {"questions_per_module": data.questions_per_module,
                "publish_gate_blocking": data.publish_gate_blocking in ("on", "true", "1", "yes")}
        return await _coverage_page(request, settings_form=kept, settings_error=exc.message, status_code=422)
    flash(request, "success", "Coverage settings saved.")
    return redirect("/admin/quality/coverage#settings")


async def _resources_page(request: Request, course_id: uuid.UUID, *, error_module: int | None = None,
                          error: str | None = None, typed: dict[str, str] | None = None,
                          status_code: int = 200) -> Response:
    tenant = _tenant(request)
    course, outline = await resources.course_outline(tenant, course_id)
    return render(request, "quality/resources.html", status_code=status_code, course=course, outline=outline,
                  resources=await resources.live_resources(tenant, course_id), kinds=resources.KIND_WORDS,
                  error_module=error_module, error=error, typed=typed or {}, nav="quality")


@get("/admin/quality/courses/{course_id:uuid}/resources", **ADMIN)
async def resources_page(request: Request, course_id: uuid.UUID) -> Response:
    """Each module of the course's approved outline: its vetted links, a form to add one, a button to remove."""
    return await _resources_page(request, course_id)


@post("/admin/quality/courses/{course_id:uuid}/modules/{module_index:int}/resources", **ADMIN)
async def add_resource(request: Request, course_id: uuid.UUID, module_index: inputs.PathInt4,
                       data: Annotated[resources.ResourceForm, Form]) -> Response:
    try:
        row = await resources.add_resource(_tenant(request), course_id, module_index, data, actor=actor_of(request))
    except InvalidInput as exc:
        return await _resources_page(request, course_id, error_module=module_index, error=exc.message,
                                     typed={"title": data.title, "url": data.url, "kind": data.kind},
                                     status_code=422)
    flash(request, "success", f"Added “{row['title']}” to module {module_index}; the next published version "
                              "carries it.")
    return redirect(f"/admin/quality/courses/{course_id}/resources#module-{module_index}")


@post("/admin/quality/resources/{resource_id:uuid}/remove", **ADMIN)
async def remove_resource(request: Request, resource_id: uuid.UUID) -> Response:
    row = await resources.remove_resource(_tenant(request), resource_id, actor=actor_of(request))
    flash(request, "success", f"Removed “{row['title']}”; versions already published keep it, the next one "
                              "will not.")
    return redirect(f"/admin/quality/courses/{row['course_id']}/resources#module-{row['module_index']}")


ROUTES = [coverage_page, run_audit, save_settings, resources_page, add_resource, remove_resource]
