"""One case per validation rule: a record (or dataset) that breaks it and one that narrowly does not.

Each tests/test_rules_<target>.py lists its `CASES` and runs them through `assert_breaks` and
`assert_passes`; tests/test_rule_coverage.py checks that every rule of every target has a case, so a rule
added to the catalogue without a test fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.domain.catalogue import Rule, get_target
from workbench.domain.validation import Finding, RecordRef, Severity, rules_for, validate_records


@dataclass(frozen=True)
class Dataset:
    """A whole dataset, checked as it is (no padding): for record counts, media mix, buckets."""

    records: Sequence[Any]


@dataclass(frozen=True)
class Findings:
    """A check that is not one validate_records call (combined train + validation counts, file sizes)."""

    run: Callable[[], list[Finding]]


Input = dict[str, Any] | Dataset | Findings | Any
"""A record (any JSON value: checked as line 1 of a set padded to the target's minimum with valid
records), a `Dataset`, or a `Findings` callable."""


@dataclass(frozen=True)
class RuleCase:
    """A rule, a record that breaks it and one that narrowly passes, and what makes the pass narrow."""

    target: str
    rule: str
    breaks: Input
    passes: Input
    why: str = field(default="", metadata={"help": "What the narrow pass changes, e.g. 'no newline before Human:'."})
    base_model: str | None = None
    split: str = "train"

    @property
    def id(self) -> str:
        return f"{self.rule}:{self.why or 'case'}"


def valid_record(target: str) -> dict[str, Any]:
    """A record every rule of `target` passes, used to pad a single bad record to the minimum count."""
    fmt = get_target(target).format.value
    if fmt == "openai":
        return {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"},
                             {"role": "assistant", "content": "Hello."}]}
    if fmt == "bedrock-claude":
        return {"system": "You are terse.", "messages": [{"role": "user", "content": "Hi"},
                                                          {"role": "assistant", "content": "Hello."}]}
    if fmt == "bedrock-nova":
        return {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "You are terse."}],
                "messages": [{"role": "user", "content": [{"text": "Hi"}]},
                             {"role": "assistant", "content": [{"text": "Hello."}]}]}
    return {"prompt": "Hi", "completion": "Hello."}


def rule_of(case: RuleCase) -> Rule:
    """Return the catalogue rule a case is about; a case naming no rule of its target fails."""
    spec = get_target(case.target)
    found = next((r for r in spec.rules if r.id == case.rule), None)
    assert found is not None, f"{case.target} lists no rule {case.rule!r}"
    return found


def findings_of(case: RuleCase, which: Input) -> list[Finding]:
    """Run one side of a case through the validator it is about."""
    if isinstance(which, Findings):
        return which.run()
    if isinstance(which, Dataset):
        records = [(RecordRef(source_line=i + 1), r) for i, r in enumerate(which.records)]
    else:
        limits = rules_for(case.target, split=case.split, base_model=case.base_model)
        pad = max(limits.min_records, 1) - 1
        good = valid_record(case.target)
        records = [(RecordRef(source_line=1), which)] + [(RecordRef(source_line=i + 2), good) for i in range(pad)]
    report = validate_records(records, case.target, split=case.split, base_model=case.base_model)
    return [*report.errors, *report.warnings]


def _hits(rule: Rule, found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.code in rule.codes and f.severity == rule.severity]


def assert_breaks(case: RuleCase) -> None:
    """The bad side is reported under the rule's code and severity, at line 1 and a field when it is one record."""
    rule = rule_of(case)
    found = findings_of(case, case.breaks)
    hits = _hits(rule, found)
    assert hits, f"{case.rule}: expected {rule.codes} as {rule.severity}, got {[(f.code, f.severity) for f in found]}"
    assert all(f.message.strip() for f in hits)
    if not isinstance(case.breaks, Dataset | Findings):
        lines = {f.source_line for f in hits} | {r.source_line for f in hits for r in f.records}
        assert 1 in lines, f"{case.rule}: the finding does not name line 1: {hits}"


def assert_passes(case: RuleCase) -> None:
    """The narrow pass breaks neither this rule nor any other error rule."""
    rule = rule_of(case)
    found = findings_of(case, case.passes)
    assert not _hits(rule, found), f"{case.rule}: the narrow pass was reported: {_hits(rule, found)}"
    errors = [(f.code, f.field, f.message) for f in found if f.severity == Severity.ERROR]
    assert not errors, f"{case.rule}: the narrow pass has other errors: {errors}"
