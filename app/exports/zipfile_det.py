"""Byte-identical ZIPs: the same files give the same archive, on any machine, at any time.

`deterministic_zip(files)` is what the HTML and SCORM exporters (site.py, scorm.py) call. An export is
cached and compared by its SHA-256, so nothing in the archive may come from the clock, the file system or
dict order: entries are sorted by path, every entry is stamped 1980-01-01 00:00:00 (the earliest time a
ZIP can hold), has mode 0o644, is deflated at one fixed level and carries no extra fields or comment.
"""

from __future__ import annotations

import io
import zipfile

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 9
_FILE_MODE = 0o100644  # a regular file, rw-r--r--


def _entry(path: str) -> zipfile.ZipInfo:
    if not path or path.startswith("/") or "\\" in path or ".." in path.split("/"):
        raise ValueError(f"not a safe relative path inside a ZIP: {path!r}")
    info = zipfile.ZipInfo(path, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = _FILE_MODE << 16
    info.create_system = 3  # Unix, so the mode above is read as one; the default depends on the platform
    info.extra = b""
    return info


def deterministic_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as archive:
        for path in sorted(files):
            archive.writestr(_entry(path), files[path], compress_type=zipfile.ZIP_DEFLATED,
                             compresslevel=COMPRESS_LEVEL)
    return buffer.getvalue()
