"""SCORM 1.2 export (app/exports/scorm.py): a valid manifest, every file present, deterministic, and
never shipped when the conformance check fails. Pure: no database, no server."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from app.exports import scorm
from app.exports.zipfile_det import deterministic_zip
from tests.exports.sample import sample_package

ROOT = Path(__file__).resolve().parents[2]
NS = {"cp": scorm.IMSCP, "adlcp": scorm.ADLCP}
HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)> & "quotes" ]]> <!-- c -->'


@pytest.fixture(scope="module")
def built() -> tuple[bytes, scorm.ConformanceReport]:
    return scorm.build_scorm(sample_package())


def files_of(data: bytes) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return {name: archive.read(name) for name in archive.namelist()}


def test_it_builds_a_package_whose_manifest_validates_against_the_scorm_xsds(built) -> None:
    data, report = built
    assert report.valid and report.problems == []
    assert any("valid against the SCORM 1.2 XSDs" in line for line in report.checked)
    files = files_of(data)
    assert {"imsmanifest.xml", "manifest.json", "index.html", "style.css", "scorm-runtime.js"} <= set(files)
    schema, _ = scorm._schema()
    root = ET.fromstring(files["imsmanifest.xml"])
    assert list(schema.iter_errors(root)) == []
    assert root.findtext("cp:metadata/cp:schemaversion", namespaces=NS) == "1.2"
    package = sample_package()
    assert files["manifest.json"] == scorm.msgspec.json.encode(package)
    lessons = root.findall(".//cp:item[@identifierref]", NS)
    lesson_items = [i for i in lessons if i.get("identifier").startswith("LESSON-")]
    assert len(lesson_items) == len(package.lessons)
    assert {i.findtext("adlcp:masteryscore", namespaces=NS) for i in lesson_items} == {"70"}
    assert [i.findtext("cp:title", namespaces=NS) for i in lesson_items] == [e.lesson.title for e in package.lessons]


def test_it_lists_every_file_and_every_href_exists(built) -> None:
    data, _ = built
    files = files_of(data)
    root = ET.fromstring(files["imsmanifest.xml"])
    hrefs = {f.get("href") for f in root.iterfind(".//cp:file", NS)}
    hrefs |= {r.get("href") for r in root.iterfind(".//cp:resource", NS) if r.get("href")}
    assert hrefs <= set(files)
    assert hrefs == set(files) - {"imsmanifest.xml"}
    for resource in root.iterfind(".//cp:resource", NS):
        if resource.get(f"{{{scorm.ADLCP}}}scormtype") == "sco":
            assert b'src="../scorm-runtime.js"' in files[resource.get("href")]


def test_it_builds_byte_identical_zips_in_separate_processes() -> None:
    script = ("import hashlib,sys; from tests.exports.sample import sample_package; "
              "from app.exports.scorm import build_scorm; "
              "sys.stdout.write(hashlib.sha256(build_scorm(sample_package())[0]).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True,
                              text=True).stdout for _ in range(2)}
    assert len(digests) == 1
    assert digests == {hashlib.sha256(scorm.build_scorm(sample_package())[0]).hexdigest()}


def _rezip(data: bytes, change) -> bytes:
    files = files_of(data)
    change(files)
    return deterministic_zip(files)


def _edit_manifest(old: bytes, new: bytes):
    def change(files: dict[str, bytes]) -> None:
        assert old in files["imsmanifest.xml"]
        files["imsmanifest.xml"] = files["imsmanifest.xml"].replace(old, new, 1)
    return change


@pytest.mark.parametrize(("change", "problem"), [
    (lambda files: files.pop("lessons/2.html"), "'lessons/2.html' is not in the ZIP"),
    (lambda files: files.pop("imsmanifest.xml"), "imsmanifest.xml is missing"),
    (lambda files: files.__setitem__("extra.html", b"<p>stray</p>"), "extra.html is in the ZIP but listed by no"),
    (lambda files: files.__setitem__("lessons/1.html", b"<p>no runtime</p>"), "does not load scorm-runtime.js"),
    (_edit_manifest(b'<file href="lessons/1.html" />', b'<file href="lessons/missing.html" />'),
     "'lessons/missing.html' is not in the ZIP"),
    (_edit_manifest(b'<file href="lessons/1.html" />', b'<file href="/etc/passwd" />'), "is not relative"),
    (_edit_manifest(b'<file href="lessons/1.html" />', b'<file href="../up.html" />'), "leaves the package"),
    (_edit_manifest(b"<adlcp:masteryscore>70<", b"<adlcp:masteryscore>170<"), "mastery score outside 0-100"),
    (_edit_manifest(b"<schemaversion>1.2<", b"<schemaversion>2004<"), "schemaversion is not 1.2"),
    (_edit_manifest(b'identifierref="RES-LESSON-3"', b'identifierref="RES-NOWHERE"'), "points at no resource"),
    (_edit_manifest(b"<organizations ", b"<bogus /><organizations "), "does not validate against the SCORM"),
    (_edit_manifest(b"<metadata>", b"<metadata"), "not well-formed"),
])
def test_it_reports_a_broken_package(built, change, problem) -> None:
    report = scorm.check_scorm(_rezip(built[0], change))
    assert not report.valid
    assert any(problem in line for line in report.problems), report.problems


def test_it_raises_rather_than_return_an_invalid_package(monkeypatch) -> None:
    real = scorm.package_files

    def without_a_lesson(package):
        files = real(package)
        del files["lessons/1.html"]
        return files

    monkeypatch.setattr(scorm, "package_files", without_a_lesson)
    with pytest.raises(scorm.ScormInvalid) as raised:
        scorm.build_scorm(sample_package())
    assert not raised.value.report.valid
    assert any("lessons/1.html" in line for line in raised.value.report.problems)


def test_it_keeps_hostile_model_text_inert_in_pages_and_manifest() -> None:
    def poison(lesson: dict) -> None:
        lesson["title"] = "Hostile " + HOSTILE[:80]
        lesson["explanation"]["overview"] = HOSTILE + " " + lesson["explanation"]["overview"]

    package = sample_package(title="Course <b>bold</b> & <script>x()</script>", edit_lesson=poison)
    data, report = scorm.build_scorm(package)
    assert report.valid, report.problems
    files = files_of(data)
    root = ET.fromstring(files["imsmanifest.xml"])  # still well-formed: titles are escaped
    assert root.findtext("cp:organizations/cp:organization/cp:title", namespaces=NS) == package.course.title
    assert root.find(".//cp:item[@identifier='LESSON-1']/cp:title", NS).text == package.lessons[0].lesson.title
    assert b"<script>" not in files["imsmanifest.xml"] and b"&lt;script&gt;" in files["imsmanifest.xml"]
    for name, body in files.items():
        if name.endswith(".html"):
            assert b"<script>alert" not in body and b"<script>x()" not in body, name
            assert b"<img" not in body, name
            assert body.count(b"<script") == 1, name  # only the runtime
