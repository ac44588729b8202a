"""The glue's door to the exporters (app/exports/formats.py): a missing exporter is a sentence, not a crash,
and a SCORM package the checker refuses keeps its report for the export's page."""

from __future__ import annotations

import pytest

from app.exports import formats
from app.exports.scorm import ConformanceReport, ScormInvalid
from app.exports.tables import ExportFormat


def test_it_says_a_missing_exporter_is_not_available_yet(monkeypatch):
    monkeypatch.setitem(formats.MODULES, ExportFormat.PDF, "app.exports.no_such_exporter")
    assert not formats.available(ExportFormat.PDF)
    with pytest.raises(formats.FormatUnavailable, match="The PDF export is not available yet"):
        formats.build(ExportFormat.PDF, None)  # type: ignore[arg-type]


def test_it_keeps_the_report_of_a_refused_scorm_package():
    report = ConformanceReport(valid=False, problems=["lessons/1.html is missing"], checked=["manifest"])
    assert formats.failed_report(ScormInvalid(report)) == {
        "valid": False, "problems": ["lessons/1.html is missing"], "checked": ["manifest"]}
    assert formats.failed_report(RuntimeError("boom")) is None


def test_it_names_files_by_format():
    assert formats.SUFFIXES == {ExportFormat.PDF: ".pdf", ExportFormat.SCORM: "-scorm.zip",
                                ExportFormat.HTML: "-html.zip"}
