"""Group repeated findings (PII kinds, guardrail rules) into one row per kind, with counts and examples.

A rule that matches 15,000 times is one problem, not 15,000 rows: a reviewer needs to see how
often each kind occurs, in how many examples, what the matches look like, and a few places to open.
Groups are built as findings stream by (`GroupCollector`), keeping exact counts and a bounded sample
per group, so a million findings take no more memory than fifty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from workbench.domain.example import Example

if TYPE_CHECKING:
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
    rows: list[FindingRow] = Field(
        default_factory=list,
        description=f"The first {SAMPLE_ROWS} findings, to open; `findings - len(rows)` were left out.",
    )


class GroupCollector:
    """Fold (name, action, row) findings into groups as they stream by: exact counts, bounded samples.

    An example is counted once per group by remembering only the last example each group saw, so
    the findings of one example must come together (every caller walks examples one at a time);
    a finding of no stored example (id None) counts as an example of its own.
    """

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str | None], FindingGroup] = {}
        self._last: dict[tuple[str, str | None], int | None] = {}

    def add(self, name: str, action: str | None, row: FindingRow) -> None:
        key = (name, action)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = FindingGroup(name=name, action=action, findings=0, examples=0)
        group.findings += 1
        if row.example_id is None or key not in self._last or self._last[key] != row.example_id:
            self._last[key] = row.example_id
            group.examples += 1
        if len(group.samples) < SAMPLE_TEXTS and row.text not in group.samples:
            group.samples.append(row.text)
        if len(group.rows) < SAMPLE_ROWS:
            group.rows.append(row)

    def add_pii(self, example: Example) -> None:
        """Add every PII finding of one example, grouped by kind."""
        for finding in example.pii:
            self.add(finding.kind, None, FindingRow(example_id=example.id, where=finding.where, text=finding.text))

    def groups(self) -> list[FindingGroup]:
        """Return the groups, most findings first, then by name and action."""
        return sorted(self._groups.values(), key=lambda g: (-g.findings, g.name, g.action or ""))


def group_findings(items: Iterable[tuple[str, str | None, FindingRow]]) -> list[FindingGroup]:
    """Group (name, action, row) items by name and action, most findings first, then by name.

    Items of one example must come together, as they do when examples are walked one by one.
    """
    collector = GroupCollector()
    for name, action, row in items:
        collector.add(name, action, row)
    return collector.groups()


def group_pii(examples: Iterable[Example]) -> list[FindingGroup]:
    """Group the PII findings of examples by kind."""
    collector = GroupCollector()
    for example in examples:
        collector.add_pii(example)
    return collector.groups()


def group_violations(report: GuardrailReport) -> list[FindingGroup]:
    """Group a guardrail run's matches by rule.

    `run_rules` builds the groups over every match as it checks; a report made some other way (by
    hand, or kept from before groups were stored) is grouped from the examples it lists.
    """
    if report.groups or not (report.failing or report.warnings):
        return list(report.groups)
    return group_findings(
        (v.rule_name, v.action.value, FindingRow(example_id=e.example_id, where=v.where, text=v.text))
        for e in (*report.failing, *report.warnings)
        for v in e.violations
    )
