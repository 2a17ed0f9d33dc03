"""The shape of what the workbench knows about a fine-tuning target, as frozen pydantic models.

Every number here comes from a provider's documentation or its published sample validator, and each
model that holds one carries the `source` URL it came from, so a page can show where a limit comes from
and `docs/providers.md` can be checked against the code.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.domain.formats import Format
from workbench.domain.tokens import TokenCounter


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Provider(StrEnum):
    """Who runs the fine-tuning job."""

    OPENAI = "openai"
    BEDROCK = "bedrock"


class ToolSupport(StrEnum):
    """Whether a target's training data may hold tool definitions, tool calls and tool results."""

    ACCEPTED = "accepted"
    CAUTION = "caution"
    """The shape is accepted, but the provider warns that a job with tool use may fail."""
    REJECTED = "rejected"


class ToolUse(_Frozen):
    """Say whether and how tool use is written in a target's training records."""

    support: ToolSupport
    shape: str = Field(description="Where tool definitions, calls and results go in a record, in one or two sentences.")
    source: str = Field(description="URL of the documentation that states it.")


class Severity(StrEnum):
    """What a broken rule means: the provider refuses the file or job (error), or advice (warning)."""

    ERROR = "error"
    WARNING = "warning"


class RuleOrigin(StrEnum):
    """Who enforces a rule, so a user can tell the provider's refusals from the workbench's advice."""

    VALIDATOR = "validator"
    """The provider's published validator (AWS sample validator, OpenAI cookbook checks) fails the record or file."""
    SERVICE = "service"
    """The provider's documentation says its service refuses it, beyond (or stricter than) its published validator."""
    OURS = "ours"
    """The workbench's own check: advice, or a guard against a job that would train on nothing useful."""


class Rule(_Frozen):
    """One rule the validator checks, named by the finding codes it reports, with where it comes from.

    Within a target, a (code, severity) pair belongs to exactly one rule, so every finding names its rule.
    """

    id: str = Field(default="", description="Stable id shown beside findings and in docs, e.g. 'nova.reserved-tokens'.")
    summary: str = Field(description="What the rule requires, as a user reads it.")
    codes: tuple[str, ...] = Field(description="Finding codes a record breaking this rule is reported under.")
    severity: Severity = Field(default=Severity.ERROR, description="Error where the provider refuses; else warning.")
    origin: RuleOrigin = Field(default=RuleOrigin.VALIDATOR, description="Who enforces the rule.")
    source: str = Field(description="URL of the documentation or sample validator that states the rule.")
    anchor: str = Field(default="", description="Where in the source: a constant, function or heading, e.g. 'INVALID_TOKENS_TEXT'.")
    check: str = Field(
        default="", description="Dotted path of the workbench function that implements the rule, e.g. "
        "'workbench.domain.validation.converse._check_reserved'."
    )
    note: str = Field(default="", description="Where we differ from the published validator, and why.")


class RecordLimits(_Frozen):
    """Record counts and file sizes a job accepts, per split, and for both splits together."""

    min_train: int = Field(description="Fewest training records a job accepts.")
    max_train: int | None = Field(default=None, description="Most training records; None when none is stated.")
    min_validation: int = Field(default=1, description="Fewest validation records, when a validation file is sent.")
    max_validation: int | None = Field(default=None, description="Most validation records; None when none is stated.")
    max_combined: int | None = Field(
        default=None, description="Most training plus validation records together, where the provider states a total."
    )
    recommended_min_train: int | None = Field(
        default=None, description="Below this the provider expects little improvement: a warning, not an error."
    )
    max_train_bytes: int | None = Field(default=None, description="Largest training file accepted.")
    max_validation_bytes: int | None = Field(default=None, description="Largest validation file accepted.")
    source: str


class TokenLimit(_Frozen):
    """The per-record token limit and what happens to a record over it."""

    per_record: int | None = Field(default=None, description="Tokens per record; None when no limit is stated.")
    is_error: bool = Field(
        default=True, description="False where an over-long record is truncated (OpenAI) rather than rejected."
    )
    source: str | None = None


class ModelRule(_Frozen):
    """Facts that depend on the base model name, for known ids and for ids the catalogue does not list yet.

    Every rule whose `pattern` matches the start of a model id applies, in order; a later rule's set fields
    override an earlier one's.
    """

    pattern: str = Field(description="Regular expression matched at the start of the model id (re.match).")
    tokenizer: TokenCounter | None = None
    token_limit: int | None = None
    media_supported: bool | None = Field(default=None, description="Images/video in user turns accepted.")
    uses_validation_set: bool | None = Field(default=None, description="False where a validation file is ignored.")
    source: str

    def matches(self, model: str) -> bool:
        """Tell whether this rule applies to a model id (case-insensitive)."""
        return re.match(self.pattern, model, flags=re.IGNORECASE) is not None


