"""Archiving withdraws a version: its learners move to the newest published version with their progress, or,
with none left, the course is withdrawn for them. The admin is told exactly what will happen before it does."""

import uuid

import asyncpg
import msgspec
from markupsafe import escape

from app.audit.tables import AuditLog
from app.player.tables import Enrollment, LessonProgress
from app.publishing.schemas import CoursePackage
from app.publishing.tables import CoursePackageRow
from tests.conftest import DATABASE_URL, make_member
from tests.publishing.helpers import new_quiz_approved, published_course


async def _learner(client_factory, persona):
    learner = client_factory()
    await learner.login(persona.email)
    return learner


async def _publish_next(client, personas, syllabus) -> dict:
    """Publish the next version (the quiz of lesson 1 regenerated and approved); returns its row."""
    versions = await CoursePackageRow.count().where(CoursePackageRow.syllabus_id == syllabus["id"])
    await new_quiz_approved(personas, syllabus, f"revision {versions + 1}: swap the answers")
    assert (await client.post(f"/admin/syllabi/{syllabus['id']}/publish")).status_code == 303
    return await CoursePackageRow.select().where(CoursePackageRow.syllabus_id == syllabus["id"]).order_by(
        CoursePackageRow.version, ascending=False).first()


async def _enrollment(user_id: uuid.UUID) -> dict:
    return await Enrollment.select().where(Enrollment.user_id == user_id).first()


async def _slots(enrollment_id: uuid.UUID) -> list[tuple[int, int, str]]:
    rows = await LessonProgress.select().where(LessonProgress.enrollment_id == enrollment_id).order_by(
        LessonProgress.module_index, LessonProgress.lesson_index)
    return [(r["module_index"], r["lesson_index"], r["completed_via"]) for r in rows]


async def _status(package_id: uuid.UUID) -> str:
    return (await CoursePackageRow.select(CoursePackageRow.status).where(
        CoursePackageRow.id == package_id).first())["status"]


async def _audit(action: str, entity_id: uuid.UUID) -> list[dict]:
    """The metadata of each audit row of this action on this entity."""
    rows = await AuditLog.select(AuditLog.metadata).where(
        (AuditLog.action == action) & (AuditLog.entity_id == str(entity_id))).output(load_json=True)
    return [row["metadata"] for row in rows]


async def _archive_audit(package_id: uuid.UUID) -> list[dict]:
    return await _audit("PACKAGE_ARCHIVED", package_id)


def _questions(package_row: dict, index: int) -> list[list[str]]:
    """The quiz of a lesson as a learner sees it: each question with its options."""
    document = msgspec.json.decode(package_row["document"], type=CoursePackage)
    return [[q.question, *q.options] for q in document.lessons[index - 1].quiz.questions]


def _served(api_lesson: dict) -> list[list[str]]:
    return [[q["question"], *q["options"]] for q in api_lesson["quiz"]]


