"""Exports in a real browser: an admin exports the HTML site of a version from its page (HTMX progress until
the download link appears), and an enrolled learner downloads it from the course overview.

Screenshots: test-artifacts/screenshots/exports-*.png.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import expect

from app.exports.tables import PackageExport
from tests.browser.conftest import shot, sign_in
from tests.publishing.helpers import published_course

pytestmark = pytest.mark.browser


async def test_an_admin_and_a_learner_export_a_version(new_context, client, personas):
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)

    admin = await (await new_context()).new_page()
    await sign_in(admin, personas.admin.email, landing="/admin")
    await admin.goto(f"/admin/packages/{syllabus['id']}/v/{package['version']}")
    panel = admin.locator(".export-panel")
    await expect(panel.get_by_role("button", name="SCORM 1.2 (ZIP)")).to_be_visible()
    await expect(panel.get_by_label("PDF with answer key appendix")).to_be_visible()
    await panel.get_by_role("button", name="HTML site (ZIP)").click()
    link = admin.locator("#export-result").get_by_role("button", name="Download")
    await expect(link).to_be_visible()
    await expect(link).to_contain_text(f"-v{package['version']}-html.zip")
    await expect(admin.locator("#export-result .badge")).to_have_text("Ready")
    await shot(admin, "exports-admin-version")
    async with admin.expect_download() as download:
        await link.click()
    assert (await download.value).suggested_filename.endswith(f"-v{package['version']}-html.zip")

    # A failed export shows its error in words and a Try again button that rebuilds it.
    failed = uuid.uuid4()
    await PackageExport.raw(
        "INSERT INTO package_export (id, tenant_id, package_id, format, options, exporter_version, status, error, "
        "created_at, queued_at, attempt, lost_attempts) VALUES ({}, {}, {}, 'HTML', '{{}}'::jsonb, 'browser-failed', "
        "'FAILED', 'The HTML site could not be built: the worker ran out of disk', now(), now(), 1, 0)",
        failed, personas.acme["id"], package["id"])
    await admin.goto(f"/admin/exports/{failed}")
    await expect(admin.locator(".export-error")).to_contain_text("ran out of disk")
    await shot(admin, "exports-admin-failed")
    await admin.get_by_role("button", name="Try again").click()
    await expect(admin.get_by_role("button", name="Download")).to_be_visible()
    await shot(admin, "exports-admin-retried")

    # SCORM: the conformance report sits next to its download.
    await admin.goto(f"/admin/packages/{syllabus['id']}/v/{package['version']}")
    await admin.locator(".export-panel").get_by_role("button", name="SCORM 1.2 (ZIP)").click()
    await expect(admin.locator("#export-result").get_by_role("button", name="Download")).to_contain_text("-scorm.zip",
                                                                                                        timeout=30_000)
    await expect(admin.locator("#export-result .conformance-report summary")).to_have_text("SCORM conformance: valid")
    await admin.locator("#export-result .conformance-report summary").click()
    await shot(admin, "exports-admin-scorm")

    learner = await (await new_context()).new_page()
    await sign_in(learner, personas.learner.email, landing="/learn")
    await learner.goto(f"/learn/{syllabus['id']}")
    await learner.get_by_role("button", name="Enroll in this course").click()
    await learner.goto(f"/learn/{syllabus['id']}")
    block = learner.locator(".export-panel")
    await expect(block.get_by_role("heading", name="Download")).to_be_visible()
    await expect(block.get_by_role("button", name="SCORM 1.2 (ZIP)")).to_have_count(0)
    await block.get_by_role("button", name="HTML site (ZIP)").click()
    await expect(learner.locator("#export-result").get_by_role("button", name="Download")).to_be_visible()
    await shot(learner, "exports-learner-overview")
