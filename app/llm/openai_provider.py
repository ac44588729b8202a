"""OpenAI chat completions with strict structured outputs, through the official SDK.

The SDK retries 429, 408/409 and 5xx itself (exponential backoff, honouring Retry-After) up to
settings.llm_max_retries times; what still fails afterwards is mapped to our LLMError kinds so that
generate.py can record it and give up with a readable error.
"""

from __future__ import annotations

import asyncio

import openai

from app.llm.base import Completion, CompletionRequest, LLMError, ProviderUnavailable, RateLimited, TimedOut
from app.settings import Settings


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
        return openai.AsyncOpenAI(
            api_key=self.settings.openai_api_key,
            base_url=self.settings.openai_base_url,
            timeout=self.settings.llm_timeout_seconds,
            max_retries=self.settings.llm_max_retries,
        )

    async def complete(self, request: CompletionRequest) -> Completion:
        # The provider is cached per process, but pooled connections belong to the event loop that opened
        # them: a second asyncio.run() (CLI commands, tests) must not reuse them.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self.client = self._new_client()
            self._loop = loop
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
            )
        except openai.APIError as exc:
            raise _mapped(exc) from exc
        if not response.choices:
            raise EmptyCompletion(f"OpenAI returned no choices (model {response.model})")
        message = response.choices[0].message
        if message.refusal:
            raise Refused(f"the model refused: {message.refusal}")
        if not message.content:
            reason = response.choices[0].finish_reason
            raise EmptyCompletion(f"OpenAI returned an empty message (finish_reason {reason})")
        usage = response.usage
        return Completion(
            text=message.content,
            model=response.model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        )

    async def aclose(self) -> None:
        await self.client.close()


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
