"""The traffic report (SPEC O2): the courses and modules learners spent the most sessions in over the last N
days, with the coverage flags beside them, ordered so the fix that helps the most learners comes first.

A session is a learner-day: one learner active in a module (or course) on one UTC day, however many lessons
they read. Activity is what the server recorded (lesson completions, quiz attempts) plus the player's
analytics events (a lesson read but not finished counts too); events name a lesson by its position in the
course, which each package version maps to a module.

AI usage per module is unavailable: Coursewright has no learner-facing AI, and the model calls it makes
(authoring and regeneration) are recorded per generation run, not per module a learner uses. The report says
so instead of inventing a figure.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from app.accounts.tables import Tenant
from app.authoring.tables import Course
from app.errors import InvalidInput, NotFound
from app.publishing.services import document_of
from app.publishing.tables import CoursePackageRow
from app.quality import coverage
from app.quality.tables import QualityReport, ReportKind

DEFAULT_DAYS = 30
DEFAULT_LIMIT = 20
MAX_DAYS = 365
MAX_LIMIT = 100
AI_USAGE_NOTE = ("AI usage per module: unavailable. Learners meet no AI in Coursewright; the model calls "
                 "(authoring, regeneration) are recorded per generation run, not per module.")


class CoverageFlags(msgspec.Struct, frozen=True, kw_only=True):
    has_lesson: bool
    questions: int
    questions_target: int
    has_assessment: bool
    has_external: bool
    fully_covered: bool


class TrafficModule(msgspec.Struct, frozen=True, kw_only=True):
    course_id: uuid.UUID
    course_title: str
    module_index: int
    module_title: str
    sessions: int  # distinct learner-days
    learners: int
    ai_calls: int | None  # None: unavailable (see AI_USAGE_NOTE)
    coverage: CoverageFlags | None  # None: the course has no published version to audit
    gaps: list[str]  # coverage.GAP_WORDS keys, in triage order (lesson > practice > assessment > external)
    fix_urls: dict[str, str]  # per gap, the page that fixes it
    priority: int  # sessions × gaps: learner-days that met a gap


class TrafficCourse(msgspec.Struct, frozen=True, kw_only=True):
    course_id: uuid.UUID
    title: str
    sessions: int
    learners: int
    modules_with_gaps: int


class TrafficReport(msgspec.Struct, frozen=True, kw_only=True):
    days: int
    limit: int
    start: dt.date  # first day counted (UTC)
    end: dt.date  # last day counted (today, UTC)
    courses: list[TrafficCourse]
    modules: list[TrafficModule]
    ai_usage: str = AI_USAGE_NOTE


def check_window(days: int, limit: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"Days must be a whole number from 1 to {MAX_DAYS}.")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"Limit must be a whole number from 1 to {MAX_LIMIT}.")


def parse_window(days: str, limit: str) -> tuple[int, int]:
    """The page's query values (empty: the defaults) as numbers, or InvalidInput in words."""
    try:
        values = (int(days) if days.strip() else DEFAULT_DAYS, int(limit) if limit.strip() else DEFAULT_LIMIT)
    except ValueError:
        raise InvalidInput("Days and limit must be whole numbers.") from None
    check_window(*values)
    return values


# One row per (course, module) and per course (module_index NULL, from GROUPING SETS). A learner-day counts
# once however many sources saw it (UNION removes duplicates before counting).
ACTIVITY_SQL = """
WITH activity AS (
    SELECT e.user_id, s.course_id, lp.module_index, (lp.completed_at AT TIME ZONE 'UTC')::date AS day
    FROM lesson_progress lp JOIN enrollment e ON e.id = lp.enrollment_id JOIN syllabus s ON s.id = e.syllabus_id
    WHERE lp.tenant_id = {} AND lp.completed_at >= {} AND lp.completed_at < {}
    UNION
    SELECT e.user_id, s.course_id, qa.module_index, (qa.created_at AT TIME ZONE 'UTC')::date
    FROM quiz_attempt qa JOIN enrollment e ON e.id = qa.enrollment_id JOIN syllabus s ON s.id = e.syllabus_id
    WHERE qa.tenant_id = {} AND qa.created_at >= {} AND qa.created_at < {}
    UNION
    SELECT ev.user_id, s.course_id, map.module_index, (ev.created_at AT TIME ZONE 'UTC')::date
    FROM analytics_event ev JOIN syllabus s ON s.id = ev.course_id
    LEFT JOIN unnest({}::uuid[], {}::int[], {}::int[], {}::int[]) AS map (syllabus_id, version, lesson_index,
                                                                          module_index)
           ON map.syllabus_id = ev.course_id AND map.version = ev.package_version
          AND map.lesson_index = ev.lesson_index
    WHERE ev.tenant_id = {} AND ev.created_at >= {} AND ev.created_at < {} AND ev.user_id IS NOT NULL
)
SELECT a.course_id, a.module_index, count(DISTINCT (a.user_id, a.day)) AS sessions,
       count(DISTINCT a.user_id) AS learners, GROUPING(a.module_index) = 1 AS whole_course
FROM activity a JOIN course c ON c.id = a.course_id AND c.tenant_id = {}
GROUP BY GROUPING SETS ((a.course_id, a.module_index), (a.course_id))
"""


