"""What changed between two revisions of a syllabus outline: modules and lessons added, removed, renamed
and moved, and a word diff of every changed field. Pure: two Syllabus documents in, an OutlineDiff out.

Matching. Titles are compared first: the most similar pairs (`similarity()` of app/publishing/textdiff:
words, case ignored) at or above TITLE_MATCH are the same module or lesson. What is left is matched
by position when the rest is recognisably the same (a lesson renamed outright keeps its objectives; a
module its summary and lessons), so a new lesson that happens to take a removed one's place is "added",
not "renamed". Lessons are matched within their matched module; a lesson still unmatched that appears
in another module under nearly the same title (MOVED_MATCH) moved there.

Moved. A module or lesson is "moved" when its order relative to the others changed, not when it only
shifted because something was added or removed before it: the items kept in place are a longest run of
matched items whose old positions increase in the new order; the others moved.
"""

from __future__ import annotations

import bisect
import difflib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

import msgspec

from app.authoring.schemas import Syllabus, SyllabusLesson, SyllabusModule
from app.publishing.textdiff import Segment, is_changed, similarity, tokens, word_diff

TITLE_MATCH = 0.5  # titles sharing at least half their words name the same thing
REST_MATCH = 0.5  # ... or, at the same position, objectives/summary sharing half their words
MOVED_MATCH = 0.8  # a lesson found in another module: only when its title barely changed

Status = Literal["same", "changed", "added", "removed"]
RowOp = Literal["same", "ins", "del", "changed"]
T = TypeVar("T")


class Row(msgspec.Struct, frozen=True):
    """One line of a field: a sentence of a list, or the whole text of a single-valued field."""

    op: RowOp
    segments: list[Segment]


class FieldChange(msgspec.Struct, frozen=True):
    label: str
    rows: list[Row]


class LessonChange(msgspec.Struct, frozen=True, kw_only=True):
    status: Status
    title: list[Segment]
    old_position: str | None  # "2.3": module 2, lesson 3 of the older revision
    new_position: str | None
    renamed: bool = False
    moved: bool = False  # out of its old order, or into another module
    moved_from: str | None = None  # the old position, when it came from another module
    fields: list[FieldChange] = []  # only the fields that differ (all of them for an added or removed lesson)


class ModuleChange(msgspec.Struct, frozen=True, kw_only=True):
    status: Status
    title: list[Segment]
    old_index: int | None
    new_index: int | None
    renamed: bool = False
    moved: bool = False
    fields: list[FieldChange] = []
    lessons: list[LessonChange] = []


class OutlineDiff(msgspec.Struct, frozen=True, kw_only=True):
    course: list[FieldChange]
    modules: list[ModuleChange]

    @property
    def changed(self) -> bool:
        return bool(self.course) or any(module.status != "same" for module in self.modules)

    def summary(self) -> list[str]:
        """What changed, counted in words: ["1 module added", "2 lessons renamed", ...]."""
        counts: dict[tuple[str, str], int] = {}

        def count(kind: str, what: str) -> None:
            counts[(kind, what)] = counts.get((kind, what), 0) + 1

        for module in self.modules:
            _count_change(module, "module", count)
            for lesson in module.lessons:
                _count_change(lesson, "lesson", count)
        words = [f"{n} {kind}{'' if n == 1 else 's'} {what}" for (kind, what), n in counts.items()]
        if self.course:
            words.insert(0, "course details changed")
        return words


def _count_change(change: ModuleChange | LessonChange, kind: str, count: Callable[[str, str], None]) -> None:
    if change.status in ("added", "removed"):
        count(kind, change.status)
        return
    if change.renamed:
        count(kind, "renamed")
    if change.moved:
        count(kind, "moved")
    if change.fields:
        count(kind, "edited")


# ---------------------------------------------------------------------------------------------
# Fields


def reword(old: str, new: str) -> list[Segment]:
    """A word diff, or the old text struck and the new one inserted when they share too little for a
    word-by-word reading to help ("<del>Your</del><ins>Saving</ins> <del>first</del>..." reads badly)."""
    if old and new and similarity(old, new) < TITLE_MATCH:
        return [Segment("del", old), Segment("same", " "), Segment("ins", new)]
    return word_diff(old, new)


def list_rows(old: Sequence[str], new: Sequence[str]) -> list[Row]:
    """Sentences of a list, aligned: kept, added, removed, or reworded (a word diff)."""
    rows: list[Row] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, list(old), list(new), autojunk=False).get_opcodes():
        if tag == "equal":
            rows += [Row("same", [Segment("same", text)]) for text in old[i1:i2]]
            continue
        removed, added = list(old[i1:i2]), list(new[j1:j2])
        paired = min(len(removed), len(added)) if tag == "replace" else 0
        rows += [Row("changed", reword(a, b)) for a, b in zip(removed[:paired], added[:paired], strict=True)]
        rows += [Row("del", [Segment("del", text)]) for text in removed[paired:]]
        rows += [Row("ins", [Segment("ins", text)]) for text in added[paired:]]
    return rows


