"""A fully approved course, published through the real app."""

from __future__ import annotations

import re
import uuid

from app.audit.services import Actor
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


async def new_quiz_approved(personas, syllabus, instruction: str = "swap the answers") -> None:
    """A regenerated, approved quiz for lesson 1.1: something changed since the last version."""
    from app.authoring import generation
    from app.authoring import services as authoring

    old = await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.kind == "QUIZ") & (ContentItem.module_index == 1)
        & (ContentItem.lesson_index == 1)).first()
    new = (await ContentItem.insert(ContentItem(
        tenant_id=personas.acme["id"], syllabus_id=syllabus["id"], kind="QUIZ", module_index=1, lesson_index=1,
        title=old["title"], supersedes_id=old["id"], instruction=instruction, status="QUEUED",
    )).returning(ContentItem.id))[0]
    await generation.run_item_generation(new["id"])
    await authoring.approve_item(personas.acme["id"], new["id"], None,
                                 actor=Actor(personas.admin.user_id, personas.admin.email))
