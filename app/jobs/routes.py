"""Admin dashboard: workspace stats recomputed by a background job, with a polling progress partial."""

from __future__ import annotations

import uuid

from litestar import Request, Response, get, post

from app.jobs import services
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
        return render(request, "jobs/_job.html", job=job, stats=None)
    flash(request, "info", "Recomputing workspace stats; refresh in a moment.")
    return redirect("/admin")


@get("/admin/jobs/{job_id:uuid}", guards=[requires_admin])
async def job_status(request: Request, job_id: uuid.UUID) -> Response:
    tenant_id = current_user(request).tenant_id
    job = await services.get_job(tenant_id, job_id)
    stats = await services.latest_tenant_stats(tenant_id) if job["status"] == "SUCCEEDED" else None
    return render(request, "jobs/job.html", partial="jobs/_job.html", job=job, stats=stats, nav="dashboard")


ROUTES = [dashboard, request_stats, job_status]
