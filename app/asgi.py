"""create_app(): collects each domain's ROUTES, wires plugins, and owns the process lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import structlog
from litestar import Litestar, Request
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.plugins.prometheus import PrometheusConfig
from litestar.static_files import create_static_files_router

from app.accounts.routes import ROUTES as ACCOUNT_ROUTES
from app.analytics.admin_routes import ROUTES as ANALYTICS_ADMIN_ROUTES
from app.analytics.routes import ROUTES as ANALYTICS_ROUTES
from app.audit.routes import ROUTES as AUDIT_ROUTES
from app.authoring.outline_routes import ROUTES as OUTLINE_ROUTES
from app.authoring.revision_routes import ROUTES as REVISION_ROUTES
from app.authoring.routes import ROUTES as AUTHORING_ROUTES
from app.billing.admin_routes import ROUTES as STORE_ADMIN_ROUTES
from app.billing.routes import ROUTES as BILLING_ROUTES
from app.db import POOL_OPTIONS, engine
from app.exports.routes import ROUTES as EXPORT_ROUTES
from app.insights.routes import ROUTES as INSIGHTS_ROUTES
from app.jobs.routes import ROUTES as JOB_ROUTES
from app.learners.routes import ROUTES as LEARNER_ADMIN_ROUTES
from app.logging import configure_logging
from app.ops.api_docs import RENDER_PLUGINS as API_DOCS_RENDER_PLUGINS
from app.ops.routes import ROUTES as OPS_ROUTES
from app.ops.sentry import init_sentry
from app.player.api import ROUTES as LEARN_API_ROUTES
from app.player.routes import ROUTES as PLAYER_ROUTES
from app.publishing.routes import ROUTES as PUBLISHING_ROUTES
from app.quality.routes import ROUTES as QUALITY_ROUTES
from app.quality.traffic_routes import ROUTES as TRAFFIC_ROUTES
from app.queue import close_queue, connect_queues
from app.regeneration.intent_routes import ROUTES as RETRY_INTENT_ROUTES
from app.regeneration.lineage_routes import ROUTES as LINEAGE_ROUTES
from app.regeneration.routes import ROUTES as REGENERATION_ROUTES
from app.settings import PROJECT_ROOT, get_settings
from app.web.auth import maintenance_gate, session_middleware
from app.web.csrf import csrf_middleware
from app.web.errors import EXCEPTION_HANDLERS
from app.web.inputs import refuse_control_characters_in_path
from app.web.requests import (
    allowed_methods,
    answer_head_and_allow,
    refuse_unsupported_media_type,
    request_context_middleware,
    stamp_response,
)
from app.web.templating import document_pages, template_config

log = structlog.get_logger("coursewright.app")


@contextlib.asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    settings = get_settings()
    db = engine()
    await db.start_connection_pool(min_size=1, max_size=20, **POOL_OPTIONS)
    await connect_queues()
    try:
        async with contextlib.AsyncExitStack() as stack:
            if settings.worker_in_process:
                from tasks.worker import running_workers

                await stack.enter_async_context(running_workers(settings))
            log.info("app_started", env=settings.env, worker_in_process=settings.worker_in_process,
                     maintenance_mode=settings.maintenance_mode)
            yield
    finally:
        await close_queue()
        await db.close_connection_pool()
        log.info("app_stopped")


async def before_request(request: Request) -> None:
    await maintenance_gate(request)
    refuse_unsupported_media_type(request)


def create_app() -> Litestar:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    init_sentry(settings)  # before Litestar(...): the SDK's integration hooks its constructor
    prometheus = PrometheusConfig(app_name="coursewright", prefix="coursewright", group_path=True,
                                  exclude=["/metrics", "/static"])
    extra_routes = []
    if settings.bench_reference_endpoint:
        from app.ops.bench import ROUTES as BENCH_ROUTES

        extra_routes = BENCH_ROUTES
    route_handlers = [
        *extra_routes,
        *OPS_ROUTES,
        *ACCOUNT_ROUTES,
        *PLAYER_ROUTES,
        *ANALYTICS_ROUTES,
        *ANALYTICS_ADMIN_ROUTES,
        *INSIGHTS_ROUTES,
        *REGENERATION_ROUTES,
        *RETRY_INTENT_ROUTES,
        *LINEAGE_ROUTES,
        *BILLING_ROUTES,
        *STORE_ADMIN_ROUTES,
        *LEARN_API_ROUTES,
        *PUBLISHING_ROUTES,
        *EXPORT_ROUTES,
        *JOB_ROUTES,
        *LEARNER_ADMIN_ROUTES,
        *QUALITY_ROUTES,
        *TRAFFIC_ROUTES,
        *AUDIT_ROUTES,
        *AUTHORING_ROUTES,
        *REVISION_ROUTES,
        *OUTLINE_ROUTES,
        create_static_files_router(path="/static", directories=[PROJECT_ROOT / "static"], include_in_schema=False),
    ]
    document_pages(route_handlers)
    app = Litestar(
        route_handlers=route_handlers,
        lifespan=[lifespan],
        middleware=[request_context_middleware, refuse_control_characters_in_path, prometheus.middleware,
                    session_middleware, csrf_middleware],
        before_request=before_request,
        before_send=[stamp_response],
        csrf_config=None,  # CSRF is csrf_middleware (app/web/csrf.py): tokens bound to the session
        template_config=template_config,
        plugins=[HTMXPlugin()],
        request_class=HTMXRequest,
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_request_body_bytes,
        openapi_config=OpenAPIConfig(title="Coursewright", version="0.1.0", path="/schema",
                                     render_plugins=API_DOCS_RENDER_PLUGINS),
        logging_config=None,  # structlog, configured above, owns logging
        debug=False,
    )
    # Outside the router, inside the before_send hooks: HEAD must become GET before Litestar routes it.
    app.asgi_handler = answer_head_and_allow(app.asgi_handler, allowed_methods(app.routes))
    return app
