"""The coverage audit (SPEC O1): what each module of a published course gives its learners, against the
seeds' baselines — a published lesson for every lesson of the outline, quiz questions at or above the
workspace's target, the module's project (its assessment) and at least one vetted external resource.

It reads the newest PUBLISHED version of each course (what learners get), the outline of that version's
syllabus (what should be there) and the live external resources (what the next version will carry). Read
only: nothing here writes content. The same figures serve the CLI, the admin page, the weekly cron, the
launch gate and the publish gate, so they can never disagree."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from app.authoring.schemas import Syllabus as SyllabusDoc
from app.authoring.tables import Syllabus
from app.publishing import services as publishing
from app.publishing.schemas import CoursePackage
from app.publishing.tables import CoursePackageRow, PackageStatus
from app.quality.tables import ExternalResource, QualityReport, QualitySettings, ReportKind

DEFAULT_QUESTIONS_TARGET = 20
GapKind = Literal["lesson", "practice", "assessment", "external"]
# The seeds' triage order: a module without its lesson helps nobody; practice next, then the assessment,
# then enrichment.
TRIAGE_ORDER: tuple[GapKind, ...] = ("lesson", "practice", "assessment", "external")
GAP_WORDS = {
    "lesson": "No published lesson",
    "practice": "Too few quiz questions",
    "assessment": "No module project",
    "external": "No external resource",
}


class ModuleCoverage(msgspec.Struct, frozen=True, kw_only=True):
    module_index: int
    title: str
    lessons_expected: int  # lessons in the outline
    lessons_published: int  # of those, in the published version
    questions: int  # quiz questions in the published version's quizzes of this module
    questions_target: int
    has_assessment: bool  # the module's project is published
    external_resources: int  # live vetted resources

    @property
    def has_lesson(self) -> bool:
        return self.lessons_expected > 0 and self.lessons_published == self.lessons_expected

    @property
    def has_practice(self) -> bool:
        return self.questions >= self.questions_target

    @property
    def has_external(self) -> bool:
        return self.external_resources > 0

    @property
    def gaps(self) -> list[GapKind]:
        flags = {"lesson": self.has_lesson, "practice": self.has_practice, "assessment": self.has_assessment,
                 "external": self.has_external}
        return [kind for kind in TRIAGE_ORDER if not flags[kind]]

    @property
    def fully_covered(self) -> bool:
        return not self.gaps

    def as_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self) | {
            "has_lesson": self.has_lesson, "has_practice": self.has_practice, "has_external": self.has_external,
            "fully_covered": self.fully_covered, "gaps": self.gaps}


class CourseCoverage(msgspec.Struct, frozen=True, kw_only=True):
    course_id: uuid.UUID
    syllabus_id: uuid.UUID
    title: str
    version: int
    modules: list[ModuleCoverage]

    @property
    def modules_total(self) -> int:
        return len(self.modules)

    @property
    def modules_covered(self) -> int:
        return sum(1 for m in self.modules if m.fully_covered)

    @property
    def percent(self) -> float:
        return round(100 * self.modules_covered / self.modules_total, 1) if self.modules else 0.0

    @property
    def lacks_assessment(self) -> bool:
        return any(not m.has_assessment for m in self.modules)

    def as_dict(self) -> dict[str, Any]:
        return {"course_id": str(self.course_id), "syllabus_id": str(self.syllabus_id), "title": self.title,
                "version": self.version, "modules_total": self.modules_total,
                "modules_covered": self.modules_covered, "percent": self.percent,
                "lacks_assessment": self.lacks_assessment, "modules": [m.as_dict() for m in self.modules]}


class Gap(msgspec.Struct, frozen=True, kw_only=True):
    kind: GapKind
    course_id: uuid.UUID
    syllabus_id: uuid.UUID
    course_title: str
    module_index: int
    module_title: str
    detail: str  # in words: "3 of 20 questions", "lesson 2 of 3 is not published"
    fix_url: str  # the page where a person fixes it

    @property
    def words(self) -> str:
        return GAP_WORDS[self.kind]


async def questions_target_of(tenant_id: uuid.UUID) -> int:
    row = await QualitySettings.select(QualitySettings.questions_per_module).where(
        QualitySettings.tenant_id == tenant_id).first()
    return row["questions_per_module"] if row else DEFAULT_QUESTIONS_TARGET


async def live_resource_counts(tenant_id: uuid.UUID, course_ids: Iterable[uuid.UUID]) -> dict[tuple[Any, int], int]:
    ids = list(course_ids)
    if not ids:
        return {}
    rows = await ExternalResource.raw(
        "SELECT course_id, module_index, count(*) AS n FROM external_resource WHERE tenant_id = {} "
        "AND removed_at IS NULL AND course_id = ANY({}::uuid[]) GROUP BY course_id, module_index",
        tenant_id, ids)
    return {(row["course_id"], row["module_index"]): row["n"] for row in rows}


def module_coverage(outline: SyllabusDoc, package: CoursePackage | None, target: int,
                    resources: dict[int, int]) -> list[ModuleCoverage]:
    """Pure: the outline's modules against a package (None: nothing published) and resource counts."""
    packaged = {m.index: m for m in package.modules} if package else {}
    result = []
    for module in outline.modules:
        published = packaged.get(module.index)
        present = {entry.lesson_index for entry in published.lessons} if published else set()
        result.append(ModuleCoverage(
            module_index=module.index, title=module.title, lessons_expected=len(module.lessons),
            lessons_published=sum(1 for lesson in module.lessons if lesson.index in present),
            questions=sum(len(entry.quiz.questions) for entry in published.lessons) if published else 0,
            questions_target=target, has_assessment=published is not None and published.project is not None,
            external_resources=resources.get(module.index, 0)))
    return result


