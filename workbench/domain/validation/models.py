"""The data a validation reads and returns: targets, severities, findings, reports and per-target rules."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench.domain.tokens import TokenCounter


class Target(StrEnum):
    """A fine-tuning destination whose dataset rules we check.

    `BEDROCK_LLAMA` is Llama 3.1 (8B/70B) on Bedrock, which takes `{"prompt", "completion"}` records.
    Llama 3.2 takes the Converse (Nova) shape instead: check it as `BEDROCK_NOVA` with a
    `meta.llama3-2-...` base model, which swaps in Llama's record caps and one-element `system` limit.
    """

    OPENAI = "openai"
    BEDROCK_CLAUDE_HAIKU = "bedrock-claude-haiku"
    BEDROCK_NOVA = "bedrock-nova"
    BEDROCK_LLAMA = "bedrock-llama"
    BEDROCK_TITAN = "bedrock-titan"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class RecordRef(BaseModel):
    """Point back at where a record came from, so a finding can be fixed at its source."""

    model_config = ConfigDict(frozen=True)

    example_id: int | None = Field(default=None, description="Stored example id, when checking a dataset.")
    source_line: int | None = Field(default=None, description="1-based JSONL line, when checking a file.")


class Finding(BaseModel):
    """One broken rule, located precisely enough for a user to fix the record."""

    code: str = Field(description="Stable snake_case name of the rule, e.g. 'roles_not_alternating'.")
    severity: Severity
    message: str = Field(description="What is wrong and how to fix it, naming the field path.")
    example_id: int | None = Field(default=None, description="None for dataset-level and grouped findings.")
    source_line: int | None = Field(default=None, description="None for dataset-level and grouped findings.")
    record_index: int | None = Field(
        default=None, description="0-based position of the record in the checked sequence; None when dataset-level."
    )
    field: str | None = Field(default=None, description="Path inside the record, e.g. 'messages[2].role'.")
    count: int = Field(default=1, description="Records this finding stands for: more than 1 when repeats are grouped.")
    records: list[RecordRef] = Field(
        default_factory=list, description="Up to 10 of the records a grouped finding stands for."
    )

    def to_json_dict(self) -> dict[str, Any]:
        """Return the plain dict a CLI or API prints for this finding."""
        return self.model_dump(mode="json", exclude={"records", "record_index"})


class ValidationReport(BaseModel):
    """Sum up one check of a split against a target: what blocks the job and what merely looks wrong."""

    target: Target
    split: str = Field(description="'train' or 'validation': which record-count limits applied.")
    base_model: str | None = Field(default=None, description="Base model the limits were chosen for, if given.")
    ok: bool = Field(description="True when there is no error; warnings never block a job.")
    errors: list[Finding] = Field(default_factory=list)
    warnings: list[Finding] = Field(default_factory=list)
    error_count: int = Field(default=0, description="Errors found, counting every record a grouped finding covers.")
    warning_count: int = Field(default=0, description="Warnings found, counting every record a grouped finding covers.")
    counts_by_code: dict[str, int] = Field(default_factory=dict, description="Findings per code, before grouping.")
    record_count: int
    error_positions: list[int] = Field(
        default_factory=list, description="0-based input positions of the records with at least one error."
    )
    token_counts: list[int] = Field(default_factory=list, description="Tokens per record, in input order.")
    total_tokens: int = 0
    total_bytes: int = Field(default=0, description="Size as JSONL: one line per record, newline included.")
    token_limit: int | None = Field(default=None, description="Per-record token limit checked; None when none is stated.")
    tokenizer_label: str = Field(description="How tokens were counted, e.g. 'estimate: chars/3 (AWS sample validator)'.")
    tokens_exact: bool = Field(description="False when counts come from an estimate or a proxy tokenizer.")

    def to_json_dict(self) -> dict[str, Any]:
        """Return the plain dict a CLI or API prints: `ok`, `errors`, `warnings` and the totals."""
        data = self.model_dump(mode="json", exclude={"errors", "warnings", "token_counts", "error_positions"})
        data["errors"] = [f.to_json_dict() for f in self.errors]
        data["warnings"] = [f.to_json_dict() for f in self.warnings]
        data["max_tokens"] = max(self.token_counts, default=0)
        return data


class TargetRules(BaseModel):
    """Hold the limits for one target, split and base model, so a page can show them before a check."""

    model_config = ConfigDict(frozen=True)

    target: Target
    label: str = Field(description="Human name of the target, used in messages.")
    split: str
    min_records: int
    max_records: int | None = None
    recommended_min_records: int | None = Field(default=None, description="Below this a warning, not an error.")
    max_bytes: int | None = Field(default=None, description="Largest JSONL file accepted for this split.")
    token_limit: int | None = None
    token_limit_is_error: bool = Field(
        default=True, description="False where over-long records are truncated (OpenAI) rather than rejected."
    )
    counter: TokenCounter
    model_note: str = Field(default="", description="The base model the token limit belongs to, for messages.")
    check_reserved_tokens: bool = Field(default=False, description="Nova fails jobs whose system/user text has them.")
    max_system_items: int | None = Field(default=None, description="Cap on the Converse `system` list (Llama 3.2: 1).")
    media_supported: bool | None = Field(
        default=None, description="Converse images/video: True accepted, False rejected, None depends on the model."
    )
