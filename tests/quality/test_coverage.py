"""The coverage audit (issue 14 item 2, SPEC O1): per published course and module, a published lesson for every
lesson of the outline, quiz questions at or above the workspace's target, the module's project and a vetted
external resource; gaps in triage order with a link to the place that fixes each; the CLI reports, the admin
page with its stored runs and settings, and the weekly cron."""

import datetime as dt
import hashlib
import re

import msgspec

from app.audit.tables import AuditLog
from app.publishing.schemas import CoursePackage
from app.publishing.tables import CoursePackageRow
from app.quality import coverage
from app.quality.tables import QualityReport, QualitySettings
from tests.conftest import run_cli
from tests.publishing.helpers import published_course

THREE_MODULES = {"time_budget_hours": "6"}  # 12 lessons: 3 modules of 4, 5 questions a quiz -> 20 a module
LINK = {"title": "A vetted reference", "url": "https://docs.example.org/guide", "kind": "DOCUMENTATION"}


async def add_resource(client, course_id, module: int) -> None:
    response = await client.post(f"/admin/quality/courses/{course_id}/modules/{module}/resources", LINK)
    assert response.status_code == 303, response.text[:300]


async def publish_thinner_version(syllabus: dict, package_row: dict, *, drop_question_in_module: int | None = None,
                                  drop_module: int | None = None) -> dict:
    """Version 2 as a package from before the builder insisted on every slot would look: a module left out
    (no lessons, no project) and a quiz one question short. Inserted through the real table and its
    triggers; the builder itself can no longer make such a version."""
    document = msgspec.json.decode(package_row["document"], type=CoursePackage)
    modules = []
    for module in document.modules:
        if module.index == drop_module:
            continue
        if module.index == drop_question_in_module:
            first = module.lessons[0]
            quiz = msgspec.structs.replace(first.quiz, questions=first.quiz.questions[1:])
            module = msgspec.structs.replace(module, lessons=[msgspec.structs.replace(first, quiz=quiz),
                                                              *module.lessons[1:]])
        modules.append(module)
    thinner = msgspec.structs.replace(document, modules=modules)
    raw = msgspec.json.encode(thinner)
    return (await CoursePackageRow.insert(CoursePackageRow(
        tenant_id=package_row["tenant_id"], course_id=syllabus["course_id"], syllabus_id=syllabus["id"], version=2,
        title=package_row["title"], document=raw.decode(), content_hash=hashlib.sha256(raw).hexdigest(),
        size_bytes=len(raw), lesson_count=len(thinner.lessons), published_by=package_row["published_by"],
    )).returning(*CoursePackageRow.all_columns()))[0]


async def course_with_one_gap_of_each_kind(client, personas) -> tuple[dict, dict]:
    """Module 1: a question short (practice); module 2: no external resource; module 3: not in the published
    version (lesson, practice, assessment), but with a resource."""
    await client.login(personas.admin.email)
    syllabus, v1 = await published_course(client, **THREE_MODULES)
    await add_resource(client, syllabus["course_id"], 1)
    await add_resource(client, syllabus["course_id"], 3)
    await publish_thinner_version(syllabus, v1, drop_question_in_module=1, drop_module=3)
    return syllabus, v1


