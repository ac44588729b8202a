"""The structured-generation interface every provider implements.

A provider turns chat messages plus a JSON Schema into the model's raw text and token counts. It does
not parse or validate: `app/llm/generate.py` owns parsing, validation, repair and usage accounting,
so both providers get exactly the same treatment.
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


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    model: str
    input_tokens: int
    output_tokens: int


class LLMError(Exception):
    """A provider call failed after the provider's own retries; `kind` is recorded in ai_usage."""

    kind = "error"


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
