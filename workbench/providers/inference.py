"""The one protocol every inference client implements, its request and response, and the errors it raises.

A client sends one chat request to one outside system (Anthropic's Messages API, Bedrock Converse, any
OpenAI-compatible chat completions endpoint, or a local transformers model) and answers with what that
system reported: the text, the token counts it counted, its stop reason and request id. Latency is
measured here, around the call.

Clients never retry: each SDK is built with retries off, so the caller (the comparison runner) owns
backoff and counts every attempt. Failures arrive as one of five typed errors, each saying whether a
retry can help:

- `RateLimited`: the provider asked to slow down (`retry_after_s` when it said how long);
- `TimedOut`: no answer within the request's `timeout_s`;
- `ServerError`: the provider failed (5xx) or could not be reached;
- `ClientError`: the request was refused (4xx: unknown model, bad parameter), with the provider's message;
- `NotConfigured`: a key, region or package is missing or was rejected; the message names what to set.

`client_for(kind)` builds a client from the environment; `client_status()` says, for every kind, whether
it is configured and, if not, what to set, without raising, so a page can render either way.
Clients never touch the store.
"""

from __future__ import annotations

import email.utils
import importlib
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from workbench.errors import InvalidInput, ProviderError, WorkbenchError


class ClientKind(StrEnum):
    """Who answers a request; the `CLIENT` of `NAME@VERSION=CLIENT:MODEL` on the command line."""

    ANTHROPIC = "anthropic"
    BEDROCK = "bedrock"
    OPENAI = "openai"
    LOCAL = "local"


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class ChatMessage(BaseModel):
    """One turn of the conversation; the system text travels beside the turns, not among them."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


class InferenceRequest(BaseModel):
    """Everything a client needs for one call; the same request means the same call on every client."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(min_length=1, description="The provider's model id, a Bedrock ARN, or a local folder.")
    messages: tuple[ChatMessage, ...] = Field(min_length=1, description="The turns, oldest first; the last is the user's.")
    system: str = Field(default="", description="System text; empty sends none.")
    temperature: float | None = Field(
        default=None, ge=0, le=2,
        description="Sampling temperature; None leaves the provider's default (newer Claude models refuse any value).",
    )
    max_tokens: int = Field(default=1024, ge=1, description="The most tokens the model may generate.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling; None leaves the default.")
    stop: tuple[str, ...] = Field(default=(), description="Sequences that end the output where they appear.")
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="Seconds to wait for the whole answer.")


class InferenceResponse(BaseModel):
    """What the provider answered, in its own counts: token counts are None when it reported none."""

    model_config = ConfigDict(frozen=True)

    kind: ClientKind
    text: str = Field(description="The output text, exactly as produced: never escaped or cleaned here.")
    input_tokens: int | None = Field(description="Input tokens as the provider counted them; None if not reported.")
    output_tokens: int | None = Field(description="Output tokens as the provider counted them; None if not reported.")
    latency_ms: float = Field(description="Wall time around the call, in milliseconds.")
    model: str = Field(description="The model id the provider says answered (the request's when it says none).")
    stop_reason: str | None = Field(description="The provider's own word: end_turn, stop, length, max_tokens...")
    request_id: str | None = Field(default=None, description="The provider's request id, for its support desk.")

    @property
    def hit_max_tokens(self) -> bool:
        """True when the output was cut by `max_tokens` (each provider says so in its own word)."""
        return self.stop_reason in MAX_TOKENS_REASONS


MAX_TOKENS_REASONS = frozenset({"max_tokens", "length"})


class InferenceClient(Protocol):
    """Send one chat request and return the provider's answer, or raise one of the typed errors below."""

    kind: ClientKind

    def complete(self, request: InferenceRequest) -> InferenceResponse:
        ...


# --- errors ----------------------------------------------------------------------------------------------


