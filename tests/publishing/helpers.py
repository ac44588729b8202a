"""A fully approved course, published through the real app."""

from __future__ import annotations

import re
import uuid

from app.authoring.tables import ContentItem
from app.publishing.tables import CoursePackageRow
from tests.authoring.helpers import generated_content


async def approve_everything(client, syllabus_id: uuid.UUID) -> None:
    modules = {row["module_index"] for row in await ContentItem.select(ContentItem.module_index).where(
        ContentItem.syllabus_id == syllabus_id)}
    for module in sorted(modules):
        response = await client.post(f"/admin/syllabi/{syllabus_id}/modules/{module}/approve", {"note": ""})
        assert response.status_code == 303


async def published_course(client, **brief) -> tuple[dict, dict]:
    """(syllabus row, package row) for a course generated, approved and published as version 1."""
    syllabus, _run = await generated_content(client, **brief)
    await approve_everything(client, syllabus["id"])
    response = await client.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert response.status_code == 303, response.text[:400]
    assert re.fullmatch(rf"/admin/packages/{syllabus['id']}", response.headers["location"])
    package = await CoursePackageRow.select().where(CoursePackageRow.syllabus_id == syllabus["id"]).first()
    return syllabus, package
