"""generate(): parse -> validate -> repair -> usage rows, with the mock provider and with the real
openai client against a local fake OpenAI endpoint."""

import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import msgspec
import pytest

from app.authoring.schemas import Lesson, Quiz
from app.llm.base import TimedOut
from app.llm.generate import MAX_COMPLETION_TOKENS, STARTED, GenerationFailed, generate
from app.llm.mock import MockProvider
from app.llm.openai_provider import OpenAIProvider
from app.llm.strict_schema import strict_schema
from app.llm.tables import AIUsage
from app.llm.usage import usage_by_day
from app.settings import get_settings
from tests.llm.fake_openai import Behaviour, FakeOpenAI

SNAPSHOT = "gpt-4o-mini-2024-07-18"  # what the API answers when asked for gpt-4o-mini


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


# ---------------------------------------------------------------------------------------------
# Cost by the requested model (issue 7, finding 6)


async def test_it_prices_a_snapshot_answer_by_the_model_it_asked_for():
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.reply(_quiz_json(), model=SNAPSHOT, usage=(1200, 300))
        result = await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant, provider=_openai(fake))
    [row] = await _usage(tenant)
    assert (row["model"], row["response_model"]) == ("gpt-4o-mini", SNAPSHOT)
    assert row["cost_usd"] == Decimal("0.000360")  # $0.15 / $0.60 per million tokens
    assert result.metadata.model == SNAPSHOT  # the artifact still names exactly what wrote it


async def test_it_reports_one_line_per_requested_model_with_the_snapshots_that_answered():
    quiz = msgspec.to_builtins(_example("quiz", Quiz))
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.reply(json.dumps({"questions": quiz["questions"][:1]}), model=SNAPSHOT, usage=(1000, 100))
        fake.reply(json.dumps(quiz), model=SNAPSHOT, usage=(1200, 300))
        await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant, provider=_openai(fake))
    [line] = await usage_by_day(tenant)
    assert (line["model"], line["response_models"]) == ("gpt-4o-mini", SNAPSHOT)
    assert (line["calls"], line["failures"], line["lost"], line["http_attempts"]) == (2, 1, 0, 2)
    assert line["cost_usd"] == Decimal("0.000210") + Decimal("0.000360")


# ---------------------------------------------------------------------------------------------
# Exact lengths in the schema (finding 7)


async def test_it_sends_the_exact_question_count_in_the_schema():
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.reply(_quiz_json())
        await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant, provider=_openai(fake),
                       fixed_lengths={"questions": 5})
        schema = fake.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["questions"]["minItems"] == schema["properties"]["questions"]["maxItems"] == 5
    assert strict_schema(Quiz)["properties"]["questions"]["maxItems"] == 10  # the cached schema is untouched


async def test_it_repairs_an_answer_with_the_wrong_number_of_items():
    # Not every OpenAI-compatible server enforces minItems/maxItems: our validation does.
    quiz = msgspec.to_builtins(_example("quiz", Quiz))
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.reply(json.dumps({"questions": quiz["questions"][:3]}))
        fake.reply(json.dumps(quiz))
        result = await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant, provider=_openai(fake),
                                fixed_lengths={"questions": 5})
    assert result.metadata.repairs == 1 and len(result.value.questions) == 5
    [rejected, _] = await _usage(tenant)
    assert rejected["error"] == "attempt 1: schema violation: expected exactly 5 items, got 3 - at `$.questions`"


# ---------------------------------------------------------------------------------------------
# Cut-off answers (finding 8)


async def test_it_repairs_a_cut_off_answer_with_a_higher_limit_without_echoing_it():
    truncated = _quiz_json()[:2000]
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.reply(truncated, finish_reason="length", usage=(3000, 4000))
        fake.reply(_quiz_json())
        result = await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant, provider=_openai(fake))
        first, second = fake.requests
    assert result.metadata.repairs == 1
    assert first["max_completion_tokens"] == 6000  # prompts/quiz/v2/contract.toml
    assert second["max_completion_tokens"] == 12000
    assert not any(truncated in (m["content"] or "") for m in second["messages"])
    assert second["messages"][-1]["role"] == "user" and "more concisely" in second["messages"][-1]["content"]
    cut_off = (await _usage(tenant))[0]
    assert cut_off["error"] == "attempt 1: the answer was cut off at 4000 tokens"
    assert (cut_off["output_tokens"], cut_off["success"]) == (4000, False)


async def test_it_raises_the_limit_no_further_than_the_model_allows():
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        for _ in range(3):
            fake.reply('{"questions": [', finish_reason="length", usage=(3000, 6000))
        with pytest.raises(GenerationFailed) as excinfo:
            await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant, provider=_openai(fake))
        limits = [body["max_completion_tokens"] for body in fake.requests]
    assert limits == [6000, 12000, MAX_COMPLETION_TOKENS]
    assert all("cut off" in error for error in excinfo.value.errors)


