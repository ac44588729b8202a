"""`coursewright audit integrity` as an operator runs it: a real process against its own database (migrated and
seeded with the demo), with one fault put in at a time and taken out again, so every test starts clean."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import asyncpg
import pytest

from app.quality.integrity import REQUIRED_TRIGGERS, partition_months
from tests.conftest import ROOT, create_database, fetch_rows, run_cli


@pytest.fixture(scope="module")
async def demo_db() -> str:
    url = await create_database("integrity")
    assert run_cli({"DATABASE_URL": url}, "migrate").returncode == 0
    seeded = run_cli({"DATABASE_URL": url}, "seed-demo", timeout=300)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    return url


def integrity(url: str, *args: str):
    return run_cli({"DATABASE_URL": url}, "audit", "integrity", *args)


async def execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_it_passes_on_the_migrated_demo_install_and_writes_the_report(demo_db, tmp_path):
    out = tmp_path / "integrity.txt"
    result = integrity(demo_db, "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings." in result.stdout
    assert re.search(r"Migrations: all \d+ applied\.", result.stdout)
    assert f"Database guards: all {len(REQUIRED_TRIGGERS)} triggers present and enabled." in result.stdout
    assert out.read_text() == result.stdout


async def test_it_finds_a_row_whose_parent_is_gone(demo_db):
    # lesson_progress has a foreign key to enrollment: a restore without constraints, or a hand-made delete
    # with triggers off, is how such a row appears. Replica mode skips the key, as pg_restore --disable-triggers does.
    [tenant] = await fetch_rows(demo_db, "SELECT id FROM tenant WHERE slug = 'demo'")
    enrollment_id = uuid.uuid4()
    await execute(demo_db, f"""
        SET session_replication_role = replica;
        INSERT INTO lesson_progress (tenant_id, enrollment_id, module_index, lesson_index, completed_via)
        VALUES ('{tenant["id"]}', '{enrollment_id}', 1, 1, 'BUTTON')""")
    try:
        result = integrity(demo_db)
        assert result.returncode == 1
        assert re.search(r"1 lesson progress rows point to an enrollment that does not exist "
                         r"\(lesson_progress\.enrollment_id; e\.g\. \d+\)", result.stdout)
    finally:
        await execute(demo_db, f"DELETE FROM lesson_progress WHERE enrollment_id = '{enrollment_id}'")
    assert integrity(demo_db).returncode == 0


async def test_it_finds_a_row_that_points_into_another_workspace(demo_db):
    [northwind] = await fetch_rows(demo_db, "SELECT id FROM tenant WHERE slug = 'northwind'")
    [course] = await fetch_rows(demo_db, "SELECT c.id FROM course c JOIN tenant t ON t.id = c.tenant_id "
                                         "WHERE t.slug = 'demo' LIMIT 1")
    await execute(demo_db, f"""
        INSERT INTO external_resource (id, tenant_id, course_id, module_index, title, url, kind, created_at)
        VALUES (gen_random_uuid(), '{northwind["id"]}', '{course["id"]}', 1, 'Leaked', 'https://example.org',
                'ARTICLE', now())""")
    try:
        result = integrity(demo_db)
        assert result.returncode == 1
        assert "1 external resources point to a course of another workspace (external_resource.course_id" \
            in result.stdout
        assert "Orphans: 1 finding" in result.stdout
    finally:
        await execute(demo_db, "DELETE FROM external_resource WHERE title = 'Leaked'")


async def test_it_finds_a_dropped_and_a_disabled_trigger(demo_db):
    await execute(demo_db, "DROP TRIGGER quality_report_frozen ON quality_report",
                  "ALTER TABLE audit_log DISABLE TRIGGER audit_log_insert_only")
    try:
        result = integrity(demo_db)
        assert result.returncode == 1
        assert "table quality_report lacks trigger quality_report_frozen" in result.stdout
        assert "trigger audit_log_insert_only on audit_log is disabled" in result.stdout
        assert "Database guards: 2 findings" in result.stdout
    finally:
        await execute(demo_db, "CREATE TRIGGER quality_report_frozen BEFORE UPDATE OR DELETE ON quality_report "
                               "FOR EACH ROW EXECUTE FUNCTION quality_report_frozen()",
                      "ALTER TABLE audit_log ENABLE TRIGGER audit_log_insert_only")
    assert integrity(demo_db).returncode == 0


async def test_it_finds_a_missing_analytics_partition(demo_db):
    next_month = partition_months(dt.datetime.now(dt.UTC).date())[1]
    name = f"analytics_event_{next_month:%Y_%m}"
    [bound] = await fetch_rows(demo_db, "SELECT pg_get_expr(relpartbound, oid) AS bound FROM pg_class "
                                        "WHERE relname = $1", name)
    await execute(demo_db, f"ALTER TABLE analytics_event DETACH PARTITION {name}")
    try:
        result = integrity(demo_db)
        assert result.returncode == 1
        assert f"no analytics partition for {next_month:%Y-%m}" in result.stdout
    finally:
        await execute(demo_db, f"ALTER TABLE analytics_event ATTACH PARTITION {name} {bound['bound']}")


async def test_it_finds_a_migration_that_is_not_applied(demo_db):
    [last] = await fetch_rows(demo_db, "SELECT * FROM migration ORDER BY name DESC LIMIT 1")
    await execute(demo_db, f"DELETE FROM migration WHERE id = {last['id']}")
    try:
        result = integrity(demo_db)
        assert result.returncode == 1
        assert f"migration {last['name']} is not applied: run `coursewright migrate`." in result.stdout
    finally:
        conn = await asyncpg.connect(demo_db)
        try:
            await conn.execute("INSERT INTO migration (id, name, app_name, ran_on) VALUES ($1, $2, $3, $4)",
                               last["id"], last["name"], last["app_name"], last["ran_on"])
        finally:
            await conn.close()


async def test_it_finds_question_statistics_that_disagree_with_the_attempts_and_rewrites_them(demo_db):
    # Counted answers nobody gave: the recount from quiz_attempt says zero.
    [quiz] = await fetch_rows(demo_db, "SELECT id, tenant_id FROM content_item WHERE kind = 'QUIZ' "
                                       "AND status = 'APPROVED' LIMIT 1")
    await execute(demo_db, f"""INSERT INTO question_stat (tenant_id, quiz_item_id, question_index, attempts, correct,
                                                         total_time_ms)
                               VALUES ('{quiz["tenant_id"]}', '{quiz["id"]}', 0, 3, 1, 9000)""")
    result = integrity(demo_db)
    assert result.returncode == 1
    assert f"quiz {quiz['id']} question 1: counted (3, 1, 9000), attempts say (0, 0, 0)." in result.stdout
    fixed = integrity(demo_db, "--fix-question-stats")
    assert fixed.returncode == 0, fixed.stdout
    assert "Rewrote 1 question statistic(s) from the quiz attempts." in fixed.stdout
    [row] = await fetch_rows(demo_db, "SELECT attempts, correct, total_time_ms FROM question_stat "
                                      "WHERE quiz_item_id = $1", quiz["id"])
    assert tuple(row) == (0, 0, 0)


def test_it_checks_every_trigger_a_migration_creates():
    created = set()
    for path in (ROOT / "piccolo_migrations").glob("*.py"):
        created |= set(re.findall(r"CREATE TRIGGER (\w+)\b[^;]*?\bON (\w+)", path.read_text()))
    checked = {(trigger, table) for table, trigger, _ in REQUIRED_TRIGGERS}
    plain = {pair for pair in created if pair[0] != "analytics_observes_only"}
    assert sorted(plain - checked) == []
    assert {table for trigger, table in checked if trigger == "analytics_observes_only"} >= {
        "content_item", "course_package", "enrollment", "quiz_attempt", "question_stat"}
