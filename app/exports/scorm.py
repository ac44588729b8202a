"""SCORM 1.2 export of a package version, and the conformance check that guards it.

`build_scorm(package)` returns the ZIP and its `ConformanceReport`, or raises `ScormInvalid(report)`:
an invalid package is never returned. `check_scorm(zip_bytes)` is the same check on any ZIP.

Package layout (pages from app/exports/site.py with scorm=True, so they are the HTML export's pages plus
the quiz form the runtime scores):

    imsmanifest.xml                 at the root, exactly that name
    manifest.json                   the package document (CoursePackage JSON)
    index.html                      course overview (an asset: the LMS shows the organization instead)
    lessons/<n>.html                one SCO per lesson; its quiz is on the page
    projects/module-<n>.html        one SCO per module project
    style.css, scorm-runtime.js     shared, in one asset resource every SCO depends on

Organization: one item per module holding an item per lesson and one for the module project (modules
are the course's own structure, so an LMS's outline matches the player's). Every lesson item carries
`adlcp:masteryscore` 70, the player's pass mark (app/player/services.py PASS_PERCENT), because every
lesson has a quiz; project items have none (viewing one completes it).

Conformance (section 5 of issue 10): the manifest is validated against the four SCORM 1.2 XSDs in
app/exports/scorm12/ (unmodified IMS/ADL copies) with xmlschema's XSD 1.1 validator, offline. The two
defects of the originals are handled at load time, not by editing the copies: `ims_xml.xsd` binds the
default namespace to the reserved XML namespace, which is removed in a temporary working copy; the
metadata schema's Unique Particle Attribution violation is why XSD 1.1 is used. Then: every
identifierref resolves, every href is relative and present in the ZIP, every file in the ZIP is listed
by a resource, the mastery score is 0-100, schemaversion is 1.2, and every SCO page loads the runtime.

Pure and deterministic: no clock, no randomness; the manifest's identifiers come from the document's
SHA-256 and course positions, and the ZIP is app/exports/zipfile_det.py's.
"""

from __future__ import annotations

import functools
import hashlib
import io
import posixpath
import re
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import msgspec

from app.exports.zipfile_det import deterministic_zip
from app.player.services import PASS_PERCENT
from app.publishing.schemas import CoursePackage

HERE = Path(__file__).parent
SCHEMAS = HERE / "scorm12"
RUNTIME = HERE / "scorm_runtime.js"
RUNTIME_PATH = "scorm-runtime.js"
MANIFEST_PATH = "imsmanifest.xml"
MASTERY_SCORE = PASS_PERCENT

IMSCP = "http://www.imsproject.org/xsd/imscp_rootv1p1p2"
ADLCP = "http://www.adlnet.org/xsd/adlcp_rootv1p2"
IMSMD = "http://www.imsglobal.org/xsd/imsmd_rootv1p2p1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = (f"{IMSCP} imscp_rootv1p1p2.xsd {IMSMD} imsmd_rootv1p2p1.xsd "
                   f"{ADLCP} adlcp_rootv1p2.xsd")

# The few lines of CSS the runtime's own markup needs, appended to the site stylesheet.
RUNTIME_CSS = b"""
/* SCORM runtime (app/exports/scorm_runtime.js) */
.lms-note { margin: 0 0 1.5rem; padding: .6rem .9rem; border-left: 4px solid #b7791f; background: #fdf6e3;
  color: #5c3d00; font-size: .95rem; }
fieldset.answer-right .quiz-choice:has(input:checked) { border-color: #2f855a; background: #f0fff4; }
fieldset.answer-wrong .quiz-choice:has(input:checked) { border-color: #c53030; background: #fff5f5; }
.answer-feedback { margin: .25rem 0 0; font-size: .9rem; font-weight: 600; }
fieldset.answer-right .answer-feedback { color: #22543d; }
fieldset.answer-wrong .answer-feedback { color: #742a2a; }
.quiz-result.quiz-passed { color: #22543d; font-weight: 600; }
.quiz-result.quiz-failed { color: #742a2a; font-weight: 600; }
"""


class ConformanceReport(msgspec.Struct, frozen=True, kw_only=True):
    valid: bool
    problems: list[str]
    checked: list[str]


class ScormInvalid(Exception):
    def __init__(self, report: ConformanceReport) -> None:
        super().__init__("the SCORM package is not valid: " + "; ".join(report.problems))
        self.report = report


# ---------------------------------------------------------------------------------------------
# Building


