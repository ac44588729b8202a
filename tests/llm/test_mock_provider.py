"""MockProvider: deterministic, input-specific, schema-valid course content, and its failure knobs."""

from __future__ import annotations

import json
import math
import time

import msgspec
import pytest

from app.authoring.schemas import Lesson, Project, Quiz, Syllabus
from app.json_schemas import EXPORTED
from app.llm.base import CompletionRequest, LLMError, RateLimited, TimedOut
from app.llm.mock import MockProvider
from app.llm.prompts import PROMPTS_DIR, load_prompt
from app.llm.strict_schema import schema_name, strict_schema
from tests.llm.conftest import make_settings
from tests.llm.mock_course import (
    answer,
    brief,
    complete,
    lesson_variables,
    project_variables,
    quiz_variables,
    request,
    syllabus_variables,
    whole_course,
)

BRIEFS = [
    brief(),
    brief(title="Learn Go", level="advanced", time_budget_hours=1, teaching_style="exam-focused", constraints=[]),
    brief(title="Sourdough Baking for Beginners", audience="home bakers with no experience", level="beginner",
          time_budget_hours=6, teaching_style="socratic", constraints=["no special equipment"]),
    brief(title="Data Analysis with Python", level="intermediate", time_budget_hours=60,
          teaching_style="conceptual"),
    brief(title="Mastering Kubernetes Operations (2025 edition)", audience="platform engineers", level="advanced",
          time_budget_hours=13.7, teaching_style="project-based", constraints=["project-based", "exam-focused"]),
    brief(title="A" * 5 + " " + "very long course title " * 8, audience="x" * 300, time_budget_hours=200),
]


@pytest.fixture
def mock(settings) -> MockProvider:
    return MockProvider(settings)


async def test_it_answers_the_same_request_with_byte_identical_text(settings):
    first, second = MockProvider(settings), MockProvider(settings)
    syllabus = await answer(first, "syllabus", syllabus_variables(brief()))
    lesson = await answer(first, "lesson", lesson_variables(syllabus, 1, 2))
    for operation, variables in [
        ("syllabus", syllabus_variables(brief())),
        ("lesson", lesson_variables(syllabus, 1, 2)),
        ("quiz", quiz_variables(syllabus, 1, 2, lesson)),
        ("project", project_variables(syllabus, 1)),
    ]:
        a = await complete(first, operation, variables)
        b = await complete(second, operation, variables)
        assert a == b, operation


async def test_it_answers_different_inputs_differently(mock):
    sql = await answer(mock, "syllabus", syllabus_variables(brief()))
    baking = await answer(mock, "syllabus", syllabus_variables(brief(title="Sourdough Baking at Home")))
    advanced = await answer(mock, "syllabus", syllabus_variables(brief(level="advanced")))
    assert "PostgreSQL Performance" in json.dumps(sql) and "PostgreSQL" not in json.dumps(baking)
    assert "Sourdough Baking" in baking["modules"][0]["title"]
    # The level changes the progression, not just a word.
    assert [m["title"] for m in sql["modules"]] != [m["title"] for m in advanced["modules"]]
    first = await answer(mock, "lesson", lesson_variables(sql, 0, 0))
    second = await answer(mock, "lesson", lesson_variables(sql, 0, 1))
    assert first["explanation"] != second["explanation"]


@pytest.mark.parametrize("course_brief", BRIEFS, ids=lambda b: f"{b['level']}-{b['time_budget_hours']}h")
async def test_every_answer_validates_against_its_type(mock, course_brief):
    course = await whole_course(mock, course_brief)
    msgspec.convert(course["syllabus"], type=Syllabus)
    for lesson in course["lessons"]:
        msgspec.convert(lesson, type=Lesson)
    for quiz in course["quizzes"]:
        msgspec.convert(quiz, type=Quiz)
    for project in course["projects"]:
        msgspec.convert(project, type=Project)


async def test_the_text_decodes_with_msgspec(mock):
    completion = await complete(mock, "syllabus", syllabus_variables(brief()))
    assert isinstance(msgspec.json.decode(completion.text, type=Syllabus), Syllabus)


