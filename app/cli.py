"""The `coursewright` command: serve, worker, migrate, seed-demo, create-admin, billing."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click

from app.errors import DomainError
from app.quality.cli import audit, launch_gate
from app.settings import SettingsError, get_settings


def _settings_or_exit():
    try:
        return get_settings()
    except SettingsError as exc:
        click.secho(f"Configuration error: {exc}", fg="red", err=True)
        sys.exit(2)


def _exit_on_sigterm() -> None:
    """Make SIGTERM a normal exit (status 143, as a shell reports it) instead of an instant death, so the
    atexit hooks run: the one that stops the embedded PostgreSQL when we were its last user, and
    coverage's. uvicorn and the worker take over SIGTERM for their graceful shutdown while they run;
    uvicorn re-raises it when done, which lands here."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def _run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return asyncio.run(coro_fn())
    except DomainError as exc:
        click.secho(f"Error: {exc.message}", fg="red", err=True)
        sys.exit(1)


@click.group()
def cli() -> None:
    """Coursewright: AI-assisted courses, human-approved."""


@cli.command()
@click.option("--host", default=None, help="Interface to bind (default HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default PORT or 8000).")
@click.option("--no-prepare", is_flag=True, help="Skip migrations and demo seeding (production web processes).")
def serve(host: str | None, port: int | None, no_prepare: bool) -> None:
    """Serve the web app (and, in development, the worker in the same process)."""
    import uvicorn

    from app.db import database_url
    from app.logging import configure_logging

    _exit_on_sigterm()
    settings = _settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    database_url()  # starts the embedded PostgreSQL when DATABASE_URL is unset
    seeded = False
    if not no_prepare:
        seeded = _run(_prepare)
    host, port = host or settings.host, port or settings.port
    _banner(f"http://{host}:{port}", seeded)
    uvicorn.run(
        "app.asgi:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,  # app/web/requests.py logs one line per request, with its request id
        proxy_headers=settings.trusted_proxy_hops > 0,
        timeout_graceful_shutdown=15,
    )


async def _prepare() -> bool:
    from app.db import migrate
    from app.demo import seed_demo

    await migrate()
    return await seed_demo() if get_settings().seed_demo else False


def _banner(url: str, seeded: bool) -> None:
    from app.demo import demo_logins

    settings = get_settings()
    click.echo("")
    click.secho(f"  Coursewright is starting on {url}", fg="green", bold=True)
    database = "DATABASE_URL" if settings.database_url else f"embedded PostgreSQL in {settings.data_dir}"
    worker = "in this process" if settings.worker_in_process else "run `coursewright worker` separately"
    click.echo(f"  database: {database}")
    click.echo(f"  worker:   {worker}")
    if settings.billing_sandbox_mode:
        click.secho("  store:    sandbox mode: purchases complete without Stripe, no card is charged", fg="yellow")
    if settings.seed_demo:
        click.echo("  demo logins" + (" (just created):" if seeded else ":"))
        for email, password, role in demo_logins():
            click.echo(f"    {role:<8} {email}  /  {password}")
    click.echo("")


