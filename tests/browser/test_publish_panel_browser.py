"""The publish panel in a real browser: disabled while something is unapproved, with a link to each item; once the
rest is approved it offers version 1; after publishing it says nothing changed and offers no button.

Screenshots: test-artifacts/screenshots/publish-panel-*.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from app.authoring.tables import ContentItem
from app.publishing.tables import CoursePackageRow
from tests.authoring.helpers import generated_content
from tests.browser.conftest import SCREENSHOTS, page_overflow, shot, sign_in
from tests.publishing.helpers import approve_everything

pytestmark = pytest.mark.browser


async def _panel_shot(page: Page, name: str) -> None:
    """The panel on screen (a full page from the top would be mostly outline)."""
    assert await page_overflow(page) == 0, f"{name}: the page is wider than the screen"
    await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, name)
    await page.locator("#publish").screenshot(path=SCREENSHOTS / f"{name}-panel.png")


async def test_the_publish_panel_leads_from_unapproved_to_published(new_context, client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    syllabus_id = str(syllabus["id"])
    assert (await client.post(f"/admin/syllabi/{syllabus_id}/modules/1/approve", {"note": ""})).status_code == 303
    drafts = await ContentItem.select(ContentItem.id).where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.status == "DRAFT"))

    page = await (await new_context()).new_page()
    await sign_in(page, personas.admin.email, landing="/admin")
    await page.goto(f"/admin/syllabi/{syllabus_id}")
    panel = page.locator("#publish")
    await expect(panel.get_by_role("heading", name="Publish")).to_be_visible()
    button = panel.get_by_role("button", name="Publish version 1")
    await expect(button).to_be_disabled()
    await expect(panel.locator(".publish-missing li")).to_have_count(len(drafts))
    await expect(panel.locator(".publish-missing .badge").first).to_have_text("Draft, waiting for review")
    await _panel_shot(page, "publish-panel-unapproved")

    # Each listed item opens its own page.
    first = panel.locator(".publish-missing a").first
    href = await first.get_attribute("href")
    assert href and re.fullmatch(r"/admin/items/[0-9a-f-]{36}", href)
    await first.click()
    await page.wait_for_url(re.compile(re.escape(href) + "$"))
    await expect(page.get_by_role("heading", level=1)).to_be_visible()

    # The rest approved: version 1 is offered and publishes.
    await approve_everything(client, syllabus["id"])
    await page.goto(f"/admin/syllabi/{syllabus_id}")
    await expect(panel.locator(".publish-missing")).to_have_count(0)
    await expect(panel).to_contain_text("Every lesson, quiz and project is approved.")
    await _panel_shot(page, "publish-panel-ready")
    await panel.get_by_role("button", name="Publish version 1").click()
    await page.wait_for_url(re.compile(rf"/admin/packages/{syllabus_id}$"))
    await expect(page.locator(".flash-success").first).to_contain_text("Published version 1")
    assert await CoursePackageRow.count().where(CoursePackageRow.syllabus_id == syllabus["id"]) == 1

    # Back on the syllabus: nothing changed, so no button, and the way to revise content instead.
    await page.goto(f"/admin/syllabi/{syllabus_id}")
    await expect(panel).to_contain_text("Nothing changed since version 1")
    await expect(panel.get_by_role("button")).to_have_count(0)
    await expect(panel.get_by_role("link", name="Revise content →")).to_have_attribute(
        "href", f"/admin/review?syllabus={syllabus_id}&status=APPROVED")
    await _panel_shot(page, "publish-panel-unchanged")
