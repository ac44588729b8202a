"""The learner home. The course player (issue: publishing and the learner player) grows from here."""

from litestar import Request, Response, get

from app.web.auth import requires_login
from app.web.templating import render


@get("/learn", guards=[requires_login])
async def learner_home(request: Request) -> Response:
    return render(request, "learn/home.html", nav="learn")


ROUTES = [learner_home]