# ---------------------------------------------------------------------------------------------
# Usage that was not counted (finding 9)


async def test_it_records_the_tokens_a_refusal_was_billed_for():
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.refuse("I can't help with that.", model=SNAPSHOT, usage=(2000, 20))
        with pytest.raises(GenerationFailed) as excinfo:
            await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant, provider=_openai(fake))
    [row] = await _usage(tenant)
    assert (row["input_tokens"], row["output_tokens"], row["response_model"]) == (2000, 20, SNAPSHOT)
    assert row["cost_usd"] == Decimal("0.000312") and row["error"].startswith("refused")
    assert excinfo.value.metadata.input_tokens == 2000


async def test_it_records_every_http_attempt_of_a_call():
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.rate_limit().server_error(502).reply(_quiz_json())
        await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant,
                       provider=_openai(fake, llm_max_retries=2))
        fake.stall(3).stall(3)
        with pytest.raises(GenerationFailed):
            await generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant,
                           provider=_openai(fake, llm_timeout_seconds=1.0, llm_max_retries=1))
    answered, timed_out = await _usage(tenant)
    assert (answered["http_attempts"], answered["success"]) == (3, True)
    assert (timed_out["http_attempts"], timed_out["success"]) == (2, False)


async def test_it_writes_the_usage_row_before_the_call_and_completes_it_after():
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.enqueue(Behaviour(content=_quiz_json(), delay=1.0, usage=(1200, 300), model=SNAPSHOT))
        call = asyncio.create_task(generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant,
                                            provider=_openai(fake)))
        await _until(lambda: fake.requests)
        [started] = await _usage(tenant)
        await call
    assert (started["finished_at"], started["success"], started["error"]) == (None, False, STARTED)
    assert started["input_tokens"] > 1000 and started["cost_usd"] > 0  # estimated from the prompt
    [finished] = await _usage(tenant)
    assert finished["id"] == started["id"] and finished["finished_at"] is not None
    assert (finished["success"], finished["error"], finished["input_tokens"]) == (True, None, 1200)


async def test_it_records_a_call_its_worker_let_go_of_as_cancelled():
    tenant = uuid.uuid4()
    with FakeOpenAI() as fake:
        fake.stall(10)
        call = asyncio.create_task(generate("quiz", Quiz, _quiz_variables(), tenant_id=tenant,
                                            provider=_openai(fake)))
        await _until(lambda: fake.requests)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    [row] = await _usage(tenant)
    assert row["error"] == "cancelled before the answer arrived" and row["finished_at"] is not None
    assert row["input_tokens"] > 1000 and row["success"] is False


DIE_MID_CALL = """
import asyncio, sys, uuid
import msgspec
from app.authoring.schemas import Quiz
from app.llm.generate import generate
from app.llm.openai_provider import OpenAIProvider
from app.llm.prompts import load_prompt
from app.settings import get_settings

settings = msgspec.structs.replace(get_settings(), llm_provider="openai", openai_api_key="sk-test",
                                   openai_base_url=sys.argv[1], llm_model="gpt-4o-mini")
asyncio.run(generate("quiz", Quiz, dict(load_prompt("quiz").example_input), tenant_id=uuid.UUID(sys.argv[2]),
                     provider=OpenAIProvider(settings)))
"""


async def test_it_shows_a_call_whose_worker_died_as_cut_off(client, personas):
    tenant = personas.admin.tenant_id
    with FakeOpenAI() as fake:
        fake.stall(60)
        worker = subprocess.Popen([sys.executable, "-c", DIE_MID_CALL, fake.base_url, str(tenant)])
        try:
            await _until(lambda: fake.requests, timeout=30)
        finally:
            worker.kill()  # SIGKILL: no handler runs, exactly like a lost machine
            worker.wait()
    [row] = await _usage(tenant)
    assert (row["finished_at"], row["error"]) == (None, STARTED) and row["cost_usd"] > 0
    [line] = await usage_by_day(tenant)
    assert (line["calls"], line["failures"], line["lost"], line["running"]) == (1, 0, 0, 1)  # it may still answer
    ten_minutes_ago = AIUsage.created_at - timedelta(minutes=10)  # the usage page is read later
    await AIUsage.update({AIUsage.created_at: ten_minutes_ago}).where(AIUsage.id == row["id"])
    [line] = await usage_by_day(tenant)
    assert (line["calls"], line["failures"], line["lost"], line["running"]) == (1, 1, 1, 0)
    await client.login(personas.admin.email)
    page = await client.get("/admin/ai-usage")
    assert "1 cut off (worker lost)" in page.text and "gpt-4o-mini" in page.text


def _quiz_json() -> str:
    return json.dumps(msgspec.to_builtins(_example("quiz", Quiz)))


async def _until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)