@pytest.mark.parametrize(("hours", "shape"), [
    (20, [5] * 8),
    (6, [4] * 3),
    (1, [3]),
    (2.6, [5]),
    (7, [5, 5, 4]),
    (30, [5] * 12),
    (60, [5] * 12),
    (200, [5] * 12),
])
async def test_it_plans_half_hour_lessons_in_modules_of_about_five(mock, hours, shape):
    syllabus = await answer(mock, "syllabus", syllabus_variables(brief(time_budget_hours=hours)))
    assert [len(m["lessons"]) for m in syllabus["modules"]] == shape
    minutes = [lesson["estimated_minutes"] for m in syllabus["modules"] for lesson in m["lessons"]]
    assert sum(minutes) <= hours * 60
    assert sum(minutes) >= hours * 60 * 0.8  # uses the budget, not just fits in it
    assert len(syllabus["modules"]) == min(12, math.ceil(len(minutes) / 5))


async def test_it_builds_a_plausible_progression(mock):
    syllabus = await answer(mock, "syllabus", syllabus_variables(brief()))
    titles = [m["title"] for m in syllabus["modules"]]
    assert titles[0].startswith("Foundations of PostgreSQL Performance")
    assert titles[1] == "Core Concepts of PostgreSQL Performance"
    assert titles[-1] == "Capstone: PostgreSQL Performance in Practice"
    assert len(set(titles)) == len(titles)
    for m, module in enumerate(syllabus["modules"], start=1):
        assert module["index"] == m
        lessons = module["lessons"]
        assert [lesson["index"] for lesson in lessons] == list(range(1, len(lessons) + 1))
        for n, lesson in enumerate(lessons[1:], start=2):
            assert lesson["prerequisites"] == [f"Lesson {m}.{n - 1}: {lessons[n - 2]['title']}"]
        for lesson in lessons:
            assert lesson["assessment_hooks"][0].startswith("quiz: ")
            assert lesson["assessment_hooks"][1].startswith("practice: ")
        assert lessons[-1]["assessment_hooks"][-1].startswith("project: ")
    # The practical style closes each ordinary module with a workshop.
    assert syllabus["modules"][0]["lessons"][-1]["title"].startswith("Workshop: ")
    course = syllabus["course"]
    assert course["title"] == "Introduction to PostgreSQL Performance" and course["level"] == "intermediate"
    assert "junior backend developers" in course["description"]


async def test_it_writes_a_lesson_about_its_outline(mock):
    syllabus = await answer(mock, "syllabus", syllabus_variables(brief()))
    outline = syllabus["modules"][2]["lessons"][1]
    lesson = await answer(mock, "lesson", lesson_variables(syllabus, 2, 1))
    assert lesson["title"] == outline["title"]
    assert lesson["duration_minutes"] == outline["estimated_minutes"]
    assert lesson["objectives"] == outline["objectives"]
    assert lesson["metadata"] == {"level": "intermediate", "prerequisites": outline["prerequisites"]}
    overview = lesson["explanation"]["overview"]
    assert outline["title"] in overview and "junior backend developers" in overview
    assert syllabus["modules"][2]["title"] in overview
    assert syllabus["modules"][2]["lessons"][0]["title"] in overview  # the lesson it builds on
    for concept in lesson["explanation"]["concepts"]:
        assert outline["title"] in concept["title"]
        assert "PostgreSQL Performance" in concept["explanation"]
    assert outline["title"] in lesson["practice"]["prompt"]
    assert {c["example"] is None for c in lesson["explanation"]["concepts"]} == {True, False}


async def test_it_asks_quiz_questions_about_the_lesson(mock):
    syllabus = await answer(mock, "syllabus", syllabus_variables(brief()))
    lesson = await answer(mock, "lesson", lesson_variables(syllabus, 0, 1))
    quiz = await answer(mock, "quiz", quiz_variables(syllabus, 0, 1, lesson))
    questions = quiz["questions"]
    assert len(questions) == 5
    text = json.dumps(questions, ensure_ascii=False)
    for concept in lesson["explanation"]["concepts"]:
        assert concept["title"] in text
    assert lesson["key_takeaways"][0].rstrip(".") in text
    for question in questions:
        assert len(question["options"]) == 4
        assert len({option.strip().lower() for option in question["options"]}) == 4
    assert len({q["correct_index"] for q in questions}) >= 3
    first = questions[0]
    assert first["options"][first["correct_index"]].startswith(
        lesson["explanation"]["concepts"][0]["explanation"].split(". ")[0])


