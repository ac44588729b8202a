"""OpenAI chat completions with strict structured outputs, through the official SDK.

The SDK retries 429, 408/409 and 5xx itself (exponential backoff, honouring Retry-After) up to
settings.llm_max_retries times; what still fails afterwards is mapped to our LLMError kinds so that
generate.py can record it and give up with a readable error.

Those retries happen inside one `create()` call, so they are invisible to us unless we count them: an
httpx event hook on our own client counts every HTTP attempt (timed-out ones included) for the call
that made it, found through a contextvar because one client serves many concurrent calls.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import msgspec
import openai
from openai.types.chat import ChatCompletion

from app.llm.base import Completion, CompletionRequest, LLMError, ProviderUnavailable, RateLimited, TimedOut
from app.settings import Settings


@dataclass
class _Attempts:
    count: int = 0


_current_call: ContextVar[_Attempts | None] = ContextVar("openai_call_attempts", default=None)


async def _count_attempt(_request: Any) -> None:
    # Runs in the task that awaits create(), so the contextvar names the call this attempt belongs to.
    if (attempts := _current_call.get()) is not None:
        attempts.count += 1


class Refused(LLMError):
    kind = "refused"


class EmptyCompletion(LLMError):
    kind = "empty"


class RequestRejected(LLMError):
    """A 4xx other than 429: our request, key or schema is wrong; retrying will not help."""

    kind = "rejected"


class OpenAIProvider:
    name = "openai"

    def __init__(self, settings: Settings) -> None:
        self.model = settings.llm_model
        self.settings = settings
        self.client = self._new_client()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _new_client(self) -> openai.AsyncOpenAI:
        # The SDK's own default client class keeps its connection limits; we only add the hook.
        http_client = openai.DefaultAsyncHttpxClient(event_hooks={"request": [_count_attempt]})
        return openai.AsyncOpenAI(
            api_key=self.settings.openai_api_key,
            base_url=self.settings.openai_base_url,
            timeout=self.settings.llm_timeout_seconds,
            max_retries=self.settings.llm_max_retries,
            http_client=http_client,
        )

    async def complete(self, request: CompletionRequest) -> Completion:
        # The provider is cached per process, but pooled connections belong to the event loop that opened
        # them: a second asyncio.run() (CLI commands, tests) must not reuse them.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self.client = self._new_client()
            self._loop = loop
        attempts = _Attempts()
        token = _current_call.set(attempts)
        try:
            return msgspec.structs.replace(await self._answer(request), http_attempts=attempts.count)
        except LLMError as exc:
            exc.http_attempts = attempts.count
            raise
        finally:
            _current_call.reset(token)

    async def _answer(self, request: CompletionRequest) -> Completion:
        try:
            response = await self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": m.role, "content": m.content} for m in request.messages],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": request.schema_name, "schema": request.json_schema, "strict": True},
                },
                temperature=request.temperature,
                seed=request.seed,
                max_completion_tokens=request.max_completion_tokens or openai.omit,
            )
        except openai.APIError as exc:
            raise _mapped(exc) from exc
        return _completion(response)

    async def aclose(self) -> None:
        await self.client.close()


def _completion(response: ChatCompletion) -> Completion:
    usage = response.usage
    # A refusal or an empty message is billed like any answer: the error carries what it cost.
    spent = {"model": response.model, "input_tokens": usage.prompt_tokens if usage else 0,
             "output_tokens": usage.completion_tokens if usage else 0}
    if not response.choices:
        raise EmptyCompletion(f"OpenAI returned no choices (model {response.model})", **spent)
    choice = response.choices[0]
    if choice.message.refusal:
        raise Refused(f"the model refused: {choice.message.refusal}", **spent)
    # A cut-off answer can be empty when the limit is tiny; generate() handles "length" either way.
    if not choice.message.content and choice.finish_reason != "length":
        raise EmptyCompletion(f"OpenAI returned an empty message (finish_reason {choice.finish_reason})", **spent)
    return Completion(text=choice.message.content or "", finish_reason=choice.finish_reason or "stop", **spent)


def _mapped(exc: openai.APIError) -> LLMError:
    # Order matters: APITimeoutError is an APIConnectionError, RateLimitError an APIStatusError.
    if isinstance(exc, openai.RateLimitError):
        return RateLimited(f"OpenAI rate limit persisted after retries: {exc.message}")
    if isinstance(exc, openai.APITimeoutError):
        return TimedOut("OpenAI did not answer within the timeout (after retries)")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable(f"cannot reach OpenAI: {exc.message}")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return ProviderUnavailable(f"OpenAI server error {exc.status_code} persisted after retries: {exc.message}")
        return RequestRejected(f"OpenAI rejected the request ({exc.status_code}): {exc.message}")
    return LLMError(f"OpenAI call failed: {exc.message}")
