import msgspec

from app.audit.tables import AuditLog
from app.player import services
from app.player.tables import Enrollment, LessonProgress, QuestionStat, QuizAttempt
from app.publishing.schemas import CoursePackage
from app.publishing.tables import CoursePackageRow
from tests.publishing.helpers import new_quiz_approved, published_course


async def _course(client, client_factory, personas):
    """A published course of Acme, and a learner client signed in (not yet enrolled)."""
    await client.login(personas.admin.email)
    syllabus, package = await published_course(client)
    learner = client_factory()
    await learner.login(personas.learner.email)
    return syllabus["id"], package, learner


def _answers(package_row, index, *, right: int) -> dict:
    """Form data answering the first `right` questions of lesson `index` correctly, the rest wrongly."""
    document = msgspec.json.decode(package_row["document"], type=CoursePackage)
    questions = document.lessons[index - 1].quiz.questions
    return {f"q{i}": str(q.correct_index if i < right else (q.correct_index + 1) % 4)
            for i, q in enumerate(questions)} | {"rendered_at": "0"}


async def test_it_lists_published_courses_and_enrolls_the_learner(client, client_factory, personas):
    course_id, package, learner = await _course(client, client_factory, personas)
    home = await learner.get("/learn")
    assert home.status_code == 200 and package["title"] in home.text and "Enroll" in home.text
    response = await learner.post(f"/learn/{course_id}/enroll")
    assert response.status_code == 303
    enrollment = await Enrollment.select().where(Enrollment.user_id == personas.learner.user_id).first()
    assert enrollment["package_id"] == enrollment["started_package_id"] == package["id"]
    assert await AuditLog.count().where(
        (AuditLog.action == "ENROLLMENT_CREATED") & (AuditLog.entity_id == str(enrollment["id"]))) == 1
    assert (await learner.post(f"/learn/{course_id}/enroll")).status_code == 303  # idempotent
    assert await Enrollment.count().where(Enrollment.user_id == personas.learner.user_id) == 1


async def test_it_requires_an_enrollment_for_lessons(client, client_factory, personas):
    course_id, _package, learner = await _course(client, client_factory, personas)
    overview = await learner.get(f"/learn/{course_id}")
    assert overview.status_code == 200 and "Enroll in this course" in overview.text
    lesson = await learner.get(f"/learn/{course_id}/lesson/1")
    assert lesson.status_code == 403 and "Enroll in this course" in lesson.text
    api = await learner.get(f"/api/learn/courses/{course_id}/lessons/1")
    assert api.status_code == 403 and api.json()["error"].startswith("Enroll")


async def test_it_answers_404_for_another_workspaces_course(client, client_factory, personas):
    course_id, _package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    for path in (f"/learn/{course_id}", f"/learn/{course_id}/lesson/1", f"/api/learn/courses/{course_id}",
                 f"/api/learn/courses/{course_id}/lessons/1", f"/learn/{course_id}/module/1/project"):
        assert (await outsider.get(path)).status_code == 404, path
    assert (await outsider.post(f"/learn/{course_id}/enroll")).status_code == 404
    assert course_id.hex not in (await outsider.get("/api/learn/courses")).text.replace("-", "")


async def test_it_reads_lessons_in_at_most_three_queries(client, client_factory, personas):
    course_id, _package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    await learner.get(f"/learn/{course_id}/lesson/1")  # warms the package cache
    for index in (2, 2, 3):
        page = await learner.get(f"/learn/{course_id}/lesson/{index}")
        assert page.status_code == 200
        assert int(page.headers["x-db-queries"]) <= 3, page.headers["x-db-queries"]
    api = await learner.get(f"/api/learn/courses/{course_id}/lessons/3")
    assert api.status_code == 200 and int(api.headers["x-db-queries"]) <= 3
    body = api.json()
    assert body["index"] == 3 and body["quiz"] and "correct_index" not in api.text  # no answer key leaks


