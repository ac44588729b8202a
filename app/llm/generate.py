"""Structured generation: render the prompt contract, call the provider, parse, validate, repair.

parse -> validate (our msgspec types, every constraint) -> on failure re-ask with the errors, at most
MAX_REPAIRS times -> else GenerationFailed with readable errors. An answer cut off by
max_completion_tokens (finish_reason "length") is not shown back to the model: the repair asks for a
complete, more concise answer under a doubled limit. Transport failures (429, timeouts, 5xx) are
retried by the provider's SDK, not here; when they persist the generation fails at once.

Every provider call, repairs and failures included, has one ai_usage row. It is inserted before the
call (finished_at NULL, input tokens estimated from the prompt) and completed when the answer or the
error arrives, so a call whose worker died still shows on the usage page. Cost is priced by the model
we asked for, which is also the row's `model` and the Prometheus label, so metrics and rows agree.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
import structlog

from app.db import persist
from app.llm.base import Completion, CompletionRequest, LLMError, LLMProvider, Message
from app.llm.prompts import load_prompt
from app.llm.providers import get_provider
from app.llm.strict_schema import schema_name, strict_schema_with_lengths
from app.llm.tables import AIUsage
from app.metrics import LLM_CALLS, LLM_COST, LLM_TOKENS
from app.settings import get_settings

log = structlog.get_logger(__name__)
T = TypeVar("T")
MAX_REPAIRS = 2
# gpt-4o and gpt-4o-mini answer with at most 16,384 tokens and reject a request for more: a repair of a
# cut-off answer doubles the contract's limit up to this.
MAX_COMPLETION_TOKENS = 16_384
STARTED = "started, not finished"  # the error of a row whose call has not returned (yet)
# A dated snapshot name: "gpt-4o-mini-2024-07-18", "gpt-3.5-turbo-0125".
_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")


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


# ---------------------------------------------------------------------------------------------
# Prices


def model_family(model: str) -> str:
    return _SNAPSHOT_SUFFIX.sub("", model)


def price_of(model: str, response_model: str | None = None) -> tuple[float, float]:
    # The price table names models as we ask for them; the API answers with dated snapshots. The model
    # we asked for decides, the answering one is the fallback (e.g. for an alias the table lacks).
    prices = get_settings().llm_prices
    for name in (model, model_family(model), response_model, model_family(response_model or "")):
        if name and name in prices:
            return prices[name]
    _warn_unpriced(model)
    return (0.0, 0.0)


@functools.cache  # once per model and process: every call would repeat it
def _warn_unpriced(model: str) -> None:
    log.warning("llm model has no price: its cost counts as 0; add it to LLM_PRICES", model=model)


def cost_of(model: str, input_tokens: int, output_tokens: int, response_model: str | None = None) -> Decimal:
    price_in, price_out = price_of(model, response_model)
    return (Decimal(str(price_in)) * input_tokens + Decimal(str(price_out)) * output_tokens) / Decimal(1_000_000)


# ---------------------------------------------------------------------------------------------
# Usage rows


class _Spent(msgspec.Struct, frozen=True, kw_only=True):
    """What one provider call used, whether it answered or failed."""

    response_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    http_attempts: int = 0
    duration_ms: int = 0

    @classmethod
    def of(cls, outcome: Completion | LLMError, started: float) -> _Spent:
        # A Completion and an LLMError carry the same usage attributes.
        return cls(response_model=outcome.model, input_tokens=outcome.input_tokens,
                   output_tokens=outcome.output_tokens, http_attempts=outcome.http_attempts,
                   duration_ms=_ms_since(started))


def _unanswered(request: CompletionRequest, started: float) -> _Spent:
    # The request may well have been sent and billed: keep the estimate the row started with.
    return _Spent(input_tokens=_estimated_tokens(request.messages), duration_ms=_ms_since(started))


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


class _Ledger(msgspec.Struct, frozen=True, kw_only=True):
    """The ai_usage rows of one generate() call: what they share, and how one is started and finished."""

    operation: str
    provider: str
    model: str  # requested
    prompt_version: str
    tenant_id: uuid.UUID | None
    run_id: uuid.UUID | None

    # Both writes ride out a brief database outage (persist): an answer the model was paid for is not
    # thrown away because its usage row could not be written at that instant.
    async def start(self, request: CompletionRequest) -> int:
        return await persist(lambda: self._insert(request))

    async def _insert(self, request: CompletionRequest) -> int:
        input_tokens = _estimated_tokens(request.messages)
        rows = await AIUsage.insert(AIUsage(
            tenant_id=self.tenant_id, operation=self.operation, provider=self.provider, model=self.model,
            prompt_name=self.operation, prompt_version=self.prompt_version, input_tokens=input_tokens,
            cost_usd=cost_of(self.model, input_tokens, 0), success=False, error=STARTED, run_id=self.run_id,
        )).returning(AIUsage.id)
        return rows[0]["id"]

    async def finish(self, row_id: int, spent: _Spent, *, error: str | None) -> None:
        cost = cost_of(self.model, spent.input_tokens, spent.output_tokens, spent.response_model)
        labels = {"operation": self.operation, "model": self.model}
        LLM_CALLS.labels(**labels, outcome="failure" if error else "success").inc()
        LLM_TOKENS.labels(**labels, direction="input").inc(spent.input_tokens)
        LLM_TOKENS.labels(**labels, direction="output").inc(spent.output_tokens)
        LLM_COST.labels(**labels).inc(float(cost))
        await persist(lambda: AIUsage.update({
            AIUsage.response_model: spent.response_model, AIUsage.input_tokens: spent.input_tokens,
            AIUsage.output_tokens: spent.output_tokens, AIUsage.cost_usd: cost,
            AIUsage.duration_ms: spent.duration_ms, AIUsage.http_attempts: spent.http_attempts,
            AIUsage.success: error is None, AIUsage.error: error, AIUsage.finished_at: datetime.now(UTC),
        }).where(AIUsage.id == row_id).run())


def _estimated_tokens(messages: list[Message]) -> int:
    # About four characters per token: only stands until the provider reports the real count.
    return max(1, sum(len(message.content) for message in messages) // 4)


# ---------------------------------------------------------------------------------------------
# Judging an answer


class _Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """Why an answer was refused, and what the repair call sends on top of the conversation."""

    reason: str
    follow_up: list[Message]
    max_completion_tokens: int | None


def _rejection(completion: Completion, out_type: type, validate: Callable[[Any], str | None],
               limit: int | None) -> tuple[Any, _Rejection | None]:
    if completion.finish_reason == "length":
        return None, _cut_off(completion, limit)
    try:
        value = msgspec.json.decode(completion.text, type=out_type)
        if problem := validate(value):
            raise msgspec.ValidationError(problem)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        # ValidationError subclasses DecodeError: test for the narrower one first.
        kind = "schema violation" if isinstance(exc, msgspec.ValidationError) else "invalid JSON"
        return None, _Rejection(reason=f"{kind}: {_readable(exc)}", max_completion_tokens=limit, follow_up=[
            Message("assistant", completion.text[:8000]),
            Message("user", f"Your answer was rejected ({kind}): {_readable(exc)}\n"
                            "Return the complete corrected JSON object only, following every rule."),
        ])
    return value, None


def _cut_off(completion: Completion, limit: int | None) -> _Rejection:
    # The truncated text is not sent back: the model would only continue or copy it. It needs room and
    # a reason to be brief.
    at = f" at {used} tokens" if (used := completion.output_tokens or limit) else ""
    return _Rejection(reason=f"the answer was cut off{at}", max_completion_tokens=_raised(limit),
                      follow_up=[Message("user", f"Your previous answer was cut off{at}, before the JSON object was "
                                                 "complete. Write the complete JSON object again, more concisely: "
                                                 "shorter explanations and examples, every rule still followed.")])


def _raised(limit: int | None) -> int | None:
    # Without a limit of ours the model hit its own maximum: asking for more would be refused.
    return max(limit, min(2 * limit, MAX_COMPLETION_TOKENS)) if limit else None


def _validator(out_type: type, check: Callable[[Any], str | None] | None,
               fixed_lengths: dict[str, int] | None) -> Callable[[Any], str | None]:
    attributes = {field.encode_name: field.name for field in msgspec.structs.fields(out_type)}

    def validate(value: Any) -> str | None:
        # The schema asked for these lengths, but not every provider enforces minItems/maxItems.
        for name, count in (fixed_lengths or {}).items():
            if (got := len(getattr(value, attributes[name]))) != count:
                return f"expected exactly {count} items, got {got} - at `$.{name}`"
        return check(value) if check is not None else None

    return validate


# ---------------------------------------------------------------------------------------------
# generate()


async def generate(
    operation: str,
    out_type: type[T],
    variables: dict[str, Any],
    *,
    tenant_id: uuid.UUID | None,
    run_id: uuid.UUID | None = None,
    provider: LLMProvider | None = None,
    check: Callable[[Any], str | None] | None = None,
    fixed_lengths: dict[str, int] | None = None,
) -> Generated:
    """`fixed_lengths` pins top-level arrays to an exact length ({"questions": 5}) in the schema sent to
    the model and in our validation, where the type allows a range. `check` adds a rule neither can
    express for this call: it returns a message when the value breaks it, and that counts as a schema
    violation to repair."""
    settings = get_settings()
    provider = provider or get_provider(settings)
    contract = load_prompt(operation)
    ledger = _Ledger(operation=operation, provider=provider.name, model=provider.model,
                     prompt_version=contract.full_version, tenant_id=tenant_id, run_id=run_id)
    schema = strict_schema_with_lengths(out_type, fixed_lengths)
    validate = _validator(out_type, check, fixed_lengths)
    messages, limit = contract.render(variables), contract.max_completion_tokens
    errors: list[str] = []
    totals = {"input": 0, "output": 0, "ms": 0}

    def metadata(passed: bool, model: str) -> GenerationMetadata:
        return GenerationMetadata(
            provider=provider.name, model=model, prompt_name=operation, prompt_version=contract.full_version,
            temperature=settings.llm_temperature, seed=settings.llm_seed, input_tokens=totals["input"],
            output_tokens=totals["output"], duration_ms=totals["ms"], validation_passed=passed,
            repairs=max(0, len(errors) - (0 if passed else 1)), run_id=str(run_id) if run_id else None,
        )

    def spend(spent: _Spent) -> None:
        totals["input"] += spent.input_tokens
        totals["output"] += spent.output_tokens
        totals["ms"] += spent.duration_ms

    for attempt in range(MAX_REPAIRS + 1):
        request = CompletionRequest(
            operation=operation, messages=messages, schema_name=schema_name(out_type), json_schema=schema,
            temperature=settings.llm_temperature, seed=settings.llm_seed, variables=variables,
            repair_attempt=attempt, max_completion_tokens=limit,
        )
        row_id = await ledger.start(request)
        started = time.perf_counter()
        try:
            completion = await provider.complete(request)
        except LLMError as exc:
            spent = _Spent.of(exc, started)
            spend(spent)
            errors.append(f"{exc.kind}: {_readable(exc)}")
            await ledger.finish(row_id, spent, error=errors[-1])
            raise GenerationFailed(errors, metadata(False, provider.model)) from exc
        except asyncio.CancelledError:  # the worker let go of the call (it is stopping): not a lost worker
            await ledger.finish(row_id, _unanswered(request, started), error="cancelled before the answer arrived")
            raise
        except Exception as exc:  # a bug, not an answer: the row says so instead of "worker lost"
            await ledger.finish(row_id, _unanswered(request, started), error=f"crashed: {_readable(exc)}")
            raise
        spent = _Spent.of(completion, started)
        spend(spent)
        value, rejection = _rejection(completion, out_type, validate, limit)
        if rejection is None:
            await ledger.finish(row_id, spent, error=None)
            return Generated(value, metadata(True, completion.model))
        errors.append(f"attempt {attempt + 1}: {rejection.reason}")
        await ledger.finish(row_id, spent, error=errors[-1])
        messages, limit = [*messages, *rejection.follow_up], rejection.max_completion_tokens
    raise GenerationFailed(errors, metadata(False, provider.model))
