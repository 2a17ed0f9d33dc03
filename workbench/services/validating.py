"""Check a dataset against a fine-tuning target before a job is paid for, and describe it with stats."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import orjson
from pydantic import BaseModel

from workbench.domain.catalogue import TARGETS, Provider, Rule, TargetSpec, ToolSupport, get_target
from workbench.domain.catalogue import targets_for as _targets_for
from workbench.domain.catalogue.rules_doc import render_markdown, render_target
from workbench.domain.example import Example, Role, Split
from workbench.domain.format_parts import Loss
from workbench.domain.formats import Format, render
from workbench.domain.locations import field_label
from workbench.domain.progress import Progress
from workbench.domain.stats import DatasetStats, dataset_stats
from workbench.domain.validation import (
    Finding,
    RecordRef,
    Severity,
    Target,
    ValidationReport,
    check_combined_counts,
    rules_for,
    validate_records,
)
from workbench.domain.validation.converse import check_nova_file_name
from workbench.errors import InvalidInput
from workbench.services.exporting import source_examples
from workbench.store import Store

_LISTED = 50
_FILE_NAME_CHECK = f"{check_nova_file_name.__module__}.{check_nova_file_name.__name__}"

RULES_LEGEND = (
    "Severity says what happens: error = the provider refuses the file or job, so the launch is blocked; "
    "warning = advice, the job runs.",
    "Origin says who states the rule: validator = the provider's published validator checks it (AWS's sample "
    "validators, the OpenAI cookbook's format checks), as an error or, like the cookbook's missing-system-message "
    "check, as a warning; service = the provider's documentation states it (where the service is stricter than "
    "its validator, we follow the service); ours = the workbench's own check.",
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


def lookup_rules(name: str) -> tuple[TargetSpec, Rule | None]:
    """Resolve a target id, a rule id ('nova.reserved-tokens') or a rule-id prefix ('nova') to its target and rule.

    Users meet rule ids in findings before they meet target ids, so either finds the target's list.
    """
    for spec in TARGETS:
        rule = next((r for r in spec.rules if r.id == name), None)
        if spec.id == name or rule is not None or any(r.id.split(".", 1)[0] == name for r in spec.rules):
            return spec, rule
    raise InvalidInput(f"unknown target {name!r}; use one of {', '.join(t.id for t in TARGETS)}, or a rule id "
                       "such as 'nova.reserved-tokens' (`workbench datasets validate` names each finding's rule)")


def rules_markdown(target: str | None = None) -> str:
    """Render every target's rules (docs/validation-rules.md), or one target's section, as Markdown."""
    return render_markdown(TARGETS) if target is None else render_target(lookup_rules(target)[0]) + "\n"


def targets_for(fmt: Format | str) -> list[Target]:
    """Return the targets whose training files are written in `fmt`."""
    return [Target(t.id) for t in _targets_for(fmt)]


def default_target(source_format: str | None) -> Target:
    """Return the target a dataset's own format was made for (OpenAI when its format has no provider)."""
    try:
        return next(iter(targets_for(Format(source_format or ""))), Target.OPENAI)
    except ValueError:
        return Target.OPENAI


KEEP_PER_RECORD = 20_000
"""Token counts (a uniform sample, for the length chart) and error positions a dataset's report keeps."""


