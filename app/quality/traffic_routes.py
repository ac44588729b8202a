"""Admin pages of the traffic report (SPEC O2) and the AI spot-check log (O3). Forms post to their own URL
and redirect (PRG); a refused form comes back with each problem beside its field and the typed values kept."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.errors import DomainError
from app.quality import coverage, spot_checks, traffic
from app.quality.spot_checks import SpotCheckForm, SpotCheckInvalid
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_admin
from app.web.templating import flash, redirect, render

ADMIN = {"guards": [requires_admin]}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)
WORDS = {"nav": "quality", "gap_words": coverage.GAP_WORDS}
TRIGGER_WORDS = {"cron": "Scheduled", "admin": "Run now", "cli": "Command line"}


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


@get("/admin/quality/traffic", **ADMIN)
async def traffic_page(request: Request, days: inputs.QueryLine(8) = "", limit: inputs.QueryLine(8) = "") -> Response:
    """The busiest modules of the last N days beside their coverage, and the last stored runs."""
    tenant = _tenant(request)
    runs = await traffic.recent_reports(tenant)
    try:
        picked = traffic.parse_window(days, limit)
    except DomainError as exc:
        return render(request, "quality/traffic.html", status_code=exc.status_code, error=exc.message, report=None,
                      runs=runs, days=days, limit=limit, trigger_words=TRIGGER_WORDS, **WORDS)
    report = await traffic.traffic_report(tenant, days=picked[0], limit=picked[1])
    return render(request, "quality/traffic.html", error=None, report=report, runs=runs, days=str(picked[0]),
                  limit=str(picked[1]), trigger_words=TRIGGER_WORDS, **WORDS)


@post("/admin/quality/traffic/run", **ADMIN)
async def run_traffic_now(request: Request) -> Response:
    """Store a run now with the defaults (the cron's parameters), as the cron would."""
    row = await traffic.store_traffic_report(_tenant(request), trigger="admin")
    flash(request, "success", "Traffic report stored: it is the newest of the last runs below.")
    return redirect(f"/admin/quality/traffic/runs/{row['id']}")


@get("/admin/quality/traffic/runs/{report_id:uuid}", **ADMIN)
async def traffic_run(request: Request, report_id: uuid.UUID) -> Response:
    """One stored run, as the command line printed it."""
    row = await traffic.get_report(_tenant(request), report_id)
    return render(request, "quality/traffic_run.html", run=row, trigger_words=TRIGGER_WORDS, **WORDS)


# ---------------------------------------------------------------------------------------------
# The spot-check log


async def _log_page(request: Request, *, status_code: int = 200, typed: SpotCheckForm | None = None,
                    errors: dict[str, str] | None = None) -> Response:
    tenant = _tenant(request)
    return render(request, "quality/spot_checks.html", status_code=status_code,
                  checks=await spot_checks.list_spot_checks(tenant),
                  courses=await spot_checks.published_courses(tenant),
                  typed=typed or SpotCheckForm(checked_on=str(dt.datetime.now(dt.UTC).date())), errors=errors or {},
                  error=" ".join((errors or {}).values()) or None, limits=spot_checks.LIMITS, **WORDS)


@get("/admin/quality/spot-checks", **ADMIN)
async def spot_check_log(request: Request, course: inputs.QueryLine(64) = "", module: inputs.QueryLine(8) = "",
                         sessions: inputs.QueryLine(12) = "") -> Response:
    """The log, newest first, and the form to add one; ?course=&module=&sessions= prefill it (the traffic
    report's "Log a spot check" links)."""
    today = str(dt.datetime.now(dt.UTC).date())
    return await _log_page(request, typed=SpotCheckForm(checked_on=today, course_id=course, module_index=module,
                                                        traffic=sessions))


@post("/admin/quality/spot-checks", **ADMIN)
async def create_spot_check(request: Request, data: Annotated[SpotCheckForm, Form]) -> Response:
    try:
        await spot_checks.create_spot_check(_tenant(request), data, actor=actor_of(request))
    except SpotCheckInvalid as exc:
        return await _log_page(request, status_code=400, typed=data, errors=exc.errors)
    flash(request, "success", "Spot check logged.")
    return redirect("/admin/quality/spot-checks")


async def _edit_page(request: Request, row: dict[str, Any], typed: SpotCheckForm, *, status_code: int = 200,
                     errors: dict[str, str] | None = None) -> Response:
    return render(request, "quality/spot_check_edit.html", status_code=status_code, check=row, typed=typed,
                  errors=errors or {}, error=" ".join((errors or {}).values()) or None,
                  courses=await spot_checks.published_courses(_tenant(request)), limits=spot_checks.LIMITS, **WORDS)


@get("/admin/quality/spot-checks/{spot_check_id:uuid}/edit", **ADMIN)
async def edit_spot_check(request: Request, spot_check_id: uuid.UUID) -> Response:
    row = await spot_checks.get_spot_check(_tenant(request), spot_check_id)
    return await _edit_page(request, row, spot_checks.form_of(row))


@post("/admin/quality/spot-checks/{spot_check_id:uuid}", **ADMIN)
async def update_spot_check(request: Request, spot_check_id: uuid.UUID,
                            data: Annotated[SpotCheckForm, Form]) -> Response:
    tenant = _tenant(request)
    try:
        await spot_checks.update_spot_check(tenant, spot_check_id, data, actor=actor_of(request))
    except SpotCheckInvalid as exc:
        row = await spot_checks.get_spot_check(tenant, spot_check_id)
        return await _edit_page(request, row, data, status_code=400, errors=exc.errors)
    flash(request, "success", "Spot check saved.")
    return redirect("/admin/quality/spot-checks")


@get("/admin/quality/spot-checks/{spot_check_id:uuid}/delete", **ADMIN)
async def confirm_delete_spot_check(request: Request, spot_check_id: uuid.UUID) -> Response:
    """Deleting asks first: the log is the team's memory of what was checked."""
    row = await spot_checks.get_spot_check(_tenant(request), spot_check_id)
    return render(request, "quality/spot_check_delete.html", check=row, **WORDS)


@post("/admin/quality/spot-checks/{spot_check_id:uuid}/delete", **ADMIN)
async def delete_spot_check(request: Request, spot_check_id: uuid.UUID) -> Response:
    row = await spot_checks.delete_spot_check(_tenant(request), spot_check_id, actor=actor_of(request))
    flash(request, "success", f"Spot check of {row['checked_on']} deleted.")
    return redirect("/admin/quality/spot-checks")


@get("/admin/quality/spot-checks.md", media_type="text/markdown", **ADMIN)
async def spot_checks_markdown(request: Request) -> Response:
    name, text = await spot_checks.markdown_export(_tenant(request))
    return Response(text, media_type="text/markdown",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


ROUTES = [traffic_page, run_traffic_now, traffic_run, spot_check_log, create_spot_check, edit_spot_check,
          update_spot_check, confirm_delete_spot_check, delete_spot_check, spot_checks_markdown]