class Hyperparameter(_Frozen):
    """One hyperparameter a job takes, drawn as a form field by the jobs page."""

    name: str = Field(description="The name the provider's API takes.")
    type: Literal["int", "float", "str"]
    choices: tuple[str, ...] = Field(default=(), description="For a 'str' setting: the values accepted.")
    min: float | None = None
    max: float | None = None
    default: float | str | None = Field(default=None, description="The provider's default; 'auto' where it picks one.")
    auto: bool = Field(default=False, description="True where 'auto' (let the provider choose) is accepted.")
    positive: bool = Field(default=False, description="True where the value must be strictly greater than 0.")
    help: str = ""
    source: str


class Price(_Frozen):
    """One price in USD, with the unit it applies to and where it was read."""

    usd: float
    unit: str = Field(description="What the price buys, e.g. '1K training tokens' or 'model per month (storage)'.")
    effective: date | None = Field(default=None, description="Date the price took effect, when the source gives one.")
    verified: bool = Field(default=False, description="False for prices copied second-hand: confirm on the source page.")
    source: str


class Lifecycle(_Frozen):
    """When a base model stops taking new fine-tuning jobs, and when it is retired, where documented."""

    fine_tuning_ends: date | None = None
    retirement: date | None = None
    source: str | None = None


class BaseModelSpec(_Frozen):
    """A base model a job can start from: its id, the form it is launched with, and what it costs."""

    id: str = Field(description="The id the provider's API takes (Bedrock: the customization id with its context suffix).")
    label: str
    region: str | None = Field(default=None, description="AWS region fine-tuning is offered in, where stated.")
    hyperparameters: tuple[Hyperparameter, ...] = ()
    prices: tuple[Price, ...] = ()
    lifecycle: Lifecycle = Lifecycle()
    note: str = ""
    source: str


class ModelFacts(_Frozen):
    """What a target's limits become for one base model, after its model rules are applied."""

    model: str | None
    tokenizer: TokenCounter
    token_limit: int | None
    media_supported: bool | None
    uses_validation_set: bool


class TargetSpec(_Frozen):
    """Everything the workbench knows about one fine-tuning target; the one place each fact is written."""

    id: str = Field(description="Stable id used by the CLI and the store, e.g. 'bedrock-claude-haiku'.")
    label: str = Field(description="Human name shown in pages and messages.")
    provider: Provider
    format: Format = Field(description="The JSONL record shape the target trains on.")
    records: RecordLimits
    tokens: TokenLimit
    tokenizer: TokenCounter = Field(description="How tokens are counted when no model rule says otherwise.")
    model_rules: tuple[ModelRule, ...] = ()
    media_supported: bool | None = Field(
        default=None, description="Converse images/video when no model rule says: True, False, or None (depends on the model)."
    )
    max_system_items: int | None = Field(default=None, description="Cap on the Converse `system` list.")
    check_reserved_tokens: bool = Field(default=False, description="Nova fails jobs whose text holds reserved tokens.")
    tool_use: ToolUse
    rules: tuple[Rule, ...] = Field(description="What the validator checks for this target, with sources.")
    base_models: tuple[BaseModelSpec, ...] = ()
    default_base_model: str | None = Field(default=None, description="The model limits are shown for when none is chosen.")

    def base_model(self, model_id: str) -> BaseModelSpec | None:
        """Return the listed base model with this id, or None for an id the catalogue does not list."""
        return next((m for m in self.base_models if m.id == model_id), None)

    def facts(self, model: str | None = None) -> ModelFacts:
        """Apply the model rules matching `model` to the target's defaults; None keeps the defaults."""
        name = model or ""
        tokenizer, token_limit, media, uses_validation = self.tokenizer, self.tokens.per_record, self.media_supported, True
        for rule in self.model_rules:
            if not name or not rule.matches(name):
                continue
            tokenizer = rule.tokenizer or tokenizer
            token_limit = rule.token_limit if rule.token_limit is not None else token_limit
            media = rule.media_supported if rule.media_supported is not None else media
            uses_validation = rule.uses_validation_set if rule.uses_validation_set is not None else uses_validation
        return ModelFacts(
            model=model, tokenizer=tokenizer, token_limit=token_limit, media_supported=media,
            uses_validation_set=uses_validation,
        )

    def rule_codes(self) -> set[str]:
        """Return every finding code this target's rules report."""
        return {code for rule in self.rules for code in rule.codes}

    def rule_for(self, code: str, severity: Severity | str) -> Rule | None:
        """Return the rule a finding of this code and severity breaks; None for a code no rule lists."""
        return next((r for r in self.rules if code in r.codes and r.severity == severity), None)