def validate_dataset(
    store: Store,
    dataset: str,
    target: Target | str,
    *,
    split: Split | str | None = None,
    version: str | None = None,
    base_model: str | None = None,
    progress: Progress | None = None,
) -> ValidationReport:
    """Render every example (or one split's) into the target's format and check it against the target's rules.

    Information the conversion drops (a multi-turn chat flattened for a prompt/completion model) is
    reported as a `conversion_loss` warning on that example, since the model will not see it.

    Examples stream through one batch at a time and the report keeps exact counts with bounded
    samples (the first findings of each code, `KEEP_PER_RECORD` token counts), so memory does not
    grow with the dataset. Nothing is written: an example's own `validation_status` comes from the
    checks run when it is imported or edited, not from a target's rules.
    """
    progress = progress or Progress()
    spec = get_target(target)
    chosen = Split(split) if split else None
    fmt = spec.format
    losses = _Listed("examples lose information in the conversion")
    tool_errors = _Listed("examples use tools, which the target cannot train on")
    split_counts: dict[Split, int] = dict.fromkeys(Split, 0)
    split_bytes: dict[Split, int] = dict.fromkeys(Split, 0)
    rejects_tools = spec.tool_use.support is ToolSupport.REJECTED

    def counted(n: int) -> None:
        progress.stage("checking rules", n)

    def records() -> Iterator[tuple[RecordRef, dict[str, Any]]]:
        examples = source_examples(store, dataset, version=version, split=chosen, on_count=counted)
        for index, example in enumerate(examples):
            split_counts[example.split] += 1
            if rejects_tools and example.has_tool_use():
                tool_errors.add(_tool_use_error(example, spec, index))
            rendered = render(example, fmt)
            if rendered.losses:
                losses.add(
                    Finding(
                        code="conversion_loss",
                        severity=Severity.WARNING,
                        message=f"converting to {fmt.value} loses: {_labelled_losses(example, rendered.lost)}",
                        example_id=example.id,
                        source_line=example.source_line,
                    )
                )
            split_bytes[example.split] += _jsonl_size(rendered.record)
            yield RecordRef(example_id=example.id, source_line=example.source_line), rendered.record
            progress.advance()

    limits = "validation" if chosen is Split.VALIDATION else "train"
    report = validate_records(records(), spec.id, split=limits, base_model=base_model, keep_per_record=KEEP_PER_RECORD)
    if report.record_count == 0:
        where = f"split {chosen.value!r} of " if chosen else ""
        raise InvalidInput(f"{where}dataset {dataset!r} has no examples to validate")
    _add_listed(report, tool_errors)
    _add_listed(report, losses)
    _judge_counts(report, _launch_files(chosen, split_counts, split_bytes), base_model)
    if spec.records.max_combined is not None and chosen in (None, Split.TRAIN, Split.VALIDATION):
        _add_combined(report, store, dataset, version, chosen, split_counts)
    if chosen is None:
        report.split = "all"  # every example checked; record counts judged per split, as a launch would
    report.name_rules()
    return report


class _Listed:
    """Findings of one code as they stream by: the first `_LISTED` in full, then a count and a few records."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.first: list[Finding] = []
        self.more: list[RecordRef] = []
        self.count = 0
        self.positions: list[int] = []
        self.positions_left_out = 0

    def add(self, finding: Finding) -> None:
        """Count a finding; keep it whole while fewer than `_LISTED` are, else only its record (10 at most)."""
        self.count += 1
        if len(self.first) < _LISTED:
            self.first.append(finding)
        elif len(self.more) < 10:
            self.more.append(RecordRef(example_id=finding.example_id, source_line=finding.source_line))
        if finding.record_index is not None:
            if len(self.positions) < KEEP_PER_RECORD:
                self.positions.append(finding.record_index)
            else:
                self.positions_left_out += 1


class _LaunchFile(BaseModel):
    """One file a launch would send: which limits apply, how the messages name it, its records and bytes."""

    limits: str
    name: str
    records: int
    size: int


_COUNT_CODES = frozenset({
    "too_few_examples", "too_many_examples", "below_recommended_examples", "file_too_large", "validation_not_supported",
})
"""Dataset-level findings about one file's record count or size, judged per split by `_judge_counts`."""


def _jsonl_size(record: dict[str, Any]) -> int:
    """Bytes the record takes as one JSONL line, newline included, as the export writes it."""
    return len(orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)) + 1