async def test_it_finds_one_gap_of_each_kind_in_triage_order(client, personas):
    syllabus, _v1 = await course_with_one_gap_of_each_kind(client, personas)
    [course] = await coverage.course_coverage(personas.acme["id"])
    assert (course.course_id, course.version, course.modules_total, course.modules_covered, course.percent) == (
        syllabus["course_id"], 2, 3, 0, 0.0)
    m1, m2, m3 = course.modules
    assert (m1.lessons_published, m1.lessons_expected, m1.questions, m1.has_assessment, m1.external_resources) == (
        4, 4, 19, True, 1)
    assert (m2.questions, m2.has_assessment, m2.external_resources, m2.gaps) == (20, True, 0, ["external"])
    assert (m3.lessons_published, m3.questions, m3.has_assessment, m3.gaps) == (
        0, 0, False, ["lesson", "practice", "assessment"])
    assert course.lacks_assessment
    found = coverage.gaps([course])
    assert [(g.kind, g.module_index) for g in found] == [
        ("lesson", 3), ("practice", 1), ("practice", 3), ("assessment", 3), ("external", 2)]
    sid, cid = syllabus["id"], syllabus["course_id"]
    assert [g.fix_url for g in found] == [
        f"/admin/review?syllabus={sid}&module=3&status=ALL&kind=LESSON",
        f"/admin/review?syllabus={sid}&module=1&status=ALL&kind=QUIZ",
        f"/admin/review?syllabus={sid}&module=3&status=ALL&kind=QUIZ",
        f"/admin/review?syllabus={sid}&module=3&status=ALL&kind=PROJECT",
        f"/admin/quality/courses/{cid}/resources#module-2",
    ]
    [row] = coverage.completeness([course])
    assert (row.missing_lessons, row.missing_projects, row.short_on_practice, row.without_external,
            row.fully_covered) == (4, 1, 2, 1, 0)
    practice = coverage.practice_distribution([course])
    assert (practice.modules, practice.below_target, practice.median, practice.target) == (3, 2, 19.0, 20)
    assert {b.label: b.modules for b in practice.bands} == {"none": 1, "1–9": 0, "10–19": 1, "20–39": 1,
                                                           "40 or more": 0}
    # A lower target clears module 1's practice gap: the figures follow the workspace's setting.
    [lower] = await coverage.course_coverage(personas.acme["id"], questions_target=19)
    assert lower.modules[0].fully_covered and lower.modules_covered == 1


async def test_the_page_lists_the_gaps_with_links_and_stores_a_run(client, client_factory, personas):
    syllabus, _v1 = await course_with_one_gap_of_each_kind(client, personas)
    page = await client.get("/admin/quality/coverage")
    assert page.status_code == 200 and 'aria-current="page">Quality' in page.text
    gaps = re.findall(r'<li class="gap gap-(\w+)"><a href="([^"]+)"', page.text)
    assert [kind for kind, _url in gaps] == ["lesson", "practice", "practice", "assessment", "external"]
    assert gaps[-1][1] == f"/admin/quality/courses/{syllabus['course_id']}/resources#module-2"
    assert "0 of 3" in page.text and "No stored run yet" in page.text

    response = await client.post("/admin/quality/coverage/run")
    assert response.status_code == 303 and response.headers["location"] == "/admin/quality/coverage"
    [report] = await QualityReport.select().where(QualityReport.tenant_id == personas.acme["id"])
    figures = msgspec.json.decode(report["figures"]) if isinstance(report["figures"], str) else report["figures"]
    assert (report["kind"], report["trigger"]) == ("COVERAGE", "admin")
    assert (figures["modules_total"], figures["modules_covered"], figures["questions_target"]) == (3, 0, 20)
    assert figures["gaps"] == {"lesson": 1, "practice": 2, "assessment": 1, "external": 1}
    assert "== coverage-gaps ==" in report["text"] and "No published lesson" in report["text"]
    page = await client.get("/admin/quality/coverage")
    assert "By hand" in page.text and "No stored run yet" not in page.text

    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    theirs = await outsider.get("/admin/quality/coverage")
    assert theirs.status_code == 200 and syllabus["id"].hex not in theirs.text.replace("-", "")
    assert "No published course yet" in theirs.text
    assert (await outsider.post("/admin/quality/coverage/run")).status_code == 303
    assert await QualityReport.count().where(QualityReport.tenant_id == personas.acme["id"]) == 1
    learner = client_factory()
    await learner.login(personas.learner.email)
    assert (await learner.get("/admin/quality/coverage")).status_code in (403, 404)