async def test_it_moves_learners_of_an_archived_version_to_the_newest_keeping_progress_by_slot(
        client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, v1 = await published_course(client)
    course_id = syllabus["id"]
    learner = await _learner(client_factory, personas.learner)
    assert (await learner.post(f"/learn/{course_id}/enroll")).status_code == 303
    assert (await learner.post(f"/learn/{course_id}/lesson/2/complete")).status_code == 303
    assert (await learner.post(f"/learn/{course_id}/lesson/3/complete")).status_code == 303
    assert (await learner.get(f"/learn/{course_id}/lesson/3")).status_code == 200
    v2 = await _publish_next(client, personas, syllabus)
    assert _questions(v2, 1) != _questions(v1, 1)  # the learner can tell which version is served

    confirm = await client.get(f"/admin/packages/{v1['id']}/archive")
    assert confirm.status_code == 200
    assert "<strong>1 learner</strong> enrolled on version 1 moves to <strong>version 2</strong>" in confirm.text
    assert await _status(v1["id"]) == "PUBLISHED"  # the confirmation changes nothing

    response = await client.post(f"/admin/packages/{v1['id']}/archive")
    assert response.status_code == 303 and response.headers["location"] == f"/admin/packages/{course_id}"
    assert await _status(v1["id"]) == "ARCHIVED" and await _status(v2["id"]) == "PUBLISHED"
    enrollment = await _enrollment(personas.learner.user_id)
    assert enrollment["package_id"] == v2["id"] and enrollment["started_package_id"] == v1["id"]
    assert enrollment["last_lesson_index"] == 3
    lessons = msgspec.json.decode(v1["document"], type=CoursePackage).lessons
    assert await _slots(enrollment["id"]) == [(x.module_index, x.lesson_index, "BUTTON") for x in lessons[1:3]]
    assert await _archive_audit(v1["id"]) == [
        {"version": 1, "learners": 1, "moved_to_version": 2, "course_withdrawn": False}]
    listing = await client.get(f"/admin/packages/{course_id}")
    assert "1 learner moved to version 2, completed lessons kept." in listing.text

    detail = (await learner.get(f"/api/learn/courses/{course_id}")).json()
    assert (detail["version"], detail["newest_version"], detail["completed_lessons"], detail["continue_at"],
            detail["last_opened"]) == (2, 2, 2, 1, 3)
    lesson = (await learner.get(f"/api/learn/courses/{course_id}/lessons/1")).json()
    assert _served(lesson) == _questions(v2, 1)
    overview = await learner.get(f"/learn/{course_id}")
    assert "<li>version 2</li>" in overview.text and "is available" not in overview.text


async def test_it_moves_learners_to_the_newest_published_version_not_the_next_one(client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, v1 = await published_course(client)
    learner = await _learner(client_factory, personas.learner)
    await learner.post(f"/learn/{syllabus['id']}/enroll")
    await _publish_next(client, personas, syllabus)
    v3 = await _publish_next(client, personas, syllabus)
    assert v3["version"] == 3
    assert (await client.post(f"/admin/packages/{v1['id']}/archive")).status_code == 303
    assert (await _enrollment(personas.learner.user_id))["package_id"] == v3["id"]
    assert (await _archive_audit(v1["id"]))[0]["moved_to_version"] == 3


async def test_the_confirmation_counts_the_learners_of_that_version_and_names_where_they_go(
        client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, v1 = await published_course(client)
    course_id = syllabus["id"]
    second = await make_member(personas.acme, "learner", "leo")
    for persona in (personas.learner, second):
        assert (await (await _learner(client_factory, persona)).post(f"/learn/{course_id}/enroll")).status_code == 303
    v2 = await _publish_next(client, personas, syllabus)
    assert (await client.post(f"/learn/{course_id}/enroll")).status_code == 303  # the admin, on version 2

    versions = await client.get(f"/admin/packages/{course_id}")
    for row in (v1, v2):
        assert f'href="/admin/packages/{row["id"]}/archive" role="button"' in versions.text
    first = await client.get(f"/admin/packages/{v1['id']}/archive")
    assert "<strong>2 learners</strong> enrolled on version 1 move to <strong>version 2</strong>" in first.text
    assert f'action="/admin/packages/{v1["id"]}/archive"' in first.text
    newest = await client.get(f"/admin/packages/{v2['id']}/archive")
    assert "<strong>1 learner</strong> enrolled on version 2 moves to <strong>version 1</strong>" in newest.text

    # Archiving the newest sends its learners back to the newest version left.
    assert (await client.post(f"/admin/packages/{v2['id']}/archive")).status_code == 303
    assert (await _enrollment(personas.admin.user_id))["package_id"] == v1["id"]
    assert await Enrollment.count().where(Enrollment.package_id == v1["id"]) == 3
    assert await _archive_audit(v2["id"]) == [
        {"version": 2, "learners": 1, "moved_to_version": 1, "course_withdrawn": False}]
    last = await client.get(f"/admin/packages/{v1['id']}/archive")
    assert "<strong>the course is withdrawn</strong>" in last.text
    assert "the <strong>3 learners</strong> enrolled on it see a “this course was withdrawn” page" in last.text


async def test_it_withdraws_the_course_when_its_only_version_is_archived(client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, v1 = await published_course(client)
    course_id = syllabus["id"]
    learner = await _learner(client_factory, personas.learner)
    await learner.post(f"/learn/{course_id}/enroll")
    await learner.post(f"/learn/{course_id}/lesson/1/complete")

    confirm = await client.get(f"/admin/packages/{v1['id']}/archive")
    assert "Version 1 is the only published version, so <strong>the course is withdrawn</strong>" in confirm.text
    assert "the <strong>1 learner</strong> enrolled on it sees a “this course was withdrawn” page" in confirm.text

    response = await client.post(f"/admin/packages/{v1['id']}/archive")
    assert response.status_code == 303
    assert await _status(v1["id"]) == "ARCHIVED"
    enrollment = await _enrollment(personas.learner.user_id)
    assert enrollment["package_id"] == v1["id"]  # nowhere to go: kept, so a new version can bring it back
    assert await _archive_audit(v1["id"]) == [
        {"version": 1, "learners": 1, "moved_to_version": None, "course_withdrawn": True}]
    listing = await client.get(f"/admin/packages/{course_id}")
    assert "No published version is left: the course is withdrawn for its 1 learner." in listing.text

    for path in (f"/learn/{course_id}", f"/learn/{course_id}/lesson/1", f"/learn/{course_id}/module/1/project"):
        page = await learner.get(path)
        assert page.status_code == 410, path
        assert "<h1>This course was withdrawn</h1>" in page.text
        assert f"“{escape(v1['title'])}” was withdrawn" in page.text
    for path in (f"/api/learn/courses/{course_id}", f"/api/learn/courses/{course_id}/lessons/1"):
        api = await learner.get(path)
        assert api.status_code == 410 and api.headers["content-type"].startswith("application/json"), path
        assert "was withdrawn" in api.json()["error"]
    assert (await learner.post(f"/learn/{course_id}/lesson/2/complete")).status_code == 410
    assert await _slots(enrollment["id"]) == [(1, 1, "BUTTON")]  # nothing recorded on a withdrawn course
    assert str(course_id) not in (await learner.get("/learn")).text
    assert (await learner.get("/api/learn/courses")).json() == []
    assert (await learner.post(f"/learn/{course_id}/enroll")).status_code == 404
    newcomer = await _learner(client_factory, await make_member(personas.acme, "learner", "nina"))
    assert (await newcomer.get(f"/learn/{course_id}")).status_code == 404  # never enrolled: nothing to withdraw

    # Publishing again brings the course, and the learner with their progress, back.
    v2 = await _publish_next(client, personas, syllabus)
    enrollment = await _enrollment(personas.learner.user_id)
    assert enrollment["package_id"] == v2["id"] and await _slots(enrollment["id"]) == [(1, 1, "BUTTON")]
    assert (await _audit("PACKAGE_PUBLISHED", v2["id"]))[0]["learners_returned"] == 1
    assert (await learner.get(f"/learn/{course_id}/lesson/1")).status_code == 200
    assert [c["id"] for c in (await learner.get("/api/learn/courses")).json()] == [str(course_id)]


async def test_an_archived_version_is_refused_to_learners_and_stays_readable_to_admins(
        client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, v1 = await published_course(client)
    course_id = syllabus["id"]
    await _publish_next(client, personas, syllabus)
    assert (await client.post(f"/admin/packages/{v1['id']}/archive")).status_code == 303
    learner = await _learner(client_factory, personas.learner)
    for path in (f"/api/courses/{course_id}/1", f"/admin/packages/{course_id}/v/1",
                 f"/admin/packages/{course_id}/v/1/json", f"/admin/packages/{v1['id']}/archive"):
        assert (await learner.get(path)).status_code == 403, path
    # The admin APIs list published versions only; the admin pages keep the archived one readable.
    assert (await client.get(f"/api/courses/{course_id}/1")).status_code == 404
    assert [v["version"] for v in (await client.get(f"/api/courses/{course_id}")).json()] == [2]
    page = await client.get(f"/admin/packages/{course_id}/v/1")
    assert page.status_code == 200 and "archived" in page.text
    download = await client.get(f"/admin/packages/{course_id}/v/1/json")
    assert download.status_code == 200 and download.content == v1["document"].encode()
    again = await client.get(f"/admin/packages/{v1['id']}/archive")
    assert again.status_code == 409 and "already archived" in again.text
    assert (await client.post(f"/admin/packages/{v1['id']}/archive")).status_code == 409
    assert len(await _archive_audit(v1["id"])) == 1


async def test_a_learner_who_enrolled_while_the_version_was_archived_moves_on_the_next_visit(
        client, client_factory, personas):
    await client.login(personas.admin.email)
    syllabus, v1 = await published_course(client)
    course_id = syllabus["id"]
    learner = await _learner(client_factory, personas.learner)
    await learner.post(f"/learn/{course_id}/enroll")
    v2 = await _publish_next(client, personas, syllabus)
    # What an enrollment racing the archive leaves behind: the version archived, the learner still on it.
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute("UPDATE course_package SET status = 'ARCHIVED', archived_at = now() WHERE id = $1",
                           v1["id"])
    finally:
        await conn.close()
    lesson = await learner.get(f"/api/learn/courses/{course_id}/lessons/1")
    assert lesson.status_code == 200 and _served(lesson.json()) == _questions(v2, 1)
    enrollment = await _enrollment(personas.learner.user_id)
    assert enrollment["package_id"] == v2["id"]
    assert await _audit("COURSE_VERSION_UPGRADED", enrollment["id"]) == [
        {"from": 1, "to": 2, "reason": "version archived"}]


async def test_it_answers_404_to_another_workspace_and_changes_nothing(client, client_factory, personas):
    await client.login(personas.admin.email)
    _syllabus, v1 = await published_course(client)
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    assert (await outsider.get(f"/admin/packages/{v1['id']}/archive")).status_code == 404
    assert (await outsider.post(f"/admin/packages/{v1['id']}/archive")).status_code == 404
    assert await _status(v1["id"]) == "PUBLISHED"
    assert await _archive_audit(v1["id"]) == []
    own = await client.get(f"/admin/packages/{v1['id']}/archive")  # nobody enrolled yet
    assert own.status_code == 200 and "it leaves the learner catalog; no learner is enrolled on it." in own.text