def _launch_files(chosen: Split | None, counts: dict[Split, int], sizes: dict[Split, int]) -> list[_LaunchFile]:
    """Name the files a launch would build from what was validated, so record counts are judged per file.

    A launch trains on the train split when there is one and sends the validation split beside it
    (workbench.services.jobs._choose_splits); a dataset never split is trained on whole. One chosen
    split is judged as the file it would become.
    """
    if chosen is not None:
        limits = "validation" if chosen is Split.VALIDATION else "train"
        return [_LaunchFile(limits=limits, name=f"The {chosen.value} split", records=counts[chosen], size=sizes[chosen])]
    if not counts[Split.TRAIN]:
        total, size = sum(counts.values()), sum(sizes.values())
        why = "never split" if not counts[Split.VALIDATION] else "no train split"
        return [_LaunchFile(limits="train", name=f"The dataset ({why}, so a launch trains on every example)",
                            records=total, size=size)]
    files = [_LaunchFile(limits="train", name="The train split", records=counts[Split.TRAIN], size=sizes[Split.TRAIN])]
    if counts[Split.VALIDATION]:
        files.append(_LaunchFile(limits="validation", name="The validation split", records=counts[Split.VALIDATION],
                                 size=sizes[Split.VALIDATION]))
    return files


def _judge_counts(report: ValidationReport, files: list[_LaunchFile], base_model: str | None) -> None:
    """Replace the record-count and size findings with one set per file a launch would send.

    The record checks ran over every example under one split's limits; a launch judges the train and
    validation files each against its own limits, so 29 train + 4 validation records fail Claude 3 Haiku's
    32-record minimum even though 36 examples are stored.
    """
    found = [f for file in files for f in _count_findings(report, file, base_model)]
    kept = [f for f in [*report.errors, *report.warnings]
            if not (f.code in _COUNT_CODES and f.example_id is None and f.source_line is None)]
    for code in _COUNT_CODES:
        report.counts_by_code.pop(code, None)
    for finding in found:
        report.counts_by_code[finding.code] = report.counts_by_code.get(finding.code, 0) + finding.count
    everything = [*found, *kept]
    report.errors = [f for f in everything if f.severity is Severity.ERROR]
    report.warnings = [f for f in everything if f.severity is Severity.WARNING]
    report.error_count = sum(f.count for f in report.errors)
    report.warning_count = sum(f.count for f in report.warnings)
    report.ok = not report.errors


def _count_findings(report: ValidationReport, file: _LaunchFile, base_model: str | None) -> list[Finding]:
    """Judge one file's record count and size against its split's limits, naming the split in each message."""
    rules = rules_for(report.target, split=file.limits, base_model=base_model)
    n, low, high, label = file.records, rules.min_records, rules.max_records, rules.label
    if file.limits == "validation" and not rules.uses_validation_set:
        return [Finding(code="validation_not_supported", severity=Severity.WARNING,
                        message=f"{file.name} has {_records(n)}, but {base_model or label} supervised fine-tuning "
                                "does not use a validation set; a launch sends none.")]
    bounds = f"{low:,} to {high:,}" if high is not None else f"at least {low:,}"
    found: list[Finding] = []
    if n < low:
        found.append(Finding(code="too_few_examples", severity=Severity.ERROR,
                             message=f"{file.name} has {_records(n)}; {label} needs {bounds}. Add {low - n:,}."))
    elif high is not None and n > high:
        found.append(Finding(code="too_many_examples", severity=Severity.ERROR,
                             message=f"{file.name} has {_records(n)}; {label} takes {bounds}. Remove {n - high:,}."))
    elif rules.recommended_min_records and n < rules.recommended_min_records:
        found.append(Finding(code="below_recommended_examples", severity=Severity.WARNING,
                             message=f"{file.name} has {_records(n)}; {label} recommends at least "
                                     f"{rules.recommended_min_records:,} for a visible improvement."))
    if rules.max_bytes is not None and file.size > rules.max_bytes:
        found.append(Finding(code="file_too_large", severity=Severity.ERROR,
                             message=f"{file.name} would be a {file.size / 1024**3:.2f} GB file; {label} takes at most "
                                     f"{rules.max_bytes / 1024**3:.0f} GB. Remove or shorten records."))
    return found


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


