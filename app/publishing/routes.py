"""Publishing: the admin course browser (B4) and the read-only course APIs (B3).

Packages have no write routes: publish and archive are form posts of the admin pages, and any other
verb on an API path answers 405.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request, Response, get, post

from app.authoring.routes import syllabus_detail
from app.errors import Conflict, InvalidInput, NotFound
from app.publishing import services
from app.publishing.diff import diff_packages
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_admin
from app.web.templating import flash, redirect, render

ADMIN = {"guards": [requires_admin]}


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


# ---------------------------------------------------------------------------------------------
# Admin pages


@get("/admin/packages", **ADMIN)
async def packages(request: Request) -> Response:
    return render(request, "publishing/packages.html", courses=await services.latest_packages(_tenant(request)),
                  nav="packages")


@post("/admin/syllabi/{syllabus_id:uuid}/publish", **ADMIN)
async def publish(request: Request, syllabus_id: uuid.UUID) -> Response:
    try:
        row = await services.publish_package(_tenant(request), syllabus_id, actor=actor_of(request))
    except (InvalidInput, Conflict) as exc:
        return await _publish_refused(request, syllabus_id, exc)
    flash(request, "success", f"Published version {row['version']} of {row['title']}.")
    return redirect(f"/admin/packages/{syllabus_id}")


async def _publish_refused(request: Request, syllabus_id: uuid.UUID, exc: InvalidInput | Conflict) -> Response:
    """Never a dead end: the syllabus page again, the reason inside its publish panel next to the links that
    lead on (what to approve, what to revise), under the refusal's status code."""
    if request.htmx:
        # The app's one way for htmx errors (static/app.js): the message alone, shown in the form that sent
        # it; the panel around that form already lists what to approve or revise.
        raise exc
    # The whole syllabus page, built by its own handler so it is the same page (whatever it shows
    # besides this panel), with the refusal added.
    page = await syllabus_detail.fn(request, syllabus_id)
    page.context["publish_error"] = exc.message
    page.status_code = exc.status_code
    return page


@get("/admin/packages/{syllabus_id:uuid}", **ADMIN)
async def versions(request: Request, syllabus_id: uuid.UUID) -> Response:
    rows = await services.list_versions(_tenant(request), syllabus_id)
    if not rows:
        raise NotFound("This course has no published version yet.")
    return render(request, "publishing/versions.html", syllabus_id=syllabus_id, versions=rows,
                  publishers=await services.publisher_emails(rows), nav="packages")


@get("/admin/packages/{syllabus_id:uuid}/v/{version:int}", **ADMIN)
async def version_detail(request: Request, syllabus_id: uuid.UUID, version: inputs.PathInt4) -> Response:
    row = await services.get_version(_tenant(request), syllabus_id, version)
    return render(request, "publishing/version.html", package=row,
                  document=services.parse_document(row["content_hash"], row["document"]), nav="packages")


@get("/admin/packages/{syllabus_id:uuid}/v/{version:int}/json", **ADMIN, media_type="application/json")
async def version_json(request: Request, syllabus_id: uuid.UUID, version: inputs.PathInt4) -> Response:
    row = await services.get_version(_tenant(request), syllabus_id, version)
    # The stored canonical bytes, unchanged: the download hashes to the published SHA-256.
    return Response(row["document"].encode(), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="course-{syllabus_id}-v{version}.json"',
        "X-Content-SHA256": row["content_hash"]})


@get("/admin/packages/{package_id:uuid}/archive", **ADMIN)
async def archive_confirm(request: Request, package_id: uuid.UUID) -> Response:
    # A page of its own rather than a confirm() dialog: it works without JavaScript and can say exactly
    # what archiving does to the learners on this version.
    tenant = _tenant(request)
    try:
        plan = await services.archive_plan(tenant, package_id)
    except Conflict as exc:
        return await _archive_refused(request, package_id, exc)
    return render(request, "publishing/archive.html", plan=plan,
                  package=await services.get_package_meta(tenant, package_id), nav="packages")


