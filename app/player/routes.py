"""The learner player: catalog, course overview, lesson reader, quizzes, projects (L2, L3, L5).

Reading works without JavaScript; HTMX turns navigation and quiz answers into partial swaps.
Identity comes only from the session; a course of another tenant answers 404.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.billing import money
from app.billing import services as billing
from app.errors import InvalidInput, NotFound
from app.player import services
from app.player.schemas import QuizAnswers
from app.player.tables import CompletedVia
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_login
from app.web.errors import error_response
from app.web.templating import flash, redirect, render


def _withdrawn(request: Request, exc: services.CourseWithdrawn) -> Response:
    """410 for a course withdrawn under its learner: its own page, JSON for the APIs, a toast for htmx."""
    if request.url.path.startswith("/api/") or request.htmx:
        return error_response(request, exc.status_code, exc.message)
    return render(request, "learn/withdrawn.html", status_code=exc.status_code, title=exc.title, message=exc.message,
                  nav="learn")


LEARNER = {"guards": [requires_login], "exception_handlers": {services.CourseWithdrawn: _withdrawn}}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)


def _who(request: Request) -> tuple[uuid.UUID, uuid.UUID]:
    user = current_user(request)
    if user.tenant_id is None:
        raise NotFound("You are not a member of any workspace yet.")
    return user.tenant_id, user.user_id


async def _context(request: Request, course_id: uuid.UUID) -> services.LearnerContext:
    tenant_id, user_id = _who(request)
    return await services.require_context(tenant_id, user_id, course_id)


@get("/learn", **LEARNER)
async def catalog(request: Request) -> Response:
    user = current_user(request)
    courses = await services.catalog(user.tenant_id, user.user_id) if user.tenant_id else []
    prices = {c["syllabus_id"]: money.format_amount(c["product"]["price_minor"], c["product"]["currency"])
              for c in courses if c["product"]}
    return render(request, "learn/home.html", courses=courses, prices=prices, nav="learn")


class Offer(msgspec.Struct, frozen=True):
    """What the overview offers a learner without access: the course's product (None: free) and, after a
    refund, when the access ended."""

    product_id: uuid.UUID | None
    price: str | None
    revoked_at: dt.datetime | None


async def _offer(tenant_id: uuid.UUID, user_id: uuid.UUID, course_id: uuid.UUID) -> Offer:
    product = await billing.active_product(tenant_id, course_id)
    revoked = await services.revoked_enrollment(tenant_id, user_id, course_id)
    return Offer(product["id"] if product else None,
                 money.format_amount(product["price_minor"], product["currency"]) if product else None,
                 revoked["revoked_at"] if revoked else None)


@get("/learn/{course_id:uuid}", **LEARNER)
async def course_overview(request: Request, course_id: uuid.UUID) -> Response:
    tenant_id, user_id = _who(request)
    context = await services.current_context(tenant_id, user_id, course_id)
    # Stripe's cancel URL comes back here: a calm note, since nothing was charged.
    cancelled = request.query_params.get("checkout") == "cancelled"
    if context is None:
        package_row, package = await services.course_preview(tenant_id, course_id)
        offer = await _offer(tenant_id, user_id, course_id)
        return render(request, "learn/course.html", course_id=course_id, package=package, context=None,
                      version=package_row["version"], offer=offer, checkout_cancelled=cancelled, nav="learn")
    return render(request, "learn/course.html", course_id=course_id, package=context.package, context=context,
                  version=context.version, offer=None, checkout_cancelled=cancelled, nav="learn")


@post("/learn/{course_id:uuid}/enroll", **LEARNER)
async def enroll(request: Request, course_id: uuid.UUID) -> Response:
    tenant_id, user_id = _who(request)
    if await services.enroll(tenant_id, user_id, course_id, actor=actor_of(request)):
        flash(request, "success", "You are enrolled. Start with the first lesson.")
    return redirect(f"/learn/{course_id}")


@post("/learn/{course_id:uuid}/upgrade", **LEARNER)
async def upgrade(request: Request, course_id: uuid.UUID) -> Response:
    context = await _context(request, course_id)
    version = await services.upgrade(context, _who(request)[0], actor=actor_of(request))
    flash(request, "success", f"You are now reading version {version}. Your completed lessons are kept.")
    return redirect(f"/learn/{course_id}")


@get("/learn/{course_id:uuid}/continue", **LEARNER)
async def resume(request: Request, course_id: uuid.UUID) -> Response:
    """The catalog's "Continue": the first lesson not done yet, or the overview once every lesson is done."""
    context = await _context(request, course_id)
    index = context.continue_index
    return redirect(f"/learn/{course_id}/lesson/{index}" if index else f"/learn/{course_id}")


