"""What a comparison is made of: variants (a template version answered by one client's model) and the retry rule.

A variant is written `NAME[@VERSION|@LABEL]=CLIENT[:MODEL]` on the command line: the template
version to render, who answers (`anthropic`, `bedrock`, `openai` or `local`) and the model; without
a model, the version's own model setting is used. The model part may itself hold colons (a Bedrock
ARN, an Ollama tag such as `llama3:8b`), so only the first colon after the client splits.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

from workbench.errors import InvalidInput

CLIENTS = ("anthropic", "bedrock", "openai", "local")
MIN_VARIANTS, MAX_VARIANTS = 2, 6
"""A comparison puts 2 to 6 variants side by side: fewer is an evaluation, more no longer reads as a matrix."""
MAX_CONCURRENCY = 32


class VariantSpec(BaseModel):
    """A variant as the user wrote it, before its template version is looked up."""

    model_config = ConfigDict(frozen=True)

    template_ref: str = Field(description="NAME, NAME@3 or NAME@production.")
    client: str = Field(description="Who answers: anthropic, bedrock, openai or local.")
    model: str | None = Field(default=None, description="The model id; None uses the template version's model.")


class Variant(BaseModel):
    """A variant resolved: the exact template version (by row id) and the model that answers it."""

    model_config = ConfigDict(frozen=True)

    label: str = Field(description="`name@version=client:model`: how the matrix heads its column.")
    template: str
    version: int
    version_id: int
    client: str
    model: str


def parse_variant(text: str) -> VariantSpec:
    """Read `NAME[@VERSION]=CLIENT[:MODEL]`, saying what was wrong and what the form is."""
    form = "NAME[@VERSION]=CLIENT[:MODEL], e.g. support-reply@2=openai:gpt-4o-mini"
    template_ref, equals, target = text.strip().partition("=")
    if not equals or not template_ref.strip() or not target.strip():
        raise InvalidInput(f"variant {text!r}: write it as {form}")
    client, _, model = target.strip().partition(":")
    if client not in CLIENTS:
        raise InvalidInput(f"variant {text!r}: unknown client {client!r}; choose one of {', '.join(CLIENTS)} ({form})")
    return VariantSpec(template_ref=template_ref.strip(), client=client, model=model.strip() or None)


def variant_label(template: str, version: int, client: str, model: str) -> str:
    return f"{template}@{version}={client}:{model}"


def check_variant_count(count: int, *, least: int = MIN_VARIANTS) -> None:
    if not least <= count <= MAX_VARIANTS:
        raise InvalidInput(f"choose {least} to {MAX_VARIANTS} variants; {count} given")


def check_concurrency(concurrency: int) -> int:
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidInput(f"concurrency must be 1 to {MAX_CONCURRENCY}, not {concurrency}")
    return concurrency


class RetryPolicy(BaseModel):
    """How often and how long to retry a call that may succeed later.

    Rate limits are expected in a big matrix: they are retried more often, waiting what the provider
    asked for (Retry-After) or an exponential backoff with full jitter, so parallel workers that were
    refused together do not return together. Timeouts and server errors are retried less: they may
    have cost money, and a model that is down stays down for a while.
    """

    model_config = ConfigDict(frozen=True)

    rate_limit_attempts: int = Field(6, ge=1)
    failure_attempts: int = Field(3, ge=1, description="Attempts for a timeout or a server error.")
    base_delay_s: float = Field(0.5, ge=0)
    max_delay_s: float = Field(30.0, ge=0)

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1` (`attempt` counts from 1)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_delay_s)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security
