"""The static HTML export (app/exports/site.py) on hand-built packages: pure, no database, no server."""

import hashlib
import io
import posixpath
import re
import subprocess
import sys
import zipfile

import msgspec
import pytest

from app.exports.site import build_html_zip, site_pages
from app.exports.zipfile_det import deterministic_zip
from tests.exports.sample import sample_package

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> [go](javascript:alert(1))'


def _unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _hostile(lesson: dict) -> None:
    lesson["title"] = "Hostile " + HOSTILE
    lesson["explanation"]["overview"] = HOSTILE + " " + lesson["explanation"]["overview"]
    lesson["key_takeaways"][0] = HOSTILE


def _hostile_package():
    """Hostile text in every kind of field a page shows: course, module, lesson, quiz and project."""
    replace = msgspec.structs.replace
    package = sample_package(2, edit_lesson=_hostile)
    module = package.modules[0]
    entry = module.lessons[0]
    question = replace(entry.quiz.questions[0], question="Which? " + HOSTILE,
                       options=[HOSTILE, *entry.quiz.questions[0].options[1:]])
    quiz = replace(entry.quiz, questions=[question, *entry.quiz.questions[1:]])
    rubric = [replace(module.project.rubric[0], criterion=HOSTILE[:150], description=HOSTILE),
              *module.project.rubric[1:]]
    project = replace(module.project, title="Project " + HOSTILE, rubric=rubric)
    module = replace(module, title="Module " + HOSTILE, summary=HOSTILE,
                     lessons=[replace(entry, quiz=quiz), *module.lessons[1:]], project=project)
    course = replace(package.course, title="Course " + HOSTILE, description=HOSTILE)
    return replace(package, course=course, modules=[module, *package.modules[1:]])


def test_it_builds_byte_identical_zips_in_separate_processes():
    code = ("import hashlib, sys; from app.exports.site import build_html_zip; "
            "from tests.exports.sample import sample_package; "
            "sys.stdout.write(hashlib.sha256(build_html_zip(sample_package(3))).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
               for _ in range(2)}
    assert digests == {hashlib.sha256(build_html_zip(sample_package(3))).hexdigest()}


def test_it_writes_sorted_entries_with_fixed_times_and_modes():
    data = deterministic_zip({"b.html": b"b", "a/c.css": b"c" * 500, "a.html": b"a"})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == ["a.html", "a/c.css", "b.html"]
    assert {(i.date_time, i.external_attr >> 16, i.extra, i.compress_type) for i in infos} == {
        ((1980, 1, 1, 0, 0, 0), 0o100644, b"", zipfile.ZIP_DEFLATED)}
    assert data == deterministic_zip({"a.html": b"a", "b.html": b"b", "a/c.css": b"c" * 500})


def test_it_has_an_index_a_page_per_lesson_and_project_and_a_stylesheet():
    package = sample_package(3)
    files = _unzip(build_html_zip(package))
    expected = {"index.html", "style.css"} | {f"lessons/{entry.index}.html" for entry in package.lessons}
    expected |= {f"projects/module-{module.index}.html" for module in package.modules}
    assert set(files) == expected
    index = files["index.html"].decode()
    assert package.course.title in index
    for entry in package.lessons:
        assert f'href="lessons/{entry.index}.html"' in index
        assert entry.lesson.title in files[f"lessons/{entry.index}.html"].decode()
    project = files["projects/module-1.html"].decode()
    assert "Rubric" in project and package.modules[0].project.rubric[0].criterion in project


def test_it_links_only_to_files_inside_the_zip():
    files = _unzip(build_html_zip(sample_package(4)))
    checked = 0
    for path, body in files.items():
        if not path.endswith(".html"):
            continue
        for target in re.findall(r'(?:href|src)="([^"]*)"', body.decode()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue  # a link written in the lesson text, never a resource the page loads
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target.split("#")[0]))
            assert resolved in files, f"{path} links to {target}, which is not in the ZIP"
            checked += 1
    assert checked > 20


def test_it_chains_previous_and_next_through_lessons_and_projects():
    package = sample_package(3)
    files = site_pages(package)
    first, second = package.lessons[0].index, package.lessons[1].index
    assert f'href="../lessons/{second}.html" rel="next"' in files[f"lessons/{first}.html"].decode()
    assert f'href="../lessons/{first}.html" rel="prev"' in files[f"lessons/{second}.html"].decode()
    last_of_module = package.modules[0].lessons[-1].index
    assert 'href="../projects/module-1.html" rel="next"' in files[f"lessons/{last_of_module}.html"].decode()


def test_it_leaves_the_answer_key_out_of_the_html_export():
    package = sample_package(3)
    text = "".join(body.decode() for path, body in _unzip(build_html_zip(package)).items() if path.endswith(".html"))
    for entry in package.lessons:
        for question in entry.quiz.questions:
            assert question.explanation not in text
            assert question.options[question.correct_index] in text  # shown, just not marked
    assert "data-correct" not in text and "Correct answer" not in text and "scorm-runtime" not in text


def test_it_marks_correct_answers_only_in_scorm_pages():
    package = sample_package(2)
    entry = package.lessons[0]
    page = site_pages(package, scorm=True)[f"lessons/{entry.index}.html"].decode()
    assert '<script src="../scorm-runtime.js"></script>' in page
    assert f'data-lesson-index="{entry.index}"' in page and "data-quiz" in page
    correct = re.findall(r'data-correct="(\d)"', page)
    assert correct == [str(q.correct_index) for q in entry.quiz.questions]
    assert all(q.explanation not in page for q in entry.quiz.questions)


@pytest.mark.parametrize("scorm", [False, True], ids=["html", "scorm"])
def test_it_keeps_hostile_text_inert(scorm):
    files = site_pages(_hostile_package(), scorm=scorm)
    for path in ("index.html", "lessons/1.html", "projects/module-1.html"):
        assert "&lt;script&gt;" in files[path].decode(), path
    for path, body in files.items():
        html = re.sub(r'<script src="(?:\.\./)?scorm-runtime\.js"></script>', "", body.decode())
        assert "<script" not in html and "<img" not in html, path
        assert not re.search(r"<[^>]+\son\w+\s*=", html), path
        assert 'href="javascript:' not in html, path
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html), path
        assert " style=" not in html and "<style" not in html, path
        if path.endswith(".html"):
            assert "Content-Security-Policy\" content=\"default-src 'none'; style-src 'self'; script-src 'self'" in html
