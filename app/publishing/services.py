"""Publishing: approved content -> immutable, versioned course packages.

The only writer of course_package. A package is inserted once and never changes; the only transition
is PUBLISHED -> ARCHIVED (trigger-enforced). Parsed packages are cached by content hash: a published
package never changes, so a hash always means the same document.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import OrderedDict
from typing import Any, Literal

import msgspec

from app.accounts.tables import User
from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.authoring.generation import item_doc
from app.authoring.tables import ContentItem, ItemStatus, Syllabus, SyllabusStatus
from app.db import engine
from app.errors import Conflict, InvalidInput, NotFound
from app.player import enrollments
from app.publishing.builder import BuiltPackage, MissingSlot, PackageIncomplete, build_package, slot_rows
from app.publishing.diff import ItemDiff, PackageDiff, compare_items, diff_packages
from app.publishing.schemas import CoursePackage
from app.publishing.tables import CoursePackageRow, PackageStatus
from app.quality.resources import live_resources

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
    return build_package(syllabus, items, await live_resources(tenant_id, syllabus["course_id"]))


async def publish_package(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    """Build and store the next version. Refuses when something is unapproved or nothing changed."""
    try:
        built = await build_for(tenant_id, syllabus_id)
    except PackageIncomplete as exc:
        raise InvalidInput("This course cannot be published yet: " + " ".join(exc.problems)) from None
    syllabus = await Syllabus.select().where(Syllabus.id == syllabus_id).first()
    blocking, gaps = await _coverage_gate(tenant_id, syllabus, built)
    if blocking and gaps:
        raise Conflict("The publish gate is on in this workspace and this version has coverage gaps: "
                       + _gaps_in_words(gaps) + ". Fix them, or turn the gate off on the Coverage page.")
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


# ---------------------------------------------------------------------------------------------
# Before publishing: what stops it, and what would change (the publish panel)

IN_PROGRESS = (ItemStatus.PENDING.value, ItemStatus.QUEUED.value, ItemStatus.GENERATING.value)
STATUS_WORDS = {
    "PENDING": "Waiting to be generated", "QUEUED": "Queued for generation", "GENERATING": "Generating",
    "DRAFT": "Draft, waiting for review", "FAILED": "Generation failed", "BLOCKED": "Blocked by its lesson",
    "REJECTED": "Rejected", "APPROVED": "Approved", "SUPERSEDED": "Replaced", None: "Never generated",
}
ReadinessState = Literal["not_approved", "not_generated", "generating", "unapproved", "first", "unchanged", "changed"]


class SlotLink(msgspec.Struct, frozen=True, kw_only=True):
    """One slot of the course someone has to act on: what it is, where it stands, where to go."""

    kind: str  # "Lesson", "Quiz", "Project"
    where: str  # "Module 2, lesson 1"
    title: str
    status: str | None  # the item's status code (for the badge's colour); None: never generated
    status_words: str
    url: str

    @classmethod
    def of(cls, syllabus_id: uuid.UUID, kind: str, module: int, lesson: int | None, title: str,
           status: str | None, item_id: Any) -> SlotLink:
        # An item links to its page; a slot with no item at all to the review queue of its module.
        url = f"/admin/items/{item_id}" if item_id else f"/admin/review?syllabus={syllabus_id}&module={module}"
        where = f"Module {module}, lesson {lesson}" if lesson is not None else f"Module {module} project"
        return cls(kind=kind.capitalize(), where=where, title=title, status=status,
                   status_words=STATUS_WORDS.get(status, status or ""), url=url)


class PublishReadiness(msgspec.Struct, frozen=True, kw_only=True):
    syllabus_id: uuid.UUID
    state: ReadinessState
    missing: list[SlotLink] = []  # unapproved slots that need a person (not the ones still generating)
    coverage_gaps: list[Any] = []  # app/quality/coverage.Gap of the would-be version (the publish gate)
    gate_blocking: bool = False  # the workspace refuses to publish with coverage gaps
    in_progress: int = 0  # unapproved slots still being generated
    waiting: list[SlotLink] = []  # newer revisions of approved slots, not approved yet: not in the next version
    latest: dict[str, Any] | None = None  # the newest version (published or archived)
    diff: PackageDiff | None = None  # the would-be version against the newest one

    @property
    def next_version(self) -> int:
        return self.latest["version"] + 1 if self.latest else 1

    @property
    def can_publish(self) -> bool:
        return self.state in ("first", "changed") and not (self.gate_blocking and self.coverage_gaps)


def _missing_link(syllabus_id: uuid.UUID, slot: MissingSlot) -> SlotLink:
    return SlotLink.of(syllabus_id, slot.kind, slot.module_index, slot.lesson_index, slot.title, slot.status,
                       slot.item_id)


async def publish_readiness(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> PublishReadiness:
    """What publishing this syllabus now would do: refused (and why, per slot), nothing new, or the next
    version and what changed since the newest one. The same build publish_package() makes, without storing."""
    syllabus = await Syllabus.select().where((Syllabus.id == syllabus_id) & (Syllabus.tenant_id == tenant_id)).first()
    if syllabus is None:
        raise NotFound("No such syllabus in this workspace.")
    if syllabus["status"] != SyllabusStatus.APPROVED.value:
        return PublishReadiness(syllabus_id=syllabus_id, state="not_approved")
    items = await ContentItem.select().where(
        (ContentItem.syllabus_id == syllabus_id) & (ContentItem.tenant_id == tenant_id))
    if not items:
        return PublishReadiness(syllabus_id=syllabus_id, state="not_generated")
    approved, latest = slot_rows(items)
    waiting = [SlotLink.of(syllabus_id, row["kind"], row["module_index"], row["lesson_index"], row["title"],
                           row["status"], row["id"])
               for slot, row in sorted(latest.items(), key=lambda kv: _slot_order(kv[0]))
               if slot in approved and row["status"] != ItemStatus.APPROVED.value]
    versions = await list_versions(tenant_id, syllabus_id)
    newest = versions[0] if versions else None
    try:
        built = build_package(syllabus, items, await live_resources(tenant_id, syllabus["course_id"]))
    except PackageIncomplete as exc:
        in_progress = sum(1 for slot in exc.missing if slot.status in IN_PROGRESS)
        return PublishReadiness(
            syllabus_id=syllabus_id, state="generating" if in_progress else "unapproved", in_progress=in_progress,
            missing=[_missing_link(syllabus_id, slot) for slot in exc.missing if slot.status not in IN_PROGRESS],
            waiting=waiting, latest=newest)
    blocking, gaps = await _coverage_gate(tenant_id, syllabus, built)
    gate_fields: dict[str, Any] = {"coverage_gaps": gaps, "gate_blocking": blocking}
    if newest is None:
        return PublishReadiness(syllabus_id=syllabus_id, state="first", waiting=waiting, **gate_fields)
    if newest["content_hash"] == built.content_hash:
        return PublishReadiness(syllabus_id=syllabus_id, state="unchanged", latest=newest, waiting=waiting,
                                **gate_fields)
    return PublishReadiness(syllabus_id=syllabus_id, state="changed", latest=newest, waiting=waiting,
                            diff=diff_packages(await document_of(newest), built.package), **gate_fields)


def _gaps_in_words(gaps: list) -> str:
    return "; ".join(f"module {g.module_index} ({g.module_title}): {g.words.lower()}, {g.detail}" for g in gaps)


async def _coverage_gate(tenant_id: uuid.UUID, syllabus: dict[str, Any], built: BuiltPackage) -> tuple[bool, list]:
    """The publish gate (app/quality/gate.py): whether the workspace blocks on gaps, and the gaps."""
    from app.quality import gate  # the coverage audit reads published packages through this module

    settings = await gate.settings_of(tenant_id)
    return settings["publish_gate_blocking"], await gate.publish_gaps(tenant_id, syllabus, built.package)


def _slot_order(slot: tuple[str, int, int | None]) -> tuple[int, int, int]:
    kind, module, lesson = slot
    return module, lesson if lesson is not None else 10**6, ("LESSON", "QUIZ", "PROJECT").index(kind)


# ---------------------------------------------------------------------------------------------
# Reviewing a new revision of an item: what changed since the version it replaces

# The chain of items a revision replaced, newest first, back to (and including) the nearest approved one.
_CHAIN_SQL = """
WITH RECURSIVE chain AS (
    SELECT id, supersedes_id, status, content, 1 AS depth FROM content_item WHERE id = {} AND tenant_id = {}
  UNION ALL
    SELECT c.id, c.supersedes_id, c.status, c.content, chain.depth + 1
    FROM content_item c JOIN chain ON c.id = chain.supersedes_id
    WHERE c.tenant_id = {} AND chain.status <> 'APPROVED' AND chain.depth < 50
)
SELECT id, status, content FROM chain ORDER BY depth
"""


class RevisionReview(msgspec.Struct, frozen=True, kw_only=True):
    base_id: uuid.UUID  # the item compared against
    base_status: str
    diff: ItemDiff

    @property
    def against_approved(self) -> bool:
        return self.base_status == ItemStatus.APPROVED.value


async def revision_review(tenant_id: uuid.UUID, item: dict[str, Any]) -> RevisionReview | None:
    """For an item that replaces another: the diff against the approved version it revises (the nearest
    approved item it replaced), or else against the previous draft that had content. None for a first
    draft, or while there is nothing to compare."""
    if item["content"] is None or item["supersedes_id"] is None:
        return None
    chain = [row for row in await ContentItem.raw(_CHAIN_SQL, item["supersedes_id"], tenant_id, tenant_id)
             if row["content"] is not None]
    if not chain:
        return None
    base = next((row for row in chain if row["status"] == ItemStatus.APPROVED.value), chain[0])
    old = item_doc({"kind": item["kind"], "content": base["content"]})
    return RevisionReview(base_id=base["id"], base_status=base["status"],
                          diff=compare_items(item["kind"], old, item_doc(item)))


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