async def test_it_saves_the_settings_and_refuses_bad_ones_inline(client, client_factory, personas):
    await client.login(personas.admin.email)
    for raw, words in (("0", "between 1 and 500"), ("501", "between 1 and 500"), ("twenty", "whole number")):
        response = await client.post("/admin/quality/settings", {"questions_per_module": raw,
                                                                  "publish_gate_blocking": "on"})
        assert response.status_code == 422 and words in response.text, raw
        assert f'value="{raw}"' in response.text and "checked" in response.text  # the input is kept
    assert await QualitySettings.count().where(QualitySettings.tenant_id == personas.acme["id"]) == 0
    response = await client.post("/admin/quality/settings", {"questions_per_module": "12",
                                                              "publish_gate_blocking": "on"})
    assert response.status_code == 303
    row = await QualitySettings.select().where(QualitySettings.tenant_id == personas.acme["id"]).first()
    assert (row["questions_per_module"], row["publish_gate_blocking"]) == (12, True)
    assert await AuditLog.count().where((AuditLog.action == "QUALITY_SETTINGS_CHANGED")
                                        & (AuditLog.tenant_id == personas.acme["id"])) == 1
    response = await client.post("/admin/quality/settings", {"questions_per_module": "25"})
    row = await QualitySettings.select().where(QualitySettings.tenant_id == personas.acme["id"]).first()
    assert (row["questions_per_module"], row["publish_gate_blocking"]) == (25, False)
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    assert (await outsider.post("/admin/quality/settings", {"questions_per_module": "3"})).status_code == 303
    row = await QualitySettings.select().where(QualitySettings.tenant_id == personas.acme["id"]).first()
    assert row["questions_per_module"] == 25  # Globex's setting is its own


async def test_the_cli_prints_the_reports_and_writes_a_dated_file(client, personas, tmp_path):
    await course_with_one_gap_of_each_kind(client, personas)
    slug = personas.acme["slug"]
    result = run_cli({}, "audit", "coverage-gaps", "--workspace", slug, "--out", f"{tmp_path}/")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if re.match(r"\s+\d+\. ", line)]
    assert [line.split(":")[0].split(". ", 1)[1] for line in lines] == [
        "No published lesson", "Too few quiz questions", "Too few quiz questions", "No module project",
        "No external resource"]
    written = tmp_path / f"coverage-{dt.datetime.now(dt.UTC):%Y%m%d}.txt"
    assert written.read_text() == result.stdout
    rollup = run_cli({}, "audit", "coverage-rollup", "--workspace", slug)
    assert "0 of 3 modules fully covered (0%)" in rollup.stdout
    assert "questions  19/20" in rollup.stdout
    completeness = run_cli({}, "audit", "completeness", "--workspace", slug, "--out", str(tmp_path / "c.txt"))
    assert "4 missing lesson(s), 1 missing project(s), 2 short on practice, 1 without external" in completeness.stdout
    assert (tmp_path / "c.txt").read_text() == completeness.stdout
    practice = run_cli({}, "audit", "practice", "--workspace", slug)
    assert "3 module(s), 2 below target, median 19" in practice.stdout
    limited = run_cli({}, "audit", "coverage-gaps", "--workspace", slug, "--limit", "2")
    assert "2 gap(s)" in limited.stdout
    unknown = run_cli({}, "audit", "coverage-gaps", "--workspace", "no-such-workspace")
    assert unknown.returncode == 1 and "No workspace with the slug 'no-such-workspace'" in unknown.stderr


async def test_the_weekly_cron_is_registered_unique_and_stores_a_report_per_workspace(personas):
    from tasks.quality import coverage_audit_cron
    from tasks.worker import CRON_JOBS, FUNCTIONS, QUEUE_NAME

    [job] = [job for job in CRON_JOBS if job.function is coverage_audit_cron]
    assert (job.cron, job.unique) == ("30 9 * * 1", True)
    assert coverage_audit_cron in FUNCTIONS[QUEUE_NAME]
    summary = await coverage_audit_cron({})
    assert summary["workspaces"] >= 2
    for tenant in (personas.acme, personas.globex):
        [row] = await QualityReport.select().where(QualityReport.tenant_id == tenant["id"])
        assert (row["kind"], row["trigger"]) == ("COVERAGE", "cron")
