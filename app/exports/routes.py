"""Exports: admins export any version from its page; an enrolled learner downloads the PDF or HTML site of
the version they read. A request answers with the export's progress (HTMX polls it until the download link
appears); the download is the stored bytes, named, hashed and cacheable."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.errors import NotFound
from app.exports import formats, services
from app.exports.tables import ExportStatus
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_admin, requires_login
from app.web.templating import redirect, render

ADMIN = {"guards": [requires_admin]}
LEARNER = {"guards": [requires_login]}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)
STATUS_WORDS = {"QUEUED": "Waiting", "RUNNING": "Building", "SUCCEEDED": "Ready", "FAILED": "Failed"}
MAX_AGE = 3600  # the bytes behind an export id never change; private: they are one workspace's


class ExportForm(msgspec.Struct):
    format: inputs.Line(16)
    answer_key: inputs.Line(8) = ""


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


def _progress(request: Request, row: dict[str, Any], package: dict[str, Any], base: str) -> Response:
    return render(request, "exports/export.html", partial="exports/_export.html", export=row, package=package,
                  base=base, statuses=STATUS_WORDS, words=formats.WORDS, filename=services.filename(package,
                  row["format"]), nav="learn" if base.startswith("/learn") else "packages")


def _requested(request: Request, row: dict[str, Any], package: dict[str, Any], base: str) -> Response:
    if request.htmx:
        return _progress(request, row, package, base)
    return redirect(f"{base}/{row['id']}")


async def _download(request: Request, row: dict[str, Any], package: dict[str, Any]) -> Response:
    if row["status"] != ExportStatus.SUCCEEDED:
        return redirect(request.url.path.removesuffix("/download"))
    headers = {"ETag": f'"{row["sha256"]}"', "Cache-Control": f"private, max-age={MAX_AGE}"}
    if request.headers.get("if-none-match", "").strip() in (f'"{row["sha256"]}"', row["sha256"]):
        return Response(b"", status_code=304, headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="{services.filename(package, row["format"])}"'
    return Response(await services.export_content(row["id"]), headers=headers,
                    media_type=formats.MEDIA_TYPES[row["format"]])


# ---------------------------------------------------------------------------------------------
# Admin


@post("/admin/packages/{package_id:uuid}/exports", **ADMIN)
async def request_export(request: Request, package_id: uuid.UUID,
                         data: Annotated[ExportForm, Form]) -> Response:
    fmt = services.parse_format(data.format)
    row = await services.request_export(_tenant(request), package_id, fmt, answer_key=bool(data.answer_key),
                                        actor=actor_of(request))
    return _requested(request, row, await services.package_of(_tenant(request), row), "/admin/exports")


@get("/admin/exports/{export_id:uuid}", **ADMIN)
async def export_progress(request: Request, export_id: uuid.UUID) -> Response:
    row = await services.get_export(_tenant(request), export_id)
    return _progress(request, row, await services.package_of(_tenant(request), row), "/admin/exports")


@post("/admin/exports/{export_id:uuid}/retry", **ADMIN)
async def retry_export(request: Request, export_id: uuid.UUID) -> Response:
    row = await services.retry_export(_tenant(request), export_id, actor_of(request))
    return _requested(request, row, await services.package_of(_tenant(request), row), "/admin/exports")


@get("/admin/exports/{export_id:uuid}/download", **ADMIN)
async def download(request: Request, export_id: uuid.UUID) -> Response:
    row = await services.get_export(_tenant(request), export_id)
    return await _download(request, row, await services.package_of(_tenant(request), row))


# ---------------------------------------------------------------------------------------------
# Learner


def _who(request: Request) -> tuple[uuid.UUID, uuid.UUID]:
    user = current_user(request)
    if user.tenant_id is None:
        raise NotFound("You are not a member of any workspace yet.")
    return user.tenant_id, user.user_id


@post("/learn/{course_id:uuid}/exports", **LEARNER)
async def learner_request(request: Request, course_id: uuid.UUID, data: Annotated[ExportForm, Form]) -> Response:
    tenant_id, user_id = _who(request)
    row = await services.learner_export(tenant_id, user_id, course_id, services.parse_format(data.format),
                                        answer_key=bool(data.answer_key), actor=actor_of(request))
    return _requested(request, row, await services.package_of(tenant_id, row), "/learn/exports")


@get("/learn/exports/{export_id:uuid}", **LEARNER)
async def learner_progress(request: Request, export_id: uuid.UUID) -> Response:
    tenant_id, user_id = _who(request)
    row = await services.get_learner_export(tenant_id, user_id, export_id)
    return _progress(request, row, await services.package_of(tenant_id, row), "/learn/exports")


@get("/learn/exports/{export_id:uuid}/download", **LEARNER)
async def learner_download(request: Request, export_id: uuid.UUID) -> Response:
    tenant_id, user_id = _who(request)
    row = await services.get_learner_export(tenant_id, user_id, export_id)
    return await _download(request, row, await services.package_of(tenant_id, row))


ROUTES = [request_export, export_progress, retry_export, download, learner_request, learner_progress,
          learner_download]