async def test_it_remembers_where_the_learner_left_off(client, client_factory, personas):
    course_id, _package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    await learner.post(f"/learn/{course_id}/lesson/1/complete")
    assert (await learner.get(f"/learn/{course_id}/lesson/3")).status_code == 200
    assert (await Enrollment.select(Enrollment.last_lesson_index).where(
        Enrollment.user_id == personas.learner.user_id).first())["last_lesson_index"] == 3
    # "Continue" is the first unfinished lesson (as on the overview: tests/player/test_reader.py).
    detail = (await learner.get(f"/api/learn/courses/{course_id}")).json()
    assert (detail["continue_at"], detail["last_opened"], detail["completed_lessons"]) == (2, 3, 1)


async def test_it_scores_a_quiz_and_completes_the_lesson_when_passed(client, client_factory, personas):
    course_id, package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    failed = await learner.post(f"/learn/{course_id}/lesson/1/quiz", _answers(package, 1, right=2), htmx=True)
    assert failed.status_code == 200 and "2 of 5 correct (40%)" in failed.text and "✗" in failed.text
    assert await _completed(personas) == []  # a failed quiz completes nothing
    passed = await learner.post(f"/learn/{course_id}/lesson/1/quiz", _answers(package, 1, right=4), htmx=True)
    assert "4 of 5 correct (80%)" in passed.text and "lesson marked complete" in passed.text
    attempts = await QuizAttempt.select().where(QuizAttempt.package_id == package["id"]).order_by(QuizAttempt.id)
    assert [(a["correct"], a["score_pct"], a["passed"]) for a in attempts] == [(2, 40, False), (4, 80, True)]
    progress = await _completed(personas)
    assert [(p["module_index"], p["lesson_index"], p["completed_via"]) for p in progress] == [(1, 1, "QUIZ")]
    detail = (await learner.get(f"/api/learn/courses/{course_id}")).json()
    assert detail["completed_lessons"] == 1
    assert detail["modules"][0]["lessons"][0]["completed"] is True


async def _completed(personas):
    enrollment = await Enrollment.select(Enrollment.id).where(Enrollment.user_id == personas.learner.user_id).first()
    return await LessonProgress.select().where(LessonProgress.enrollment_id == enrollment["id"])


async def test_it_marks_a_lesson_complete_with_the_button(client, client_factory, personas):
    course_id, _package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    response = await learner.post(f"/learn/{course_id}/lesson/2/complete", htmx=True)
    assert response.status_code == 200 and "You completed this lesson." in response.text
    assert [(p["lesson_index"], p["completed_via"]) for p in await _completed(personas)] == [(2, "BUTTON")]
    assert (await learner.post(f"/learn/{course_id}/lesson/2/complete")).status_code == 303  # idempotent
    assert len(await _completed(personas)) == 1


async def test_it_rejects_bad_quiz_answers_and_records_nothing(client, client_factory, personas):
    course_id, _package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    for data in ({"q0": "7"}, {"q0": "x"}, {}):
        response = await learner.post(f"/learn/{course_id}/lesson/1/quiz", {**data, "rendered_at": "0"}, htmx=True)
        assert response.status_code == 400
        assert "choose one of the four options" in response.text or "Answer at least one" in response.text
    assert (await learner.get(f"/learn/{course_id}/lesson/99")).status_code == 404
    assert await QuizAttempt.count().where(QuizAttempt.tenant_id == personas.acme["id"]) == 0


