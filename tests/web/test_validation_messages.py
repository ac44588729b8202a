from typing import Annotated

import msgspec

from app.web.inputs import FieldProblem, explain_validation


class Concept(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=5)]


class Lesson(msgspec.Struct):
    title: Annotated[str, msgspec.Meta(min_length=5, max_length=200)]
    duration_minutes: Annotated[int, msgspec.Meta(ge=5)]
    concepts: Annotated[list[Concept], msgspec.Meta(min_length=1)]


def _problem(data, labels=None) -> FieldProblem:
    try:
        msgspec.convert(data, Lesson)
    except msgspec.ValidationError as exc:
        return explain_validation(exc, labels)
    raise AssertionError("the data was valid")


GOOD = {"title": "Lists and loops", "duration_minutes": 20, "concepts": [{"name": "Iteration"}]}


def test_it_names_the_field_and_says_what_is_wrong_in_words():
    problem = _problem({**GOOD, "title": "Abc"})
    assert problem == FieldProblem("title", "Title", "must be at least 5 characters long")
    assert str(problem) == "Title: must be at least 5 characters long"
    assert "Expected" not in str(problem) and "$." not in str(problem)


def test_it_numbers_list_entries_from_one_and_uses_labels():
    problem = _problem({**GOOD, "concepts": [{"name": "Iteration"}, {"name": "x"}]}, {"concepts": "Concept"})
    assert problem == FieldProblem("concepts.1.name", "Concept 2 › name", "must be at least 5 characters long")


def test_it_words_missing_fields_wrong_types_and_bounds():
    assert str(_problem({"title": "Lists", "concepts": [{"name": "Iteration"}]})) == "Duration minutes: is required"
    assert str(_problem({**GOOD, "duration_minutes": "ten"})) == "Duration minutes: must be a whole number"
    assert str(_problem({**GOOD, "duration_minutes": 2})) == "Duration minutes: must be at least 5"
    assert str(_problem({**GOOD, "concepts": []})) == "Concepts: needs at least 1 entry"
    assert str(_problem({**GOOD, "concepts": [{}]})) == "Concepts 1 › name: is required"


def test_it_labels_a_path_that_starts_with_a_list_index():
    try:
        msgspec.convert([{"name": "Iteration"}, {"name": "x"}], list[Concept])
    except msgspec.ValidationError as exc:
        assert str(explain_validation(exc)) == "Item 2 › name: must be at least 5 characters long"
    else:
        raise AssertionError("the data was valid")
