"""Check a dataset against a fine-tuning target before a job is paid for, and describe it with stats."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from workbench.domain.catalogue import TARGETS, Provider, Rule, TargetSpec, ToolSupport, get_target
from workbench.domain.catalogue import targets_for as _targets_for
from workbench.domain.catalogue.rules_doc import render_markdown, render_target
from workbench.domain.example import Example, Role, Split
from workbench.domain.format_parts import Loss
from workbench.domain.formats import Format, render
from workbench.domain.locations import field_label
from workbench.domain.stats import DatasetStats, dataset_stats
from workbench.domain.validation import (
    Finding,
    RecordRef,
    Severity,
    Target,
    ValidationReport,
    check_combined_counts,
    validate_records,
)
from workbench.domain.validation.converse import check_nova_file_name
from workbench.errors import InvalidInput
from workbench.services.exporting import source_examples
from workbench.store import Store

_LISTED = 50
_FILE_NAME_CHECK = f"{check_nova_file_name.__module__}.{check_nova_file_name.__name__}"

RULES_LEGEND = (
    "Severity: error = the provider refuses the file or job, so the launch is blocked; warning = advice, the job runs.",
    "Origin: validator = the provider's published validator (AWS sample validator, OpenAI cookbook checks) fails it; "
    "service = the provider's documentation says its service refuses it, beyond or stricter than that validator "
    "(we follow the service); ours = a check the workbench adds.",
)
"""What a rule's severity and origin mean, said the same way by the CLI and the Validate tab."""


class TargetSummary(BaseModel):
    """One target as `workbench targets list` names it: enough to pick one and see how much is checked."""

    id: str
    label: str
    provider: Provider
    format: str
    rules: int


def targets() -> list[TargetSpec]:
    """Return every fine-tuning target in the catalogue, for a page's or the CLI's target choice."""
    return list(TARGETS)


def target_summaries() -> list[TargetSummary]:
    """Return each target's id, label, provider, record format and rule count, in catalogue order."""
    return [
        TargetSummary(id=t.id, label=t.label, provider=t.provider, format=t.format.value, rules=len(t.rules))
        for t in TARGETS
    ]


def rule_rows(spec: TargetSpec) -> list[dict[str, str]]:
    """Return one display row per rule a target checks: id, severity, origin, what it requires, codes, source, note."""
    return [
        {"rule": r.id, "severity": r.severity.value, "origin": r.origin.value, "requires": r.summary,
         "codes": ", ".join(r.codes), "source": r.source, "where in source": r.anchor, "note": r.note}
        for r in spec.rules
    ]


def rule_source(spec: TargetSpec, rule_id: str | None) -> str | None:
    """Return the URL stating a rule, by its id; None where the finding names no rule."""
    rule: Rule | None = next((r for r in spec.rules if rule_id and r.id == rule_id), None)
    return rule.source if rule is not None else None


def rules_markdown(target: str | None = None) -> str:
    """Render every target's rules (docs/validation-rules.md), or one target's section, as Markdown."""
    return render_markdown(TARGETS) if target is None else render_target(get_target(target)) + "\n"


def targets_for(fmt: Format | str) -> list[Target]:
    """Return the targets whose training files are written in `fmt`."""
    return [Target(t.id) for t in _targets_for(fmt)]


def default_target(source_format: str | None) -> Target:
    """Return the target a dataset's own format was made for (OpenAI when its format has no provider)."""
    try:
        return next(iter(targets_for(Format(source_format or ""))), Target.OPENAI)
    except ValueError:
        return Target.OPENAI


