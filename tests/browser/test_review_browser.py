"""Review at speed in a real browser: "Approve and next" and the `a` shortcut walk a course's drafts; bulk
approve from the queue through one confirmation; an htmx 400 shows the server's message inside the form
that sent it, with what was typed and ticked still there.

Screenshots: test-artifacts/screenshots/review-*.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from app.authoring.tables import ContentItem
from tests.authoring.helpers import approved_syllabus
from tests.authoring.test_review_speed import _drafts, _statuses
from tests.browser.conftest import PHONE, page_overflow, shot, sign_in

pytestmark = pytest.mark.browser


async def _course(client, personas, count: int, title: str) -> tuple[dict, list[dict]]:
    await client.login(personas.admin.email)
    syllabus = await approved_syllabus(client, title=title)
    return syllabus, await _drafts(syllabus, personas.acme["id"], count)


async def test_approve_and_next_walks_through_the_waiting_items(page: Page, client, personas):
    syllabus, items = await _course(client, personas, 4, "Review walk for designers")
    await sign_in(page, personas.admin.email, landing="/admin")
    await page.goto(f"/admin/items/{items[0]['id']}")
    await expect(page.locator(".review-position")).to_have_text("Item 1 of 4 waiting")
    await shot(page, "review-item-first")

    # The button: approving opens the next waiting item.
    await page.get_by_role("button", name="Approve and next").click()
    await page.wait_for_url(re.compile(rf"/admin/items/{items[1]['id']}$"))
    await expect(page.locator(".flash-success")).to_contain_text(f"Approved: {items[0]['title']}.")
    await expect(page.locator(".review-position")).to_have_text("Item 1 of 3 waiting")

    # The keyboard: "?" opens the documented list, "j" skips, "a" approves and moves on.
    help_list = page.locator("details[data-shortcuts-help]")
    await expect(help_list).not_to_have_attribute("open", "")
    await page.keyboard.press("?")
    await expect(help_list).to_have_attribute("open", "")
    await expect(help_list.locator("kbd", has_text="a")).to_be_visible()
    await shot(page, "review-item-shortcuts")
    await page.keyboard.press("j")
    await page.wait_for_url(re.compile(rf"/admin/items/{items[2]['id']}$"))
    await page.keyboard.press("k")
    await page.wait_for_url(re.compile(rf"/admin/items/{items[1]['id']}$"))
    await page.keyboard.press("e")  # edit by hand
    await page.wait_for_url(re.compile(rf"/admin/items/{items[1]['id']}/edit$"))
    await page.go_back()
    await page.wait_for_url(re.compile(rf"/admin/items/{items[1]['id']}$"))
    # "r" puts the cursor in the reason; letters typed there are text, not shortcuts.
    await page.keyboard.press("r")
    await expect(page.get_by_label("Reason")).to_be_focused()
    await page.keyboard.type("a j")
    await expect(page.get_by_label("Reason")).to_have_value("a j")
    assert page.url.endswith(f"/admin/items/{items[1]['id']}")
    await page.get_by_label("Reason").blur()
    await page.keyboard.press("a")
    await page.wait_for_url(re.compile(rf"/admin/items/{items[2]['id']}$"))
    await page.keyboard.press("a")
    await page.wait_for_url(re.compile(rf"/admin/items/{items[3]['id']}$"))
    await page.keyboard.press("a")
    # Nothing left: back to the course's queue, which says so.
    await page.wait_for_url(re.compile(rf"/admin/review\?syllabus={syllabus['id']}"))
    await expect(page.locator(".flash-success")).to_contain_text("Nothing left to review in Review walk for designers")
    await expect(page.locator(".empty-state")).to_contain_text("Nothing is waiting for review here.")
    await shot(page, "review-queue-done")
    assert await _statuses(items) == ["APPROVED"] * 4


async def test_bulk_approve_from_the_queue_asks_once(page: Page, client, personas):
    syllabus, items = await _course(client, personas, 12, "Bulk review for designers")
    await sign_in(page, personas.admin.email, landing="/admin")
    await page.goto(f"/admin/review?syllabus={syllabus['id']}")
    rows = page.locator("#review-table tbody tr")
    await expect(rows).to_have_count(12)
    await expect(page.get_by_label("Status")).to_have_value("DRAFT")
    await expect(page.get_by_label("Status").locator("option:checked")).to_have_text("Waiting for review (12)")

    await page.get_by_label("Select every waiting item on this page").check()
    await page.get_by_label(f"Select {items[0]['title']}", exact=True).uncheck()
    await expect(page.locator("[data-selected-count]")).to_have_text("11 selected")
    await shot(page, "review-queue-selected")

    # "No" changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    await page.get_by_role("button", name="Approve selected").click()
    await expect(page.locator("[data-selected-count]")).to_have_text("11 selected")
    assert await _statuses(items) == ["DRAFT"] * 12

    dialogs: list[str] = []

    async def accept(dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    await page.get_by_role("button", name="Approve selected").click()
    await expect(page.locator("#review-table .flash-success")).to_have_text("Approved 11.")
    page.remove_listener("dialog", accept)
    assert dialogs == ["Approve 11 items? Approval cannot be undone."]
    # The queue refreshed in place: one item still waits, the counts follow.
    await expect(rows).to_have_count(1)
    await expect(page.get_by_label("Status").locator("option:checked")).to_have_text("Waiting for review (1)")
    assert page.url.endswith(f"/admin/review?syllabus={syllabus['id']}")
    await shot(page, "review-queue-bulk-approved")
    assert await _statuses(items) == ["DRAFT"] + ["APPROVED"] * 11


async def test_an_htmx_400_shows_the_message_in_the_form_and_keeps_the_input(page: Page, client, personas):
    syllabus, items = await _course(client, personas, 3, "Bulk refusals for designers")
    await sign_in(page, personas.admin.email, landing="/admin")
    await page.goto(f"/admin/review?syllabus={syllabus['id']}")
    form = page.locator("form#bulk-form")
    message = form.locator("#bulk-error")
    await expect(message).to_be_hidden()

    # A reason typed, but nothing ticked: the server's 400 appears in the form, the reason stays.
    await page.get_by_label("Note").fill("Too abstract for a first cohort")
    await page.get_by_role("button", name="Reject selected").click()
    await expect(message).to_have_text("Select the items to reject first: tick their boxes in the table.")
    await expect(message).to_be_focused()
    await expect(page.get_by_label("Note")).to_have_value("Too abstract for a first cohort")
    await expect(page.locator("#toasts .toast")).to_have_count(0)

    # Two ticked and no reason: asked once, then refused in place; the ticks stay.
    await page.get_by_label("Note").fill("")
    for item in items[:2]:
        await page.get_by_label(f"Select {item['title']}", exact=True).check()
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Reject selected").click()
    await expect(message).to_contain_text("Rejecting needs a reason")
    for item in items[:2]:
        await expect(page.get_by_label(f"Select {item['title']}", exact=True)).to_be_checked()
    await shot(page, "review-queue-htmx-400")
    assert await _statuses(items) == ["DRAFT"] * 3

    # With the reason the same form goes through, and the message of the refusal is gone.
    await page.get_by_label("Note").fill("Too abstract for a first cohort")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Reject selected").click()
    await expect(page.locator("#review-table .flash-success")).to_have_text("Rejected 2.")
    await expect(page.locator("#bulk-error")).to_be_hidden()
    assert await _statuses(items) == ["REJECTED"] * 2 + ["DRAFT"]
    rows = await ContentItem.select(ContentItem.rejection_reason).where(
        ContentItem.id.is_in([item["id"] for item in items[:2]]))
    assert {row["rejection_reason"] for row in rows} == {"Too abstract for a first cohort"}


async def test_the_queue_and_an_item_fit_a_phone(new_context, client, personas):
    syllabus, items = await _course(client, personas, 3, "Phone review for designers")
    context = await new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = await context.new_page()
    await sign_in(page, personas.admin.email, landing="/admin")
    await page.goto(f"/admin/review?syllabus={syllabus['id']}")
    await expect(page.locator("#review-table tbody tr")).to_have_count(3)
    assert await page_overflow(page) == 0
    await shot(page, "review-phone-queue")
    await page.goto(f"/admin/items/{items[1]['id']}")
    await expect(page.locator(".review-position")).to_have_text("Item 2 of 3 waiting")
    assert await page_overflow(page) == 0
    await shot(page, "review-phone-item")


async def test_a_refused_action_shows_its_message_on_the_page_it_came_from(page: Page, client, personas):
    syllabus, items = await _course(client, personas, 2, "Refusals in place for designers")
    await sign_in(page, personas.admin.email, landing="/admin")
    await page.goto(f"/admin/items/{items[0]['id']}")
    # Someone else approves it meanwhile; this page's button is now out of date.
    assert (await client.post(f"/admin/items/{items[0]['id']}/approve", {"note": ""})).status_code == 303
    await page.get_by_role("button", name="Approve", exact=True).click()
    await page.wait_for_url(re.compile(rf"/admin/items/{items[0]['id']}$"))
    await expect(page.locator(".flash-error")).to_have_text("Only a draft can be approved; this item is approved.")
    await expect(page.locator(".status-note-approved")).to_be_visible()  # and the page shows why
    await shot(page, "review-refused-in-place")

    # The brief form: the server's rule (5 characters once trimmed) named beside the field, input kept.
    await page.goto("/admin/courses/new")
    await page.get_by_label("Course title").fill("   Git   ")
    await page.get_by_label("Target audience").fill("designers who hand off files by email")
    await page.get_by_role("button", name="Draft the syllabus").click()
    title = page.get_by_label("Course title")
    await expect(title).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#brief-title-error")).to_have_text("Must be at least 5 characters long.")
    await expect(page.locator(".flash-error")).to_have_text(
        "Check the course brief: Course title must be at least 5 characters long.")
    await expect(page.get_by_label("Target audience")).to_have_value("designers who hand off files by email")
    await shot(page, "review-brief-field-error")

    # An error page offers the way back to where the person was.
    site = page.url.split("/admin/")[0]
    response = await page.goto("/admin/review?kind=VIDEO", referer=f"{site}/admin/review?status=ALL")
    assert response.status == 400
    await expect(page.locator(".error-actions").get_by_role("button", name="Back to the review queue")).to_be_visible()
    await shot(page, "review-error-page-way-back")
