"""Publishing: approved content -> immutable, versioned course packages.

The only writer of course_package. A package is inserted once and never changes; the only transition
is PUBLISHED -> ARCHIVED (trigger-enforced). Parsed packages are cached by content hash: a published
package never changes, so a hash always means the same document.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import OrderedDict
from typing import Any

import msgspec

from app.accounts.tables import User
from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.authoring.tables import ContentItem, Syllabus
from app.db import engine
from app.errors import Conflict, InvalidInput, NotFound
from app.player import enrollments
from app.publishing.builder import BuiltPackage, PackageIncomplete, build_package
from app.publishing.schemas import CoursePackage
from app.publishing.tables import CoursePackageRow, PackageStatus

META_COLUMNS = (
    CoursePackageRow.id, CoursePackageRow.tenant_id, CoursePackageRow.course_id, CoursePackageRow.syllabus_id,
    CoursePackageRow.version, CoursePackageRow.status, CoursePackageRow.title, CoursePackageRow.content_hash,
    CoursePackageRow.size_bytes, CoursePackageRow.lesson_count, CoursePackageRow.published_by,
    CoursePackageRow.published_at, CoursePackageRow.archived_by, CoursePackageRow.archived_at,
)
_PARSED_CACHE_SIZE = 64
_parsed: OrderedDict[str, CoursePackage] = OrderedDict()


async def build_for(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> BuiltPackage:
    syllabus = await Syllabus.select().where((Syllabus.id == syllabus_id) & (Syllabus.tenant_id == tenant_id)).first()
    if syllabus is None:
        raise NotFound("No such syllabus in this workspace.")
    items = await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus_id) & (ContentItem.tenant_id == tenant_id)
    )
    return build_package(syllabus, items)


async def publish_package(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    """Build and store the next version. Refuses when something is unapproved or nothing changed."""
    try:
        built = await build_for(tenant_id, syllabus_id)
    except PackageIncomplete as exc:
        raise InvalidInput("This course cannot be published yet: " + " ".join(exc.problems)) from None
    syllabus = await Syllabus.select(Syllabus.course_id).where(Syllabus.id == syllabus_id).first()
    async with engine().transaction():
        # Locking the (frozen) syllabus row serialises publishes of one course: two at once get
        # consecutive versions, never the same one. A row lock fires no UPDATE trigger.
        await Syllabus.raw("SELECT id FROM syllabus WHERE id = {} FOR UPDATE", syllabus_id)
        latest = await CoursePackageRow.select(CoursePackageRow.version, CoursePackageRow.content_hash).where(
            CoursePackageRow.syllabus_id == syllabus_id
        ).order_by(CoursePackageRow.version, ascending=False).first()
        if latest and latest["content_hash"] == built.content_hash:
            raise Conflict(f"Nothing changed since version {latest['version']}; there is nothing new to publish.")
        version = (latest["version"] if latest else 0) + 1
        row = (await CoursePackageRow.insert(CoursePackageRow(
            tenant_id=tenant_id, course_id=syllabus["course_id"], syllabus_id=syllabus_id, version=version,
            title=built.package.course.title, document=built.document.decode(), content_hash=built.content_hash,
            size_bytes=len(built.document), lesson_count=len(built.package.lessons), published_by=actor.user_id,
        )).returning(*META_COLUMNS))[0]
        # Learners still on an archived version had the course withdrawn (or enrolled while it was being
        # archived): the new version brings them back, progress kept.
        archived = [v["id"] for v in await list_versions(tenant_id, syllabus_id)
                    if v["status"] == PackageStatus.ARCHIVED.value]
        returned = await enrollments.move_enrollments(tenant_id, row, archived) if archived else []
    await audit(AuditAction.PACKAGE_PUBLISHED, actor=actor, tenant_id=tenant_id, entity_type="course_package",
                entity_id=row["id"], metadata={"syllabus_id": str(syllabus_id), "version": version,
                                               "content_hash": built.content_hash, "size_bytes": len(built.document),
                                               "learners_returned": len(returned)})
    return row


class ArchivePlan(msgspec.Struct, frozen=True):
    """What archiving one version does to its learners: shown to the admin before, audited after."""

    package_id: uuid.UUID
    syllabus_id: uuid.UUID
    version: int
    learners: int  # enrolled on this version
    move_to: int | None  # the version they move to; None when none is left and the course is withdrawn

    @property
    def withdraws_course(self) -> bool:
        return self.move_to is None


def _successor(versions: list[dict[str, Any]], version: int) -> dict[str, Any] | None:
    """The version learners move to when `version` is archived: the newest other published one."""
    return next((v for v in sorted(versions, key=lambda v: -v["version"])
                 if v["status"] == PackageStatus.PUBLISHED.value and v["version"] != version), None)


async def archive_plan(tenant_id: uuid.UUID, package_id: uuid.UUID) -> ArchivePlan:
    """The confirmation: what archive_package() would do now."""
    package = await get_package_meta(tenant_id, package_id)
    if package["status"] != PackageStatus.PUBLISHED.value:
        raise Conflict(f"Version {package['version']} is already archived.")
    successor = _successor(await list_versions(tenant_id, package["syllabus_id"]), package["version"])
    learners = await enrollments.learners_by_package(tenant_id, package["syllabus_id"])
    return ArchivePlan(package_id, package["syllabus_id"], package["version"], learners.get(package_id, 0),
                       successor["version"] if successor else None)


async def archive_package(tenant_id: uuid.UUID, package_id: uuid.UUID, *, actor: Actor) -> ArchivePlan:
    """Withdraw a version from learners. In the same transaction, its learners move to the newest other
    published version (progress is per lesson slot, so it is kept); with none left they keep pointing at
    the archived version and the player shows them the course as withdrawn."""
    package = await get_package_meta(tenant_id, package_id)
    syllabus_id = package["syllabus_id"]
    async with engine().transaction():
        # The same lock as publishing: an archive and a publish (or two archives) of one course take turns,
        # so learners never move to a version that is being archived, or past one being published.
        await Syllabus.raw("SELECT id FROM syllabus WHERE id = {} FOR UPDATE", syllabus_id)
        changed = await CoursePackageRow.update({
            CoursePackageRow.status: PackageStatus.ARCHIVED.value, CoursePackageRow.archived_by: actor.user_id,
            CoursePackageRow.archived_at: dt.datetime.now(dt.UTC),
        }).where((CoursePackageRow.id == package_id) & (CoursePackageRow.tenant_id == tenant_id)
                 & (CoursePackageRow.status == PackageStatus.PUBLISHED.value)).returning(CoursePackageRow.id)
        if len(changed) != 1:
            raise Conflict(f"Version {package['version']} is already archived.")
        successor = _successor(await list_versions(tenant_id, syllabus_id), package["version"])
        if successor is not None:
            learners = len(await enrollments.move_enrollments(tenant_id, successor, [package_id]))
        else:
            learners = (await enrollments.learners_by_package(tenant_id, syllabus_id)).get(package_id, 0)
    plan = ArchivePlan(package_id, syllabus_id, package["version"], learners,
                       successor["version"] if successor else None)
    await audit(AuditAction.PACKAGE_ARCHIVED, actor=actor, tenant_id=tenant_id, entity_type="course_package",
                entity_id=package_id, metadata={"version": plan.version, "learners": plan.learners,
                                                "moved_to_version": plan.move_to,
                                                "course_withdrawn": plan.withdraws_course})
    return plan


# ---------------------------------------------------------------------------------------------
# Reading


def parse_document(content_hash: str, document: str | bytes) -> CoursePackage:
    cached = _parsed.get(content_hash)
    if cached is None:
        cached = msgspec.json.decode(document, type=CoursePackage)
        _parsed[content_hash] = cached
        if len(_parsed) > _PARSED_CACHE_SIZE:
            _parsed.popitem(last=False)
    else:
        _parsed.move_to_end(content_hash)
    return cached


def cached_document(content_hash: str) -> CoursePackage | None:
    return _parsed.get(content_hash)


async def document_of(row: dict[str, Any]) -> CoursePackage:
    """The parsed package of a row that carries id and content_hash; fetches the text only on a cache miss."""
    cached = cached_document(row["content_hash"])
    if cached is not None:
        return cached
    text = await CoursePackageRow.select(CoursePackageRow.document).where(CoursePackageRow.id == row["id"]).first()
    return parse_document(row["content_hash"], text["document"])


async def get_package_meta(tenant_id: uuid.UUID, package_id: uuid.UUID) -> dict[str, Any]:
    row = await CoursePackageRow.select(*META_COLUMNS).where(
        (CoursePackageRow.id == package_id) & (CoursePackageRow.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound("No such course version in this workspace.")
    return row


async def get_version(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, version: int, *,
                      published_only: bool = False) -> dict[str, Any]:
    query = CoursePackageRow.select(*META_COLUMNS, CoursePackageRow.document).where(
        (CoursePackageRow.syllabus_id == syllabus_id) & (CoursePackageRow.tenant_id == tenant_id)
        & (CoursePackageRow.version == version)
    )
    if published_only:
        query = query.where(CoursePackageRow.status == PackageStatus.PUBLISHED.value)
    row = await query.first()
    if row is None:
        raise NotFound("No such course version in this workspace.")
    return row


async def list_versions(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, *,
                        published_only: bool = False) -> list[dict[str, Any]]:
    query = CoursePackageRow.select(*META_COLUMNS).where(
        (CoursePackageRow.syllabus_id == syllabus_id) & (CoursePackageRow.tenant_id == tenant_id)
    )
    if published_only:
        query = query.where(CoursePackageRow.status == PackageStatus.PUBLISHED.value)
    return await query.order_by(CoursePackageRow.version, ascending=False)


async def newest_published(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> dict[str, Any] | None:
    return await CoursePackageRow.select(*META_COLUMNS).where(
        (CoursePackageRow.syllabus_id == syllabus_id) & (CoursePackageRow.tenant_id == tenant_id)
        & (CoursePackageRow.status == PackageStatus.PUBLISHED.value)
    ).order_by(CoursePackageRow.version, ascending=False).first()


async def publisher_emails(rows: list[dict[str, Any]]) -> dict[uuid.UUID, str]:
    ids = sorted({row["published_by"] for row in rows if row["published_by"]}, key=str)
    if not ids:
        return {}
    return {u["id"]: u["email"] for u in await User.select(User.id, User.email).where(User.id.is_in(ids))}


def _latest_sql(published_only: bool) -> str:
    only_published = "AND status = 'PUBLISHED'" if published_only else ""
    return f"""
SELECT DISTINCT ON (syllabus_id) id, syllabus_id, course_id, version, status, title, content_hash,
       lesson_count, size_bytes, published_at,
       (SELECT count(*) FROM course_package v WHERE v.syllabus_id = p.syllabus_id) AS versions
FROM course_package p
WHERE tenant_id = {{}} {only_published}
ORDER BY syllabus_id, version DESC
"""


async def latest_packages(tenant_id: uuid.UUID, *, published_only: bool = False) -> list[dict[str, Any]]:
    """One row per course: its newest version (its newest published version with published_only)."""
    rows = await CoursePackageRow.raw(_latest_sql(published_only), tenant_id)
    return sorted(rows, key=lambda r: (r["title"].lower(), str(r["syllabus_id"])))
