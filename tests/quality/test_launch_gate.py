"""The launch gate and the publish gate (issue 14 item 5, SPEC O4): `coursewright launch-gate` fails when too
few modules of published courses are fully covered or a published course lacks its assessment, printing
counts per course; the publish panel lists the same gaps, and a workspace setting makes them refuse."""

import re

from app.publishing.tables import CoursePackageRow
from app.quality.tables import ExternalResource
from tests.authoring.helpers import generated_content
from tests.conftest import create_database, fetch_rows, run_cli
from tests.publishing.helpers import approve_everything, published_course
from tests.quality.test_coverage import add_resource, course_with_one_gap_of_each_kind

# The default brief: 6 lessons, 2 modules of 3, 5 questions a quiz -> 15 a module.


async def _settings(client, target: int, blocking: bool = False) -> None:
    data = {"questions_per_module": str(target)} | ({"publish_gate_blocking": "on"} if blocking else {})
    assert (await client.post("/admin/quality/settings", data)).status_code == 303


async def test_it_passes_on_a_fully_covered_course_and_fails_below_the_threshold(client, personas):
    await client.login(personas.admin.email)
    syllabus, _v1 = await published_course(client)
    await _settings(client, 15)
    for module in (1, 2):
        await add_resource(client, syllabus["course_id"], module)
    slug = personas.acme["slug"]
    passing = run_cli({}, "launch-gate", "--workspace", slug)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "2 of 2 modules fully covered (100%), threshold 80%" in passing.stdout
    assert f"[{slug}] Practical Git for Designers v1: 2/2 modules covered (100%)" in passing.stdout
    assert passing.stdout.rstrip().endswith("PASS")

    await ExternalResource.update({ExternalResource.removed_at: ExternalResource.created_at}).where(
        (ExternalResource.course_id == syllabus["course_id"]) & (ExternalResource.module_index == 2))
    failing = run_cli({}, "launch-gate", "--workspace", slug)
    assert failing.returncode == 1
    assert "1/2 modules covered (50%)" in failing.stdout
    assert "FAIL: coverage 50% is below 80%" in failing.stdout
    assert run_cli({}, "launch-gate", "--workspace", slug, "--threshold", "50").returncode == 0


async def test_it_fails_when_a_published_course_lacks_its_assessment_whatever_the_threshold(client, personas):
    await course_with_one_gap_of_each_kind(client, personas)
    result = run_cli({}, "launch-gate", "--workspace", personas.acme["slug"], "--threshold", "0")
    assert result.returncode == 1
    assert "0/3 modules covered (0%), 1 module(s) without a project" in result.stdout
    assert "FAIL: Practical Git for Designers lacks its assessment" in result.stdout


async def test_it_refuses_a_threshold_outside_0_to_100_with_a_usage_error(personas):
    for bad in ("101", "-1", "eighty"):
        result = run_cli({}, "launch-gate", "--threshold", bad)
        assert result.returncode == 2, bad
        assert "--threshold" in result.stderr
    assert "must be between 0 and 100 (got 101)" in run_cli({}, "launch-gate", "--threshold", "101").stderr
    unknown = run_cli({}, "launch-gate", "--workspace", "no-such-workspace")
    assert unknown.returncode == 1 and "No workspace with the slug" in unknown.stderr


def _panel(html: str) -> str:
    match = re.search(r'<section class="publish-panel[^"]*" id="publish".*?</section>', html, re.S)
    assert match, "no publish panel on the page"
    return match.group(0)


async def test_the_publish_panel_lists_the_gaps_and_the_setting_makes_them_blocking(client, client_factory,
                                                                                   personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    await approve_everything(client, syllabus["id"])
    page = f"/admin/syllabi/{syllabus['id']}"

    advisory = _panel((await client.get(page)).text)  # default: target 20, no resources, not blocking
    assert "Coverage gaps in this version (publishing is still allowed" in advisory
    assert advisory.count("Too few quiz questions") == 2 and advisory.count("No external resource") == 2
    assert "15 of 20 questions" in advisory
    assert re.search(r"<button type=\"submit\">Publish version 1</button>", advisory)

    await _settings(client, 20, blocking=True)
    blocked = _panel((await client.get(page)).text)
    assert "Publishing is blocked" in blocked
    assert re.search(r"<button type=\"submit\" disabled[^>]*>Publish version 1</button>", blocked)
    refused = await client.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert refused.status_code == 409
    assert "The publish gate is on in this workspace" in refused.text
    assert "module 1 (" in refused.text and "too few quiz questions, 15 of 20 questions" in refused.text
    assert await CoursePackageRow.count().where(CoursePackageRow.syllabus_id == syllabus["id"]) == 0

    await _settings(client, 15, blocking=True)
    await add_resource(client, syllabus["course_id"], 1)
    still = await client.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert still.status_code == 409 and "module 2 (" in still.text and "no external resource" in still.text
    assert "module 1 (" not in still.text
    await add_resource(client, syllabus["course_id"], 2)
    assert "Publishing is blocked" not in _panel((await client.get(page)).text)
    published = await client.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert published.status_code == 303
    assert await CoursePackageRow.count().where(CoursePackageRow.syllabus_id == syllabus["id"]) == 1

    # Another workspace's gate setting is its own: Globex turning it on does not block Acme.
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    assert (await outsider.post("/admin/quality/settings", {"questions_per_module": "500",
                                                            "publish_gate_blocking": "on"})).status_code == 303
    assert "Publishing is blocked" not in _panel((await client.get(page)).text)


async def test_it_passes_on_the_demo_install_and_fails_once_a_demo_course_thins(tmp_path):
    url = await create_database("launchgate")
    env = {"DATABASE_URL": url}
    assert run_cli(env, "migrate").returncode == 0
    seeded = run_cli(env, "seed-demo", timeout=300)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    passing = run_cli(env, "launch-gate", "--out", f"{tmp_path}/")
    assert passing.returncode == 0, passing.stdout
    assert "4 of 4 modules fully covered (100%)" in passing.stdout
    assert "[demo] Python for Data Analysis v1: 3/3 modules covered (100%)" in passing.stdout
    assert "[demo] SQL for Spreadsheet Users v1: 1/1 modules covered (100%)" in passing.stdout
    assert len(list(tmp_path.glob("launch-gate-*.txt"))) == 1
    # Version 1 of each demo course carries its module's vetted links.
    [row] = await fetch_rows(url, "SELECT document FROM course_package WHERE title = 'SQL for Spreadsheet Users'")
    assert "https://www.postgresql.org/docs/current/tutorial-sql.html" in row["document"]
    # A second start adds nothing.
    assert "Demo data already present." in run_cli(env, "seed-demo", timeout=300).stdout

    # Thinner: the SQL course loses its only link -> 3 of 4 modules (75%), below 80%.
    await fetch_rows(url, "UPDATE external_resource SET removed_at = now() WHERE url LIKE 'https://www.postgresql%'")
    failing = run_cli(env, "launch-gate")
    assert failing.returncode == 1
    assert "[demo] SQL for Spreadsheet Users v1: 0/1 modules covered (0%)" in failing.stdout
    assert "FAIL: coverage 75% is below 80%" in failing.stdout