def _text_field(label: str, old: str | None, new: str | None) -> FieldChange | None:
    if old == new:
        return None
    if old is None or new is None:
        op: RowOp = "ins" if old is None else "del"
        return FieldChange(label, [Row(op, [Segment(op, new if old is None else old)])])
    return FieldChange(label, [Row("changed", reword(old, new))])


def _list_field(label: str, old: Sequence[str] | None, new: Sequence[str] | None) -> FieldChange | None:
    if old == new:
        return None
    rows = list_rows(old or [], new or [])
    return FieldChange(label, rows) if any(row.op != "same" for row in rows) else None


def _fields(*changes: FieldChange | None) -> list[FieldChange]:
    return [change for change in changes if change is not None]


def _minutes(lesson: SyllabusLesson | None) -> str | None:
    return f"{lesson.estimated_minutes} min" if lesson else None


def lesson_fields(old: SyllabusLesson | None, new: SyllabusLesson | None) -> list[FieldChange]:
    return _fields(
        _list_field("Objectives", old and old.objectives, new and new.objectives),
        _text_field("Estimated time", _minutes(old), _minutes(new)),
        _list_field("Prerequisites", old and old.prerequisites, new and new.prerequisites),
        _list_field("Assessment", old and old.assessment_hooks, new and new.assessment_hooks),
    )


def course_fields(old: Syllabus, new: Syllabus) -> list[FieldChange]:
    a, b = old.course, new.course
    return _fields(
        _text_field("Title", a.title, b.title),
        _text_field("Audience", a.audience, b.audience),
        _text_field("Level", a.level, b.level),
        _text_field("Time budget", f"{a.time_budget_hours:g} hours", f"{b.time_budget_hours:g} hours"),
        _text_field("Teaching style", a.teaching_style, b.teaching_style),
        _list_field("Constraints", a.constraints, b.constraints),
        _text_field("Description", a.description, b.description),
        _list_field("Learning outcomes", a.learning_outcomes, b.learning_outcomes),
    )


# ---------------------------------------------------------------------------------------------
# Matching


def _words(text: str) -> Counter[str]:
    return Counter(t.lower() for t in tokens(text) if not t.isspace())


def _at_least(a: Counter[str], b: Counter[str], threshold: float) -> bool:
    """False when `similarity()` of the two texts is surely below `threshold`: the words they share, in any
    order, bound it from above (difflib's quick_ratio). Saves most comparisons of a 12 x 12 outline."""
    total = sum(a.values()) + sum(b.values())
    return total == 0 or 2 * sum((a & b).values()) / total >= threshold


def match(old: Sequence[T], new: Sequence[T], title: Callable[[T], str], rest: Callable[[T], str]) -> dict[int, int]:
    """Old list index -> new list index for the items that are the same thing (see the module docstring)."""
    old_words, new_words = [_words(title(a)) for a in old], [_words(title(b)) for b in new]
    scored = sorted(
        ((similarity(title(a), title(b)), -abs(i - j), i, j)
         for i, a in enumerate(old) for j, b in enumerate(new)
         if _at_least(old_words[i], new_words[j], TITLE_MATCH)),
        reverse=True,
    )
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for score, _distance, i, j in scored:
        if score < TITLE_MATCH:
            break
        if i not in pairs and j not in taken:
            pairs[i] = j
            taken.add(j)
    for i, a in enumerate(old):
        if i in pairs or i >= len(new) or i in taken:
            continue
        if similarity(rest(a), rest(new[i])) >= REST_MATCH:
            pairs[i] = i
            taken.add(i)
    return pairs


def out_of_order(pairs: dict[int, int]) -> set[int]:
    """The old indexes whose relative order changed: all but a longest increasing run (by new index)."""
    in_new_order = sorted(pairs, key=pairs.__getitem__)
    # Patience sorting; the old indexes are distinct, so each is its own key. `previous` links every
    # index to the one before it in the best run ending there, to read one longest run back.
    tails: list[int] = []
    previous: dict[int, int | None] = {}
    for old_index in in_new_order:
        k = bisect.bisect_left(tails, old_index)
        previous[old_index] = tails[k - 1] if k else None
        if k == len(tails):
            tails.append(old_index)
        else:
            tails[k] = old_index
    kept: set[int] = set()
    node = tails[-1] if tails else None
    while node is not None:
        kept.add(node)
        node = previous[node]
    return set(pairs) - kept


def _lesson_rest(lesson: SyllabusLesson) -> str:
    return "\n".join([*lesson.objectives, *lesson.assessment_hooks, *lesson.prerequisites])


def _module_rest(module: SyllabusModule) -> str:
    return "\n".join([module.summary, *(lesson.title for lesson in module.lessons)])