@pytest.mark.parametrize("count", [3, 5, 10])
async def test_it_asks_as_many_questions_as_requested(mock, count):
    syllabus = await answer(mock, "syllabus", syllabus_variables(brief(time_budget_hours=1)))
    lesson = await answer(mock, "lesson", lesson_variables(syllabus, 0, 0))
    quiz = await answer(mock, "quiz", quiz_variables(syllabus, 0, 0, lesson, question_count=count))
    assert len(msgspec.convert(quiz, type=Quiz).questions) == count


async def test_it_sets_a_project_on_the_module_lessons(mock):
    syllabus = await answer(mock, "syllabus", syllabus_variables(brief()))
    module = syllabus["modules"][3]
    project = await answer(mock, "project", project_variables(syllabus, 3))
    assert module["title"] in project["title"]
    for lesson in module["lessons"]:
        assert lesson["title"] in project["problem_statement"]
    assert sum(criterion["weight"] for criterion in project["rubric"]) == 100
    assert "Respect the course constraint: practical" in project["constraints"]


@pytest.mark.parametrize("operation", ["syllabus", "lesson", "quiz", "project"])
async def test_a_regeneration_instruction_changes_the_answer_but_never_shows_in_it(mock, operation):
    # The instruction is the reviewer's note to the model: learners must never read it.
    instruction = "Use examples from an online bookshop called Quokkabooks"
    syllabus = await answer(mock, "syllabus", syllabus_variables(brief()))
    lesson = await answer(mock, "lesson", lesson_variables(syllabus, 0, 1))
    variables = {
        "syllabus": syllabus_variables(brief()),
        "lesson": lesson_variables(syllabus, 0, 1),
        "quiz": quiz_variables(syllabus, 0, 1, lesson),
        "project": project_variables(syllabus, 0),
    }[operation]
    original = await complete(mock, operation, variables)
    revised = await complete(mock, operation, {**variables, "instruction": instruction,
                                               "previous": json.loads(original.text)})
    assert revised.text != original.text
    for part in ("bookshop", "Quokkabooks", "online", "instruction", "reviewer"):
        assert part.lower() not in revised.text.lower(), part
    # Deterministic: the same instruction gives the same revision, another one a different revision.
    again = await complete(mock, operation, {**variables, "instruction": instruction,
                                             "previous": json.loads(original.text)})
    other = await complete(mock, operation, {**variables, "instruction": "Shorter, please",
                                             "previous": json.loads(original.text)})
    assert again.text == revised.text and other.text != revised.text


async def test_it_estimates_tokens_from_characters(mock, settings):
    variables = syllabus_variables(brief())
    completion = await mock.complete(request("syllabus", variables))
    chars = sum(len(m.content) for m in request("syllabus", variables).messages)
    assert completion.input_tokens == chars // 4
    assert completion.output_tokens == len(completion.text) // 4
    assert completion.model == settings.llm_model == "mock-1"
    assert mock.name == "mock" and mock.model == "mock-1"


@pytest.mark.parametrize("operation", ["syllabus", "lesson", "quiz", "project"])
async def test_it_answers_the_worked_example_of_each_prompt_contract(mock, operation):
    # The prompt templates and the mock share one variables contract; the contract's own example proves it.
    # Every operation has its contract: a missing folder is a failure, not a reason to skip.
    assert (PROMPTS_DIR / operation).is_dir(), f"no prompt contract folder {PROMPTS_DIR / operation}"
    contract, tp = load_prompt(operation), EXPORTED[operation]
    completion = await mock.complete(CompletionRequest(
        operation=operation, messages=contract.render(contract.example_input), schema_name=schema_name(tp),
        json_schema=strict_schema(tp), temperature=0.2, seed=7, variables=contract.example_input,
    ))
    msgspec.json.decode(completion.text, type=tp)


async def test_it_refuses_an_operation_it_does_not_know(mock):
    with pytest.raises(LLMError, match="no answer for operation 'poem'"):
        await complete(mock, "poem", {})


# ---------------------------------------------------------------------------------------------
# Failure directives


def directed(directive: str) -> dict:
    return syllabus_variables(brief(title=f"SQL Indexing {directive}"))


async def test_invalid_json_fails_the_first_attempt_only(mock):
    variables = directed("[mock:invalid_json]")
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode((await complete(mock, "syllabus", variables)).text, type=Syllabus)
    repaired = await complete(mock, "syllabus", variables, attempt=1)
    assert msgspec.json.decode(repaired.text, type=Syllabus).course.title == "SQL Indexing [mock:invalid_json]"


