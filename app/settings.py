"""The only place that reads the environment.

Settings are parsed once, strictly: a value that does not parse stops the process at start with a
message naming the variable, instead of surfacing later as a confusing runtime error. Every secret can
also come from `<NAME>_FILE` (Kubernetes/Docker secrets mounted as files).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import math
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_PLACEHOLDERS = {"", "change-me", "changeme", "secret", "dev", "development"}
MIN_SECRET_LENGTH = 32


class SettingsError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    env: Literal["development", "production"]
    database_url: str | None
    queue_url: str | None
    secret_key: str
    host: str
    port: int
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    log_format: Literal["json", "console"]
    maintenance_mode: bool
    worker_in_process: bool
    worker_concurrency: int
    worker_metrics_port: int
    data_dir: Path
    cookie_secure: bool
    session_ttl_hours: int
    login_max_failures_per_pair: int
    login_max_failures_per_account: int
    login_max_failures_per_ip: int
    login_window_seconds: int
    login_delay_free_failures: int
    login_delay_base_ms: int
    login_delay_max_ms: int
    invitation_ttl_hours: int
    max_request_body_bytes: int
    seed_demo: bool
    trusted_proxy_hops: int
    llm_provider: Literal["mock", "openai"]
    openai_api_key: str | None
    openai_base_url: str | None
    llm_model: str
    llm_temperature: float
    llm_seed: int
    llm_timeout_seconds: float
    llm_max_retries: int
    llm_prices: dict[str, tuple[float, float]]
    mock_llm_latency_ms: int
    mock_llm_call_log: Path | None
    generation_concurrency: int
    generation_lease_seconds: int
    generation_max_lost_attempts: int
    # A RUNNING regeneration job whose heartbeat (every quarter of this) is older than this is FAILED,
    # "worker lost"; at least 8 s so a heartbeat every 2 s or more still fits several times.
    regeneration_timeout_seconds: int
    export_rate_limit: int
    export_rate_window_seconds: int
    export_max_package_bytes: int
    worker_shutdown_grace_seconds: int
    expose_query_count: bool
    bench_reference_endpoint: bool
    metrics_token: str | None = None  # /metrics wants "Authorization: Bearer <it>" when set
    billing_sandbox_mode: bool = False
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None  # another Stripe API address (stripe-mock, the tests' fake)
    public_base_url: str | None = None  # where Stripe sends buyers back; else the request's own address
    # alert:error_spike (app/ops/alerts.py): this many 5xx responses of one web process within the window.
    error_spike_threshold: int = 12
    error_spike_window_seconds: int = 300
    sentry_dsn: str | None = None  # errors also go to Sentry when set (app/ops/sentry.py)
    sentry_environment: str = "development"
    sentry_release: str = "coursewright@0"
    sentry_traces_sample_rate: float = 0.0

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be a boolean (true/false/1/0/yes/no), got {raw!r}")


def _parse_int(minimum: int, maximum: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value

    return parse


def _parse_choice(*choices: str, upper: bool = False) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}; got {raw!r}")
        return value

    return parse


def _parse_url(*schemes: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip()
        if not value.startswith(tuple(f"{s}://" for s in schemes)):
            raise SettingsError(f"{name} must start with one of {', '.join(s + '://' for s in schemes)}")
        return value

    return parse


def _parse_float(minimum: float, maximum: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value

    return parse


# USD per million tokens (input, output). LLM_PRICES overrides or extends it: "model=in/out,model=in/out".
DEFAULT_LLM_PRICES = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "mock-1": (0.0, 0.0),
}


def _parse_prices(name: str, raw: str) -> dict[str, tuple[float, float]]:
    prices = dict(DEFAULT_LLM_PRICES)
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        model, _, pair = entry.partition("=")
        price_in, _, price_out = pair.partition("/")
        try:
            pair_value = (float(price_in), float(price_out))
        except ValueError:
            pair_value = None
        # float() also takes "nan", "inf" and "-1": a cost estimate built from them is nonsense.
        if not model.strip() or pair_value is None or not all(0 <= p < math.inf for p in pair_value):
            raise SettingsError(f"{name} entries look like gpt-4o-mini=0.15/0.60 (USD per million tokens, "
                                f"not negative); got {entry!r}")
        prices[model.strip()] = pair_value
    return prices


def _read(environ: Mapping[str, str], name: str, secret: bool = False) -> str | None:
    if secret and (path := environ.get(f"{name}_FILE")):
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise SettingsError(f"{name}_FILE points to {path!r}, which cannot be read: {exc}") from None
    return environ.get(name)


def _get(environ: Mapping[str, str], name: str, parse: Callable[[str, str], Any], default: Any) -> Any:
    raw = _read(environ, name)
    if raw is None or raw.strip() == "":
        return default
    return parse(name, raw)


def _dev_secret(data_dir: Path) -> str:
    # A development install keeps one random key under its data directory so that CSRF cookies stay
    # valid across restarts; production must be given one explicitly.
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _metrics_token(environ: Mapping[str, str], production: bool) -> str | None:
    # /metrics shares the web port, so anyone who reaches the site could read it (request rates, paths,
    # job and login counts). Production serves it only to a scraper that sends this token; development
    # leaves it open unless a token is set.
    token = (_read(environ, "METRICS_TOKEN", secret=True) or "").strip() or None
    if production and (token is None or token.lower() in DEV_SECRET_PLACEHOLDERS):
        raise SettingsError(
            "METRICS_TOKEN is required in production (COURSEWRIGHT_ENV=production): /metrics is served only "
            "with 'Authorization: Bearer <METRICS_TOKEN>'. Set METRICS_TOKEN or METRICS_TOKEN_FILE to a random "
            f"value of at least {MIN_SECRET_LENGTH} characters.")
    if production and len(token) < MIN_SECRET_LENGTH:
        raise SettingsError(f"METRICS_TOKEN must be at least {MIN_SECRET_LENGTH} characters in production.")
    return token


def _billing(environ: Mapping[str, str], production: bool) -> dict[str, Any]:
    # The sandbox completes purchases without Stripe: right for a demo or a laptop, a free course for anyone
    # in production. So production has it off by default and refuses it unless someone says so on purpose;
    # and with real payments on, production needs both Stripe secrets before it serves a single page.
    sandbox = _get(environ, "BILLING_SANDBOX_MODE", _parse_bool, not production)
    if production and sandbox and not _get(environ, "BILLING_SANDBOX_ALLOWED_IN_PRODUCTION", _parse_bool, False):
        raise SettingsError(
            "BILLING_SANDBOX_MODE is on in production: every purchase would complete without payment. Turn it off, "
            "or set BILLING_SANDBOX_ALLOWED_IN_PRODUCTION=true if this really is a demo install.")
    secret_key = (_read(environ, "STRIPE_SECRET_KEY", secret=True) or "").strip() or None
    webhook_secret = (_read(environ, "STRIPE_WEBHOOK_SECRET", secret=True) or "").strip() or None
    if production and not sandbox:
        required = (("STRIPE_SECRET_KEY", secret_key), ("STRIPE_WEBHOOK_SECRET", webhook_secret))
        missing = [name for name, value in required if value is None]
        if missing:
            raise SettingsError(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required in production "
                "(COURSEWRIGHT_ENV=production) to sell courses: set them (or the *_FILE variants) from the Stripe "
                "dashboard (API keys; Developers > Webhooks > signing secret).")
    if secret_key is not None and not secret_key.startswith(("sk_", "rk_")):
        raise SettingsError("STRIPE_SECRET_KEY must be a Stripe secret or restricted key (sk_... or rk_...).")
    if webhook_secret is not None and not webhook_secret.startswith("whsec_"):
        raise SettingsError("STRIPE_WEBHOOK_SECRET must be a webhook signing secret (whsec_...).")
    return {
        "billing_sandbox_mode": sandbox,
        "stripe_secret_key": secret_key,
        "stripe_webhook_secret": webhook_secret,
        "stripe_api_base": _get(environ, "STRIPE_API_BASE", _parse_url("http", "https"), None),
        "public_base_url": (_get(environ, "PUBLIC_BASE_URL", _parse_url("http", "https"), None) or "").rstrip("/")
        or None,
    }


_SENTRY_DSN = re.compile(r"^https?://[A-Za-z0-9]+(:[A-Za-z0-9]+)?@[A-Za-z0-9.-]+(:\d{1,5})?(/[\w.-]+)*/\d+/?$")
_SENTRY_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,200}$")


def _sentry(environ: Mapping[str, str], env: str) -> dict[str, Any]:
    # Optional: nothing about Sentry is imported or checked unless SENTRY_DSN is set. When it is, a DSN the SDK
    # would reject (or silently ignore) and a missing sentry-sdk stop the process at start, not at the first error.
    dsn = (_read(environ, "SENTRY_DSN", secret=True) or "").strip() or None
    if dsn is None:
        return {}
    if not _SENTRY_DSN.match(dsn):
        raise SettingsError("SENTRY_DSN must look like https://<public key>@<host>/<project id> (from the Sentry "
                            "project's Client Keys page).")
    if importlib.util.find_spec("sentry_sdk") is None:
        raise SettingsError("SENTRY_DSN is set but sentry-sdk is not installed: pip install 'coursewright[sentry]'.")
    names = {}
    for name, default in (("SENTRY_ENVIRONMENT", env), ("SENTRY_RELEASE", f"coursewright@{_version()}")):
        value = (_read(environ, name) or "").strip() or default
        if not _SENTRY_NAME.match(value):
            raise SettingsError(f"{name} must be 1-200 letters, digits or ._@+- (no spaces or slashes); got {value!r}")
        names[name] = value
    return {
        "sentry_dsn": dsn,
        "sentry_environment": names["SENTRY_ENVIRONMENT"],
        "sentry_release": names["SENTRY_RELEASE"],
        "sentry_traces_sample_rate": _get(environ, "SENTRY_TRACES_SAMPLE_RATE", _parse_float(0.0, 1.0), 0.0),
    }


def _version() -> str:
    try:
        return importlib.metadata.version("coursewright")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    env = _get(environ, "COURSEWRIGHT_ENV", _parse_choice("development", "production"), "development")
    production = env == "production"
    data_dir = Path(_get(environ, "DATA_DIR", lambda _n, raw: raw, str(PROJECT_ROOT / ".data"))).resolve()

    secret_key = (_read(environ, "SECRET_KEY", secret=True) or "").strip()
    if production:
        if secret_key.lower() in DEV_SECRET_PLACEHOLDERS:
            raise SettingsError(
                "SECRET_KEY is required in production (COURSEWRIGHT_ENV=production). "
                "Set SECRET_KEY or SECRET_KEY_FILE to a random value of at least "
                f"{MIN_SECRET_LENGTH} characters, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        if len(secret_key) < MIN_SECRET_LENGTH:
            raise SettingsError(f"SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters in production.")
    elif not secret_key:
        secret_key = _dev_secret(data_dir)

    metrics_token = _metrics_token(environ, production)

    database_url = _read(environ, "DATABASE_URL", secret=True)
    database_url = _parse_url("postgres", "postgresql")("DATABASE_URL", database_url) if database_url else None
    if production and _get(environ, "BENCH_REFERENCE_ENDPOINT", _parse_bool, False):
        raise SettingsError("BENCH_REFERENCE_ENDPOINT is for benchmarks only and cannot be on in production.")
    if production and database_url is None:
        raise SettingsError("DATABASE_URL is required in production; the embedded PostgreSQL is for development.")
    queue_url = _read(environ, "QUEUE_URL", secret=True)
    queue_url = _parse_url("postgres", "postgresql", "redis", "rediss")("QUEUE_URL", queue_url) if queue_url else None

    llm_provider = _get(environ, "LLM_PROVIDER", _parse_choice("mock", "openai"), "mock")
    openai_api_key = _read(environ, "OPENAI_API_KEY", secret=True) or None
    if llm_provider == "openai" and not openai_api_key:
        raise SettingsError("LLM_PROVIDER=openai needs OPENAI_API_KEY (or OPENAI_API_KEY_FILE).")
    openai_base_url = _get(environ, "OPENAI_BASE_URL", _parse_url("http", "https"), None)

    return Settings(
        env=env,
        database_url=database_url,
        queue_url=queue_url,
        secret_key=secret_key,
        host=_get(environ, "HOST", lambda _n, raw: raw.strip(), "127.0.0.1"),
        port=_get(environ, "PORT", _parse_int(1, 65535), 8000),
        log_level=_get(environ, "LOG_LEVEL", _parse_choice("DEBUG", "INFO", "WARNING", "ERROR", upper=True), "INFO"),
        log_format=_get(environ, "LOG_FORMAT", _parse_choice("json", "console"), "json"),
        maintenance_mode=_get(environ, "MAINTENANCE_MODE", _parse_bool, False),
        worker_in_process=_get(environ, "WORKER_IN_PROCESS", _parse_bool, not production),
        worker_concurrency=_get(environ, "WORKER_CONCURRENCY", _parse_int(1, 256), 4),
        worker_metrics_port=_get(environ, "WORKER_METRICS_PORT", _parse_int(0, 65535), 9100),
        data_dir=data_dir,
        cookie_secure=_get(environ, "COOKIE_SECURE", _parse_bool, production),
        session_ttl_hours=_get(environ, "SESSION_TTL_HOURS", _parse_int(1, 24 * 90), 24 * 14),
        # Sign-in throttling (app/accounts/README.md): a failing (account, address) pair is stopped early;
        # the account as a whole only at a much higher ceiling, so a stranger cannot lock its owner out.
        login_max_failures_per_pair=_get(environ, "LOGIN_MAX_FAILURES_PER_PAIR", _parse_int(1, 1000), 10),
        login_max_failures_per_account=_get(environ, "LOGIN_MAX_FAILURES_PER_ACCOUNT", _parse_int(1, 100_000), 100),
        login_max_failures_per_ip=_get(environ, "LOGIN_MAX_FAILURES_PER_IP", _parse_int(1, 10000), 30),
        login_window_seconds=_get(environ, "LOGIN_WINDOW_SECONDS", _parse_int(10, 86400), 300),
        login_delay_free_failures=_get(environ, "LOGIN_DELAY_FREE_FAILURES", _parse_int(0, 100), 2),
        login_delay_base_ms=_get(environ, "LOGIN_DELAY_BASE_MS", _parse_int(0, 10_000), 250),
        login_delay_max_ms=_get(environ, "LOGIN_DELAY_MAX_MS", _parse_int(0, 30_000), 2000),
        invitation_ttl_hours=_get(environ, "INVITATION_TTL_HOURS", _parse_int(1, 24 * 90), 24 * 7),
        max_request_body_bytes=_get(environ, "MAX_REQUEST_BODY_BYTES", _parse_int(1024, 100 * 2**20), 2**20),
        seed_demo=_get(environ, "SEED_DEMO", _parse_bool, not production),
        trusted_proxy_hops=_get(environ, "TRUSTED_PROXY_HOPS", _parse_int(0, 5), 0),
        llm_provider=llm_provider,
        openai_api_key=openai_api_key,
        openai_base_url=openai_base_url,
        llm_model=_get(environ, "LLM_MODEL", lambda _n, raw: raw.strip(),
                       "gpt-4o-mini" if llm_provider == "openai" else "mock-1"),
        llm_temperature=_get(environ, "LLM_TEMPERATURE", _parse_float(0.0, 0.3), 0.2),
        llm_seed=_get(environ, "LLM_SEED", _parse_int(0, 2**31 - 1), 7),
        llm_timeout_seconds=_get(environ, "LLM_TIMEOUT_SECONDS", _parse_float(1, 600), 60.0),
        llm_max_retries=_get(environ, "LLM_MAX_RETRIES", _parse_int(0, 10), 3),
        llm_prices=_get(environ, "LLM_PRICES", _parse_prices, dict(DEFAULT_LLM_PRICES)),
        mock_llm_latency_ms=_get(environ, "MOCK_LLM_LATENCY_MS", _parse_int(0, 60_000), 0),
        mock_llm_call_log=_get(environ, "MOCK_LLM_CALL_LOG", lambda _n, raw: Path(raw.strip()).resolve(), None),
        generation_concurrency=_get(environ, "GENERATION_CONCURRENCY", _parse_int(1, 64), 8),
        generation_lease_seconds=_get(environ, "GENERATION_LEASE_SECONDS", _parse_int(4, 3600), 120),
        generation_max_lost_attempts=_get(environ, "GENERATION_MAX_LOST_ATTEMPTS", _parse_int(1, 20), 3),
        regeneration_timeout_seconds=_get(environ, "REGENERATION_TIMEOUT_SECONDS", _parse_int(8, 86400), 300),
        export_rate_limit=_get(environ, "EXPORT_RATE_LIMIT", _parse_int(1, 10_000), 3),
        export_rate_window_seconds=_get(environ, "EXPORT_RATE_WINDOW_SECONDS", _parse_int(1, 86400), 600),
        export_max_package_bytes=_get(environ, "EXPORT_MAX_PACKAGE_BYTES", _parse_int(1, 2**31 - 1), 5 * 2**20),
        worker_shutdown_grace_seconds=_get(environ, "WORKER_SHUTDOWN_GRACE_SECONDS", _parse_int(0, 600), 10),
        expose_query_count=_get(environ, "EXPOSE_QUERY_COUNT", _parse_bool, False),
        bench_reference_endpoint=_get(environ, "BENCH_REFERENCE_ENDPOINT", _parse_bool, False),
        metrics_token=metrics_token,
        **_billing(environ, production),
        **_sentry(environ, env),
        error_spike_threshold=_get(environ, "ERROR_SPIKE_THRESHOLD", _parse_int(1, 100_000), 12),
        error_spike_window_seconds=_get(environ, "ERROR_SPIKE_WINDOW_SECONDS", _parse_int(10, 86400), 300),
    )


@functools.cache
def get_settings() -> Settings:
    return load_settings()
