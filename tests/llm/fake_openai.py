"""A tiny local stand-in for OpenAI's chat-completions API, so tests can drive the real `openai` SDK.

It listens on 127.0.0.1 (random port) in a background thread of the test process, so a server under
test in a subprocess can reach it too (OPENAI_BASE_URL=fake.base_url, any OPENAI_API_KEY).

    with FakeOpenAI() as fake:
        fake.reply('{"questions": [...]}')        # the next request gets this message content
        fake.reply('{"questions": [', finish_reason="length", usage=(900, 4000))  # ... cut off at 4000 tokens
        fake.rate_limit()                          # ... a 429 with Retry-After (the SDK retries it)
        fake.server_error(500)                     # ... a 500 (the SDK retries it too)
        fake.stall(5)                              # ... no answer for 5 s: longer than the client timeout
        fake.refuse("I can't help with that.")     # ... a structured-outputs refusal
        ...  # point OpenAIProvider / the app at fake.base_url
        fake.requests[0]["response_format"]        # every JSON body received, in order
        assert fake.pending == 0                   # every queued behaviour was used

Behaviours are queued and each request consumes one, in order. With an empty queue the server answers
with `fake.default(body)` when set — a function from the request body to the content, e.g. canned JSON
chosen by body["response_format"]["json_schema"]["name"] for end-to-end tests — and otherwise with a 500
saying that nothing was queued, so an unexpected extra call fails loudly instead of hanging.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Behaviour:
    """One scripted answer. status 200 answers with a chat.completion; anything else with an error body."""

    status: int = 200
    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    error_message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    model: str | None = None  # defaults to the model the request asked for
    usage: tuple[int, int] | None = None  # (prompt_tokens, completion_tokens); estimated when None


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []  # JSON bodies, in arrival order
        self.headers: list[dict[str, str]] = []  # their headers (lower-case names), same order
        self.default: Callable[[dict[str, Any]], str] | None = None
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for one, and every test closes a server.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-openai", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes stalled handlers at once
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    # -- scripting -------------------------------------------------------------------------------

    def enqueue(self, behaviour: Behaviour) -> FakeOpenAI:
        with self._lock:
            self._queue.append(behaviour)
        return self

    def reply(self, content: str, *, model: str | None = None, usage: tuple[int, int] | None = None,
              finish_reason: str = "stop") -> FakeOpenAI:
        return self.enqueue(Behaviour(content=content, model=model, usage=usage, finish_reason=finish_reason))

    def refuse(self, refusal: str, *, model: str | None = None, usage: tuple[int, int] | None = None) -> FakeOpenAI:
        return self.enqueue(Behaviour(refusal=refusal, model=model, usage=usage))

    def rate_limit(self, retry_after: float = 0.01) -> FakeOpenAI:
        """A 429 asking the client to wait `retry_after` seconds (sent in Retry-After and retry-after-ms)."""
        headers = {"retry-after": str(math.ceil(retry_after)), "retry-after-ms": str(int(retry_after * 1000))}
        return self.enqueue(Behaviour(status=429, error_message="Rate limit reached for requests",
                                      headers=headers))

    def server_error(self, status: int = 500, retry_after: float = 0.01) -> FakeOpenAI:
        # retry-after-ms keeps the SDK's retry pause short; without it the SDK backs off for ~0.5 s.
        return self.enqueue(Behaviour(status=status, error_message="The server had an error",
                                      headers={"retry-after-ms": str(int(retry_after * 1000))}))

    def error(self, status: int, message: str) -> FakeOpenAI:
        return self.enqueue(Behaviour(status=status, error_message=message))

    def stall(self, seconds: float, content: str = "{}") -> FakeOpenAI:
        """Wait `seconds` before answering (cut short when the server closes)."""
        return self.enqueue(Behaviour(content=content, delay=seconds))

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # -- serving ---------------------------------------------------------------------------------

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Behaviour:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            if self._queue:
                return self._queue.popleft()
        if self.default is not None:
            return Behaviour(content=self.default(body))
        return Behaviour(status=500, error_message="FakeOpenAI: no behaviour queued for this request")

    def _respond(self, behaviour: Behaviour, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if behaviour.delay:
            self._closing.wait(behaviour.delay)
        if behaviour.status != 200:
            error = {"error": {"message": behaviour.error_message, "type": "fake_error", "param": None,
                               "code": str(behaviour.status)}}
            return behaviour.status, behaviour.headers, json.dumps(error).encode()
        content = behaviour.content
        prompt, completion = behaviour.usage or (_prompt_chars(body) // 4, len(content or "") // 4)
        payload = {
            "id": f"chatcmpl-fake-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": behaviour.model or body.get("model", "fake-model"),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": behaviour.refusal},
                "finish_reason": behaviour.finish_reason,
            }],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }
        return 200, behaviour.headers, json.dumps(payload).encode()


def _prompt_chars(body: dict[str, Any]) -> int:
    return sum(len(m.get("content") or "") for m in body.get("messages", []) if isinstance(m.get("content"), str))


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {}, b'{"error": {"message": "FakeOpenAI only serves /v1/chat/completions"}}')
                return
            body = json.loads(raw or b"{}")
            behaviour = fake._next(body, {k.lower(): v for k, v in self.headers.items()})
            status, headers, payload = fake._respond(behaviour, body)
            self._send(status, headers, payload)

        def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nobody is listening for the answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; fake.requests is the record

    return Handler