def _add_listed(report: ValidationReport, found: _Listed) -> None:
    """List the first findings and fold the rest into one with a count, so the report's counts stay true."""
    if not found.count:
        return
    listed = list(found.first)
    first = found.first[0]
    rest = found.count - len(listed)
    if rest:
        listed.append(
            Finding(
                code=first.code, severity=first.severity, count=rest,
                message=f"{rest:,} more {found.what}; only the first {_LISTED} are listed.",
                records=found.more,
            )
        )
    if first.severity is Severity.ERROR:
        report.errors.extend(listed)
        report.error_count += found.count
        positions = sorted(set(report.error_positions) | set(found.positions))
        report.error_positions = positions[:KEEP_PER_RECORD]
        report.error_positions_left_out += len(positions) - len(report.error_positions) + found.positions_left_out
        report.ok = False
    else:
        report.warnings.extend(listed)
        report.warning_count += found.count
    report.counts_by_code[first.code] = report.counts_by_code.get(first.code, 0) + found.count


def _add_combined(
    report: ValidationReport, store: Store, dataset: str, version: str | None, chosen: Split | None,
    counts: dict[Split, int],
) -> None:
    """Check the train + validation total (Claude 3 Haiku: 10,000), counting the split not validated."""
    if chosen is not None:
        other = Split.VALIDATION if chosen is Split.TRAIN else Split.TRAIN
        counts[other] = _split_size(store, dataset, version, other)
    if not (counts[Split.TRAIN] and counts[Split.VALIDATION]):
        return  # a job with one file has no combined limit to break
    found = check_combined_counts(report.target, counts[Split.TRAIN], counts[Split.VALIDATION])
    report.errors[:0] = found
    report.error_count += len(found)
    for finding in found:
        report.counts_by_code[finding.code] = 1
        report.ok = False


def _split_size(store: Store, dataset: str, version: str | None, split: Split) -> int:
    """Count one split's examples (the store counts them; none is read)."""
    sizes: list[int] = []
    stream = source_examples(store, dataset, version=version, split=split, on_count=sizes.append)
    next(stream, None)
    stream.close()
    return sizes[0]


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


def validate_file_records(
    path: str, target: Target | str, *, split: str = "train", base_model: str | None = None
) -> ValidationReport:
    """Check a JSONL file already in the target's format (what `export` wrote), line by line, as strictly as
    the providers' own loaders read it.

    Bedrock's and OpenAI's validators open the file as UTF-8 text and `json.loads` every line, so a byte-order
    mark, a blank line, a JSON array, UTF-16 or gzip fails there even though the workbench's importer reads
    them. Each is an `invalid_json` error here, with its line and what to change; a file name the target
    refuses (Nova's `.jsonl` and character rules) is reported before them. `base_model` applies its model
    rules (Nova Micro takes no media, Llama 3.2 11B takes images); without it the target's defaults hold.
    """
    from pathlib import Path

    unreadable: list[Finding] = []

    def records() -> Iterator[tuple[RecordRef, dict[str, Any]]]:
        with Path(path).open("rb") as stream:
            for line, record, error in _strict_lines(stream):
                if error is not None:
                    unreadable.append(Finding(code="invalid_json", severity=Severity.ERROR, message=error,
                                              source_line=line))
                    continue
                yield RecordRef(source_line=line), record

    report = validate_records(records(), target, split=split, base_model=base_model)
    if unreadable:
        _add_unreadable(report, unreadable)
    named = file_name_findings(Path(path).name, report.target)
    if named:
        report.errors[:0] = named
        report.error_count += len(named)
        for finding in named:
            report.counts_by_code[finding.code] = 1
        report.ok = False
    report.name_rules()
    return report


_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_JSON_SPACE = b" \t\r\n"
"""What json.loads skips around a value: a line of only these is blank to the providers' loaders."""


