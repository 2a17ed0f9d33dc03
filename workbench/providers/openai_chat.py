"""Any OpenAI-compatible chat completions endpoint through the official `openai` SDK: OpenAI, Ollama, vLLM.

API reference: https://platform.openai.com/docs/api-reference/chat/create. Facts relied on:

- `chat.completions.create(model, messages, temperature, top_p, stop, max_completion_tokens | max_tokens)`;
  the system text is the first message, with role `system`.
- OpenAI deprecated `max_tokens` for `max_completion_tokens` (its reasoning models refuse `max_tokens`),
  while Ollama's compatibility layer lists only `max_tokens`
  (https://docs.ollama.com/api/openai-compatibility) and vLLM accepts both. So OpenAI itself gets
  `max_completion_tokens` and any other base URL gets `max_tokens`; `max_tokens_field` overrides.
- The answer is `choices[0].message.content` (None when empty), `choices[0].finish_reason`
  (`stop | length | content_filter | tool_calls`), and `usage.prompt_tokens` / `usage.completion_tokens`;
  some local servers omit `usage`, and the counts are then None, never guessed.
- The request id is the `x-request-id` header (`completion._request_id`, `APIStatusError.request_id`).
- Errors come as `{"error": {"message", "type", "param", "code"}}` (vLLM: `{"message", "type", ...}` at the
  top level); a 429 may carry `retry-after-ms` or `retry-after`.

`OPENAI_BASE_URL` (or `base_url=`) points the client at another server; a local server needs no key, so
when a base URL is set and `OPENAI_API_KEY` is not, a placeholder key is sent (the SDK requires one).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import openai

from workbench.providers.inference import (
    ClientError,
    ClientKind,
    ClientStatus,
    InferenceRequest,
    InferenceResponse,
    NotConfigured,
    RateLimited,
    ServerError,
    TimedOut,
    describe_failure,
    elapsed_ms,
    retry_after_seconds,
)

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"
"""Sent to a local server when no key is set: Ollama and vLLM ignore it, the SDK refuses an empty one."""
KIND = ClientKind.OPENAI
MaxTokensField = Literal["max_completion_tokens", "max_tokens"]
SETUP_HINT = (
    f"set {API_KEY_ENV} for OpenAI, or {BASE_URL_ENV} for an OpenAI-compatible server "
    "(Ollama: http://localhost:11434/v1, vLLM: http://localhost:8000/v1)"
)


class OpenAIChatClient:
    """Send requests to one chat completions endpoint; one SDK client, shared by every thread."""

    kind = KIND

    def __init__(self, sdk: openai.OpenAI, *, max_tokens_field: MaxTokensField | None = None) -> None:
        self.sdk = sdk
        self.max_tokens_field: MaxTokensField = max_tokens_field or default_max_tokens_field(str(sdk.base_url))

    @classmethod
    def from_environment(cls, *, api_key: str | None = None, base_url: str | None = None,
                         max_tokens_field: MaxTokensField | None = None) -> OpenAIChatClient:
        """Build from OPENAI_API_KEY and OPENAI_BASE_URL (explicit arguments first), with SDK retries off."""
        url = base_url or os.environ.get(BASE_URL_ENV, "").strip() or None
        key = api_key or os.environ.get(API_KEY_ENV, "").strip() or None
        if key is None:
            if url is None:
                raise NotConfigured(f"No OpenAI API key or base URL: {SETUP_HINT}", setting=API_KEY_ENV, kind=KIND)
            key = PLACEHOLDER_KEY
        import openai  # here, not at the top: `status()` must not pay for loading the SDK

        sdk = openai.OpenAI(api_key=key, base_url=url, max_retries=0)
        return cls(sdk, max_tokens_field=max_tokens_field)

    def complete(self, request: InferenceRequest) -> InferenceResponse:
        """Call `chat.completions.create` once and report what the server answered."""
        import openai

        started = time.perf_counter()
        try:
            completion = self.sdk.chat.completions.create(**self.build_params(request), timeout=request.timeout_s)
        except openai.APIError as exc:
            raise translate(exc, request.model, str(self.sdk.base_url)) from exc
        latency = elapsed_ms(started)
        if not completion.choices:
            raise ServerError(describe_failure(KIND, request.model, "the answer held no choices"),
                              kind=KIND, model=request.model, request_id=completion._request_id)
        choice = completion.choices[0]
        usage = completion.usage
        return InferenceResponse(
            kind=KIND, text=choice.message.content or "",
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            latency_ms=latency, model=completion.model or request.model, stop_reason=choice.finish_reason,
            request_id=completion._request_id,
        )

    def build_params(self, request: InferenceRequest) -> dict[str, Any]:
        """The keyword arguments of `chat.completions.create` for `request`."""
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role.value, "content": m.content} for m in request.messages]
        params: dict[str, Any] = {"model": request.model, "messages": messages, self.max_tokens_field: request.max_tokens}
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.top_p is not None:
            params["top_p"] = request.top_p
        if request.stop:
            params["stop"] = list(request.stop)
        return params


def default_max_tokens_field(base_url: str) -> MaxTokensField:
    """`max_completion_tokens` for OpenAI's own API, `max_tokens` for every other compatible server."""
    host = urlsplit(base_url).hostname or ""
    return "max_completion_tokens" if host == "api.openai.com" or host.endswith(".openai.azure.com") else "max_tokens"


