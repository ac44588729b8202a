"""Suggestions in a browser: the admin header with its section links (twelve with Improve) on one row at 1280
and 1440 px, the Improve list and a suggestion's page, and the "Suggested actions" panel that htmx loads into the course
analytics page. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from playwright.async_api import expect

from app.insights import services as insights
from tests.browser.conftest import DESKTOP, browser, new_context, page_overflow, shot, sign_in  # noqa: F401
from tests.conftest import DATABASE_URL, Client, fetch_rows, make_member, make_tenant
from tests.publishing.helpers import published_course

WIDE = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
async def world(live_server):
    tenant = await make_tenant("Northwind")
    admin = await make_member(tenant, "admin", "ada")
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, _package = await published_course(client)
    await client.aclose()
    # A signal as the nightly rule writes it (figures and thresholds), then the real suggestion step.
    today = dt.datetime.now(dt.UTC).date()
    conn_rows = await fetch_rows(
        DATABASE_URL,
        "INSERT INTO analytics_signal (id, tenant_id, course_id, signal_type, lesson_index, severity, day, "
        "window_start, window_end, metrics, thresholds, summary, status, created_at) VALUES ($1, $2, $3, "
        "'high_drop_off', 2, 'high', $4::date, $4::date - 6, $4::date, $5::jsonb, $6::jsonb, "
        "'Lesson 2 loses 62% of the learners.', 'OPEN', now()) RETURNING id",
        uuid.uuid4(), tenant["id"], syllabus["id"], today,
        json.dumps({"viewers_before": 40, "viewers": 15, "drop_off_rate": 0.625}),
        json.dumps({"drop_off_rate": 0.4, "min_learners": 20, "window_days": 7}))
    summary = await insights.suggest_from_signals(today)
    assert summary["suggestions_created"] >= 1
    [suggestion] = await fetch_rows(DATABASE_URL, "SELECT * FROM content_suggestion WHERE source_signal_id = $1",
                                    conn_rows[0]["id"])
    return {"admin": admin, "syllabus": syllabus, "suggestion": suggestion}


async def _one_row(page) -> None:
    links = page.locator("header .nav-links a")
    count = await links.count()
    assert count >= 12  # Improve made twelve (Quality came next)
    boxes = [await links.nth(i).bounding_box() for i in range(count)]
    assert len({round(box["y"]) for box in boxes}) == 1, boxes
    account = await page.locator("header .nav-account").bounding_box()
    assert boxes[-1]["x"] + boxes[-1]["width"] <= account["x"], (boxes[-1], account)
    assert abs(account["y"] - boxes[0]["y"]) < 20
    assert await page_overflow(page) == 0


async def test_the_admin_header_keeps_every_link_on_one_row_at_1280_and_1440(new_context, world):  # noqa: F811
    for viewport, name in ((DESKTOP, "header-improve-1280"), (WIDE, "header-improve-1440")):
        page = await (await new_context(viewport)).new_page()
        await sign_in(page, world["admin"].email, landing="/admin")
        await shot(page, name)
        await _one_row(page)


async def test_an_admin_reviews_a_suggestion_from_the_analytics_panel(new_context, world):  # noqa: F811
    page = await (await new_context(DESKTOP)).new_page()
    await sign_in(page, world["admin"].email, landing="/admin")
    suggestion = world["suggestion"]
    await page.goto(f"/admin/analytics?course={world['syllabus']['id']}")
    panel = page.locator("#suggested-actions")
    await expect(panel.get_by_role("link", name="Review")).to_be_visible()
    await expect(panel).to_contain_text("loses 62%")
    await panel.scroll_into_view_if_needed()
    await shot(page, "suggestions-analytics-panel")
    await panel.get_by_role("link", name="Review").click()
    await page.wait_for_url(f"**/admin/suggestions/{suggestion['id']}")
    await expect(page.locator(".section-tabs a[aria-current=page]")).to_have_text("Suggestions")
    await expect(page.get_by_label("Create a regeneration job for this lesson")).to_be_checked()
    await expect(page.get_by_text("Estimated cost")).to_be_visible()
    assert await page_overflow(page) == 0
    await shot(page, "suggestion-detail")
    await page.locator(".accept-form").get_by_role("button", name="Accept").click()  # no note: the browser asks
    assert (await fetch_rows(DATABASE_URL, "SELECT status FROM content_suggestion WHERE id = $1",
                             suggestion["id"]))[0]["status"] == "OPEN"
    await page.goto("/admin/suggestions")
    await expect(page.locator(f"#suggestion-{suggestion['id']}")).to_contain_text("High severity")
    assert await page_overflow(page) == 0
    await shot(page, "suggestions-list")