async def course_coverage(tenant_id: uuid.UUID, *, questions_target: int | None = None) -> list[CourseCoverage]:
    """Per published course (its newest published version), per module of that version's outline."""
    target = questions_target if questions_target is not None else await questions_target_of(tenant_id)
    latest = await publishing.latest_packages(tenant_id, published_only=True)
    # A course whose syllabus was revised has a package series per syllabus: the newest published wins.
    newest: dict[Any, dict[str, Any]] = {}
    for row in latest:
        current = newest.get(row["course_id"])
        if current is None or row["published_at"] > current["published_at"]:
            newest[row["course_id"]] = row
    if not newest:
        return []
    outlines = {row["id"]: row["content"] for row in await Syllabus.select(Syllabus.id, Syllabus.content).where(
        Syllabus.id.is_in([row["syllabus_id"] for row in newest.values()]))}
    counts = await live_resource_counts(tenant_id, newest)
    courses = []
    for course_id, row in newest.items():
        outline = msgspec.json.decode(outlines[row["syllabus_id"]], type=SyllabusDoc)
        package = await publishing.document_of(row)
        resources = {module: n for (course, module), n in counts.items() if course == course_id}
        courses.append(CourseCoverage(course_id=course_id, syllabus_id=row["syllabus_id"], title=row["title"],
                                      version=row["version"],
                                      modules=module_coverage(outline, package, target, resources)))
    return sorted(courses, key=lambda c: (c.title.lower(), str(c.course_id)))


def fix_url(kind: GapKind, course: CourseCoverage, module: int) -> str:
    review = f"/admin/review?syllabus={course.syllabus_id}&module={module}&status=ALL"
    return {
        "lesson": review + "&kind=LESSON",
        "practice": review + "&kind=QUIZ",
        "assessment": review + "&kind=PROJECT",
        "external": f"/admin/quality/courses/{course.course_id}/resources#module-{module}",
    }[kind]


def _detail(kind: GapKind, module: ModuleCoverage) -> str:
    if kind == "lesson":
        return f"{module.lessons_published} of {module.lessons_expected} lessons published"
    if kind == "practice":
        return f"{module.questions} of {module.questions_target} questions"
    if kind == "assessment":
        return "the module's project is not published"
    return "no vetted link yet"


