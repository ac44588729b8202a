"""The learner side: enrollment, reading context, progress, quiz attempts and question statistics.

The only writer of enrollment, lesson_progress, quiz_attempt and question_stat. Nothing here writes
package or content tables (progress writes never touch package content). Identity always comes from
the caller's session: functions take the signed-in user's id and tenant, never a user id from input.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from app.analytics import events as analytics
from app.analytics.tables import EventType
from app.audit.actions import AuditAction
from app.audit.services import SYSTEM, Actor, audit
from app.billing import money
from app.billing import services as billing
from app.db import engine, fetch_row
from app.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from app.player import enrollments
from app.player.tables import CompletedVia, Enrollment, LessonProgress, QuestionStat, QuizAttempt
from app.publishing import services as publishing
from app.publishing.schemas import CoursePackage, PackagedLesson
from app.publishing.tables import CoursePackageRow, PackageStatus

PASS_PERCENT = 70
MAX_QUIZ_TIME_MS = 2 * 60 * 60 * 1000


class BestScore(msgspec.Struct, frozen=True):
    """A learner's best attempt at one approved quiz (shown when they come back to it)."""

    quiz_item_id: uuid.UUID
    correct: int
    total: int
    score_pct: int
    passed: bool


class LearnerContext(msgspec.Struct, kw_only=True):
    """Everything a player page needs about one learner in one course, from ONE query."""

    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    syllabus_id: uuid.UUID
    package_id: uuid.UUID
    version: int
    package_status: str
    content_hash: str
    last_lesson_index: int
    completed: set[tuple[int, int]]
    newest_version: int | None
    package: CoursePackage
    best_scores: dict[uuid.UUID, BestScore] = {}

    @property
    def upgrade_available(self) -> bool:
        return self.newest_version is not None and self.newest_version > self.version

    def is_completed(self, lesson: PackagedLesson) -> bool:
        return (lesson.module_index, lesson.lesson_index) in self.completed

    @property
    def progress(self) -> tuple[int, int]:
        lessons = self.package.lessons
        return sum(1 for lesson in lessons if self.is_completed(lesson)), len(lessons)

    @property
    def continue_index(self) -> int | None:
        """"Continue" means the first lesson not yet done, in course order (a learner who skipped ahead
        is sent back to what they skipped); None once every lesson is done."""
        return next((lesson.index for lesson in self.package.lessons if not self.is_completed(lesson)), None)

    def best_score(self, lesson: PackagedLesson) -> BestScore | None:
        # Keyed by the approved quiz, not the lesson slot: after a new version replaced the quiz, a best
        # score on the old questions says nothing about the new ones.
        return self.best_scores.get(_quiz_item_id(self.package, lesson))


CONTEXT_SQL = """
SELECT e.id AS enrollment_id, e.syllabus_id, e.package_id, e.last_lesson_index, p.version, p.status,
       p.content_hash,
       (SELECT coalesce(array_agg(lp.module_index * 1000 + lp.lesson_index), ARRAY[]::int[])
          FROM lesson_progress lp WHERE lp.enrollment_id = e.id) AS completed,
       (SELECT max(n.version) FROM course_package n
         WHERE n.syllabus_id = e.syllabus_id AND n.status = 'PUBLISHED') AS newest_version,
       (SELECT coalesce(jsonb_agg(b), '[]'::jsonb) FROM (
          SELECT DISTINCT ON (qa.quiz_item_id) qa.quiz_item_id, qa.correct, qa.total, qa.score_pct, qa.passed
            FROM quiz_attempt qa WHERE qa.enrollment_id = e.id
           ORDER BY qa.quiz_item_id, qa.score_pct DESC, qa.id) b) AS best_scores
FROM enrollment e JOIN course_package p ON p.id = e.package_id
WHERE e.user_id = $1 AND e.syllabus_id = $2 AND e.tenant_id = $3 AND e.revoked_at IS NULL
"""


