"""A fake OpenAI-compatible server on loopback, for tests and benchmarks.

It speaks real HTTP (`POST /v1/chat/completions`) to the real `openai` SDK, records
every request body, and answers as scripted. Which behaviour answers a request:

1. the next queued one (`server.enqueue("malformed", "ok")`), else
2. with `mix={"rate_limit": 0.2, "server_error": 0.05}`, a seeded random draw
   (the draws come in the order requests arrive), the rest of the probability
   going to the default, else
3. the default (`FakeOpenAIServer(default="ok")`, or `server.default = ...`).

A behaviour is a name from `BEHAVIOURS`, a `Behaviour` (see `ok`, `rate_limit`,
`http_error`), or a function `(request_body, request_index) -> behaviour`.

    with FakeOpenAIServer() as server:
        client = OpenAI(base_url=server.base_url, api_key="test")
        ...
        assert server.requests[0]["temperature"] == 0

Also a pytest fixture named `fake_openai`: list `"tests.fake_openai"` in the root
conftest's `pytest_plugins`, or import `fake_openai_fixture` into the test module.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = [
    "BEHAVIOURS",
    "DEFAULT_ANSWER",
    "Behaviour",
    "BehaviourLike",
    "FakeOpenAIServer",
    "fake_openai_fixture",
    "http_error",
    "ok",
    "rate_limit",
]

BEHAVIOURS = (
    "ok",  # a valid estimate (DEFAULT_ANSWER, or the numbers given to `ok(...)`)
    "rate_limit",  # 429 with Retry-After
    "server_error",  # 500
    "hang",  # no answer for `hang_seconds`, then the connection is closed
    "malformed",  # 200 whose content is not JSON
    "wrong_order",  # 200 with low > most_likely > high
    "truncated",  # 200 with finish_reason "length" and cut-off JSON
    "refusal",  # 200 with message.refusal set and no content
    "content_filter",  # 200 with finish_reason "content_filter"
    "no_json_schema",  # 400 when json_schema output is requested, else like "ok"
    "no_temperature",  # 400 when a temperature other than 1 is sent, else like "ok"
    "http_error",  # any status and message (see `http_error`)
)

DEFAULT_ANSWER: Mapping[str, Any] = {
    "low": 30,
    "most_likely": 60,
    "high": 120,
    "confidence": 85,
    "task_category": "coding",
    "task_description": "Wrote and tested a small data-cleaning script",
    "reasoning": "test",
}


@dataclass(frozen=True)
class Behaviour:
    """How to answer one request."""

    kind: str
    answer: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_ANSWER))
    content: str | None = None  # raw message content instead of the JSON of `answer`
    status: int = 400  # for http_error
    message: str = "bad request"  # for http_error
    code: str | None = None  # error code, for http_error
    param: str | None = None  # error param, for http_error
    retry_after: str | None = "1"  # Retry-After header of rate_limit
    latency: float = 0.0  # extra seconds before answering

    def __post_init__(self) -> None:
        if self.kind not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {self.kind!r}; known: {', '.join(BEHAVIOURS)}")


BehaviourLike = str | Behaviour | Callable[[dict[str, Any], int], "str | Behaviour"]


def ok(latency: float = 0.0, **answer: Any) -> Behaviour:
    """A valid estimate; keyword arguments replace fields of `DEFAULT_ANSWER`."""
    return Behaviour("ok", answer={**DEFAULT_ANSWER, **answer}, latency=latency)


def rate_limit(retry_after: str | None = "1") -> Behaviour:
    """A 429 with this Retry-After header (None: no header)."""
    return Behaviour("rate_limit", retry_after=retry_after)


def http_error(
    status: int, message: str = "error", *, code: str | None = None, param: str | None = None
) -> Behaviour:
    """Any error status with an OpenAI-style error body."""
    return Behaviour("http_error", status=status, message=message, code=code, param=param)


def _as_behaviour(spec: BehaviourLike, body: dict[str, Any], index: int) -> Behaviour:
    if callable(spec) and not isinstance(spec, Behaviour):
        spec = spec(body, index)
    return spec if isinstance(spec, Behaviour) else Behaviour(str(spec))


class FakeOpenAIServer:
    """The server; start it with `start()` or `with`."""

    def __init__(
        self,
        default: BehaviourLike = "ok",
        *,
        mix: Mapping[str, float] | None = None,
        seed: int = 0,
        latency: float = 0.0,
        hang_seconds: float = 5.0,
        prompt_tokens: int = 1200,
        completion_tokens: int = 80,
        cached_tokens: int = 200,
    ) -> None:
        if mix and sum(mix.values()) > 1:
            raise ValueError("mix probabilities add up to more than 1")
        for kind in mix or {}:
            Behaviour(kind)  # validates the name
        self.default: BehaviourLike = default
        self.mix = dict(mix or {})
        self.latency = latency
        self.hang_seconds = hang_seconds
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cached_tokens = cached_tokens
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._queue: deque[BehaviourLike] = deque()
        self._requests: list[dict[str, Any]] = []
        self._arrivals: list[float] = []
        self._served: list[str] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Listen on a free loopback port and serve in a background thread."""
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests still hanging are released."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """What to pass as `base_url` / `OPENAI_BASE_URL`."""
        return f"http://127.0.0.1:{self.port}/v1"

    # --- scripting and records ---------------------------------------------------------

    def enqueue(self, *behaviours: BehaviourLike) -> None:
        """Answer the next requests with these behaviours, in order."""
        with self._lock:
            self._queue.extend(behaviours)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Bodies of every chat-completion request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def arrival_times(self) -> list[float]:
        """`time.monotonic()` at each request's arrival."""
        with self._lock:
            return list(self._arrivals)

    @property
    def served(self) -> list[str]:
        """The behaviour kind that answered each request."""
        with self._lock:
            return list(self._served)

    def reset(self) -> None:
        """Forget recorded requests and queued behaviours."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._arrivals.clear()
            self._served.clear()

    def _next_behaviour(self, body: dict[str, Any]) -> Behaviour:
        with self._lock:
            index = len(self._requests)
            self._requests.append(body)
            self._arrivals.append(time.monotonic())
            if self._queue:
                spec: BehaviourLike = self._queue.popleft()
            else:
                spec = self._draw() if self.mix else self.default
        behaviour = _as_behaviour(spec, body, index)
        with self._lock:
            self._served.append(behaviour.kind)
        return behaviour

    def _draw(self) -> BehaviourLike:
        point = self._random.random()
        for kind, probability in self.mix.items():
            if point < probability:
                return kind
            point -= probability
        return self.default

    # --- answers -------------------------------------------------------------------------

    def _completion(
        self,
        body: dict[str, Any],
        content: str | None,
        *,
        finish_reason: str = "stop",
        refusal: str | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            number = len(self._requests)
        return {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            },
        }


def _error_body(
    message: str, kind: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _wants_json_schema(body: dict[str, Any]) -> bool:
    response_format = body.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") == "json_schema"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers
    timeout = 30  # idle keep-alive connections end after this many seconds
    disable_nagle_algorithm = True  # headers and body go out as separate writes: avoid 40 ms stalls
    fake: FakeOpenAIServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, _error_body(f"no route {self.path}", "invalid_request_error"))
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, _error_body("request body is not JSON", "invalid_request_error"))
            return
        behaviour = self.fake._next_behaviour(body)
        delay = self.fake.latency + behaviour.latency
        if delay > 0 and self.fake._stopping.wait(delay):
            return
        self._answer(behaviour, body)

    def _answer(self, behaviour: Behaviour, body: dict[str, Any]) -> None:
        fake, kind = self.fake, behaviour.kind
        if kind == "hang":
            fake._stopping.wait(fake.hang_seconds)
            self.close_connection = True
            return
        if kind == "rate_limit":
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after is not None else {}
            error = _error_body("Rate limit reached for requests", "requests", code="rate_limit_exceeded")
            self._send_json(429, error, headers)
        elif kind == "server_error":
            self._send_json(
                500, _error_body("The server had an error processing your request.", "server_error")
            )
        elif kind == "http_error":
            error = _error_body(
                behaviour.message, "invalid_request_error", code=behaviour.code, param=behaviour.param
            )
            self._send_json(behaviour.status, error)
        elif kind == "no_json_schema" and _wants_json_schema(body):
            message = (
                "response_format of type 'json_schema' is not supported by this server; use 'json_object'"
            )
            self._send_json(400, _error_body(message, "invalid_request_error", param="response_format"))
        elif kind == "no_temperature" and body.get("temperature", 1) != 1:
            message = "Unsupported value: 'temperature' does not support 0 with this model."
            error = _error_body(
                message, "invalid_request_error", code="unsupported_value", param="temperature"
            )
            self._send_json(400, error)
        elif kind == "malformed":
            self._send_json(200, fake._completion(body, "Sure! I think this would take about an hour."))
        elif kind == "wrong_order":
            answer = {**behaviour.answer, "low": 120, "most_likely": 60, "high": 30}
            self._send_json(200, fake._completion(body, json.dumps(answer)))
        elif kind == "truncated":
            self._send_json(200, fake._completion(body, '{"low": 30, "most_li', finish_reason="length"))
        elif kind == "refusal":
            self._send_json(200, fake._completion(body, None, refusal="I'm sorry, I can't help with that."))
        elif kind == "content_filter":
            self._send_json(200, fake._completion(body, None, finish_reason="content_filter"))
        else:  # ok, and no_json_schema / no_temperature when the request is acceptable
            content = behaviour.content if behaviour.content is not None else json.dumps(behaviour.answer)
            self._send_json(200, fake._completion(body, content))

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(name="fake_openai")
def fake_openai_fixture() -> Iterator[FakeOpenAIServer]:
    """A running fake server answering "ok" by default; stopped after the test."""
    with FakeOpenAIServer() as server:
        yield server
