"""Finding 3 in a real browser: the Content-Security-Policy refuses nothing on our own pages (every script
and style is a static file, htmx injects no style), and an htmx error that echoes markup is shown as text."""

from __future__ import annotations

import re

from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import sign_in
from tests.publishing.helpers import published_course

# Runs before any page script (Playwright injects it outside the page's CSP) and records every violation.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} in ${where}`);
});
"""

ADMIN_PAGES = ["/admin", "/admin/courses", "/admin/courses/new", "/admin/review", "/admin/packages",
               "/admin/members", "/admin/audit", "/admin/ai-usage", "/schema"]


async def watched_page(context: BrowserContext) -> tuple[Page, list[str]]:
    await context.add_init_script(RECORD_VIOLATIONS)
    page = await context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
    return page, console


async def violations(page: Page, console: list[str]) -> list[str]:
    recorded = await page.evaluate("window.__cspViolations")
    return recorded + [text for text in console if "Content Security Policy" in text]


async def test_it_shows_admin_pages_without_a_csp_violation(new_context, personas):
    page, console = await watched_page(await new_context())
    await page.goto("/login")
    assert await violations(page, console) == []
    await sign_in(page, personas.admin.email, landing="/admin")
    problems = {}
    for path in ADMIN_PAGES:
        await page.goto(path)
        await page.wait_for_load_state("networkidle")
        if found := await violations(page, console):
            problems[path] = found
        console.clear()
    assert problems == {}
    await expect(page.locator("#swagger-ui .info .title")).to_contain_text("Coursewright")  # the docs UI ran


async def test_it_shows_course_pages_and_htmx_swaps_without_a_csp_violation(new_context, client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)  # real content: Markdown, outlines, quizzes
    course = syllabus["id"]
    admin, admin_console = await watched_page(await new_context())
    await sign_in(admin, personas.admin.email, landing="/admin")
    for path in [f"/admin/syllabi/{course}", f"/admin/packages/{course}", f"/admin/packages/{course}/v/1"]:
        await admin.goto(path)
        await admin.wait_for_load_state("networkidle")
        assert await violations(admin, admin_console) == [], path

    page, console = await watched_page(await new_context())
    await sign_in(page, personas.learner.email, landing="/learn")
    await page.locator(f"#course-{course}").get_by_role("button", name="Enroll").click()
    await page.wait_for_url(re.compile(rf"/learn/{course}$"))
    await page.get_by_role("button", name="Start the course").click()
    await page.wait_for_url(re.compile(rf"/learn/{course}/lesson/1$"))
    await page.get_by_role("button", name="Next →").click()  # an htmx swap with a pushed URL
    await page.wait_for_url(re.compile(rf"/learn/{course}/lesson/2$"))
    await page.wait_for_load_state("networkidle")
    assert await violations(page, console) == []
    # htmx is loaded and configured to inject no indicator <style>.
    assert await page.evaluate("window.htmx.config.includeIndicatorStyles") is False
    assert await page.evaluate("document.querySelectorAll('style').length") == 0
    # The watch itself works: an injected inline style is refused and recorded.
    await page.evaluate("document.head.append(Object.assign(document.createElement('style'), {textContent: 'a{}'}))")
    await page.wait_for_function("window.__cspViolations.length > 0")
    assert "style-src" in (await violations(page, console))[0]


async def test_it_shows_an_htmx_error_that_echoes_markup_as_text(new_context, personas):
    page, console = await watched_page(await new_context())
    await sign_in(page, personas.admin.email, landing="/admin")
    await page.goto("/admin/review")
    await page.evaluate("htmx.ajax('GET', '/admin/review?kind=' + encodeURIComponent('<i>x</i>'), "
                        "{target: '#review-table', swap: 'outerHTML'})")
    toast = page.locator("#toasts .toast")
    await expect(toast).to_contain_text("400 · ")
    await expect(toast).to_contain_text("<i>x</i>")  # the characters, shown as text
    assert await page.locator("#toasts i").count() == 0  # never as markup
    assert await violations(page, console) == []