async def test_it_keeps_question_statistics_that_reconcile_with_attempts(client, client_factory, personas):
    course_id, package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    for right in (1, 3, 5):
        await learner.post(f"/learn/{course_id}/lesson/2/quiz", _answers(package, 2, right=right), htmx=True)
    document = msgspec.json.decode(package["document"], type=CoursePackage)
    quiz_item = next(i for i in document.provenance.items
                     if (i.kind, i.module_index, i.lesson_index) == ("QUIZ", 1, 2))
    stats = {s["question_index"]: s for s in await QuestionStat.select().where(
        QuestionStat.quiz_item_id == quiz_item.item_id)}
    assert [stats[i]["attempts"] for i in range(5)] == [3, 3, 3, 3, 3]
    assert [stats[i]["correct"] for i in range(5)] == [3, 2, 2, 1, 1]
    assert await services.reconcile_question_stats() == []
    # Drift (a lost update) is found and repaired from the attempts.
    await QuestionStat.update({QuestionStat.correct: 0}).where(
        (QuestionStat.quiz_item_id == quiz_item.item_id) & (QuestionStat.question_index == 0))
    differences = await services.reconcile_question_stats(fix=True)
    assert len(differences) == 1 and "question 1" in differences[0]
    assert await services.reconcile_question_stats() == []


async def test_it_offers_a_newer_version_without_forcing_it(client, client_factory, personas):
    course_id, package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    await learner.post(f"/learn/{course_id}/lesson/1/complete")
    syllabus = {"id": course_id}
    await new_quiz_approved(personas, syllabus)
    assert (await client.post(f"/admin/syllabi/{course_id}/publish")).status_code == 303
    overview = await learner.get(f"/learn/{course_id}")
    assert "Version 2 of this course is available" in overview.text
    enrollment = await Enrollment.select().where(Enrollment.user_id == personas.learner.user_id).first()
    assert enrollment["package_id"] == package["id"]  # still on version 1
    response = await learner.post(f"/learn/{course_id}/upgrade")
    assert response.status_code == 303
    enrollment = await Enrollment.select().where(Enrollment.user_id == personas.learner.user_id).first()
    v2 = await CoursePackageRow.select(CoursePackageRow.id).where(
        (CoursePackageRow.syllabus_id == course_id) & (CoursePackageRow.version == 2)).first()
    assert enrollment["package_id"] == v2["id"] and enrollment["started_package_id"] == package["id"]
    assert len(await _completed(personas)) == 1  # progress kept by lesson slot
    assert (await learner.post(f"/learn/{course_id}/upgrade")).status_code == 409


async def test_progress_never_touches_package_content(client, client_factory, personas):
    course_id, package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    await learner.post(f"/learn/{course_id}/lesson/1/quiz", _answers(package, 1, right=5), htmx=True)
    await learner.post(f"/learn/{course_id}/lesson/2/complete")
    after = await CoursePackageRow.select().where(CoursePackageRow.id == package["id"]).first()
    assert after == package


async def test_the_apis_are_read_only_and_documented(client, client_factory, personas):
    course_id, _package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    for path in ("/api/learn/courses", f"/api/learn/courses/{course_id}", f"/api/learn/courses/{course_id}/lessons/1"):
        assert (await learner.get(path)).status_code == 200, path
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = await learner.http.request(method, path, headers={"x-csrftoken": learner.csrf})
            assert response.status_code == 405, (method, path, response.status_code)
    for path in ("/api/courses", f"/api/courses/{course_id}", f"/api/courses/{course_id}/1"):
        assert (await client.get(path)).status_code == 200, path
        assert (await client.http.request("DELETE", path, headers={"x-csrftoken": client.csrf})).status_code == 405
    schema = (await client.get("/schema/openapi.json")).json()
    for path in ("/api/courses", "/api/courses/{syllabus_id}", "/api/courses/{syllabus_id}/{version}",
                 "/api/learn/courses", "/api/learn/courses/{course_id}",
                 "/api/learn/courses/{course_id}/lessons/{index}"):
        assert path in schema["paths"], path
        assert list(schema["paths"][path]) == ["get"]


async def test_archived_versions_leave_the_apis(client, client_factory, personas):
    course_id, package, _learner = await _course(client, client_factory, personas)
    await client.post(f"/admin/packages/{package['id']}/archive")
    assert (await client.get(f"/api/courses/{course_id}/1")).status_code == 404
    assert str(course_id) not in (await client.get("/api/courses")).text
