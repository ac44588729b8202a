"""What changed between two versions of course content, field by field and word by word (B4, issue 9).

One engine for two screens. `compare_lessons`, `compare_quizzes` and `compare_projects` compare two
documents of one kind: the review of a new revision of an item calls `compare_items` once, and the diff
of two package versions calls the same functions for every lesson slot and module project.

Pure: documents in, diff out; no database, no clock.

- Lists of things (concepts, objectives, rubric criteria, ...) are matched by how similar their texts
  are, then by position, so an inserted concept reads as "added" and not as every later one rewritten.
- Quiz questions are matched by similarity only: a question whose best match is below QUESTION_MATCH
  counts as removed and a new one as added. A matched pair is reworded, has options changed, has its
  answer key changed (the correct answer's text changed or moved to another letter), or has its
  explanation changed. Answer-key changes are called out on their own: they change how learners are
  scored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

import msgspec

from app.authoring.schemas import Concept, Lesson, Project, Quiz, QuizQuestion, RubricCriterion
from app.publishing.schemas import CoursePackage, PackagedLesson
from app.publishing.textdiff import Segment, similarity, word_diff

Change = Literal["added", "removed", "changed", "unchanged"]
Kind = Literal["LESSON", "QUIZ", "PROJECT"]
T = TypeVar("T")

LETTERS = "ABCD"
# Below this similarity two texts are different things, not two wordings of one. Questions are compared
# with their options, so a question reworded around the same options still matches its old self.
QUESTION_MATCH = 0.5
ITEM_MATCH = 0.5


# ---------------------------------------------------------------------------------------------
# What a diff is made of


class FieldChange(msgspec.Struct, frozen=True, kw_only=True):
    """One changed field: a text with its word diff, or a number with "old → new"."""

    field: str  # what it belongs to, for summaries: "overview", "concepts", "practice", "rubric", ...
    label: str  # for people: "Concept “Lists” › explanation", "Objective 2"
    change: Literal["added", "removed", "changed"]
    segments: list[Segment]
    summary: str | None = None  # numbers: "20 → 25 min"


class AnswerKeyChange(msgspec.Struct, frozen=True, kw_only=True):
    question: int  # from 1, in the newer quiz
    old_answer: str
    new_answer: str
    old_option: str  # letter A-D
    new_option: str

    @property
    def moved_only(self) -> bool:
        """The same answer under another letter: learners answering by position are scored differently."""
        return self.old_answer == self.new_answer


class OptionChange(msgspec.Struct, frozen=True, kw_only=True):
    letter: str  # in the newer quiz
    old_letter: str  # where its text was (the same letter unless the option moved)
    segments: list[Segment]  # against the option it was; all "same" when it only moved

    @property
    def moved_only(self) -> bool:
        return all(segment.op == "same" for segment in self.segments)


class QuestionDiff(msgspec.Struct, frozen=True, kw_only=True):
    number_a: int | None  # from 1; None: the question is new
    number_b: int | None  # None: the question was removed
    change: Change
    question: list[Segment]  # the question text: a word diff, all inserted (added) or all deleted (removed)
    reworded: bool = False
    options: list[OptionChange] = []  # the options whose text changed, by letter
    answer_key: AnswerKeyChange | None = None
    explanation: list[Segment] | None = None  # its word diff, when the explanation changed

    @property
    def number(self) -> int:
        return self.number_b if self.number_b is not None else self.number_a  # type: ignore[return-value]

    @property
    def kinds(self) -> list[str]:
        """What happened to it, in words."""
        if self.change in ("added", "removed"):
            return [self.change]
        return [kind for kind, happened in (
            ("reworded", self.reworded), ("options changed", bool(self.options)),
            ("answer key changed", self.answer_key is not None), ("explanation changed", self.explanation is not None),
        ) if happened]


class QuizDiff(msgspec.Struct, frozen=True, kw_only=True):
    questions: list[QuestionDiff]  # every question, unchanged ones too, in the newer quiz's order

    @property
    def changed(self) -> list[QuestionDiff]:
        return [q for q in self.questions if q.change != "unchanged"]

    @property
    def answer_key_changes(self) -> list[AnswerKeyChange]:
        return [q.answer_key for q in self.questions if q.answer_key is not None]

    def summary(self) -> str:
        """"2 questions reworded, 1 answer key changed"; empty when nothing changed."""
        counts = Counter(kind for question in self.changed for kind in question.kinds)
        return ", ".join(_counted(kind, n) for kind, n in counts.items())


def _counted(kind: str, n: int) -> str:
    if kind == "answer key changed":
        return f"{n} answer key{'' if n == 1 else 's'} changed"
    return f"{n} question{'' if n == 1 else 's'} {kind}"


class ItemDiff(msgspec.Struct, frozen=True, kw_only=True):
    """Two documents of one content item (a new revision against what it replaces)."""

    kind: Kind
    fields: list[FieldChange]  # lessons and projects
    quiz: QuizDiff | None = None  # quizzes

    @property
    def changed(self) -> bool:
        return bool(self.fields) or bool(self.quiz and self.quiz.changed)

    @property
    def answer_key_changes(self) -> list[AnswerKeyChange]:
        return self.quiz.answer_key_changes if self.quiz else []


# ---------------------------------------------------------------------------------------------
# Matching two lists


def match(old: Sequence[T], new: Sequence[T], text: Callable[[T], str], *, threshold: float,
          by_position: bool) -> list[tuple[int | None, int | None]]:
    """Pairs (old index, new index), None on the side where a thing is missing, in the newer order.

    Equal texts pair first, then the most similar pairs at or above `threshold`, then (`by_position`)
    what is left on both sides, in order. Greedy, which is plenty for lists of at most ten."""
    texts_a, texts_b = [text(x) for x in old], [text(x) for x in new]
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for i, a in enumerate(texts_a):  # equal texts first: cheap, and most of any list
        j = next((j for j, b in enumerate(texts_b) if b == a and j not in taken), None)
        if j is not None:
            pairs[i] = j
            taken.add(j)
    candidates = sorted(((similarity(a, texts_b[j]), -abs(i - j), i, j) for i, a in enumerate(texts_a)
                         if i not in pairs for j in range(len(texts_b)) if j not in taken), reverse=True)
    for score, _distance, i, j in candidates:
        if score < threshold:
            break
        if i not in pairs and j not in taken:
            pairs[i] = j
            taken.add(j)
    if by_position:
        left_a = [i for i in range(len(old)) if i not in pairs]
        left_b = [j for j in range(len(new)) if j not in taken]
        for i, j in zip(left_a, left_b, strict=False):
            pairs[i] = j
            taken.add(j)
    # The newer order, each removed thing just before what used to follow it.
    old_of = {j: i for i, j in pairs.items()}
    removed = [i for i in range(len(old)) if i not in pairs]
    result: list[tuple[int | None, int | None]] = []
    for j in range(len(new)):
        i = old_of.get(j)
        while i is not None and removed and removed[0] < i:
            result.append((removed.pop(0), None))
        result.append((i, j))
    return result + [(i, None) for i in removed]


# ---------------------------------------------------------------------------------------------
# Fields


def _text(field: str, label: str, old: str | None, new: str | None) -> list[FieldChange]:
    old, new = old or "", new or ""
    if old == new:
        return []
    change = "added" if not old else "removed" if not new else "changed"
    return [FieldChange(field=field, label=label, change=change, segments=word_diff(old, new))]


def _number(field: str, label: str, old: float, new: float, unit: str) -> list[FieldChange]:
    if old == new:
        return []
    shown_a, shown_b = f"{old:g}", f"{new:g}"
    return [FieldChange(field=field, label=label, change="changed", summary=f"{shown_a} → {shown_b}{unit}",
                        segments=word_diff(f"{shown_a}{unit}", f"{shown_b}{unit}"))]


def _sentences(field: str, noun: str, old: list[str], new: list[str]) -> list[FieldChange]:
    """A list of short texts (objectives, takeaways, constraints, ...): one change per changed entry."""
    if old == new:
        return []
    changes: list[FieldChange] = []
    for i, j in match(old, new, lambda s: s, threshold=ITEM_MATCH, by_position=True):
        label = f"{noun} {(j if j is not None else i) + 1}"  # type: ignore[operator]
        changes += _text(field, label, old[i] if i is not None else None, new[j] if j is not None else None)
    return changes


def _concepts(old: list[Concept], new: list[Concept]) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for i, j in match(old, new, lambda c: c.title, threshold=ITEM_MATCH, by_position=True):
        a, b = (old[i] if i is not None else None), (new[j] if j is not None else None)
        if a is None or b is None:
            concept = a or b
            whole = concept.explanation + (f"\n\n{concept.example}" if concept.example else "")  # type: ignore[union-attr]
            change = "added" if a is None else "removed"
            changes.append(FieldChange(field="concepts", label=f"Concept “{concept.title}”",  # type: ignore[union-attr]
                                       change=change, segments=[Segment("ins" if a is None else "del", whole)]))
            continue
        name = f"Concept “{b.title}”"
        changes += _text("concepts", f"{name} › title", a.title, b.title)
        changes += _text("concepts", f"{name} › explanation", a.explanation, b.explanation)
        changes += _text("concepts", f"{name} › example", a.example, b.example)
    return changes


def compare_lessons(a: Lesson, b: Lesson) -> list[FieldChange]:
    if a == b:
        return []
    return [
        *_text("title", "Title", a.title, b.title),
        *_number("duration", "Duration", a.duration_minutes, b.duration_minutes, " min"),
        *_sentences("objectives", "Objective", a.objectives, b.objectives),
        *_text("overview", "Overview", a.explanation.overview, b.explanation.overview),
        *_concepts(a.explanation.concepts, b.explanation.concepts),
        *_sentences("key takeaways", "Key takeaway", a.key_takeaways, b.key_takeaways),
        *_text("practice", "Practice › prompt", a.practice.prompt, b.practice.prompt),
        *_text("practice", "Practice › expected outcome", a.practice.expected_outcome, b.practice.expected_outcome),
        *_text("level", "Level", a.metadata.level, b.metadata.level),
        *_sentences("prerequisites", "Prerequisite", a.metadata.prerequisites, b.metadata.prerequisites),
    ]


def _rubric(old: list[RubricCriterion], new: list[RubricCriterion]) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for i, j in match(old, new, lambda c: c.criterion, threshold=ITEM_MATCH, by_position=True):
        a, b = (old[i] if i is not None else None), (new[j] if j is not None else None)
        if a is None or b is None:
            criterion = a or b
            text = f"{criterion.description} ({criterion.weight}%)"  # type: ignore[union-attr]
            changes.append(FieldChange(field="rubric", label=f"Rubric “{criterion.criterion}”",  # type: ignore[union-attr]
                                       change="added" if a is None else "removed",
                                       segments=[Segment("ins" if a is None else "del", text)]))
            continue
        name = f"Rubric “{b.criterion}”"
        changes += _text("rubric", f"{name} › criterion", a.criterion, b.criterion)
        changes += _text("rubric", f"{name} › description", a.description, b.description)
        changes += _number("rubric", f"{name} › weight", a.weight, b.weight, "%")
    return changes


def compare_projects(a: Project, b: Project) -> list[FieldChange]:
    if a == b:
        return []
    return [
        *_text("title", "Title", a.title, b.title),
        *_text("problem statement", "Problem statement", a.problem_statement, b.problem_statement),
        *_sentences("constraints", "Constraint", a.constraints, b.constraints),
        *_sentences("deliverables", "Deliverable", a.deliverables, b.deliverables),
        *_rubric(a.rubric, b.rubric),
        *_number("estimated hours", "Estimated time", a.estimated_hours, b.estimated_hours, " h"),
    ]


# ---------------------------------------------------------------------------------------------
# Quizzes


def _question_text(q: QuizQuestion) -> str:
    return " ".join([q.question, *q.options])


def _compare_question(a: QuizQuestion, b: QuizQuestion, number_a: int, number_b: int) -> QuestionDiff:
    # Options are matched like questions, so one that moved to another letter reads "moved", not rewritten.
    options = [OptionChange(letter=LETTERS[j], old_letter=LETTERS[i], segments=word_diff(a.options[i], b.options[j]))
               for i, j in match(a.options, b.options, lambda o: o, threshold=ITEM_MATCH, by_position=True)
               if i is not None and j is not None and (i != j or a.options[i] != b.options[j])]
    old_answer, new_answer = a.options[a.correct_index], b.options[b.correct_index]
    answer_key = None
    if a.correct_index != b.correct_index or old_answer != new_answer:
        answer_key = AnswerKeyChange(question=number_b, old_answer=old_answer, new_answer=new_answer,
                                     old_option=LETTERS[a.correct_index], new_option=LETTERS[b.correct_index])
    explanation = word_diff(a.explanation, b.explanation) if a.explanation != b.explanation else None
    reworded = a.question != b.question
    changed = reworded or options or answer_key or explanation
    return QuestionDiff(number_a=number_a, number_b=number_b, change="changed" if changed else "unchanged",
                        question=word_diff(a.question, b.question), reworded=reworded, options=options,
                        answer_key=answer_key, explanation=explanation)


def compare_quizzes(a: Quiz, b: Quiz) -> QuizDiff:
    if a == b:
        return QuizDiff(questions=[QuestionDiff(number_a=n, number_b=n, change="unchanged",
                                                question=[Segment("same", q.question)])
                                   for n, q in enumerate(b.questions, start=1)])
    questions: list[QuestionDiff] = []
    for i, j in match(a.questions, b.questions, _question_text, threshold=QUESTION_MATCH, by_position=False):
        if i is not None and j is not None:
            questions.append(_compare_question(a.questions[i], b.questions[j], i + 1, j + 1))
        elif j is not None:
            questions.append(QuestionDiff(number_a=None, number_b=j + 1, change="added",
                                          question=[Segment("ins", b.questions[j].question)]))
        else:
            questions.append(QuestionDiff(number_a=i + 1, number_b=None, change="removed",  # type: ignore[operator]
                                          question=[Segment("del", a.questions[i].question)]))  # type: ignore[index]
    return QuizDiff(questions=questions)


def compare_items(kind: Kind, a: Lesson | Quiz | Project, b: Lesson | Quiz | Project) -> ItemDiff:
    """A new revision of an item against the one it replaces."""
    if kind == "QUIZ":
        return ItemDiff(kind=kind, fields=[], quiz=compare_quizzes(a, b))  # type: ignore[arg-type]
    if kind == "LESSON":
        return ItemDiff(kind=kind, fields=compare_lessons(a, b))  # type: ignore[arg-type]
    return ItemDiff(kind=kind, fields=compare_projects(a, b))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Two package versions


class LessonDiff(msgspec.Struct, frozen=True, kw_only=True):
    """One slot of the course: a lesson with its quiz, or (lesson_index None) a module's project."""

    module_index: int
    lesson_index: int | None  # None: the module's project
    title_a: str | None
    title_b: str | None
    change: Change
    fields: list[FieldChange] = []  # the lesson's (or project's) changed fields
    quiz: QuizDiff | None = None
    item_id: str | None = None  # the content item of the lesson (or project), newer version first
    quiz_item_id: str | None = None

    @property
    def answer_key_changes(self) -> list[AnswerKeyChange]:
        return self.quiz.answer_key_changes if self.quiz else []

    @property
    def title(self) -> str:
        return self.title_b or self.title_a or ""

    @property
    def anchor(self) -> str:
        return f"m{self.module_index}-" + (f"l{self.lesson_index}" if self.lesson_index is not None else "project")

    @property
    def details(self) -> list[str]:
        """What changed, in a few words: ["overview", "practice", "quiz"]."""
        parts = list(dict.fromkeys(f.field for f in self.fields))
        if self.quiz and self.quiz.changed:
            parts.append("quiz")
        return parts


