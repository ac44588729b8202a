"""Reader details (issue 9, item 8): "Continue" opens the first unfinished lesson, a returning learner sees
their best score above the quiz, a passed quiz updates the progress bar out of band, and the lesson
fragment carries its own <title> and the page's one h1."""

import re

import msgspec

from app.player.tables import Enrollment, LessonProgress, QuizAttempt
from app.publishing.schemas import CoursePackage
from tests.player.test_player import _answers, _course
from tests.publishing.helpers import new_quiz_approved


async def _done(personas) -> list[tuple[int, int]]:
    enrollment = await Enrollment.select(Enrollment.id).where(Enrollment.user_id == personas.learner.user_id).first()
    rows = await LessonProgress.select().where(LessonProgress.enrollment_id == enrollment["id"])
    return sorted((r["module_index"], r["lesson_index"]) for r in rows)


def _lesson_count(package_row) -> int:
    return len(msgspec.json.decode(package_row["document"], type=CoursePackage).lessons)


async def test_it_continues_at_the_first_unfinished_lesson(client, client_factory, personas):
    course_id, package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    start = (await learner.get(f"/learn/{course_id}")).text
    assert f'href="/learn/{course_id}/lesson/1" role="button" class="continue-button">Start the course</a>' in start
    assert (await learner.get(f"/learn/{course_id}/continue")).headers["location"] == f"/learn/{course_id}/lesson/1"

    # Lessons 1 and 3 done, lesson 4 opened last: "Continue" goes back to lesson 2, which was skipped.
    for index in (1, 3):
        assert (await learner.post(f"/learn/{course_id}/lesson/{index}/complete")).status_code == 303
    assert (await learner.get(f"/learn/{course_id}/lesson/4")).status_code == 200
    assert len(await _done(personas)) == 2
    assert (await Enrollment.select(Enrollment.last_lesson_index).where(
        Enrollment.user_id == personas.learner.user_id).first())["last_lesson_index"] == 4
    overview = await learner.get(f"/learn/{course_id}")
    assert f'href="/learn/{course_id}/lesson/2" role="button" class="continue-button">Continue</a>' in overview.text
    assert overview.text.count('aria-current="step"') == 1
    assert f'href="/learn/{course_id}/lesson/2" class="lesson-link" aria-current="step"' in overview.text
    resume = await learner.get(f"/learn/{course_id}/continue")
    assert resume.status_code == 303 and resume.headers["location"] == f"/learn/{course_id}/lesson/2"
    catalog = await learner.get("/learn")
    assert f'href="/learn/{course_id}/continue" role="button">Continue' in catalog.text

    # Every lesson done: the overview says so and offers lesson 1 and the course summary.
    total = _lesson_count(package)
    for index in range(1, total + 1):
        await learner.post(f"/learn/{course_id}/lesson/{index}/complete")
    assert len(await _done(personas)) == total
    finished = (await learner.get(f"/learn/{course_id}")).text
    assert "Course complete" in finished and "You finished every lesson." in finished
    assert f'href="/learn/{course_id}/lesson/1" role="button" class="continue-button">Back to lesson 1</a>' in finished
    assert 'href="#course-summary"' in finished and 'id="course-summary"' in finished
    assert 'aria-current="step"' not in finished
    assert (await learner.get(f"/learn/{course_id}/continue")).headers["location"] == f"/learn/{course_id}"
    assert "Review the course" in (await learner.get("/learn")).text


async def test_it_shows_the_best_previous_score_when_returning_to_a_quiz(client, client_factory, personas):
    course_id, package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    first = await learner.get(f"/learn/{course_id}/lesson/1")
    assert "Your best" not in first.text

    await learner.post(f"/learn/{course_id}/lesson/1/quiz", _answers(package, 1, right=2), htmx=True)
    page = await learner.get(f"/learn/{course_id}/lesson/1")
    assert "Your best: 2 of 5 (40%), not passed yet." in page.text
    await learner.post(f"/learn/{course_id}/lesson/1/quiz", _answers(package, 1, right=4), htmx=True)
    await learner.post(f"/learn/{course_id}/lesson/1/quiz", _answers(package, 1, right=3), htmx=True)
    attempts = await QuizAttempt.select(QuizAttempt.correct).order_by(QuizAttempt.id).where(
        QuizAttempt.package_id == package["id"])
    assert [a["correct"] for a in attempts] == [2, 4, 3]
    page = await learner.get(f"/learn/{course_id}/lesson/1")
    assert "Your best: 4 of 5 (80%), passed." in page.text  # the best, not the latest
    assert int(page.headers["x-db-queries"]) <= 3  # still within the reader's query budget
    # "Try again" swaps the lesson in over htmx: the form comes back with the best score above it.
    retry = await learner.get(f"/learn/{course_id}/lesson/1", headers={"HX-Request": "true"})
    assert "Your best: 4 of 5 (80%), passed." in retry.text
    assert "Your best" not in (await learner.get(f"/learn/{course_id}/lesson/2")).text  # per quiz

    # A new version with another quiz for lesson 1: the old best says nothing about the new questions.
    await new_quiz_approved(personas, {"id": course_id})
    assert (await client.post(f"/admin/syllabi/{course_id}/publish")).status_code == 303
    assert (await learner.post(f"/learn/{course_id}/upgrade")).status_code == 303
    assert "Your best" not in (await learner.get(f"/learn/{course_id}/lesson/1")).text
    assert "Your best: 4 of 5 (80%), passed." not in (await learner.get(f"/learn/{course_id}/lesson/2")).text


async def test_a_passed_quiz_brings_the_progress_bar_up_to_date(client, client_factory, personas):
    course_id, package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    failed = await learner.post(f"/learn/{course_id}/lesson/1/quiz", _answers(package, 1, right=1), htmx=True)
    assert 'id="course-progress"' not in failed.text  # nothing changed, nothing swapped
    passed = await learner.post(f"/learn/{course_id}/lesson/1/quiz", _answers(package, 1, right=5), htmx=True)
    assert await _done(personas) == [(1, 1)]
    bar = re.search(r'<progress id="course-progress"[^>]*>', passed.text).group(0)
    assert 'hx-swap-oob="true"' in bar and 'value="1"' in bar and f'max="{_lesson_count(package)}"' in bar


async def test_the_lesson_fragment_names_the_tab_and_has_one_h1(client, client_factory, personas):
    course_id, _package, learner = await _course(client, client_factory, personas)
    await learner.post(f"/learn/{course_id}/enroll")
    page = await learner.get(f"/learn/{course_id}/lesson/2")
    title = re.search(r'<h1 id="page-heading" tabindex="-1">([^<]+)</h1>', page.text).group(1)
    assert page.text.count("<h1") == 1 and page.text.count("<title>") == 1
    assert f"<title>{title} · Coursewright</title>" in page.text
    fragment = await learner.get(f"/learn/{course_id}/lesson/2", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith(f"<title>{title} · Coursewright</title>")  # top level: htmx takes it
    assert fragment.text.count("<h1") == 1 and "<html" not in fragment.text
    project = await learner.get(f"/learn/{course_id}/module/1/project")
    assert project.text.count("<h1") == 1 and 'id="page-heading"' in project.text