async def test_invalid_json_times_three_fails_every_attempt(mock):
    variables = directed("[mock:invalid_json*3]")
    for attempt in range(3):
        with pytest.raises(msgspec.DecodeError):
            msgspec.json.decode((await complete(mock, "syllabus", variables, attempt)).text, type=Syllabus)


async def test_schema_violations_are_valid_json_and_repairs_fix_them(mock):
    syllabus = await answer(mock, "syllabus", syllabus_variables(brief()))
    lesson = await answer(mock, "lesson", lesson_variables(syllabus, 0, 0))
    cases = [
        ("syllabus", Syllabus, directed("[mock:schema]")),
        ("lesson", Lesson, {**lesson_variables(syllabus, 0, 0), "instruction": "[mock:schema]"}),
        ("quiz", Quiz, {**quiz_variables(syllabus, 0, 0, lesson), "instruction": "[mock:schema]"}),
        ("project", Project, {**project_variables(syllabus, 0), "instruction": "[mock:schema]"}),
    ]
    for operation, tp, variables in cases:
        broken = (await complete(mock, operation, variables)).text
        json.loads(broken)
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(broken, type=tp)
        msgspec.json.decode((await complete(mock, operation, variables, attempt=1)).text, type=tp)


async def test_the_schema_violations_are_the_documented_ones(mock):
    syllabus = await answer(mock, "syllabus", syllabus_variables(brief()))
    lesson = await answer(mock, "lesson", {**lesson_variables(syllabus, 0, 0), "instruction": "[mock:schema]"})
    assert len(lesson["explanation"]["overview"]) < 50
    good = await answer(mock, "lesson", lesson_variables(syllabus, 0, 0))
    quiz = await answer(mock, "quiz", {**quiz_variables(syllabus, 0, 0, good), "instruction": "[mock:schema]"})
    assert len(quiz["questions"][0]["options"]) == 3


async def test_schema_times_three_fails_every_attempt(mock):
    variables = directed("[mock:schema*3]")
    for attempt in range(3):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode((await complete(mock, "syllabus", variables, attempt)).text, type=Syllabus)
    msgspec.json.decode((await complete(mock, "syllabus", variables, 3)).text, type=Syllabus)


async def test_429_raises_rate_limited(mock):
    with pytest.raises(RateLimited):
        await complete(mock, "syllabus", directed("[mock:429]"))


async def test_timeout_raises_timed_out(mock):
    with pytest.raises(TimedOut):
        await complete(mock, "syllabus", directed("[mock:timeout]"))


async def test_a_targeted_directive_only_affects_its_operation(mock):
    syllabus = await answer(mock, "syllabus", directed("[mock:lesson:invalid_json]"))  # unaffected
    assert "[mock:lesson:invalid_json]" in syllabus["course"]["title"]
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode((await complete(mock, "lesson", lesson_variables(syllabus, 0, 0))).text, type=Lesson)
    lesson = json.loads((await complete(mock, "lesson", lesson_variables(syllabus, 0, 0), attempt=1)).text)
    await answer(mock, "quiz", quiz_variables(syllabus, 0, 0, lesson))  # unaffected
    await answer(mock, "project", project_variables(syllabus, 0))  # unaffected
    with pytest.raises(RateLimited):
        await complete(mock, "quiz", {**quiz_variables(syllabus, 0, 0, lesson), "instruction": "[mock:quiz:429]"})


# ---------------------------------------------------------------------------------------------
# Latency


async def test_it_waits_the_configured_latency(tmp_path):
    slow = MockProvider(make_settings(tmp_path, mock_llm_latency_ms=150))
    started = time.monotonic()
    await complete(slow, "syllabus", syllabus_variables(brief()))
    assert 0.14 <= time.monotonic() - started < 1


async def test_the_latency_can_be_set_per_instance(settings):
    assert settings.mock_llm_latency_ms == 0
    fast, slow = MockProvider(settings), MockProvider(settings, latency_ms=200)
    started = time.monotonic()
    await complete(fast, "syllabus", syllabus_variables(brief()))
    fast_seconds = time.monotonic() - started
    started = time.monotonic()
    with pytest.raises(RateLimited):  # failures take their time too, like a real provider
        await complete(slow, "syllabus", directed("[mock:429]"))
    assert fast_seconds < 0.1
    assert 0.19 <= time.monotonic() - started < 1
