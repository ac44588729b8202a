"""OpenAIProvider against FakeOpenAI with the real SDK: request shape, usage, retries, error mapping."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from app.authoring.schemas import Quiz
from app.llm.base import CompletionRequest, LLMError, Message, ProviderUnavailable, RateLimited, TimedOut
from app.llm.openai_provider import OpenAIProvider
from app.llm.strict_schema import schema_name, strict_schema
from tests.llm.conftest import make_settings

QUIZ_JSON = json.dumps({"questions": [
    {"question": f"Question number {i}?", "options": ["a", "b", "c", "d"], "correct_index": i % 4,
     "explanation": "Because the lesson says so."} for i in range(3)
]})


def quiz_request(**overrides) -> CompletionRequest:
    return CompletionRequest(
        operation="quiz",
        messages=[Message("system", "You write quizzes."), Message("user", "Five questions, please.")],
        schema_name=schema_name(Quiz), json_schema=strict_schema(Quiz), temperature=0.2, seed=42, **overrides,
    )


@pytest.fixture
async def provider_for(tmp_path, fake_openai):
    providers = []

    def make(**overrides) -> OpenAIProvider:
        config = {"llm_provider": "openai", "openai_api_key": "sk-test", "openai_base_url": fake_openai.base_url,
                  "llm_model": "gpt-4o-mini", "llm_timeout_seconds": 5.0, "llm_max_retries": 0, **overrides}
        providers.append(OpenAIProvider(make_settings(tmp_path, **config)))
        return providers[-1]

    yield make
    for provider in providers:
        await provider.aclose()


async def test_it_returns_the_content_and_token_usage(provider_for, fake_openai):
    fake_openai.reply(QUIZ_JSON, model="gpt-4o-mini-2024-07-18", usage=(120, 45))
    provider = provider_for()
    completion = await provider.complete(quiz_request())
    assert completion.text == QUIZ_JSON
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert (completion.input_tokens, completion.output_tokens) == (120, 45)
    assert provider.name == "openai" and provider.model == "gpt-4o-mini"


async def test_it_sends_model_temperature_seed_and_a_strict_json_schema(provider_for, fake_openai):
    fake_openai.reply(QUIZ_JSON)
    provider = provider_for()
    await provider.complete(quiz_request())
    [body] = fake_openai.requests
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0.2 and body["seed"] == 42
    assert body["messages"] == [{"role": "system", "content": "You write quizzes."},
                                {"role": "user", "content": "Five questions, please."}]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "quiz", "schema": strict_schema(Quiz), "strict": True},
    }
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-test"
    assert "max_completion_tokens" not in body  # no limit asked for: the model's own maximum applies


async def test_it_lets_the_sdk_retry_a_429_then_succeeds(provider_for, fake_openai):
    fake_openai.rate_limit(retry_after=0.01).rate_limit(retry_after=0.01).reply(QUIZ_JSON)
    provider = provider_for(llm_max_retries=2)
    started = time.monotonic()
    completion = await provider.complete(quiz_request())
    assert completion.text == QUIZ_JSON
    assert len(fake_openai.requests) == 3 and fake_openai.pending == 0
    assert time.monotonic() - started < 2  # Retry-After was honoured, not the default backoff


async def test_it_reports_a_rate_limit_that_outlasts_the_retries(provider_for, fake_openai):
    fake_openai.rate_limit().rate_limit()
    provider = provider_for(llm_max_retries=1)
    with pytest.raises(RateLimited) as caught:
        await provider.complete(quiz_request())
    assert caught.value.kind == "rate_limited"
    assert len(fake_openai.requests) == 2


async def test_it_reports_a_timeout(provider_for, fake_openai):
    fake_openai.stall(5)
    provider = provider_for(llm_timeout_seconds=0.5, llm_max_retries=0)
    started = time.monotonic()
    with pytest.raises(TimedOut) as caught:
        await provider.complete(quiz_request())
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 3


async def test_it_reports_a_persistent_server_error_as_unavailable(provider_for, fake_openai):
    fake_openai.server_error(500).server_error(503)
    provider = provider_for(llm_max_retries=1)
    with pytest.raises(ProviderUnavailable, match="503") as caught:
        await provider.complete(quiz_request())
    assert caught.value.kind == "unavailable"
    assert len(fake_openai.requests) == 2


async def test_it_recovers_from_a_single_server_error(provider_for, fake_openai):
    fake_openai.server_error(502).reply(QUIZ_JSON)
    provider = provider_for(llm_max_retries=1)
    completion = await provider.complete(quiz_request())
    assert completion.text == QUIZ_JSON


async def test_it_reports_an_unreachable_server_as_unavailable(provider_for):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    provider = provider_for(openai_base_url=f"http://127.0.0.1:{closed_port}/v1")
    with pytest.raises(ProviderUnavailable, match="cannot reach OpenAI"):
        await provider.complete(quiz_request())


async def test_it_reports_a_rejected_request_without_retrying(provider_for, fake_openai):
    fake_openai.error(400, "Invalid schema for response_format 'quiz'")
    provider = provider_for(llm_max_retries=2)
    with pytest.raises(LLMError, match="Invalid schema") as caught:
        await provider.complete(quiz_request())
    assert caught.value.kind == "rejected"
    assert len(fake_openai.requests) == 1


async def test_it_reports_a_refusal(provider_for, fake_openai):
    fake_openai.refuse("I'm sorry, I can't help with that.")
    provider = provider_for()
    with pytest.raises(LLMError, match="can't help") as caught:
        await provider.complete(quiz_request())
    assert caught.value.kind == "refused"


async def test_it_reports_empty_content(provider_for, fake_openai):
    fake_openai.reply("")
    provider = provider_for()
    with pytest.raises(LLMError) as caught:
        await provider.complete(quiz_request())
    assert caught.value.kind == "empty"


def test_it_survives_being_used_from_two_event_loops(tmp_path, fake_openai):
    # get_provider() caches one provider per process; CLI commands run one asyncio.run() after another.
    settings = make_settings(tmp_path, llm_provider="openai", openai_api_key="sk-test", llm_max_retries=0,
                             openai_base_url=fake_openai.base_url)
    provider = OpenAIProvider(settings)
    fake_openai.reply(QUIZ_JSON).reply(QUIZ_JSON)
    assert asyncio.run(provider.complete(quiz_request())).text == QUIZ_JSON
    assert asyncio.run(provider.complete(quiz_request())).text == QUIZ_JSON


async def test_it_sends_the_completion_limit_and_reports_a_cut_off_answer(provider_for, fake_openai):
    fake_openai.reply(QUIZ_JSON[:40], finish_reason="length", usage=(300, 4000))
    completion = await provider_for().complete(quiz_request(max_completion_tokens=4000))
    assert fake_openai.requests[0]["max_completion_tokens"] == 4000
    assert completion.finish_reason == "length" and completion.text == QUIZ_JSON[:40]
    assert completion.output_tokens == 4000


async def test_it_reports_an_empty_cut_off_answer_as_cut_off_not_empty(provider_for, fake_openai):
    fake_openai.reply("", finish_reason="length", usage=(300, 16))
    completion = await provider_for().complete(quiz_request(max_completion_tokens=16))
    assert completion.finish_reason == "length" and completion.text == ""


async def test_it_carries_the_usage_of_a_refusal_and_an_empty_answer(provider_for, fake_openai):
    fake_openai.refuse("I can't help with that.", model="gpt-4o-mini-2024-07-18", usage=(900, 12))
    fake_openai.reply("", model="gpt-4o-mini-2024-07-18", usage=(900, 0))
    provider = provider_for()
    for kind, output_tokens in (("refused", 12), ("empty", 0)):
        with pytest.raises(LLMError) as caught:
            await provider.complete(quiz_request())
        assert caught.value.kind == kind
        assert (caught.value.input_tokens, caught.value.output_tokens) == (900, output_tokens)
        assert caught.value.model == "gpt-4o-mini-2024-07-18" and caught.value.http_attempts == 1


async def test_it_counts_every_http_attempt_the_sdk_makes(provider_for, fake_openai):
    fake_openai.rate_limit().server_error(500).reply(QUIZ_JSON)
    completion = await provider_for(llm_max_retries=2).complete(quiz_request())
    assert completion.http_attempts == 3


async def test_it_counts_timed_out_attempts_of_a_failed_call(provider_for, fake_openai):
    fake_openai.stall(5).stall(5)
    with pytest.raises(TimedOut) as caught:
        await provider_for(llm_timeout_seconds=0.3, llm_max_retries=1).complete(quiz_request())
    assert caught.value.http_attempts == 2 and caught.value.input_tokens == 0


async def test_it_attributes_attempts_to_the_call_that_made_them(provider_for, fake_openai):
    # Two calls share one client: whichever meets the 500 retries, and only its count shows it.
    fake_openai.server_error(500).reply(QUIZ_JSON).reply(QUIZ_JSON)
    provider = provider_for(llm_max_retries=1)
    first, second = await asyncio.gather(provider.complete(quiz_request()), provider.complete(quiz_request()))
    assert sorted([first.http_attempts, second.http_attempts]) == [1, 2]
