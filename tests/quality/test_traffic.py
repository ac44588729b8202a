"""The traffic report (SPEC O2): learner-days per module and course over the last N days, beside the coverage
flags, ordered by sessions × gaps; the CLI, the admin page, its stored runs and the cron."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.publishing.services import document_of
from app.quality import traffic
from app.quality.tables import QualityReport
from tasks.quality import traffic_report_cron
from tasks.worker import CRON_JOBS
from tests.conftest import Client, make_member, run_cli
from tests.publishing.helpers import published_course

TODAY = dt.datetime.now(dt.UTC).date()


def _at(days_ago: int) -> dt.datetime:
    return dt.datetime.combine(TODAY - dt.timedelta(days=days_ago), dt.time(12), dt.UTC)


async def _enroll(tenant_id, user_id, syllabus_id, package_id) -> uuid.UUID:
    enrollment = uuid.uuid4()
    await QualityReport.raw(
        "INSERT INTO enrollment (id, tenant_id, user_id, syllabus_id, package_id, started_package_id, "
        "last_lesson_index, created_at, updated_at) VALUES ({}, {}, {}, {}, {}, {}, 1, now(), now())",
        enrollment, tenant_id, user_id, syllabus_id, package_id, package_id)
    return enrollment


async def _completed(tenant_id, enrollment, module, when) -> None:
    await QualityReport.raw("INSERT INTO lesson_progress (tenant_id, enrollment_id, module_index, lesson_index, "
                            "completed_via, completed_at) VALUES ({}, {}, {}, 1, 'BUTTON', {})",
                            tenant_id, enrollment, module, when)


async def _quiz(tenant_id, enrollment, package_id, module, when) -> None:
    await QualityReport.raw(
        "INSERT INTO quiz_attempt (tenant_id, enrollment_id, package_id, quiz_item_id, module_index, lesson_index, "
        "answers, correct, total, score_pct, passed, time_spent_ms, created_at) VALUES ({}, {}, {}, {}, {}, 1, "
        "'[]'::jsonb, 1, 2, 50, false, 1000, {})", tenant_id, enrollment, package_id, uuid.uuid4(), module, when)


async def _viewed(tenant_id, user_id, syllabus_id, version, lesson_index, when) -> None:
    await QualityReport.raw(
        "INSERT INTO analytics_event (tenant_id, user_id, course_id, package_version, lesson_index, event_type, "
        "created_at) VALUES ({}, {}, {}, {}, {}, 'lesson_viewed', {})",
        tenant_id, user_id, syllabus_id, version, lesson_index, when)


@pytest.fixture
async def busy(personas, client):
    """Acme's course with this activity (hand-counted learner-days, UTC):
    module 1: Lena today (a completion and a quiz: one day), Lena yesterday (a lesson read, an analytics
              event), Lou today                                        -> 3 sessions, 2 learners
    module 2: Lou today, Max today; Max 40 days ago (outside 30 days)  -> 2 sessions, 2 learners (3 over 60)
    course:   Lena today, Lena yesterday, Lou today, Max today         -> 4 sessions, 3 learners
    Module 1 gets a vetted external resource, so it has one gap fewer than module 2."""
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    tenant = personas.acme["id"]
    document = await document_of(package)
    assert len(document.modules) >= 2
    first_of_module_1 = document.modules[0].lessons[0].index
    lou = await make_member(personas.acme, "learner", "lou")
    max_ = await make_member(personas.acme, "learner", "max")
    lena_e, lou_e, max_e = [await _enroll(tenant, p.user_id, syllabus["id"], package["id"])
                            for p in (personas.learner, lou, max_)]
    await _completed(tenant, lena_e, 1, _at(0))
    await _quiz(tenant, lena_e, package["id"], 1, _at(0))
    await _viewed(tenant, personas.learner.user_id, syllabus["id"], package["version"], first_of_module_1, _at(1))
    await _completed(tenant, lou_e, 1, _at(0))
    await _quiz(tenant, lou_e, package["id"], 2, _at(0))
    await _completed(tenant, max_e, 2, _at(0))
    await _quiz(tenant, max_e, package["id"], 2, _at(40))
    await QualityReport.raw(
        "INSERT INTO external_resource (id, tenant_id, course_id, module_index, title, url, kind, created_at) "
        "VALUES ({}, {}, {}, 1, 'Reference', 'https://example.org/ref', 'ARTICLE', now())",
        uuid.uuid4(), tenant, syllabus["course_id"])
    return {"syllabus": syllabus, "package": package, "document": document}


async def test_it_counts_learner_days_and_orders_by_sessions_times_gaps(personas, busy):
    report = await traffic.traffic_report(personas.acme["id"], days=30, limit=20)
    course_id = busy["syllabus"]["course_id"]
    rows = [(m.module_index, m.sessions, m.learners, m.gaps, m.priority) for m in report.modules]
    module_1 = [m for m in report.modules if m.module_index == 1][0]
    module_2 = [m for m in report.modules if m.module_index == 2][0]
    # The mock's quizzes have fewer than 20 questions per module: practice is a gap in both.
    assert module_1.gaps == ["practice"] and module_2.gaps == ["practice", "external"]
    assert rows == [(2, 2, 2, ["practice", "external"], 4), (1, 3, 2, ["practice"], 3)]
    assert module_1.coverage.has_external and not module_2.coverage.has_external
    assert module_1.module_title == busy["document"].modules[0].title
    assert module_1.ai_calls is None and "unavailable" in report.ai_usage
    assert module_2.fix_urls["external"].startswith(f"/admin/quality/courses/{course_id}/resources")
    assert [(c.course_id, c.sessions, c.learners, c.modules_with_gaps) for c in report.courses] == [
        (course_id, 4, 3, 2)]
    wider = await traffic.traffic_report(personas.acme["id"], days=60, limit=20)
    assert [(m.module_index, m.sessions, m.priority) for m in wider.modules] == [(2, 3, 6), (1, 3, 3)]
    busiest = await traffic.traffic_report(personas.acme["id"], days=30, limit=1)
    assert [m.module_index for m in busiest.modules] == [1]  # the limit keeps the busiest module
    assert (await traffic.traffic_report(personas.globex["id"])).modules == []


@pytest.mark.parametrize(("days", "limit"), [(0, 20), (366, 20), (30, 0), (30, 101)])
async def test_it_refuses_a_window_out_of_range(personas, days, limit):
    from app.errors import InvalidInput

    with pytest.raises(InvalidInput):
        await traffic.traffic_report(personas.acme["id"], days=days, limit=limit)


async def test_it_shows_the_page_stores_a_run_and_hides_it_from_other_workspaces(personas, client, busy,
                                                                                 live_server):
    page = await client.get("/admin/quality/traffic?days=30&limit=20")
    assert page.status_code == 200
    assert "Log a spot check" in page.text and "module=2&amp;sessions=2" in page.text
    bad = await client.get("/admin/quality/traffic?days=400&limit=20")
    assert bad.status_code == 400 and "from 1 to 365" in bad.text and 'value="400"' in bad.text
    assert (await client.get("/admin/quality/traffic?days=ten")).status_code == 400
    run = await client.post("/admin/quality/traffic/run")
    assert run.status_code == 303
    stored = await QualityReport.select().where(QualityReport.tenant_id == personas.acme["id"]).output(
        load_json=True)
    assert len(stored) == 1 and stored[0]["kind"] == "TRAFFIC" and stored[0]["trigger"] == "admin"
    assert stored[0]["parameters"] == {"days": 30, "limit": 20}
    assert [m["sessions"] for m in stored[0]["figures"]["modules"]] == [2, 3]
    assert run.headers["location"] == f"/admin/quality/traffic/runs/{stored[0]['id']}"
    shown = await client.get(run.headers["location"])
    assert shown.status_code == 200 and "sessions x gaps" in shown.text
    assert str(stored[0]["id"]) in (await client.get("/admin/quality/traffic")).text
    outsider = Client(live_server.url)
    await outsider.login(personas.outsider.email)
    assert (await outsider.get(run.headers["location"])).status_code == 404
    assert str(stored[0]["id"]) not in (await outsider.get("/admin/quality/traffic")).text
    await outsider.aclose()


async def test_it_prints_the_report_and_writes_a_dated_file(personas, busy, tmp_path):
    slug = personas.acme["slug"]
    result = run_cli({}, "audit", "traffic", "--days", "30", "--limit", "5", "--workspace", slug, "--out",
                     str(tmp_path))
    assert result.returncode == 0, result.stderr
    dated = tmp_path / f"traffic-{dt.datetime.now(dt.UTC):%Y%m%d}.txt"
    assert dated.read_text() == result.stdout
    lines = result.stdout.splitlines()
    modules = [line for line in lines if " / 1. " in line or " / 2. " in line]
    assert [line.split()[:2] for line in modules] == [["4", "2"], ["3", "3"]]
    assert "unavailable" in result.stdout
    named = tmp_path / "ops" / "high_traffic_modules.txt"
    named.parent.mkdir()
    assert run_cli({}, "audit", "traffic", "--workspace", slug, "--out", str(named)).returncode == 0
    assert named.read_text().startswith("Traffic report")
    for bad in (["--days", "0"], ["--days", "366"], ["--limit", "0"], ["--days", "x"]):
        refused = run_cli({}, "audit", "traffic", *bad)
        assert refused.returncode == 2 and "Invalid value" in refused.stderr
    unknown = run_cli({}, "audit", "traffic", "--workspace", "no-such-workspace")
    assert unknown.returncode == 1 and "no-such-workspace" in unknown.stderr


async def test_it_stores_a_report_per_workspace_from_the_cron(personas, busy):
    summary = await traffic_report_cron({})
    rows = await QualityReport.select(QualityReport.tenant_id).where(
        (QualityReport.kind == "TRAFFIC") & (QualityReport.trigger == "cron"))
    assert {personas.acme["id"], personas.globex["id"]} <= {r["tenant_id"] for r in rows}
    assert summary["reports"] == len(rows)


def test_it_registers_the_cron_on_mondays_and_thursdays_at_0930_utc_with_unique():
    [job] = [job for job in CRON_JOBS if job.function is traffic_report_cron]
    assert job.cron == "30 9 * * 1,4" and job.unique is True
