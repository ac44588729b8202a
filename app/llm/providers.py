"""Choosing the provider: settings.llm_provider names it; one instance per configuration per process."""

from __future__ import annotations

from app.llm.base import LLMProvider
from app.settings import Settings, get_settings

_providers: dict[tuple, LLMProvider] = {}


def get_provider(settings: Settings | None = None) -> LLMProvider:
    settings = settings or get_settings()
    # Keyed by what shapes the provider, so tests that build their own Settings never get a stale one.
    key = (settings.llm_provider, settings.llm_model, settings.openai_base_url, settings.openai_api_key,
           settings.llm_timeout_seconds, settings.llm_max_retries, settings.mock_llm_latency_ms)
    if key not in _providers:
        _providers[key] = _build(settings)
    return _providers[key]


def _build(settings: Settings) -> LLMProvider:
    if settings.llm_provider == "openai":
        # Imported here: the SDK is slow to import and the mock (the default) never needs it.
        from app.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(settings)
    from app.llm.mock import MockProvider

    return MockProvider(settings)
