"""`coursewright audit integrity` (SPEC O6, seed 004 §8–9): the checks an operator runs weekly and after a restore.

Read-only: every check is a SELECT. Each returns its findings in words; an empty list means the check passed.

- Orphans: a row pointing at a parent that is gone, or at a parent of another workspace. Most of these columns
  have no foreign key on purpose (insert-only tables, rows that outlive a deploy order), so nothing but this check
  notices when one dangles.
- Question statistics against quiz attempts: the existing reconciliation (app/player/services.py).
- Migrations: every file in piccolo_migrations/ applied, and nothing applied that this release does not know.
- Database guards: the triggers that enforce invariants 2 and 7 and the state machines, present and enabled.
  A restore with the wrong flags or a hand-run `ALTER TABLE … DISABLE TRIGGER` would silently lift them.
- Analytics partitions for this month and the next two: without them, learner events are refused (503).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import asyncpg

from app.db import APP_NAME, expected_migrations, independent_connection

EXAMPLES = 3  # ids quoted per finding: enough to start looking, not a dump
MAX_LINES = 20  # per check, so one broken table does not bury the others


@dataclass(frozen=True)
class Reference:
    table: str
    column: str
    parent: str
    rows: str  # what the child rows are, in words
    parent_words: str
    condition: str = "TRUE"  # rows of `table` this reference applies to


# Every id column that names a row of another table. Not listed on purpose: audit_log (history names things
# that may be gone), analytics_event (raw, pruned after 90 days), content_suggestion.source_signal_id (signals
# are pruned after 180 days; the suggestion keeps the evidence), and user ids (people are never deleted, and a
# membership is not a foreign key's business).
REFERENCES: tuple[Reference, ...] = (
    Reference("syllabus", "course_id", "course", "syllabus revisions", "course"),
    Reference("generation_run", "course_id", "course", "generation runs", "course"),
    Reference("generation_run", "syllabus_id", "syllabus", "generation runs", "syllabus"),
    Reference("content_item", "syllabus_id", "syllabus", "content items", "syllabus"),
    Reference("content_item", "run_id", "generation_run", "content items", "generation run"),
    Reference("content_item", "supersedes_id", "content_item", "content items", "item they replace"),
    Reference("syllabus", "supersedes_id", "syllabus", "syllabus revisions", "revision they replace"),
    Reference("course_package", "course_id", "course", "published packages", "course"),
    Reference("course_package", "syllabus_id", "syllabus", "published packages", "syllabus"),
    Reference("package_export", "package_id", "course_package", "exports", "package"),
    Reference("export_request", "syllabus_id", "syllabus", "export requests", "course"),
    Reference("enrollment", "package_id", "course_package", "enrollments", "package"),
    Reference("enrollment", "started_package_id", "course_package", "enrollments", "package they started on"),
    Reference("enrollment", "syllabus_id", "syllabus", "enrollments", "course"),
    Reference("enrollment", "purchase_id", "purchase", "enrollments", "purchase"),
    Reference("lesson_progress", "enrollment_id", "enrollment", "lesson progress rows", "enrollment"),
    Reference("quiz_attempt", "enrollment_id", "enrollment", "quiz attempts", "enrollment"),
    Reference("quiz_attempt", "package_id", "course_package", "quiz attempts", "package"),
    Reference("quiz_attempt", "quiz_item_id", "content_item", "quiz attempts", "quiz"),
    Reference("question_stat", "quiz_item_id", "content_item", "question statistics", "quiz"),
    Reference("product", "syllabus_id", "syllabus", "products", "course"),
    Reference("purchase", "product_id", "product", "purchases", "product"),
    Reference("purchase", "syllabus_id", "syllabus", "purchases", "course"),
    Reference("billing_event", "purchase_id", "purchase", "payment events", "purchase"),
    Reference("analytics_signal", "course_id", "syllabus", "analytics signals", "course"),
    Reference("content_suggestion", "course_id", "syllabus", "suggestions", "course"),
    Reference("content_suggestion", "target_id", "content_item", "suggestions", "lesson or quiz",
              "c.scope IN ('LESSON', 'QUIZ')"),
    Reference("content_suggestion", "target_id", "syllabus", "suggestions", "course or module",
              "c.scope IN ('COURSE', 'MODULE')"),
    Reference("regeneration_job", "course_id", "syllabus", "regeneration jobs", "course"),
    Reference("regeneration_job", "target_id", "content_item", "regeneration jobs", "item to regenerate"),
    Reference("regeneration_job", "suggestion_id", "content_suggestion", "regeneration jobs", "suggestion"),
    Reference("regeneration_job", "retry_of_job_id", "regeneration_job", "regeneration jobs", "job they retry"),
    Reference("regeneration_job", "retry_intent_id", "retry_intent", "regeneration jobs", "retry request"),
    Reference("regeneration_job", "output_id", "regeneration_output", "regeneration jobs", "output"),
    Reference("regeneration_output", "job_id", "regeneration_job", "regeneration outputs", "job"),
    Reference("regeneration_output", "content_item_id", "content_item", "regeneration outputs", "new draft"),
    Reference("regeneration_output", "source_item_id", "content_item", "regeneration outputs", "source item"),
    Reference("retry_intent", "job_id", "regeneration_job", "retry requests", "failed job"),
    Reference("retry_intent", "new_job_id", "regeneration_job", "retry requests", "job they started"),
    Reference("external_resource", "course_id", "course", "external resources", "course"),
    Reference("ai_spot_check", "course_id", "course", "AI spot checks", "course"),
    Reference("ai_usage", "run_id", "generation_run", "AI usage rows", "generation run"),
    Reference("tenant_stats", "job_id", "background_job", "workspace statistics", "job"),
)

# (table, trigger, what it guards). tests/quality/test_integrity.py fails when a migration creates a trigger
# this list does not name, so a new guard is checked from the day it exists.
OBSERVED_BY_ANALYTICS = ("course", "syllabus", "content_item", "generation_run", "course_package", "enrollment",
                         "lesson_progress", "quiz_attempt", "question_stat", "product", "purchase")
REQUIRED_TRIGGERS: tuple[tuple[str, str, str], ...] = (
    ("audit_log", "audit_log_insert_only", "audit rows are never changed or deleted"),
    ("audit_log", "audit_log_no_truncate", "the audit log cannot be truncated"),
    ("background_job", "background_job_state_machine", "job status moves only along its state machine"),
    ("syllabus", "syllabus_state_machine", "an approved syllabus is immutable"),
    ("syllabus", "syllabus_no_approved_delete", "an approved syllabus is never deleted"),
    ("content_item", "content_item_state_machine", "an approved content item is immutable"),
    ("content_item", "content_item_no_approved_delete", "an approved content item is never deleted"),
    ("content_item", "content_item_requires_approved_syllabus", "no content without an approved syllabus"),
    ("generation_run", "generation_run_requires_approved_syllabus", "no generation without an approved syllabus"),
    ("course_package", "course_package_guard", "a published package is immutable"),
    ("course_package", "course_package_no_truncate", "packages cannot be truncated"),
    ("enrollment", "enrollment_guard", "enrollments point at a published package"),
    ("package_export", "package_export_guard", "an export moves only along its states"),
    ("product", "product_guard", "a product sells a published course"),
    ("purchase", "purchase_guard", "a purchase moves only along its states"),
    ("billing_event", "billing_event_guard", "payment events are kept"),
    ("analytics_signal", "analytics_signal_guard", "only a signal's status changes"),
    ("content_suggestion", "content_suggestion_guard", "only a suggestion's status changes"),
    ("regeneration_job", "regeneration_job_guard", "regeneration jobs follow their state machine"),
    ("regeneration_job", "regeneration_job_starts_pending", "regeneration jobs start pending"),
    ("regeneration_output", "regeneration_output_frozen", "regeneration outputs are insert-only"),
    ("regeneration_output", "regeneration_output_no_truncate", "regeneration outputs cannot be truncated"),
    ("retry_intent", "retry_intent_guard", "a retry request is decided once"),
    ("quality_report", "quality_report_frozen", "stored quality reports are insert-only"),
    *((table, "analytics_observes_only", "analytics never writes here (invariant 7)")
      for table in OBSERVED_BY_ANALYTICS),
)
PARTITION_MONTHS = 3  # this month and the next two: the nightly job creates them ahead


@dataclass
class CheckResult:
    name: str
    passed_summary: str  # said when there is nothing to report
    findings: list[str] = field(default_factory=list)


async def check_integrity(today: dt.date | None = None) -> list[CheckResult]:
    today = today or dt.datetime.now(dt.UTC).date()
    async with independent_connection() as conn:
        return [
            await check_references(conn),
            await check_question_stats(conn),
            await check_migrations(conn),
            await check_triggers(conn),
            await check_partitions(conn, today),
        ]


async def check_references(conn: asyncpg.Connection) -> CheckResult:
    result = CheckResult("Orphans", f"none ({len(REFERENCES)} references checked)")
    for ref in REFERENCES:
        if not await _tables_exist(conn, ref.table, ref.parent):
            continue  # the migrations check names what is missing
        row = await conn.fetchrow(_reference_sql(ref))
        where, parent = f"{ref.table}.{ref.column}", _with_article(ref.parent_words)
        if row["missing"]:
            result.findings.append(f"{row['missing']} {ref.rows} point to {parent} that does not exist "
                                   f"({where}; e.g. {', '.join(row['missing_examples'])}).")
        if row["foreign"]:
            result.findings.append(f"{row['foreign']} {ref.rows} point to {parent} of another workspace "
                                   f"({where}; e.g. {', '.join(row['foreign_examples'])}).")
    return result


def _with_article(words: str) -> str:
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def _reference_sql(ref: Reference) -> str:
    # Names come from REFERENCES above, never from input. A child without tenant_id does not exist here; a
    # payment event may have none (an event naming no known workspace), which `<>` leaves out.
    return f"""
    SELECT count(*) FILTER (WHERE p.id IS NULL) AS missing,
           count(*) FILTER (WHERE p.tenant_id <> c.tenant_id) AS foreign,
           (array_agg(c.id::text ORDER BY c.id) FILTER (WHERE p.id IS NULL))[1:{EXAMPLES}] AS missing_examples,
           (array_agg(c.id::text ORDER BY c.id) FILTER (WHERE p.tenant_id <> c.tenant_id))[1:{EXAMPLES}]
               AS foreign_examples
    FROM {ref.table} c LEFT JOIN {ref.parent} p ON p.id = c.{ref.column}
    WHERE c.{ref.column} IS NOT NULL AND ({ref.condition})
    """


async def _tables_exist(conn: asyncpg.Connection, *tables: str) -> bool:
    return all([await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table) for table in tables])


async def check_question_stats(conn: asyncpg.Connection) -> CheckResult:
    # Imported here: the player's services pull in publishing; the other checks need none of it.
    from app.player.services import reconcile_question_stats

    result = CheckResult("Question statistics", "match the quiz attempts")
    # The recount reads each attempt's answer key from its package: with the package gone it cannot run.
    unreadable = await conn.fetchval("""
        SELECT count(*) FROM quiz_attempt a WHERE NOT EXISTS (SELECT 1 FROM course_package p WHERE p.id = a.package_id)
    """)
    if unreadable:
        result.findings.append(f"not recounted: {unreadable} quiz attempts belong to a package that does not exist "
                               "(see Orphans).")
        return result
    differences = await reconcile_question_stats()
    result.findings.extend(f"{line}." for line in differences)
    if differences:
        result.findings.append("Rewrite them from the attempts: `coursewright audit integrity --fix-question-stats`.")
    return result


async def check_migrations(conn: asyncpg.Connection) -> CheckResult:
    expected = expected_migrations()
    result = CheckResult("Migrations", f"all {len(expected)} applied")
    ran: set[str] = set()
    if await _tables_exist(conn, "migration"):
        ran = {r["name"] for r in await conn.fetch("SELECT name FROM migration WHERE app_name = $1", APP_NAME)}
    for name in sorted(expected - ran):
        result.findings.append(f"migration {name} is not applied: run `coursewright migrate`.")
    for name in sorted(ran - expected):
        result.findings.append(f"migration {name} is applied but not in this release's piccolo_migrations/ "
                               "(the database is newer than the code).")
    return result


async def check_triggers(conn: asyncpg.Connection) -> CheckResult:
    result = CheckResult("Database guards", f"all {len(REQUIRED_TRIGGERS)} triggers present and enabled")
    rows = await conn.fetch("""
        SELECT c.relname AS table_name, t.tgname AS trigger_name, t.tgenabled::text AS enabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND n.nspname = current_schema()""")
    present = {(r["table_name"], r["trigger_name"]): r["enabled"] for r in rows}
    for table, trigger, guards in REQUIRED_TRIGGERS:
        state = present.get((table, trigger))
        if state is None:
            result.findings.append(f"table {table} lacks trigger {trigger}, so nothing in the database ensures "
                                   f"that {guards}.")
        elif state in ("D", "R"):  # disabled, or fires only under session_replication_role = replica
            result.findings.append(f"trigger {trigger} on {table} is disabled, so nothing in the database "
                                   f"ensures that {guards}: ALTER TABLE {table} ENABLE TRIGGER {trigger}.")
    return result


def partition_months(today: dt.date, count: int = PARTITION_MONTHS) -> list[dt.date]:
    months, month = [], today.replace(day=1)
    for _ in range(count):
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


async def check_partitions(conn: asyncpg.Connection, today: dt.date) -> CheckResult:
    months = partition_months(today)
    result = CheckResult("Analytics partitions",
                         f"present for {', '.join(m.strftime('%Y-%m') for m in months)}")
    if not await _tables_exist(conn, "analytics_event"):
        result.passed_summary = "not checked: analytics is not installed"
        return result
    # Partitions are named analytics_event_YYYY_MM by analytics_ensure_partitions() (the nightly job).
    rows = await conn.fetch("""
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'analytics_event'::regclass""")
    names = {r["relname"] for r in rows}
    for month in months:
        if f"analytics_event_{month:%Y_%m}" not in names:
            result.findings.append(f"no analytics partition for {month:%Y-%m}: learner events of that month would "
                                   "be refused; run `coursewright analytics run` (it creates them).")
    return result


async def fix_question_stats() -> int:
    from app.player.services import reconcile_question_stats

    return len(await reconcile_question_stats(fix=True))


def render_report(results: list[CheckResult], generated_at: dt.datetime) -> str:
    total = sum(len(r.findings) for r in results)
    lines = [f"Coursewright integrity check, {generated_at:%Y-%m-%d %H:%M} UTC", ""]
    for r in results:
        if not r.findings:
            lines.append(f"{r.name}: {r.passed_summary}.")
            continue
        lines.append(f"{r.name}: {len(r.findings)} finding{'s' if len(r.findings) != 1 else ''}")
        lines.extend(f"  - {finding}" for finding in r.findings[:MAX_LINES])
        if len(r.findings) > MAX_LINES:
            lines.append(f"  … and {len(r.findings) - MAX_LINES} more.")
    lines += ["", f"{total} finding{'s' if total != 1 else ''}." if total else "No findings."]
    return "\n".join(lines) + "\n"