async def learner_context(tenant_id: uuid.UUID, user_id: uuid.UUID, syllabus_id: uuid.UUID) -> LearnerContext | None:
    row = await fetch_row(CONTEXT_SQL, user_id, syllabus_id, tenant_id)
    if row is None:
        return None
    package = await publishing.document_of({"id": row["package_id"], "content_hash": row["content_hash"]})
    return LearnerContext(
        enrollment_id=row["enrollment_id"], user_id=user_id, syllabus_id=row["syllabus_id"],
        package_id=row["package_id"],
        version=row["version"], package_status=row["status"], content_hash=row["content_hash"],
        last_lesson_index=row["last_lesson_index"], completed={divmod(code, 1000) for code in row["completed"]},
        newest_version=row["newest_version"], package=package,
        best_scores={best.quiz_item_id: best for best in msgspec.json.decode(row["best_scores"], type=list[BestScore])},
    )


class CourseWithdrawn(Gone):
    """Every version of a course the learner is enrolled in was archived."""

    def __init__(self, title: str) -> None:
        super().__init__(f"“{title}” was withdrawn: your workspace archived every version of it, so it can no "
                         "longer be read. Your completed lessons are kept in case it is published again.")
        self.title = title


async def current_context(tenant_id: uuid.UUID, user_id: uuid.UUID, syllabus_id: uuid.UUID) -> LearnerContext | None:
    """The learner's context on a readable version; None when not enrolled. Archived versions are never
    served: archiving moves its learners in the same transaction, so an enrollment still on one either
    was made while the archive ran (moved here, on the next visit) or its course was withdrawn."""
    context = await learner_context(tenant_id, user_id, syllabus_id)
    if context is None or context.package_status == PackageStatus.PUBLISHED.value:
        return context
    newest = await publishing.newest_published(tenant_id, syllabus_id)
    if newest is None:
        raise CourseWithdrawn(context.package.course.title)
    if await enrollments.move_enrollments(tenant_id, newest, [context.package_id],
                                          enrollment_id=context.enrollment_id):
        await audit(AuditAction.COURSE_VERSION_UPGRADED, actor=SYSTEM, tenant_id=tenant_id,
                    entity_type="enrollment", entity_id=context.enrollment_id,
                    metadata={"from": context.version, "to": newest["version"], "reason": "version archived"})
    return await learner_context(tenant_id, user_id, syllabus_id)


async def require_context(tenant_id: uuid.UUID, user_id: uuid.UUID, syllabus_id: uuid.UUID) -> LearnerContext:
    """Learner routes need an enrollment in the learner's tenant (L5): another tenant's course is
    "not found"; a course of this tenant the learner has not enrolled in is "forbidden"; a course
    withdrawn under an enrolled learner is "gone" (CourseWithdrawn)."""
    context = await current_context(tenant_id, user_id, syllabus_id)
    if context is not None:
        return context
    if await publishing.newest_published(tenant_id, syllabus_id) is None:
        raise NotFound("No such course.")
    revoked = await revoked_enrollment(tenant_id, user_id, syllabus_id)
    if revoked is not None:
        raise Forbidden(f"Your access to this course ended on {revoked['revoked_at']:%-d %B %Y}, when its purchase "
                        "was refunded. Your progress is kept: buy it again to pick up where you left off.")
    raise Forbidden("Enroll in this course to read its lessons.")


async def revoked_enrollment(tenant_id: uuid.UUID, user_id: uuid.UUID, syllabus_id: uuid.UUID) -> dict[str, Any] | None:
    """The learner's enrollment when a refund took its access away (it is kept, with its progress)."""
    return await Enrollment.select(Enrollment.id, Enrollment.revoked_at).where(
        (Enrollment.tenant_id == tenant_id) & (Enrollment.user_id == user_id) & (Enrollment.syllabus_id == syllabus_id)
        & Enrollment.revoked_at.is_not_null()).first()


def lesson_at(context: LearnerContext, index: int) -> PackagedLesson:
    lessons = context.package.lessons
    if not 1 <= index <= len(lessons):
        raise NotFound(f"This course has lessons 1 to {len(lessons)}.")
    return lessons[index - 1]


# ---------------------------------------------------------------------------------------------
# Catalog and enrollment


