"""Optional error reporting to Sentry (seed 001 §5): on only when SENTRY_DSN is set, and then sentry-sdk is
imported here and nowhere else. Without a DSN this module imports nothing and every function is a no-op.

What reaches Sentry: unhandled exceptions of the web app (the SDK's Litestar integration) and every log line
at ERROR level with its trace (its logging integration): `unhandled_error`, each `alert:` line, a worker's
failed job. Refusals we answer on purpose (DomainError: 4xx such as NotFound, Conflict, InvalidInput) are
dropped before sending: they are the app working, not failing.
"""

from __future__ import annotations

from typing import Any

import structlog

from app.settings import Settings

log = structlog.get_logger("coursewright.sentry")
_enabled = False


def init_sentry(settings: Settings) -> bool:
    """Start the SDK with this release and environment; call before the Litestar app is built (the integration
    hooks Litestar's constructor). Returns whether Sentry is on."""
    global _enabled
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.litestar import LitestarIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        release=settings.sentry_release,
        environment=settings.sentry_environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        integrations=[LitestarIntegration()],
        before_send=_drop_refusals,
        send_default_pii=False,  # no cookies, no client addresses: the request id is what support quotes
    )
    _enabled = True
    log.info("sentry_enabled", environment=settings.sentry_environment, release=settings.sentry_release)
    return True


def _drop_refusals(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    from app.errors import DomainError, Unavailable

    exc = (hint.get("exc_info") or (None, None, None))[1]
    if isinstance(exc, DomainError) and not isinstance(exc, Unavailable):
        return None
    return event


def report_message(message: str) -> None:
    if _enabled:
        import sentry_sdk

        sentry_sdk.capture_message(message, level="error")
