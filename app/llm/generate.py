"""Structured generation: render the prompt contract, call the provider, parse, validate, repair.

parse -> validate (our msgspec types, every constraint) -> on failure re-ask with the errors, at most
MAX_REPAIRS times -> else GenerationFailed with readable errors. Transport failures (429, timeouts,
5xx) are retried by the provider's SDK, not here; when they persist the generation fails at once.
Every provider call, repairs and failures included, writes one ai_usage row and counts in Prometheus.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
import structlog

from app.llm.base import CompletionRequest, LLMError, LLMProvider, Message
from app.llm.prompts import load_prompt
from app.llm.providers import get_provider
from app.llm.strict_schema import schema_name, strict_schema
from app.llm.tables import AIUsage
from app.metrics import LLM_CALLS, LLM_COST, LLM_TOKENS
from app.settings import get_settings

log = structlog.get_logger(__name__)
T = TypeVar("T")
MAX_REPAIRS = 2


class GenerationMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """A8: stored with every generated artifact."""

    provider: str
    model: str
    prompt_name: str
    prompt_version: str
    temperature: float
    seed: int
    input_tokens: int
    output_tokens: int
    duration_ms: int
    validation_passed: bool
    repairs: int
    run_id: str | None


class GenerationFailed(Exception):
    def __init__(self, errors: list[str], metadata: GenerationMetadata) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
        self.metadata = metadata


class Generated(msgspec.Struct, frozen=True):
    value: Any
    metadata: GenerationMetadata


def _readable(exc: Exception) -> str:
    message = str(exc)
    return message if len(message) < 500 else message[:497] + "..."


def cost_of(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    price_in, price_out = get_settings().llm_prices.get(model, (0.0, 0.0))
    return (Decimal(str(price_in)) * input_tokens + Decimal(str(price_out)) * output_tokens) / Decimal(1_000_000)


async def generate(
    operation: str,
    out_type: type[T],
    variables: dict[str, Any],
    *,
    tenant_id: uuid.UUID | None,
    run_id: uuid.UUID | None = None,
    provider: LLMProvider | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Generated:
    """`check` adds a rule the type cannot express for this call (e.g. the requested question count):
    it returns a message when the value breaks it, and that counts as a schema violation to repair."""
    settings = get_settings()
    provider = provider or get_provider(settings)
    contract = load_prompt(operation)
    messages = contract.render(variables)
    schema = strict_schema(out_type)
    errors: list[str] = []
    totals = {"input": 0, "output": 0, "ms": 0}

    def metadata(passed: bool, model: str) -> GenerationMetadata:
        return GenerationMetadata(
            provider=provider.name, model=model, prompt_name=operation, prompt_version=contract.full_version,
            temperature=settings.llm_temperature, seed=settings.llm_seed, input_tokens=totals["input"],
            output_tokens=totals["output"], duration_ms=totals["ms"], validation_passed=passed,
            repairs=max(0, len(errors) - (0 if passed else 1)), run_id=str(run_id) if run_id else None,
        )

    for attempt in range(MAX_REPAIRS + 1):
        request = CompletionRequest(
            operation=operation, messages=messages, schema_name=schema_name(out_type), json_schema=schema,
            temperature=settings.llm_temperature, seed=settings.llm_seed, variables=variables,
            repair_attempt=attempt,
        )
        started = time.perf_counter()
        try:
            completion = await provider.complete(request)
        except LLMError as exc:
            elapsed = int((time.perf_counter() - started) * 1000)
            totals["ms"] += elapsed
            errors.append(f"{exc.kind}: {_readable(exc)}")
            await _record(operation, provider.name, provider.model, contract.full_version, tenant_id, run_id,
                          0, 0, elapsed, success=False, error=errors[-1])
            raise GenerationFailed(errors, metadata(False, provider.model)) from exc
        elapsed = int((time.perf_counter() - started) * 1000)
        totals["input"] += completion.input_tokens
        totals["output"] += completion.output_tokens
        totals["ms"] += elapsed
        try:
            value = msgspec.json.decode(completion.text, type=out_type)
            if check is not None and (problem := check(value)):
                raise msgspec.ValidationError(problem)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # ValidationError subclasses DecodeError: test for the narrower one first.
            kind = "schema violation" if isinstance(exc, msgspec.ValidationError) else "invalid JSON"
            errors.append(f"attempt {attempt + 1}: {kind}: {_readable(exc)}")
            await _record(operation, provider.name, completion.model, contract.full_version, tenant_id, run_id,
                          completion.input_tokens, completion.output_tokens, elapsed, success=False, error=errors[-1])
            messages = [
                *messages,
                Message("assistant", completion.text[:8000]),
                Message("user", f"Your answer was rejected ({kind}): {_readable(exc)}\n"
                                "Return the complete corrected JSON object only, following every rule."),
            ]
            continue
        await _record(operation, provider.name, completion.model, contract.full_version, tenant_id, run_id,
                      completion.input_tokens, completion.output_tokens, elapsed, success=True, error=None)
        return Generated(value, metadata(True, completion.model))
    raise GenerationFailed(errors, metadata(False, provider.model))


async def _record(operation: str, provider: str, model: str, prompt_version: str, tenant_id: uuid.UUID | None,
                  run_id: uuid.UUID | None, input_tokens: int, output_tokens: int, duration_ms: int, *,
                  success: bool, error: str | None) -> None:
    cost = cost_of(model, input_tokens, output_tokens)
    LLM_CALLS.labels(operation=operation, model=model, outcome="success" if success else "failure").inc()
    LLM_TOKENS.labels(operation=operation, model=model, direction="input").inc(input_tokens)
    LLM_TOKENS.labels(operation=operation, model=model, direction="output").inc(output_tokens)
    LLM_COST.labels(operation=operation, model=model).inc(float(cost))
    await AIUsage.insert(AIUsage(
        tenant_id=tenant_id, operation=operation, provider=provider, model=model, prompt_name=operation,
        prompt_version=prompt_version, input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost,
        duration_ms=duration_ms, success=success, error=error, run_id=run_id,
    ))
