"""The one door from the export glue to the exporters: each format's module is imported only when an export
of that format is built, so a format whose exporter is missing (or broken) says so in words instead of
taking the app down at import.

The exporters are pure: a CoursePackage in, bytes out, byte-identical for the same package.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

import msgspec

from app.exports.tables import ExportFormat
from app.publishing.schemas import CoursePackage

# Bumped when an exporter's output changes, so that cached exports of the old output are not served.
EXPORTER_VERSION = "1"


class FormatUnavailable(Exception):
    """The exporter module of a format is not installed in this build."""


@dataclass(frozen=True)
class Built:
    content: bytes
    report: dict[str, Any] | None = None  # SCORM's conformance report


MEDIA_TYPES = {ExportFormat.PDF: "application/pdf", ExportFormat.SCORM: "application/zip",
               ExportFormat.HTML: "application/zip"}
SUFFIXES = {ExportFormat.PDF: ".pdf", ExportFormat.SCORM: "-scorm.zip", ExportFormat.HTML: "-html.zip"}
WORDS = {ExportFormat.PDF: "PDF", ExportFormat.SCORM: "SCORM 1.2 package", ExportFormat.HTML: "HTML site"}
MODULES = {ExportFormat.PDF: "app.exports.pdf", ExportFormat.SCORM: "app.exports.scorm",
           ExportFormat.HTML: "app.exports.site"}
FUNCTIONS = {ExportFormat.PDF: "render_pdf", ExportFormat.SCORM: "build_scorm", ExportFormat.HTML: "build_html_zip"}


def _exporter(fmt: ExportFormat) -> Any:
    try:
        module = importlib.import_module(MODULES[fmt])
    except ImportError:
        raise FormatUnavailable(f"The {WORDS[fmt]} export is not available yet.") from None
    function = getattr(module, FUNCTIONS[fmt], None)
    if function is None:
        raise FormatUnavailable(f"The {WORDS[fmt]} export is not available yet.")
    return function


def available(fmt: ExportFormat) -> bool:
    # Looked up, not imported: the web process never loads WeasyPrint and friends (the worker does).
    try:
        return importlib.util.find_spec(MODULES[fmt]) is not None
    except ImportError:
        return False


def build(fmt: ExportFormat, package: CoursePackage, *, answer_key: bool = False, version: int | None = None,
          published_at: str | None = None) -> Built:
    """Build one export. An invalid SCORM package raises the exporter's ScormInvalid (with its report).
    The PDF's cover names the version and its publish date (the package row's, not the document's)."""
    exporter = _exporter(fmt)
    if fmt == ExportFormat.PDF:
        return Built(exporter(package, answer_key=answer_key, version=version, published_at=published_at))
    if fmt == ExportFormat.SCORM:
        content, report = exporter(package)
        return Built(content, msgspec.to_builtins(report))
    return Built(exporter(package))


def failed_report(exc: Exception) -> dict[str, Any] | None:
    """The conformance report an exporter attached to its refusal (ScormInvalid(report)), if any."""
    report = getattr(exc, "report", None)
    if report is None and exc.args and isinstance(exc.args[0], msgspec.Struct):
        report = exc.args[0]
    return msgspec.to_builtins(report) if report is not None else None
