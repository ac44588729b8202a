"""The deterministic post-processor (A3): same input, same output, no model involved.

It trims every string (outer whitespace, trailing spaces on each line, runs of blank lines; inner
spacing is kept because it is meaningful in code examples), renumbers modules and lessons from 1 in
order, copies the fields the model was only asked to repeat from their source (the brief, the lesson's
outline), and clamps time estimates: a syllabus never promises more minutes than the brief's time
budget, and a lesson's duration follows its outline. The result is converted back through the msgspec
type, so a normalized value is validated again.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from app.authoring.schemas import CourseBrief, Lesson, Syllabus, SyllabusLesson

T = TypeVar("T")
_BLANK_LINES = re.compile(r"\n{3,}")
MIN_LESSON_MINUTES = 5


def _tidy(value: Any) -> Any:
    if isinstance(value, str):
        lines = [line.rstrip() for line in value.strip().splitlines()]
        return _BLANK_LINES.sub("\n\n", "\n".join(lines))
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    return value


def tidy(value: T) -> T:
    return msgspec.convert(_tidy(msgspec.to_builtins(value)), type=type(value))


def normalize_syllabus(syllabus: Syllabus, brief: CourseBrief) -> Syllabus:
    data = _tidy(msgspec.to_builtins(syllabus))
    course = data["course"]
    course.update(title=brief.title, audience=brief.audience, level=brief.level,
                  teaching_style=brief.teaching_style, constraints=list(brief.constraints),
                  time_budget_hours=brief.time_budget_hours)
    for m, module in enumerate(data["modules"], start=1):
        module["index"] = m
        for n, lesson in enumerate(module["lessons"], start=1):
            lesson["index"] = n
    lessons = [lesson for module in data["modules"] for lesson in module["lessons"]]
    budget = int(brief.time_budget_hours * 60)
    total = sum(lesson["estimated_minutes"] for lesson in lessons)
    if total > budget:
        # Scale every estimate down proportionally; a lesson keeps at least five minutes.
        for lesson in lessons:
            lesson["estimated_minutes"] = max(MIN_LESSON_MINUTES, lesson["estimated_minutes"] * budget // total)
    return msgspec.convert(data, type=Syllabus)


def normalize_lesson(lesson: Lesson, outline: SyllabusLesson, level: str) -> Lesson:
    data = _tidy(msgspec.to_builtins(lesson))
    data.update(title=outline.title, duration_minutes=outline.estimated_minutes, objectives=list(outline.objectives))
    data["metadata"]["level"] = level
    return msgspec.convert(data, type=Lesson)
