"""The AI spot-check log (SPEC O3): what a person checked on a busy module, what they saw, and what follows.
The only writer of `ai_spot_check`; every change is audited. The seeds kept this log as a Markdown file;
`markdown()` gives the same file back."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from app.accounts.tables import Tenant
from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.authoring.tables import Course
from app.errors import InvalidInput, NotFound
from app.publishing.services import document_of
from app.publishing.tables import CoursePackageRow
from app.quality.tables import SpotCheck
from app.web import inputs
from app.web.inputs import EARLIEST_DATE, INT4_MAX

LIMITS = {"checked": 2000, "observed": 4000, "follow_up": 2000}
FIELD_WORDS = {"checked": "What was checked", "observed": "What you observed", "follow_up": "The follow-up"}


class SpotCheckForm(msgspec.Struct, kw_only=True):
    # Bounded, control-character-free types (app/web/inputs.py): a NUL would otherwise reach PostgreSQL. The
    # texts get a little room above LIMITS so that the service's own words name a text that is too long.
    checked_on: inputs.Line(32) = ""
    course_id: inputs.UUIDText = ""
    module_index: inputs.Line(12) = ""
    traffic: inputs.Line(12) = ""
    checked: inputs.Text(LIMITS["checked"] * 2) = ""
    observed: inputs.Text(LIMITS["observed"] * 2) = ""
    follow_up: inputs.Text(LIMITS["follow_up"] * 2) = ""


class SpotCheckInvalid(InvalidInput):
    """Every field error at once, so the form can show each beside its field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors


