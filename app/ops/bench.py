"""The benchmark reference endpoint (issue: publishing and the learner player, benchmark section).

It renders a lesson with the page layout from ONE raw asyncpg primary-key query, with no session,
no auth, no cache: the ceiling of this stack on this machine, measured in the same process as the
real learner page. Mounted only when BENCH_REFERENCE_ENDPOINT=true; never in production. /_bench/error
raises on purpose (a 500) for the error-spike and Sentry tests.
"""

from __future__ import annotations

import uuid

import msgspec
from litestar import Request, Response, get

from app.authoring.schemas import Lesson
from app.db import engine
from app.errors import NotFound
from app.web.templating import render


@get("/_bench/lesson/{item_id:uuid}", include_in_schema=False)
async def reference_lesson(request: Request, item_id: uuid.UUID) -> Response:
    async with engine().pool.acquire() as conn:
        content = await conn.fetchval("SELECT content FROM content_item WHERE id = $1", item_id)
    if content is None:
        raise NotFound("No such lesson.")
    return render(request, "bench/reference_lesson.html", lesson=msgspec.json.decode(content, type=Lesson))


@get("/_bench/error", include_in_schema=False)
async def deliberate_error() -> None:
    # An unhandled exception on demand, for the tests of alert:error_spike and Sentry reporting.
    raise RuntimeError("deliberate error from /_bench/error")


ROUTES = [reference_lesson, deliberate_error]
