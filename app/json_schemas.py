"""The JSON Schemas checked in under schemas/, exported from the msgspec types.

`coursewright export-schemas` writes them; tests/authoring/test_content_schemas.py fails when a file
drifts from its type. These are the full schemas (every constraint), not the reduced strict-mode form
sent to OpenAI (app/llm/strict_schema.py).
"""

import msgspec

from app.authoring.schemas import CourseBrief, Lesson, Project, Quiz, Syllabus
from app.publishing.schemas import CoursePackage

EXPORTED: dict[str, type] = {
    "syllabus": Syllabus,
    "lesson": Lesson,
    "quiz": Quiz,
    "project": Project,
    "course_brief": CourseBrief,
    "course_package": CoursePackage,
}


def exported_schema(name: str) -> bytes:
    schema = msgspec.json.schema(EXPORTED[name])
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{name}.schema.json", **schema}
    return msgspec.json.format(msgspec.json.encode(schema, order="sorted"), indent=2) + b"\n"
