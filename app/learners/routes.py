"""Admin pages about a course's learners: who is enrolled and how far they got, and how each quiz question
performs (item analysis). Read-only: nothing here changes a row."""

from __future__ import annotations

import uuid

from litestar import Request, Response, get

from app.learners import services
from app.learners.statistics import TOO_EASY_ABOVE, TOO_HARD_BELOW, WEAK_DISCRIMINATION_BELOW
from app.web import inputs
from app.web.auth import current_user, requires_admin
from app.web.templating import render

ADMIN = {"guards": [requires_admin]}


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


@get("/admin/packages/{syllabus_id:uuid}/learners", **ADMIN)
async def learners(request: Request, syllabus_id: uuid.UUID, q: inputs.QueryLine(200) = "",
                   sort: inputs.QueryLine(16) = "activity",
                   page: inputs.Int4Query(ge=1, le=100_000) = 1) -> Response:
    result = await services.learners_page(_tenant(request), syllabus_id, q=q, sort=sort, page=page)
    return render(request, "learners/learners.html", partial="learners/_learners_table.html", result=result,
                  syllabus_id=syllabus_id, course=result.course, q=q.strip(), sort=sort, sorts=SORT_WORDS,
                  nav="packages")


SORT_WORDS = {"activity": "Last activity", "progress": "Progress", "score": "Quiz score", "email": "Email"}


@get("/admin/packages/{syllabus_id:uuid}/questions", **ADMIN)
async def questions(request: Request, syllabus_id: uuid.UUID) -> Response:
    analysis = await services.question_analysis(_tenant(request), syllabus_id)
    return render(request, "learners/questions.html", analysis=analysis, syllabus_id=syllabus_id,
                  course=analysis.version, too_hard=TOO_HARD_BELOW, too_easy=TOO_EASY_ABOVE,
                  weak=WEAK_DISCRIMINATION_BELOW, nav="packages")


ROUTES = [learners, questions]
