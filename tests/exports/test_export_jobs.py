"""Export jobs over HTTP (issue 10 items 2-4): request -> worker -> download, the cache, retry, who may
export, the rate limit shared by two app processes, the size guard, audit rows. Built on the HTML site
exporter (E3's build_html_zip); one published course for the whole module."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass

import asyncpg
import pytest

from tests.conftest import DATABASE_URL, Client, Persona, fetch_rows, make_member, make_tenant, poll_rows, start_server
from tests.publishing.helpers import published_course

ROWS = "SELECT * FROM package_export WHERE package_id = $1 ORDER BY created_at"


@dataclass
class Course:
    admin: Persona
    learner: Persona
    bystander: Persona  # a learner of Acme not enrolled in the course
    outsider: Persona  # an admin of Globex
    syllabus: dict
    package: dict


@pytest.fixture(scope="module")
async def course(live_server, migrated) -> Course:
    acme, globex = await make_tenant("Acme"), await make_tenant("Globex")
    admin, learner = await make_member(acme, "admin", "adam"), await make_member(acme, "learner", "lena")
    bystander, outsider = await make_member(acme, "learner", "bea"), await make_member(globex, "admin", "oscar")
    client = Client(live_server.url)
    try:
        await client.login(admin.email)
        syllabus, package = await published_course(client)
        reader = Client(live_server.url)
        await reader.login(learner.email)
        assert (await reader.post(f"/learn/{syllabus['id']}/enroll")).status_code == 303
        await reader.aclose()
    finally:
        await client.aclose()
    return Course(admin, learner, bystander, outsider, syllabus, package)


async def signed_in(url: str, persona: Persona) -> Client:
    client = Client(url)
    await client.login(persona.email)
    return client


async def finished(export_id) -> dict:
    rows = await poll_rows(DATABASE_URL, "SELECT * FROM package_export WHERE id = $1",
                           lambda rows: rows and rows[0]["status"] in ("SUCCEEDED", "FAILED"), export_id, timeout=60)
    return dict(rows[0])


def export_id_of(response) -> uuid.UUID:
    assert response.status_code == 303, response.text[:500]
    return uuid.UUID(response.headers["location"].rsplit("/", 1)[1])


async def test_it_builds_an_html_export_on_a_worker_and_serves_it(live_server, course):
    admin = await signed_in(live_server.url, course.admin)
    try:
        response = await admin.post(f"/admin/packages/{course.package['id']}/exports", {"format": "HTML"})
        export_id = export_id_of(response)
        assert response.headers["location"] == f"/admin/exports/{export_id}"
        row = await finished(export_id)
        assert row["status"] == "SUCCEEDED", row["error"]
        assert row["format"] == "HTML" and row["created_by"] == course.admin.user_id and row["attempt"] == 1
        assert row["sha256"] == hashlib.sha256(row["content"]).hexdigest() and row["size_bytes"] == len(row["content"])

        page = await admin.get(f"/admin/exports/{export_id}")
        assert page.status_code == 200 and "Ready" in page.text and "hx-trigger" not in page.text.split(
            f'id="export-{export_id}"')[1].split(">")[0]
        assert f"/admin/exports/{export_id}/download" in page.text

        download = await admin.get(f"/admin/exports/{export_id}/download")
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("application/zip")
        slug = re.sub(r"[^a-z0-9]+", "-", course.package["title"].lower()).strip("-")
        assert download.headers["content-disposition"] == f'attachment; filename="{slug}-v1-html.zip"'
        assert download.headers["etag"] == f'"{row["sha256"]}"'
        assert download.headers["cache-control"].startswith("private, max-age=")
        assert download.content == bytes(row["content"])
        assert "index.html" in zipfile.ZipFile(io.BytesIO(download.content)).namelist()

        again = await admin.get(f"/admin/exports/{export_id}/download", headers={"If-None-Match": f'"{row["sha256"]}"'})
        assert again.status_code == 304 and again.content == b""

        audit = await fetch_rows(DATABASE_URL, "SELECT * FROM audit_log WHERE action = 'EXPORT_HTML' "
                                 "AND entity_id = $1", str(export_id))
        assert len(audit) == 1 and audit[0]["actor_id"] == course.admin.user_id
        metadata = json.loads(audit[0]["metadata"])
        assert metadata["package_id"] == str(course.package["id"]) and metadata["version"] == course.package["version"]
        assert metadata["format"] == "HTML"

        metrics = (await admin.get("/metrics")).text
        assert 'coursewright_exports_total{format="HTML",outcome="succeeded"}' in metrics
        assert 'coursewright_export_duration_seconds_count{format="HTML"}' in metrics
    finally:
        await admin.aclose()


async def test_it_serves_a_second_request_from_the_cache_without_a_job(live_server, course):
    admin = await signed_in(live_server.url, course.admin)
    try:
        first = export_id_of(await admin.post(f"/admin/packages/{course.package['id']}/exports", {"format": "html"}))
        row = await finished(first)
        requests = await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM export_request")
        response = await admin.post(f"/admin/packages/{course.package['id']}/exports", {"format": "HTML"}, htmx=True)
        assert response.status_code == 200 and f"/admin/exports/{first}/download" in response.text
        rows = await fetch_rows(DATABASE_URL, ROWS, course.package["id"])
        html = [r for r in rows if r["format"] == "HTML" and r["exporter_version"] == row["exporter_version"]]
        assert len(html) == 1 and html[0]["attempt"] == row["attempt"] and html[0]["status"] == "SUCCEEDED"
        assert (await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM export_request"))[0]["n"] == requests[0]["n"]
    finally:
        await admin.aclose()


async def test_it_retries_a_failed_export(live_server, course):
    export_id = uuid.uuid4()
    await fetch_rows(DATABASE_URL, "INSERT INTO package_export (id, tenant_id, package_id, format, options, "
                     "exporter_version, status, error, created_at, queued_at, attempt, lost_attempts) VALUES "
                     "($1, $2, $3, 'HTML', '{}', 'test-failed', 'FAILED', 'The HTML site could not be built: boom', "
                     "now(), now(), 1, 0)", export_id, course.admin.tenant_id, course.package["id"])
    admin = await signed_in(live_server.url, course.admin)
    try:
        page = await admin.get(f"/admin/exports/{export_id}")
        assert "could not be built: boom" in page.text and f"/admin/exports/{export_id}/retry" in page.text
        response = await admin.post(f"/admin/exports/{export_id}/retry")
        assert response.status_code == 303 and response.headers["location"] == f"/admin/exports/{export_id}"
        row = await finished(export_id)
        assert row["status"] == "SUCCEEDED" and row["error"] is None and row["attempt"] == 2
        refused = await admin.post(f"/admin/exports/{export_id}/retry")
        assert refused.status_code == 409
    finally:
        await admin.aclose()


async def test_it_hides_exports_from_other_tenants_and_courses(live_server, course):
    admin = await signed_in(live_server.url, course.admin)
    outsider = await signed_in(live_server.url, course.outsider)
    bystander = await signed_in(live_server.url, course.bystander)
    try:
        exports = f"/admin/packages/{course.package['id']}/exports"
        export_id = export_id_of(await admin.post(exports, {"format": "HTML"}))
        await finished(export_id)
        for path in (f"/admin/exports/{export_id}", f"/admin/exports/{export_id}/download"):
            assert (await outsider.get(path)).status_code == 404
        before = await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM package_export")
        assert (await outsider.post(exports, {"format": "HTML"})).status_code == 404
        assert (await outsider.post(f"/admin/exports/{export_id}/retry")).status_code == 404
        assert (await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM package_export"))[0]["n"] == before[0]["n"]
        for path in (f"/learn/exports/{export_id}", f"/learn/exports/{export_id}/download"):
            assert (await bystander.get(path)).status_code == 404
            assert (await outsider.get(path)).status_code == 404
        assert (await outsider.post(f"/learn/{course.syllabus['id']}/exports", {"format": "HTML"})).status_code == 404
    finally:
        for client in (admin, outsider, bystander):
            await client.aclose()


async def test_it_lets_an_enrolled_learner_download_the_html_but_not_scorm_or_a_key(live_server, course):
    learner = await signed_in(live_server.url, course.learner)
    try:
        overview = await learner.get(f"/learn/{course.syllabus['id']}")
        assert f"/learn/{course.syllabus['id']}/exports" in overview.text and 'value="SCORM"' not in overview.text
        response = await learner.post(f"/learn/{course.syllabus['id']}/exports", {"format": "HTML"})
        assert response.status_code == 303 and response.headers["location"].startswith("/learn/exports/")
        export_id = uuid.UUID(response.headers["location"].rsplit("/", 1)[1])
        row = await finished(export_id)
        download = await learner.get(f"/learn/exports/{export_id}/download")
        assert download.status_code == 200 and download.content == bytes(row["content"])
        before = await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM package_export")
        scorm = await learner.post(f"/learn/{course.syllabus['id']}/exports", {"format": "SCORM"})
        assert scorm.status_code == 403 and "SCORM" in scorm.text
        key = await learner.post(f"/learn/{course.syllabus['id']}/exports", {"format": "PDF", "answer_key": "on"})
        assert key.status_code == 403 and "answer key" in key.text
        assert (await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM package_export"))[0]["n"] == before[0]["n"]
        admin_path = f"/admin/packages/{course.package['id']}/exports"
        assert (await learner.post(admin_path, {"format": "HTML"})).status_code == 403
    finally:
        await learner.aclose()


async def test_it_refuses_an_unknown_format_in_words(live_server, course):
    admin = await signed_in(live_server.url, course.admin)
    try:
        response = await admin.post(f"/admin/packages/{course.package['id']}/exports", {"format": "DOCX"})
        assert response.status_code == 400 and "PDF, SCORM or HTML" in response.text
    finally:
        await admin.aclose()


async def test_it_rate_limits_new_exports_across_two_app_processes(live_server, course):
    # A second admin and failed rows of their own to retry, so only this test's requests count. The second
    # process allows 1 new export per window: it must count the one made through the first process.
    admin2 = await make_member({"id": course.admin.tenant_id}, "admin", "ada")
    ids = [uuid.uuid4(), uuid.uuid4()]
    for n, export_id in enumerate(ids):
        await fetch_rows(DATABASE_URL, "INSERT INTO package_export (id, tenant_id, package_id, format, options, "
                         "exporter_version, status, error, created_at, queued_at, attempt, lost_attempts) VALUES "
                         "($1, $2, $3, 'HTML', '{}', $4, 'FAILED', 'boom', now(), now(), 1, 0)",
                         export_id, course.admin.tenant_id, course.package["id"], f"test-rate-{n}")
    other = start_server("exports-rate", EXPORT_RATE_LIMIT="1", EXPORT_RATE_WINDOW_SECONDS="600")
    first = await signed_in(live_server.url, admin2)
    second = await signed_in(other.url, admin2)
    try:
        assert (await first.post(f"/admin/exports/{ids[0]}/retry")).status_code == 303
        refused = await second.post(f"/admin/exports/{ids[1]}/retry")
        assert refused.status_code == 429, refused.text[:300]
        assert 590 <= int(refused.headers["retry-after"]) <= 601
        assert "Try again in about 10 minutes" in refused.text
        row = (await fetch_rows(DATABASE_URL, "SELECT status FROM package_export WHERE id = $1", ids[1]))[0]
        assert row["status"] == "FAILED"
        counted = await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM export_request WHERE user_id = $1",
                                   admin2.user_id)
        assert counted[0]["n"] == 1
    finally:
        await first.aclose()
        await second.aclose()
        other.stop()


async def test_it_refuses_a_package_over_the_size_guard_before_any_work(course):
    small = start_server("exports-size", EXPORT_MAX_PACKAGE_BYTES="1000")
    admin = await signed_in(small.url, course.admin)
    try:
        before = await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM package_export")
        response = await admin.post(f"/admin/packages/{course.package['id']}/exports", {"format": "HTML"})
        assert response.status_code == 413
        assert "too large to export" in response.text and "1,000 bytes" in response.text
        assert (await fetch_rows(DATABASE_URL, "SELECT count(*) AS n FROM package_export"))[0]["n"] == before[0]["n"]
    finally:
        await admin.aclose()
        small.stop()


async def test_it_keeps_the_state_machine_and_the_finished_bytes_in_the_database(live_server, course):
    admin = await signed_in(live_server.url, course.admin)
    try:
        export_id = export_id_of(await admin.post(f"/admin/packages/{course.package['id']}/exports",
                                                  {"format": "HTML"}))
    finally:
        await admin.aclose()
    row = await finished(export_id)
    assert row["status"] == "SUCCEEDED"
    for change in ("content = 'x'::bytea", "status = 'FAILED'", "status = 'QUEUED'", "error = 'x'"):
        with pytest.raises(asyncpg.RaiseError, match="immutable"):
            await fetch_rows(DATABASE_URL, f"UPDATE package_export SET {change} WHERE id = $1", export_id)
    queued = uuid.uuid4()
    await fetch_rows(DATABASE_URL, "INSERT INTO package_export (id, tenant_id, package_id, format, options, "
                     "exporter_version, status, created_at, queued_at, attempt, lost_attempts) VALUES "
                     "($1, $2, $3, 'HTML', '{}', 'test-guard', 'QUEUED', now(), now(), 0, 0)",
                     queued, course.admin.tenant_id, course.package["id"])
    with pytest.raises(asyncpg.RaiseError, match="not a transition"):
        await fetch_rows(DATABASE_URL, "UPDATE package_export SET status = 'SUCCEEDED', content = 'x', sha256 = 'x', "
                         "size_bytes = 1 WHERE id = $1", queued)
    with pytest.raises(asyncpg.RaiseError, match="key never changes"):
        await fetch_rows(DATABASE_URL, "UPDATE package_export SET format = 'PDF' WHERE id = $1", queued)
    with pytest.raises(asyncpg.UniqueViolationError):
        await fetch_rows(DATABASE_URL, "INSERT INTO package_export (id, tenant_id, package_id, format, options, "
                         "exporter_version, status, created_at, queued_at, attempt, lost_attempts) VALUES "
                         "($1, $2, $3, 'HTML', '{}', 'test-guard', 'QUEUED', now(), now(), 0, 0)",
                         uuid.uuid4(), course.admin.tenant_id, course.package["id"])
    await fetch_rows(DATABASE_URL, "DELETE FROM package_export WHERE id = $1", queued)


async def test_it_exports_pdf_with_and_without_the_key_and_scorm_with_its_report(live_server, course):
    # A fresh admin: three new exports are exactly the default rate limit.
    exporter = await make_member({"id": course.admin.tenant_id}, "admin", "ed")
    admin = await signed_in(live_server.url, exporter)
    learner = await signed_in(live_server.url, course.learner)
    exports = f"/admin/packages/{course.package['id']}/exports"
    try:
        plain = export_id_of(await admin.post(exports, {"format": "PDF"}))
        keyed = export_id_of(await admin.post(exports, {"format": "PDF", "answer_key": "on"}))
        scorm = export_id_of(await admin.post(exports, {"format": "SCORM"}))
        assert len({plain, keyed, scorm}) == 3
        rows = {export_id: await finished(export_id) for export_id in (plain, keyed, scorm)}
        assert all(row["status"] == "SUCCEEDED" for row in rows.values()), [r["error"] for r in rows.values()]
        assert json.loads(rows[keyed]["options"]) == {"answer_key": True}
        assert json.loads(rows[plain]["options"]) == {}

        pdf = await admin.get(f"/admin/exports/{plain}/download")
        assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
        assert pdf.headers["content-disposition"].endswith(f'-v{course.package["version"]}.pdf"')
        report = json.loads(rows[scorm]["report"])
        assert report["valid"] is True and report["checked"]
        page = await admin.get(f"/admin/exports/{scorm}")
        assert "SCORM conformance: valid" in page.text
        zipped = await admin.get(f"/admin/exports/{scorm}/download")
        assert zipped.headers["content-disposition"].endswith('-scorm.zip"')
        assert "imsmanifest.xml" in zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
        actions = await fetch_rows(DATABASE_URL, "SELECT action FROM audit_log WHERE actor_id = $1 ORDER BY id",
                                   exporter.user_id)
        assert [a["action"] for a in actions if a["action"].startswith("EXPORT")] == [
            "EXPORT_PDF", "EXPORT_PDF", "EXPORT_SCORM"]

        # The learner's PDF is the admin's plain one, from the cache; the keyed one stays out of reach.
        mine = export_id_of(await learner.post(f"/learn/{course.syllabus['id']}/exports", {"format": "PDF"}))
        assert mine == plain
        assert (await learner.get(f"/learn/exports/{plain}/download")).content == pdf.content
        for export_id in (keyed, scorm):
            assert (await learner.get(f"/learn/exports/{export_id}")).status_code == 404

        refused = await admin.post(exports, {"format": "HTML", "answer_key": "on"})  # HTML is cached: no limit
        assert refused.status_code == 303
        retry = uuid.uuid4()
        await fetch_rows(DATABASE_URL, "INSERT INTO package_export (id, tenant_id, package_id, format, options, "
                         "exporter_version, status, error, created_at, queued_at, attempt, lost_attempts) VALUES "
                         "($1, $2, $3, 'HTML', '{}', 'test-limit', 'FAILED', 'boom', now(), now(), 1, 0)",
                         retry, course.admin.tenant_id, course.package["id"])
        limited = await admin.post(f"/admin/exports/{retry}/retry")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    finally:
        await admin.aclose()
        await learner.aclose()


async def test_it_fails_an_export_whose_workers_kept_getting_lost(course):
    from app.exports.services import sweep_exports

    export_id = uuid.uuid4()
    await fetch_rows(DATABASE_URL, "INSERT INTO package_export (id, tenant_id, package_id, format, options, "
                     "exporter_version, status, created_at, queued_at, claimed_at, heartbeat_at, attempt, "
                     "lost_attempts) VALUES ($1, $2, $3, 'HTML', '{}', 'test-lost', 'RUNNING', now(), now(), "
                     "now() - interval '1 hour', now() - interval '1 hour', 3, 2)",
                     export_id, course.admin.tenant_id, course.package["id"])
    await sweep_exports()  # the live server's own sweeper may get there first: the outcome is the same
    row = (await fetch_rows(DATABASE_URL, "SELECT status, error FROM package_export WHERE id = $1", export_id))[0]
    assert row["status"] == "FAILED" and "stopped several times" in row["error"]


async def test_it_wakes_again_an_export_whose_wake_up_was_lost(course):
    # A QUEUED export with no SAQ job behind it (the queue was away when it was sent): the sweep sends a new
    # wake-up and the live server's worker builds it.
    from app.exports.services import sweep_exports
    from app.queue import close_queue, connect_queues

    export_id = uuid.uuid4()
    await fetch_rows(DATABASE_URL, "INSERT INTO package_export (id, tenant_id, package_id, format, options, "
                     "exporter_version, status, created_at, queued_at, attempt, lost_attempts) VALUES ($1, $2, $3, "
                     "'HTML', '{}', 'test-rewake', 'QUEUED', now(), now() - interval '1 hour', 0, 0)",
                     export_id, course.admin.tenant_id, course.package["id"])
    await connect_queues()  # the same PostgreSQL queue the live server's worker reads
    try:
        swept = await sweep_exports()  # the live server's own sweeper may get there first: same outcome
    finally:
        await close_queue()
    assert swept["rewoken"] == 1 or (await fetch_rows(
        DATABASE_URL, "SELECT attempt FROM package_export WHERE id = $1", export_id))[0]["attempt"] == 1
    row = await finished(export_id)
    assert row["status"] == "SUCCEEDED" and row["attempt"] == 1
