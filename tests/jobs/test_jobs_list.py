"""The background jobs list: generation runs and background jobs of the workspace in one list, newest first,
filtered by kind and status, in words, each linking to its page; failed work links to where it moves on."""

from __future__ import annotations

import datetime as dt
import re

from app.authoring.tables import Course, GenerationRun
from app.jobs.tables import BackgroundJob
from tests.authoring.helpers import approved_syllabus


def _ago(minutes: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)


async def _course(tenant_id, title="Statistics for Nurses") -> dict:
    return (await Course.insert(Course(tenant_id=tenant_id, title=title, brief="{}")).returning(Course.id))[0]


async def _run(tenant_id, course_id, kind, status, minutes_ago, **columns) -> dict:
    return (await GenerationRun.insert(GenerationRun(
        tenant_id=tenant_id, course_id=course_id, kind=kind, status=status, created_at=_ago(minutes_ago), **columns,
    )).returning(GenerationRun.id))[0]


async def _job(tenant_id, status, minutes_ago, **columns) -> dict:
    return (await BackgroundJob.insert(BackgroundJob(
        tenant_id=tenant_id, kind="tenant_stats", status=status, created_at=_ago(minutes_ago), **columns,
    )).returning(BackgroundJob.id))[0]


def _row_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="(?:run|job)-([0-9a-f-]{36})">', html)


def _row(html: str, row_id) -> str:
    match = re.search(rf'<tr id="(?:run|job)-{row_id}">(.*?)</tr>', html, re.DOTALL)
    assert match, f"no row {row_id}"
    return " ".join(match.group(1).split())


async def test_it_lists_runs_and_jobs_newest_first_in_words_with_links(client, personas):
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client)  # a real syllabus run, just now
    tenant = personas.acme["id"]
    course = await _course(tenant)
    failed_draft = await _run(tenant, course["id"], "SYLLABUS", "FAILED", 30, error="the model timed out")
    partial = await _run(tenant, syllabus["course_id"], "CONTENT", "PARTIAL", 20, total=12, done=10, failed=2,
                         syllabus_id=syllabus["id"])
    failed_job = await _job(tenant, "FAILED", 10, error="worker lost: no result within 15 minutes")
    done_job = await _job(tenant, "SUCCEEDED", 5)
    page = await client.get("/admin/jobs")
    assert page.status_code == 200
    real_run = (await GenerationRun.select(GenerationRun.id).where(
        GenerationRun.id == syllabus["run_id"]).first())["id"]
    assert _row_ids(page.text) == [str(i) for i in (real_run, done_job["id"], failed_job["id"], partial["id"],
                                                    failed_draft["id"])]
    draft_row = _row(page.text, failed_draft["id"])
    assert "Syllabus draft" in draft_row and "Statistics for Nurses" in draft_row and ">Failed<" in draft_row
    assert f'href="/admin/runs/{failed_draft["id"]}" role="button" class="small-button">Try again…' in draft_row
    partial_row = _row(page.text, partial["id"])
    assert "Course content" in partial_row and "Practical Git for Designers" in partial_row
    assert "Partly failed" in partial_row and "10 of 12 done" in partial_row
    assert f'href="/admin/runs/{partial["id"]}" role="button" class="small-button">Regenerate failed…' in partial_row
    job_row = _row(page.text, failed_job["id"])
    assert "Workspace stats" in job_row and f'href="/admin/jobs/{failed_job["id"]}"' in job_row
    assert 'href="/admin" role="button" class="small-button">Run it again…' in job_row
    assert "worker lost" in job_row
    real_row = _row(page.text, real_run)
    assert ">Done<" in real_row and personas.admin.email in real_row and f'href="/admin/runs/{real_run}"' in real_row
    # Enum codes never reach people: no SUCCEEDED/PARTIAL/tenant_stats as text.
    text = re.sub(r"<[^>]+>", " ", page.text)
    for code in ("SUCCEEDED", "PARTIAL", "tenant_stats", "SYLLABUS"):
        assert code not in text
    # The job's own page speaks the same words.
    job_page = await client.get(f"/admin/jobs/{done_job['id']}")
    assert "<h1>Workspace stats</h1>" in job_page.text and ">Done<" in job_page.text


