"""Lineage (issue 13 item 7): where a published lesson came from, and what a signal led to.

One query path serves both directions. `LINEAGE_SQL` walks the retry chain of regeneration jobs with one
recursive CTE, upwards (from the job that wrote an item to the failed jobs it retried) or downwards (from
the jobs a signal's suggestions started to every retry after them), and gathers in the same statement the
signals, suggestions and their decisions, retry intents, outputs, content items, generation runs and the
package versions that carry those items. `backward_steps()` and `forward_steps()` are pure: rows in, the
steps a person reads out.
Read-only: nothing here writes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

import msgspec

from app.db import independent_connection
from app.errors import NotFound

Direction = Literal["backward", "forward"]

LINEAGE_SQL = """
WITH RECURSIVE
start_jobs AS (
    SELECT o.job_id AS id FROM regeneration_output o WHERE o.tenant_id = $1 AND o.content_item_id = $2
    UNION
    SELECT j.id FROM regeneration_job j JOIN content_suggestion s ON s.id = j.suggestion_id AND s.tenant_id = $1
    WHERE j.tenant_id = $1 AND j.retry_of_job_id IS NULL AND (s.source_signal_id = $3 OR s.id = $4)
),
chain AS (
    SELECT j.id, j.retry_of_job_id FROM regeneration_job j
    WHERE j.tenant_id = $1 AND j.id IN (SELECT id FROM start_jobs)
    UNION
    SELECT j.id, j.retry_of_job_id FROM chain c JOIN regeneration_job j ON j.tenant_id = $1 AND CASE
        WHEN $5 = 'backward' THEN j.id = c.retry_of_job_id ELSE j.retry_of_job_id = c.id END
),
jobs AS (SELECT j.* FROM regeneration_job j WHERE j.id IN (SELECT id FROM chain)),
suggestions AS (
    SELECT s.* FROM content_suggestion s WHERE s.tenant_id = $1
    AND (s.id IN (SELECT suggestion_id FROM jobs) OR s.source_signal_id = $3 OR s.id = $4)
),
signals AS (
    SELECT g.* FROM analytics_signal g WHERE g.tenant_id = $1
    AND (g.id = $3 OR g.id IN (SELECT source_signal_id FROM suggestions))
),
outputs AS (
    SELECT o.id, o.job_id, o.content_item_id, o.source_item_id, o.prompt_name, o.prompt_version, o.model,
           o.input_tokens, o.output_tokens, o.cost_usd, o.created_at
    FROM regeneration_output o WHERE o.tenant_id = $1 AND o.job_id IN (SELECT id FROM jobs)
),
items AS (
    SELECT i.id, i.syllabus_id, i.run_id, i.kind, i.module_index, i.lesson_index, i.title, i.status, i.generation,
           i.supersedes_id, i.instruction, i.created_by, i.created_at, i.approved_by, i.approved_at,
           i.approval_note, i.content_hash, i.rejected_by, i.rejected_at, i.rejection_reason
    FROM content_item i WHERE i.tenant_id = $1
    AND (i.id = $2 OR i.id IN (SELECT content_item_id FROM outputs) OR i.id IN (SELECT source_item_id FROM outputs))
),
packages AS (
    SELECT p.id, p.syllabus_id, p.version, p.status, p.title, p.published_by, p.published_at, carried.item_ids
    FROM course_package p
    CROSS JOIN LATERAL (
        SELECT jsonb_agg(e ->> 'item_id') AS item_ids
        FROM jsonb_array_elements(p.document::jsonb -> 'provenance' -> 'items') e
        WHERE e ->> 'item_id' IN (SELECT id::text FROM items)
    ) carried
    WHERE p.tenant_id = $1 AND p.syllabus_id IN (SELECT syllabus_id FROM items) AND carried.item_ids IS NOT NULL
),
decisions AS (
    SELECT a.entity_id, a.action, a.actor_email, a.created_at, a.metadata FROM audit_log a
    WHERE a.tenant_id = $1 AND a.entity_type = 'content_suggestion'
    AND a.action IN ('CONTENT_SUGGESTION_ACCEPTED', 'CONTENT_SUGGESTION_DISMISSED')
    AND a.entity_id IN (SELECT id::text FROM suggestions)
)
SELECT
    (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.created_at), '[]') FROM signals x) AS signals,
    (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.created_at), '[]') FROM suggestions x) AS suggestions,
    (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.created_at), '[]') FROM decisions x) AS decisions,
    (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.created_at), '[]') FROM jobs x) AS jobs,
    (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.created_at), '[]')
     FROM retry_intent x WHERE x.tenant_id = $1 AND x.job_id IN (SELECT id FROM jobs)) AS intents,
    (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.created_at), '[]') FROM outputs x) AS outputs,
    (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.created_at), '[]') FROM items x) AS items,
    (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.published_at, x.version), '[]') FROM packages x) AS packages,
    (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.created_at), '[]') FROM generation_run r
     WHERE r.tenant_id = $1 AND r.id IN (SELECT run_id FROM items)) AS runs
