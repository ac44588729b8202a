"""Learners and quiz questions of one course, for its admins. Reads enrollment, lesson_progress, quiz_attempt,
question_stat, app_user and course_package; writes nothing (the player is their only writer).

A course is its syllabus: packages are its versions, and its learners are the enrollments of the syllabus.
Both pages cost a fixed number of queries whatever the number of learners or attempts.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from app.authoring.schemas import QuizQuestion
from app.db import independent_connection
from app.errors import InvalidInput, NotFound
from app.learners.statistics import QuestionStats, analyse_question, score_attempt
from app.publishing import services as publishing
from app.publishing.schemas import CoursePackage, PackagedLesson
from app.publishing.tables import PackageStatus

PER_PAGE = 50


async def _fetch(query: str, *args: object) -> list[dict[str, Any]]:
    async with independent_connection() as conn:
        return [dict(row) for row in await conn.fetch(query, *args)]


async def course_versions(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> list[dict[str, Any]]:
    """The versions of a course of this tenant, newest first; 404 when it has none (or is another tenant's)."""
    versions = await publishing.list_versions(tenant_id, syllabus_id)
    if not versions:
        raise NotFound("This course has no published version yet.")
    return versions


def shown_version(versions: list[dict[str, Any]]) -> dict[str, Any]:
    """The version whose text the pages show: the newest published one (the newest of all once withdrawn)."""
    return next((v for v in versions if v["status"] == PackageStatus.PUBLISHED.value), versions[0])


# ---------------------------------------------------------------------------------------------
# Learners


# How each sort orders the rows; the last key makes the order total, so pages never overlap.
SORTS = {
    "activity": "last_activity DESC NULLS LAST, email",
    "progress": "completed::float / greatest(lesson_count, 1) DESC, last_activity DESC NULLS LAST, email",
    "score": "average_best DESC NULLS LAST, email",
    "email": "email",
}

# Progress counts the completed lesson slots that exist in the learner's version ($3/$4: every version's
# slots as module * 1000 + lesson): progress rows survive an upgrade, and a newer version may have fewer lessons.
# Last activity is the latest of the enrollment's own update (enrolling, moving on, upgrading), a completed
# lesson and a quiz attempt. Quiz scores count each quiz (lesson slot) once, with the learner's best try.
LEARNERS_SQL = """
WITH slots AS (
    SELECT s.package_id, s.slot FROM unnest($3::uuid[], $4::int[]) AS s(package_id, slot)
),
learners AS (
    SELECT e.id AS enrollment_id, u.email, u.name, p.version, p.lesson_count, e.created_at AS enrolled_at,
           coalesce(lp.completed, 0) AS completed, coalesce(qa.attempted, 0) AS quizzes_attempted,
           coalesce(qa.passed, 0) AS quizzes_passed, qa.average_best,
           greatest(e.updated_at, lp.last_completed, qa.last_attempt) AS last_activity
    FROM enrollment e
    JOIN app_user u ON u.id = e.user_id
    JOIN course_package p ON p.id = e.package_id
    LEFT JOIN LATERAL (
        SELECT count(s.slot) AS completed, max(l.completed_at) AS last_completed
        FROM lesson_progress l
        LEFT JOIN slots s ON s.package_id = e.package_id AND s.slot = l.module_index * 1000 + l.lesson_index
        WHERE l.enrollment_id = e.id
    ) lp ON true
    LEFT JOIN LATERAL (
        SELECT count(*) AS attempted, count(*) FILTER (WHERE b.passed) AS passed,
               round(avg(b.best))::int AS average_best, max(b.last_at) AS last_attempt
        FROM (SELECT max(a.score_pct) AS best, bool_or(a.passed) AS passed, max(a.created_at) AS last_at
              FROM quiz_attempt a WHERE a.enrollment_id = e.id
              GROUP BY a.module_index, a.lesson_index) b
    ) qa ON true
    WHERE e.tenant_id = $1 AND e.syllabus_id = $2
      AND ($5 = '' OR u.email ILIKE $5 ESCAPE '\\' OR u.name ILIKE $5 ESCAPE '\\')
)
SELECT t.total, r.* FROM (SELECT count(*) AS total FROM learners) t
LEFT JOIN LATERAL (SELECT * FROM learners ORDER BY {order} LIMIT $6 OFFSET $7) r ON true
"""


class LearnerRow(msgspec.Struct, frozen=True, kw_only=True):
    enrollment_id: uuid.UUID
    email: str
    name: str
    version: int
    behind: bool  # a newer published version exists
    completed: int
    lessons: int
    quizzes_attempted: int
    quizzes_passed: int
    average_best: int | None
    last_activity: Any
    enrolled_at: Any

    @property
    def progress_pct(self) -> int:
        return round(100 * self.completed / self.lessons) if self.lessons else 0


class LearnerPage(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[LearnerRow]
    total: int
    page: int
    per_page: int
    newest_version: int | None
    course: dict[str, Any]  # the version whose title the page shows

    @property
    def first(self) -> int:
        return (self.page - 1) * self.per_page + 1

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if escaped else ""


async def _slots(versions: list[dict[str, Any]]) -> tuple[list[uuid.UUID], list[int]]:
    """Every version's lesson slots, as two parallel arrays for unnest(). Parsed packages are cached by hash,
    so this reads a document only the first time a version is seen."""
    package_ids, slots = [], []
    for version in versions:
        document = await publishing.document_of(version)
        for lesson in document.lessons:
            package_ids.append(version["id"])
            slots.append(lesson.module_index * 1000 + lesson.lesson_index)
    return package_ids, slots


async def learners_page(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, *, q: str = "", sort: str = "activity",
                        page: int = 1, per_page: int = PER_PAGE) -> LearnerPage:
    if sort not in SORTS:
        raise InvalidInput(f"Sort by one of: {', '.join(SORTS)}.")
    versions = await course_versions(tenant_id, syllabus_id)
    package_ids, slots = await _slots(versions)
    rows = await _fetch(LEARNERS_SQL.format(order=SORTS[sort]), tenant_id, syllabus_id, package_ids, slots,
                        _like(q.strip()), per_page, (page - 1) * per_page)
    newest = max((v["version"] for v in versions if v["status"] == PackageStatus.PUBLISHED.value), default=None)
    learners = [LearnerRow(
        enrollment_id=r["enrollment_id"], email=r["email"], name=r["name"], version=r["version"],
        behind=newest is not None and r["version"] < newest, completed=r["completed"], lessons=r["lesson_count"],
        quizzes_attempted=r["quizzes_attempted"], quizzes_passed=r["quizzes_passed"], average_best=r["average_best"],
        last_activity=r["last_activity"], enrolled_at=r["enrolled_at"],
    ) for r in rows if r["enrollment_id"] is not None]
    return LearnerPage(rows=learners, total=rows[0]["total"], page=page, per_page=per_page, newest_version=newest,
                       course=shown_version(versions))


# ---------------------------------------------------------------------------------------------
# Quiz questions (item analysis)


class QuestionRow(msgspec.Struct, frozen=True):
    question: QuizQuestion
    stats: QuestionStats


class LessonQuestions(msgspec.Struct, frozen=True, kw_only=True):
    lesson: PackagedLesson
    quiz_item_id: uuid.UUID
    quiz_attempts: int  # attempts at this quiz (the discrimination index is computed over them)
    earlier_attempts: int  # attempts at earlier revisions of this lesson's quiz: other questions, not counted
    questions: list[QuestionRow]


class QuestionAnalysis(msgspec.Struct, frozen=True, kw_only=True):
    version: dict[str, Any]
    lessons: list[LessonQuestions]

    @property
    def attempts(self) -> int:
        return sum(lesson.quiz_attempts for lesson in self.lessons)

    @property
    def question_count(self) -> int:
        return sum(len(lesson.questions) for lesson in self.lessons)

    @property
    def flagged(self) -> int:
        return sum(1 for lesson in self.lessons for row in lesson.questions if row.stats.flags)


STATS_SQL = """
SELECT quiz_item_id, question_index, attempts, correct, total_time_ms FROM question_stat
WHERE tenant_id = $1 AND quiz_item_id = ANY($2::uuid[])
"""
ATTEMPTS_SQL = """
SELECT quiz_item_id, answers FROM quiz_attempt WHERE tenant_id = $1 AND quiz_item_id = ANY($2::uuid[])
"""
# Attempts of this course's learners at quizzes the shown version no longer has (a revised quiz), per slot.
EARLIER_SQL = """
SELECT a.module_index, a.lesson_index, count(*) AS attempts
FROM quiz_attempt a JOIN enrollment e ON e.id = a.enrollment_id
WHERE a.tenant_id = $1 AND e.syllabus_id = $2 AND a.quiz_item_id <> ALL($3::uuid[])
GROUP BY a.module_index, a.lesson_index
"""


def quiz_items(package: CoursePackage) -> dict[tuple[int, int], uuid.UUID]:
    """The approved quiz (content item id) of each lesson slot of a package."""
    return {(item.module_index, item.lesson_index): uuid.UUID(item.item_id)
            for item in package.provenance.items if item.kind == "QUIZ" and item.lesson_index is not None}


async def question_analysis(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> QuestionAnalysis:
    version = shown_version(await course_versions(tenant_id, syllabus_id))
    package = await publishing.document_of(version)
    quizzes = quiz_items(package)
    ids = list(quizzes.values())
    stats = {(r["quiz_item_id"], r["question_index"]): r for r in await _fetch(STATS_SQL, tenant_id, ids)}
    answers: dict[uuid.UUID, list[list[int | None]]] = {}
    for row in await _fetch(ATTEMPTS_SQL, tenant_id, ids):
        answers.setdefault(row["quiz_item_id"], []).append(msgspec.json.decode(row["answers"],
                                                                               type=list[int | None]))
    earlier = {(r["module_index"], r["lesson_index"]): r["attempts"]
               for r in await _fetch(EARLIER_SQL, tenant_id, syllabus_id, ids)}
    lessons = []
    for lesson in package.lessons:
        slot = (lesson.module_index, lesson.lesson_index)
        quiz_id = quizzes[slot]
        key = [q.correct_index for q in lesson.quiz.questions]
        scored = [score_attempt(attempt, key) for attempt in answers.get(quiz_id, [])]
        rows = []
        for i, question in enumerate(lesson.quiz.questions):
            counted = stats.get((quiz_id, i), {"attempts": 0, "correct": 0, "total_time_ms": 0})
            rows.append(QuestionRow(question, analyse_question(
                i, attempts=counted["attempts"], correct=counted["correct"], total_time_ms=counted["total_time_ms"],
                scored_attempts=scored)))
        lessons.append(LessonQuestions(lesson=lesson, quiz_item_id=quiz_id, quiz_attempts=len(scored),
                                       earlier_attempts=earlier.get(slot, 0), questions=rows))
    return QuestionAnalysis(version=version, lessons=lessons)
