"""The structured-generation interface every provider implements.

A provider turns chat messages plus a JSON Schema into the model's raw text and token counts. It does
not parse or validate: `app/llm/generate.py` owns parsing, validation, repair and usage accounting,
so both providers get exactly the same treatment. What a call cost travels with its result: a
Completion, or an LLMError that carries the usage a failed answer (a refusal, an empty message) was
still billed for, and how many HTTP attempts the call made.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import msgspec


class Message(msgspec.Struct, frozen=True):
    role: Literal["system", "user", "assistant"]
    content: str


class CompletionRequest(msgspec.Struct, frozen=True, kw_only=True):
    operation: str  # e.g. "syllabus", "lesson", "quiz", "project"
    messages: list[Message]
    schema_name: str  # [a-zA-Z0-9_-]{1,64}
    json_schema: dict[str, Any]  # strict-mode schema (app/llm/strict_schema.py)
    temperature: float
    seed: int
    # The typed inputs the prompt was rendered from. Real providers ignore them; the mock provider
    # builds its deterministic, input-specific answer from them instead of parsing prose.
    variables: dict[str, Any] = {}
    repair_attempt: int = 0  # 0 for the first call, 1..2 for repair calls
    # From the prompt contract's [limits]; None lets the model use its own maximum. The mock ignores it.
    max_completion_tokens: int | None = None


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    model: str  # the model that answered, as the API names it (often a dated snapshot of the one asked for)
    input_tokens: int
    output_tokens: int
    finish_reason: str = "stop"  # "length": the answer hit max_completion_tokens and is cut off
    http_attempts: int = 1  # SDK retries included


class LLMError(Exception):
    """A provider call failed after the provider's own retries; `kind` is recorded in ai_usage.

    A failure can still be billed (a refusal is a full answer), so the error carries the usage the
    response reported, the model that answered, and the number of HTTP attempts the call made."""

    kind = "error"

    def __init__(self, message: str, *, model: str | None = None, input_tokens: int = 0, output_tokens: int = 0,
                 http_attempts: int = 1) -> None:
        super().__init__(message)
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.http_attempts = http_attempts


class RateLimited(LLMError):
    kind = "rate_limited"


class TimedOut(LLMError):
    kind = "timeout"


class ProviderUnavailable(LLMError):
    kind = "unavailable"


class LLMProvider(Protocol):
    name: str
    model: str

    async def complete(self, request: CompletionRequest) -> Completion: ...
