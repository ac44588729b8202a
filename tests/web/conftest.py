"""Fixtures of the web tests: the shared test world (tests/web/world.py) and its admin, signed in once per
module."""

from __future__ import annotations

import pytest

from tests.conftest import Client, LiveServer
from tests.web.world import World, build_world


@pytest.fixture(scope="module")
async def world(live_server: LiveServer) -> World:
    return await build_world(live_server.url)


@pytest.fixture(scope="module")
async def admin(live_server: LiveServer, world: World):
    client = Client(live_server.url)
    await client.login(world.admin.email)
    yield client
    await client.aclose()