def gaps(courses: list[CourseCoverage], *, limit: int | None = None) -> list[Gap]:
    """Every missing baseline, in the seeds' triage order (lesson > practice > assessment > external), then
    by course and module."""
    found = [Gap(kind=kind, course_id=course.course_id, syllabus_id=course.syllabus_id, course_title=course.title,
                 module_index=module.module_index, module_title=module.title, detail=_detail(kind, module),
                 fix_url=fix_url(kind, course, module.module_index))
             for course in courses for module in course.modules for kind in module.gaps]
    found.sort(key=lambda g: (TRIAGE_ORDER.index(g.kind), g.course_title.lower(), str(g.course_id),
                              g.module_index))
    return found[:limit] if limit is not None else found


class CompletenessRow(msgspec.Struct, frozen=True, kw_only=True):
    course_id: uuid.UUID
    title: str
    version: int
    modules: int
    missing_lessons: int  # lessons of the outline not published
    missing_projects: int
    short_on_practice: int  # modules below the question target
    without_external: int
    fully_covered: int


def completeness(courses: list[CourseCoverage]) -> list[CompletenessRow]:
    """Per course: how many of each baseline are missing (the seeds' "missing lessons/assets/assessments")."""
    return [CompletenessRow(
        course_id=c.course_id, title=c.title, version=c.version, modules=c.modules_total,
        missing_lessons=sum(m.lessons_expected - m.lessons_published for m in c.modules),
        missing_projects=sum(1 for m in c.modules if not m.has_assessment),
        short_on_practice=sum(1 for m in c.modules if not m.has_practice),
        without_external=sum(1 for m in c.modules if not m.has_external),
        fully_covered=c.modules_covered) for c in courses]


PRACTICE_BANDS = ((0, 0, "none"), (1, 9, "1–9"), (10, 19, "10–19"), (20, 39, "20–39"), (40, None, "40 or more"))


