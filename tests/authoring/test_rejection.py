"""Rejecting a generated draft (A4): a reason is required, the item becomes REJECTED with who, when and
why, one audit row records it, the page says so, and the course cannot be published until the item is
regenerated and the new draft approved."""

from __future__ import annotations

from app.audit.tables import AuditLog
from app.authoring.tables import ContentItem
from app.publishing.tables import CoursePackageRow
from tests.authoring.helpers import generated_content, wait_for_run
from tests.publishing.helpers import approve_everything

REASON = "Too abstract: use a real hand-off between two designers"


async def _lesson(syllabus: dict, module: int = 1, lesson: int = 1) -> dict:
    return await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus["id"]) & (ContentItem.kind == "LESSON")
        & (ContentItem.module_index == module) & (ContentItem.lesson_index == lesson)).first()


async def _row(item: dict) -> dict:
    return await ContentItem.select().where(ContentItem.id == item["id"]).first()


async def _rejections(item: dict) -> list[dict]:
    return await AuditLog.select().where((AuditLog.action == "CONTENT_REJECTED")
                                         & (AuditLog.entity_id == str(item["id"])))


async def test_it_rejects_a_draft_with_its_reason_and_audits_it(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    lesson = await _lesson(syllabus)
    response = await client.post(f"/admin/items/{lesson['id']}/reject", {"reason": f"  {REASON}  "})
    assert response.status_code == 303 and response.headers["location"] == f"/admin/items/{lesson['id']}"
    row = await _row(lesson)
    assert (row["status"], row["rejection_reason"], row["rejected_by"]) == ("REJECTED", REASON,
                                                                           personas.admin.user_id)
    assert row["rejected_at"] is not None and row["content_hash"] == lesson["content_hash"]
    [audit] = await _rejections(lesson)
    assert (audit["actor_id"], audit["tenant_id"], audit["entity_type"]) == (personas.admin.user_id,
                                                                             personas.acme["id"], "content_item")
    assert REASON in audit["metadata"] and "LESSON" in audit["metadata"]

    page = await client.get(f"/admin/items/{lesson['id']}")
    assert page.status_code == 200
    assert f"Rejected: {lesson['title']}." in page.text  # the flash after the redirect
    assert f"“{REASON}”" in page.text and "status-rejected" in page.text
    # A rejected item can only be regenerated now: no approve or reject form is offered.
    assert f"/admin/items/{lesson['id']}/regenerate" in page.text
    assert f"/admin/items/{lesson['id']}/reject" not in page.text
    assert f"/admin/items/{lesson['id']}/approve" not in page.text


async def test_it_rejects_an_item_only_once_and_never_approves_a_rejected_one(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    lesson = await _lesson(syllabus)
    assert (await client.post(f"/admin/items/{lesson['id']}/reject", {"reason": REASON})).status_code == 303
    again = await client.post(f"/admin/items/{lesson['id']}/reject", {"reason": "Changed my mind"})
    assert again.status_code == 409 and "Only a draft can be rejected; this item is rejected." in again.text
    approve = await client.post(f"/admin/items/{lesson['id']}/approve", {"note": ""})
    assert approve.status_code == 409
    row = await _row(lesson)
    assert (row["status"], row["rejection_reason"], row["approved_by"]) == ("REJECTED", REASON, None)
    assert len(await _rejections(lesson)) == 1


async def test_it_refuses_a_rejection_without_a_reason_or_with_too_long_a_reason(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    lesson = await _lesson(syllabus)
    for reason, message in (("   ", "A reason is required."), ("", "A reason is required."),
                            ("x" * 2001, "A reason can have at most 2000 characters.")):
        response = await client.post(f"/admin/items/{lesson['id']}/reject", {"reason": reason})
        assert response.status_code == 400 and message in response.text, (reason[:10], response.text[:300])
    row = await _row(lesson)
    assert (row["status"], row["rejected_by"], row["rejection_reason"]) == ("DRAFT", None, None)
    assert await _rejections(lesson) == []


async def test_a_rejected_lesson_keeps_the_course_unpublished_until_its_replacement_is_approved(client, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    lesson = await _lesson(syllabus, 1, 2)
    assert (await client.post(f"/admin/items/{lesson['id']}/reject", {"reason": REASON})).status_code == 303
    await approve_everything(client, syllabus["id"])  # approves every other draft; the rejected one stays
    assert (await _row(lesson))["status"] == "REJECTED"
    refused = await client.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert refused.status_code == 400 and "cannot be published yet" in refused.text
    assert await CoursePackageRow.count().where(CoursePackageRow.syllabus_id == syllabus["id"]) == 0

    response = await client.post(f"/admin/items/{lesson['id']}/regenerate", {"instruction": "Use a real hand-off"})
    assert response.status_code == 303
    new = await ContentItem.select().where(ContentItem.supersedes_id == lesson["id"]).first()
    assert (await wait_for_run(new["run_id"]))["status"] == "SUCCEEDED"
    assert (await _row(lesson))["status"] == "SUPERSEDED"
    assert (await client.post(f"/admin/items/{new['id']}/approve", {"note": "better"})).status_code == 303
    published = await client.post(f"/admin/syllabi/{syllabus['id']}/publish")
    assert published.status_code == 303
    package = await CoursePackageRow.select().where(CoursePackageRow.syllabus_id == syllabus["id"]).first()
    # The package carries the replacement, not the rejected lesson (and never the reviewer's instruction).
    assert package["version"] == 1 and str(new["id"]) in package["document"]
    assert str(lesson["id"]) not in package["document"] and "Use a real hand-off" not in package["document"]


async def test_only_the_workspaces_admins_can_reject_and_only_with_the_csrf_token(client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, _run = await generated_content(client)
    lesson = await _lesson(syllabus)
    outsider, learner = client_factory(), client_factory()
    await outsider.login(personas.outsider.email)
    await learner.login(personas.learner.email)
    assert (await outsider.post(f"/admin/items/{lesson['id']}/reject", {"reason": REASON})).status_code == 404
    assert (await learner.post(f"/admin/items/{lesson['id']}/reject", {"reason": REASON})).status_code == 403
    no_token = await client.post(f"/admin/items/{lesson['id']}/reject", {"reason": REASON}, csrf=False)
    assert no_token.status_code == 403
    row = await _row(lesson)
    assert (row["status"], row["rejected_by"]) == ("DRAFT", None)
    assert await _rejections(lesson) == []