@cli.command()
def worker() -> None:
    """Run the SAQ worker (production runs it as its own process)."""
    from app.db import POOL_OPTIONS, database_url, engine
    from app.logging import configure_logging
    from app.ops.sentry import init_sentry
    from app.queue import close_queue, connect_queues
    from tasks.worker import build_workers, start_workers, stop_workers

    _exit_on_sigterm()
    settings = _settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    init_sentry(settings)
    database_url()
    if settings.worker_metrics_port:
        # A standalone worker has no web server: expose its job metrics for Prometheus to scrape.
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr=settings.host)

    async def main() -> None:
        pool_size = settings.worker_concurrency + settings.generation_concurrency + 2
        await engine().start_connection_pool(min_size=1, max_size=pool_size, **POOL_OPTIONS)
        await connect_queues()
        workers = build_workers(settings, in_process=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        runners = start_workers(workers, settings)
        try:
            await stop.wait()
        finally:
            await stop_workers(workers, runners, settings)
            await close_queue()
            await engine().close_connection_pool()

    asyncio.run(main())


@cli.command()
@click.option("--if-unused", is_flag=True, help="Leave the server running while any process still uses it.")
def stop(if_unused: bool) -> None:
    """Stop what serve/worker left running on DATA_DIR: those processes, then the embedded PostgreSQL."""
    from app.embedded import stop_embedded_postgres

    for line in stop_embedded_postgres(_settings_or_exit().data_dir, if_unused=if_unused):
        click.echo(line)


@cli.command()
def migrate() -> None:
    """Apply pending database migrations."""
    from app.db import migrate as run_migrations

    _settings_or_exit()
    applied = _run(run_migrations)
    click.echo(f"Applied {len(applied)} migration(s)." if applied else "No migrations pending.")


@cli.command("seed-demo")
def seed_demo_command() -> None:
    """Create the demo workspaces and users (does nothing if they exist)."""
    from app.demo import demo_logins, seed_demo

    _settings_or_exit()
    created = _run(seed_demo)
    click.echo("Demo data created." if created else "Demo data already present.")
    for email, password, role in demo_logins():
        click.echo(f"  {role:<8} {email}  /  {password}")


@cli.group()
def billing() -> None:
    """Stripe webhook events: list the ones needing attention, replay one (the incident runbook's step)."""


@billing.command("events")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
def billing_events(limit: int) -> None:
    """Failed, rejected and stuck payment events, newest first; exits 1 when there are any."""
    from app.billing.webhook import events_needing_attention

    _settings_or_exit()
    rows = _run(lambda: events_needing_attention(limit))
    for row in rows:
        click.echo(f"{row['received_at']:%Y-%m-%d %H:%M:%S}  {row['outcome']:<9} {row['stripe_event_id']}  "
                   f"{row['type']}  tenant={row['tenant_id'] or '-'}  attempts={row['attempts']}  {row['detail']}")
    click.echo(f"{len(rows)} event(s) need attention." if rows else "No payment event needs attention.")
    sys.exit(1 if rows else 0)


@billing.command("replay")
@click.argument("stripe_event_id")
def billing_replay(stripe_event_id: str) -> None:
    """Process a recorded Stripe event again (evt_...), as Stripe's own retry would."""
    from app.audit.services import SYSTEM
    from app.billing.webhook import WebhookFailed, replay_anywhere

    _settings_or_exit()
    try:
        row = _run(lambda: replay_anywhere(stripe_event_id, actor=SYSTEM))
    except WebhookFailed:
        click.secho(f"Replaying {stripe_event_id} failed again; see the log line alert:billing_webhook_failed.",
                    fg="red", err=True)
        sys.exit(1)
    click.echo(f"{stripe_event_id}: {row['outcome'].lower()} ({row['detail']})")


@cli.group()
def analytics() -> None:
    """The analytics pipeline: run it now, or backfill a range of days."""


def _date(_ctx: Any, param: click.Parameter, value: str | None) -> Any:
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-01-31") from None


@analytics.command("run")
@click.option("--from", "start", callback=_date, help="First day to roll up (YYYY-MM-DD, UTC); default yesterday.")
@click.option("--to", "end", callback=_date, help="Last day (YYYY-MM-DD); default today. Signals run for it.")
def analytics_run(start: Any, end: Any) -> None:
    """Partitions, rollup, signals and retention, as the nightly job does; --from/--to backfills days."""
    import datetime as dt

    from app.analytics.jobs import backfill_days, run_analytics_jobs

    _settings_or_exit()
    today = dt.datetime.now(dt.UTC).date()
    days = None
    if start is not None or end is not None:
        end = end or today
        days = _run(lambda: _days(backfill_days, start or end, end, today))
    summary = _run(lambda: run_analytics_jobs(days))
    rows = sum(day["rows"] for day in summary.get("rollup", []))
    click.echo(f"{summary['status']}: {len(summary['days'])} day(s), {rows} aggregate row(s), "
               f"{summary.get('signals', {}).get('signals_created', 0)} new signal(s), {summary['duration_ms']} ms"
               + (f"; {summary.get('reason') or summary.get('error')}" if summary["status"] != "SUCCESS" else ""))
    sys.exit(0 if summary["status"] == "SUCCESS" else 1)


async def _days(backfill_days: Callable[..., Any], start: Any, end: Any, today: Any) -> Any:
    return backfill_days(start, end, today)


@cli.command("create-admin")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--tenant", "tenant_slug", required=True, help="Workspace slug; created if it does not exist.")
@click.option("--tenant-name", default=None, help="Display name when the workspace is created.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_admin(email: str, name: str, tenant_slug: str, tenant_name: str | None, password: str) -> None:
    """Create (or promote) an admin; the first admin of a workspace without an owner becomes its owner."""
    from app.accounts import services
    from app.accounts.tables import Membership, Tenant, User
    from app.audit.services import SYSTEM

    _settings_or_exit()

    async def main() -> str:
        tenant = await Tenant.select().where(Tenant.slug == tenant_slug.lower()).first()
        if tenant is None:
            tenant = await services.create_tenant(tenant_name or tenant_slug, tenant_slug, actor=SYSTEM)
        # Owner while the workspace has none: a run that created the workspace and then failed on the
        # person (a bad email, say) must not leave the next run's admin in a workspace without an owner.
        has_owner = await Membership.exists().where((Membership.tenant_id == tenant["id"])
                                                    & (Membership.role == "owner"))
        role = "admin" if has_owner else "owner"
        user = await User.select(User.id).where(User.email == services.normalize_email(email)).first()
        if user is None:
            user = await services.create_user(email, name, password, actor=SYSTEM, tenant_id=tenant["id"])
        member = await Membership.select(Membership.id, Membership.role).where(
            (Membership.tenant_id == tenant["id"]) & (Membership.user_id == user["id"])
        ).first()
        if member is None:
            await services.add_membership(tenant["id"], user["id"], role, actor=SYSTEM)
            return role
        if member["role"] == "learner":
            await services.change_role(tenant["id"], member["id"], "admin", actor=SYSTEM, actor_role="owner")
            return "admin"
        return member["role"]

    role = _run(main)
    click.echo(f"{email} is {role} of workspace {tenant_slug}.")


@cli.command("export-schemas")
def export_schemas() -> None:
    """Write schemas/*.schema.json from the msgspec types (a test fails when they drift)."""
    from app.json_schemas import EXPORTED, exported_schema
    from app.settings import PROJECT_ROOT

    target = PROJECT_ROOT / "schemas"
    target.mkdir(exist_ok=True)
    for name in EXPORTED:
        (target / f"{name}.schema.json").write_bytes(exported_schema(name))
        click.echo(f"schemas/{name}.schema.json")


# The operator's quality reports (app/quality/cli.py imports its services inside each command).
cli.add_command(audit)
cli.add_command(launch_gate)


def main() -> None:
    cli()
