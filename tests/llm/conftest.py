"""LLM-layer tests are plain unit and HTTP-edge tests: no database, no app server.

The project conftest's autouse fixtures migrate the test database and clear login failures; they are
replaced here by no-ops so these tests neither need nor wait for PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from app.settings import Settings, load_settings
from tests.llm.fake_openai import FakeOpenAI


@pytest.fixture(scope="session", autouse=True)
def migrated() -> None:
    return None


@pytest.fixture(autouse=True)
def clear_login_failures() -> None:
    return None


def make_settings(tmp_path: Path, **overrides) -> Settings:
    settings = load_settings({"SECRET_KEY": "s" * 48, "DATA_DIR": str(tmp_path)})
    return msgspec.structs.replace(settings, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake
