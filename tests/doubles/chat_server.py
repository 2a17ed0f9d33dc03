"""A local HTTP double of the chat endpoints the inference clients call, scripted per model or per call.

It serves, on 127.0.0.1 in a daemon thread (ThreadingHTTPServer, HTTP/1.1 keep-alive, so thousands of
calls from a pool of threads stay cheap):

- `POST /v1/messages`: Anthropic's Messages API (https://docs.anthropic.com/en/api/messages); key in
  `x-api-key` or as a bearer token, request id in the `request-id` header, errors as `{"type": "error", "error": {"type", "message"}}`;
- `POST /v1/chat/completions`: OpenAI's chat completions (https://platform.openai.com/docs/api-reference/chat);
  key as `Authorization: Bearer`, request id in `x-request-id`, errors as `{"error": {"message", "type", "param", "code"}}`;
- `POST /model/{modelId}/converse`: Bedrock Converse (rest-json; errors name their code in `x-amzn-ErrorType`),
  so botocore's own timeouts and error parsing can be tested over the wire (moto has no `converse`).

By default a model echoes the last user turn. `script(model, Behaviour(...))` sets what a model does on every
call, `script_next(Behaviour(...), times)` what the next calls do whatever their model: a fixed or computed
answer, a delay, an error status (429 with Retry-After, 400, 404, 500, 529...), or a hang longer than the
client's timeout. Token counts are whitespace-separated words, so tests can predict them; `max_tokens` and
stop sequences cut the answer the way the real APIs do. `calls` counts every request received.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

ANTHROPIC_KEY = "sk-ant-double-test"
OPENAI_KEY = "sk-double-test"
ANTHROPIC, OPENAI, CONVERSE = "anthropic", "openai", "converse"

Answer = str | Callable[[dict[str, Any]], str] | None
"""A fixed text, a function of the parsed request (its `model`, `system`, `messages`), or None to echo."""


@dataclass(frozen=True)
class Behaviour:
    """What the double does for one call: wait `delay_s`, then answer `text` or fail with `status`."""

    text: Answer = None
    delay_s: float = 0.0
    status: int = 200
    message: str | None = None
    retry_after: str | None = None
    usage: tuple[int, int] | None = None
    """(input, output) tokens to report instead of word counts."""
    omit_usage: bool = False
    """Leave usage out of the answer, as some OpenAI-compatible servers do."""


def answer(text: Answer = None, **options: Any) -> Behaviour:
    return Behaviour(text=text, **options)


def rate_limited(retry_after: str | None = "2", message: str = "Number of request tokens has exceeded your rate limit") -> Behaviour:
    return Behaviour(status=429, retry_after=retry_after, message=message)


def failing(status: int, message: str | None = None) -> Behaviour:
    return Behaviour(status=status, message=message)


def hang(seconds: float = 30.0) -> Behaviour:
    """Answer only after `seconds` (or when the double closes): longer than any test's client timeout."""
    return Behaviour(delay_s=seconds)


