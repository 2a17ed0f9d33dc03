"""Group repeated findings (PII kinds, guardrail rules) into one row per kind, with counts and examples.

A rule that matches 15,000 times is one problem, not 15,000 rows: a reviewer needs to see how
often each kind occurs, in how many examples, what the matches look like, and a few places to open.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, Field

from workbench.domain.example import Example
from workbench.domain.guardrails import GuardrailReport

SAMPLE_TEXTS = 3
SAMPLE_ROWS = 50


class FindingRow(BaseModel):
    """One finding kept as an example of its group: the example, the canonical part and the text."""

    example_id: int | None
    where: str = Field(description="Canonical part: 'system' or 'messages[i]' (label it with locations.part_label).")
    text: str


class FindingGroup(BaseModel):
    """Every finding of one kind (a PII kind, a guardrail rule), counted exactly, with a few examples."""

    name: str = Field(description="The PII kind or the rule name.")
    action: str | None = Field(default=None, description="A rule's action (block, warn); None for PII.")
    findings: int = Field(description="Findings of this kind in total, every occurrence counted.")
    examples: int = Field(description="Examples with at least one finding of this kind.")
    samples: list[str] = Field(default_factory=list, description=f"Up to {SAMPLE_TEXTS} different matched texts.")
    rows: list[FindingRow] = Field(default_factory=list, description=f"The first {SAMPLE_ROWS} findings, to open.")


def group_findings(items: Iterable[tuple[str, str | None, FindingRow]]) -> list[FindingGroup]:
    """Group (name, action, row) items by name and action, most findings first, then by name."""
    groups: dict[tuple[str, str | None], FindingGroup] = {}
    seen_examples: dict[tuple[str, str | None], set[int | None]] = {}
    for name, action, row in items:
        key = (name, action)
        group = groups.get(key)
        if group is None:
            group = groups[key] = FindingGroup(name=name, action=action, findings=0, examples=0)
            seen_examples[key] = set()
        group.findings += 1
        examples = seen_examples[key]
        if row.example_id is None or row.example_id not in examples:
            examples.add(row.example_id)
            group.examples += 1
        if len(group.samples) < SAMPLE_TEXTS and row.text not in group.samples:
            group.samples.append(row.text)
        if len(group.rows) < SAMPLE_ROWS:
            group.rows.append(row)
    return sorted(groups.values(), key=lambda g: (-g.findings, g.name, g.action or ""))


def group_pii(examples: Iterable[Example]) -> list[FindingGroup]:
    """Group the PII findings of examples by kind."""
    return group_findings(
        (f.kind, None, FindingRow(example_id=e.id, where=f.where, text=f.text)) for e in examples for f in e.pii
    )


def group_violations(report: GuardrailReport) -> list[FindingGroup]:
    """Group a guardrail run's matches by rule, blocking rules' examples first as the report lists them."""
    return group_findings(
        (v.rule_name, v.action.value, FindingRow(example_id=e.example_id, where=v.where, text=v.text))
        for e in (*report.failing, *report.warnings)
        for v in e.violations
    )