def build_scorm(package: CoursePackage) -> tuple[bytes, ConformanceReport]:
    data = deterministic_zip(package_files(package))
    report = check_scorm(data)
    if not report.valid:
        raise ScormInvalid(report)
    return data, report


def package_files(package: CoursePackage) -> dict[str, bytes]:
    from app.exports.site import site_pages

    files = dict(site_pages(package, scorm=True))
    files["style.css"] = files.get("style.css", b"") + RUNTIME_CSS
    files[RUNTIME_PATH] = RUNTIME.read_bytes()
    document = msgspec.json.encode(package)
    files["manifest.json"] = document
    files[MANIFEST_PATH] = manifest_xml(package, files, hashlib.sha256(document).hexdigest())
    return files


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def manifest_xml(package: CoursePackage, files: dict[str, bytes], digest: str) -> bytes:
    ET.register_namespace("", IMSCP)
    ET.register_namespace("adlcp", ADLCP)
    ET.register_namespace("xsi", XSI)

    def cp(name: str) -> str:
        return f"{{{IMSCP}}}{name}"

    scormtype = f"{{{ADLCP}}}scormtype"
    root = ET.Element(cp("manifest"), {"identifier": f"coursewright-{digest[:32]}", "version": "1.0",
                                       f"{{{XSI}}}schemaLocation": SCHEMA_LOCATION})
    metadata = _sub(root, cp("metadata"))
    _sub(metadata, cp("schema"), "ADL SCORM")
    _sub(metadata, cp("schemaversion"), "1.2")
    organizations = _sub(root, cp("organizations"), default="ORG-1")
    organization = _sub(organizations, cp("organization"), identifier="ORG-1")
    _sub(organization, cp("title"), package.course.title)
    resources = _sub(root, cp("resources"))
    scos: list[str] = []
    for module in package.modules:
        module_item = _sub(organization, cp("item"), identifier=f"MODULE-{module.index}")
        _sub(module_item, cp("title"), f"Module {module.index}: {module.title}")
        for entry in module.lessons:
            item = _sub(module_item, cp("item"), identifier=f"LESSON-{entry.index}",
                        identifierref=f"RES-LESSON-{entry.index}")
            _sub(item, cp("title"), entry.lesson.title)
            _sub(item, f"{{{ADLCP}}}masteryscore", str(MASTERY_SCORE))
            scos.append(f"lessons/{entry.index}.html")
        item = _sub(module_item, cp("item"), identifier=f"PROJECT-{module.index}",
                    identifierref=f"RES-PROJECT-{module.index}")
        _sub(item, cp("title"), module.project.title)
        scos.append(f"projects/module-{module.index}.html")
    listed = set(scos)
    for href in scos:
        name = "RES-" + href.removesuffix(".html").replace("lessons/", "LESSON-").replace(
            "projects/module-", "PROJECT-")
        resource = _sub(resources, cp("resource"), identifier=name, type="webcontent", href=href,
                        **{scormtype: "sco"})
        _sub(resource, cp("file"), href=href)
        _sub(resource, cp("dependency"), identifierref="RES-COMMON")
    common = _sub(resources, cp("resource"), identifier="RES-COMMON", type="webcontent", **{scormtype: "asset"})
    for path in sorted(files):
        if path not in listed and path != MANIFEST_PATH:
            _sub(common, cp("file"), href=path)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"


# ---------------------------------------------------------------------------------------------
# Checking


@functools.cache
def _schema():
    import xmlschema

    with tempfile.TemporaryDirectory(prefix="scorm12-xsd-") as folder:
        work = Path(folder)
        for source in SCHEMAS.glob("*.xsd"):
            text = source.read_bytes()
            if source.name == "ims_xml.xsd":  # defect 1: the default namespace bound to the reserved one
                text = text.replace(b' xmlns="http://www.w3.org/XML/1998/namespace"', b"")
            (work / source.name).write_bytes(text)
        # defect 2: imsmd breaks XSD 1.0's Unique Particle Attribution, so load the set as XSD 1.1.
        schema = xmlschema.XMLSchema11(str(work / "adlcp_rootv1p2.xsd"), allow="local",
                                       locations=[(IMSMD, str(work / "imsmd_rootv1p2p1.xsd"))])
    return schema, f"xmlschema {xmlschema.__version__}, XSD 1.1"


