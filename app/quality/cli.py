"""`coursewright audit …` and `coursewright launch-gate`: the operator's quality reports (SPEC O1–O4, O6).
Each command prints its report, writes it to a dated file with --out, and exits non-zero on a finding where
the issue asks for a gate."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click


@click.group()
def audit() -> None:
    """Coverage, traffic and integrity reports."""


def _run(coro_fn):
    from app.cli import _run as run

    return run(coro_fn)


def write_out(text: str, out: str | None, stem: str = "coverage") -> Path | None:
    """--out FILE writes there; --out DIR (an existing directory, or a path ending in /) writes
    DIR/<stem>-YYYYMMDD.txt, as the seeds' weekly loop keeps them."""
    if not out:
        return None
    path = Path(out)
    if path.is_dir() or out.endswith(("/", "\\")):
        path = path / f"{stem}-{dt.datetime.now(dt.UTC):%Y%m%d}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


async def _tenants(workspace: str | None) -> list[dict]:
    from app.accounts.tables import Tenant
    from app.errors import NotFound

    query = Tenant.select(Tenant.id, Tenant.slug, Tenant.name).order_by(Tenant.slug)
    if workspace:
        query = query.where(Tenant.slug == workspace)
    tenants = await query
    if workspace and not tenants:
        raise NotFound(f"No workspace with the slug {workspace!r}.")
    return tenants


COVERAGE_HELP = {
    "coverage-rollup": "Per published course: modules fully covered, and each module's baselines.",
    "coverage-gaps": "Every missing baseline in triage order (lesson > practice > assessment > external).",
    "completeness": "Per published course: missing lessons, projects, practice and external resources.",
    "practice": "How many quiz questions the modules have (distribution against the target).",
}


def _coverage_command(name: str):
    @audit.command(name, help=COVERAGE_HELP[name])
    @click.option("--workspace", default=None, help="One workspace by its slug (default: every workspace).")
    @click.option("--limit", default=None, type=click.IntRange(1, 100_000), help="At most N rows per workspace.")
    @click.option("--out", default=None, help="Also write the report to FILE (a directory: coverage-YYYYMMDD.txt).")
    def command(workspace: str | None, limit: int | None, out: str | None) -> None:
        from app.cli import _settings_or_exit
        from app.quality import coverage

        _settings_or_exit()

        async def main() -> str:
            parts = [f"Coursewright {name} — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n"]
            for tenant in await _tenants(workspace):
                courses = await coverage.course_coverage(tenant["id"])
                parts.append(f"\n# Workspace {tenant['name']} ({tenant['slug']})\n")
                parts.append(coverage.report_text(name, courses, limit=limit))
            return "".join(parts)

        text = _run(main)
        click.echo(text, nl=False)
        if (path := write_out(text, out)) is not None:
            click.echo(f"Written to {path}", err=True)

    return command


for _name in COVERAGE_HELP:
    _coverage_command(_name)


@click.command("launch-gate")
@click.option("--threshold", default=80.0, type=float, show_default=True,
              help="Percent of the modules of published courses that must be fully covered (0–100).")
@click.option("--workspace", default=None, help="One workspace by its slug (default: every workspace).")
@click.option("--out", default=None, help="Also write the verdict to FILE (a directory: launch-gate-YYYYMMDD.txt).")
def launch_gate(threshold: float, workspace: str | None, out: str | None) -> None:
    """Fail (exit 1) when coverage is below the threshold or a published course lacks its assessment."""
    from app.cli import _settings_or_exit
    from app.quality import gate

    if not 0 <= threshold <= 100:
        raise click.BadParameter(f"must be between 0 and 100 (got {threshold:g}).", param_hint="--threshold")
    _settings_or_exit()

    async def main():
        tenants = await _tenants(workspace)
        return await gate.launch_gate([t["id"] for t in tenants], threshold=threshold)

    verdict = _run(main)
    text = verdict.text()
    click.echo(text, nl=False)
    write_out(text, out, "launch-gate")
    sys.exit(0 if verdict.passed else 1)


@audit.command("traffic")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 365),
              help="Count learner sessions over this many days, today included.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100),
              help="How many courses and modules to list.")
@click.option("--workspace", "tenant_slug", default=None, help="One workspace by its slug (default: every workspace).")
@click.option("--out", default=None, help="Also write the report to this file, or into this directory as "
                                          "traffic-YYYYMMDD.txt.")
@click.option("--store", is_flag=True, help="Also keep it for the admin page's last runs, as the cron does.")
def traffic(days: int, limit: int, tenant_slug: str | None, out: str | None, store: bool) -> None:
    """Busiest courses and modules by learner sessions, beside their coverage gaps (fix the top rows first)."""
    from pathlib import Path

    from app.cli import _run, _settings_or_exit
    from app.quality import traffic as reports

    _settings_or_exit()
    text = _run(lambda: reports.text_for_workspaces(tenant_slug, days=days, limit=limit, store=store))
    click.echo(text, nl=False)
    if out:
        target = reports.dated_path(out)
        Path(target).write_text(text)
        click.echo(f"Written to {target}", err=True)


@audit.command("integrity")
@click.option("--out", default=None, help="Also write the report to FILE (a directory: integrity-YYYYMMDD.txt).")
@click.option("--fix-question-stats", is_flag=True,
              help="First rewrite the question statistics that drifted from the quiz attempts.")
def integrity(out: str | None, fix_question_stats: bool) -> None:
    """Orphans, question statistics, migrations, database guards, analytics partitions; exits 1 on a finding."""
    from app.cli import _settings_or_exit
    from app.quality import integrity as checks

    _settings_or_exit()
    if fix_question_stats:
        click.echo(f"Rewrote {_run(checks.fix_question_stats)} question statistic(s) from the quiz attempts.")
    results = _run(checks.check_integrity)
    text = checks.render_report(results, dt.datetime.now(dt.UTC))
    click.echo(text, nl=False)
    if (path := write_out(text, out, "integrity")) is not None:
        click.echo(f"Written to {path}", err=True)
    sys.exit(1 if any(r.findings for r in results) else 0)
