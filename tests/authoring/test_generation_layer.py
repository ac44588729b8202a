"""generate(): parse -> validate -> repair -> usage rows, with the mock provider and with the real
openai client against a local fake OpenAI endpoint."""

import json
import uuid
from decimal import Decimal

import msgspec
import pytest

from app.authoring.schemas import Lesson, Quiz
from app.llm.base import TimedOut
from app.llm.generate import GenerationFailed, generate
from app.llm.mock import MockProvider
from app.llm.openai_provider import OpenAIProvider
from app.llm.tables import AIUsage
from app.settings import get_settings
from tests.llm.fake_openai import FakeOpenAI


def _lesson_variables(title_suffix: str = "") -> dict:
    from app.llm.prompts import load_prompt

    variables = dict(load_prompt("lesson").example_input)
    variables["lesson"] = {**variables["lesson"], "title": variables["lesson"]["title"] + title_suffix}
    return variables


async def _usage(tenant_id: uuid.UUID) -> list[dict]:
    return await AIUsage.select().where(AIUsage.tenant_id == tenant_id).order_by(AIUsage.id)


async def test_it_repairs_invalid_json_once_and_records_both_calls():
    tenant = uuid.uuid4()
    result = await generate("lesson", Lesson, _lesson_variables(" [mock:invalid_json]"), tenant_id=tenant,
                            provider=MockProvider(get_settings()))
    assert isinstance(result.value, Lesson)
    assert result.metadata.repairs == 1 and result.metadata.validation_passed
    rows = await _usage(tenant)
    assert [r["success"] for r in rows] == [False, True]
    assert "invalid JSON" in rows[0]["error"]
    assert all(r["prompt_version"].startswith("lesson/v2+") for r in rows)
    assert result.metadata.input_tokens == sum(r["input_tokens"] for r in rows)


async def test_it_repairs_a_schema_violation():
    tenant = uuid.uuid4()
    result = await generate("lesson", Lesson, _lesson_variables(" [mock:schema]"), tenant_id=tenant,
                            provider=MockProvider(get_settings()))
    assert result.metadata.repairs == 1
    rows = await _usage(tenant)
    assert "schema violation" in rows[0]["error"]


async def test_it_gives_up_after_two_repairs_with_readable_errors():
    tenant = uuid.uuid4()
    with pytest.raises(GenerationFailed) as excinfo:
        await generate("lesson", Lesson, _lesson_variables(" [mock:invalid_json*3]"), tenant_id=tenant,
                       provider=MockProvider(get_settings()))
    errors = excinfo.value.errors
    assert len(errors) == 3
    assert errors[0].startswith("attempt 1: invalid JSON") and errors[2].startswith("attempt 3: invalid JSON")
    assert excinfo.value.metadata.repairs == 2 and not excinfo.value.metadata.validation_passed
    assert [r["success"] for r in await _usage(tenant)] == [False, False, False]


def _openai(fake: FakeOpenAI, **overrides) -> OpenAIProvider:
    settings = msgspec.structs.replace(get_settings(), llm_provider="openai", openai_api_key="sk-test",
                                       openai_base_url=fake.base_url, llm_model="gpt-4o-mini", **overrides)
    return OpenAIProvider(settings)


async def test_it_parses_an_openai_answer_and_accounts_for_tokens_and_cost():
    quiz = json.dumps(msgspec.to_builtins(_example("quiz", Quiz)))
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.reply(quiz, usage=(1200, 300))
        result = await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant, provider=_openai(fake))
        body = fake.requests[0]
    assert isinstance(result.value, Quiz)
    assert body["model"] == "gpt-4o-mini" and body["seed"] == get_settings().llm_seed
    assert body["temperature"] == get_settings().llm_temperature
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["messages"][0]["role"] == "system"
    [row] = await _usage(tenant)
    assert (row["input_tokens"], row["output_tokens"], row["success"]) == (1200, 300, True)
    # gpt-4o-mini: $0.15 / $0.60 per million tokens
    assert row["cost_usd"] == Decimal("0.000360")
    assert row["model"] == "gpt-4o-mini" and row["provider"] == "openai"


async def test_it_retries_a_429_through_the_sdk_then_succeeds():
    quiz = json.dumps(msgspec.to_builtins(_example("quiz", Quiz)))
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.rate_limit(retry_after=0)
        fake.reply(quiz)
        result = await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant,
                                provider=_openai(fake, llm_max_retries=2))
        assert len(fake.requests) == 2
    assert result.metadata.repairs == 0
    assert [r["success"] for r in await _usage(tenant)] == [True]


async def test_it_records_a_timeout_as_a_failed_call():
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.stall(3)
        with pytest.raises(GenerationFailed) as excinfo:
            await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant,
                           provider=_openai(fake, llm_timeout_seconds=1.0, llm_max_retries=0))
    assert isinstance(excinfo.value.__cause__, TimedOut)
    assert excinfo.value.errors[0].startswith("timeout")
    [row] = await _usage(tenant)
    assert row["success"] is False and row["error"].startswith("timeout")


async def test_it_repairs_an_invalid_openai_answer_with_the_errors_in_the_next_request():
    quiz = msgspec.to_builtins(_example("quiz", Quiz))
    broken = {**quiz, "questions": [{**quiz["questions"][0], "correct_index": 7}, *quiz["questions"][1:]]}
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.reply(json.dumps(broken))
        fake.reply(json.dumps(quiz))
        result = await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant, provider=_openai(fake))
        repair_messages = fake.requests[1]["messages"]
    assert result.metadata.repairs == 1
    assert repair_messages[-2]["role"] == "assistant"
    assert "correct_index" in repair_messages[-1]["content"]


def _example(kind: str, tp: type):
    from app.llm.prompts import load_prompt

    return msgspec.convert(load_prompt(kind).example_output, type=tp)


def _quiz_variables() -> dict:
    from app.llm.prompts import load_prompt

    return dict(load_prompt("quiz").example_input)


async def test_it_repairs_an_answer_that_breaks_a_per_call_rule():
    quiz = msgspec.to_builtins(_example("quiz", Quiz))
    short = {**quiz, "questions": quiz["questions"][:3]}
    tenant = uuid.uuid4()

    def five_questions(value: Quiz) -> str | None:
        return None if len(value.questions) == 5 else f"expected 5 questions, got {len(value.questions)}"

    with FakeOpenAI() as fake:
        fake.reply(json.dumps(short))
        fake.reply(json.dumps(quiz))
        result = await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant, provider=_openai(fake),
                                check=five_questions)
        assert "expected 5 questions, got 3" in fake.requests[1]["messages"][-1]["content"]
    assert result.metadata.repairs == 1 and len(result.value.questions) == 5
