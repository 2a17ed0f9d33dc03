"""Claude through the official `anthropic` SDK's Messages API (`client.messages.create`).

API reference: https://docs.anthropic.com/en/api/messages (now https://platform.claude.com/docs/en/api/messages).
Facts relied on, checked against the installed SDK (anthropic 2.x):

- The request takes `model`, `max_tokens`, `messages` (user/assistant turns), `system` and
  `stop_sequences`. The SDK no longer has `temperature` or `top_p` arguments: models from Claude Opus 4.7
  on refuse them with a 400 ("`temperature` is deprecated for this model."), so they are sent through
  `extra_body` only when the request sets them, and such a refusal arrives as ClientError with that text.
- The answer's `content` is a list of blocks; the text is the concatenation of its `text` blocks.
  `usage.input_tokens` / `usage.output_tokens` are the billed counts; `stop_reason` is one of
  `end_turn | max_tokens | stop_sequence | tool_use | pause_turn | refusal`.
- The request id is the `request-id` response header (`message._request_id`, `APIStatusError.request_id`).
- Errors (https://docs.anthropic.com/en/api/errors): 400 invalid_request_error, 401 authentication_error,
  403 permission_error, 404 not_found_error, 413 request_too_large, 429 rate_limit_error (with
  `retry-after`), 500 api_error, 529 overloaded_error; the body is `{"type": "error", "error": {"type", "message"}}`.

The key comes from `ANTHROPIC_API_KEY` and is always passed explicitly, so the SDK never falls back to a
profile on disk; `ANTHROPIC_BASE_URL` points it elsewhere (a gateway, or the test double).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import anthropic

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

API_KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
DEFAULT_BASE_URL = "https://api.anthropic.com"
KIND = ClientKind.ANTHROPIC


class AnthropicClient:
    """Send requests to the Messages API; one SDK client, shared by every thread (it is thread-safe)."""

    kind = KIND

    def __init__(self, sdk: anthropic.Anthropic) -> None:
        self.sdk = sdk

    @classmethod
    def from_environment(cls, *, api_key: str | None = None, base_url: str | None = None) -> AnthropicClient:
        """Build from ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL), with SDK retries off."""
        key = api_key or os.environ.get(API_KEY_ENV, "").strip()
        if not key:
            raise NotConfigured(
                f"No Anthropic API key: set {API_KEY_ENV} (create one at https://console.anthropic.com/settings/keys)",
                setting=API_KEY_ENV, kind=KIND,
            )
        url = base_url or os.environ.get(BASE_URL_ENV, "").strip() or None
        import anthropic  # here, not at the top: `status()` must not pay for loading the SDK

        return cls(anthropic.Anthropic(api_key=key, base_url=url, max_retries=0))

    def complete(self, request: InferenceRequest) -> InferenceResponse:
        """Call `messages.create` once and report what Anthropic answered."""
        import anthropic

        started = time.perf_counter()
        try:
            message = self.sdk.messages.create(**build_params(request), timeout=request.timeout_s)
        except anthropic.APIError as exc:
            raise translate(exc, request.model) from exc
        latency = elapsed_ms(started)
        text = "".join(block.text for block in message.content if getattr(block, "type", None) == "text")
        return InferenceResponse(
            kind=KIND, text=text, input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens,
            latency_ms=latency, model=message.model or request.model, stop_reason=message.stop_reason,
            request_id=getattr(message, "_request_id", None),
        )


def build_params(request: InferenceRequest) -> dict[str, Any]:
    """The keyword arguments of `messages.create` for `request` (sampling settings only when set)."""
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [{"role": m.role.value, "content": m.content} for m in request.messages],
    }
    if request.system:
        params["system"] = request.system
    if request.stop:
        params["stop_sequences"] = list(request.stop)
    sampling = {name: value for name, value in (("temperature", request.temperature), ("top_p", request.top_p))
                if value is not None}
    if sampling:
        params["extra_body"] = sampling
    return params


def translate(exc: anthropic.APIError, model: str) -> Exception:
    """Map an SDK error to the workbench's typed errors, keeping Anthropic's own message and request id."""
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):
        return TimedOut(describe_failure(KIND, model, "no answer within the timeout"), kind=KIND, model=model)
    if isinstance(exc, anthropic.APIConnectionError):
        return ServerError(describe_failure(KIND, model, f"could not reach the API: {exc.message}"), kind=KIND, model=model)
    if not isinstance(exc, anthropic.APIStatusError):
        return ServerError(describe_failure(KIND, model, exc.message), kind=KIND, model=model)
    said = getattr(exc, "api_message", None) or exc.message
    details: dict[str, Any] = {"kind": KIND, "model": model, "status_code": exc.status_code,
                               "provider_message": said, "request_id": exc.request_id}
    message = describe_failure(KIND, model, said, status_code=exc.status_code, error_type=getattr(exc, "type", None),
                               request_id=exc.request_id)
    if exc.status_code == 429:
        return RateLimited(message, retry_after_s=retry_after_seconds(exc.response.headers), **details)
    if exc.status_code == 408:
        return TimedOut(message, **details)
    if exc.status_code == 401:
        return NotConfigured(f"{message}; set {API_KEY_ENV} to a valid key", setting=API_KEY_ENV, **details)
    if exc.status_code >= 500:
        return ServerError(message, **details)
    return ClientError(message, **details)


def from_environment(**options: Any) -> AnthropicClient:
    return AnthropicClient.from_environment(**options)


def status() -> ClientStatus:
    """Configured when ANTHROPIC_API_KEY is set; the detail names where requests go."""
    if not os.environ.get(API_KEY_ENV, "").strip():
        return ClientStatus(kind=KIND, configured=False, setting=API_KEY_ENV,
                            detail=f"set {API_KEY_ENV} to use Claude through the Anthropic API")
    url = os.environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
    return ClientStatus(kind=KIND, configured=True, detail=f"{API_KEY_ENV} is set; requests go to {url}")
