"""Revisions of content items: a new DRAFT for the same slot, written by hand or regenerated with an instruction.

Part of the authoring services (the writers of content_item). An approved item is never touched: its
revision is a new row that supersedes nothing until it is approved itself, and the package builder takes
the most recently approved item of each slot. A draft, failed or rejected item is superseded (compare-
and-set) by its revision, as a regeneration does. A slot has at most one item in play at a time (the
`content_item_open_slot` index), so a second revision is refused while one is open, pointing to it.

Regeneration with an instruction stays in `services.regenerate_item` (one home), which asks
`check_revisable` here first; `revise_by_hand` is the hand-written twin.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from typing import Any

import asyncpg
import msgspec

from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.authoring import generation, services
from app.authoring.generation import OUTPUT_TYPES, canonical_json, content_hash
from app.authoring.normalize import tidy
from app.authoring.tables import ContentItem, ItemKind, ItemStatus
from app.db import engine
from app.errors import Conflict, InvalidInput
from app.web.inputs import MULTI_LINE, FieldProblem, explain_validation

# Statuses of the one item of a slot that is still in play (the content_item_open_slot index).
OPEN = (ItemStatus.PENDING, ItemStatus.QUEUED, ItemStatus.BLOCKED, ItemStatus.GENERATING, ItemStatus.DRAFT,
        ItemStatus.FAILED, ItemStatus.REJECTED)
# Open statuses that no one will approve: a regenerated draft takes their place (store_regenerated).
DEAD_ENDS = (ItemStatus.FAILED, ItemStatus.REJECTED)
# Field names in words, for validation messages (app.web.inputs.explain_validation).
LABELS = {
    "duration_minutes": "Duration (minutes)", "key_takeaways": "Key takeaways", "expected_outcome": "Expected outcome",
    "problem_statement": "Problem statement", "estimated_hours": "Estimated hours", "correct_index": "correct answer",
    "concepts": "Concept", "questions": "Question", "options": "option", "rubric": "Rubric criterion",
}
PROMPT_VERSION = "edited-by-hand"  # what a package's provenance lists for a hand-written item
_CONTROL = re.compile(MULTI_LINE)


class HandEdit(msgspec.Struct, frozen=True, kw_only=True):
    """Provenance of a revision a person wrote, stored where a generated item keeps its GenerationMetadata."""

    edited_by_hand: bool = True
    editor_id: str
    editor_email: str | None
    source_item_id: str
    source_hash: str | None
    edited_at: str
    prompt_version: str = PROMPT_VERSION
    validation_passed: bool = True


class InvalidRevision(InvalidInput):
    """A revision that breaks the schema or the rules. `errors` are msgspec's (a JSON path each), so a form
    can point at its own field; `problems` are the same in words."""

    def __init__(self, errors: list[msgspec.ValidationError]) -> None:
        self.errors = errors
        self.problems: list[FieldProblem] = [explain_validation(e, LABELS) for e in errors]
        super().__init__("Check the revision: " + "; ".join(str(p) for p in self.problems))


class RevisionExists(Conflict):
    """The slot already moved on from this item; `newer` is where (an open revision or a later version)."""

    def __init__(self, message: str, newer: dict[str, Any]) -> None:
        super().__init__(f"{message} Open it: /admin/items/{newer['id']}")
        self.reason = message
        self.newer = newer


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------------------------
# The slot an item belongs to


def _same_slot(item: dict[str, Any]) -> Any:
    where = ((ContentItem.tenant_id == item["tenant_id"]) & (ContentItem.syllabus_id == item["syllabus_id"])
             & (ContentItem.kind == item["kind"]) & (ContentItem.module_index == item["module_index"]))
    if item["lesson_index"] is None:
        return where & ContentItem.lesson_index.is_null()
    return where & (ContentItem.lesson_index == item["lesson_index"])


SLOT_COLUMNS = (ContentItem.id, ContentItem.title, ContentItem.kind, ContentItem.status, ContentItem.created_at,
                ContentItem.approved_at)


async def newer_revision(item: dict[str, Any]) -> dict[str, Any] | None:
    """The item that took over this one's slot: its successor if it was superseded, the slot's open item
    if this one is approved, or a version approved after it. None when this item is the newest."""
    if item["status"] == ItemStatus.SUPERSEDED:
        return await ContentItem.select(*SLOT_COLUMNS).where(ContentItem.supersedes_id == item["id"]).order_by(
            ContentItem.created_at, ascending=False).first()
    if item["status"] != ItemStatus.APPROVED:
        return None
    open_item = await ContentItem.select(*SLOT_COLUMNS).where(
        _same_slot(item) & ContentItem.status.is_in([s.value for s in OPEN])).first()
    if open_item is not None:
        return open_item
    return await ContentItem.select(*SLOT_COLUMNS).where(
        _same_slot(item) & (ContentItem.status == ItemStatus.APPROVED.value)
        & (ContentItem.approved_at > item["approved_at"])
    ).order_by(ContentItem.approved_at, ascending=False).first()


async def check_revisable(item: dict[str, Any]) -> None:
    """Conflict unless a new revision may start from this item: the newest approved item of its slot with
    no revision open, or the slot's draft, failed or rejected item itself."""
    if item["status"] in services.REPLACEABLE:
        return
    if item["status"] not in (ItemStatus.APPROVED, ItemStatus.SUPERSEDED):
        raise Conflict(services._not_replaceable(item))
    newer = await newer_revision(item)
    if newer is None:
        if item["status"] == ItemStatus.SUPERSEDED:
            raise Conflict("A newer version replaced this item; revise that one instead.")
        return
    noun = item["kind"].lower()
    if newer["status"] == ItemStatus.APPROVED:
        raise RevisionExists(f"A newer approved version of this {noun} exists; revise that one instead.", newer)
    if item["status"] == ItemStatus.SUPERSEDED:
        raise RevisionExists(f"A newer revision replaced this {noun} ({newer['status'].lower()}); "
                             "revise that one instead.", newer)
    raise RevisionExists(f"This {noun} already has a newer revision in review ({newer['status'].lower()}); "
                         "review or edit that one instead.", newer)


