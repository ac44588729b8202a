"""Signal -> suggestion(s): a pure, exhaustive mapping (SPEC I2). Nothing here reads the database or the clock:
the same signal and the same resolved target always give the same suggestions, byte for byte (invariant 8).

Each signal type names one or more specs: what kind of suggestion, at which scope, aimed at which part of the
course (the lesson the signal is about, that lesson's quiz, the course's first lesson, or the course itself),
and the message in words. A signal type without a line here raises UnknownSignal: a new rule in
app/analytics/signals.py must say what it suggests before it can run (tests/insights/test_registry.py
enumerates SignalType).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

import msgspec

from app.analytics.tables import SignalType
from app.insights.tables import SuggestionScope, SuggestionType


class Aim(StrEnum):
    LESSON = "LESSON"  # the lesson the signal is about
    QUIZ = "QUIZ"  # that lesson's quiz
    FIRST_LESSON = "FIRST_LESSON"  # the course's first lesson (course-wide signals about starting)
    COURSE = "COURSE"  # the course as a whole: the syllabus


class Spec(msgspec.Struct, frozen=True):
    suggestion_type: SuggestionType
    scope: SuggestionScope
    aim: Aim
    message: str  # str.format() with the signal's metrics and the target's words


RULES: dict[SignalType, tuple[Spec, ...]] = {
    SignalType.HIGH_DROP_OFF: (
        Spec(SuggestionType.DROP_OFF, SuggestionScope.LESSON, Aim.LESSON,
             "{where} loses {drop_off_rate:.0%} of the learners who read the lesson before it ({viewers} of "
             "{viewers_before}). Make its start easier to follow, or split it."),
    ),
    SignalType.LOW_QUIZ_PASS_RATE: (
        Spec(SuggestionType.HIGH_RETRY, SuggestionScope.QUIZ, Aim.QUIZ,
             "The quiz of {where} is passed in {pass_rate:.0%} of {attempts} attempts. Check its questions and "
             "answer key for ambiguity."),
        Spec(SuggestionType.CONTENT_CLARITY, SuggestionScope.LESSON, Aim.LESSON,
             "Learners of {where} fail its quiz ({pass_rate:.0%} pass). Explain what the quiz asks more "
             "clearly in the lesson."),
    ),
    SignalType.LOW_ENGAGEMENT: (
        Spec(SuggestionType.LOW_ENGAGEMENT, SuggestionScope.LESSON, Aim.FIRST_LESSON,
             "Only {engagement_rate:.0%} of the {course_viewers} learners who looked at the course opened "
             "{where}. Make the first lesson's opening more inviting."),
    ),
    SignalType.HIGH_REFUND_RATE: (
        Spec(SuggestionType.LOW_COMPLETION, SuggestionScope.COURSE, Aim.COURSE,
             "{refunds} of {purchases} purchases of {where} were refunded ({refund_rate:.0%}). Check that the "
             "course delivers what its description promises."),
    ),
}


class UnknownSignal(ValueError):
    """A signal type the registry has no line for."""


def specs_for(signal_type: str) -> tuple[Spec, ...]:
    try:
        return RULES[SignalType(signal_type)]
    except (ValueError, KeyError):
        raise UnknownSignal(f"No suggestion is defined for the signal type {signal_type!r}.") from None


class LessonRef(msgspec.Struct, frozen=True):
    item_id: uuid.UUID
    quiz_item_id: uuid.UUID
    number: int  # across the course, from 1 (the signal's lesson_index)
    module_number: int
    lesson_number: int  # inside its module
    title: str
    module_title: str


class Target(msgspec.Struct, frozen=True):
    """What a signal is about, in the newest published version of its course."""

    course_id: uuid.UUID  # the syllabus
    course_title: str
    package_id: uuid.UUID
    package_version: int
    lesson: LessonRef | None  # None for a course-wide signal
    first_lesson: LessonRef | None


class Draft(msgspec.Struct, frozen=True):
    """One suggestion, ready to store."""

    course_id: uuid.UUID
    scope: SuggestionScope
    target_id: uuid.UUID
    suggestion_type: SuggestionType
    severity: str
    message: str
    evidence: dict[str, Any]
    source_signal_id: uuid.UUID


def _where(lesson: LessonRef) -> str:
    return f"lesson {lesson.module_number}.{lesson.lesson_number} “{lesson.title}”"


def _aimed(spec: Spec, target: Target) -> tuple[uuid.UUID, LessonRef | None] | None:
    if spec.aim == Aim.COURSE:
        return target.course_id, None
    lesson = target.first_lesson if spec.aim == Aim.FIRST_LESSON else target.lesson
    if lesson is None:
        return None
    return (lesson.quiz_item_id if spec.aim == Aim.QUIZ else lesson.item_id), lesson


def _lesson_words(lesson: LessonRef) -> dict[str, Any]:
    return {"number": lesson.number, "module": lesson.module_number, "lesson": lesson.lesson_number,
            "title": lesson.title, "module_title": lesson.module_title, "lesson_item_id": str(lesson.item_id),
            "quiz_item_id": str(lesson.quiz_item_id)}


def _message(spec: Spec, where: str, metrics: dict[str, Any], summary: str) -> str:
    try:
        text = spec.message.format(where=where, **metrics)
    except (KeyError, ValueError, TypeError):
        # A signal whose snapshot lacks a figure (written by hand, or by an older rule) still says something.
        text = f"{where}: {summary}"
    return text[:1].upper() + text[1:]


def suggestions_for(signal: dict[str, Any], target: Target) -> list[Draft]:
    """The suggestions one signal makes about its resolved target. `signal` is an analytics_signal row with
    metrics and thresholds decoded."""
    drafts = []
    for spec in specs_for(signal["signal_type"]):
        aimed = _aimed(spec, target)
        if aimed is None:
            continue  # the lesson is not in the published version (it had more lessons when the signal was seen)
        target_id, lesson = aimed
        where = _where(lesson) if lesson else f"“{target.course_title}”"
        metrics = signal["metrics"]
        evidence = {
            "signal": {"id": str(signal["id"]), "type": signal["signal_type"], "severity": signal["severity"],
                       "day": signal["day"].isoformat(), "lesson_index": signal["lesson_index"],
                       "summary": signal["summary"]},
            "metrics": metrics,
            "window": {"start": signal["window_start"].isoformat(), "end": signal["window_end"].isoformat()},
            "thresholds": signal["thresholds"],
            "target": {"aim": spec.aim.value, "course_id": str(target.course_id), "course_title": target.course_title,
                       "package_version": target.package_version,
                       "lesson": _lesson_words(lesson) if lesson else None},
        }
        drafts.append(Draft(
            course_id=target.course_id, scope=spec.scope, target_id=target_id, suggestion_type=spec.suggestion_type,
            severity=signal["severity"], message=_message(spec, where, metrics, signal["summary"]), evidence=evidence,
            source_signal_id=signal["id"]))
    return drafts