def provider_message(exc: openai.APIStatusError) -> str:
    """The server's own words: `error.message` (the SDK hands us the `error` object as `body`), else the SDK's."""
    body = exc.body
    if isinstance(body, dict):
        said = body.get("message") or (body.get("error") if isinstance(body.get("error"), str) else None)
        if said:
            return str(said)
    return exc.message


def translate(exc: openai.APIError, model: str, base_url: str) -> Exception:
    """Map an SDK error to the workbench's typed errors, keeping the server's message and request id."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return TimedOut(describe_failure(KIND, model, f"no answer from {base_url} within the timeout"), kind=KIND, model=model)
    if isinstance(exc, openai.APIConnectionError):
        said = f"could not reach {base_url} ({exc.message}); is the server running?"
        return ServerError(describe_failure(KIND, model, said), kind=KIND, model=model)
    if not isinstance(exc, openai.APIStatusError):
        return ServerError(describe_failure(KIND, model, exc.message), kind=KIND, model=model)
    said = provider_message(exc)
    details: dict[str, Any] = {"kind": KIND, "model": model, "status_code": exc.status_code,
                               "provider_message": said, "request_id": exc.request_id}
    message = describe_failure(KIND, model, said, status_code=exc.status_code, error_type=exc.type, request_id=exc.request_id)
    if exc.status_code == 429:
        return RateLimited(message, retry_after_s=retry_after_seconds(exc.response.headers), **details)
    if exc.status_code == 408:
        return TimedOut(message, **details)
    if exc.status_code == 401:
        return NotConfigured(f"{message}; set {API_KEY_ENV} to a key {base_url} accepts", setting=API_KEY_ENV, **details)
    if exc.status_code >= 500:
        return ServerError(message, **details)
    return ClientError(message, **details)


def from_environment(**options: Any) -> OpenAIChatClient:
    return OpenAIChatClient.from_environment(**options)


def status() -> ClientStatus:
    """Configured when OPENAI_API_KEY or OPENAI_BASE_URL is set; the detail names the endpoint."""
    url = os.environ.get(BASE_URL_ENV, "").strip()
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not url and not key:
        return ClientStatus(kind=KIND, configured=False, setting=API_KEY_ENV, detail=SETUP_HINT)
    where = url or DEFAULT_BASE_URL
    how = f"{API_KEY_ENV} is set" if key else "no key set (a local server needs none)"
    return ClientStatus(kind=KIND, configured=True, detail=f"requests go to {where}; {how}")
