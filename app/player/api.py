"""Learner read APIs (L1): published packages only, identity from the session, enrollment required."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Request, get

from app.authoring.schemas import Lesson
from app.player import services
from app.player.routes import LEARNER, _who
from app.web import inputs


class LearnerCourse(msgspec.Struct, frozen=True):
    id: uuid.UUID
    title: str
    lessons: int
    version: int
    enrolled: bool
    completed_lessons: int


class OutlineLesson(msgspec.Struct, frozen=True):
    index: int
    module_index: int
    title: str
    duration_minutes: int
    completed: bool


class OutlineModule(msgspec.Struct, frozen=True):
    index: int
    title: str
    summary: str
    lessons: list[OutlineLesson]


class LearnerCourseDetail(msgspec.Struct, frozen=True):
    id: uuid.UUID
    title: str
    description: str
    version: int
    newest_version: int | None
    completed_lessons: int
    total_lessons: int
    continue_at: int | None  # the first lesson not done yet, in course order (None: every lesson is done)
    last_opened: int  # the lesson the learner opened last
    modules: list[OutlineModule]


class QuizQuestionView(msgspec.Struct, frozen=True):
    """A question as a learner sees it before answering: no answer key, no explanation."""

    question: str
    options: list[str]


class LessonView(msgspec.Struct, frozen=True):
    index: int
    module_index: int
    lesson_index: int
    total_lessons: int
    completed: bool
    lesson: Lesson
    quiz: list[QuizQuestionView]


@get("/api/learn/courses", **LEARNER, tags=["learn"], summary="Published courses the learner can take")
async def api_catalog(request: Request) -> list[LearnerCourse]:
    tenant_id, user_id = _who(request)
    rows = await services.catalog(tenant_id, user_id)
    return [LearnerCourse(r["syllabus_id"], r["title"], r["lesson_count"],
                          r["enrollment"]["version"] if r["enrollment"] else r["version"], r["enrollment"] is not None,
                          r["enrollment"]["completed"] if r["enrollment"] else 0) for r in rows]


@get("/api/learn/courses/{course_id:uuid}", **LEARNER, tags=["learn"], summary="An enrolled course's outline")
async def api_course(request: Request, course_id: uuid.UUID) -> LearnerCourseDetail:
    tenant_id, user_id = _who(request)
    context = await services.require_context(tenant_id, user_id, course_id)
    package = context.package
    done, total = context.progress
    return LearnerCourseDetail(
        id=course_id, title=package.course.title, description=package.course.description, version=context.version,
        newest_version=context.newest_version, completed_lessons=done, total_lessons=total,
        continue_at=context.continue_index, last_opened=context.last_lesson_index,
        modules=[OutlineModule(m.index, m.title, m.summary, [
            OutlineLesson(x.index, x.module_index, x.lesson.title, x.lesson.duration_minutes, context.is_completed(x))
            for x in m.lessons]) for m in package.modules],
    )


@get("/api/learn/courses/{course_id:uuid}/lessons/{index:int}", **LEARNER, tags=["learn"],
     summary="One lesson of an enrolled course, with its quiz questions (no answer key)")
async def api_lesson(request: Request, course_id: uuid.UUID, index: inputs.PathInt4) -> LessonView:
    tenant_id, user_id = _who(request)
    context = await services.require_context(tenant_id, user_id, course_id)
    entry = services.lesson_at(context, index)
    return LessonView(index=entry.index, module_index=entry.module_index, lesson_index=entry.lesson_index,
                      total_lessons=len(context.package.lessons), completed=context.is_completed(entry),
                      lesson=entry.lesson,
                      quiz=[QuizQuestionView(q.question, list(q.options)) for q in entry.quiz.questions])


ROUTES = [api_catalog, api_course, api_lesson]
