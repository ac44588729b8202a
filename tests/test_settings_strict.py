"""Strict settings (STYLE 6): every value that does not parse, is out of range or is unsafe in production
stops the process with a message naming the variable; values that do parse are normalised.
(tests/test_settings.py has the secrets; tests/llm/test_prices_parsing.py has LLM_PRICES.)"""

from __future__ import annotations

import pytest

from app.settings import SettingsError, load_settings

STRONG = "k" * 48


@pytest.fixture
def base(tmp_path) -> dict[str, str]:
    return {"DATA_DIR": str(tmp_path)}


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("PORT", "0", "PORT must be between 1 and 65535, got 0"),
    ("PORT", "70000", "PORT must be between 1 and 65535, got 70000"),
    ("GENERATION_CONCURRENCY", "0", "GENERATION_CONCURRENCY must be between 1 and 64, got 0"),
    ("GENERATION_LEASE_SECONDS", "3", "GENERATION_LEASE_SECONDS must be between 4 and 3600, got 3"),
    ("GENERATION_MAX_LOST_ATTEMPTS", "many", "GENERATION_MAX_LOST_ATTEMPTS must be an integer, got 'many'"),
    ("SESSION_TTL_HOURS", "-1", "SESSION_TTL_HOURS must be between 1 and 2160, got -1"),
    ("LLM_TEMPERATURE", "warm", "LLM_TEMPERATURE must be a number, got 'warm'"),
    ("LLM_TEMPERATURE", "0.9", "LLM_TEMPERATURE must be between 0.0 and 0.3, got 0.9"),
    ("LLM_TIMEOUT_SECONDS", "0.5", "LLM_TIMEOUT_SECONDS must be between 1 and 600, got 0.5"),
    ("LLM_PROVIDER", "anthropic", "LLM_PROVIDER must be one of mock, openai; got 'anthropic'"),
    ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of json, console; got 'xml'"),
    ("COURSEWRIGHT_ENV", "staging", "COURSEWRIGHT_ENV must be one of development, production; got 'staging'"),
    ("DATABASE_URL", "mysql://db/x", "DATABASE_URL must start with one of postgres://, postgresql://"),
    ("OPENAI_BASE_URL", "ftp://proxy", "OPENAI_BASE_URL must start with one of http://, https://"),
    ("COOKIE_SECURE", "maybe", "COOKIE_SECURE must be a boolean"),
])
def test_it_names_the_variable_and_the_value_it_refuses(base, name, raw, message):
    with pytest.raises(SettingsError) as caught:
        load_settings({**base, name: raw})
    assert message in str(caught.value)


def test_it_normalises_what_it_accepts(base, tmp_path):
    settings = load_settings({**base, "PORT": " 8080 ", "LOG_LEVEL": "debug", "LOG_FORMAT": "Console",
                              "LLM_PROVIDER": " MOCK ", "MAINTENANCE_MODE": "Yes", "COOKIE_SECURE": "off",
                              "LLM_TEMPERATURE": "0", "QUEUE_URL": " redis://localhost:6379/0 ",
                              "MOCK_LLM_CALL_LOG": str(tmp_path / "calls.log"), "GENERATION_CONCURRENCY": ""})
    assert (settings.port, settings.log_level, settings.log_format, settings.llm_provider) == (
        8080, "DEBUG", "console", "mock")
    assert (settings.maintenance_mode, settings.cookie_secure, settings.llm_temperature) == (True, False, 0.0)
    assert settings.queue_url == "redis://localhost:6379/0"
    assert settings.mock_llm_call_log == (tmp_path / "calls.log").resolve()
    assert settings.generation_concurrency == 8  # blank means the default
    assert settings.llm_model == "mock-1"


def test_it_needs_an_api_key_for_openai_and_picks_an_openai_model(base, tmp_path):
    with pytest.raises(SettingsError, match="LLM_PROVIDER=openai needs OPENAI_API_KEY"):
        load_settings({**base, "LLM_PROVIDER": "openai"})
    key_file = tmp_path / "openai-key"
    key_file.write_text("sk-from-a-file\n")
    settings = load_settings({**base, "LLM_PROVIDER": "openai", "OPENAI_API_KEY_FILE": str(key_file)})
    assert (settings.openai_api_key, settings.llm_model) == ("sk-from-a-file", "gpt-4o-mini")


def test_it_refuses_development_conveniences_in_production(base):
    production = {**base, "COURSEWRIGHT_ENV": "production", "SECRET_KEY": STRONG, "METRICS_TOKEN": STRONG,
                  "STRIPE_SECRET_KEY": "sk_live_" + "s" * 24, "STRIPE_WEBHOOK_SECRET": "whsec_" + "w" * 24}
    with pytest.raises(SettingsError, match="DATABASE_URL is required in production"):
        load_settings(production)
    with pytest.raises(SettingsError, match="BENCH_REFERENCE_ENDPOINT is for benchmarks only"):
        load_settings({**production, "DATABASE_URL": "postgresql://db/x", "BENCH_REFERENCE_ENDPOINT": "true"})
    with pytest.raises(SettingsError, match="SECRET_KEY is required in production"):
        load_settings({**production, "DATABASE_URL": "postgresql://db/x", "SECRET_KEY": "change-me"})
    settings = load_settings({**production, "DATABASE_URL": "postgresql://db/x"})
    # Production defaults: secure cookies, no demo data, the worker runs as its own process.
    assert (settings.cookie_secure, settings.seed_demo, settings.worker_in_process) == (True, False, False)
    assert settings.is_production and not load_settings(base).is_production
