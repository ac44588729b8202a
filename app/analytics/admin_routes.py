"""The admins' analytics pages: the course dashboard (figures, charts, signals), every signal of the workspace,
and the thresholds the signals apply. Read-only except a signal's status, the thresholds and "run it now"."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter

from app.analytics import charts, services
from app.analytics.routes import From, To
from app.analytics.tables import SignalStatus, SignalType
from app.errors import InvalidInput
from app.queue import enqueue
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_admin
from app.web.templating import flash, redirect, render
from tasks.analytics import analytics_nightly

ADMIN = {"guards": [requires_admin]}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)

SIGNAL_WORDS = {SignalType.HIGH_DROP_OFF: "High drop-off", SignalType.LOW_QUIZ_PASS_RATE: "Low quiz pass rate",
                SignalType.HIGH_REFUND_RATE: "High refund rate", SignalType.LOW_ENGAGEMENT: "Low engagement"}
STATUS_WORDS = {SignalStatus.OPEN: "Open", SignalStatus.ACKNOWLEDGED: "Acknowledged",
                SignalStatus.RESOLVED: "Resolved"}
THRESHOLD_LABELS = {"drop_off_rate": "Drop-off above", "quiz_pass_rate": "Quiz pass rate below",
                    "refund_rate": "Refund rate above", "engagement_rate": "Engagement below",
                    "min_learners": "Minimum learners", "min_attempts": "Minimum quiz attempts",
                    "min_purchases": "Minimum purchases", "window_days": "Window (days)"}
WORDS = {"signal_words": SIGNAL_WORDS, "status_words": STATUS_WORDS, "nav": "analytics"}


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


def _uuid_or_none(raw: str, what: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        raise InvalidInput(f"{what} is not a course of this workspace (expected its id).") from None


def _back(target: str) -> str:
    # Only our own analytics pages: the field comes from a form and must not make this an open redirect.
    return target if target.startswith("/admin/analytics") and "//" not in target and "\\" not in target \
        else "/admin/analytics/signals"


@get("/admin/analytics", **ADMIN)
async def dashboard(request: Request, course: inputs.QueryLine(64) = "", days: inputs.QueryLine(8) = "",
                    start: From = "", end: To = "") -> Response:
    """Figures of one published course over a range: cards, drop-off, funnels, quizzes, time, signals."""
    try:
        window, picked = services.dashboard_range(days, inputs.parse_date(start, "The from date"),
                                                  inputs.parse_date(end, "The to date"))
        view = await services.dashboard(_tenant(request), _uuid_or_none(course, "The course"), window)
    except InvalidInput as exc:
        courses = await services.published_courses(_tenant(request))
        return render(request, "analytics/dashboard.html", status_code=400, error=exc.message, courses=courses,
                      report=None, picked=None, start=start, end=end, **WORDS)
    extra = _dashboard_charts(view) if view["report"] else {}
    return render(request, "analytics/dashboard.html", **view, **extra, window=window, picked=picked,
                  start=start, end=end, error=None, **WORDS)


def _dashboard_charts(view: dict[str, Any]) -> dict[str, Any]:
    lessons, limits = view["report"]["lessons"], view["thresholds"]
    view_funnel, purchase_funnel = charts.funnel_charts(view["funnel"])
    return {"drop_off_svg": charts.drop_off_chart(lessons, limits.drop_off_rate),
            "pass_rate_svg": charts.pass_rate_chart(lessons, limits.quiz_pass_rate),
            "view_funnel_svg": view_funnel, "purchase_funnel_svg": purchase_funnel}


class RunForm(msgspec.Struct):
    course: inputs.Line(64) = ""


@post("/admin/analytics/run", **ADMIN)
async def run_now(request: Request, data: Annotated[RunForm, Form]) -> Response:
    """Queue the nightly run now (at most one waiting: the job key keeps a second click a no-op)."""
    course = _uuid_or_none(data.course, "The course")  # a bad form queues nothing
    queued = await enqueue(analytics_nightly, key="analytics-nightly")
    flash(request, "success" if queued else "info",
          "Analytics run queued" if queued else "An analytics run is already queued; figures follow when it ends.")
    return redirect(f"/admin/analytics?course={course}" if course else "/admin/analytics")


TypeQuery = Annotated[str, Parameter(query="type", max_length=32, pattern=inputs.SINGLE_LINE,
                                     description="signal type, e.g. high_drop_off")]


@get("/admin/analytics/signals", **ADMIN)
async def signals_page(request: Request, course: inputs.QueryLine(64) = "", status: inputs.QueryLine(16) = "",
                       signal_type: TypeQuery = "", start: From = "", end: To = "") -> Response:
    """Every signal of the workspace, newest first, filtered by course, status, type and the days they were
    raised for (from and to, each optional)."""
    tenant = _tenant(request)
    if status not in ("", *STATUS_WORDS) or signal_type not in ("", *SIGNAL_WORDS):
        raise InvalidInput("Filter by one of the statuses and types offered.")
    window = services.signals_range(inputs.parse_date(start, "The from date"), inputs.parse_date(end, "The to date"))
    courses = await services.published_courses(tenant)
    rows = await services.list_signals(tenant, course_id=_uuid_or_none(course, "The course"), status=status or None,
                                       signal_type=signal_type or None, window=window, limit=200)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(request, "analytics/signals.html", signals=rows, courses=courses, titles=_titles(courses),
                  course=course, status=status, signal_type=signal_type, window=window, start=start, end=end,
                  next=here, **WORDS)


def _titles(courses: list[dict[str, Any]]) -> dict[uuid.UUID, str]:
    return {c["syllabus_id"]: c["title"] for c in courses}


class StatusForm(msgspec.Struct):
    status: inputs.Line(16) = ""
    next: inputs.Line(400) = ""


@post("/admin/analytics/signals/{signal_id:uuid}/status", **ADMIN)
async def signal_status(request: Request, signal_id: uuid.UUID, data: Annotated[StatusForm, Form]) -> Response:
    """Acknowledge, resolve or reopen a signal (audited by the service); htmx gets the row back."""
    tenant = _tenant(request)
    signal = await services.set_signal_status(tenant, signal_id, data.status, actor=actor_of(request))
    words = f"Signal marked {STATUS_WORDS[SignalStatus(signal['status'])].lower()}."
    if request.htmx:
        courses = await services.published_courses(tenant)
        return render(request, "analytics/_signal.html", signal=signal, notice=words, next=data.next,
                      titles=_titles(courses) if data.next.startswith("/admin/analytics/signals") else None,
                      **WORDS)
    flash(request, "success", words)
    return redirect(_back(data.next))


@get("/admin/analytics/signals/{signal_id:uuid}/json", **ADMIN)
async def signal_evidence(request: Request, signal_id: uuid.UUID) -> dict[str, Any]:
    """The figures a signal saw and the thresholds it applied (the JSON viewer's download)."""
    return services.evidence_of(await services.get_signal(_tenant(request), signal_id))


class ThresholdsForm(msgspec.Struct):
    drop_off_rate: inputs.Line(32) = ""
    quiz_pass_rate: inputs.Line(32) = ""
    refund_rate: inputs.Line(32) = ""
    engagement_rate: inputs.Line(32) = ""
    min_learners: inputs.Line(32) = ""
    min_attempts: inputs.Line(32) = ""
    min_purchases: inputs.Line(32) = ""
    window_days: inputs.Line(32) = ""


def _as_typed(limits: services.Thresholds) -> dict[str, str]:
    """The stored thresholds as the form shows them: rates as percentages."""
    values = msgspec.structs.asdict(limits)
    return {name: f"{value * 100:g}" if name in services.RATE_FIELDS else str(value) for name, value in values.items()}


@get("/admin/analytics/settings", **ADMIN)
async def settings_page(request: Request) -> Response:
    typed = _as_typed(await services.thresholds(_tenant(request)))
    return render(request, "analytics/settings.html", typed=typed, labels=THRESHOLD_LABELS, error=None, field=None,
                  defaults=_as_typed(services.DEFAULTS), **WORDS)


@post("/admin/analytics/settings", **ADMIN)
async def save_settings(request: Request, data: Annotated[ThresholdsForm, Form]) -> Response:
    typed = msgspec.structs.asdict(data)
    try:
        limits = services.thresholds_from_form(typed, THRESHOLD_LABELS)
        await services.save_thresholds(_tenant(request), limits, actor=actor_of(request))
    except InvalidInput as exc:
        return render(request, "analytics/settings.html", status_code=400, typed=typed, labels=THRESHOLD_LABELS,
                      error=exc.message, field=getattr(exc, "field", None), defaults=_as_typed(services.DEFAULTS),
                      **WORDS)
    flash(request, "success", "Thresholds saved; the next run applies them.")
    return redirect("/admin/analytics/settings")


ROUTES = [dashboard, run_now, signals_page, signal_status, signal_evidence, settings_page, save_settings]
