"""Item analysis of quiz questions, as Moodle's quiz statistics report defines it. Pure functions: numbers in,
numbers out, no database. Every question here is worth one mark (right or wrong), so a question's score in an
attempt is 0 or 1 and an attempt's total is its number of right answers.

- Facility index: the share of attempts that got the question right (0 = nobody, 1 = everybody).
- Discrimination index: the Pearson correlation, over the attempts at the quiz, between the score on this
  question and the score on the REST of the quiz (the attempt's total minus this question). Leaving the
  question out of the total keeps it from correlating with itself. Close to 1: learners who do well on the
  quiz get it right and weak ones do not; near 0 or negative: it does not tell them apart (or misleads).
  Undefined with fewer than 2 attempts, or when either score is the same in every attempt (no variance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

import msgspec

TOO_HARD_BELOW = 0.3
TOO_EASY_ABOVE = 0.95
WEAK_DISCRIMINATION_BELOW = 0.2


def facility(correct: int, attempts: int) -> float | None:
    """Share of attempts answering correctly; None without attempts."""
    if attempts <= 0:
        return None
    return correct / attempts


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """The Pearson correlation of two equally long series; None when undefined (n < 2 or a constant series)."""
    n = len(xs)
    if n != len(ys):
        raise ValueError("pearson() needs two series of the same length")
    if n < 2:
        return None
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    var_x = sum((x - mean_x) ** 2 for x in xs)
    var_y = sum((y - mean_y) ** 2 for y in ys)
    if var_x == 0 or var_y == 0:
        return None
    return cov / math.sqrt(var_x * var_y)


def discrimination(scored_attempts: Sequence[Sequence[int]], question: int) -> float | None:
    """Discrimination index of question `question` over attempts given as per-question scores (0 or 1 each,
    unanswered = 0): corr(score on the question, attempt total - score on the question)."""
    on_question = [attempt[question] for attempt in scored_attempts]
    rest = [sum(attempt) - attempt[question] for attempt in scored_attempts]
    return pearson(on_question, rest)


def score_attempt(answers: Sequence[int | None], answer_key: Sequence[int]) -> list[int]:
    """Per-question scores of one attempt: 1 for the right option, 0 for a wrong or missing answer. An attempt
    stored with fewer answers than the key (it cannot happen today) scores 0 on the missing ones."""
    return [int(i < len(answers) and answers[i] == right) for i, right in enumerate(answer_key)]


class Flag(StrEnum):
    TOO_HARD = "too hard"
    TOO_EASY = "too easy"
    WEAK = "does not separate strong from weak learners"


def flags(facility_index: float | None, discrimination_index: float | None) -> list[Flag]:
    found = []
    if facility_index is not None and facility_index < TOO_HARD_BELOW:
        found.append(Flag.TOO_HARD)
    if facility_index is not None and facility_index > TOO_EASY_ABOVE:
        found.append(Flag.TOO_EASY)
    if discrimination_index is not None and discrimination_index < WEAK_DISCRIMINATION_BELOW:
        found.append(Flag.WEAK)
    return found


class QuestionStats(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the item analysis table."""

    index: int  # from 0, as stored in question_stat
    attempts: int
    correct: int
    facility: float | None
    discrimination: float | None
    average_time_ms: int | None
    flags: list[Flag]


def analyse_question(index: int, *, attempts: int, correct: int, total_time_ms: int,
                     scored_attempts: Sequence[Sequence[int]]) -> QuestionStats:
    """`attempts`, `correct` and `total_time_ms` come from question_stat (questions that were answered);
    `scored_attempts` are all attempts at the quiz, scored per question, for the discrimination index."""
    fac = facility(correct, attempts)
    disc = discrimination(scored_attempts, index) if scored_attempts else None
    return QuestionStats(index=index, attempts=attempts, correct=correct, facility=fac, discrimination=disc,
                         average_time_ms=total_time_ms // attempts if attempts else None, flags=flags(fac, disc))
