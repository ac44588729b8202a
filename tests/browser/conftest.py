"""Browser fixtures: Debian chromium driven by Playwright's async API against the live server.

One chromium process for the whole session; a fresh context (cookies, viewport) per test. Every page a
test visits is saved as a full-page screenshot under test-artifacts/screenshots/ for visual review.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.conftest import ARTIFACTS, PASSWORD, LiveServer

SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these chromium reaches for the network on start and stalls on this closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class PageErrors(list):
    """Uncaught JavaScript errors seen by any page of a context; a test fails if one occurred."""


@pytest.fixture
async def new_context(browser: Browser, live_server: LiveServer) -> AsyncIterator[Callable]:
    contexts: list[tuple[BrowserContext, PageErrors]] = []

    async def make(viewport: dict | None = None, **kwargs) -> BrowserContext:
        context = await browser.new_context(base_url=live_server.url, viewport=viewport or DESKTOP, **kwargs)
        context.set_default_timeout(10_000)
        errors = PageErrors()
        context.on("page", lambda page: page.on("pageerror", lambda exc: errors.append(str(exc))))
        contexts.append((context, errors))
        return context

    yield make
    problems = []
    for context, errors in contexts:
        problems.extend(errors)
        await context.close()
    assert not problems, f"uncaught JavaScript errors: {problems}"


@pytest.fixture
async def page(new_context) -> Page:
    context = await new_context()
    return await context.new_page()


async def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def sign_in(page: Page, email: str, password: str = PASSWORD, *, landing: str) -> None:
    """Use the real login form, then wait for the page the role lands on."""
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(rf"{re.escape(landing)}$"))


async def page_overflow(page: Page) -> int:
    """How many CSS pixels the document is wider than the viewport (0 when nothing scrolls sideways)."""
    return await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
