"""The data a validation reads and returns: targets, severities, findings, reports and per-target rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.domain.catalogue import Rule, Severity, Target, ToolSupport, get_target
from workbench.domain.formats import Format
from workbench.domain.tokens import TokenCounter


class RecordRef(BaseModel):
    """Point back at where a record came from, so a finding can be fixed at its source."""

    model_config = ConfigDict(frozen=True)

    example_id: int | None = Field(default=None, description="Stored example id, when checking a dataset.")
    source_line: int | None = Field(default=None, description="1-based JSONL line, when checking a file.")


_RULE_HELP = "Id of the target's rule this breaks, e.g. 'nova.reserved-tokens'; None where no rule lists the code."


class Finding(BaseModel):
    """One broken rule, located precisely enough for a user to fix the record."""

    code: str = Field(description="Stable snake_case name of the rule, e.g. 'roles_not_alternating'.")
    severity: Severity
    message: str = Field(description="What is wrong and how to fix it, naming the field path.")
    rule: str | None = Field(default=None, description=_RULE_HELP)
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


class FindingGroup(BaseModel):
    """All findings of one code and severity as one row: the true count and a few records to open."""

    code: str
    severity: Severity
    rule: str | None = Field(default=None, description=_RULE_HELP)
    count: int = Field(description="Every record this code was reported for, listed or folded.")
    message: str = Field(description="The first finding's message, standing for the rest.")
    field: str | None = Field(default=None, description="The first finding's field path.")
    examples: list[RecordRef] = Field(default_factory=list, description="Up to a few records to open and fix.")


class ValidationReport(BaseModel):
    """Sum up one check of a split against a target: what blocks the job and what merely looks wrong."""

    target: Target
    split: str = Field(description="'train' or 'validation': which record-count limits applied; 'all' when a whole "
                                   "dataset was checked, its counts judged per split as a launch would.")
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
    token_counts: list[int] = Field(
        default_factory=list,
        description="Tokens per record, in input order; a uniform sample when `token_counts_left_out` > 0.",
    )
    token_counts_left_out: int = Field(default=0, description="Records whose token count the sample left out.")
    error_positions_left_out: int = Field(default=0, description="Records with errors past the positions listed.")
    total_tokens: int = 0
    max_tokens: int = Field(default=0, description="The longest record's tokens, over every record.")
    total_bytes: int = Field(default=0, description="Size as JSONL: one line per record, newline included.")
    token_limit: int | None = Field(default=None, description="Per-record token limit checked; None when none is stated.")
    tokenizer_label: str = Field(description="How tokens were counted, e.g. 'estimate: chars/3 (AWS sample validator)'.")
    tokens_exact: bool = Field(description="False when counts come from an estimate or a proxy tokenizer.")
    rules: list[Rule] = Field(default_factory=list, description="The target's rules that were checked, with sources.")

    @model_validator(mode="after")
    def _named(self) -> ValidationReport:
        self.name_rules()
        return self

    def rule_id(self, code: str, severity: Severity | str) -> str | None:
        """Return the id of the target's rule a finding of this code and severity breaks; None where none lists it."""
        rule = get_target(self.target).rule_for(code, severity)
        return (rule.id or None) if rule is not None else None

    def name_rules(self) -> None:
        """Name each finding's rule from the target's catalogue entry, so a user can look the rule up.

        Run when the report is built and again before it is read, since services add findings to a built
        report (conversion losses, tool use, the combined record count).
        """
        for finding in [*self.errors, *self.warnings]:
            if finding.rule is None:
                finding.rule = self.rule_id(finding.code, finding.severity)

    def groups(self, examples: int = 5) -> list[FindingGroup]:
        """Fold findings into one row per (severity, code), errors first, with the true count and `examples` records.

        A grouped finding stands for `count` records, so the sum of the rows' counts equals `error_count` +
        `warning_count`, however many findings were listed one by one.
        """
        self.name_rules()
        rows: dict[tuple[Severity, str], FindingGroup] = {}
        for finding in [*self.errors, *self.warnings]:
            key = (finding.severity, finding.code)
            row = rows.get(key)
            if row is None:
                row = rows[key] = FindingGroup(
                    code=finding.code, severity=finding.severity, rule=finding.rule, count=0, message=finding.message,
                    field=finding.field,
                )
            row.count += finding.count
            refs = finding.records or (
                [RecordRef(example_id=finding.example_id, source_line=finding.source_line)]
                if finding.example_id is not None or finding.source_line is not None else []
            )
            for ref in refs:
                if len(row.examples) < examples and ref not in row.examples:
                    row.examples.append(ref)
        return list(rows.values())

    def to_json_dict(self) -> dict[str, Any]:
        """Return the plain dict a CLI or API prints: `ok`, `errors`, `warnings` (each naming its `rule`), grouped rows and the totals."""
        self.name_rules()
        data = self.model_dump(mode="json", exclude={"errors", "warnings", "token_counts", "error_positions"})
        data["errors"] = [f.to_json_dict() for f in self.errors]
        data["warnings"] = [f.to_json_dict() for f in self.warnings]
        data["groups"] = [g.model_dump(mode="json") for g in self.groups()]
        data["max_tokens"] = max(self.max_tokens, max(self.token_counts, default=0))
        return data


class TargetRules(BaseModel):
    """Hold the catalogue's limits resolved for one target, split and base model, as the checkers read them."""

    model_config = ConfigDict(frozen=True)

    target: Target
    label: str = Field(description="Human name of the target, used in messages.")
    format: Format = Field(description="The record shape checked; picks the checker.")
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
    max_system_items: int | None = Field(default=None, description="Cap on the `system` list (Llama: 1, for 3.1 too).")
    media_supported: bool | None = Field(
        default=None, description="Converse images/video: True accepted, False rejected, None depends on the model."
    )
    uses_validation_set: bool = Field(default=True, description="False where the target ignores a validation file.")
    max_combined_records: int | None = Field(default=None, description="Train + validation records together.")
    tool_support: ToolSupport = Field(description="Whether tool use in a record is accepted, risky or rejected.")
    rules: tuple[Rule, ...] = Field(default=(), description="The rules checked, with their sources.")
