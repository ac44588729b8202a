"""Health probes, Prometheus metrics and the /favicon.ico that browsers ask for."""

from __future__ import annotations

import asyncio
import hmac

from litestar import Response, get
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusController
from litestar.response import Redirect

from app.db import independent_connection, pending_migrations
from app.queue import broker_problem
from app.settings import get_settings

READY_TIMEOUT_SECONDS = 3.0


@get("/favicon.ico", sync_to_thread=False, include_in_schema=False)
def favicon() -> Redirect:
    """Pages link /static/favicon.svg; browsers and crawlers still ask for /favicon.ico first, and a 404
    there fills the logs (and renders a whole error page) for nothing."""
    return Redirect(path="/static/favicon.svg", status_code=301)


@get("/health/live", sync_to_thread=False, include_in_schema=False)
def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", include_in_schema=False)
async def ready() -> Response:
    """Ready only when the database answers, every migration on disk has been applied, and, when the
    queue is on Redis, Redis answers (every enqueue would fail otherwise)."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            async with independent_connection() as conn:
                await conn.fetchval("SELECT 1")
            pending = await pending_migrations()
    except Exception as exc:  # any failure to reach the database means "not ready", never a 500
        return Response({"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"}, status_code=503)
    if pending:
        return Response({"status": "unavailable", "database": "ok", "pending_migrations": pending}, status_code=503)
    if problem := await broker_problem(READY_TIMEOUT_SECONDS):
        return Response({"status": "unavailable", "database": "ok", "pending_migrations": [], "queue": problem},
                        status_code=503)
    return Response({"status": "ok", "database": "ok", "pending_migrations": []}, status_code=200)


def metrics_token_guard(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    """With METRICS_TOKEN set (required in production) only a scraper that sends it reads /metrics."""
    token = get_settings().metrics_token
    if token is None:
        return
    sent = connection.headers.get("authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        # A plain 401, not NotAuthorizedException: that one sends browsers to the login page.
        raise HTTPException(status_code=401, detail="/metrics needs 'Authorization: Bearer <METRICS_TOKEN>'.",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False
    guards = [metrics_token_guard]


ROUTES = [favicon, live, ready, MetricsController]