def validate_dataset(
    store: Store,
    dataset: str,
    target: Target | str,
    *,
    split: Split | str | None = None,
    version: str | None = None,
    base_model: str | None = None,
) -> ValidationReport:
    """Render every example (or one split's) into the target's format and check it against the target's rules.

    Information the conversion drops (a multi-turn chat flattened for a prompt/completion model) is
    reported as a `conversion_loss` warning on that example, since the model will not see it.
    """
    spec = get_target(target)
    chosen = Split(split) if split else None
    fmt = spec.format
    losses: list[Finding] = []
    tool_errors: list[Finding] = []
    split_counts: dict[Split, int] = {Split.TRAIN: 0, Split.VALIDATION: 0}
    rejects_tools = spec.tool_use.support is ToolSupport.REJECTED

    def records() -> Iterator[tuple[RecordRef, dict[str, Any]]]:
        for index, example in enumerate(source_examples(store, dataset, version=version, split=chosen)):
            if example.split in split_counts:
                split_counts[example.split] += 1
            if rejects_tools and example.has_tool_use():
                tool_errors.append(_tool_use_error(example, spec, index))
            rendered = render(example, fmt)
            if rendered.losses:
                losses.append(
                    Finding(
                        code="conversion_loss",
                        severity=Severity.WARNING,
                        message=f"converting to {fmt.value} loses: {_labelled_losses(example, rendered.lost)}",
                        example_id=example.id,
                        source_line=example.source_line,
                    )
                )
            yield RecordRef(example_id=example.id, source_line=example.source_line), rendered.record

    limits = "validation" if chosen is Split.VALIDATION else "train"
    report = validate_records(records(), spec.id, split=limits, base_model=base_model)
    if report.record_count == 0:
        where = f"split {chosen.value!r} of " if chosen else ""
        raise InvalidInput(f"{where}dataset {dataset!r} has no examples to validate")
    _add_listed(report, tool_errors, "examples use tools, which the target cannot train on")
    _add_listed(report, losses, "examples lose information in the conversion")
    if spec.records.max_combined is not None and chosen in (None, Split.TRAIN, Split.VALIDATION):
        _add_combined(report, store, dataset, version, chosen, split_counts)
    report.name_rules()
    return report


def _labelled_losses(example: Example, lost: list[Loss]) -> str:
    """Name each lost field as every tab does ('turn 2 (assistant), tool_calls'), not by list position."""
    roles = [m.role.value for m in example.messages]
    return "; ".join(f"{field_label(loss.field, roles)}: {loss.reason}" for loss in lost)


def _tool_use_error(example: Example, spec: TargetSpec, index: int) -> Finding:
    """Name where an example uses tools, for a target whose training data has no place for them.

    Export would drop the tool turns (a conversion loss), but the example would then teach answers
    without the tool results they were based on, so this is an error, not a loss.
    """
    if example.tools:
        field = "tools"
    else:
        i, message = next((i, m) for i, m in enumerate(example.messages) if m.tool_calls or m.role is Role.TOOL)
        field = f"messages[{i}].tool_calls" if message.tool_calls else f"messages[{i}]"
    label = field_label(field, [m.role.value for m in example.messages])  # 'turn 2 (assistant), tool_calls'
    return Finding(
        code="tool_use_not_supported", severity=Severity.ERROR, example_id=example.id, source_line=example.source_line,
        record_index=index, field=field,
        message=f"{label} holds tool use, which {spec.label} fine-tuning data has no place for ({spec.tool_use.source}). "
        "Remove the tool turns from the example, or choose a target that accepts tools.",
    )


def _add_listed(report: ValidationReport, found: list[Finding], what: str) -> None:
    """List the first findings and fold the rest into one with a count, so the report's counts stay true."""
    if not found:
        return
    listed, rest = found[:_LISTED], found[_LISTED:]
    first = found[0]
    if rest:
        listed.append(
            Finding(
                code=first.code, severity=first.severity, count=len(rest),
                message=f"{len(rest):,} more {what}; only the first {_LISTED} are listed.",
                records=[RecordRef(example_id=f.example_id, source_line=f.source_line) for f in rest[:10]],
            )
        )
    if first.severity is Severity.ERROR:
        report.errors.extend(listed)
        report.error_count += len(found)
        report.error_positions = sorted(set(report.error_positions) | {f.record_index for f in found if f.record_index is not None})
        report.ok = False
    else:
        report.warnings.extend(listed)
        report.warning_count += len(found)
    report.counts_by_code[first.code] = report.counts_by_code.get(first.code, 0) + len(found)


