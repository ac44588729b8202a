"""Differences between two versions of a course, per lesson and per module project (B4).

Lessons are matched by their slot (module, lesson position). A changed lesson lists what changed;
a changed quiz answer key (a different correct option, or a question's options changed under it)
is called out separately, because it changes how learners are scored.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from app.authoring.schemas import Lesson, Quiz
from app.publishing.schemas import CoursePackage, PackagedLesson

Change = Literal["added", "removed", "changed", "unchanged"]


class AnswerKeyChange(msgspec.Struct, frozen=True, kw_only=True):
    question: int  # from 1
    old_answer: str
    new_answer: str
    old_option: str  # letter A-D
    new_option: str

    @property
    def moved_only(self) -> bool:
        """The same answer under another letter: learners answering by position are scored differently."""
        return self.old_answer == self.new_answer


class LessonDiff(msgspec.Struct, frozen=True, kw_only=True):
    module_index: int
    lesson_index: int | None  # None: the module's project
    title_a: str | None
    title_b: str | None
    change: Change
    details: list[str]
    answer_key_changes: list[AnswerKeyChange]


class PackageDiff(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[LessonDiff]

    def count(self, change: Change) -> int:
        return sum(1 for entry in self.entries if entry.change == change)

    @property
    def answer_key_changes(self) -> int:
        return sum(len(entry.answer_key_changes) for entry in self.entries)


def _lesson_details(a: Lesson, b: Lesson) -> list[str]:
    details = []
    if a.title != b.title:
        details.append(f"title: “{a.title}” → “{b.title}”")
    if a.duration_minutes != b.duration_minutes:
        details.append(f"duration: {a.duration_minutes} → {b.duration_minutes} min")
    if a.objectives != b.objectives:
        details.append("objectives changed")
    if a.explanation.overview != b.explanation.overview:
        details.append("overview rewritten")
    titles_a = [c.title for c in a.explanation.concepts]
    titles_b = [c.title for c in b.explanation.concepts]
    if titles_a != titles_b:
        details.append(f"concepts: {', '.join(titles_a)} → {', '.join(titles_b)}")
    elif a.explanation.concepts != b.explanation.concepts:
        details.append("concept explanations or examples changed")
    if a.key_takeaways != b.key_takeaways:
        details.append("key takeaways changed")
    if a.practice != b.practice:
        details.append("practice changed")
    return details


def _quiz_details(a: Quiz, b: Quiz) -> tuple[list[str], list[AnswerKeyChange]]:
    details: list[str] = []
    answer_keys: list[AnswerKeyChange] = []
    if len(a.questions) != len(b.questions):
        details.append(f"quiz: {len(a.questions)} → {len(b.questions)} questions")
    letters = "ABCD"
    for n, (qa, qb) in enumerate(zip(a.questions, b.questions, strict=False), start=1):
        if qa.correct_index != qb.correct_index or qa.options[qa.correct_index] != qb.options[qb.correct_index]:
            answer_keys.append(AnswerKeyChange(
                question=n, old_answer=qa.options[qa.correct_index], new_answer=qb.options[qb.correct_index],
                old_option=letters[qa.correct_index], new_option=letters[qb.correct_index]))
        elif qa.question != qb.question:
            details.append(f"quiz question {n} reworded")
        elif qa != qb:
            details.append(f"quiz question {n}: other options or explanation changed")
    return details, answer_keys


def _lesson_entry(a: PackagedLesson | None, b: PackagedLesson | None) -> LessonDiff:
    slot = a or b
    if a is None or b is None:
        return LessonDiff(module_index=slot.module_index, lesson_index=slot.lesson_index,
                          title_a=a.lesson.title if a else None, title_b=b.lesson.title if b else None,
                          change="added" if a is None else "removed", details=[], answer_key_changes=[])
    details = _lesson_details(a.lesson, b.lesson)
    quiz_details, answer_keys = _quiz_details(a.quiz, b.quiz)
    details += quiz_details
    return LessonDiff(module_index=slot.module_index, lesson_index=slot.lesson_index, title_a=a.lesson.title,
                      title_b=b.lesson.title, change="changed" if details or answer_keys else "unchanged",
                      details=details, answer_key_changes=answer_keys)


def diff_packages(a: CoursePackage, b: CoursePackage) -> PackageDiff:
    lessons_a = {(x.module_index, x.lesson_index): x for x in a.lessons}
    lessons_b = {(x.module_index, x.lesson_index): x for x in b.lessons}
    projects_a = {m.index: m.project for m in a.modules}
    projects_b = {m.index: m.project for m in b.modules}
    entries: list[LessonDiff] = []
    for module in sorted(set(projects_a) | set(projects_b)):
        slots = sorted(k for k in set(lessons_a) | set(lessons_b) if k[0] == module)
        entries += [_lesson_entry(lessons_a.get(slot), lessons_b.get(slot)) for slot in slots]
        pa, pb = projects_a.get(module), projects_b.get(module)
        change: Change = "added" if pa is None else "removed" if pb is None else (
            "unchanged" if pa == pb else "changed")
        details = []
        if change == "changed":
            details = [f"{name} changed" for name in ("title", "problem_statement", "constraints", "deliverables",
                                                      "rubric", "estimated_hours")
                       if getattr(pa, name) != getattr(pb, name)]
        entries.append(LessonDiff(module_index=module, lesson_index=None, title_a=pa.title if pa else None,
                                  title_b=pb.title if pb else None, change=change, details=details,
                                  answer_key_changes=[]))
    return PackageDiff(entries=entries)