def _lesson_page(request: Request, context: services.LearnerContext, index: int, *, quiz_result: Any = None,
                 status_code: int = 200, error: str | None = None) -> Response:
    lesson = services.lesson_at(context, index)
    lessons = context.package.lessons
    module = next(m for m in context.package.modules if m.index == lesson.module_index)
    return render(
        request, "learn/lesson.html", partial="learn/_lesson_body.html", status_code=status_code,
        context=context, course_id=context.syllabus_id, entry=lesson, module=module, index=index,
        total=len(lessons), previous_index=index - 1 if index > 1 else None,
        next_index=index + 1 if index < len(lessons) else None, completed=context.is_completed(lesson),
        quiz_result=quiz_result, quiz_error=error, rendered_at=int(time.time() * 1000), nav="learn",
    )


@get("/learn/{course_id:uuid}/lesson/{index:int}", **LEARNER)
async def lesson(request: Request, course_id: uuid.UUID, index: inputs.PathInt4) -> Response:
    context = await _context(request, course_id)
    services.lesson_at(context, index)
    await services.remember_position(context, index)
    return _lesson_page(request, context, index)


@post("/learn/{course_id:uuid}/lesson/{index:int}/complete", **LEARNER)
async def complete(request: Request, course_id: uuid.UUID, index: inputs.PathInt4) -> Response:
    context = await _context(request, course_id)
    await services.complete_lesson(context, _who(request)[0], index, CompletedVia.BUTTON)
    if request.htmx:
        return render(request, "learn/_complete.html", course_id=course_id, index=index, completed=True,
                      context=context)
    return redirect(f"/learn/{course_id}/lesson/{index}")


@post("/learn/{course_id:uuid}/lesson/{index:int}/quiz", **LEARNER)
async def quiz(request: Request, course_id: uuid.UUID, index: inputs.PathInt4,
               data: Annotated[QuizAnswers, Form]) -> Response:
    context = await _context(request, course_id)
    entry = services.lesson_at(context, index)
    try:
        answers = services.parse_answers(data.answers(), len(entry.quiz.questions))
        started = int(data.rendered_at or 0)
    except (InvalidInput, ValueError) as exc:
        message = exc.message if isinstance(exc, InvalidInput) else "The quiz form was damaged; reload the page."
        if request.htmx:
            return render(request, "learn/_quiz.html", status_code=400, context=context, course_id=course_id,
                          entry=entry, index=index, quiz_result=None, quiz_error=message,
                          rendered_at=int(time.time() * 1000))
        return _lesson_page(request, context, index, status_code=400, error=message)
    elapsed = int(time.time() * 1000) - started if started else 0
    result = await services.submit_quiz(context, _who(request)[0], index, answers, elapsed)
    if request.htmx:
        return render(request, "learn/_quiz.html", context=context, course_id=course_id, entry=entry, index=index,
                      quiz_result=result, quiz_error=None, rendered_at=int(time.time() * 1000),
                      completed=context.is_completed(entry))
    return _lesson_page(request, context, index, quiz_result=result)


@get("/learn/{course_id:uuid}/module/{module_index:int}/project", **LEARNER)
async def project(request: Request, course_id: uuid.UUID, module_index: inputs.PathInt4) -> Response:
    context = await _context(request, course_id)
    module = next((m for m in context.package.modules if m.index == module_index), None)
    if module is None:
        raise NotFound("This course has no such module.")
    return render(request, "learn/project.html", context=context, course_id=course_id, module=module, nav="learn")


ROUTES = [catalog, course_overview, enroll, upgrade, resume, lesson, complete, quiz, project]