class PackageDiff(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[LessonDiff]

    def count(self, change: Change) -> int:
        return sum(1 for entry in self.entries if entry.change == change)

    @property
    def answer_key_changes(self) -> int:
        return sum(len(entry.answer_key_changes) for entry in self.entries)

    @property
    def changed_entries(self) -> list[LessonDiff]:
        return [entry for entry in self.entries if entry.change != "unchanged"]

    def summary(self) -> list[str]:
        """["3 lessons changed", "1 project changed", "1 answer key changed"]; empty when nothing changed."""
        parts = []
        for noun, lessons in (("lesson", True), ("project", False)):
            for change in ("changed", "added", "removed"):
                n = sum(1 for e in self.entries if e.change == change and (e.lesson_index is not None) == lessons)
                if n:
                    parts.append(f"{n} {noun}{'' if n == 1 else 's'} {change}")
        if self.answer_key_changes:
            n = self.answer_key_changes
            parts.append(f"{n} answer key{'' if n == 1 else 's'} changed")
        return parts


def _item_ids(package: CoursePackage) -> dict[tuple[str, int, int | None], str]:
    return {(p.kind, p.module_index, p.lesson_index): p.item_id for p in package.provenance.items}


def _lesson_entry(a: PackagedLesson | None, b: PackagedLesson | None,
                  ids: dict[tuple[str, int, int | None], str]) -> LessonDiff:
    slot = (b or a)
    module, lesson = slot.module_index, slot.lesson_index  # type: ignore[union-attr]
    links = {"item_id": ids.get(("LESSON", module, lesson)), "quiz_item_id": ids.get(("QUIZ", module, lesson))}
    if a is None or b is None:
        return LessonDiff(module_index=module, lesson_index=lesson, title_a=a.lesson.title if a else None,
                          title_b=b.lesson.title if b else None, change="added" if a is None else "removed", **links)
    fields = compare_lessons(a.lesson, b.lesson)
    quiz = compare_quizzes(a.quiz, b.quiz)
    return LessonDiff(module_index=module, lesson_index=lesson, title_a=a.lesson.title, title_b=b.lesson.title,
                      change="changed" if fields or quiz.changed else "unchanged", fields=fields, quiz=quiz, **links)


def diff_packages(a: CoursePackage, b: CoursePackage) -> PackageDiff:
    lessons_a = {(x.module_index, x.lesson_index): x for x in a.lessons}
    lessons_b = {(x.module_index, x.lesson_index): x for x in b.lessons}
    projects_a = {m.index: m.project for m in a.modules}
    projects_b = {m.index: m.project for m in b.modules}
    ids = {**_item_ids(a), **_item_ids(b)}  # the newer version's item where a slot is in both
    entries: list[LessonDiff] = []
    for module in sorted(set(projects_a) | set(projects_b)):
        slots = sorted(k for k in set(lessons_a) | set(lessons_b) if k[0] == module)
        entries += [_lesson_entry(lessons_a.get(slot), lessons_b.get(slot), ids) for slot in slots]
        pa, pb = projects_a.get(module), projects_b.get(module)
        fields = compare_projects(pa, pb) if pa and pb else []
        change: Change = "added" if pa is None else "removed" if pb is None else "changed" if fields else "unchanged"
        entries.append(LessonDiff(module_index=module, lesson_index=None, title_a=pa.title if pa else None,
                                  title_b=pb.title if pb else None, change=change, fields=fields,
                                  item_id=ids.get(("PROJECT", module, None))))
    return PackageDiff(entries=entries)
