"""The admin pages about a course's learners and quiz questions, on learners and attempts made through the real
player routes. One course for the module: learners enroll, read, and take quizzes over HTTP; then version 2 is
published (a new quiz for lesson 1), so the first learners are one version behind."""

from __future__ import annotations

import re
import time
import types
import uuid

import msgspec
import pytest

from app.accounts.tables import Membership, User
from app.player.tables import Enrollment, LessonProgress, QuizAttempt
from app.publishing.schemas import CoursePackage
from app.publishing.tables import CoursePackageRow
from tests.conftest import Client, LiveServer, make_member, make_tenant
from tests.publishing.helpers import new_quiz_approved, published_course

# Lesson 2's quiz, answered per question (1 right, 0 wrong) by five attempts: the first four questions are the
# worked example of tests/learners/test_item_statistics.py; the fifth is right in every attempt. A question
# right in every attempt adds the same to every total, so it changes no correlation:
#   Q1 facility 3/5 = 60%, discrimination 3 / (2 sqrt 21) = 0.33
#   Q2 facility 60%: x = [1,1,0,1,0], rest = [4,3,3,2,2] -> 0.6 / sqrt(1.2 * 2.8) = 0.33
#   Q3 facility 20% (too hard), discrimination sqrt(2/7) = 0.53
#   Q4, Q5 facility 100% (too easy), discrimination undefined: "–"
ROWS = {"anna": [1, 1, 1, 1], "ben": [1, 1, 0, 1], "cara": [1, 0, 0, 1], "dan": [0, 1, 0, 1],
        "ben again": [0, 0, 0, 1]}
ATTEMPT_MS = 300_000  # each attempt took 5 minutes; shared over 5 answered questions: 1.0 min each


def _answers(document: CoursePackage, index: int, rights: list[int]) -> dict:
    questions = document.lessons[index - 1].quiz.questions
    rights = rights + [1] * (len(questions) - len(rights))
    started = int(time.time() * 1000) - ATTEMPT_MS
    return {f"q{i}": str(q.correct_index if right else (q.correct_index + 1) % 4)
            for i, (q, right) in enumerate(zip(questions, rights, strict=True))} | {"rendered_at": str(started)}


class Course(types.SimpleNamespace):
    pass


@pytest.fixture(scope="module")
async def course(live_server: LiveServer) -> Course:
    acme, globex = await make_tenant("Acme"), await make_tenant("Globex")
    admin = await make_member(acme, "admin", "adam")
    outsider = await make_member(globex, "admin", "oscar")
    people = {label: await make_member(acme, "learner", label) for label in ("anna", "ben", "cara", "dan", "eve")}
    clients = []
    try:
        admin_client = Client(live_server.url)
        clients.append(admin_client)
        await admin_client.login(admin.email)
        syllabus, package = await published_course(admin_client)
        document = msgspec.json.decode(package["document"], type=CoursePackage)
        course_id = syllabus["id"]
        readers = {}
        for label in ("anna", "ben", "cara", "dan"):
            readers[label] = Client(live_server.url)
            clients.append(readers[label])
            await readers[label].login(people[label].email)
            assert (await readers[label].post(f"/learn/{course_id}/enroll")).status_code == 303
        # Anna fails lesson 1's quiz (2 of 5) and marks lesson 1 read with the button.
        lesson1 = _answers(document, 1, [1, 1, 0, 0, 0])
        assert (await readers["anna"].post(f"/learn/{course_id}/lesson/1/quiz", lesson1)).status_code == 200
        assert (await readers["anna"].post(f"/learn/{course_id}/lesson/1/complete")).status_code == 303
        for label, rights in ROWS.items():
            reader = readers[label.split()[0]]
            response = await reader.post(f"/learn/{course_id}/lesson/2/quiz", _answers(document, 2, rights))
            assert response.status_code == 200, response.text[:300]
        # Version 2: a new quiz for lesson 1. Eve enrolls on it; the others stay on version 1.
        await new_quiz_approved(types.SimpleNamespace(acme=acme, admin=admin), syllabus)
        assert (await admin_client.post(f"/admin/syllabi/{course_id}/publish")).status_code == 303
        eve = Client(live_server.url)
        clients.append(eve)
        await eve.login(people["eve"].email)
        assert (await eve.post(f"/learn/{course_id}/enroll")).status_code == 303
        learner_client = Client(live_server.url)
        clients.append(learner_client)
        await learner_client.login(people["eve"].email)
        outsider_client = Client(live_server.url)
        clients.append(outsider_client)
        await outsider_client.login(outsider.email)
        yield Course(id=course_id, acme=acme, admin=admin_client, learner=learner_client, outsider=outsider_client,
                     people=people, document=document, lesson_count=len(document.lessons))
    finally:
        for client in clients:
            await client.aclose()


