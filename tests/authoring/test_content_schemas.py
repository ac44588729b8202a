"""Each schema rule has a failing example; the checked-in JSON Schemas match the types."""

import copy
import json

import msgspec
import pytest

from app.authoring.schemas import Lesson, Project, Quiz, Syllabus
from app.json_schemas import EXPORTED, exported_schema
from app.settings import PROJECT_ROOT

EXAMPLES = {kind: json.loads((PROJECT_ROOT / "prompts" / kind / "v1" / "example_output.json").read_text())
            for kind in ("syllabus", "lesson", "quiz", "project")}
TYPES = {"syllabus": Syllabus, "lesson": Lesson, "quiz": Quiz, "project": Project}


def _breaks(kind: str, mutate) -> str:
    data = copy.deepcopy(EXAMPLES[kind])
    mutate(data)
    with pytest.raises(msgspec.ValidationError) as excinfo:
        msgspec.convert(data, type=TYPES[kind])
    return str(excinfo.value)


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_it_accepts_the_worked_examples(kind):
    msgspec.convert(EXAMPLES[kind], type=TYPES[kind])


LESSON_RULES = {
    "title shorter than 5": (lambda d: d.update(title="SQL"), "$.title"),
    "duration under 5 minutes": (lambda d: d.update(duration_minutes=4), "$.duration_minutes"),
    "no objectives": (lambda d: d.update(objectives=[]), "$.objectives"),
    "overview under 50 chars": (lambda d: d["explanation"].update(overview="Too short."), "$.explanation.overview"),
    "no concepts": (lambda d: d["explanation"].update(concepts=[]), "$.explanation.concepts"),
    "concept explanation under 50": (lambda d: d["explanation"]["concepts"][0].update(explanation="Short."),
                                     "$.explanation.concepts[0].explanation"),
    "one takeaway": (lambda d: d.update(key_takeaways=d["key_takeaways"][:1]), "$.key_takeaways"),
    "practice prompt under 30": (lambda d: d["practice"].update(prompt="Do it."), "$.practice.prompt"),
    "expected outcome under 30": (lambda d: d["practice"].update(expected_outcome="Works."),
                                  "$.practice.expected_outcome"),
    "unknown level": (lambda d: d["metadata"].update(level="expert"), "$.metadata.level"),
    "extra field": (lambda d: d.update(author="model"), "author"),
}


@pytest.mark.parametrize("rule", sorted(LESSON_RULES))
def test_it_enforces_each_lesson_rule(rule):
    mutate, where = LESSON_RULES[rule]
    assert where in _breaks("lesson", mutate)


QUIZ_RULES = {
    "three options": (lambda d: d["questions"][0].update(options=d["questions"][0]["options"][:3]), "options"),
    "five options": (lambda d: d["questions"][0]["options"].append("Another"), "options"),
    "correct index 4": (lambda d: d["questions"][0].update(correct_index=4), "correct_index"),
    "negative correct index": (lambda d: d["questions"][0].update(correct_index=-1), "correct_index"),
    "duplicate options": (lambda d: d["questions"][0].update(options=["A", "a", "B", "C"]), "different"),
    "no explanation": (lambda d: d["questions"][0].update(explanation=""), "explanation"),
}


@pytest.mark.parametrize("rule", sorted(QUIZ_RULES))
def test_it_enforces_each_quiz_rule(rule):
    mutate, where = QUIZ_RULES[rule]
    assert where in _breaks("quiz", mutate)


def test_it_requires_rubric_weights_to_sum_to_100():
    message = _breaks("project", lambda d: d["rubric"][0].update(weight=d["rubric"][0]["weight"] + 1))
    assert "rubric weights must sum to 100" in message
    assert "problem_statement" in _breaks("project", lambda d: d.update(problem_statement="Build a thing."))
    assert "deliverables" in _breaks("project", lambda d: d.update(deliverables=[]))


def test_it_enforces_syllabus_structure():
    assert "$.modules" in _breaks("syllabus", lambda d: d.update(modules=[]))
    assert "lessons" in _breaks("syllabus", lambda d: d["modules"][0].update(lessons=[]))
    assert "objectives" in _breaks("syllabus", lambda d: d["modules"][0]["lessons"][0].update(objectives=[]))
    assert "estimated_minutes" in _breaks(
        "syllabus", lambda d: d["modules"][0]["lessons"][0].update(estimated_minutes=1))


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_it_keeps_the_checked_in_json_schemas_in_step_with_the_types(name):
    path = PROJECT_ROOT / "schemas" / f"{name}.schema.json"
    assert path.read_bytes() == exported_schema(name), (
        f"{path.name} is out of date: run `coursewright export-schemas` and commit the result")


def test_generation_refuses_a_quiz_that_asks_the_same_question_twice():
    from app.authoring.generation import quiz_rules as _quiz_rules

    quiz = msgspec.convert(EXAMPLES["quiz"], type=Quiz)
    assert _quiz_rules(quiz) is None
    repeated = msgspec.structs.replace(quiz, questions=[quiz.questions[0], *quiz.questions[:4]])
    assert "each question must be asked only once" in _quiz_rules(repeated)
    assert "expected exactly 5 questions" in _quiz_rules(msgspec.structs.replace(quiz, questions=quiz.questions[:3]))