async def traffic_report(tenant_id: uuid.UUID, *, days: int = DEFAULT_DAYS, limit: int = DEFAULT_LIMIT,
                         today: dt.date | None = None) -> TrafficReport:
    check_window(days, limit)
    end = today or dt.datetime.now(dt.UTC).date()
    start = end - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(start, dt.time(), dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    packages = await _published_packages(tenant_id)
    lesson_map = await _lesson_map(packages)
    rows = await QualityReport.raw(ACTIVITY_SQL, tenant_id, since, until, tenant_id, since, until, *lesson_map,
                                   tenant_id, since, until, tenant_id)
    titles = await _titles(tenant_id, {row["course_id"] for row in rows}, packages)
    flags = await _coverage(tenant_id)
    modules = [_module(row, titles, flags) for row in rows
               if not row["whole_course"] and row["module_index"] is not None]
    # The busiest modules make the report; among them, the most learner-days that met a gap come first.
    busiest = sorted(modules, key=lambda m: (-m.sessions, m.course_title.lower(), m.module_index))[:limit]
    ordered = sorted(busiest, key=lambda m: (-m.priority, -m.sessions, m.course_title.lower(), m.module_index))
    with_gaps: dict[uuid.UUID, int] = {}
    for module in modules:
        with_gaps[module.course_id] = with_gaps.get(module.course_id, 0) + bool(module.gaps)
    courses = [TrafficCourse(course_id=row["course_id"], title=titles[row["course_id"]]["title"],
                             sessions=row["sessions"], learners=row["learners"],
                             modules_with_gaps=with_gaps.get(row["course_id"], 0))
               for row in rows if row["whole_course"]]
    courses.sort(key=lambda c: (-c.sessions, c.title.lower(), str(c.course_id)))
    return TrafficReport(days=days, limit=limit, start=start, end=end, courses=courses[:limit], modules=ordered)


async def _published_packages(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    return await CoursePackageRow.select(
        CoursePackageRow.id, CoursePackageRow.course_id, CoursePackageRow.syllabus_id, CoursePackageRow.version,
        CoursePackageRow.status, CoursePackageRow.content_hash,
    ).where(CoursePackageRow.tenant_id == tenant_id).order_by(CoursePackageRow.version)


async def _lesson_map(packages: list[dict[str, Any]]) -> tuple[list, list, list, list]:
    """(syllabus, version, lesson position in the course) -> module, for every version events may name."""
    columns: tuple[list, list, list, list] = ([], [], [], [])
    for row in packages:
        for lesson in (await document_of(row)).lessons:
            for column, value in zip(columns, (row["syllabus_id"], row["version"], lesson.index,
                                               lesson.module_index), strict=True):
                column.append(value)
    return columns


async def _titles(tenant_id: uuid.UUID, course_ids: set[uuid.UUID],
                  packages: list[dict[str, Any]]) -> dict[uuid.UUID, dict[str, Any]]:
    """Each course's title and its module titles, from its newest published version (else its brief's title)."""
    if not course_ids:
        return {}
    courses = await Course.select(Course.id, Course.title).where(
        (Course.tenant_id == tenant_id) & Course.id.is_in(list(course_ids)))
    titles = {c["id"]: {"title": c["title"], "modules": {}} for c in courses}
    for row in packages:  # ascending versions: the newest published one wins
        if row["course_id"] in titles and row["status"] == "PUBLISHED":
            document = await document_of(row)
            titles[row["course_id"]] = {"title": document.course.title,
                                        "modules": {m.index: m.title for m in document.modules}}
    return titles


async def _coverage(tenant_id: uuid.UUID) -> dict[tuple[uuid.UUID, int], tuple[CoverageFlags, dict[str, str]]]:
    flags = {}
    for course in await coverage.course_coverage(tenant_id):
        for module in course.modules:
            flags[(course.course_id, module.module_index)] = (CoverageFlags(
                has_lesson=module.has_lesson, questions=module.questions, questions_target=module.questions_target,
                has_assessment=module.has_assessment, has_external=module.has_external,
                fully_covered=module.fully_covered), {gap: coverage.fix_url(gap, course, module.module_index)
                                                      for gap in module.gaps})
    return flags


def _module(row: dict[str, Any], titles: dict[uuid.UUID, dict[str, Any]],
            flags: dict[tuple[uuid.UUID, int], tuple[CoverageFlags, dict[str, str]]]) -> TrafficModule:
    course = titles[row["course_id"]]
    found, fixes = flags.get((row["course_id"], row["module_index"]), (None, {}))
    return TrafficModule(
        course_id=row["course_id"], course_title=course["title"], module_index=row["module_index"],
        module_title=course["modules"].get(row["module_index"], f"Module {row['module_index']}"),
        sessions=row["sessions"], learners=row["learners"], ai_calls=None, coverage=found, gaps=list(fixes),
        fix_urls=fixes, priority=row["sessions"] * len(fixes))


# ---------------------------------------------------------------------------------------------
# Text, storage


def _flag(value: bool) -> str:
    return "yes" if value else "NO"


def render_text(report: TrafficReport, workspace: str) -> str:
    lines = [f"Traffic report: {workspace}", f"Learner sessions (learner-days) from {report.start} to {report.end} "
             f"({report.days} days), top {report.limit}", AI_USAGE_NOTE, "", "Courses"]
    lines += [f"  {c.sessions:>6} sessions  {c.learners:>5} learners  {c.modules_with_gaps} module(s) with gaps  "
              f"{c.title}" for c in report.courses] or ["  No learner activity in this window."]
    lines += ["", "Modules, where a fix helps most learners first (sessions x gaps)",
              f"  {'priority':>8} {'sessions':>8} {'learners':>8}  lesson questions project external  module"]
    for m in report.modules:
        c = m.coverage
        flags = (f"{_flag(c.has_lesson):<6} {c.questions:>4}/{c.questions_target:<4} {_flag(c.has_assessment):<7} "
                 f"{_flag(c.has_external):<8}" if c else f"{'not published: no coverage':<37}")
        lines.append(f"  {m.priority:>8} {m.sessions:>8} {m.learners:>8}  {flags} {m.course_title} / "
                     f"{m.module_index}. {m.module_title}")
    if not report.modules:
        lines.append("  No learner activity in this window.")
    return "\n".join(lines) + "\n"


async def store_traffic_report(tenant_id: uuid.UUID, *, days: int = DEFAULT_DAYS, limit: int = DEFAULT_LIMIT,
                               trigger: str = "cron") -> dict[str, Any]:
    """Compute the report and keep it (insert-only), so the page shows the last runs."""
    report = await traffic_report(tenant_id, days=days, limit=limit)
    tenant = await Tenant.select(Tenant.name).where(Tenant.id == tenant_id).first()
    row = {"id": uuid.uuid4(), "tenant_id": tenant_id, "kind": ReportKind.TRAFFIC.value, "trigger": trigger,
           "parameters": {"days": days, "limit": limit}, "figures": msgspec.to_builtins(report),
           "text": render_text(report, tenant["name"] if tenant else str(tenant_id))}
    await QualityReport.raw(
        "INSERT INTO quality_report (id, tenant_id, kind, generated_at, parameters, figures, text, trigger) "
        "VALUES ({}, {}, {}, now(), {}::jsonb, {}::jsonb, {}, {})", row["id"], tenant_id, row["kind"],
        msgspec.json.encode(row["parameters"]).decode(), msgspec.json.encode(row["figures"]).decode(),
        row["text"], trigger)
    return row


async def store_for_every_workspace(*, days: int = DEFAULT_DAYS, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    tenants = await Tenant.select(Tenant.id)
    for tenant in tenants:
        await store_traffic_report(tenant["id"], days=days, limit=limit, trigger="cron")
    return {"reports": len(tenants), "days": days, "limit": limit}


async def recent_reports(tenant_id: uuid.UUID, count: int = 5) -> list[dict[str, Any]]:
    return await QualityReport.select(
        QualityReport.id, QualityReport.generated_at, QualityReport.parameters, QualityReport.trigger,
        QualityReport.figures,
    ).where((QualityReport.tenant_id == tenant_id) & (QualityReport.kind == ReportKind.TRAFFIC.value)).order_by(
        QualityReport.generated_at, ascending=False).limit(count).output(load_json=True)


async def get_report(tenant_id: uuid.UUID, report_id: uuid.UUID) -> dict[str, Any]:
    row = await QualityReport.select().where(
        (QualityReport.id == report_id) & (QualityReport.tenant_id == tenant_id)
        & (QualityReport.kind == ReportKind.TRAFFIC.value)).first().output(load_json=True)
    if row is None:
        raise NotFound("No such traffic report.")
    return row


async def text_for_workspaces(slug: str | None, *, days: int, limit: int, store: bool = False) -> str:
    """The CLI's report: one section per workspace (or the one named), stored too with store=True."""
    query = Tenant.select(Tenant.id, Tenant.name, Tenant.slug).order_by(Tenant.slug)
    tenants = await (query.where(Tenant.slug == slug.lower()) if slug else query)
    if slug and not tenants:
        raise NotFound(f"No workspace has the slug {slug!r}.")
    sections = []
    for tenant in tenants:
        if store:
            sections.append((await store_traffic_report(tenant["id"], days=days, limit=limit, trigger="cli"))["text"])
        else:
            report = await traffic_report(tenant["id"], days=days, limit=limit)
            sections.append(render_text(report, tenant["name"]))
    return "\n".join(sections) if sections else "No workspace yet.\n"


def dated_path(out: str, today: dt.date | None = None) -> str:
    """--out: a directory (existing, or written with a trailing slash) gets traffic-YYYYMMDD.txt inside it."""
    from pathlib import Path

    path = Path(out)
    if out.endswith(("/", "\\")) or path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        return str(path / f"traffic-{(today or dt.datetime.now(dt.UTC).date()):%Y%m%d}.txt")
    return str(path)