def _row(html: str, email: str) -> str:
    match = re.search(r'<tr id="enrollment-[^"]+">((?:(?!</tr>).)*' + re.escape(email) + r'(?:(?!</tr>).)*)</tr>',
                      html, re.DOTALL)
    assert match, f"no row for {email}"
    return " ".join(match.group(1).split())


async def test_it_lists_each_learner_with_version_progress_and_quiz_scores(course):
    page = await course.admin.get(f"/admin/packages/{course.id}/learners")
    assert page.status_code == 200
    assert "Showing 1–5 of 5 learners" in page.text
    n = course.lesson_count
    anna = _row(page.text, course.people["anna"].email)
    # Lesson 1 by the button, lesson 2 by passing its quiz; quizzes: lesson 1 failed (40%), lesson 2 passed (100%).
    assert "v1" in anna and "newer version available (v2)" in anna
    assert f"2 of {n} lessons" in anna and f"{round(200 / n)}%" in anna
    assert "1 of 2 passed" in anna and "best scores average 70%" in anna
    ben = _row(page.text, course.people["ben"].email)
    assert f"1 of {n} lessons" in ben and "1 of 1 passed" in ben and "average 80%" in ben  # best of 80% and 40%
    cara = _row(page.text, course.people["cara"].email)
    assert f"0 of {n} lessons" in cara and "0 of 1 passed" in cara and "average 60%" in cara
    eve = _row(page.text, course.people["eve"].email)
    assert "v2" in eve and "newer version" not in eve and "no quiz taken yet" in eve
    # Last activity: the newest first; Eve enrolled last.
    emails = re.findall(r'class="member-email muted">([^<]+)<', page.text)
    assert emails[0] == course.people["eve"].email


