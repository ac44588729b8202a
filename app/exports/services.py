"""Exports of a published package version: request (size guard, cache, rate limit), the worker that builds
one, and the fetch-with-tenant helpers the routes use. The only writer of package_export and
export_request. See README.md for the states."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import re
import time
import uuid
from typing import Any

import msgspec
import structlog

from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.db import DB_UNAVAILABLE, engine, persist
from app.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, Throttled
from app.exports import formats
from app.exports.tables import ExportFormat, ExportRequest, ExportStatus, PackageExport
from app.jobs.lease import LeasedTable, LeaseLost, Released, drain, rewake, wake, wake_key
from app.metrics import EXPORT_DURATION, EXPORTS
from app.player import services as player
from app.publishing import services as publishing
from app.settings import get_settings

log = structlog.get_logger(__name__)
EXPORT_LEASE = LeasedTable(PackageExport, queued=ExportStatus.QUEUED.value, running=ExportStatus.RUNNING.value)
AUDIT_ACTIONS = {ExportFormat.PDF: AuditAction.EXPORT_PDF, ExportFormat.SCORM: AuditAction.EXPORT_SCORM,
                 ExportFormat.HTML: AuditAction.EXPORT_HTML}
LEARNER_FORMATS = (ExportFormat.PDF, ExportFormat.HTML)
# Everything but the bytes: pages and partials never load a whole PDF to say it is ready.
META = (PackageExport.id, PackageExport.tenant_id, PackageExport.package_id, PackageExport.format,
        PackageExport.options, PackageExport.exporter_version, PackageExport.status, PackageExport.sha256,
        PackageExport.size_bytes, PackageExport.report, PackageExport.error, PackageExport.created_by,
        PackageExport.created_at, PackageExport.finished_at, PackageExport.attempt)


class PackageTooLarge(DomainError):
    status_code = 413


def parse_format(value: str) -> ExportFormat:
    try:
        return ExportFormat(value.strip().upper())
    except ValueError:
        raise InvalidInput("Choose PDF, SCORM or HTML as the export format.") from None


def options_of(fmt: ExportFormat, answer_key: bool) -> dict[str, Any]:
    # Only the PDF has options; normalising here keeps one cache row per real variant.
    return {"answer_key": True} if fmt == ExportFormat.PDF and answer_key else {}


def _decode(row: dict[str, Any]) -> None:
    """JSONB columns come back from the query builder as text."""
    row["options"] = _options(row)
    if isinstance(row.get("report"), str | bytes):
        row["report"] = msgspec.json.decode(row["report"])


def _options(row: dict[str, Any]) -> dict[str, Any]:
    value = row["options"]
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else (value or {})


# ---------------------------------------------------------------------------------------------
# Fetch with tenant


async def get_export(tenant_id: uuid.UUID, export_id: uuid.UUID) -> dict[str, Any]:
    row = await PackageExport.select(*META).where(
        (PackageExport.id == export_id) & (PackageExport.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such export in this workspace.")
    _decode(row)
    return row


async def get_learner_export(tenant_id: uuid.UUID, user_id: uuid.UUID, export_id: uuid.UUID) -> dict[str, Any]:
    """A learner sees an export only of the version they are reading, in a learner format, without a key."""
    row = await get_export(tenant_id, export_id)
    package = await publishing.get_package_meta(tenant_id, row["package_id"])
    context = await player.current_context(tenant_id, user_id, package["syllabus_id"])
    if (context is None or context.package_id != row["package_id"] or row["format"] not in LEARNER_FORMATS
            or row["options"].get("answer_key")):
        raise NotFound("No such export in this workspace.")
    return row


async def export_content(export_id: uuid.UUID) -> bytes:
    row = await PackageExport.select(PackageExport.content).where(PackageExport.id == export_id).first()
    return bytes(row["content"])


async def package_of(tenant_id: uuid.UUID, row: dict[str, Any]) -> dict[str, Any]:
    return await publishing.get_package_meta(tenant_id, row["package_id"])


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80] or "course"


def filename(package: dict[str, Any], fmt: str) -> str:
    return f"{slug(package['title'])}-v{package['version']}{formats.SUFFIXES[ExportFormat(fmt)]}"


# ---------------------------------------------------------------------------------------------
# Requests


async def request_export(tenant_id: uuid.UUID, package_id: uuid.UUID, fmt: ExportFormat, *, answer_key: bool,
                         actor: Actor) -> dict[str, Any]:
    """Find or create the export row of this version/format/options. A finished one is returned as is (no
    job); a queued or running one too; a new or failed one counts against the person's rate limit, is
    (re)queued and woken after commit. Refusals come before any work: 404, 413, 409, 429."""
    package = await publishing.get_package_meta(tenant_id, package_id)
    limit = get_settings().export_max_package_bytes
    if package["size_bytes"] > limit:
        raise PackageTooLarge(f"This version is too large to export: its package is {package['size_bytes']:,} bytes "
                              f"and exports are limited to {limit:,} bytes.")
    if not formats.available(fmt):
        raise Conflict(f"The {formats.WORDS[fmt]} export is not available yet.")
    options = options_of(fmt, answer_key)
    row = await _find(package_id, fmt, options)
    if row is None or row["status"] == ExportStatus.FAILED:
        row = await _queue(tenant_id, package, fmt, options, actor, row)
    await _audit(row, package, actor)
    return row


async def retry_export(tenant_id: uuid.UUID, export_id: uuid.UUID, actor: Actor) -> dict[str, Any]:
    row = await get_export(tenant_id, export_id)
    if row["status"] != ExportStatus.FAILED:
        raise Conflict("Only a failed export can be tried again.")
    package = await publishing.get_package_meta(tenant_id, row["package_id"])
    row = await _queue(tenant_id, package, ExportFormat(row["format"]), row["options"], actor, row)
    await _audit(row, package, actor)
    return row


async def learner_export(tenant_id: uuid.UUID, user_id: uuid.UUID, syllabus_id: uuid.UUID, fmt: ExportFormat, *,
                         answer_key: bool, actor: Actor) -> dict[str, Any]:
    context = await player.require_context(tenant_id, user_id, syllabus_id)
    if fmt not in LEARNER_FORMATS:
        raise Forbidden("Learners can download the PDF and the HTML site; SCORM packages are made by administrators.")
    if answer_key:
        raise Forbidden("A learner's copy never includes the answer key.")
    return await request_export(tenant_id, context.package_id, fmt, answer_key=False, actor=actor)


async def _find(package_id: uuid.UUID, fmt: ExportFormat, options: dict[str, Any]) -> dict[str, Any] | None:
    rows = await PackageExport.raw(
        "SELECT id FROM package_export WHERE package_id = {} AND format = {} AND options = {}::jsonb "
        "AND exporter_version = {}", package_id, fmt.value, msgspec.json.encode(options).decode(),
        formats.EXPORTER_VERSION)
    return await _meta(rows[0]["id"]) if rows else None


async def _meta(export_id: uuid.UUID) -> dict[str, Any]:
    row = await PackageExport.select(*META).where(PackageExport.id == export_id).first()
    _decode(row)
    return row


async def _queue(tenant_id: uuid.UUID, package: dict[str, Any], fmt: ExportFormat, options: dict[str, Any],
                 actor: Actor, existing: dict[str, Any] | None) -> dict[str, Any]:
    async with engine().transaction():
        await _take_rate_slot(tenant_id, actor, package["syllabus_id"])
        if existing is None:
            # Two people asking at once: ON CONFLICT makes the second find the first's row.
            await PackageExport.raw(
                "INSERT INTO package_export (id, tenant_id, package_id, format, options, exporter_version, status, "
                "created_by, created_at, queued_at, attempt, lost_attempts) VALUES ({}, {}, {}, {}, {}::jsonb, {}, "
                "'QUEUED', {}, now(), now(), 0, 0) ON CONFLICT (package_id, format, options, exporter_version) "
                "DO NOTHING", uuid.uuid4(), tenant_id, package["id"], fmt.value,
                msgspec.json.encode(options).decode(), formats.EXPORTER_VERSION, actor.user_id)
            rows = await PackageExport.raw(
                "SELECT id FROM package_export WHERE package_id = {} AND format = {} AND options = {}::jsonb "
                "AND exporter_version = {}", package["id"], fmt.value, msgspec.json.encode(options).decode(),
                formats.EXPORTER_VERSION)
            export_id = rows[0]["id"]
        else:
            export_id = existing["id"]
            # FAILED -> QUEUED (compare-and-set; a concurrent retry finds it QUEUED already)
            await PackageExport.raw(
                "UPDATE package_export SET status = 'QUEUED', error = NULL, report = NULL, queued_at = now(), "
                "claimed_at = NULL, heartbeat_at = NULL, finished_at = NULL WHERE id = {} AND status = 'FAILED'",
                export_id)
        await ExportRequest.insert(ExportRequest(tenant_id=tenant_id, user_id=actor.user_id,
                                                 syllabus_id=package["syllabus_id"], export_id=export_id))
    row = await _meta(export_id)
    if row["status"] == ExportStatus.QUEUED:
        queued = await PackageExport.select(PackageExport.queued_at).where(PackageExport.id == export_id).first()
        await wake_export(export_id, queued["queued_at"])
    return row


async def _take_rate_slot(tenant_id: uuid.UUID, actor: Actor, syllabus_id: uuid.UUID) -> None:
    """Per person and course, at most EXPORT_RATE_LIMIT new exports per window. The transaction-scoped
    advisory lock makes count-then-insert atomic across every web process sharing this database."""
    settings = get_settings()
    await ExportRequest.raw("SELECT pg_advisory_xact_lock(hashtext({}))", f"export:{actor.user_id}:{syllabus_id}")
    window = dt.timedelta(seconds=settings.export_rate_window_seconds)
    rows = await ExportRequest.raw(
        "SELECT count(*) AS n, min(created_at) AS oldest, now() AS now FROM export_request "
        "WHERE user_id = {} AND syllabus_id = {} AND created_at > now() - {}::interval",
        actor.user_id, syllabus_id, window)
    if rows[0]["n"] >= settings.export_rate_limit:
        wait = max(1, int((rows[0]["oldest"] + window - rows[0]["now"]).total_seconds()) + 1)
        minutes = max(1, round(wait / 60))
        raise Throttled(f"You have asked for {settings.export_rate_limit} new exports of this course recently. "
                        f"Try again in about {minutes} minute{'' if minutes == 1 else 's'}; finished exports "
                        "can still be downloaded.", wait)


async def _audit(row: dict[str, Any], package: dict[str, Any], actor: Actor) -> None:
    await audit(AUDIT_ACTIONS[ExportFormat(row["format"])], actor=actor, tenant_id=row["tenant_id"],
                entity_type="package_export", entity_id=row["id"],
                metadata={"package_id": str(package["id"]), "version": package["version"], "format": row["format"],
                          "answer_key": bool(row["options"].get("answer_key")), "size_bytes": row["size_bytes"],
                          "status": row["status"]})


# ---------------------------------------------------------------------------------------------
# Wake-ups and the worker


async def wake_export(export_id: uuid.UUID, queued_at: dt.datetime) -> None:
    from tasks.exports import build_export  # tasks import this module

    await wake(build_export, wake_key("build_export", export_id, queued_at), export_id=str(export_id))


def _lease_seconds() -> float:
    return float(get_settings().generation_lease_seconds)


async def run_export(export_id: uuid.UUID) -> dict[str, Any]:
    """Worker: build one export. Safe to run twice: only the claim winner builds."""
    async with drain.claimed(EXPORT_LEASE, export_id, wake_export) as row:
        if row is None:
            return {"export_id": str(export_id), "skipped": True}
        return await _build(row)


async def _build(row: dict[str, Any]) -> dict[str, Any]:
    export_id, fmt = row["id"], ExportFormat(row["format"])
    started = time.monotonic()
    try:
        meta = await _package_row(row)
        package = await publishing.document_of({"id": row["package_id"], "content_hash": meta["content_hash"]})
    except DB_UNAVAILABLE:
        await _release(row)
        return {"export_id": str(export_id), "released": True}
    options = _options(row)
    # Exporters are CPU-bound (WeasyPrint takes seconds): a thread keeps the worker's loop heartbeating.
    work = asyncio.to_thread(formats.build, fmt, package, answer_key=bool(options.get("answer_key")),
                             version=meta["version"], published_at=meta["published_at"].isoformat())
    try:
        built = await drain.hold(work, heartbeat=functools.partial(EXPORT_LEASE.heartbeat, export_id, row["attempt"]),
                                 interval=_lease_seconds() / 4)
    except Released:
        await _release(row)
        return {"export_id": str(export_id), "released": True}
    except LeaseLost:
        return {"export_id": str(export_id), "lease_lost": True}
    except Exception as exc:  # any exporter failure is this export's outcome, told in words
        error, report = _error_words(fmt, exc), formats.failed_report(exc)
        await persist(lambda: _finish(row, error=error, report=report))
        EXPORTS.labels(format=fmt.value, outcome="failed").inc()
        log.warning("export_failed", export_id=str(export_id), format=fmt.value, error=repr(exc))
        return {"export_id": str(export_id), "status": "FAILED", "error": error}
    await persist(lambda: _finish(row, built=built))
    EXPORTS.labels(format=fmt.value, outcome="succeeded").inc()
    EXPORT_DURATION.labels(format=fmt.value).observe(time.monotonic() - started)
    return {"export_id": str(export_id), "status": "SUCCEEDED", "size_bytes": len(built.content)}


def _error_words(fmt: ExportFormat, exc: Exception) -> str:
    if isinstance(exc, formats.FormatUnavailable):
        return str(exc)
    detail = str(exc).strip() or type(exc).__name__
    return f"The {formats.WORDS[fmt]} could not be built: {detail}"


async def _package_row(row: dict[str, Any]) -> dict[str, Any]:
    table = publishing.CoursePackageRow
    return await table.select(table.content_hash, table.version, table.published_at).where(
        table.id == row["package_id"]).first()


async def _release(row: dict[str, Any]) -> None:
    queued_at = await persist(lambda: EXPORT_LEASE.requeue(row["id"], row["attempt"], lost=False))
    if queued_at is not None:
        await wake_export(row["id"], queued_at)


async def _finish(row: dict[str, Any], *, built: formats.Built | None = None, error: str | None = None,
                  report: dict[str, Any] | None = None) -> bool:
    """RUNNING -> SUCCEEDED | FAILED, fenced by the claim's attempt: a worker given up for lost writes nothing."""
    if built is not None:
        rows = await PackageExport.raw(
            "UPDATE package_export SET status = 'SUCCEEDED', content = {}, sha256 = {}, size_bytes = {}, "
            "report = {}::jsonb, finished_at = now() WHERE id = {} AND status = 'RUNNING' AND attempt = {} "
            "RETURNING id", built.content, hashlib.sha256(built.content).hexdigest(), len(built.content),
            msgspec.json.encode(built.report).decode() if built.report is not None else None, row["id"],
            row["attempt"])
    else:
        rows = await PackageExport.raw(
            "UPDATE package_export SET status = 'FAILED', error = {}, report = {}::jsonb, finished_at = now() "
            "WHERE id = {} AND status = 'RUNNING' AND attempt = {} RETURNING id", error,
            msgspec.json.encode(report).decode() if report is not None else None, row["id"], row["attempt"])
    return bool(rows)


async def sweep_exports() -> dict[str, int]:
    """Re-queue exports whose worker stopped heartbeating; fail them after too many lost attempts; wake
    QUEUED exports whose wake-up was lost (the queue was away when it was sent)."""
    from tasks.exports import build_export  # tasks import this module

    settings = get_settings()
    swept = {"requeued": 0, "failed": 0}
    for row in await EXPORT_LEASE.expired(dt.timedelta(seconds=_lease_seconds())):
        if row["lost_attempts"] + 1 >= settings.generation_max_lost_attempts:
            await PackageExport.raw(
                "UPDATE package_export SET status = 'FAILED', finished_at = now(), error = {} "
                "WHERE id = {} AND status = 'RUNNING' AND attempt = {}",
                "The worker building this export stopped several times; try again.", row["id"], row["attempt"])
            swept["failed"] += 1
        elif (queued_at := await EXPORT_LEASE.requeue(row["id"], row["attempt"], lost=True)) is not None:
            await wake_export(row["id"], queued_at)
            swept["requeued"] += 1
    swept["rewoken"] = await rewake(EXPORT_LEASE, dt.timedelta(seconds=_lease_seconds()), build_export.saq_queue,
                                    "build_export", wake_export)
    return swept
