"""Throttling must not let a stranger lock an account's owner out (issue 8, finding 5).

These tests need distinct client addresses, which the app only takes from X-Forwarded-For behind a
trusted proxy: they run against their own server with TRUSTED_PROXY_HOPS=1, a short delay (so ten
failures do not take ten seconds) and a per-account ceiling low enough to reach.
"""

from collections.abc import AsyncIterator, Iterator

import pytest

from app.accounts.tables import AuthSession, LoginFailure
from tests.conftest import PASSWORD, Client, LiveServer, start_server

ACCOUNT_CEILING = 15


@pytest.fixture(scope="module")
def proxied_server(migrated: None) -> Iterator[LiveServer]:
    server = start_server("lockout", TRUSTED_PROXY_HOPS="1", LOGIN_DELAY_BASE_MS="10", LOGIN_DELAY_MAX_MS="40",
                          LOGIN_MAX_FAILURES_PER_ACCOUNT=str(ACCOUNT_CEILING))
    yield server
    server.stop()


@pytest.fixture
async def from_ip(proxied_server: LiveServer) -> AsyncIterator:
    clients: list[Client] = []

    def make(ip: str) -> Client:
        client = Client(proxied_server.url)
        client.http.headers["X-Forwarded-For"] = ip
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def _fail(client: Client, email: str, times: int) -> None:
    for _ in range(times):
        response = await client.post("/login", {"email": email, "password": "wrong-password"})
        assert response.status_code == 400, response.text[:300]


async def test_it_lets_the_owner_in_from_elsewhere_while_a_stranger_keeps_failing(from_ip, personas):
    attacker, owner = from_ip("203.0.113.66"), from_ip("198.51.100.7")
    await _fail(attacker, personas.owner.email, 10)
    response = await owner.post("/login", {"email": personas.owner.email, "password": PASSWORD})
    assert response.status_code == 303
    assert await AuthSession.count().where(AuthSession.user_id == personas.owner.user_id) == 1
    assert await LoginFailure.count().where(LoginFailure.ip == "203.0.113.66") == 10


async def test_it_throttles_the_failing_pair_even_with_the_right_password(from_ip, personas):
    attacker = from_ip("203.0.113.67")
    await _fail(attacker, personas.owner.email, 10)
    blocked = await attacker.post("/login", {"email": personas.owner.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= 301
    assert "Too many failed sign-in attempts" in blocked.text
    assert attacker.session_cookie is None
    assert await AuthSession.count().where(AuthSession.user_id == personas.owner.user_id) == 0
    # The same address may still sign in to another account: only the pair is throttled.
    other = await attacker.post("/login", {"email": personas.learner.email, "password": PASSWORD})
    assert other.status_code == 303


async def test_it_throttles_an_account_failing_from_many_addresses_at_its_ceiling(from_ip, personas):
    for i in range(ACCOUNT_CEILING):
        await _fail(from_ip(f"203.0.113.{100 + i}"), personas.admin.email, 1)
    assert await LoginFailure.count().where(LoginFailure.email == personas.admin.email) == ACCOUNT_CEILING
    blocked = await from_ip("198.51.100.8").post("/login", {"email": personas.admin.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert await AuthSession.count().where(AuthSession.user_id == personas.admin.user_id) == 0


async def test_it_throttles_an_address_that_guesses_many_accounts(from_ip, personas):
    guesser = from_ip("203.0.113.200")
    for i in range(30):
        await _fail(guesser, f"guess{i}@example.test", 1)
    blocked = await guesser.post("/login", {"email": personas.admin.email, "password": PASSWORD})
    assert blocked.status_code == 429
    # Somebody else signs in to that account normally.
    allowed = await from_ip("198.51.100.9").post("/login", {"email": personas.admin.email, "password": PASSWORD})
    assert allowed.status_code == 303