def _add_combined(
    report: ValidationReport, store: Store, dataset: str, version: str | None, chosen: Split | None,
    counts: dict[Split, int],
) -> None:
    """Check the train + validation total (Claude 3 Haiku: 10,000), counting the split not validated."""
    if chosen is not None:
        other = Split.VALIDATION if chosen is Split.TRAIN else Split.TRAIN
        counts[other] = sum(1 for _ in source_examples(store, dataset, version=version, split=other))
    if not (counts[Split.TRAIN] and counts[Split.VALIDATION]):
        return  # a job with one file has no combined limit to break
    found = check_combined_counts(report.target, counts[Split.TRAIN], counts[Split.VALIDATION])
    report.errors[:0] = found
    report.error_count += len(found)
    for finding in found:
        report.counts_by_code[finding.code] = 1
        report.ok = False


def file_name_findings(name: str, target: Target | str) -> list[Finding]:
    """Check a training file's name where the target's rules name one (Nova refuses a name before reading a line).

    Each finding names its rule, since it is reported outside a record check (the file check, export's warning).
    """
    spec = get_target(target)
    if not any(r.check == _FILE_NAME_CHECK for r in spec.rules):
        return []
    found = check_nova_file_name(name)
    for finding in found:
        rule = spec.rule_for(finding.code, finding.severity)
        finding.rule = rule.id if rule is not None else None
    return found


def validate_file_records(path: str, target: Target | str, *, split: str = "train") -> ValidationReport:
    """Check a JSONL file already in the target's format (what `export` wrote), line by line.

    Lines that are not JSON at all are reported as `invalid_json` errors with their line number, and a
    file name the target refuses (Nova's `.jsonl` and character rules) as errors before them.
    """
    from pathlib import Path

    from workbench.domain.records import read_records

    unreadable: list[Finding] = []

    def records() -> Iterator[tuple[RecordRef, dict[str, Any]]]:
        with Path(path).open("rb") as stream:
            for raw in read_records(stream, Path(path).name):
                if raw.error is not None:
                    unreadable.append(
                        Finding(code="invalid_json", severity=Severity.ERROR, message=raw.error, source_line=raw.line)
                    )
                    continue
                yield RecordRef(source_line=raw.line), raw.record

    report = validate_records(records(), target, split=split)
    if unreadable:
        report.errors[:0] = unreadable[:50]
        if len(unreadable) > 50:
            report.errors.insert(50, Finding(
                code="invalid_json", severity=Severity.ERROR, count=len(unreadable) - 50,
                message=f"{len(unreadable) - 50:,} more lines are not JSON; only the first 50 are listed.",
                records=[RecordRef(source_line=f.source_line) for f in unreadable[50:60]],
            ))
        report.error_count += len(unreadable)
        report.counts_by_code["invalid_json"] = len(unreadable)
        report.ok = False
    named = file_name_findings(Path(path).name, report.target)
    if named:
        report.errors[:0] = named
        report.error_count += len(named)
        for finding in named:
            report.counts_by_code[finding.code] = 1
        report.ok = False
    report.name_rules()
    return report


def describe(
    store: Store,
    dataset: str,
    *,
    split: Split | str | None = None,
    version: str | None = None,
    class_field: str | None = None,
) -> DatasetStats:
    """Return token lengths, turns, role counts and the class balance of one metadata field, for charts."""
    examples = source_examples(store, dataset, version=version, split=Split(split) if split else None)
    return dataset_stats(examples, class_field=(class_field or "").strip() or None)
