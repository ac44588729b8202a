"""The PDF exporter: a CoursePackage -> a printable PDF (WeasyPrint), pure and deterministic.

`templates/pdf/course.html` lays out a cover, a table of contents (page numbers from CSS
`target-counter`), a section per module and lesson, the quiz after its lesson, the module project with
its rubric, and, only when `answer_key=True`, an answer key appendix. `templates/pdf/print.css` is the
only stylesheet, given to WeasyPrint as a string.

Untrusted model text goes through the player's own `md` filter (markdown-it without raw HTML, then nh3).
WeasyPrint never touches the network or the disk for a resource: the URL fetcher refuses every URL (a
sanitized link's href is only written into the PDF as a link annotation, never fetched). Fonts are the
system's (no @font-face).

Deterministic: no clock, no randomness. The PDF's dates come from the package (its publish date when the
caller knows it, otherwise the newest approval in its provenance), and the PDF /ID from the package's
content hash, so the same package gives byte-identical files in any process.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.authoring.render import markdown_to_html
from app.publishing.schemas import CoursePackage

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "pdf"
OPTION_LETTERS = "ABCD"

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters["md"] = markdown_to_html  # the only way model text becomes HTML, as in the player


class RefusedFetch(ValueError):
    """WeasyPrint asked for a URL; exports never fetch anything."""


def _refusing_fetcher(fetched: list[str] | None):
    from weasyprint import URLFetcher

    class RefusingFetcher(URLFetcher):
        def fetch(self, url, headers=None):  # noqa: ANN001, ANN201 - WeasyPrint's signature
            if fetched is not None:
                fetched.append(url)
            raise RefusedFetch(f"exports fetch nothing: {url}")

    return RefusingFetcher()


def content_hash(package: CoursePackage) -> str:
    """The SHA-256 of the package document, as publishing stores it (`course_package.content_hash`)."""
    return hashlib.sha256(msgspec.json.encode(package)).hexdigest()


def publish_date(package: CoursePackage) -> str:
    """ISO 8601 (UTC, seconds): the newest approval in the package, when the caller has no publish date."""
    dates = [package.provenance.syllabus_approved_at, *(item.approved_at for item in package.provenance.items)]
    return max(_iso(date) for date in dates)


def _iso(value: str) -> str:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def course_html(package: CoursePackage, *, answer_key: bool = False, version: int | None = None,
                published_at: str | None = None) -> str:
    """The HTML WeasyPrint renders (bench/exports.py renders it bare, too)."""
    digest = content_hash(package)
    published = _iso(published_at) if published_at else publish_date(package)
    context: dict[str, Any] = {
        "package": package, "course": package.course, "modules": package.modules,
        "answer_key": answer_key, "version": version, "published": published,
        "published_day": published[:10], "content_hash": digest, "letters": OPTION_LETTERS,
    }
    return _env.get_template("course.html").render(**context)


def stylesheet() -> str:
    return (TEMPLATES / "print.css").read_text(encoding="utf-8")


def render_pdf(package: CoursePackage, *, answer_key: bool = False, version: int | None = None,
               published_at: str | None = None, fetched: list[str] | None = None) -> bytes:
    """The course as PDF bytes. `version`/`published_at` go on the cover when the caller knows them
    (the package document itself does not carry them); `fetched` collects any URL WeasyPrint asked for
    (all refused), for tests."""
    from weasyprint import CSS, HTML

    fetcher = _refusing_fetcher(fetched)
    html = HTML(string=course_html(package, answer_key=answer_key, version=version, published_at=published_at),
                base_url="about:blank", url_fetcher=fetcher)
    css = CSS(string=stylesheet(), url_fetcher=fetcher)
    identifier = hashlib.sha256(f"{content_hash(package)}:{int(answer_key)}:{version}".encode()).hexdigest()[:32]
    return html.write_pdf(stylesheets=[css], pdf_identifier=identifier.encode("ascii"))
