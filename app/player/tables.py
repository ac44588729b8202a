from enum import StrEnum

from piccolo.columns import JSONB, UUID, BigInt, Boolean, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.column_types import BigSerial
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Tenant, User
from app.authoring.tables import Syllabus
from app.publishing.tables import CoursePackageRow


class CompletedVia(StrEnum):
    BUTTON = "BUTTON"
    QUIZ = "QUIZ"


class Enrollment(Table, tablename="enrollment"):
    # A learner in a course (the course is its syllabus: package versions belong to one syllabus).
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    user_id = ForeignKey(User, null=False)
    syllabus_id = ForeignKey(Syllabus, null=False)
    package_id = ForeignKey(CoursePackageRow, null=False)  # the version this learner reads
    started_package_id = UUID()  # the version the enrollment began on
    last_lesson_index = Integer(default=1)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # Paid courses: the purchase that opened this enrollment. A refund sets revoked_at: the learner loses
    # access but the enrollment (and with it every completed lesson and quiz attempt) is kept, so buying
    # again picks up where they were.
    purchase_id = UUID(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class LessonProgress(Table, tablename="lesson_progress"):
    # Keyed by the lesson's slot (module, lesson), which survives an upgrade to a newer version.
    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    enrollment_id = ForeignKey(Enrollment, null=False)
    module_index = Integer()
    lesson_index = Integer()
    completed_via = Varchar(length=16, choices=CompletedVia)
    completed_at = Timestamptz(default=TimestamptzNow())


class QuizAttempt(Table, tablename="quiz_attempt"):
    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    enrollment_id = ForeignKey(Enrollment, null=False)
    package_id = UUID()
    quiz_item_id = UUID()  # the approved quiz (content_item id) the questions came from
    module_index = Integer()
    lesson_index = Integer()
    answers = JSONB()  # chosen option per question, null when unanswered
    correct = Integer()
    total = Integer()
    score_pct = Integer()
    passed = Boolean()
    time_spent_ms = Integer()
    created_at = Timestamptz(default=TimestamptzNow())


class QuestionStat(Table, tablename="question_stat"):
    # Denormalized from quiz_attempt (seed 004 §2.3); reconcile_question_stats() recomputes it.
    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    quiz_item_id = UUID()
    question_index = Integer()
    attempts = Integer(default=0)
    correct = Integer(default=0)
    total_time_ms = BigInt(default=0)