@dataclass
class Call:
    """One request as received: which API, which model, and the parsed JSON body."""

    api: str
    model: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class ChatDouble:
    """The double's scripts, counters and server; use as a context manager or call `serve()` and `close()`."""

    def __init__(self, *, delay_s: float = 0.0, record: bool = True) -> None:
        self.delay_s = delay_s
        self.record = record
        self.received: list[Call] = []
        self._calls = 0
        self._scripts: dict[str, Behaviour] = {}
        self._next: list[Behaviour] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def serve(self) -> ChatDouble:
        double = self

        class Handler(_Handler):
            state = double

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 256  # a burst of new keep-alive connections must not be refused
        self._thread = threading.Thread(target=self._server.serve_forever, name="chat-double", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wake every hanging handler
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ChatDouble:
        return self.serve()

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def root_url(self) -> str:
        assert self._server is not None, "call serve() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def anthropic_base_url(self) -> str:
        """What ANTHROPIC_BASE_URL should hold: the SDK appends /v1/messages itself."""
        return self.root_url

    @property
    def openai_base_url(self) -> str:
        """What OPENAI_BASE_URL should hold (it includes /v1, as OpenAI's own does)."""
        return f"{self.root_url}/v1"

    # -- test-side controls ------------------------------------------------------------------------

    def script(self, model: str, behaviour: Behaviour) -> None:
        """Make every call to `model` behave this way (until `reset`)."""
        with self._lock:
            self._scripts[model] = behaviour

    def script_next(self, behaviour: Behaviour, times: int = 1) -> None:
        """Make the next `times` calls behave this way, whatever their model, before any per-model script."""
        with self._lock:
            self._next.extend([behaviour] * times)

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._next.clear()
            self.received.clear()
            self._calls = 0

    @property
    def calls(self) -> int:
        with self._lock:
            return self._calls

    def calls_to(self, api: str) -> list[Call]:
        with self._lock:
            return [call for call in self.received if call.api == api]

    # -- what the endpoints do ---------------------------------------------------------------------

    def count(self, call: Call) -> None:
        with self._lock:
            self._calls += 1
            if self.record:
                self.received.append(call)

    def behaviour_for(self, call: Call) -> Behaviour:
        """Count the call, then pick what it does: the next scripted call first, else its model's script."""
        self.count(call)
        with self._lock:
            if self._next:
                return self._next.pop(0)
            return self._scripts.get(call.model, Behaviour())

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def wait(self, behaviour: Behaviour) -> None:
        delay = behaviour.delay_s or self.delay_s
        if delay:
            self._closing.wait(delay)

    def next_id(self) -> int:
        return next(self._ids)


def _words(text: str) -> int:
    return len(text.split())


def _text(content: Any) -> str:
    """Text of a message's content: a string, or a list of blocks (Anthropic `{"type": "text"}`, Converse `{"text"}`)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return ""


def normalised(api: str, body: dict[str, Any], model: str) -> dict[str, Any]:
    """Read any of the three request shapes as {model, system, messages[{role, content}], max_tokens, stop}."""
    messages = [{"role": m.get("role"), "content": _text(m.get("content"))} for m in body.get("messages") or []]
    if api == ANTHROPIC:
        system = _text(body.get("system") or "")
        return {"model": model, "system": system, "messages": messages, "max_tokens": body.get("max_tokens"),
                "stop": body.get("stop_sequences") or []}
    if api == OPENAI:
        system = "".join(m["content"] for m in messages if m["role"] in ("system", "developer"))
        turns = [m for m in messages if m["role"] not in ("system", "developer")]
        stop = body.get("stop") or []
        return {"model": model, "system": system, "messages": turns,
                "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens"),
                "stop": [stop] if isinstance(stop, str) else stop}
    config = body.get("inferenceConfig") or {}
    return {"model": model, "system": _text(body.get("system") or []), "messages": messages,
            "max_tokens": config.get("maxTokens"), "stop": config.get("stopSequences") or []}


def produce(behaviour: Behaviour, request: dict[str, Any]) -> tuple[str, str, int, int]:
    """The answer text, why it stopped (end/max/stop), and the (input, output) token counts."""
    if behaviour.text is None:
        users = [m["content"] for m in request["messages"] if m["role"] == "user"]
        text = users[-1] if users else ""
    elif callable(behaviour.text):
        text = behaviour.text(request)
    else:
        text = behaviour.text
    reason = "end"
    cuts = [text.index(stop) for stop in request["stop"] if stop and stop in text]
    if cuts:
        text, reason = text[: min(cuts)], "stop"
    limit = request.get("max_tokens")
    if isinstance(limit, int) and _words(text) > limit:
        text, reason = " ".join(text.split()[:limit]), "max"
    prompt = " ".join([request["system"], *(m["content"] for m in request["messages"])])
    tokens_in, tokens_out = behaviour.usage or (_words(prompt), _words(text))
    return text, reason, tokens_in, tokens_out


_REASONS = {
    ANTHROPIC: {"end": "end_turn", "stop": "stop_sequence", "max": "max_tokens"},
    OPENAI: {"end": "stop", "stop": "stop", "max": "length"},
    CONVERSE: {"end": "end_turn", "stop": "stop_sequence", "max": "max_tokens"},
}
_ANTHROPIC_ERRORS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                     404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                     529: "overloaded_error"}
_CONVERSE_ERRORS = {400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
                    408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
                    500: "InternalServerException", 503: "ServiceUnavailableException"}


def success(api: str, double: ChatDouble, behaviour: Behaviour, request: dict[str, Any]) -> dict[str, Any]:
    text, reason, tokens_in, tokens_out = produce(behaviour, request)
    number = double.next_id()
    if api == ANTHROPIC:
        body: dict[str, Any] = {
            "id": f"msg_double_{number:06d}", "type": "message", "role": "assistant", "model": request["model"],
            "content": [{"type": "text", "text": text}], "stop_reason": _REASONS[api][reason], "stop_sequence": None,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        }
    elif api == OPENAI:
        body = {
            "id": f"chatcmpl-double{number:06d}", "object": "chat.completion", "created": int(time.time()),
            "model": request["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": _REASONS[api][reason]}],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out},
        }
    else:
        body = {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": _REASONS[api][reason],
            "usage": {"inputTokens": tokens_in, "outputTokens": tokens_out, "totalTokens": tokens_in + tokens_out},
            "metrics": {"latencyMs": int((behaviour.delay_s or double.delay_s) * 1000)},
        }
    if behaviour.omit_usage:
        body.pop("usage", None)
    return body


def failure(api: str, status: int, message: str | None, model: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The error body and any extra headers each API sends for `status`."""
    said = message or (f"model: {model}" if status == 404 else f"The double was told to answer {status}")
    if api == ANTHROPIC:
        kind = _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": said}}, {}
    if api == OPENAI:
        kind = {429: "requests", 401: "invalid_request_error"}.get(status, "server_error" if status >= 500 else "invalid_request_error")
        code = {429: "rate_limit_exceeded", 404: "model_not_found", 401: "invalid_api_key"}.get(status)
        return {"error": {"message": said, "type": kind, "param": None, "code": code}}, {}
    code = _CONVERSE_ERRORS.get(status, "InternalServerException" if status >= 500 else "ValidationException")
    return {"message": said}, {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"}


class _Handler(BaseHTTPRequestHandler):
    state: ChatDouble
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: with Nagle, each answer waits ~40 ms

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures, not access logs
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        route = self._route(path, body)
        if route is None:
            self._send(404, {"error": {"message": f"no route for POST {path}", "type": "invalid_request_error"}})
            return
        api, model = route
        call = Call(api, model, body, {k.lower(): v for k, v in self.headers.items()})
        if not self._authorised(api):
            self.state.count(call)
            self._send(401, *failure(api, 401, "invalid x-api-key" if api == ANTHROPIC else "Incorrect API key provided", model))
            return
        behaviour = self.state.behaviour_for(call)
        self.state.wait(behaviour)
        if self.state.closing and behaviour.delay_s:
            return  # the double is closing under a hung call: nobody is waiting for the answer
        if behaviour.status != 200:
            payload, headers = failure(api, behaviour.status, behaviour.message, model)
            headers.update(self._request_id(api))
            if behaviour.retry_after is not None:
                headers["retry-after"] = behaviour.retry_after
            self._send(behaviour.status, payload, headers)
            return
        payload = success(api, self.state, behaviour, normalised(api, body, model))
        self._send(200, payload, self._request_id(api))

    def _route(self, path: str, body: dict[str, Any]) -> tuple[str, str] | None:
        if path == "/v1/messages":
            return ANTHROPIC, str(body.get("model", ""))
        if path == "/v1/chat/completions":
            return OPENAI, str(body.get("model", ""))
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "model" and parts[3] == "converse":
            return CONVERSE, unquote(parts[2])
        return None

    def _authorised(self, api: str) -> bool:
        if api == ANTHROPIC:  # the API takes `x-api-key`; anthropic 2.x sends the key as a bearer token instead
            return ANTHROPIC_KEY in (self.headers.get("x-api-key"), self.headers.get("Authorization", "").removeprefix("Bearer "))
        if api == OPENAI:
            authorization = self.headers.get("Authorization", "")
            return authorization in (f"Bearer {OPENAI_KEY}", "Bearer not-needed")
        return True  # botocore signs with SigV4; checking the signature is not what these tests are about

    def _request_id(self, api: str) -> dict[str, str]:
        number = self.state.next_id()
        name = {ANTHROPIC: "request-id", OPENAI: "x-request-id", CONVERSE: "x-amzn-RequestId"}[api]
        return {name: f"req_double_{number:06d}"}

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout passed) before the answer came


@contextmanager
def chat_double(**options: Any) -> Iterator[ChatDouble]:
    """A served double, closed on exit."""
    double = ChatDouble(**options).serve()
    try:
        yield double
    finally:
        double.close()
