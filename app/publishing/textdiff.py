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


# Below this similarity a field was rewritten, not edited: the old text struck whole, then the new one, reads
# better than a word-by-word interleaving of two unrelated texts.
REWRITE_BELOW = 0.4


def word_diff(old: str, new: str) -> list[Segment]:
    """Segments turning `old` into `new`; adjacent segments of one kind are merged."""
    if old and new and old != new and similarity(old, new) < REWRITE_BELOW:
        return [Segment("del", old), Segment("ins", new)]
    a, b = tokens(old), tokens(new)
    # Runs of (equal?, old text, new text). An unchanged island of at most one word between two changes
    # ("... struck *is* inserted ...") is folded into the change around it, so an edited sentence reads
    # as one struck phrase and one inserted phrase instead of confetti.
    runs: list[tuple[bool, str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        runs.append((tag == "equal", "".join(a[i1:i2]), "".join(b[j1:j2])))
    merged: list[tuple[bool, str, str]] = []
    for n, (equal, old_text, new_text) in enumerate(runs):
        island = equal and 0 < n < len(runs) - 1 and len([t for t in tokens(old_text) if not t.isspace()]) <= 1
        if merged and not merged[-1][0] and (not equal or island):
            _, old_before, new_before = merged[-1]
            merged[-1] = (False, old_before + old_text, new_before + new_text)
        else:
            merged.append((equal and not island, old_text, new_text))
    segments: list[Segment] = []
    for equal, old_text, new_text in merged:
        if equal:
            segments.append(Segment("same", old_text))
            continue
        # A replacement reads best as "old words struck, new words inserted".
        segments += [Segment(op, text) for op, text in (("del", old_text), ("ins", new_text)) if text]
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
