"""Check a dataset against a fine-tuning target before a job is paid for, and describe it with stats."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workbench.domain.example import Split
from workbench.domain.formats import Format, render
from workbench.domain.stats import DatasetStats, dataset_stats
from workbench.domain.validation import (
    Finding,
    RecordRef,
    Severity,
    Target,
    ValidationReport,
    validate_records,
)
from workbench.errors import InvalidInput
from workbench.services.exporting import source_examples
from workbench.store import Store

TARGET_FORMATS: dict[Target, Format] = {
    Target.OPENAI: Format.OPENAI,
    Target.BEDROCK_CLAUDE_HAIKU: Format.BEDROCK_CLAUDE,
    Target.BEDROCK_NOVA: Format.BEDROCK_NOVA,
    Target.BEDROCK_LLAMA: Format.PROMPT_COMPLETION,
    Target.BEDROCK_TITAN: Format.PROMPT_COMPLETION,
}
"""The format each target trains on; a dataset is checked as it would be exported for that target."""


def targets_for(fmt: Format) -> list[Target]:
    """Return the targets whose training files are written in `fmt`."""
    return [t for t, f in TARGET_FORMATS.items() if f is fmt]


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
    try:
        target = Target(target)
    except ValueError as exc:
        raise InvalidInput(f"unknown target {target!r}; choose one of {', '.join(t.value for t in Target)}") from exc
    chosen = Split(split) if split else None
    fmt = TARGET_FORMATS[target]
    losses: list[Finding] = []

    def records() -> Iterator[tuple[RecordRef, dict[str, Any]]]:
        for example in source_examples(store, dataset, version=version, split=chosen):
            rendered = render(example, fmt)
            if rendered.losses:
                losses.append(
                    Finding(
                        code="conversion_loss",
                        severity=Severity.WARNING,
                        message=f"converting to {fmt.value} loses: {'; '.join(rendered.losses)}",
                        example_id=example.id,
                        source_line=example.source_line,
                    )
                )
            yield RecordRef(example_id=example.id, source_line=example.source_line), rendered.record

    limits = "validation" if chosen is Split.VALIDATION else "train"
    report = validate_records(records(), target, split=limits, base_model=base_model)
    if report.record_count == 0:
        where = f"split {chosen.value!r} of " if chosen else ""
        raise InvalidInput(f"{where}dataset {dataset!r} has no examples to validate")
    if losses:
        report.warnings.extend(losses[:50])
        report.warning_count += len(losses)
        report.counts_by_code["conversion_loss"] = len(losses)
    return report


def validate_file_records(path: str, target: Target | str, *, split: str = "train") -> ValidationReport:
    """Check a JSONL file already in the target's format (what `export` wrote), line by line.

    Lines that are not JSON at all are reported as `invalid_json` errors with their line number.
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
        report.error_count += len(unreadable)
        report.counts_by_code["invalid_json"] = len(unreadable)
        report.ok = False
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
