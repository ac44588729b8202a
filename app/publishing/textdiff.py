"""Word-level text differences for people reviewing a change (version diffs, revision reviews).

Text is split into words, runs of whitespace and single punctuation marks, and compared with difflib's
SequenceMatcher (autojunk off: course text is short, and junk heuristics would hide real edits). The
result is a list of segments that concatenate back to the old text (same + del) and the new text
(same + ins), so a template can show either side or both.
"""

from __future__ import annotations

import difflib
import re
from typing import Literal

import msgspec

Op = Literal["same", "ins", "del"]
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


class Segment(msgspec.Struct, frozen=True):
    op: Op
    text: str


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


def word_diff(old: str, new: str) -> list[Segment]:
    """Segments turning `old` into `new`; adjacent segments of one kind are merged."""
    a, b = tokens(old), tokens(new)
    segments: list[Segment] = []

    def add(op: Op, parts: list[str]) -> None:
        text = "".join(parts)
        if not text:
            return
        if segments and segments[-1].op == op:
            segments[-1] = Segment(op, segments[-1].text + text)
        else:
            segments.append(Segment(op, text))

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            add("same", a[i1:i2])
        else:
            # A replacement reads best as "old words struck, new words inserted".
            add("del", a[i1:i2])
            add("ins", b[j1:j2])
    return segments


def similarity(old: str, new: str) -> float:
    """0..1: how much of the two texts' words are shared (1.0 for equal texts, also both empty).

    Whitespace is left out and case ignored: two unrelated sentences share most of their spaces, which
    alone would score them near 0.5 and make every question look like a rewording of every other."""
    if old == new:
        return 1.0
    a = [t.lower() for t in tokens(old) if not t.isspace()]
    b = [t.lower() for t in tokens(new) if not t.isspace()]
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def is_changed(segments: list[Segment]) -> bool:
    return any(segment.op != "same" for segment in segments)
