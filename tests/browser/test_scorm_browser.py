"""The SCORM export inside a real SCORM 1.2 runtime: scorm-again (npm dev dependency) as the LMS's API in
a host page (tests/browser/scorm_host/), the unzipped package served next to it over loopback HTTP, a
lesson SCO in an iframe. The learner answers the quiz; the test reads the API calls and final cmi values.
No app server or database: the exporter is pure."""

from __future__ import annotations

import functools
import io
import re
import shutil
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import Browser, Frame, Page, expect

from app.exports.scorm import build_scorm
from tests.browser.conftest import DESKTOP, SCREENSHOTS
from tests.exports.sample import sample_package

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HOST = Path(__file__).parent / "scorm_host"
SCORM_AGAIN = ROOT / "node_modules" / "scorm-again" / "dist" / "scorm12.js"
SESSION_TIME = re.compile(r"^\d{2,4}:\d{2}:\d{2}(\.\d{1,2})?$")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def lms(tmp_path_factory) -> Iterator[str]:
    """The unzipped package under /sco/ and the host page at /host.html, on 127.0.0.1 only."""
    if not SCORM_AGAIN.exists():
        pytest.fail("scorm-again is missing: run `npm install` (it is a devDependency in package.json)")
    folder = tmp_path_factory.mktemp("scorm-lms")
    data, report = build_scorm(sample_package())
    assert report.valid
    zipfile.ZipFile(io.BytesIO(data)).extractall(folder / "sco")
    for name in ("host.html", "host.js", "host.css"):
        shutil.copy(HOST / name, folder / name)
    shutil.copy(SCORM_AGAIN, folder / "scorm12.js")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
async def page(browser: Browser) -> Iterator[Page]:
    context = await browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(10_000)
    errors: list[str] = []
    context.on("page", lambda p: p.on("pageerror", lambda exc: errors.append(str(exc))))
    yield await context.new_page()
    await context.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def answer(frame: Frame, *, right: int) -> int:
    """Choose the right option on the first `right` questions and a wrong one on the rest."""
    fieldsets = frame.locator("form[data-quiz] fieldset[data-correct]")
    count = await fieldsets.count()
    assert count >= 3
    for i in range(count):
        fieldset = fieldsets.nth(i)
        correct = int(await fieldset.get_attribute("data-correct"))
        choice = correct if i < right else (correct + 1) % 4
        await fieldset.locator(f"input[type=radio][value='{choice}']").check()
    return count


async def run_sco(page: Page, lms: str, lesson: int, *, right: int | None) -> tuple[list, dict, int]:
    await page.goto(f"{lms}/host.html?sco=sco/lessons/{lesson}.html")
    frame = page.frame_locator("#sco")
    await expect(frame.locator("h1")).to_be_visible()
    await page.wait_for_function("window.lmsCalls.some((c) => c[0] === 'LMSInitialize')")
    count = 0
    if right is not None:
        sco = page.main_frame.child_frames[0]
        count = await answer(sco, right=right)
        await frame.get_by_role("button", name="Check answers").click()
        await expect(frame.locator("[data-quiz-result]")).not_to_be_empty()
    await shot(page, f"export-scorm-lesson-{lesson}-{'read' if right is None else f'{right}-right'}")
    await page.evaluate("document.getElementById('sco').src = 'about:blank'")  # the learner leaves the SCO
    await page.wait_for_function("window.lmsCalls.some((c) => c[0] === 'LMSFinish')")
    return await page.evaluate("window.lmsCalls"), await page.evaluate("window.lmsFinal()"), count


def values(calls: list) -> dict[str, str]:
    return {c[1]: c[2] for c in calls if c[0] == "LMSSetValue"}


async def test_it_records_a_passed_quiz_in_a_scorm_12_runtime(page: Page, lms: str) -> None:
    calls, final, count = await run_sco(page, lms, 1, right=99)
    names = [c[0] for c in calls]
    assert names[0] == "LMSInitialize"
    assert "LMSCommit" in names and names[-1] == "LMSFinish"
    assert names.index("LMSCommit", len(names) - 3) < names.index("LMSFinish")  # committed before finishing
    recorded = values(calls)
    assert recorded["cmi.core.lesson_location"] == "lessons/1.html"
    assert recorded["cmi.core.lesson_status"] == "passed"
    assert (recorded["cmi.core.score.raw"], recorded["cmi.core.score.min"], recorded["cmi.core.score.max"]) == (
        "100", "0", "100")
    assert SESSION_TIME.match(recorded["cmi.core.session_time"]), recorded["cmi.core.session_time"]
    assert final["lesson_status"] == "passed" and final["score_raw"] == "100"
    assert (final["score_min"], final["score_max"]) == ("0", "100")
    assert count >= 3


async def test_it_records_a_failed_quiz_below_the_mastery_score(page: Page, lms: str) -> None:
    calls, final, count = await run_sco(page, lms, 2, right=1)
    recorded = values(calls)
    expected = str(round(100 / count))
    assert recorded["cmi.core.lesson_status"] == "failed" and final["lesson_status"] == "failed"
    assert recorded["cmi.core.score.raw"] == expected == final["score_raw"]
    assert SESSION_TIME.match(recorded["cmi.core.session_time"])
    assert [c[0] for c in calls][-1] == "LMSFinish"


async def test_it_completes_a_lesson_that_is_only_read(page: Page, lms: str) -> None:
    calls, final, _ = await run_sco(page, lms, 3, right=None)
    assert values(calls)["cmi.core.lesson_status"] == "completed"
    assert final["lesson_status"] == "completed"
    assert "cmi.core.score.raw" not in values(calls)


async def test_it_stays_readable_without_an_lms(page: Page, lms: str) -> None:
    await page.goto(f"{lms}/sco/lessons/1.html")
    await expect(page.get_by_text("Not running in an LMS")).to_be_visible()
    await answer(page.main_frame, right=99)
    await page.get_by_role("button", name="Check answers").click()
    await expect(page.locator("[data-quiz-result]")).to_contain_text("100%")
    await shot(page, "export-scorm-no-lms")
