"""Outline edit before approval in a real browser: rename a lesson, move a module, add a lesson, remove a
lesson, see a mistake beside its field, save, read what changed, and approve through the confirmation.

Screenshots: test-artifacts/screenshots/outline-*.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from app.authoring.tables import Syllabus
from tests.authoring.helpers import draft_syllabus
from tests.browser.conftest import PHONE, page_overflow, shot, sign_in

pytestmark = pytest.mark.browser

UUID = r"[0-9a-f-]{36}"


async def _shot(page: Page, name: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, name)


async def test_an_admin_edits_a_draft_outline_compares_and_approves_it(page: Page, client, personas, new_context):
    await client.login(personas.admin.email)
    draft = await draft_syllabus(client)
    await sign_in(page, personas.admin.email, landing="/admin")
    await page.goto(f"/admin/syllabi/{draft['id']}")
    await page.locator("#review").get_by_role("button", name="Edit outline").click()
    await page.wait_for_url(re.compile(rf"/admin/syllabi/{draft['id']}/edit$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Edit the outline")
    module_1 = await page.locator("#module-m1-title").input_value()
    module_2 = await page.locator("#module-m2-title").input_value()
    removed = await page.locator("#lesson-m1l2-title").input_value()

    # A mistake first: the message sits beside the field and everything typed stays.
    await page.locator("#lesson-m1l1-title").fill("Git")
    await page.locator("#module-m1-position").fill("2")
    await page.locator("#module-m2-position").fill("1")
    await page.get_by_role("button", name="Save as a new revision").first.click()
    await expect(page.locator("#outline-problems")).to_contain_text("Module 1, lesson 1 › Title: must be at least 5")
    await expect(page.locator("#lesson-m1l1-title-error")).to_have_text("must be at least 5 characters long")
    await expect(page.locator("#lesson-m1l1-title")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#module-m1-position")).to_have_value("2")
    await _shot(page, "outline-edit-error")

    # Rename a lesson, add one, remove one (the module move is still typed in).
    await page.locator("#outline-problems a").first.click()
    await expect(page.locator("#lesson-m1l1-title")).to_be_focused()
    await page.locator("#lesson-m1l1-title").fill("Why designers keep versions")
    await page.locator("#lesson-m1x1-title").fill("Undoing a change you regret")
    await page.locator("#lesson-m1x1-minutes").fill("20")
    await page.locator("#lesson-m1x1-objectives").fill("Revert a commit from the history\nExplain what a revert keeps")
    await page.locator("#lesson-m1x1-hooks").fill("Revert a broken mock-up in the practice repository")
    await page.locator("#lesson-m1l2").get_by_label("Remove lesson").check()
    await _shot(page, "outline-edit")
    await page.get_by_role("button", name="Save as a new revision").first.click()

    # The new draft: a flash, its outline, and what changed (loaded into the page by htmx).
    await page.wait_for_url(re.compile(rf"/admin/syllabi/{UUID}#changes$"))
    new_id = re.search(rf"/admin/syllabi/({UUID})", page.url).group(1)
    assert new_id != str(draft["id"])
    await expect(page.locator(".flash-success")).to_contain_text("Saved as revision 2")
    await expect(page.locator("h1")).to_contain_text("revision 2")
    changes = page.locator("#changes")
    await expect(changes.locator(".outline-diff-summary")).to_contain_text("1 lesson renamed")
    for words in ("1 module moved", "1 lesson added", "1 lesson removed"):
        await expect(changes.locator(".outline-diff-summary")).to_contain_text(words)
    await expect(page.locator("article.outline .outline-module h3").first).to_have_text(module_2)
    await expect(page.locator("article.outline .outline-module h3").nth(1)).to_have_text(module_1)
    await _shot(page, "outline-new-revision")

    # The compare view on its own page: renamed with a word diff, moved, added, removed.
    await changes.get_by_role("link", name="Open the comparison on its own page").click()
    await page.wait_for_url(re.compile(rf"/admin/syllabi/{new_id}/compare\?with={draft['id']}$"))
    # A swap moves one of the two: the one now first, which was second.
    await expect(page.locator(".outline-diff-module", has_text=module_2).locator(".change-moved")).to_have_text(
        "moved from position 2")
    moved = page.locator(".outline-diff-module", has_text=module_1)
    renamed = moved.locator(".outline-diff-lesson", has_text="Why designers keep versions")
    await expect(renamed.locator(".change-renamed")).to_have_text("renamed")
    await expect(renamed.locator("ins").first).to_be_visible()
    await expect(moved.locator(".outline-diff-lesson.is-added")).to_contain_text("Undoing a change you regret")
    await expect(moved.locator(".outline-diff-lesson.is-removed")).to_contain_text(removed)
    await _shot(page, "outline-compare")

    # Approving asks first; dismissing changes nothing, accepting approves.
    await page.goto(f"/admin/syllabi/{new_id}")
    dialogs: list[str] = []

    async def dismiss(dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", dismiss)
    await page.get_by_role("button", name="Approve syllabus").click()
    await expect(page.get_by_role("button", name="Approve syllabus")).to_be_visible()
    assert len(dialogs) == 1 and "cannot be undone" in dialogs[0], dialogs
    assert (await Syllabus.select(Syllabus.status).where(Syllabus.id == new_id).first())["status"] == "DRAFT"
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Approve syllabus").click()
    await expect(page.locator(".flash-success").first).to_contain_text("Syllabus approved")
    assert (await Syllabus.select(Syllabus.status).where(Syllabus.id == new_id).first())["status"] == "APPROVED"
    await expect(page.get_by_role("link", name="Edit outline")).to_have_count(0)  # approved: no hand edit
    await _shot(page, "outline-approved")

    # Phones: the edit form and the comparison fit the width.
    phone = await (await new_context(viewport=PHONE)).new_page()
    await sign_in(phone, personas.admin.email, landing="/admin")
    await phone.goto(f"/admin/syllabi/{new_id}/compare")
    assert await page_overflow(phone) == 0
    await _shot(phone, "outline-compare-phone")
    other = await draft_syllabus(client, title="Practical Git for Illustrators")
    await phone.goto(f"/admin/syllabi/{other['id']}/edit")
    assert await page_overflow(phone) == 0
    await _shot(phone, "outline-edit-phone")