async def test_it_sorts_by_progress_and_searches_by_name_or_email(course):
    by_progress = await course.admin.get(f"/admin/packages/{course.id}/learners", params={"sort": "progress"})
    emails = re.findall(r'class="member-email muted">([^<]+)<', by_progress.text)
    assert emails[0] == course.people["anna"].email and emails[1] == course.people["ben"].email
    found = await course.admin.get(f"/admin/packages/{course.id}/learners", params={"q": "CARA"})
    assert "Showing 1–1 of 1 learner matching “CARA”" in found.text
    assert course.people["cara"].email in found.text and course.people["anna"].email not in found.text
    # A search term is text, never a pattern.
    assert "No learner’s name or email contains “%”" in (
        await course.admin.get(f"/admin/packages/{course.id}/learners", params={"q": "%"})).text
    partial = await course.admin.get(f"/admin/packages/{course.id}/learners", params={"q": "ben"},
                                     headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="learners-table">') and "<html" not in partial.text
    bad = await course.admin.get(f"/admin/packages/{course.id}/learners", params={"sort": "salary"})
    assert bad.status_code == 400 and "Sort by one of" in bad.text


async def test_it_paginates_fifty_a_page_in_the_same_number_of_queries(course):
    small = await course.admin.get(f"/admin/packages/{course.id}/learners")
    small = await course.admin.get(f"/admin/packages/{course.id}/learners")  # the package cache is warm now
    package = await CoursePackageRow.select(CoursePackageRow.id).where(
        (CoursePackageRow.syllabus_id == course.id) & (CoursePackageRow.version == 1)).first()
    # 55 more learners, written directly (the player's own enrollment is tested above and in tests/player).
    for i in range(55):
        user = (await User.insert(User(email=f"bulk-{i:02d}-{uuid.uuid4().hex[:6]}@example.test", name=f"Bulk {i}",
                                       password_hash="-")).returning(User.id))[0]
        await Membership.insert(Membership(tenant_id=course.acme["id"], user_id=user["id"], role="learner"))
        await Enrollment.insert(Enrollment(tenant_id=course.acme["id"], user_id=user["id"], syllabus_id=course.id,
                                           package_id=package["id"], started_package_id=package["id"]))
    first = await course.admin.get(f"/admin/packages/{course.id}/learners", params={"sort": "email"})
    assert "Showing 1–50 of 60 learners" in first.text and "Page 1 of 2" in first.text
    assert first.text.count('<tr id="enrollment-') == 50
    assert first.headers["x-db-queries"] == small.headers["x-db-queries"]
    second = await course.admin.get(f"/admin/packages/{course.id}/learners", params={"sort": "email", "page": 2})
    assert "Showing 51–60 of 60 learners" in second.text and second.text.count('<tr id="enrollment-') == 10
    beyond = await course.admin.get(f"/admin/packages/{course.id}/learners", params={"page": 9})
    assert beyond.status_code == 200 and "There is no page 9" in beyond.text
    assert await Enrollment.count().where(Enrollment.syllabus_id == course.id) == 60


def _question_row(html: str, lesson: int, question: int) -> str:
    match = re.search(rf'<tr id="question-{lesson}-{question}"[^>]*>(.*?)</tr>', html, re.DOTALL)
    assert match, f"no row for question {lesson}.{question}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


async def test_it_shows_attempts_facility_discrimination_time_and_flags_per_question(course):
    page = await course.admin.get(f"/admin/packages/{course.id}/questions")
    assert page.status_code == 200
    assert "questions as in version 2" in page.text
    q1, q2, q3, q4, q5 = (_question_row(page.text, 2, i) for i in range(1, 6))
    assert q1.endswith("5 60% 0.33 1.0 min –")
    assert q2.endswith("5 60% 0.33 1.0 min –")
    assert q3.endswith("5 20% 0.53 1.0 min too hard")
    assert q4.endswith("5 100% – 1.0 min too easy") and q5.endswith("5 100% – 1.0 min too easy")
    lesson2 = course.document.lessons[1]
    assert lesson2.quiz.questions[2].question in q3
    quiz_item = next(item.item_id for item in course.document.provenance.items
                     if (item.kind, item.module_index, item.lesson_index) == ("QUIZ", 1, 2))
    assert f'href="/admin/items/{quiz_item}"' in page.text
    # Lesson 1's quiz was replaced in version 2: its one attempt belongs to the earlier revision.
    assert _question_row(page.text, 1, 1).endswith(" 0 – – – –")
    assert "1 attempt at an earlier revision of it" in page.text
    assert await QuizAttempt.count().where(QuizAttempt.quiz_item_id == uuid.UUID(quiz_item)) == 5


async def test_it_explains_each_statistic_on_the_page(course):
    page = await course.admin.get(f"/admin/packages/{course.id}/questions")
    for words in ("Facility", "Discrimination", "correlation", "Average time", "too hard", "too easy",
                  "does not separate strong from weak learners"):
        assert words in page.text
    assert "<abbr title=" in page.text  # the undefined "–" says why


async def test_it_is_linked_from_the_versions_page(course):
    versions = await course.admin.get(f"/admin/packages/{course.id}")
    assert f'href="/admin/packages/{course.id}/learners"' in versions.text
    assert f'href="/admin/packages/{course.id}/questions"' in versions.text


async def test_it_shows_another_workspace_nothing_and_learners_no_admin_page(course):
    for path in (f"/admin/packages/{course.id}/learners", f"/admin/packages/{course.id}/questions"):
        outsider = await course.outsider.get(path)
        assert outsider.status_code == 404 and course.people["anna"].email not in outsider.text
        assert (await course.learner.get(path)).status_code == 403
    assert (await course.outsider.get(f"/admin/packages/{uuid.uuid4()}/learners")).status_code == 404


async def test_it_says_so_when_nobody_has_enrolled(live_server):
    acme = await make_tenant("Acme")
    admin = await make_member(acme, "admin", "adam")
    client = Client(live_server.url)
    try:
        await client.login(admin.email)
        syllabus, _package = await published_course(client)
        page = await client.get(f"/admin/packages/{syllabus['id']}/learners")
        assert "No one has enrolled in this course yet." in page.text
        questions = await client.get(f"/admin/packages/{syllabus['id']}/questions")
        assert questions.status_code == 200 and "0 attempts at this quiz" in questions.text
    finally:
        await client.aclose()
    assert await LessonProgress.count().where(LessonProgress.tenant_id == acme["id"]) == 0
