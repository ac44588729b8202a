"""Moving enrollments from one version of a course to another: the one home of that transition.

A learner changes version in three ways: asking for the newest (`services.upgrade`), the version being
archived under them, and a withdrawn course being published again (both in `app/publishing/services.py`).
All of them call move_enrollments(). Progress is stored per lesson slot (module, lesson), not per version,
so moving the pointer keeps every completed lesson that the new version still has.

This module imports only tables: publishing calls it inside its own archive and publish transactions, and
importing player.services from there would be an import cycle (player.services reads packages through
publishing.services).
"""

from __future__ import annotations

import uuid
from typing import Any

from app.player.tables import Enrollment

# A compare-and-set on the version each enrollment is on. "Continue" must point at a lesson the new
# version has, so the position is clamped to its last lesson.
MOVE_SQL = """
UPDATE enrollment SET package_id = {}, last_lesson_index = LEAST(last_lesson_index, {}), updated_at = now()
WHERE tenant_id = {} AND package_id = ANY({}::uuid[]) AND ({}::uuid IS NULL OR id = {}::uuid)
RETURNING id
"""


async def move_enrollments(tenant_id: uuid.UUID, to_package: dict[str, Any], from_package_ids: list[uuid.UUID], *,
                           enrollment_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Move the enrollments on any of `from_package_ids` (only `enrollment_id` when given) to `to_package`
    (a row with id and lesson_count). Returns the ids moved. The enrollment_guard trigger refuses a package
    of another course or tenant."""
    rows = await Enrollment.raw(MOVE_SQL, to_package["id"], to_package["lesson_count"], tenant_id,
                                list(from_package_ids), enrollment_id, enrollment_id)
    return [row["id"] for row in rows]


async def learners_by_package(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """How many learners are on each version of a course (versions nobody is on are absent)."""
    rows = await Enrollment.raw(
        "SELECT package_id, count(*) AS learners FROM enrollment WHERE tenant_id = {} AND syllabus_id = {} "
        "GROUP BY package_id", tenant_id, syllabus_id)
    return {row["package_id"]: row["learners"] for row in rows}