async def editable_content(item: dict[str, Any]) -> dict[str, Any] | None:
    """What a hand edit starts from: the item's content, or for a failed item the last version that had some."""
    row, hops = item, 0
    while row is not None and row["content"] is None and row["supersedes_id"] is not None and hops < 20:
        row = await ContentItem.select(ContentItem.content, ContentItem.supersedes_id).where(
            ContentItem.id == row["supersedes_id"]).first()
        hops += 1
    return msgspec.json.decode(row["content"]) if row and row["content"] else None


# ---------------------------------------------------------------------------------------------
# Validation: the same type, rules and post-processor as the model's output


def _control_characters(value: Any, path: str = "$") -> list[str]:
    if isinstance(value, str):
        return [] if _CONTROL.match(value) else [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _control_characters(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _control_characters(v, f"{path}.{k}")]
    return []


def _every_error(value: Any, of: Any, path: str = "$") -> list[msgspec.ValidationError]:
    """msgspec stops at the first error; a person fixing a form wants them all at once. The same types
    convert each field (and each list entry) on its own, so every bad field is named, with its path."""
    try:
        msgspec.convert(value, type=of, strict=False)
        return []
    except msgspec.ValidationError as exc:
        first = exc
    inner = typing.get_args(of)[0] if typing.get_origin(of) is typing.Annotated else of
    errors: list[msgspec.ValidationError] = []
    if isinstance(inner, type) and issubclass(inner, msgspec.Struct) and isinstance(value, dict):
        for field in msgspec.structs.fields(inner):
            if field.encode_name in value:
                errors += _every_error(value[field.encode_name], field.type, f"{path}.{field.encode_name}")
            elif field.required:
                errors.append(msgspec.ValidationError(f"Object missing required field `{field.encode_name}` - at "
                                                      f"`{path}`"))
    elif typing.get_origin(inner) is list and isinstance(value, list):
        [entry] = typing.get_args(inner)
        errors += [e for i, item in enumerate(value) for e in _every_error(item, entry, f"{path}[{i}]")]
    if errors:
        return errors
    # The error is about this value as a whole (a length, a rule across fields): msgspec's own, re-rooted here.
    message, _, at = str(first).rpartition(" - at `$")
    return [msgspec.ValidationError(f"{message} - at `{path}{at}" if message else f"{first} - at `{path}`")]


def validate_revision(kind: str, data: dict[str, Any]) -> Any:
    """`data` (JSON-like: numbers may still be text, as a form sends them) as the typed document a revision
    stores, or InvalidRevision. PostgreSQL refuses a NUL in JSON text, so control characters are refused first."""
    if bad := _control_characters(data):
        raise InvalidRevision([msgspec.ValidationError(
            f"must not contain control characters (such as a NUL byte) - at `{path}`") for path in bad])
    if errors := _every_error(data, OUTPUT_TYPES[kind]):
        raise InvalidRevision(errors)
    try:
        value = msgspec.convert(data, type=OUTPUT_TYPES[kind], strict=False)
        if problem := generation.check_document(kind, value):
            raise msgspec.ValidationError(problem)
        # The post-processor's trimming, as for generated items. (A lesson's title, duration and objectives
        # are not copied from the outline here: the model is only asked to repeat them, a person edits them.)
        value = tidy(value)
        if problem := generation.check_document(kind, value):
            raise msgspec.ValidationError(problem)
    except msgspec.ValidationError as exc:
        raise InvalidRevision([exc]) from None
    return value


# ---------------------------------------------------------------------------------------------
# The transition


async def revise_by_hand(tenant_id: Any, item_id: Any, data: dict[str, Any], *, actor: Actor) -> dict[str, Any]:
    """A new DRAFT for the item's slot with the content a person wrote. A draft, failed or rejected source
    is superseded; an approved one stays as it is (and stays published) until the revision is approved."""
    item = await services.get_item(tenant_id, item_id)
    await check_revisable(item)
    value = validate_revision(item["kind"], data)
    if content_hash(value) == item["content_hash"]:
        raise InvalidInput(f"Nothing changed: this is the {item['kind'].lower()} as it is. Change something, or "
                           "leave without saving.")
    provenance = HandEdit(editor_id=str(actor.user_id), editor_email=actor.email, source_item_id=str(item["id"]),
                          source_hash=item["content_hash"], edited_at=_now().isoformat(timespec="seconds"))
    try:
        new, queued = await _store(item, value, provenance, actor)
    except asyncpg.UniqueViolationError:  # the content_item_open_slot index: a revision opened meanwhile
        await check_revisable(await services.get_item(tenant_id, item_id))
        raise Conflict("This item changed meanwhile; reload it and try again.") from None
    for queued_id, queued_at in queued:
        await generation.wake_item(queued_id, queued_at)
    await audit(AuditAction.CONTENT_EDITED_BY_HAND, actor=actor, tenant_id=tenant_id, entity_type="content_item",
                entity_id=item["id"], metadata={"new_item_id": str(new["id"]), "kind": item["kind"],
                                                "source_hash": item["content_hash"],
                                                "content_hash": new["content_hash"],
                                                "revision_of_approved": item["status"] == ItemStatus.APPROVED})
    return new


async def store_regenerated(item: dict[str, Any], value: Any, provenance: dict[str, Any], *,
                            created_by: Any) -> tuple[dict[str, Any], list]:
    """A regeneration job's draft (app/regeneration/worker.py) for the slot of the APPROVED `item`, stored
    like a hand edit: the approved row stays published until the draft is approved. Call inside the job's
    transaction; wake the returned (id, queued_at) pairs after it commits. The content_item_open_slot index
    refuses it (UniqueViolationError) when another revision of the slot is open."""
    if item["status"] != ItemStatus.APPROVED:
        raise Conflict(f"Only an approved item gets a regenerated draft; this one is {item['status'].lower()}.")
    async with engine().transaction():
        dead = await ContentItem.update({ContentItem.status: ItemStatus.SUPERSEDED.value}).where(
            _same_slot(item) & ContentItem.status.is_in([s.value for s in DEAD_ENDS])
        ).returning(ContentItem.run_id)
        stored = await _store(item, value, provenance, Actor(user_id=created_by, email=None))
        if dead:
            await generation.settle_runs({row["run_id"] for row in dead})
    return stored


async def _store(item: dict[str, Any], value: Any, provenance: HandEdit | dict[str, Any], actor: Actor
                 ) -> tuple[dict[str, Any], list]:
    runs: set = set()
    async with engine().transaction():
        if item["status"] != ItemStatus.APPROVED:
            superseded = await ContentItem.update({ContentItem.status: ItemStatus.SUPERSEDED.value}).where(
                (ContentItem.id == item["id"]) & (ContentItem.status == item["status"])
            ).returning(ContentItem.id)
            if len(superseded) != 1:
                raise Conflict("This item changed meanwhile; reload it and try again.")
            runs.add(item["run_id"])
        new = (await ContentItem.insert(ContentItem(
            tenant_id=item["tenant_id"], syllabus_id=item["syllabus_id"], kind=item["kind"],
            module_index=item["module_index"], lesson_index=item["lesson_index"],
            title=(getattr(value, "title", None) or item["title"])[:200], status=ItemStatus.DRAFT.value,
            content=canonical_json(value).decode(), content_hash=content_hash(value), generated_at=_now(),
            generation=msgspec.json.encode(provenance).decode(), supersedes_id=item["id"], created_by=actor.user_id,
        )).returning(*ContentItem.all_columns()))[0]
        queued: list = []
        if item["kind"] == ItemKind.LESSON:
            # A new lesson draft lets a quiz or project that waited for a failed or rejected one go ahead.
            queued, dependent_runs = await generation.resolve_dependents(item["syllabus_id"], item["module_index"])
            runs |= dependent_runs
        await generation.settle_runs(runs)
    return new, queued
