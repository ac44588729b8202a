"""LLM_PRICES (settings, O5): entries add to or override the built-in price table; a malformed entry stops
the process at start with a message naming the variable and the entry; the prices given are the ones the
cost estimates of a running server use."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from decimal import Decimal

import pytest

from app.settings import DEFAULT_LLM_PRICES, SettingsError, load_settings
from tests.authoring.helpers import BRIEF
from tests.conftest import BIN, PASSWORD, ROOT, Client, create_database, fetch_rows, start_server


def _prices(tmp_path, raw: str) -> dict[str, tuple[float, float]]:
    return load_settings({"DATA_DIR": str(tmp_path), "LLM_PRICES": raw}).llm_prices


def test_it_adds_and_overrides_entries_and_keeps_the_rest_of_the_table(tmp_path):
    prices = _prices(tmp_path, " our-proxy-alias = 1.5 / 3 , gpt-4o=2/9,, ")
    assert prices["our-proxy-alias"] == (1.5, 3.0)
    assert prices["gpt-4o"] == (2.0, 9.0)  # overridden
    assert prices["gpt-4o-mini"] == DEFAULT_LLM_PRICES["gpt-4o-mini"]  # kept
    assert set(prices) == set(DEFAULT_LLM_PRICES) | {"our-proxy-alias"}
    assert _prices(tmp_path, "free-model=0/0")["free-model"] == (0.0, 0.0)


def test_it_uses_the_built_in_table_when_unset_or_blank(tmp_path):
    assert load_settings({"DATA_DIR": str(tmp_path)}).llm_prices == DEFAULT_LLM_PRICES
    assert _prices(tmp_path, "   ") == DEFAULT_LLM_PRICES
    # Parsing never changes the shared default table.
    _prices(tmp_path, "gpt-4o=99/99")
    assert DEFAULT_LLM_PRICES["gpt-4o"] == (2.50, 10.00)


@pytest.mark.parametrize("entry", [
    "gpt-4o-mini", "gpt-4o-mini=0.15", "gpt-4o-mini=0.15/", "gpt-4o-mini=cheap/dear", "gpt-4o-mini=0.15/0.60/1",
    "=0.15/0.60", "gpt-4o-mini=-0.15/0.60", "gpt-4o-mini=nan/0.60", "gpt-4o-mini=0.15/inf",
])
def test_it_refuses_a_malformed_entry_naming_it(tmp_path, entry):
    with pytest.raises(SettingsError, match=r"LLM_PRICES entries look like gpt-4o-mini=0\.15/0\.60") as caught:
        _prices(tmp_path, f"gpt-4.1=2/8,{entry}")
    assert repr(entry) in str(caught.value)


@pytest.mark.parametrize("command", ["migrate", "worker"])
def test_a_malformed_entry_stops_the_command_at_start_with_a_clear_message(tmp_path, command):
    env = {**os.environ, "LLM_PRICES": "gpt-4o-mini=0.15;0.60", "DATA_DIR": str(tmp_path)}
    result = subprocess.run([str(BIN / "coursewright"), command], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Configuration error: LLM_PRICES entries look like gpt-4o-mini=0.15/0.60" in result.stderr
    assert "'gpt-4o-mini=0.15;0.60'" in result.stderr and "Traceback" not in result.stderr





async def test_a_server_estimates_costs_with_the_prices_it_was_given():
    # Its own database: the shared live server's worker must not answer this server's calls at other prices.
    url = await create_database("prices")
    env = {"DATABASE_URL": url, "LLM_PRICES": "mock-1=1000/2000"}
    run = {**os.environ, **env}
    assert subprocess.run([str(BIN / "coursewright"), "migrate"], env=run, cwd=ROOT, capture_output=True,
                          timeout=120).returncode == 0
    created = subprocess.run([str(BIN / "coursewright"), "create-admin", "--email", "ada@prices.test", "--name",
                              "Ada", "--tenant", "prices", "--password", PASSWORD], env=run, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    server = start_server("prices", **env)
    client = Client(server.url)
    try:
        await client.login("ada@prices.test")
        assert (await client.post("/admin/courses", BRIEF)).status_code == 303
        deadline = time.monotonic() + 90  # generous: CI measures coverage in the server too
        while not (rows := await fetch_rows(url, "SELECT model, input_tokens, output_tokens, cost_usd FROM ai_usage "
                                             "WHERE finished_at IS NOT NULL")):
            assert time.monotonic() < deadline, "the syllabus call never finished"
            await asyncio.sleep(0.1)
        [call] = rows
        assert call["model"] == "mock-1" and call["input_tokens"] > 0 and call["output_tokens"] > 0
        expected = (Decimal(1000) * call["input_tokens"] + Decimal(2000) * call["output_tokens"]) / 1_000_000
        assert call["cost_usd"] == expected and expected > 0
        page = await client.get("/admin/ai-usage")
        assert page.status_code == 200 and f"${expected:.4f}" in page.text
    finally:
        await client.aclose()
        server.stop()
