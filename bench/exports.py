"""Export speed and memory: a 50-lesson course (10 modules, about 200 PDF pages).

Prints figures; it is a measurement, not a test. It exits 0 when a target is missed (the table says FAIL) and
non-zero only when an exporter misbehaves (an exception, a PDF that is not byte-identical on a re-render).

    .venv/bin/python bench/exports.py             # 3 repetitions of each PDF figure (~1.5 min)
    .venv/bin/python bench/exports.py --repeat 1  # quicker

The package is built from the mock provider's deterministic output (tests/exports/sample.py), no database.

- PDF: `render_pdf(package)` against bare WeasyPrint rendering the same HTML with the same stylesheet
  (`HTML(string=html).write_pdf(stylesheets=[CSS(string=stylesheet())])`, the HTML built from
  `course_html(package)` before the clock starts), so the ratio is the exporter's own overhead: building
  the HTML through Jinja and the `md` sanitizer, the refusing URL fetcher, the metadata and /ID.
  Every render runs in its own child process (`--one pdf` / `--one bare`) that first renders a 1-lesson
  course (imports, fonts; not measured), then the 50-lesson course once; the child's peak RSS (`ru_maxrss`)
  is the memory figure. `--repeat` pairs of children alternate (bare, pdf, bare, pdf, ...) so a load spike
  on a shared machine hits both. The median counts.
- HTML site ZIP (`app.exports.site.build_html_zip`) and SCORM ZIP (`app.exports.scorm.build_scorm`, which
  also validates its manifest against the XSDs), when those modules exist: median of 5 in this process
  after one warm-up call.
- The 1-minute load average is printed with every figure: on a shared 2-core machine the PDF times move by
  ±20 % from run to run.

Targets: PDF <= 1.3x the bare WeasyPrint time and <= 300 MB peak RSS; each ZIP <= 100 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULT_PREFIX = "BENCH_RESULT "
HOURS = 25  # the mock plans floor(25 * 2 + 0.5) = 50 lessons in 10 modules of 5
LESSONS = 50
TARGET_RATIO = 1.3
TARGET_RSS_MB = 300
TARGET_ZIP_MS = 100


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def _child(mode: str, repeat: int) -> None:
    from weasyprint import CSS, HTML

    from app.exports.pdf import course_html, render_pdf, stylesheet
    from tests.exports.sample import sample_package

    html: dict[int, str] = {}

    def bare(package) -> bytes:  # the HTML is built before the clock starts: WeasyPrint's time alone
        return HTML(string=html[id(package)], base_url="about:blank").write_pdf(
            stylesheets=[CSS(string=stylesheet())])

    run = render_pdf if mode == "pdf" else bare
    warm, package = sample_package(1), sample_package(HOURS)
    html.update({id(warm): course_html(warm), id(package): course_html(package)})
    run(warm)  # warm-up: imports, fontconfig, Jinja templates
    assert len(package.lessons) == LESSONS, len(package.lessons)
    times, digests, size = [], set(), 0
    for _ in range(repeat):
        started = time.perf_counter()
        pdf = run(package)
        times.append(time.perf_counter() - started)
        digests.add(hashlib.sha256(pdf).hexdigest())
        size = len(pdf)
    if mode == "pdf" and len(digests) != 1:
        raise SystemExit("render_pdf gave different bytes for the same package")
    import io

    import pypdf

    pages = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(RESULT_PREFIX + json.dumps({"mode": mode, "times": times, "rss_mb": rss_mb, "pages": pages,
                                      "bytes": size, "load": os.getloadavg()[0]}))


def _spawn(mode: str, repeat: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", mode, "--repeat", str(repeat)], cwd=ROOT,
                         check=True, capture_output=True, text=True, timeout=900).stdout
    line = next(line for line in out.splitlines() if line.startswith(RESULT_PREFIX))
    return json.loads(line[len(RESULT_PREFIX):])


def _zip_figures() -> list[tuple[str, float, str]]:
    from tests.exports.sample import sample_package

    package = sample_package(HOURS)
    figures = []
    for label, module, name in (("HTML site ZIP", "app.exports.site", "build_html_zip"),
                                ("SCORM 1.2 ZIP (with its conformance check)", "app.exports.scorm", "build_scorm")):
        if importlib.util.find_spec(module) is None:
            print(f"{label}: {module} is not there yet, not measured")
            continue
        build = getattr(__import__(module, fromlist=[name]), name)
        build(package)  # warm-up
        times = []
        for _ in range(5):
            started = time.perf_counter()
            build(package)
            times.append(time.perf_counter() - started)
        figures.append((label, statistics.median(times) * 1000, _load()))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", choices=["pdf", "bare"])
    args = parser.parse_args()
    if args.one:
        _child(args.one, args.repeat)
        return
    print(f"Exports of a {LESSONS}-lesson course; {os.cpu_count()} CPUs, {_load()} at the start")
    results: dict[str, list[dict]] = {"bare": [], "pdf": []}
    for _ in range(args.repeat):
        for mode in ("bare", "pdf"):
            result = _spawn(mode, 1)
            results[mode].append(result)
            print(f"  {mode:4} {result['times'][0]:6.2f} s  peak RSS {result['rss_mb']:5.0f} MB  "
                  f"{result['pages']} pages  load {result['load']:.2f}")
    bare = statistics.median(r["times"][0] for r in results["bare"])
    pdf = statistics.median(r["times"][0] for r in results["pdf"])
    rss = max(r["rss_mb"] for r in results["pdf"])
    bare_rss = max(r["rss_mb"] for r in results["bare"])
    pages, size = results["pdf"][0]["pages"], results["pdf"][0]["bytes"]
    rows = [
        ("PDF render_pdf (median)", f"{pdf:.2f} s, {pages} pages, {size / 1e6:.1f} MB", "—", ""),
        ("PDF bare WeasyPrint, same HTML (median)", f"{bare:.2f} s", "—", ""),
        ("PDF time vs bare", f"{pdf / bare:.2f}x", f"<= {TARGET_RATIO}x", pdf / bare <= TARGET_RATIO),
        (f"PDF peak RSS (bare: {bare_rss:.0f} MB)", f"{rss:.0f} MB", f"<= {TARGET_RSS_MB} MB",
         rss <= TARGET_RSS_MB),
    ]
    rows += [(label, f"{ms:.1f} ms ({load})", f"<= {TARGET_ZIP_MS} ms", ms <= TARGET_ZIP_MS)
             for label, ms, load in _zip_figures()]
    print()
    print(f"{'figure':52} {'measured':34} {'target':10} result")
    for name, measured, target, ok in rows:
        verdict = "" if ok == "" else ("ok" if ok else "FAIL")
        print(f"{name:52} {measured:34} {target:10} {verdict}")
    print(f"(load at the end: {_load()})")


if __name__ == "__main__":
    main()
