"""Drives the mock provider through a whole course the way the authoring jobs do: the variables of
each operation are built from the previous answers, following the contract in app/llm/mock.py."""

from __future__ import annotations

import json
from typing import Any

from app.llm.base import Completion, CompletionRequest, Message
from app.llm.mock import MockProvider


def brief(**overrides: Any) -> dict[str, Any]:
    return {"title": "Introduction to PostgreSQL Performance", "audience": "junior backend developers",
            "level": "intermediate", "time_budget_hours": 20, "teaching_style": "practical",
            "constraints": ["practical"], **overrides}


def request(operation: str, variables: dict[str, Any], attempt: int = 0) -> CompletionRequest:
    return CompletionRequest(
        operation=operation,
        messages=[Message("system", "You write courses."), Message("user", json.dumps(variables))],
        schema_name=operation, json_schema={}, temperature=0.2, seed=7, variables=variables,
        repair_attempt=attempt,
    )


async def complete(provider: MockProvider, operation: str, variables: dict[str, Any], attempt: int = 0) -> Completion:
    return await provider.complete(request(operation, variables, attempt))


async def answer(provider: MockProvider, operation: str, variables: dict[str, Any]) -> dict[str, Any]:
    return json.loads((await complete(provider, operation, variables)).text)


def syllabus_variables(course_brief: dict[str, Any], instruction: str | None = None) -> dict[str, Any]:
    return {"brief": course_brief, "instruction": instruction, "previous": None}


def module_header(module: dict[str, Any]) -> dict[str, Any]:
    return {"index": module["index"], "title": module["title"], "summary": module["summary"]}


def lesson_variables(syllabus: dict[str, Any], m: int, n: int, instruction: str | None = None) -> dict[str, Any]:
    module = syllabus["modules"][m]
    return {"course": syllabus["course"], "module": module_header(module), "lesson": module["lessons"][n],
            "lesson_titles_in_module": [lesson["title"] for lesson in module["lessons"]],
            "instruction": instruction, "previous": None}


def quiz_variables(syllabus: dict[str, Any], m: int, n: int, lesson: dict[str, Any], question_count: int = 5,
                   instruction: str | None = None) -> dict[str, Any]:
    module = syllabus["modules"][m]
    return {"course": syllabus["course"], "module": module_header(module), "lesson_outline": module["lessons"][n],
            "lesson": lesson, "question_count": question_count, "instruction": instruction, "previous": None}


def project_variables(syllabus: dict[str, Any], m: int, instruction: str | None = None) -> dict[str, Any]:
    return {"course": syllabus["course"], "module": syllabus["modules"][m], "instruction": instruction,
            "previous": None}


async def whole_course(provider: MockProvider, course_brief: dict[str, Any]) -> dict[str, Any]:
    """The syllabus, then every lesson and quiz of the first and last module, and every module's project."""
    syllabus = await answer(provider, "syllabus", syllabus_variables(course_brief))
    lessons, quizzes = [], []
    for m in sorted({0, len(syllabus["modules"]) - 1}):
        for n in range(len(syllabus["modules"][m]["lessons"])):
            lesson = await answer(provider, "lesson", lesson_variables(syllabus, m, n))
            lessons.append(lesson)
            quizzes.append(await answer(provider, "quiz", quiz_variables(syllabus, m, n, lesson)))
    projects = [await answer(provider, "project", project_variables(syllabus, m))
                for m in range(len(syllabus["modules"]))]
    return {"syllabus": syllabus, "lessons": lessons, "quizzes": quizzes, "projects": projects}