_SCRIPT_SRC = re.compile(rb"""<script\b[^>]*\bsrc\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def _bad_href(href: str) -> str | None:
    if not href:
        return "is empty"
    if href.startswith("/") or "\\" in href:
        return "is not relative"
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", href):
        return "is not a file in the package"
    if ".." in href.split("/"):
        return "leaves the package"
    return None


def check_scorm(zip_bytes: bytes) -> ConformanceReport:
    problems: list[str] = []
    checked: list[str] = []

    def done() -> ConformanceReport:
        return ConformanceReport(valid=not problems, problems=problems, checked=checked)

    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
        names = archive.namelist()
    except zipfile.BadZipFile:
        problems.append("the export is not a ZIP file")
        return done()
    files = {name: archive.read(name) for name in names if not name.endswith("/")}
    if MANIFEST_PATH not in files:
        problems.append("imsmanifest.xml is missing from the root of the ZIP")
        return done()
    checked.append("imsmanifest.xml at the ZIP root")
    try:
        root = ET.fromstring(files[MANIFEST_PATH])
    except ET.ParseError as error:
        problems.append(f"imsmanifest.xml is not well-formed XML: {error}")
        return done()

    schema, validator = _schema()
    errors = list(schema.iter_errors(root))
    for error in errors[:10]:
        problems.append(f"imsmanifest.xml does not validate against the SCORM 1.2 XSDs: {error.reason}"
                        f" (at {error.path})")
    if len(errors) > 10:
        problems.append(f"... and {len(errors) - 10} more schema errors")
    checked.append(f"imsmanifest.xml valid against the SCORM 1.2 XSDs ({validator})")

    ns = {"cp": IMSCP, "adlcp": ADLCP}
    if (root.findtext("cp:metadata/cp:schemaversion", namespaces=ns) or "").strip() != "1.2":
        problems.append("metadata/schemaversion is not 1.2")
    if (root.findtext("cp:metadata/cp:schema", namespaces=ns) or "").strip() != "ADL SCORM":
        problems.append("metadata/schema is not ADL SCORM")
    checked.append("schema ADL SCORM, schemaversion 1.2")

    resources = {r.get("identifier"): r for r in root.iterfind("cp:resources/cp:resource", ns)}
    items = list(root.iterfind(".//cp:item", ns))
    for item in items:
        ref = item.get("identifierref")
        if ref is not None and ref not in resources:
            problems.append(f"item {item.get('identifier')} points at no resource ({ref})")
    for dependency in root.iterfind("cp:resources/cp:resource/cp:dependency", ns):
        if dependency.get("identifierref") not in resources:
            problems.append(f"dependency on a missing resource ({dependency.get('identifierref')})")
    checked.append(f"{len(items)} items and their identifierrefs resolve")

    for item in items:
        score = item.findtext("adlcp:masteryscore", namespaces=ns)
        if score is None:
            continue
        try:
            ok = 0 <= float(score) <= 100
        except ValueError:
            ok = False
        if not ok:
            problems.append(f"item {item.get('identifier')} has a mastery score outside 0-100 ({score!r})")
    checked.append("mastery scores within 0-100")

    hrefs: list[str] = []
    for resource in resources.values():
        if resource.get("href") is not None:
            hrefs.append(resource.get("href"))
        hrefs += [f.get("href") or "" for f in resource.iterfind("cp:file", ns)]
    listed = set()
    for href in hrefs:
        reason = _bad_href(href)
        if reason:
            problems.append(f"href {href!r} {reason}")
        elif href not in files:
            problems.append(f"href {href!r} is not in the ZIP")
        listed.add(href)
    for name in sorted(set(files) - listed - {MANIFEST_PATH}):
        problems.append(f"{name} is in the ZIP but listed by no resource")
    checked.append(f"{len(set(hrefs))} referenced files present, every file listed")

    scos = [r for r in resources.values() if r.get(f"{{{ADLCP}}}scormtype") == "sco"]
    for resource in scos:
        href = resource.get("href") or ""
        page = files.get(href)
        if page is None:
            problems.append(f"SCO {resource.get('identifier')} has no launch page")
            continue
        sources = {posixpath.normpath(posixpath.join(posixpath.dirname(href), src.decode()))
                   for src in _SCRIPT_SRC.findall(page)}
        if RUNTIME_PATH not in sources:
            problems.append(f"SCO page {href} does not load {RUNTIME_PATH}")
    if RUNTIME_PATH not in files:
        problems.append(f"{RUNTIME_PATH} is missing")
    checked.append(f"{len(scos)} SCO pages load {RUNTIME_PATH}")
    return done()
