from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import msgspec
import pytest

from app.authoring.schemas import Lesson, Project, Quiz, Syllabus
from app.llm.mock import MockProvider
from app.llm.strict_schema import UnsupportedSchema, schema_name, strict_schema, strict_schema_with_lengths
from tests.llm.mock_course import brief, whole_course

# OpenAI, "Structured model outputs" guide, "Supported schemas" (kept here, not imported, so that the
# module's own list cannot quietly grow past what the docs allow).
OPENAI_KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "$ref", "$defs",
    "description", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minItems", "maxItems",
}
TYPES = {"syllabus": Syllabus, "lesson": Lesson, "quiz": Quiz, "project": Project}
each_type = pytest.mark.parametrize("tp", TYPES.values(), ids=TYPES.keys())


def nodes(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every schema node: the root, properties, items, anyOf branches and definitions."""
    yield schema
    for sub in schema.get("properties", {}).values():
        yield from nodes(sub)
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"])
    for sub in schema.get("anyOf", []):
        yield from nodes(sub)
    for sub in schema.get("$defs", {}).values():
        yield from nodes(sub)


@each_type
def test_it_makes_the_root_an_object_not_a_reference(tp):
    schema = strict_schema(tp)
    assert schema["type"] == "object"
    assert "$ref" not in schema and "anyOf" not in schema
    assert tp.__name__ not in schema.get("$defs", {})


@each_type
def test_it_closes_every_object_and_requires_every_property(tp):
    objects = [node for node in nodes(strict_schema(tp)) if node.get("type") == "object"]
    assert objects
    for node in objects:
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])


@each_type
def test_it_sends_only_keywords_openai_supports(tp):
    for node in nodes(strict_schema(tp)):
        assert set(node) <= OPENAI_KEYWORDS, set(node) - OPENAI_KEYWORDS
        assert "title" not in node and "default" not in node


@each_type
def test_every_reference_resolves(tp):
    schema = strict_schema(tp)
    for node in nodes(schema):
        if "$ref" in node:
            assert node["$ref"] == "#" or node["$ref"].removeprefix("#/$defs/") in schema["$defs"]


def test_it_keeps_item_and_number_bounds_but_drops_string_lengths():
    schema = strict_schema(Quiz)
    question = schema["$defs"]["QuizQuestion"]["properties"]
    assert question["options"]["minItems"] == 4 and question["options"]["maxItems"] == 4
    assert question["correct_index"] == {"type": "integer", "minimum": 0, "maximum": 3}
    assert question["question"] == {"type": "string"}
    assert schema["properties"]["questions"]["minItems"] == 3


def test_it_makes_optional_fields_required_and_nullable():
    defs = strict_schema(Lesson)["$defs"]
    example = defs["Concept"]["properties"]["example"]
    assert {"type": "null"} in example["anyOf"]
    assert "example" in defs["Concept"]["required"]


def test_it_requires_fields_with_a_real_default_without_making_them_nullable():
    metadata = strict_schema(Lesson)["$defs"]["LessonMetadata"]
    assert "prerequisites" in metadata["required"]
    assert metadata["properties"]["prerequisites"] == {"type": "array", "items": {"type": "string"}, "maxItems": 8}


def test_it_adds_null_to_an_optional_field_that_is_not_nullable_yet():
    class Note(msgspec.Struct):
        text: str
        tags: list[str] | msgspec.UnsetType = msgspec.UNSET

    schema = strict_schema(Note)
    assert schema["required"] == ["text", "tags"]
    assert schema["properties"]["tags"] == {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                                      {"type": "null"}]}


def test_it_names_the_type_of_a_literal_enum():
    level = strict_schema(Lesson)["$defs"]["LessonMetadata"]["properties"]["level"]
    assert level == {"type": "string", "enum": ["advanced", "beginner", "intermediate"]}


class Node(msgspec.Struct):
    label: str
    children: list[Node]


def test_it_points_a_recursive_reference_to_the_inlined_root():
    schema = strict_schema(Node)
    assert schema["properties"]["children"]["items"] == {"$ref": "#"}
    jsonschema.validate({"label": "a", "children": [{"label": "b", "children": []}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"label": "a", "children": [{"label": "b"}]}, schema)


def test_it_refuses_free_form_mappings():
    class Loose(msgspec.Struct):
        extra: dict[str, str]

    with pytest.raises(UnsupportedSchema, match="Loose.extra"):
        strict_schema(Loose)


def test_it_names_schemas_in_snake_case():
    assert [schema_name(tp) for tp in TYPES.values()] == list(TYPES)
    assert schema_name(Node) == "node"
    from app.authoring.schemas import SyllabusLesson

    assert schema_name(SyllabusLesson) == "syllabus_lesson"


async def test_mock_answers_validate_against_the_strict_schemas(settings):
    course = await whole_course(MockProvider(settings), brief(time_budget_hours=4))
    instances = {"syllabus": [course["syllabus"]], "lesson": course["lessons"], "quiz": course["quizzes"],
                 "project": course["projects"]}
    for name, tp in TYPES.items():
        schema = strict_schema(tp)
        jsonschema.Draft202012Validator.check_schema(schema)
        for instance in instances[name]:
            jsonschema.validate(instance, schema, cls=jsonschema.Draft202012Validator)


def test_the_strict_schema_rejects_what_strict_mode_forbids():
    schema = strict_schema(Lesson)
    lesson = {"title": "A lesson", "duration_minutes": 30, "objectives": ["Explain it"],
              "explanation": {"overview": "o", "concepts": [{"title": "c", "explanation": "e", "example": None}]},
              "key_takeaways": ["a", "b"], "practice": {"prompt": "p", "expected_outcome": "e"},
              "metadata": {"level": "beginner", "prerequisites": []}}
    jsonschema.validate(lesson, schema)
    for broken in (
        {**lesson, "surprise": 1},
        {**lesson, "metadata": {"level": "beginner"}},
        {**lesson, "metadata": {"level": "beginner", "prerequisites": None}},
        {**lesson, "duration_minutes": 4},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_it_pins_an_array_to_an_exact_length_without_changing_the_cached_schema():
    pinned = strict_schema_with_lengths(Quiz, {"questions": 5})
    assert (pinned["properties"]["questions"]["minItems"], pinned["properties"]["questions"]["maxItems"]) == (5, 5)
    # The cached schema every other call sends still allows the type's range.
    questions = strict_schema(Quiz)["properties"]["questions"]
    assert (questions["minItems"], questions["maxItems"]) == (3, 10)
    assert strict_schema_with_lengths(Quiz, {"questions": 5}) is pinned  # cached too
    assert strict_schema_with_lengths(Quiz, None) is strict_schema(Quiz)
    assert pinned["$defs"] == strict_schema(Quiz)["$defs"]


def test_it_refuses_a_fixed_length_it_cannot_honour():
    with pytest.raises(UnsupportedSchema, match="outside the type's bounds"):
        strict_schema_with_lengths(Quiz, {"questions": 12})
    with pytest.raises(UnsupportedSchema, match="top-level array"):
        strict_schema_with_lengths(Quiz, {"answers": 5})
    with pytest.raises(UnsupportedSchema, match="top-level array"):
        strict_schema_with_lengths(Lesson, {"title": 5})