async def test_it_filters_by_kind_and_status(client, personas):
    await client.login(personas.admin.email)
    tenant = personas.acme["id"]
    syllabus = await approved_syllabus(client)
    course = await _course(tenant)
    draft = await _run(tenant, course["id"], "SYLLABUS", "SUCCEEDED", 3)
    failed_content = await _run(tenant, syllabus["course_id"], "CONTENT", "FAILED", 2, syllabus_id=syllabus["id"])
    failed_job = await _job(tenant, "FAILED", 1)
    by_kind = await client.get("/admin/jobs", params={"kind": "tenant_stats"})
    assert _row_ids(by_kind.text) == [str(failed_job["id"])]
    assert '<option value="tenant_stats" selected>Workspace stats</option>' in by_kind.text
    by_status = await client.get("/admin/jobs", params={"status": "FAILED"})
    assert _row_ids(by_status.text) == [str(failed_job["id"]), str(failed_content["id"])]
    both = await client.get("/admin/jobs", params={"kind": "SYLLABUS", "status": "SUCCEEDED"})
    assert _row_ids(both.text) == [str(syllabus["run_id"]), str(draft["id"])]  # the real draft ran just now
    none = await client.get("/admin/jobs", params={"kind": "RETRY"})
    assert "No job matches these filters." in none.text
    partial = await client.get("/admin/jobs", params={"status": "FAILED"}, headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="jobs-table">') and "<html" not in partial.text


async def test_it_refuses_unknown_filter_values_in_the_form(client, personas):
    await client.login(personas.admin.email)
    for params, words in (({"kind": "BITCOIN_MINER"}, "no kind of job called 'BITCOIN_MINER'"),
                          ({"status": "succeeded"}, "no job status called 'succeeded'")):
        response = await client.get("/admin/jobs", params=params)
        assert response.status_code == 400
        assert "<h1>Background jobs</h1>" in response.text  # the jobs page itself, not an error page
        assert re.search(r'<p class="field-error" role="alert" id="jobs-filter-error">[^<]*' + re.escape(words),
                         response.text.replace("&#39;", "'"))
    bad_page = await client.get("/admin/jobs", params={"page": "0"})
    assert bad_page.status_code == 400


async def test_it_paginates_twenty_five_a_page(client, personas):
    await client.login(personas.admin.email)
    ids = [str((await _job(personas.acme["id"], "SUCCEEDED", 100 - i))["id"]) for i in range(30)]
    first = await client.get("/admin/jobs")
    assert _row_ids(first.text) == ids[::-1][:25] and "Older →" in first.text
    second = await client.get("/admin/jobs", params={"page": 2})
    assert _row_ids(second.text) == ids[::-1][25:] and "← Newer" in second.text and "Older →" not in second.text


async def test_it_says_when_work_looks_stuck(client, personas):
    await client.login(personas.admin.email)
    stuck = await _job(personas.acme["id"], "RUNNING", 40, started_at=_ago(40))
    fresh = await _job(personas.acme["id"], "RUNNING", 1, started_at=_ago(1))
    page = await client.get("/admin/jobs")
    assert "looks stuck" in _row(page.text, stuck["id"]) and "looks stuck" not in _row(page.text, fresh["id"])
    assert ">Running<" in _row(page.text, fresh["id"])


async def test_it_shows_nothing_of_another_workspace(client, client_factory, personas):
    acme_job = await _job(personas.acme["id"], "FAILED", 1)
    acme_run = await _run(personas.acme["id"], (await _course(personas.acme["id"], "Acme secrets"))["id"],
                          "SYLLABUS", "FAILED", 1)
    await client.login(personas.outsider.email)
    page = await client.get("/admin/jobs")
    assert page.status_code == 200 and "Nothing has run in the background yet." in page.text
    assert str(acme_job["id"]) not in page.text and "Acme secrets" not in page.text
    assert (await client.get(f"/admin/jobs/{acme_job['id']}")).status_code == 404
    assert (await client.get(f"/admin/runs/{acme_run['id']}")).status_code == 404
    learner = client_factory()
    await learner.login(personas.learner.email)
    assert (await learner.get("/admin/jobs")).status_code == 403
