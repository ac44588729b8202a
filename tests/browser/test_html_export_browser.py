"""The HTML export as someone who downloaded it reads it: unzipped into a folder, opened from file:// (no
server), clicked from the course outline to a lesson, on to the next lesson and to the module project."""

import io
import zipfile

from playwright.async_api import expect

from app.exports.site import build_html_zip
from tests.browser.conftest import DESKTOP, PHONE, shot
from tests.exports.sample import sample_package


async def test_it_reads_the_unzipped_export_from_file_urls(browser, tmp_path):
    package = sample_package(3)
    with zipfile.ZipFile(io.BytesIO(build_html_zip(package))) as archive:
        archive.extractall(tmp_path)
    first, second = package.lessons[0], package.lessons[1]
    context = await browser.new_context(viewport=DESKTOP)
    errors: list[str] = []
    try:
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        refused: list[str] = []  # the pages carry their own CSP: their own stylesheet must still load
        page.on("console", lambda message: refused.append(message.text) if "Content Security" in message.text else None)
        await page.goto((tmp_path / "index.html").as_uri())
        await expect(page.get_by_role("heading", level=1)).to_have_text(package.course.title)
        # The stylesheet applied: the page is not the browser's bare default serif.
        assert "system-ui" in await page.evaluate("getComputedStyle(document.body).fontFamily")
        await shot(page, "export-html-index")

        await page.get_by_role("link", name=first.lesson.title).click()
        await expect(page.get_by_role("heading", level=1)).to_have_text(first.lesson.title)
        assert page.url.endswith(f"/lessons/{first.index}.html")
        await expect(page.locator(".quiz-question")).to_have_count(len(first.quiz.questions))
        await expect(page.get_by_text(first.quiz.questions[0].explanation)).to_have_count(0)
        await shot(page, "export-html-lesson")

        await page.get_by_role("link", name="Lesson 2 →").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text(second.lesson.title)
        await page.get_by_role("link", name="All lessons").click()
        await page.get_by_role("link", name=package.modules[0].project.title).click()
        await expect(page.get_by_role("heading", name="Rubric")).to_be_visible()
        await shot(page, "export-html-project")

        await page.set_viewport_size(PHONE)
        await page.goto((tmp_path / "lessons" / f"{second.index}.html").as_uri())
        await shot(page, "export-html-lesson-phone")
        assert failed == [] and errors == [] and refused == []
    finally:
        await context.close()
