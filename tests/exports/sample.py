"""A CoursePackage built straight from the mock provider's builders, without a database or a server.

The exporters are pure (`package -> bytes`), so their tests and bench/exports.py build the document the
way the publishing builder would, from the same deterministic mock output the app generates in tests.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.llm.mock import _BUILDERS
from app.publishing.schemas import CoursePackage

APPROVED_AT = "2026-03-14T09:26:53+00:00"
BRIEF = {
    "title": "Practical Statistics for Product Teams",
    "audience": "product managers and analysts who read dashboards and want to run sound experiments",
    "level": "intermediate",
    "teaching_style": "practical",
    "constraints": [],
}


def sample_package(hours: float = 2, *, title: str | None = None,
                   edit_lesson: Any = None) -> CoursePackage:
    """About two lessons per hour of `hours`; `edit_lesson(lesson_dict)` may alter the first lesson."""
    brief = {**BRIEF, "time_budget_hours": hours, **({"title": title} if title else {})}
    syllabus = _BUILDERS["syllabus"]({"brief": brief})
    course = syllabus["course"]
    modules, items, index = [], [], 0
    for module in syllabus["modules"]:
        titles = [lesson["title"] for lesson in module["lessons"]]
        lessons = []
        for outline in module["lessons"]:
            index += 1
            lesson = _BUILDERS["lesson"]({"course": course, "module": module, "lesson": outline,
                                          "lesson_titles_in_module": titles})
            if index == 1 and edit_lesson is not None:
                edit_lesson(lesson)
            quiz = _BUILDERS["quiz"]({"course": course, "lesson": lesson, "question_count": 5})
            lessons.append({"index": index, "module_index": module["index"], "lesson_index": outline["index"],
                            "lesson": lesson, "quiz": quiz})
            items += [_item(kind, module["index"], outline["index"], index) for kind in ("LESSON", "QUIZ")]
        project = _BUILDERS["project"]({"course": course, "module": module})
        items.append(_item("PROJECT", module["index"], None, index))
        modules.append({"index": module["index"], "title": module["title"], "summary": module["summary"],
                        "lessons": lessons, "project": project})
    document = {
        "format_version": "1", "course": course, "modules": modules,
        "provenance": {
            "course_id": "00000000-0000-0000-0000-000000000001",
            "syllabus_id": "00000000-0000-0000-0000-000000000002", "syllabus_revision": 1,
            "syllabus_hash": "0" * 64, "syllabus_prompt_version": "syllabus@1",
            "syllabus_approved_by": "00000000-0000-0000-0000-000000000003",
            "syllabus_approved_at": APPROVED_AT, "prompt_versions": ["syllabus@1"],
            "approvers": ["00000000-0000-0000-0000-000000000003"], "items": items,
        },
    }
    return msgspec.json.decode(msgspec.json.encode(document), type=CoursePackage)


def _item(kind: str, module: int, lesson: int | None, n: int) -> dict[str, Any]:
    return {"item_id": f"00000000-0000-0000-0001-{n:06d}{len(kind):06d}", "kind": kind, "module_index": module,
            "lesson_index": lesson, "content_hash": "1" * 64, "prompt_version": f"{kind.lower()}@1",
            "approved_by": "00000000-0000-0000-0000-000000000003", "approved_at": APPROVED_AT}
