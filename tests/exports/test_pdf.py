"""The PDF exporter (app/exports/pdf.py): a pure `package -> bytes`, read back with pypdf."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest

from app.exports.pdf import _refusing_fetcher, render_pdf
from tests.exports.sample import sample_package

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = {
    "script": "<script>alert('pwned')</script>",
    "img": "<img src=http://127.0.0.1:9/track.png>",
    "link": '<link rel="stylesheet" href="http://127.0.0.1:9/evil.css">',
    "markdown_image": "![tracker](http://127.0.0.1:9/pixel.png)",
}


def _text(pdf: bytes) -> list[str]:
    """Each page's text with all whitespace removed (extraction breaks lines where the layout did)."""
    return [re.sub(r"\s+", "", page.extract_text()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def package():
    return sample_package(3)  # 6 lessons in 2 modules


@pytest.fixture(scope="module")
def learner_pdf(package) -> bytes:
    return render_pdf(package, version=2)


@pytest.fixture(scope="module")
def instructor_pdf(package) -> bytes:
    return render_pdf(package, answer_key=True, version=2)


def test_it_prints_every_lesson_on_more_pages_than_lessons(package, learner_pdf):
    pages = _text(learner_pdf)
    lessons = package.lessons
    assert len(lessons) == 6 and len(package.modules) == 2
    assert len(pages) > len(lessons)
    whole = "".join(pages)
    for lesson in (lessons[0], lessons[-1]):
        assert _squash(lesson.lesson.title) in whole
        assert _squash(lesson.lesson.explanation.overview) in whole
    # Cover: title, version, publish date (the newest approval in the package) and content hash.
    cover = pages[0]
    assert _squash(package.course.title) in cover
    assert "Version2" in cover and "Published2026-03-14" in cover
    assert hashlib.sha256(__import__("msgspec").json.encode(package)).hexdigest() in cover
    # Table of contents with real page numbers: the last lesson's entry points at the page it is on.
    last = lessons[-1]
    entry = re.search(re.escape(_squash(f"{last.module_index}.{last.lesson_index} {last.lesson.title}"))
                      + r"\.*(\d+)", pages[1])
    assert entry, pages[1]
    assert _squash(last.lesson.explanation.overview) in pages[int(entry.group(1)) - 1]
    # Running header (course title) and numbered footer on a body page.
    assert pages[2].endswith(_squash(package.course.title + package.modules[0].title) + f"Page3of{len(pages)}")
    # The quiz after its lesson, the project with its rubric.
    assert _squash(last.quiz.questions[0].question) in whole
    assert _squash(package.modules[-1].project.rubric[0].criterion) in whole
    metadata = pypdf.PdfReader(io.BytesIO(learner_pdf)).metadata
    assert metadata.title == package.course.title
    assert metadata["/CreationDate"] == "D:20260314092653Z" == metadata["/ModDate"]


def test_it_saves_its_first_pages_for_review(learner_pdf, tmp_path):
    """Cover, contents, outcomes and a lesson page as PNGs under test-artifacts/screenshots/ (pdftoppm from
    poppler-utils: `scripts/install-debian-package.sh poppler-utils`)."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is not installed")
    source = tmp_path / "course.pdf"
    source.write_bytes(learner_pdf)
    out = ROOT / "test-artifacts" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("pdf-export-page-*.png"):
        stale.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "4", str(source), str(out / "pdf-export-page")],
                   check=True, timeout=60)
    pages = sorted(out.glob("pdf-export-page-*.png"))  # pdftoppm pads the number to the page count's digits
    assert len(pages) >= 4 and all(page.stat().st_size > 5000 for page in pages)


def test_it_prints_the_answer_key_only_when_asked(package, learner_pdf, instructor_pdf):
    question = package.lessons[-1].quiz.questions[-1]
    explanation = _squash(question.explanation)
    learner, instructor = "".join(_text(learner_pdf)), "".join(_text(instructor_pdf))
    assert explanation not in learner and "Answerkey" not in learner
    assert explanation in instructor and "Answerkey" in instructor
    assert f"Answer{'ABCD'[question.correct_index]}" in instructor
    # The questions and options themselves are in both copies.
    assert _squash(question.options[0]) in learner


DETERMINISM = """
import hashlib, sys
from app.exports.pdf import render_pdf
from tests.exports.sample import sample_package
sys.stdout.write(hashlib.sha256(render_pdf(sample_package(3), answer_key=True, version=2)).hexdigest())
"""


def test_it_renders_byte_identical_pdfs_in_separate_processes(instructor_pdf):
    digests = [subprocess.run([sys.executable, "-c", DETERMINISM], cwd=ROOT, check=True, capture_output=True,
                              text=True, timeout=120).stdout for _ in range(2)]
    assert digests[0] == digests[1] == hashlib.sha256(instructor_pdf).hexdigest()


def test_it_keeps_hostile_model_text_inert():
    def poison(lesson: dict) -> None:
        lesson["title"] = f"Hostile {HOSTILE['script']}"
        lesson["objectives"][0] = f"Objective {HOSTILE['img']}"
        lesson["explanation"]["overview"] += " " + " ".join(HOSTILE.values())
        lesson["explanation"]["concepts"][0]["example"] = HOSTILE["link"]

    fetched: list[str] = []
    pdf = render_pdf(sample_package(1, edit_lesson=poison), fetched=fetched)
    assert fetched == []
    whole = "".join(_text(pdf))
    for text in (HOSTILE["script"], HOSTILE["img"], HOSTILE["link"]):
        assert _squash(text) in whole  # shown as text, escaped, not interpreted
    assert "127.0.0.1:9/pixel.png" not in whole  # the Markdown image is dropped by the sanitizer
    links = [annotation.get_object().get("/A", {}).get("/URI")
             for page in pypdf.PdfReader(io.BytesIO(pdf)).pages for annotation in page.get("/Annots") or []]
    assert not any("127.0.0.1" in str(uri) for uri in links)  # no live link to the hostile host either


def test_its_fetcher_refuses_and_records_what_weasyprint_asks_for():
    """The control for the test above: an <img> that did reach WeasyPrint is recorded and not fetched."""
    from weasyprint import HTML

    fetched: list[str] = []
    HTML(string='<img src="http://127.0.0.1:9/x.png">', base_url="about:blank",
         url_fetcher=_refusing_fetcher(fetched)).write_pdf()
    assert fetched == ["http://127.0.0.1:9/x.png"]