class InferenceError(ProviderError):
    """A call failed; `retryable` says whether the same call may succeed later."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, kind: ClientKind | None = None, model: str | None = None,
                 status_code: int | None = None, provider_message: str | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.model = model
        self.status_code = status_code
        self.provider_message = provider_message
        self.request_id = request_id


class RateLimited(InferenceError):
    """The provider asked us to slow down; `retry_after_s` is how long it asked for, when it said."""

    retryable = True

    def __init__(self, message: str, *, retry_after_s: float | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after_s = retry_after_s


class TimedOut(InferenceError):
    """No answer within the request's timeout; the provider may still have done (and billed) the work."""

    retryable = True


class ServerError(InferenceError):
    """The provider failed (5xx, overloaded) or could not be reached at all."""

    retryable = True


class ClientError(InferenceError):
    """The provider refused the request (4xx other than 429); `provider_message` says why. Retrying will not help."""


class NotConfigured(InferenceError):
    """A key, region, endpoint or package is missing or was rejected; `setting` names what to set."""

    def __init__(self, message: str, *, setting: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.setting = setting


def describe_failure(kind: ClientKind, model: str, provider_message: str, *, status_code: int | None = None,
                     error_type: str | None = None, request_id: str | None = None) -> str:
    """Word an error the same way for every client: who, which model, what the provider said, and its ids."""
    facts = [f"HTTP {status_code}" if status_code else None, error_type, f"request id {request_id}" if request_id else None]
    details = ", ".join(fact for fact in facts if fact)
    return f"{kind} model {model!r}: {provider_message}" + (f" ({details})" if details else "")


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Read how long a 429 asked us to wait: `retry-after-ms`, else `retry-after` in seconds or as an HTTP date.

    `retry-after-ms` is OpenAI's and Anthropic's more precise form; `retry-after` is RFC 9110 section 10.2.3.
    """
    if not headers:
        return None
    lowered = {str(key).lower(): str(value) for key, value in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = lowered.get(name, "").strip()
        if not raw:
            continue
        try:
            seconds = float(raw) / divisor
        except ValueError:
            if name == "retry-after-ms":
                continue
            parsed = email.utils.parsedate_tz(raw)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
        return max(0.0, seconds)
    return None


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading)."""
    return round((time.perf_counter() - started) * 1000, 3)


# --- registry ---------------------------------------------------------------------------------------------


class ClientStatus(BaseModel):
    """Whether a kind of client can be used now and, when not, exactly what to set."""

    model_config = ConfigDict(frozen=True)

    kind: ClientKind
    configured: bool
    detail: str = Field(description="Where the client will send requests, or what is missing and how to fix it.")
    setting: str | None = Field(default=None, description="The environment variable or setting to set, when not configured.")


_MODULES: dict[ClientKind, str] = {
    ClientKind.ANTHROPIC: "workbench.providers.anthropic_client",
    ClientKind.BEDROCK: "workbench.providers.bedrock_converse",
    ClientKind.OPENAI: "workbench.providers.openai_chat",
    ClientKind.LOCAL: "workbench.providers.local_generate",
}
"""Each module defines `from_environment(**options) -> InferenceClient` and `status() -> ClientStatus`;
they are imported on first use, so checking one kind never loads another's SDK (or torch)."""


def parse_kind(kind: ClientKind | str) -> ClientKind:
    """Turn a user's word into a ClientKind, or say which words exist."""
    try:
        return ClientKind(str(kind).strip().lower())
    except ValueError:
        choices = ", ".join(k.value for k in ClientKind)
        raise InvalidInput(f"unknown model client {kind!r}; choose one of {choices}") from None


def client_for(kind: ClientKind | str, **options: Any) -> InferenceClient:
    """Build the client of `kind` from the environment; `options` override it (base_url, api_key, ...).

    Raises NotConfigured naming the variable to set when the environment lacks what the client needs.
    """
    module = importlib.import_module(_MODULES[parse_kind(kind)])
    client: InferenceClient = module.from_environment(**options)
    return client


def client_status() -> list[ClientStatus]:
    """Say for every kind whether it is configured, never raising: one broken check must not break a page."""
    statuses = []
    for kind, name in _MODULES.items():
        try:
            statuses.append(importlib.import_module(name).status())
        except (WorkbenchError, ImportError) as exc:
            statuses.append(ClientStatus(kind=kind, configured=False, detail=str(exc), setting=getattr(exc, "setting", None)))
    return statuses