def _position(module: SyllabusModule, lesson: SyllabusLesson) -> str:
    return f"{module.index}.{lesson.index}"


def _lesson_change(old_module: SyllabusModule | None, old: SyllabusLesson | None,
                   new_module: SyllabusModule | None, new: SyllabusLesson | None, *, moved: bool = False,
                   moved_from: str | None = None) -> LessonChange:
    title = reword(old.title if old else "", new.title if new else "")
    fields = lesson_fields(old, new)
    renamed = bool(old and new) and is_changed(title)
    status: Status = "added" if old is None else "removed" if new is None else (
        "changed" if renamed or moved or fields else "same")
    return LessonChange(
        status=status, title=title, renamed=renamed, moved=moved, moved_from=moved_from, fields=fields,
        old_position=_position(old_module, old) if old and old_module else None,
        new_position=_position(new_module, new) if new and new_module else None,
    )


def compare_outlines(old: Syllabus, new: Syllabus) -> OutlineDiff:
    """Every module of `new` in order, each with its lessons; removed modules and lessons follow the ones
    kept in their list."""
    module_pairs = match(old.modules, new.modules, lambda m: m.title, _module_rest)
    moved_modules = out_of_order(module_pairs)
    by_new = {j: i for i, j in module_pairs.items()}

    # Lessons within each matched module pair, then a second pass across modules for what is left.
    lesson_pairs: dict[tuple[int, int], tuple[int, int]] = {}  # (old m, old l) -> (new m, new l)
    moved_lessons: set[tuple[int, int]] = set()
    for i, j in module_pairs.items():
        pairs = match(old.modules[i].lessons, new.modules[j].lessons, lambda lesson: lesson.title, _lesson_rest)
        lesson_pairs.update({(i, a): (j, b) for a, b in pairs.items()})
        moved_lessons |= {(i, a) for a in out_of_order(pairs)}
    left_old = [(i, a) for i, m in enumerate(old.modules) for a in range(len(m.lessons)) if (i, a) not in lesson_pairs]
    matched_new = set(lesson_pairs.values())
    left_new = [(j, b) for j, m in enumerate(new.modules) for b in range(len(m.lessons)) if (j, b) not in matched_new]
    crossed: dict[tuple[int, int], tuple[int, int]] = {}
    new_words = {(j, b): _words(new.modules[j].lessons[b].title) for j, b in left_new}
    for i, a in left_old:
        title = old.modules[i].lessons[a].title
        words = _words(title)
        best = max(((similarity(title, new.modules[j].lessons[b].title), (j, b)) for j, b in left_new
                    if (j, b) not in crossed.values() and _at_least(words, new_words[(j, b)], MOVED_MATCH)),
                   default=None)
        if best and best[0] >= MOVED_MATCH:
            crossed[(i, a)] = best[1]
    new_to_old = {v: k for k, v in {**lesson_pairs, **crossed}.items()}

    modules: list[ModuleChange] = []
    for j, new_module in enumerate(new.modules):
        i = by_new.get(j)
        old_module = old.modules[i] if i is not None else None
        lessons = []
        for b, lesson in enumerate(new_module.lessons):
            source = new_to_old.get((j, b))
            if source is None:
                lessons.append(_lesson_change(None, None, new_module, lesson))
                continue
            from_module = old.modules[source[0]]
            was = from_module.lessons[source[1]]
            if source in crossed:
                lessons.append(_lesson_change(from_module, was, new_module, lesson, moved=True,
                                              moved_from=_position(from_module, was)))
            else:
                lessons.append(_lesson_change(from_module, was, new_module, lesson, moved=source in moved_lessons))
        if old_module is not None:
            lessons += [_lesson_change(old_module, was, None, None) for a, was in enumerate(old_module.lessons)
                        if (i, a) not in lesson_pairs and (i, a) not in crossed]
        modules.append(_module_change(old_module, new_module, lessons, moved=i in moved_modules))
    for i, old_module in enumerate(old.modules):
        if i not in module_pairs:
            lessons = [_lesson_change(old_module, was, None, None) for a, was in enumerate(old_module.lessons)
                       if (i, a) not in crossed]
            modules.append(_module_change(old_module, None, lessons))
    return OutlineDiff(course=course_fields(old, new), modules=modules)


def _module_change(old: SyllabusModule | None, new: SyllabusModule | None, lessons: list[LessonChange], *,
                   moved: bool = False) -> ModuleChange:
    title = reword(old.title if old else "", new.title if new else "")
    fields = _fields(_text_field("Summary", old and old.summary, new and new.summary))
    renamed = bool(old and new) and is_changed(title)
    status: Status = "added" if old is None else "removed" if new is None else (
        "changed" if renamed or moved or fields or any(lesson.status != "same" for lesson in lessons) else "same")
    return ModuleChange(status=status, title=title, old_index=old.index if old else None,
                        new_index=new.index if new else None, renamed=renamed, moved=moved, fields=fields,
                        lessons=lessons)