async def catalog(tenant_id: uuid.UUID, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Published courses of the tenant, with the learner's enrollment and progress where there is one."""
    courses = await publishing.latest_packages(tenant_id, published_only=True)
    enrollments = await Enrollment.raw(
        "SELECT e.syllabus_id, e.last_lesson_index, p.version, "
        "(SELECT count(*) FROM lesson_progress lp WHERE lp.enrollment_id = e.id) AS completed "
        "FROM enrollment e JOIN course_package p ON p.id = e.package_id "
        "WHERE e.user_id = {} AND e.tenant_id = {} AND e.revoked_at IS NULL", user_id, tenant_id)
    products = await billing.active_products(tenant_id)
    by_course = {row["syllabus_id"]: row for row in enrollments}
    for course in courses:
        enrollment = by_course.get(course["syllabus_id"])
        if enrollment is not None:
            # Progress rows are per lesson slot and survive upgrades; a newer version may have fewer lessons.
            enrollment["completed"] = min(enrollment["completed"], course["lesson_count"])
    return [{**course, "enrollment": by_course.get(course["syllabus_id"]),
             "product": products.get(course["syllabus_id"])} for course in courses]


async def course_preview(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> tuple[dict[str, Any], CoursePackage]:
    """The newest published version of a course of this tenant (for the overview before enrolling)."""
    row = await publishing.newest_published(tenant_id, syllabus_id)
    if row is None:
        raise NotFound("No such course.")
    return row, await publishing.document_of(row)


async def enroll(tenant_id: uuid.UUID, user_id: uuid.UUID, syllabus_id: uuid.UUID, *, actor: Actor) -> bool:
    """Enroll on the newest published version; returns False when already enrolled. A course with an active
    product needs a paid purchase (L3), whose webhook enrolls the learner; enrolling here is for free courses
    (and reopens the access a refund took, once the course has become free)."""
    package, document = await course_preview(tenant_id, syllabus_id)
    product = await billing.active_product(tenant_id, syllabus_id)
    if product is not None and not await billing.has_paid(tenant_id, user_id, syllabus_id):
        price = money.format_amount(product["price_minor"], product["currency"])
        raise billing.PaymentRequired(f"“{document.course.title}” costs {price}: buy it to enroll.")
    rows = await Enrollment.raw(
        "INSERT INTO enrollment (id, tenant_id, user_id, syllabus_id, package_id, started_package_id, "
        "last_lesson_index, created_at, updated_at) VALUES (gen_random_uuid(), {}, {}, {}, {}, {}, 1, now(), now()) "
        "ON CONFLICT (user_id, syllabus_id) DO UPDATE SET revoked_at = NULL, updated_at = now() "
        "WHERE enrollment.revoked_at IS NOT NULL RETURNING id",
        tenant_id, user_id, syllabus_id, package["id"], package["id"])
    if rows:
        await audit(AuditAction.ENROLLMENT_CREATED, actor=actor, tenant_id=tenant_id, entity_type="enrollment",
                    entity_id=rows[0]["id"], metadata={"syllabus_id": str(syllabus_id), "version": package["version"]})
        await analytics.record(EventType.ENROLLED, tenant_id=tenant_id, user_id=user_id, course_id=syllabus_id,
                               package_version=package["version"])
    return bool(rows)


async def upgrade(context: LearnerContext, tenant_id: uuid.UUID, *, actor: Actor) -> int:
    """Move a learner to the newest published version (offered, never forced). Progress is kept per
    lesson slot, so completed lessons stay completed."""
    if not context.upgrade_available:
        raise Conflict("You are already on the newest version of this course.")
    newest = await publishing.newest_published(tenant_id, context.syllabus_id)
    changed = await enrollments.move_enrollments(tenant_id, newest, [context.package_id],
                                                 enrollment_id=context.enrollment_id)
    if len(changed) != 1:
        raise Conflict("Your enrollment changed meanwhile; reload the page.")
    await audit(AuditAction.COURSE_VERSION_UPGRADED, actor=actor, tenant_id=tenant_id, entity_type="enrollment",
                entity_id=context.enrollment_id, metadata={"from": context.version, "to": newest["version"]})
    return newest["version"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------------------------
# Progress


async def remember_position(context: LearnerContext, index: int) -> None:
    """"Continue where you left off": one small write, only when the position moves."""
    if context.last_lesson_index != index:
        await Enrollment.update({Enrollment.last_lesson_index: index, Enrollment.updated_at: _now()}).where(
            Enrollment.id == context.enrollment_id)
        context.last_lesson_index = index


async def complete_lesson(context: LearnerContext, tenant_id: uuid.UUID, index: int, via: CompletedVia) -> bool:
    lesson = lesson_at(context, index)
    rows = await LessonProgress.raw(
        "INSERT INTO lesson_progress (tenant_id, enrollment_id, module_index, lesson_index, completed_via, "
        "completed_at) VALUES ({}, {}, {}, {}, {}, now()) ON CONFLICT DO NOTHING RETURNING id",
        tenant_id, context.enrollment_id, lesson.module_index, lesson.lesson_index, via.value)
    context.completed.add((lesson.module_index, lesson.lesson_index))
    done, total = context.progress
    if rows and done == total:
        # The lesson that finished the course: observed once, after the write (analytics never blocks it).
        await analytics.record(EventType.COURSE_COMPLETED, tenant_id=tenant_id, user_id=context.user_id,
                               course_id=context.syllabus_id, package_version=context.version)
    return bool(rows)


# ---------------------------------------------------------------------------------------------
# Quizzes


class QuestionResult(msgspec.Struct, frozen=True):
    index: int
    chosen: int | None
    correct_index: int
    is_correct: bool
    explanation: str


class QuizResult(msgspec.Struct, frozen=True):
    attempt_id: int
    correct: int
    total: int
    score_pct: int
    passed: bool
    questions: list[QuestionResult]
    completed_now: bool


def parse_answers(form: dict[str, Any], question_count: int) -> list[int | None]:
    answers: list[int | None] = []
    for i in range(question_count):
        raw = form.get(f"q{i}")
        if raw in (None, ""):
            answers.append(None)
            continue
        try:
            choice = int(raw)
        except (TypeError, ValueError):
            raise InvalidInput(f"Question {i + 1}: choose one of the four options.") from None
        if not 0 <= choice <= 3:
            raise InvalidInput(f"Question {i + 1}: choose one of the four options.")
        answers.append(choice)
    if all(answer is None for answer in answers):
        raise InvalidInput("Answer at least one question before checking your answers.")
    return answers


async def submit_quiz(context: LearnerContext, tenant_id: uuid.UUID, index: int, answers: list[int | None],
                      time_spent_ms: int) -> QuizResult:
    lesson = lesson_at(context, index)
    questions = lesson.quiz.questions
    if len(answers) != len(questions):
        raise InvalidInput(f"This quiz has {len(questions)} questions.")
    results = [QuestionResult(i, chosen, q.correct_index, chosen == q.correct_index, q.explanation)
               for i, (q, chosen) in enumerate(zip(questions, answers, strict=True))]
    correct = sum(r.is_correct for r in results)
    score = round(100 * correct / len(questions))
    passed = score >= PASS_PERCENT
    time_spent_ms = max(0, min(int(time_spent_ms), MAX_QUIZ_TIME_MS))
    quiz_item_id = _quiz_item_id(context.package, lesson)
    async with engine().transaction():
        attempt = (await QuizAttempt.insert(QuizAttempt(
            tenant_id=tenant_id, enrollment_id=context.enrollment_id, package_id=context.package_id,
            quiz_item_id=quiz_item_id, module_index=lesson.module_index, lesson_index=lesson.lesson_index,
            answers=msgspec.json.encode(answers).decode(), correct=correct, total=len(questions), score_pct=score,
            passed=passed, time_spent_ms=time_spent_ms,
        )).returning(QuizAttempt.id))[0]
        await _count_answers(tenant_id, quiz_item_id, results, time_spent_ms)
    best = context.best_scores.get(quiz_item_id)
    if best is None or score > best.score_pct:
        context.best_scores[quiz_item_id] = BestScore(quiz_item_id, correct, len(questions), score, passed)
    completed_now = passed and await complete_lesson(context, tenant_id, index, CompletedVia.QUIZ)
    return QuizResult(attempt["id"], correct, len(questions), score, passed, results, completed_now)


def _quiz_item_id(package: CoursePackage, lesson: PackagedLesson) -> uuid.UUID:
    for item in package.provenance.items:
        if (item.kind, item.module_index, item.lesson_index) == ("QUIZ", lesson.module_index, lesson.lesson_index):
            return uuid.UUID(item.item_id)
    raise RuntimeError("package provenance lacks the quiz of a lesson")  # the builder guarantees it


# Time per question is the attempt's time shared equally among the answered questions: the page does not
# time questions one by one. reconcile_question_stats() applies exactly the same rule.
UPSERT_STATS_SQL = """
INSERT INTO question_stat (tenant_id, quiz_item_id, question_index, attempts, correct, total_time_ms)
SELECT {}, {}, q.idx, 1, q.ok, {} FROM unnest({}::int[], {}::int[]) AS q(idx, ok)
ON CONFLICT (quiz_item_id, question_index) DO UPDATE
SET attempts = question_stat.attempts + 1, correct = question_stat.correct + excluded.correct,
    total_time_ms = question_stat.total_time_ms + excluded.total_time_ms
"""


async def _count_answers(tenant_id: uuid.UUID, quiz_item_id: uuid.UUID, results: list[QuestionResult],
                         time_spent_ms: int) -> None:
    answered = [r for r in results if r.chosen is not None]
    if not answered:
        return
    share = time_spent_ms // len(answered)
    await QuestionStat.raw(UPSERT_STATS_SQL, tenant_id, quiz_item_id, share,
                           [r.index for r in answered], [int(r.is_correct) for r in answered])


async def expected_question_stats() -> dict[tuple[uuid.UUID, int], tuple[int, int, int, uuid.UUID]]:
    """Recompute (attempts, correct, total_time_ms) per question from quiz_attempt alone."""
    attempts = await QuizAttempt.select(
        QuizAttempt.tenant_id, QuizAttempt.quiz_item_id, QuizAttempt.package_id, QuizAttempt.module_index,
        QuizAttempt.lesson_index, QuizAttempt.answers, QuizAttempt.time_spent_ms,
    )
    keys = {(a["package_id"], a["module_index"], a["lesson_index"]) for a in attempts}
    answer_keys = await _answer_keys(keys)
    expected: dict[tuple[uuid.UUID, int], list] = {}
    for attempt in attempts:
        answers = msgspec.json.decode(attempt["answers"], type=list[int | None])
        correct_indexes = answer_keys[(attempt["package_id"], attempt["module_index"], attempt["lesson_index"])]
        answered = [i for i, chosen in enumerate(answers) if chosen is not None]
        share = attempt["time_spent_ms"] // len(answered) if answered else 0
        for i in answered:
            totals = expected.setdefault((attempt["quiz_item_id"], i), [0, 0, 0, attempt["tenant_id"]])
            totals[0] += 1
            totals[1] += int(answers[i] == correct_indexes[i])
            totals[2] += share
    return {key: tuple(value) for key, value in expected.items()}


async def _answer_keys(keys: set[tuple[uuid.UUID, int, int]]) -> dict[tuple[uuid.UUID, int, int], list[int]]:
    result = {}
    for package_id, module_index, lesson_index in keys:
        row = await CoursePackageRow.select(CoursePackageRow.id, CoursePackageRow.content_hash).where(
            CoursePackageRow.id == package_id).first()
        package = await publishing.document_of(row)
        lesson = next(lesson for lesson in package.lessons
                      if (lesson.module_index, lesson.lesson_index) == (module_index, lesson_index))
        result[(package_id, module_index, lesson_index)] = [q.correct_index for q in lesson.quiz.questions]
    return result


async def reconcile_question_stats(*, fix: bool = False) -> list[str]:
    """Compare question_stat with a recount from quiz_attempt; with fix=True, rewrite the drifted rows.
    Returns one line per difference (empty when the counters are right)."""
    expected = await expected_question_stats()
    actual = {(r["quiz_item_id"], r["question_index"]): (r["attempts"], r["correct"], r["total_time_ms"], r)
              for r in await QuestionStat.select()}
    differences = []
    for key in sorted(set(expected) | set(actual), key=lambda k: (str(k[0]), k[1])):
        want = tuple(expected.get(key, (0, 0, 0, None))[:3])
        have = tuple(actual.get(key, (0, 0, 0, None))[:3])
        if want == have:
            continue
        differences.append(f"quiz {key[0]} question {key[1] + 1}: counted {have}, attempts say {want}")
        if not fix:
            continue
        if key in actual:
            await QuestionStat.update({QuestionStat.attempts: want[0], QuestionStat.correct: want[1],
                                       QuestionStat.total_time_ms: want[2]}).where(
                (QuestionStat.quiz_item_id == key[0]) & (QuestionStat.question_index == key[1]))
        else:
            await QuestionStat.insert(QuestionStat(tenant_id=expected[key][3], quiz_item_id=key[0],
                                                   question_index=key[1], attempts=want[0], correct=want[1],
                                                   total_time_ms=want[2]))
    return differences
