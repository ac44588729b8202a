"""Admin dashboard: workspace stats recomputed by a background job, with a polling progress partial; and the
list of every kind of background work (generation runs and jobs), for people."""

from __future__ import annotations

import uuid

from litestar import Request, Response, get, post

from app.errors import InvalidInput
from app.jobs import services
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_admin
from app.web.templating import flash, redirect, render


@get("/admin", guards=[requires_admin])
async def dashboard(request: Request) -> Response:
    tenant_id = current_user(request).tenant_id
    return render(request, "admin/dashboard.html", stats=await services.latest_tenant_stats(tenant_id),
                  job=None, nav="dashboard")


@post("/admin/stats", guards=[requires_admin])
async def request_stats(request: Request) -> Response:
    job = await services.request_tenant_stats(current_user(request).tenant_id, actor=actor_of(request))
    if request.htmx:
        return render(request, "jobs/_job.html", job=job, stats=None, statuses=services.STATUS_WORDS)
    flash(request, "info", "Recomputing workspace stats; refresh in a moment.")
    return redirect("/admin")


@get("/admin/jobs", guards=[requires_admin])
async def jobs(request: Request, kind: inputs.QueryLine(32) = "", status: inputs.QueryLine(16) = "",
               page: inputs.Int4Query(ge=1, le=10_000) = 1) -> Response:
    try:
        filters = services.JobFilter.parse(kind, status)
    except InvalidInput as exc:
        # A filter value that is not in the lists (a typed or stale URL): said in the filter form, not on an
        # error page, with the filters reset so the next click works.
        return _jobs_page(request, services.JobFilter(), None, error=exc.message, status_code=exc.status_code)
    result = await services.list_jobs(current_user(request).tenant_id, filters, page=page)
    return _jobs_page(request, filters, result)


def _jobs_page(request: Request, filters: services.JobFilter, result: services.JobsPage | None, *,
               error: str | None = None, status_code: int = 200) -> Response:
    return render(request, "jobs/list.html", partial="jobs/_list.html", filters=filters, result=result,
                  error=error, status_code=status_code, kinds=services.KIND_WORDS, statuses=services.STATUS_WORDS,
                  nav="jobs")


@get("/admin/jobs/{job_id:uuid}", guards=[requires_admin])
async def job_status(request: Request, job_id: uuid.UUID) -> Response:
    tenant_id = current_user(request).tenant_id
    job = await services.get_job(tenant_id, job_id)
    stats = await services.latest_tenant_stats(tenant_id) if job["status"] == "SUCCEEDED" else None
    return render(request, "jobs/job.html", partial="jobs/_job.html", job=job, stats=stats,
                  kinds=services.KIND_WORDS, statuses=services.STATUS_WORDS, nav="jobs")


ROUTES = [dashboard, request_stats, jobs, job_status]