def _strict_lines(stream: IO[bytes]) -> Iterator[tuple[int, Any, str | None]]:
    """Yield (line, record, None) or (line, None, why) for every line, refusing what `json.loads` per line refuses.

    A gzip or UTF-16 file cannot be read as UTF-8 text at all, and a JSON array file is not one object per
    line: each is one finding at line 1 and reading stops. A byte-order mark is reported and then skipped,
    so the records after it are still checked.
    """
    from workbench.domain.records import MAX_RECORD_BYTES, decode_line

    head = stream.peek(4096)[:4096] if hasattr(stream, "peek") else b""
    whole_file = _whole_file_problem(head)
    if whole_file is not None:
        yield 1, None, whole_file
        return
    line = 0
    while raw := stream.readline(MAX_RECORD_BYTES + 1):
        line += 1
        if line == 1 and raw.startswith(_UTF8_BOM):
            yield 1, None, ("line 1 starts with a byte-order mark (BOM), which the provider's loader cannot parse; "
                            "save the file as UTF-8 without BOM")
            raw = raw[len(_UTF8_BOM):]
        if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
            while (rest := stream.readline(MAX_RECORD_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield line, None, (f"line {line} is over {MAX_RECORD_BYTES // (1024 * 1024)} MB; shorten the record "
                               "or split it")
            continue
        if not raw.strip(_JSON_SPACE):
            yield line, None, (f"line {line} is blank; remove it (every line of a JSON Lines file must hold one "
                               "JSON object; only the last line may end the file with a newline)")
            continue
        if line == 1 and raw.lstrip(_JSON_SPACE).startswith(b"["):
            yield 1, None, ("the file is a JSON array, not JSON Lines; write one JSON object per line (export the "
                            "dataset in the target's format)")
            return
        decoded = decode_line(raw, line)
        if decoded.error is not None:
            fix = "save the file as UTF-8" if decoded.error.startswith("not valid UTF-8") else "write the line as one JSON object"
            yield line, None, f"line {line} is {decoded.error}; {fix}"
        else:
            yield line, decoded.record, None


def _whole_file_problem(head: bytes) -> str | None:
    """Say why a file cannot be read as UTF-8 text at all (gzip, UTF-16), or None when it can."""
    if head.startswith(_GZIP_MAGIC):
        return "line 1: the file is gzip-compressed; decompress it and upload the plain .jsonl file"
    sample = head[:200]
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff")) or (
        len(sample) >= 4 and (sample[1::2].count(0) > len(sample) // 4 or sample[0::2].count(0) > len(sample) // 4)
    )
    if utf16:
        return "line 1: the file is encoded as UTF-16; save it as UTF-8 (without BOM)"
    return None


def _add_unreadable(report: ValidationReport, unreadable: list[Finding]) -> None:
    """Put the lines that could not be read first, listing 50 and folding the rest into one counted finding."""
    report.errors[:0] = unreadable[:_LISTED]
    if len(unreadable) > _LISTED:
        report.errors.insert(_LISTED, Finding(
            code="invalid_json", severity=Severity.ERROR, count=len(unreadable) - _LISTED,
            message=f"{len(unreadable) - _LISTED:,} more lines cannot be read as JSON; only the first {_LISTED} are "
                    "listed. Write every line as one JSON object.",
            records=[RecordRef(source_line=f.source_line) for f in unreadable[_LISTED:_LISTED + 10]],
        ))
    report.error_count += len(unreadable)
    report.counts_by_code["invalid_json"] = len(unreadable)
    report.ok = False


def describe(
    store: Store,
    dataset: str,
    *,
    split: Split | str | None = None,
    version: str | None = None,
    class_field: str | None = None,
    progress: Progress | None = None,
) -> DatasetStats:
    """Return token lengths, turns, role counts and the class balance of one metadata field, for charts.

    One pass over the examples, in bounded memory (the series are a sample past `SERIES_SAMPLE`).
    """
    progress = progress or Progress()
    chosen = Split(split) if split else None
    examples = source_examples(store, dataset, version=version, split=chosen, on_count=lambda n: progress.stage("measuring examples", n))
    return dataset_stats(examples, class_field=(class_field or "").strip() or None, progress=progress)


def _records(n: int) -> str:
    return f"{n:,} record" + ("" if n == 1 else "s")