class PracticeBand(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    modules: int


class PracticeDistribution(msgspec.Struct, frozen=True, kw_only=True):
    target: int
    bands: list[PracticeBand]  # modules by their number of quiz questions
    below_target: int
    modules: int
    median: float | None


def practice_distribution(courses: list[CourseCoverage]) -> PracticeDistribution:
    counts = sorted(m.questions for c in courses for m in c.modules)
    target = courses[0].modules[0].questions_target if courses and courses[0].modules else DEFAULT_QUESTIONS_TARGET
    bands = [PracticeBand(label=label, modules=sum(1 for n in counts if n >= low and (high is None or n <= high)))
             for low, high, label in PRACTICE_BANDS]
    median = None
    if counts:
        mid = len(counts) // 2
        median = float(counts[mid]) if len(counts) % 2 else (counts[mid - 1] + counts[mid]) / 2
    return PracticeDistribution(target=target, bands=bands, below_target=sum(1 for n in counts if n < target),
                                modules=len(counts), median=median)


def module_flags(courses: list[CourseCoverage]) -> dict[tuple[uuid.UUID, int], ModuleCoverage]:
    """(course_id, module_index) -> its coverage: for reports that put the flags beside other figures."""
    return {(c.course_id, m.module_index): m for c in courses for m in c.modules}


async def published_course_ids(tenant_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await CoursePackageRow.select(CoursePackageRow.course_id).where(
        (CoursePackageRow.tenant_id == tenant_id) & (CoursePackageRow.status == PackageStatus.PUBLISHED.value)
    ).distinct()
    return [row["course_id"] for row in rows]


# ---------------------------------------------------------------------------------------------
# The reports as text (the CLI prints them, a stored report keeps them) and stored runs


def _flag(ok: bool) -> str:
    return "yes" if ok else "NO"


def rollup_text(courses: list[CourseCoverage]) -> str:
    if not courses:
        return "No published course.\n"
    lines = []
    for c in courses:
        lines.append(f"{c.title} (version {c.version}): {c.modules_covered} of {c.modules_total} modules fully "
                     f"covered ({c.percent:g}%)")
        for m in c.modules:
            lines.append(f"  {m.module_index:>2}. {m.title[:48]:<48} lesson {_flag(m.has_lesson):<3} "
                         f"questions {m.questions:>3}/{m.questions_target:<3} project {_flag(m.has_assessment):<3} "
                         f"external {m.external_resources}")
    total = sum(c.modules_total for c in courses)
    covered = sum(c.modules_covered for c in courses)
    lines.append(f"All published courses: {covered} of {total} modules fully covered "
                 f"({round(100 * covered / total, 1) if total else 0:g}%)")
    return "\n".join(lines) + "\n"


def gaps_text(found: list[Gap]) -> str:
    if not found:
        return "No gaps: every module of every published course meets the baselines.\n"
    lines = [f"{len(found)} gap(s), in triage order (lesson > practice > assessment > external):"]
    for n, g in enumerate(found, 1):
        lines.append(f"{n:>3}. {g.words}: {g.course_title}, module {g.module_index} ({g.module_title}) — {g.detail}"
                     f"  -> {g.fix_url}")
    return "\n".join(lines) + "\n"


def completeness_text(rows: list[CompletenessRow]) -> str:
    if not rows:
        return "No published course.\n"
    lines = ["Course (version): modules, fully covered, missing lessons, missing projects, short on practice, "
             "without external"]
    for r in rows:
        lines.append(f"{r.title} (v{r.version}): {r.modules} modules, {r.fully_covered} fully covered, "
                     f"{r.missing_lessons} missing lesson(s), {r.missing_projects} missing project(s), "
                     f"{r.short_on_practice} short on practice, {r.without_external} without external")
    return "\n".join(lines) + "\n"


def practice_text(dist: PracticeDistribution) -> str:
    lines = [f"Quiz questions per module (target {dist.target}): {dist.modules} module(s), "
             f"{dist.below_target} below target, median {dist.median if dist.median is not None else '-'}"]
    for band in dist.bands:
        lines.append(f"  {band.label:>10}: {band.modules:>4} {'#' * min(band.modules, 60)}")
    return "\n".join(lines) + "\n"


REPORTS = ("coverage-rollup", "coverage-gaps", "completeness", "practice")


def report_text(name: str, courses: list[CourseCoverage], *, limit: int | None = None) -> str:
    if name == "coverage-rollup":
        return rollup_text(courses[:limit] if limit else courses)
    if name == "coverage-gaps":
        return gaps_text(gaps(courses, limit=limit))
    if name == "completeness":
        return completeness_text(completeness(courses)[:limit] if limit else completeness(courses))
    return practice_text(practice_distribution(courses))


def figures(courses: list[CourseCoverage], target: int) -> dict[str, Any]:
    """What a stored report keeps (and the trend on the page reads)."""
    total = sum(c.modules_total for c in courses)
    covered = sum(c.modules_covered for c in courses)
    found = gaps(courses)
    return {
        "questions_target": target, "courses": len(courses), "modules_total": total, "modules_covered": covered,
        "percent": round(100 * covered / total, 1) if total else 0.0,
        "gaps": {kind: sum(1 for g in found if g.kind == kind) for kind in TRIAGE_ORDER},
        "per_course": [c.as_dict() for c in courses],
    }


async def store_coverage_report(tenant_id: uuid.UUID, *, trigger: str) -> dict[str, Any]:
    """One insert-only quality_report row of kind COVERAGE: the figures and the four reports as text."""
    target = await questions_target_of(tenant_id)
    courses = await course_coverage(tenant_id, questions_target=target)
    text = "".join(f"== {name} ==\n{report_text(name, courses)}\n" for name in REPORTS)
    stored = figures(courses, target)
    row = (await QualityReport.insert(QualityReport(
        tenant_id=tenant_id, kind=ReportKind.COVERAGE.value, parameters={"questions_target": target},
        figures=stored, text=text, trigger=trigger,
    )).returning(QualityReport.id, QualityReport.generated_at, QualityReport.trigger))[0]
    return row | {"figures": stored}


async def stored_reports(tenant_id: uuid.UUID, *, limit: int = 12) -> list[dict[str, Any]]:
    """The newest stored COVERAGE runs, newest first, with their figures decoded."""
    rows = await QualityReport.select(
        QualityReport.id, QualityReport.generated_at, QualityReport.figures, QualityReport.trigger,
    ).where((QualityReport.tenant_id == tenant_id) & (QualityReport.kind == ReportKind.COVERAGE.value)).order_by(
        QualityReport.generated_at, ascending=False).limit(limit)
    for row in rows:
        if isinstance(row["figures"], str):
            row["figures"] = msgspec.json.decode(row["figures"])
    return rows
