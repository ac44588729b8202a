"""The signal -> suggestion registry (SPEC I2): exhaustive over SignalType, pure and deterministic."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest

from app.analytics.tables import SignalType
from app.insights import registry
from app.insights.tables import SuggestionScope, SuggestionType

LESSON = registry.LessonRef(item_id=uuid.UUID(int=1), quiz_item_id=uuid.UUID(int=2), number=3, module_number=2,
                            lesson_number=1, title="Loops", module_title="Control flow")
FIRST = registry.LessonRef(item_id=uuid.UUID(int=3), quiz_item_id=uuid.UUID(int=4), number=1, module_number=1,
                           lesson_number=1, title="Hello", module_title="Basics")
TARGET = registry.Target(course_id=uuid.UUID(int=9), course_title="Python", package_id=uuid.UUID(int=8),
                         package_version=2, lesson=LESSON, first_lesson=FIRST)
METRICS = {
    SignalType.HIGH_DROP_OFF: {"viewers_before": 40, "viewers": 10, "drop_off_rate": 0.75},
    SignalType.LOW_QUIZ_PASS_RATE: {"attempts": 30, "passes": 6, "pass_rate": 0.2},
    SignalType.HIGH_REFUND_RATE: {"purchases": 20, "refunds": 8, "refund_rate": 0.4},
    SignalType.LOW_ENGAGEMENT: {"course_viewers": 50, "started": 5, "engagement_rate": 0.1},
}


def _signal(signal_type: SignalType, metrics: dict | None = None) -> dict:
    return {"id": uuid.UUID(int=77), "signal_type": signal_type.value, "severity": "high", "day": dt.date(2026, 3, 2),
            "lesson_index": 0 if signal_type in (SignalType.HIGH_REFUND_RATE, SignalType.LOW_ENGAGEMENT) else 3,
            "summary": "Something happened.", "window_start": dt.date(2026, 2, 24), "window_end": dt.date(2026, 3, 2),
            "metrics": METRICS[signal_type] if metrics is None else metrics, "thresholds": {"min_learners": 20}}


@pytest.mark.parametrize("signal_type", list(SignalType))
def test_it_maps_every_signal_type_to_at_least_one_suggestion(signal_type):
    specs = registry.specs_for(signal_type.value)
    assert specs and all(isinstance(s.suggestion_type, SuggestionType) for s in specs)
    drafts = registry.suggestions_for(_signal(signal_type), TARGET)
    assert len(drafts) == len(specs)
    for draft in drafts:
        assert draft.source_signal_id == uuid.UUID(int=77) and draft.severity == "high"
        assert "{" not in draft.message and draft.evidence["metrics"] == METRICS[signal_type]


def test_it_raises_on_a_signal_type_it_does_not_know():
    with pytest.raises(registry.UnknownSignal, match="page_scrolled"):
        registry.specs_for("page_scrolled")
    assert set(registry.RULES) == set(SignalType)


def test_it_aims_each_suggestion_at_the_right_part_of_the_course():
    aims = {st: [(d.suggestion_type, d.scope, d.target_id) for d in registry.suggestions_for(_signal(st), TARGET)]
            for st in SignalType}
    assert aims[SignalType.HIGH_DROP_OFF] == [(SuggestionType.DROP_OFF, SuggestionScope.LESSON, LESSON.item_id)]
    assert aims[SignalType.LOW_QUIZ_PASS_RATE] == [
        (SuggestionType.HIGH_RETRY, SuggestionScope.QUIZ, LESSON.quiz_item_id),
        (SuggestionType.CONTENT_CLARITY, SuggestionScope.LESSON, LESSON.item_id)]
    assert aims[SignalType.LOW_ENGAGEMENT] == [(SuggestionType.LOW_ENGAGEMENT, SuggestionScope.LESSON, FIRST.item_id)]
    assert aims[SignalType.HIGH_REFUND_RATE] == [(SuggestionType.LOW_COMPLETION, SuggestionScope.COURSE,
                                                  TARGET.course_id)]


def test_it_is_deterministic_and_words_the_figures():
    first = registry.suggestions_for(_signal(SignalType.HIGH_DROP_OFF), TARGET)
    again = registry.suggestions_for(_signal(SignalType.HIGH_DROP_OFF), TARGET)
    assert msgspec.json.encode(first) == msgspec.json.encode(again)
    assert first[0].message.startswith("Lesson 2.1 “Loops” loses 75% of the learners")
    assert first[0].evidence["target"]["lesson"]["number"] == 3
    assert first[0].evidence["window"] == {"start": "2026-02-24", "end": "2026-03-02"}


def test_it_still_words_a_signal_whose_snapshot_lacks_figures():
    [draft] = registry.suggestions_for(_signal(SignalType.HIGH_DROP_OFF, {}), TARGET)
    assert draft.message == "Lesson 2.1 “Loops”: Something happened."


def test_it_skips_a_lesson_the_published_version_no_longer_has():
    target = msgspec.structs.replace(TARGET, lesson=None)
    assert registry.suggestions_for(_signal(SignalType.HIGH_DROP_OFF), target) == []
