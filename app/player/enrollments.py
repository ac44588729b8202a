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


# A purchase opens the enrollment, or opens it again after a refund (revoked_at back to NULL, progress kept).
# An enrollment made while the course was free keeps its access and now remembers the purchase too.
# The version is the newest published one; a withdrawn course gets its newest archived version, which the
# player shows as withdrawn until the course is published again (and the enrollment moved, as for everyone).
GRANT_SQL = """
INSERT INTO enrollment (id, tenant_id, user_id, syllabus_id, package_id, started_package_id, last_lesson_index,
                        created_at, updated_at, purchase_id, revoked_at)
SELECT gen_random_uuid(), {}, {}, {}, p.id, p.id, 1, now(), now(), {}, NULL
FROM course_package p WHERE p.tenant_id = {} AND p.syllabus_id = {}
ORDER BY (p.status = 'PUBLISHED') DESC, p.version DESC LIMIT 1
ON CONFLICT (user_id, syllabus_id) DO UPDATE
SET purchase_id = excluded.purchase_id, revoked_at = NULL, updated_at = now()
WHERE enrollment.revoked_at IS NOT NULL OR enrollment.purchase_id IS NULL
RETURNING id, (xmax = 0) AS created
"""


async def grant_from_purchase(tenant_id: uuid.UUID, user_id: uuid.UUID, syllabus_id: uuid.UUID,
                              purchase_id: uuid.UUID) -> dict[str, Any] | None:
    """Give a paid purchase its enrollment. Returns {"id", "created"} when access changed (a new enrollment,
    or one reopened/linked), None when the learner already had access through this or an earlier purchase."""
    rows = await Enrollment.raw(GRANT_SQL, tenant_id, user_id, syllabus_id, purchase_id, tenant_id, syllabus_id)
    return rows[0] if rows else None


async def revoke_for_purchase(tenant_id: uuid.UUID, purchase_id: uuid.UUID) -> list[uuid.UUID]:
    """A refund takes the access its purchase gave: the enrollment stays (progress kept) but is revoked."""
    rows = await Enrollment.raw(
        "UPDATE enrollment SET revoked_at = now(), updated_at = now() "
        "WHERE tenant_id = {} AND purchase_id = {} AND revoked_at IS NULL RETURNING id", tenant_id, purchase_id)
    return [row["id"] for row in rows]
