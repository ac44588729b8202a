"""The item statistics on a hand-computed example (pure functions, no database)."""

import math

import pytest

from app.learners.statistics import (
    Flag,
    analyse_question,
    discrimination,
    facility,
    flags,
    pearson,
    score_attempt,
)

# Five attempts at a four-question quiz, scored per question (1 right, 0 wrong or unanswered):
#
#   attempt   Q1 Q2 Q3 Q4   total
#   A          1  1  1  1     4
#   B          1  1  0  1     3
#   C          1  0  0  1     2
#   D          0  1  0  1     2
#   E          0  0  0  1     1
ATTEMPTS = [[1, 1, 1, 1], [1, 1, 0, 1], [1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 0, 1]]


def test_it_computes_the_facility_index_as_the_share_correct():
    # Q1: 3 of 5 right = 0.6; Q3: 1 of 5 = 0.2; Q4: 5 of 5 = 1.0.
    assert facility(3, 5) == 0.6
    assert facility(1, 5) == 0.2
    assert facility(5, 5) == 1.0
    assert facility(0, 0) is None


def test_it_computes_the_discrimination_index_of_the_worked_example():
    # Q1: x = score on Q1 = [1, 1, 1, 0, 0]; y = rest of the quiz (total - x) = [3, 2, 1, 2, 1].
    #   mean x = 0.6, mean y = 1.8
    #   dx = [.4, .4, .4, -.6, -.6], dy = [1.2, .2, -.8, .2, -.8]
    #   sum dx*dy = .48 + .08 - .32 - .12 + .48 = 0.6
    #   sum dx^2 = 3(.16) + 2(.36) = 1.2;  sum dy^2 = 1.44 + .04 + .64 + .04 + .64 = 2.8
    #   r = 0.6 / sqrt(1.2 * 2.8) = 0.6 / sqrt(3.36) = 3 / (2 sqrt 21) = 0.3273...
    assert discrimination(ATTEMPTS, 0) == pytest.approx(3 / (2 * math.sqrt(21)))
    assert discrimination(ATTEMPTS, 0) == pytest.approx(0.3273, abs=1e-4)
    # Q3: x = [1, 0, 0, 0, 0]; y = [3, 3, 2, 2, 1]; mean x = 0.2, mean y = 2.2
    #   dx = [.8, -.2, -.2, -.2, -.2], dy = [.8, .8, -.2, -.2, -1.2]
    #   sum dx*dy = .64 - .16 + .04 + .04 + .24 = 0.8
    #   sum dx^2 = .64 + 4(.04) = 0.8;  sum dy^2 = .64 + .64 + .04 + .04 + 1.44 = 2.8
    #   r = 0.8 / sqrt(0.8 * 2.8) = sqrt(2/7) = 0.5345...
    assert discrimination(ATTEMPTS, 2) == pytest.approx(math.sqrt(2 / 7))
    # Q4: everybody right: no variance on the question, so the index is undefined (not 0).
    assert discrimination(ATTEMPTS, 3) is None


def test_it_leaves_the_index_undefined_below_two_attempts_or_without_variance():
    assert discrimination([], 0) is None
    assert discrimination([[1, 0, 1]], 0) is None
    # Two attempts, same rest score (1 and 1): the rest has no variance.
    assert discrimination([[1, 1, 0], [0, 0, 1]], 0) is None


def test_it_finds_a_question_that_weak_learners_get_right():
    # x = [0, 0, 1, 1], y = [3, 2, 1, 0]: mean x = .5, mean y = 1.5
    #   sum dx*dy = -.75 - .25 - .25 - .75 = -2; sum dx^2 = 1; sum dy^2 = 5; r = -2 / sqrt(5) = -0.894...
    assert pearson([0, 0, 1, 1], [3, 2, 1, 0]) == pytest.approx(-2 / math.sqrt(5))


def test_it_scores_an_attempt_from_its_answers_and_the_key():
    assert score_attempt([2, None, 1, 0], [2, 3, 0, 0]) == [1, 0, 0, 1]
    assert score_attempt([2], [2, 3]) == [1, 0]


def test_it_flags_by_the_thresholds_and_not_on_them():
    assert flags(0.29, 0.5) == [Flag.TOO_HARD]
    assert flags(0.3, 0.2) == []
    assert flags(0.95, 0.2) == []
    assert flags(0.96, None) == [Flag.TOO_EASY]
    assert flags(0.6, 0.19) == [Flag.WEAK]
    assert flags(0.2, -0.4) == [Flag.TOO_HARD, Flag.WEAK]
    assert flags(None, None) == []


def test_it_analyses_one_question_of_the_example():
    # question_stat for Q3: 5 answered, 1 right, 60 s in all -> facility 0.2, 12 s each, flagged too hard.
    q3 = analyse_question(2, attempts=5, correct=1, total_time_ms=60_000, scored_attempts=ATTEMPTS)
    assert (q3.facility, q3.average_time_ms, q3.flags) == (0.2, 12_000, [Flag.TOO_HARD])
    assert q3.discrimination == pytest.approx(0.5345, abs=1e-4)
    q4 = analyse_question(3, attempts=5, correct=5, total_time_ms=0, scored_attempts=ATTEMPTS)
    assert (q4.facility, q4.discrimination, q4.flags) == (1.0, None, [Flag.TOO_EASY])
