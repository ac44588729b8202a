"""Vetted external resources of a module: the only source of links in a package (the model never invents
URLs). The only writer of external_resource. Removing is soft (removed_at), so the audit trail and the
versions built before keep their meaning; the next package version copies the live ones."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlsplit

import msgspec

from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.authoring.schemas import Syllabus as SyllabusDoc
from app.authoring.tables import Course, Syllabus, SyllabusStatus
from app.errors import InvalidInput, NotFound
from app.quality.tables import ExternalResource, ResourceKind
from app.web import inputs

MAX_URL = 2000
MAX_TITLE = 200
KIND_WORDS = {kind.value: kind.value.capitalize() for kind in ResourceKind}


class ResourceForm(msgspec.Struct, kw_only=True):
    # Bounds above the columns' so that clean_form() words a too-long value itself, with the input kept.
    title: inputs.Line(1000) = ""
    url: inputs.Line(8000) = ""
    kind: inputs.Line(32) = ResourceKind.ARTICLE.value


def clean_url(raw: str) -> str:
    url = (raw or "").strip()
    if not url:
        raise InvalidInput("The URL is required.")
    if len(url) > MAX_URL:
        raise InvalidInput(f"The URL is longer than {MAX_URL} characters.")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidInput("The URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise InvalidInput("The URL is not a valid web address.") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = f"“{parts.scheme}:”" if parts.scheme else "no scheme"
        raise InvalidInput(f"The URL must start with http:// or https:// (it has {shown}).")
    if not host or "." not in host.strip(".") and host != "localhost":
        raise InvalidInput("The URL needs a real host name, like https://example.org/page.")
    return url


def clean_form(form: ResourceForm) -> tuple[str, str, str]:
    title = " ".join((form.title or "").split())
    if not title:
        raise InvalidInput("The title is required.")
    if len(title) > MAX_TITLE:
        raise InvalidInput(f"The title is longer than {MAX_TITLE} characters.")
    if form.kind not in KIND_WORDS:
        raise InvalidInput("The kind must be one of: " + ", ".join(KIND_WORDS.values()) + ".")
    return title, clean_url(form.url), form.kind


async def course_outline(tenant_id: uuid.UUID, course_id: uuid.UUID) -> tuple[dict[str, Any], SyllabusDoc]:
    """The course and the outline resources attach to: its newest approved syllabus."""
    course = await Course.select(Course.id, Course.title).where(
        (Course.id == course_id) & (Course.tenant_id == tenant_id)).first()
    if course is None:
        raise NotFound("No such course in this workspace.")
    syllabus = await Syllabus.select(Syllabus.content).where(
        (Syllabus.course_id == course_id) & (Syllabus.status == SyllabusStatus.APPROVED.value)
    ).order_by(Syllabus.revision, ascending=False).first()
    if syllabus is None:
        raise NotFound("This course has no approved outline yet; resources attach to its modules.")
    return course, msgspec.json.decode(syllabus["content"], type=SyllabusDoc)


async def add_resource(tenant_id: uuid.UUID, course_id: uuid.UUID, module_index: int, form: ResourceForm, *,
                       actor: Actor) -> dict[str, Any]:
    _course, outline = await course_outline(tenant_id, course_id)
    if module_index not in {m.index for m in outline.modules}:
        raise NotFound(f"This course has no module {module_index}.")
    title, url, kind = clean_form(form)
    row = (await ExternalResource.insert(ExternalResource(
        tenant_id=tenant_id, course_id=course_id, module_index=module_index, title=title, url=url, kind=kind,
        created_by=actor.user_id,
    )).returning(*ExternalResource.all_columns()))[0]
    await audit(AuditAction.EXTERNAL_RESOURCE_ADDED, actor=actor, tenant_id=tenant_id,
                entity_type="external_resource", entity_id=row["id"],
                metadata={"course_id": str(course_id), "module_index": module_index, "title": title, "url": url,
                          "kind": kind})
    return row


async def remove_resource(tenant_id: uuid.UUID, resource_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    row = await ExternalResource.select().where(
        (ExternalResource.id == resource_id) & (ExternalResource.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such resource in this workspace.")
    changed = await ExternalResource.update({
        ExternalResource.removed_at: dt.datetime.now(dt.UTC), ExternalResource.removed_by: actor.user_id,
    }).where((ExternalResource.id == resource_id) & ExternalResource.removed_at.is_null()).returning(
        ExternalResource.id)
    if changed:  # removing twice is harmless: the page is simply shown again
        await audit(AuditAction.EXTERNAL_RESOURCE_REMOVED, actor=actor, tenant_id=tenant_id,
                    entity_type="external_resource", entity_id=resource_id,
                    metadata={"course_id": str(row["course_id"]), "module_index": row["module_index"],
                              "url": row["url"]})
    return row


async def live_resources(tenant_id: uuid.UUID, course_id: uuid.UUID) -> dict[int, list[dict[str, Any]]]:
    """module index -> its live resources, oldest first (the order a package lists them in)."""
    rows = await ExternalResource.select().where(
        (ExternalResource.tenant_id == tenant_id) & (ExternalResource.course_id == course_id)
        & ExternalResource.removed_at.is_null()
    ).order_by(ExternalResource.created_at).order_by(ExternalResource.id)
    by_module: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_module.setdefault(row["module_index"], []).append(row)
    return by_module
