"""A scripted OpenAI-compatible chat-completions server for tests and benchmarks.

It is a real HTTP server on 127.0.0.1 (ephemeral port, stdlib only), so the
client under test goes through the real `openai` package and real sockets.
What it answers is scripted:

* `responder(request) -> str | list[str]` decides the content. A `str` is one
  completion; the server calls the responder once per requested choice, so a
  stateful responder yields different samples. A `list[str]` is the complete
  set of choices for that request, returned as is (fewer than `n` simulates
  a server that ignores `n`). The GIF-MCTS tests plug a scripted "fallible
  LLM" in here that reads the prompt from `request["messages"]`.
* `inject(*faults)` queues faults; each chat-completions request takes the
  next one (first in, first out) instead of the normal answer.

It records what the tests assert on: request counts (total and per path),
every chat request body and its headers, and the largest number of chat
requests in flight at once.

Use it as a context manager (tests/synth/llm/test_llm_client.py wraps it in a fixture):

    with LLMTestServer(responder=lambda req: "```python\\ndef step(s, a): ...```") as srv:
        client = LLMClient(LLMConfig(model=srv.model, base_url=srv.base_url))
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

__all__ = ["Fault", "FaultKind", "LLMTestServer", "NMode", "Responder", "default_responder"]

Responder = Callable[[dict[str, Any]], str | list[str]]
NMode = Literal["native", "one", "reject"]

FaultKind = Literal[
    "rate_limit",  # 429, with Retry-After when `retry_after` is set
    "server_error",  # 500
    "unavailable",  # 503
    "slow",  # the normal answer, after sleeping `delay` seconds
    "malformed_json",  # 200 with a body that is not JSON
    "empty",  # 200 with empty content ("" or null)
    "truncated",  # the normal answer cut in half, finish_reason "length"
    "model_not_found",  # 404 as vLLM words it
    "http_error",  # any other status, e.g. 400 or 401
]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, consumed by one chat-completions request."""

    kind: FaultKind
    retry_after: float | None = None
    delay: float = 0.0
    null_content: bool = False
    status: int = 0

    @classmethod
    def rate_limit(cls, retry_after: float | None = None) -> Fault:
        return cls("rate_limit", retry_after=retry_after)

    @classmethod
    def server_error(cls) -> Fault:
        return cls("server_error")

    @classmethod
    def unavailable(cls, retry_after: float | None = None) -> Fault:
        return cls("unavailable", retry_after=retry_after)

    @classmethod
    def slow(cls, delay: float) -> Fault:
        return cls("slow", delay=delay)

    @classmethod
    def malformed_json(cls) -> Fault:
        return cls("malformed_json")

    @classmethod
    def empty(cls, *, null_content: bool = False) -> Fault:
        return cls("empty", null_content=null_content)

    @classmethod
    def truncated(cls) -> Fault:
        return cls("truncated")

    @classmethod
    def model_not_found(cls) -> Fault:
        return cls("model_not_found")

    @classmethod
    def http_error(cls, status: int) -> Fault:
        return cls("http_error", status=status)


def default_responder() -> Responder:
    """A responder whose every sample is a distinct, valid `step` program."""
    counter = itertools.count()

    def respond(request: dict[str, Any]) -> str:
        k = next(counter)
        return (
            "Here is the model.\n\n```python\nimport jax.numpy as jnp\n\n\n"
            f"def step(state, action):\n    return state  # sample {k}\n```\n"
        )

    return respond