async def published_courses(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Courses with a published version: their id (course.id), title and module titles, for the form."""
    rows = await CoursePackageRow.raw(
        "SELECT DISTINCT ON (course_id) id, course_id, content_hash FROM course_package "
        "WHERE tenant_id = {} AND status = 'PUBLISHED' ORDER BY course_id, version DESC", tenant_id)
    courses = []
    for row in rows:
        document = await document_of(row)
        courses.append({"id": row["course_id"], "title": document.course.title,
                        "modules": {m.index: m.title for m in document.modules}})
    return sorted(courses, key=lambda c: (c["title"].lower(), str(c["id"])))


async def _clean(tenant_id: uuid.UUID, form: SpotCheckForm, today: dt.date | None = None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    today = today or dt.datetime.now(dt.UTC).date()
    checked_on = None
    try:
        checked_on = dt.date.fromisoformat(form.checked_on.strip()) if form.checked_on.strip() else None
    except ValueError:
        errors["checked_on"] = "The date must be a date like 2026-01-31."
    if checked_on is None and "checked_on" not in errors:
        errors["checked_on"] = "Say on which day the check was made."
    elif checked_on is not None and not EARLIEST_DATE <= checked_on <= today:
        errors["checked_on"] = f"The date cannot be in the future (today is {today}) or before {EARLIEST_DATE}."
    courses = {str(c["id"]): c for c in await published_courses(tenant_id)}
    course = courses.get(form.course_id.strip())
    if course is None:
        errors["course_id"] = "Choose one of this workspace's published courses."
    module_index = None
    if form.module_index.strip():
        module_index = _whole(form.module_index, 1)
        if course is not None and module_index not in course["modules"]:
            errors["module_index"] = f"Choose a module of this course (1 to {len(course['modules'])})."
        elif course is None and module_index is None:
            errors["module_index"] = "Choose a module of the course."
    traffic = _whole(form.traffic, 0) if form.traffic.strip() else None
    if form.traffic.strip() and traffic is None:
        errors["traffic"] = "Traffic is a number of learner sessions (a whole number, 0 or more)."
    texts = {}
    for name, limit in LIMITS.items():
        texts[name] = getattr(form, name).strip()
        if not texts[name]:
            errors[name] = f"{FIELD_WORDS[name]} is required" + (" (write “none” if nothing follows)."
                                                                 if name == "follow_up" else ".")
        elif len(texts[name]) > limit:
            errors[name] = f"{FIELD_WORDS[name]} must be at most {limit} characters long ({len(texts[name])} given)."
    if errors:
        raise SpotCheckInvalid(errors)
    return {"checked_on": checked_on, "course_id": course["id"], "module_index": module_index, "traffic": traffic,
            **texts}


def _whole(raw: str, minimum: int) -> int | None:
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return value if minimum <= value <= INT4_MAX else None


async def list_spot_checks(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await SpotCheck.select().where(SpotCheck.tenant_id == tenant_id).order_by(
        SpotCheck.checked_on, ascending=False).order_by(SpotCheck.created_at, ascending=False)
    titles = {c["id"]: c for c in await published_courses(tenant_id)}
    missing = {r["course_id"] for r in rows} - titles.keys()
    if missing:  # a course no longer published keeps its brief's title
        for c in await Course.select(Course.id, Course.title).where(Course.id.is_in(list(missing))):
            titles[c["id"]] = {"title": c["title"], "modules": {}}
    for row in rows:
        course = titles.get(row["course_id"], {"title": "(a removed course)", "modules": {}})
        row["course_title"] = course["title"]
        row["module_title"] = course["modules"].get(row["module_index"], "") if row["module_index"] else ""
    return rows


async def get_spot_check(tenant_id: uuid.UUID, spot_check_id: uuid.UUID) -> dict[str, Any]:
    row = await SpotCheck.select().where(
        (SpotCheck.id == spot_check_id) & (SpotCheck.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such spot check.")
    return row


def _audit_fields(values: dict[str, Any]) -> dict[str, Any]:
    return {"checked_on": str(values["checked_on"]), "course_id": str(values["course_id"]),
            "module_index": values["module_index"], "traffic": values["traffic"]}


async def create_spot_check(tenant_id: uuid.UUID, form: SpotCheckForm, *, actor: Actor) -> dict[str, Any]:
    values = await _clean(tenant_id, form)
    row = (await SpotCheck.insert(SpotCheck(id=uuid.uuid4(), tenant_id=tenant_id, created_by=actor.user_id,
                                            **values)).returning(*SpotCheck.all_columns()))[0]
    await audit(AuditAction.SPOT_CHECK_LOGGED, actor=actor, tenant_id=tenant_id, entity_type="ai_spot_check",
                entity_id=row["id"], metadata=_audit_fields(values))
    return row


async def update_spot_check(tenant_id: uuid.UUID, spot_check_id: uuid.UUID, form: SpotCheckForm, *,
                            actor: Actor) -> dict[str, Any]:
    await get_spot_check(tenant_id, spot_check_id)
    values = await _clean(tenant_id, form)
    rows = await SpotCheck.update({**{getattr(SpotCheck, k): v for k, v in values.items()},
                                   SpotCheck.updated_at: dt.datetime.now(dt.UTC)}).where(
        (SpotCheck.id == spot_check_id) & (SpotCheck.tenant_id == tenant_id)).returning(*SpotCheck.all_columns())
    if not rows:
        raise NotFound("No such spot check.")  # deleted meanwhile
    await audit(AuditAction.SPOT_CHECK_UPDATED, actor=actor, tenant_id=tenant_id, entity_type="ai_spot_check",
                entity_id=spot_check_id, metadata=_audit_fields(values))
    return rows[0]


async def delete_spot_check(tenant_id: uuid.UUID, spot_check_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    rows = await SpotCheck.delete().where(
        (SpotCheck.id == spot_check_id) & (SpotCheck.tenant_id == tenant_id)).returning(*SpotCheck.all_columns())
    if not rows:
        raise NotFound("No such spot check.")
    await audit(AuditAction.SPOT_CHECK_DELETED, actor=actor, tenant_id=tenant_id, entity_type="ai_spot_check",
                entity_id=spot_check_id, metadata={**_audit_fields(rows[0]), "checked": rows[0]["checked"][:200]})
    return rows[0]


def form_of(row: dict[str, Any]) -> SpotCheckForm:
    """A stored spot check as the edit form shows it."""
    return SpotCheckForm(checked_on=str(row["checked_on"]), course_id=str(row["course_id"]),
                         module_index=str(row["module_index"] or ""),
                         traffic="" if row["traffic"] is None else str(row["traffic"]), checked=row["checked"],
                         observed=row["observed"], follow_up=row["follow_up"])


# ---------------------------------------------------------------------------------------------
# Markdown export


def markdown_cell(text: Any) -> str:
    """One table cell: a pipe would end the cell and a line break the row, so both are escaped."""
    value = "" if text is None else str(text)
    value = value.replace("\\", "\\\\").replace("|", "\\|")
    return "<br>".join(line.strip() for line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


async def markdown(tenant_id: uuid.UUID, workspace: str) -> str:
    rows = await list_spot_checks(tenant_id)
    lines = [f"# AI spot-check log: {markdown_cell(workspace)}", "",
             "| Date | Course / module | Traffic (sessions) | Checked | Observed | Follow-up |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        where = row["course_title"] + (f" / module {row['module_index']}" if row["module_index"] else
                                       " (whole course)") + (f": {row['module_title']}" if row["module_title"] else "")
        lines.append("| " + " | ".join(markdown_cell(v) for v in (
            row["checked_on"], where, "" if row["traffic"] is None else row["traffic"], row["checked"],
            row["observed"], row["follow_up"])) + " |")
    if not rows:
        lines.append("| | No spot check logged yet. | | | | |")
    return "\n".join(lines) + "\n"


async def markdown_export(tenant_id: uuid.UUID) -> tuple[str, str]:
    """(file name, Markdown) of the workspace's log, as the download names and sends it."""
    workspace = await Tenant.select(Tenant.name, Tenant.slug).where(Tenant.id == tenant_id).first()
    name = f"ai-spot-check-log-{workspace['slug']}-{dt.datetime.now(dt.UTC):%Y%m%d}.md"
    return name, await markdown(tenant_id, workspace["name"])