"""

USERS_SQL = "SELECT id, email FROM app_user WHERE id = ANY($1::uuid[])"


# ---------------------------------------------------------------------------------------------
# The rows, as the query returns them (to_jsonb: msgspec turns the strings back into dates and ids)


class SignalRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    course_id: uuid.UUID
    signal_type: str
    lesson_index: int
    severity: str
    day: dt.date
    window_start: dt.date
    window_end: dt.date
    summary: str
    status: str
    created_at: dt.datetime
    metrics: dict[str, Any] = {}


class SuggestionRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    course_id: uuid.UUID
    scope: str
    target_id: uuid.UUID
    suggestion_type: str
    severity: str
    message: str
    status: str
    created_at: dt.datetime
    source_signal_id: uuid.UUID | None = None
    created_by: uuid.UUID | None = None


class DecisionRow(msgspec.Struct, frozen=True):
    entity_id: str
    action: str
    created_at: dt.datetime
    actor_email: str | None = None
    metadata: dict[str, Any] = {}


class JobRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    status: str
    created_at: dt.datetime
    suggestion_id: uuid.UUID | None = None
    retry_of_job_id: uuid.UUID | None = None
    retry_intent_id: uuid.UUID | None = None
    created_by: uuid.UUID | None = None
    triggered_by: uuid.UUID | None = None
    queued_at: dt.datetime | None = None
    locked_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    output_id: uuid.UUID | None = None
    error: dict[str, Any] | None = None


class IntentRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    job_id: uuid.UUID
    reason_code: str
    reason_text: str
    status: str
    created_at: dt.datetime
    created_by: uuid.UUID | None = None
    approved_by: uuid.UUID | None = None
    approved_at: dt.datetime | None = None
    decided_by: uuid.UUID | None = None
    decided_at: dt.datetime | None = None
    new_job_id: uuid.UUID | None = None
    rejection_note: str | None = None


class OutputRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    job_id: uuid.UUID
    content_item_id: uuid.UUID
    source_item_id: uuid.UUID
    prompt_version: str
    model: str
    created_at: dt.datetime
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class ItemRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    syllabus_id: uuid.UUID
    kind: str
    module_index: int
    title: str
    status: str
    created_at: dt.datetime
    lesson_index: int | None = None
    run_id: uuid.UUID | None = None
    generation: dict[str, Any] | None = None
    supersedes_id: uuid.UUID | None = None
    instruction: str | None = None
    created_by: uuid.UUID | None = None
    approved_by: uuid.UUID | None = None
    approved_at: dt.datetime | None = None
    approval_note: str | None = None
    rejected_by: uuid.UUID | None = None
    rejected_at: dt.datetime | None = None
    rejection_reason: str | None = None

    @property
    def slot(self) -> str:
        where = f"module {self.module_index}" + (f", lesson {self.lesson_index}" if self.lesson_index else " project")
        return f"{self.kind.capitalize()} · {where}"


class PackageRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    syllabus_id: uuid.UUID
    version: int
    status: str
    title: str
    published_at: dt.datetime
    item_ids: list[uuid.UUID]
    published_by: uuid.UUID | None = None


class RunRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    kind: str
    status: str
    created_at: dt.datetime
    created_by: uuid.UUID | None = None
    instruction: str | None = None


class Rows(msgspec.Struct, frozen=True):
    signals: list[SignalRow]
    suggestions: list[SuggestionRow]
    decisions: list[DecisionRow]
    jobs: list[JobRow]
    intents: list[IntentRow]
    outputs: list[OutputRow]
    items: list[ItemRow]
    packages: list[PackageRow]
    runs: list[RunRow]
    emails: dict[uuid.UUID, str] = {}


# ---------------------------------------------------------------------------------------------
# The timeline a person reads


class Step(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # signal, suggestion, job, intent, output, item, package, generation, waiting
    title: str
    when: dt.datetime | None = None
    actor: str | None = None
    state: str | None = None  # a status code, for the badge's colour
    state_words: str | None = None
    details: list[str] = []
    quote: str | None = None  # a person's own words (a note, a reason)
    url: str | None = None
    link_words: str | None = None
    anchor: str = ""


class Lineage(msgspec.Struct, frozen=True, kw_only=True):
    direction: Direction
    subject: str  # what the page is about, in words
    steps: list[Step]
    rows: Rows
    item: ItemRow | None = None  # backward: the item asked about
    signal: SignalRow | None = None  # forward: the signal asked about


SIGNAL_WORDS = {"high_drop_off": "High drop-off", "low_quiz_pass_rate": "Low quiz pass rate",
                "high_refund_rate": "High refund rate", "low_engagement": "Low engagement"}
JOB_WORDS = {"PENDING": "Waiting to be started", "QUEUED": "Queued for a worker", "RUNNING": "Running",
             "COMPLETED": "Completed", "FAILED": "Failed"}
INTENT_WORDS = {"PENDING": "Waiting for a decision", "CONSUMED": "Carried out", "REJECTED": "Refused"}
REASON_WORDS = {"TRANSIENT_FAILURE": "A passing failure", "BAD_INPUT": "Bad input",
                "IMPROVED_PROMPT": "Improved prompt", "INFRA_ERROR": "Infrastructure error", "OTHER": "Other"}
SUGGESTION_WORDS = {"OPEN": "Waiting for a decision", "ACCEPTED": "Accepted", "DISMISSED": "Dismissed"}
ITEM_WORDS = {"DRAFT": "Draft, waiting for review", "APPROVED": "Approved", "REJECTED": "Rejected",
              "SUPERSEDED": "Replaced by a newer version", "FAILED": "Generation failed"}
RUN_WORDS = {"SYLLABUS": "the syllabus run", "CONTENT": "the course's content run", "ITEM": "a regeneration run",
             "RETRY": "a retry of failed items"}


async def lineage(tenant_id: uuid.UUID, *, item_id: uuid.UUID | None = None, signal_id: uuid.UUID | None = None,
                  suggestion_id: uuid.UUID | None = None) -> Lineage:
    """Backward from a content item, or forward from a signal (or one suggestion); 404 outside the workspace."""
    direction: Direction = "backward" if item_id else "forward"
    rows = await _rows(tenant_id, direction, item_id, signal_id, suggestion_id)
    if item_id:
        item = next((i for i in rows.items if i.id == item_id), None)
        if item is None:
            raise NotFound("No such content item in this workspace.")
        return Lineage(direction=direction, subject=f"{item.title} ({item.slot.lower()})", item=item, rows=rows,
                       steps=backward_steps(rows, item))
    if suggestion_id and not any(s.id == suggestion_id for s in rows.suggestions):
        raise NotFound("No such suggestion in this workspace.")
    signal = next((s for s in rows.signals if s.id == signal_id), None)
    if signal_id and signal is None:
        raise NotFound("No such signal in this workspace.")
    subject = _signal_title(signal) if signal else "a suggestion"
    return Lineage(direction=direction, subject=subject, signal=signal, rows=rows,
                   steps=forward_steps(rows, signal, suggestion_id))


async def _rows(tenant_id: uuid.UUID, direction: Direction, item_id: uuid.UUID | None, signal_id: uuid.UUID | None,
                suggestion_id: uuid.UUID | None) -> Rows:
    async with independent_connection() as conn:
        record = await conn.fetchrow(LINEAGE_SQL, tenant_id, item_id, signal_id, suggestion_id, direction)
        raw = {name: msgspec.json.decode(record[name]) for name in record.keys()}
        rows = msgspec.convert(raw, Rows)
        people = sorted(_people(rows), key=str)
        emails = {r["id"]: r["email"] for r in await conn.fetch(USERS_SQL, people)} if people else {}
    return msgspec.structs.replace(rows, emails=emails)


def _people(rows: Rows) -> set[uuid.UUID]:
    ids: set[uuid.UUID | None] = set()
    ids.update(s.created_by for s in rows.suggestions)
    ids.update(x for j in rows.jobs for x in (j.created_by, j.triggered_by))
    ids.update(x for i in rows.intents for x in (i.created_by, i.approved_by, i.decided_by))
    ids.update(x for i in rows.items for x in (i.created_by, i.approved_by, i.rejected_by))
    ids.update(p.published_by for p in rows.packages)
    ids.update(r.created_by for r in rows.runs)
    return {i for i in ids if i}


# ---------------------------------------------------------------------------------------------
# Rows -> steps (pure)


def _signal_title(signal: SignalRow) -> str:
    where = f" · lesson {signal.lesson_index}" if signal.lesson_index else ""
    return SIGNAL_WORDS.get(signal.signal_type, signal.signal_type) + where


def _who(rows: Rows, user_id: uuid.UUID | None, nobody: str = "an admin") -> str:
    return rows.emails.get(user_id, nobody) if user_id else nobody


def signal_step(signal: SignalRow) -> Step:
    return Step(kind="signal", title=f"Signal raised: {_signal_title(signal)}", when=signal.created_at,
                actor="the nightly analytics run", state=signal.severity, state_words=f"{signal.severity} severity",
                details=[signal.summary, f"Window {signal.window_start} to {signal.window_end}"],
                url=f"/admin/analytics/signals?course={signal.course_id}#signal-{signal.id}",
                link_words="See the signal", anchor=f"signal-{signal.id}")


def suggestion_steps(rows: Rows, suggestion: SuggestionRow) -> list[Step]:
    steps = [Step(kind="suggestion", title=f"Suggestion: {suggestion.message}", when=suggestion.created_at,
                  actor=_who(rows, suggestion.created_by, "the nightly analytics run"), state=suggestion.status,
                  state_words=SUGGESTION_WORDS.get(suggestion.status, suggestion.status),
                  details=[f"{suggestion.severity.capitalize()} severity · {suggestion.scope.lower()}"],
                  url=f"/admin/suggestions/{suggestion.id}", link_words="Open the suggestion",
                  anchor=f"suggestion-{suggestion.id}")]
    decision = next((d for d in reversed(rows.decisions) if d.entity_id == str(suggestion.id)), None)
    if decision:
        accepted = decision.action.endswith("ACCEPTED")
        steps.append(Step(kind="decision", title="Suggestion accepted" if accepted else "Suggestion dismissed",
                          when=decision.created_at, actor=decision.actor_email or "an admin",
                          state="ACCEPTED" if accepted else "DISMISSED",
                          quote=decision.metadata.get("note") or None))
    return steps


def job_steps(rows: Rows, job: JobRow) -> list[Step]:
    details = []
    if job.retry_of_job_id:
        details.append("A retry of a failed job")
    if job.status == "FAILED" and job.error:
        details.append(f"What went wrong: {job.error.get('message') or job.error.get('code') or 'unknown'}")
    actor = _who(rows, job.created_by)
    if job.triggered_by:
        actor += f"; started by {_who(rows, job.triggered_by)}"
    steps = [Step(kind="job", title=f"Regeneration job for the {job.target_type.lower()}", when=job.created_at,
                  actor=actor, state=job.status, state_words=JOB_WORDS.get(job.status, job.status),
                  details=details + ([f"Ended {job.completed_at:%Y-%m-%d %H:%M} UTC"] if job.completed_at else []),
                  url=f"/admin/regeneration-jobs/{job.id}", link_words="Open the job", anchor=f"job-{job.id}")]
    for intent in (i for i in rows.intents if i.job_id == job.id):
        steps.append(intent_step(rows, intent))
    return steps


def intent_step(rows: Rows, intent: IntentRow) -> Step:
    details = [f"Reason: {REASON_WORDS.get(intent.reason_code, intent.reason_code)}"]
    if intent.approved_at:
        details.append(f"Approved by {_who(rows, intent.approved_by)} on {intent.approved_at:%Y-%m-%d %H:%M} UTC")
    if intent.status == "REJECTED":
        details.append(f"Refused by {_who(rows, intent.decided_by)}"
                       + (f": “{intent.rejection_note}”" if intent.rejection_note else ""))
    return Step(kind="intent", title="Retry requested", when=intent.created_at, actor=_who(rows, intent.created_by),
                state=intent.status, state_words=INTENT_WORDS.get(intent.status, intent.status), details=details,
                quote=intent.reason_text, url=f"/admin/retry-intents/{intent.id}", link_words="Open the request",
                anchor=f"intent-{intent.id}")


def output_step(output: OutputRow) -> Step:
    return Step(kind="output", title="New draft written", when=output.created_at, actor=f"model {output.model}",
                details=[f"Prompt {output.prompt_version}",
                         f"{output.input_tokens} tokens in · {output.output_tokens} out · ${output.cost_usd:.4f}"],
                url=f"/admin/items/{output.source_item_id}", link_words="The item it replaces",
                anchor=f"output-{output.id}")


def item_steps(rows: Rows, item: ItemRow) -> list[Step]:
    steps = [Step(kind="item", title=f"{item.slot}: {item.title}", when=item.created_at,
                  state=item.status, state_words=ITEM_WORDS.get(item.status, item.status.lower()),
                  url=f"/admin/items/{item.id}", link_words="Review page", anchor=f"item-{item.id}")]
    if item.approved_at:
        steps.append(Step(kind="approval", title="Approved", when=item.approved_at, actor=_who(rows, item.approved_by),
                          state="APPROVED", quote=item.approval_note or None))
    elif item.rejected_at:
        steps.append(Step(kind="approval", title="Rejected", when=item.rejected_at, actor=_who(rows, item.rejected_by),
                          state="REJECTED", quote=item.rejection_reason or None))
    carried = [p for p in rows.packages if item.id in p.item_ids]
    for package in carried:
        steps.append(Step(kind="package", title=f"Published in version {package.version}", when=package.published_at,
                          actor=_who(rows, package.published_by), state=package.status,
                          state_words=package.status.lower(),
                          url=f"/admin/packages/{package.syllabus_id}/v/{package.version}",
                          link_words=f"{package.title} v{package.version}", anchor=f"package-{package.id}"))
    if not carried and item.status in ("DRAFT", "APPROVED"):
        steps.append(Step(kind="waiting", title="Not published yet",
                          details=["Approve it and publish the course to offer it to learners."
                                   if item.status == "DRAFT" else "Publish the course to offer it to learners."]))
    return steps


def generation_step(rows: Rows, item: ItemRow) -> Step:
    gen = item.generation or {}
    if gen.get("edited_by_hand"):
        return Step(kind="generation", title="Edited by hand", when=item.created_at,
                    actor=gen.get("editor_email") or _who(rows, item.created_by),
                    details=["A revision written by a person, checked against the same rules as generated content"],
                    url=f"/admin/items/{item.supersedes_id}" if item.supersedes_id else None,
                    link_words="The version it was edited from" if item.supersedes_id else None)
    run = next((r for r in rows.runs if r.id == item.run_id), None)
    details = []
    if gen.get("model"):
        details.append(f"Model {gen.get('provider', '')} {gen['model']}".replace("  ", " "))
    if gen.get("prompt_version"):
        details.append(f"Prompt {gen['prompt_version']}")
    if item.supersedes_id:
        details.append("Regenerated from an earlier version of this slot")
    title = "Original generation" if not item.supersedes_id else "Generated again from the authoring pages"
    return Step(kind="generation", title=title, when=item.created_at,
                actor=_who(rows, run.created_by if run else item.created_by),
                details=details + ([f"Part of {RUN_WORDS.get(run.kind, run.kind.lower())}"] if run else []),
                quote=item.instruction or None, url=f"/admin/runs/{run.id}" if run else None,
                link_words="Open the run" if run else None, anchor=f"generation-{item.id}")


def _job_tree(rows: Rows, roots: list[JobRow]) -> list[JobRow]:
    """Roots and their retries, each job followed by the jobs that retried it."""
    ordered: list[JobRow] = []
    pending = list(roots)
    while pending:
        job = pending.pop(0)
        if job in ordered:
            continue
        ordered.append(job)
        pending[0:0] = [j for j in rows.jobs if j.retry_of_job_id == job.id]
    return ordered


def _jobs_and_results(rows: Rows, jobs: list[JobRow]) -> list[Step]:
    steps: list[Step] = []
    for job in jobs:
        steps += job_steps(rows, job)
        for output in (o for o in rows.outputs if o.job_id == job.id):
            steps.append(output_step(output))
            item = next((i for i in rows.items if i.id == output.content_item_id), None)
            if item:
                steps += item_steps(rows, item)
    return steps


def backward_steps(rows: Rows, item: ItemRow) -> list[Step]:
    output = next((o for o in rows.outputs if o.content_item_id == item.id), None)
    if output is None:
        return [generation_step(rows, item), *item_steps(rows, item)[1:]]
    steps: list[Step] = []
    suggestion_ids = {j.suggestion_id for j in rows.jobs if j.suggestion_id}
    for suggestion in (s for s in rows.suggestions if s.id in suggestion_ids):
        signal = next((g for g in rows.signals if g.id == suggestion.source_signal_id), None)
        if signal:
            steps.append(signal_step(signal))
        steps += suggestion_steps(rows, suggestion)
    if not suggestion_ids:
        steps.append(Step(kind="waiting", title="Started by hand",
                          details=["No suggestion: an admin created the job."]))
    roots = [j for j in rows.jobs if not any(k.id == j.retry_of_job_id for k in rows.jobs)]
    return steps + _jobs_and_results(rows, _job_tree(rows, roots))


def forward_steps(rows: Rows, signal: SignalRow | None, suggestion_id: uuid.UUID | None) -> list[Step]:
    steps = [signal_step(signal)] if signal else []
    suggestions = [s for s in rows.suggestions if suggestion_id is None or s.id == suggestion_id]
    if signal and not suggestions:
        steps.append(Step(kind="waiting", title="No suggestion yet",
                          details=["The nightly run turns a signal into suggestions after it raises it."]))
    for suggestion in suggestions:
        steps += suggestion_steps(rows, suggestion)
        roots = [j for j in rows.jobs if j.suggestion_id == suggestion.id and j.retry_of_job_id is None]
        if not roots and suggestion.status == "ACCEPTED":
            steps.append(Step(kind="waiting", title="No regeneration job yet",
                              url=f"/admin/suggestions/{suggestion.id}", link_words="Create one from the suggestion"))
        steps += _jobs_and_results(rows, _job_tree(rows, roots))
    return steps
