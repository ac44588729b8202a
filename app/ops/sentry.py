"""Optional error reporting to Sentry (seed 001 §5): on only when SENTRY_DSN is set, and then sentry-sdk is
imported here and nowhere else. Without a DSN this module imports nothing from the SDK.

What reaches Sentry: unhandled exceptions of the web app (the SDK's Litestar integration) and every log line
at ERROR level with its trace (its logging integration), titled with the log event's name: `unhandled_error`
and each `alert:` line (`alert:error_spike`, `alert:job_failed`, ...). Refusals we answer on purpose
(DomainError: 4xx such as NotFound, Conflict, InvalidInput) are dropped before sending: they are the app
working, not failing.
"""

from __future__ import annotations

from typing import Any

import structlog

from app.settings import Settings

log = structlog.get_logger("coursewright.sentry")


def init_sentry(settings: Settings) -> bool:
    """Start the SDK with this release and environment; call before the Litestar app is built (the integration
    hooks Litestar's constructor). Returns whether Sentry is on."""
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
    log.info("sentry_enabled", environment=settings.sentry_environment, release=settings.sentry_release)
    return True


def _drop_refusals(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    from app.errors import DomainError, Unavailable

    exc = (hint.get("exc_info") or (None, None, None))[1]
    if isinstance(exc, DomainError) and not isinstance(exc, Unavailable):
        return None
    return _name_log_events(event, hint)


def _name_log_events(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    # Our log records carry structlog's event dict, which the SDK would show as one long repr. Title the event
    # with the log event's name (`alert:job_failed`) so Sentry groups and alerts on it; the fields go to extra.
    record = hint.get("log_record")
    fields = getattr(record, "msg", None)
    if isinstance(fields, dict) and isinstance(fields.get("event"), str):
        event["logentry"] = {"message": fields["event"], "params": []}
        extra = {k: v if isinstance(v, str | int | float | bool | None) else repr(v)
                 for k, v in fields.items() if k not in ("event", "exc_info")}
        event["extra"] = {**event.get("extra", {}), **extra}
    return event
