"""Accessibility (issue 9, item 10): axe-core finds no serious or critical violation on the main admin and
learner pages, at desktop and phone widths.

axe-core comes from npm (a devDependency; `make setup` runs `npm ci`) and is read from node_modules. The
strict CSP refuses injected <script> tags, so its source goes in through page.evaluate, which the CSP does
not apply to. One world for the module (a course published twice, a draft waiting for review, an
enrolled reader with a quiz attempt, a course on sale and a purchase) and one signed-in browser context per width."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from app.audit.services import Actor
from app.authoring.tables import ContentItem
from app.billing import services as billing
from tests.browser.conftest import DESKTOP, PHONE, shot, sign_in
from tests.conftest import ROOT, Client, LiveServer, Persona, make_member, make_tenant, start_server
from tests.publishing.helpers import new_quiz_approved, published_course

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}


@dataclass
class World:
    admin: Persona
    course: uuid.UUID
    draft_id: uuid.UUID
    paid_course: uuid.UUID  # on sale, not bought: the catalog and its overview show the store
    purchase_id: uuid.UUID  # the admin bought `course` too (sandbox): its purchase page


async def _draft_quiz(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, lesson_index: int) -> uuid.UUID:
    """A regenerated quiz waiting for review, as a reviewer's "regenerate" leaves it."""
    from app.authoring import generation

    old = await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus_id) & (ContentItem.kind == "QUIZ") & (ContentItem.module_index == 1)
        & (ContentItem.lesson_index == lesson_index) & (ContentItem.status == "APPROVED")).first()
    new = (await ContentItem.insert(ContentItem(
        tenant_id=tenant_id, syllabus_id=syllabus_id, kind="QUIZ", module_index=1, lesson_index=lesson_index,
        title=old["title"], supersedes_id=old["id"], instruction="harder questions", status="QUEUED",
    )).returning(ContentItem.id))[0]
    await generation.run_item_generation(new["id"])
    return new["id"]


@pytest.fixture(scope="module")
async def world(live_server: LiveServer, migrated) -> World:
    tenant = await make_tenant("Access")
    admin = await make_member(tenant, "admin", "abby")
    client = Client(live_server.url)
    try:
        await client.login(admin.email)
        syllabus, _v1 = await published_course(client)
        personas = SimpleNamespace(acme=tenant, admin=admin)
        await new_quiz_approved(personas, syllabus)
        assert (await client.post(f"/admin/syllabi/{syllabus['id']}/publish")).status_code == 303  # version 2
        draft_id = await _draft_quiz(tenant["id"], syllabus["id"], lesson_index=2)
        # The admin reads the course too: enrolled, with one quiz attempt.
        assert (await client.post(f"/learn/{syllabus['id']}/enroll")).status_code == 303
        answers = {"q0": "0", "q1": "1", "rendered_at": "0"}
        assert (await client.post(f"/learn/{syllabus['id']}/lesson/1/quiz", answers)).status_code == 200
        # The store: one course on sale, and the course above bought as well (a purchase page to check).
        paid, _package = await published_course(client, title="Spreadsheet Formulas")
        actor = Actor(admin.user_id, admin.email)
        for course_id in (paid["id"], syllabus["id"]):
            product = await billing.create_product(tenant["id"], course_id, billing.ProductForm(
                "Course access", "49.00", "EUR"), actor=actor)
        bought = await client.post(f"/learn/store/products/{product['id']}/buy")
        assert bought.status_code == 303, bought.text[:300]
        purchase_id = bought.headers["location"].rsplit("/", 1)[1]
    finally:
        await client.aclose()
    return World(admin, syllabus["id"], draft_id, paid["id"], purchase_id)