async def _archive_refused(request: Request, package_id: uuid.UUID, exc: Conflict) -> Response:
    """An archived version's archive page says so and leads back to the versions, instead of an error page."""
    package = await services.get_package_meta(_tenant(request), package_id)
    return render(request, "publishing/archive.html", status_code=exc.status_code, plan=None, package=package,
                  archive_error=exc.message, nav="packages")


@post("/admin/packages/{package_id:uuid}/archive", **ADMIN)
async def archive(request: Request, package_id: uuid.UUID) -> Response:
    try:
        plan = await services.archive_package(_tenant(request), package_id, actor=actor_of(request))
    except Conflict as exc:
        return await _archive_refused(request, package_id, exc)
    flash(request, "info", f"Version {plan.version} is archived; learners no longer see it. {_archive_outcome(plan)}")
    return redirect(f"/admin/packages/{plan.syllabus_id}")


def _archive_outcome(plan: services.ArchivePlan) -> str:
    learners = f"{plan.learners} learner{'' if plan.learners == 1 else 's'}"
    if plan.move_to is None:
        return "No published version is left: the course is withdrawn" + (
            f" for its {learners}." if plan.learners else ".")
    if plan.learners:
        return f"{learners} moved to version {plan.move_to}, completed lessons kept."
    return "No learner was enrolled on it."


@get("/admin/packages/{syllabus_id:uuid}/diff", **ADMIN)
async def diff(request: Request, syllabus_id: uuid.UUID, a: inputs.Int4Query(ge=1),
               b: inputs.Int4Query(ge=1)) -> Response:
    tenant = _tenant(request)
    row_a = await services.get_version(tenant, syllabus_id, a)
    row_b = await services.get_version(tenant, syllabus_id, b)
    doc_a = services.parse_document(row_a["content_hash"], row_a["document"])
    doc_b = services.parse_document(row_b["content_hash"], row_b["document"])
    return render(request, "publishing/diff.html", syllabus_id=syllabus_id, a=row_a, b=row_b,
                  diff=diff_packages(doc_a, doc_b), versions=await services.list_versions(tenant, syllabus_id),
                  nav="packages")


# ---------------------------------------------------------------------------------------------
# Admin read API (B3): published versions only


class CourseSummary(msgspec.Struct, frozen=True):
    syllabus_id: uuid.UUID
    title: str
    latest_version: int
    versions: int
    lessons: int
    content_hash: str
    published_at: str


class VersionSummary(msgspec.Struct, frozen=True):
    version: int
    status: str
    content_hash: str
    size_bytes: int
    lessons: int
    published_at: str
    published_by: uuid.UUID | None


@get("/api/courses", **ADMIN, tags=["courses"], summary="Published courses of the workspace")
async def api_courses(request: Request) -> list[CourseSummary]:
    rows = await services.latest_packages(_tenant(request), published_only=True)
    return [CourseSummary(r["syllabus_id"], r["title"], r["version"], r["versions"], r["lesson_count"],
                          r["content_hash"], r["published_at"].isoformat()) for r in rows]


@get("/api/courses/{syllabus_id:uuid}", **ADMIN, tags=["courses"], summary="Published versions of a course")
async def api_course_versions(request: Request, syllabus_id: uuid.UUID) -> list[VersionSummary]:
    rows = await services.list_versions(_tenant(request), syllabus_id, published_only=True)
    if not rows:
        raise NotFound("No published course with this id.")
    return [VersionSummary(r["version"], r["status"], r["content_hash"], r["size_bytes"], r["lesson_count"],
                           r["published_at"].isoformat(), r["published_by"]) for r in rows]


@get("/api/courses/{syllabus_id:uuid}/{version:int}", **ADMIN, tags=["courses"],
     summary="One published version: the CoursePackage document")
async def api_course_version(request: Request, syllabus_id: uuid.UUID, version: inputs.PathInt4) -> Response[Any]:
    row = await services.get_version(_tenant(request), syllabus_id, version, published_only=True)
    return Response(row["document"].encode(), media_type="application/json",
                    headers={"X-Content-SHA256": row["content_hash"]})


ROUTES = [packages, publish, versions, version_detail, version_json, archive_confirm, archive, diff, api_courses,
          api_course_versions, api_course_version]
