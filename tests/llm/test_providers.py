from __future__ import annotations

from app.llm.mock import MockProvider
from app.llm.openai_provider import OpenAIProvider
from app.llm.providers import get_provider
from tests.llm.conftest import make_settings


def test_it_uses_the_mock_by_default_once_per_process(settings):
    provider = get_provider(settings)
    assert isinstance(provider, MockProvider) and provider.model == "mock-1"
    assert get_provider(settings) is provider


def test_it_uses_openai_when_configured(tmp_path):
    settings = make_settings(tmp_path, llm_provider="openai", openai_api_key="sk-test", llm_model="gpt-4o-mini",
                             openai_base_url="http://127.0.0.1:9/v1")
    provider = get_provider(settings)
    assert isinstance(provider, OpenAIProvider) and provider.model == "gpt-4o-mini"
    assert str(provider.client.base_url).startswith("http://127.0.0.1:9/v1")
    assert get_provider(settings) is provider


def test_a_different_configuration_gets_its_own_provider(tmp_path):
    slow = get_provider(make_settings(tmp_path, mock_llm_latency_ms=250))
    assert isinstance(slow, MockProvider) and slow.latency_ms == 250
    assert get_provider(make_settings(tmp_path)) is not slow