@pytest.fixture(scope="module")
async def contexts(browser: Browser, live_server: LiveServer, world: World) -> AsyncIterator[dict[str, Page]]:
    opened: list[BrowserContext] = []
    pages = {}
    for name, viewport in WIDTHS.items():
        context = await browser.new_context(base_url=live_server.url, viewport=viewport)
        context.set_default_timeout(10_000)
        opened.append(context)
        page = await context.new_page()
        await sign_in(page, world.admin.email, landing="/admin")
        pages[name] = page
    yield pages
    for context in opened:
        await context.close()


async def _quiz_feedback(page: Page, world: World) -> None:
    await page.goto(f"/learn/{world.course}/lesson/2")
    fieldsets = page.locator(".quiz-form fieldset")
    for i in range(await fieldsets.count()):
        await fieldsets.nth(i).locator("label.quiz-choice").first.click()
    await page.get_by_role("button", name="Check answers").click()
    await expect(page.locator(".quiz-score")).to_be_visible()


PAGES = {
    "dashboard": "/admin",
    "review-queue": "/admin/review",
    "review-item": "/admin/items/{draft_id}",
    "syllabus": "/admin/syllabi/{course}",
    "versions": "/admin/packages/{course}",
    "version-diff": "/admin/packages/{course}/diff?a=1&b=2",
    "catalog": "/learn",
    "lesson": "/learn/{course}/lesson/1",
    "quiz-feedback": _quiz_feedback,
    "project": "/learn/{course}/module/1/project",
    "paid-overview": "/learn/{paid_course}",
    "purchase": "/learn/purchases/{purchase_id}",
}


async def _axe(page: Page) -> list[dict]:
    # What is folded away (unchanged rows of a diff, JSON viewers, explanations) is checked too.
    await page.evaluate("document.querySelectorAll('main details').forEach(d => { d.open = true; })")
    await page.evaluate(AXE.read_text() + "\n;0")
    return await page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(" ") + (n.failureSummary ? "  [" + n.failureSummary
                .replace(/\\s+/g, " ").slice(0, 240) + "]" : ""))}));
    }""")


def _report(name: str, found: list[dict]) -> str:
    lines = [f"{name}: {len(found)} serious or critical axe violation(s)"]
    for v in found:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
        lines.extend(f"    {node}" for node in v["nodes"][:8])
    return "\n".join(lines)


def test_it_has_axe_core_from_npm():
    assert AXE.exists(), "node_modules/axe-core is missing: run `make setup` (npm ci installs devDependencies)"


@pytest.fixture(scope="module")
def demo_server(migrated) -> Iterator[LiveServer]:
    """A server of a demo install: its login page lists the demo accounts."""
    server = start_server("axe-demo", SEED_DEMO="true")
    yield server
    server.stop()


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_the_login_page_has_no_serious_violation(browser: Browser, demo_server: LiveServer, width):
    context = await browser.new_context(base_url=demo_server.url, viewport=WIDTHS[width])
    try:
        page = await context.new_page()
        await page.goto("/login")
        await expect(page.locator(".demo-logins")).to_be_visible()
        found = [v for v in await _axe(page) if v["impact"] in BLOCKING]
        await shot(page, f"axe-login-{width}")
        assert not found, _report(f"login at {width}", found)
    finally:
        await context.close()


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("name", list(PAGES))
async def test_the_page_has_no_serious_violation(contexts, world: World, name: str, width: str):
    page = contexts[width]
    target = PAGES[name]
    if callable(target):
        await target(page, world)
    else:
        response = await page.goto(target.format(course=world.course, draft_id=world.draft_id,
                                                 paid_course=world.paid_course, purchase_id=world.purchase_id))
        assert response.ok, f"{name}: {response.status}"
    violations = await _axe(page)
    # Blocking impacts everywhere; and the heading outline (moderate) as well, which the learner pages once
    # broke by putting the content's section headings two levels under the page's h1.
    found = [v for v in violations if v["impact"] in BLOCKING or v["id"] == "heading-order"]
    await shot(page, f"axe-{name}-{width}")
    assert not found, _report(f"{name} at {width}", found)
