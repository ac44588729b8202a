"""The demo learner buys the demo's paid course in a real browser (sandbox store), lands in the course and reads
lesson 1; a refund then ends the access and the overview offers to buy it again."""

import re

import pytest
from playwright.async_api import Page, expect

from app.billing.tables import Purchase
from app.demo import DEMO_PASSWORD, DEMO_USERS, PAID_BRIEF, seed_demo
from app.player.tables import Enrollment
from tests.billing import stripe_fake
from tests.browser.conftest import shot, sign_in

pytestmark = pytest.mark.browser
LEARNER = DEMO_USERS[2][0]


@pytest.fixture
async def demo() -> None:
    await seed_demo()  # idempotent: another test may have seeded it already


async def test_a_learner_buys_the_demo_course_and_reads_it(page: Page, demo, live_server):
    await sign_in(page, LEARNER, DEMO_PASSWORD, landing="/learn")
    card = page.locator("article.course-card", has_text=PAID_BRIEF["title"])
    await expect(card.locator(".price-tag")).to_have_text(re.compile(r"€49\.00"))
    await expect(card.get_by_text("Demo store: no card is charged.")).to_be_visible()
    await shot(page, "store-catalog")

    await card.get_by_role("link", name=PAID_BRIEF["title"]).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(PAID_BRIEF["title"])
    await expect(page.locator(".price-figure")).to_contain_text("€49.00")
    await shot(page, "store-paid-overview")

    await page.get_by_role("button", name="Buy for €49.00").click()
    await page.wait_for_url(re.compile(r"/learn/purchases/[0-9a-f-]{36}$"))
    await expect(page.get_by_text("You are enrolled.")).to_be_visible()
    await expect(page.locator(".purchase-facts")).to_contain_text("Demo store, no card charged")
    await shot(page, "store-purchase")
    purchase = await Purchase.select().where(Purchase.id == page.url.rsplit("/", 1)[1]).first()
    assert (purchase["status"], purchase["amount_minor"], purchase["currency"]) == ("PAID", 4900, "EUR")

    await page.get_by_role("button", name="Start the course").click()
    await page.wait_for_url(re.compile(rf"/learn/{purchase['syllabus_id']}/lesson/1$"))
    await expect(page.locator("main h1")).to_be_visible()
    await expect(page.locator(".lesson-body, main article").first).to_be_visible()
    enrollment = await Enrollment.select().where(
        (Enrollment.user_id == purchase["user_id"]) & (Enrollment.syllabus_id == purchase["syllabus_id"])).first()
    assert enrollment["purchase_id"] == purchase["id"] and enrollment["revoked_at"] is None
    await shot(page, "store-lesson-1")

    refund = stripe_fake.charge_refunded(purchase, purchase["stripe_payment_intent_id"])
    assert (await stripe_fake.post_event(live_server.url, refund)).status_code == 200
    await page.goto(f"/learn/{purchase['syllabus_id']}")
    await expect(page.locator(".access-ended")).to_contain_text("when the purchase was refunded")
    await expect(page.get_by_role("button", name="Buy again")).to_be_visible()
    await shot(page, "store-refunded-overview")
