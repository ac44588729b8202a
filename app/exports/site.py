"""A package version as a folder of static pages: the HTML export, and the pages the SCORM export wraps.

`site_pages(package, scorm=False)` returns relative path -> bytes:

    index.html                      course title, description, outcomes, outline with links
    lessons/<index>.html            one per lesson (course-wide index, as in the player's /lesson/{index})
    projects/module-<index>.html    one per module project, with its rubric
    style.css                       one stylesheet for screen and print; no external URLs anywhere

Lessons and projects go through the player's own templates (`content/_lesson.html`, `_project.html`) and
the same `md` filter (markdown-it without raw HTML, then nh3), so model text is as inert here as in the
app. All links are relative, so the unzipped folder works from file://. Pure and deterministic: no clock,
no randomness, no database; same package, same bytes.

The HTML export never holds an answer key: quizzes are questions and options only. Every page carries
its own Content-Security-Policy (a <meta>): only its own folder's stylesheet and scripts, nothing inline,
no network; an export is opened from disks and LMSs we do not control, where our server's header is absent.

For SCORM (scorm=True), the contract with app/exports/scorm.py and its runtime:
- every page loads `scorm-runtime.js` from the package root (`../scorm-runtime.js` on lesson pages);
  scorm.py adds that file, this module does not;
- `<body data-lesson-index="N" data-lesson-count="T">` on lesson pages (also present in the HTML export);
- the quiz is `<form class="quiz-form" data-quiz data-lesson-index="N" data-questions="Q">` holding one
  `<fieldset data-question="i" data-correct="k">` per question (i and k from 0) with radio inputs
  `name="q{i}" value="{option}"`, an empty `<p data-quiz-result aria-live="polite">` for the score, and a
  submit button. data-correct appears only in SCORM pages.
"""

from __future__ import annotations

import functools

import jinja2

from app.authoring.render import markdown_to_html
from app.exports.zipfile_det import deterministic_zip
from app.publishing.schemas import CoursePackage, PackagedModule
from app.web.templating import TEMPLATES_DIR

STYLESHEET = TEMPLATES_DIR / "site" / "style.css"


@functools.cache
def _environment() -> jinja2.Environment:
    # Its own small environment (the app's needs a running Litestar app); the one filter model text may
    # pass through is the app's own `md`.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             undefined=jinja2.ChainableUndefined, keep_trailing_newline=True)
    env.filters["md"] = markdown_to_html
    return env


def lesson_path(index: int) -> str:
    return f"lessons/{index}.html"


def project_path(module_index: int) -> str:
    return f"projects/module-{module_index}.html"


class _Link:
    def __init__(self, href: str, label: str) -> None:
        self.href, self.label = href, label


def _sequence(package: CoursePackage) -> list[tuple[str, str]]:
    """Reading order, the pager's previous/next: each module's lessons, then its project."""
    pages = []
    for module in package.modules:
        pages += [(lesson_path(entry.index), f"Lesson {entry.index}") for entry in module.lessons]
        pages.append((project_path(module.index), f"Module {module.index} project"))
    return pages


def _render(template: str, **context) -> bytes:
    return _environment().get_template(template).render(**context).encode()


def site_pages(package: CoursePackage, *, scorm: bool = False) -> dict[str, bytes]:
    common = {"package": package, "scorm": scorm, "lesson_path": lesson_path, "project_path": project_path}
    files = {"index.html": _render("site/index.html", root="", **common), "style.css": STYLESHEET.read_bytes()}
    sequence = _sequence(package)
    position = {path: i for i, (path, _) in enumerate(sequence)}

    def pager(path: str) -> dict[str, _Link | None]:
        i = position[path]
        previous = _Link("../" + sequence[i - 1][0], sequence[i - 1][1]) if i > 0 else None
        following = _Link("../" + sequence[i + 1][0], sequence[i + 1][1]) if i + 1 < len(sequence) else None
        return {"previous": previous, "following": following}

    total = len(package.lessons)
    for module in package.modules:
        for entry in module.lessons:
            path = lesson_path(entry.index)
            files[path] = _render("site/lesson.html", root="../", module=module, entry=entry, total=total,
                                  **pager(path), **common)
        files[project_path(module.index)] = _project_page(module, pager(project_path(module.index)), common)
    return files


def _project_page(module: PackagedModule, links: dict, common: dict) -> bytes:
    return _render("site/project.html", root="../", module=module, **links, **common)


def build_html_zip(package: CoursePackage) -> bytes:
    return deterministic_zip(site_pages(package))