class LLMTestServer:
    """The server; start/stop it with `with` (or `start()` / `stop()`).

    Keyword options (all attributes may be changed while it runs):
    models: model names it serves; any other name gets a 404.
    n_mode: "native" honours `n`; "one" always returns a single choice;
        "reject" answers 400 to any request with n > 1 (like a server that
        validates and refuses the parameter).
    include_usage: return `usage`, or omit it as some servers do.
    latency: seconds every chat request takes (to measure concurrency).
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        models: tuple[str, ...] = ("test-model",),
        n_mode: NMode = "native",
        include_usage: bool = True,
        latency: float = 0.0,
    ) -> None:
        self.responder = responder or default_responder()
        self.models = models
        self.n_mode = n_mode
        self.include_usage = include_usage
        self.latency = latency
        self.chat_requests: list[dict[str, Any]] = []
        self.chat_headers: list[dict[str, str]] = []
        self.requests_by_path: Counter[str] = Counter()
        self.max_in_flight = 0
        self._in_flight = 0
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -----------------------------------------------------------

    @property
    def model(self) -> str:
        return self.models[0]

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the test server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests_total(self) -> int:
        return sum(self.requests_by_path.values())

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each chat request consumes one, in order."""
        with self._lock:
            self._faults.extend(faults)

    def reset_counts(self) -> None:
        with self._lock:
            self.chat_requests.clear()
            self.chat_headers.clear()
            self.requests_by_path.clear()
            self.max_in_flight = 0

    def start(self) -> LLMTestServer:
        handler = type("Handler", (_Handler,), {"scripted": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True  # a slow answer must not block stop()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LLMTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling (runs on the server's threads) -------------------

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _enter(self, path: str, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.requests_by_path[path] += 1
            if body is not None:
                self.chat_requests.append(body)
                self.chat_headers.append(headers or {})
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _chat(self, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Status, extra headers and body for one chat-completions request."""
        fault = self._next_fault()
        if self.latency:
            time.sleep(self.latency)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
            fault = None
        model = request.get("model")
        if model not in self.models or (fault is not None and fault.kind == "model_not_found"):
            return _error(HTTPStatus.NOT_FOUND, f"The model `{model}` does not exist.", "NotFoundError")
        n = int(request.get("n") or 1)
        if fault is not None:
            if fault.kind in ("rate_limit", "unavailable", "server_error"):
                status = {
                    "rate_limit": HTTPStatus.TOO_MANY_REQUESTS,
                    "unavailable": HTTPStatus.SERVICE_UNAVAILABLE,
                    "server_error": HTTPStatus.INTERNAL_SERVER_ERROR,
                }[fault.kind]
                status, headers, body = _error(status, f"scripted {fault.kind}", fault.kind)
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                return status, headers, body
            if fault.kind == "http_error":
                return _error(fault.status, f"scripted HTTP {fault.status}", "http_error")
            if fault.kind == "malformed_json":
                return 200, {"Content-Type": "application/json"}, b'{"id": "chatcmpl-x", "choices": [{"mess'
        if n > 1 and self.n_mode == "reject":
            return _error(HTTPStatus.BAD_REQUEST, "'n' must be 1", "invalid_request_error")
        texts = self._texts(request, 1 if self.n_mode == "one" else n)
        finish = "stop"
        if fault is not None and fault.kind == "empty":
            texts = [None if fault.null_content else "" for _ in texts]
        elif fault is not None and fault.kind == "truncated":
            texts = [t[: max(1, len(t) // 2)] for t in texts]
            finish = "length"
        return 200, {"Content-Type": "application/json"}, json.dumps(self._completion(request, texts, finish)).encode()

    def _texts(self, request: dict[str, Any], n: int) -> list[str]:
        first = self.responder(request)
        if isinstance(first, list):
            return list(first)
        return [first] + [str(self.responder(request)) for _ in range(n - 1)]

    def _completion(self, request: dict[str, Any], texts: list[str | None], finish: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model"),
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": finish}
                for i, t in enumerate(texts)
            ],
        }
        if self.include_usage:
            prompt = sum(len(str(m.get("content", ""))) for m in request.get("messages", [])) // 4 + 1
            completion = sum(len(t or "") for t in texts) // 4
            body["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return body


def _error(status: int, message: str, kind: str) -> tuple[int, dict[str, str], bytes]:
    body = {"error": {"message": message, "type": kind, "code": int(status)}}
    return int(status), {"Content-Type": "application/json"}, json.dumps(body).encode()


class _Handler(BaseHTTPRequestHandler):
    scripted: LLMTestServer  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.scripted._enter(self.path, None)
        if self.path.rstrip("/") != "/v1/models":
            self._send(*_error(HTTPStatus.NOT_FOUND, f"no route {self.path}", "not_found"))
            return
        data = [{"id": m, "object": "model", "owned_by": "test"} for m in self.scripted.models]
        self._send(200, {"Content-Type": "application/json"}, json.dumps({"object": "list", "data": data}).encode())

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.scripted._enter(self.path, None)
            self._send(*_error(HTTPStatus.NOT_FOUND, f"no route {self.path}", "not_found"))
            return
        try:
            request = json.loads(raw)
        except json.JSONDecodeError:
            self.scripted._enter(self.path, None)
            self._send(*_error(HTTPStatus.BAD_REQUEST, "request body is not JSON", "invalid_request_error"))
            return
        self.scripted._enter(self.path, request, {k.lower(): v for k, v in self.headers.items()})
        try:
            self._send(*self.scripted._chat(request))
        finally:
            self.scripted._leave()

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before the answer was ready
