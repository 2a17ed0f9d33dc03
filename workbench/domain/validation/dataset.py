"""Check a whole split: each record with its target's checker, then the dataset-level limits.

Repeated findings fold into one with a `count`, so a systematic problem in 100,000 records stays readable.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from workbench.domain.catalogue import Target, get_target
from workbench.domain.formats import Format
from workbench.domain.validation.converse import _check_converse
from workbench.domain.validation.haiku import _check_haiku
from workbench.domain.validation.limits import rules_for
from workbench.domain.validation.models import (
    Finding,
    RecordRef,
    Severity,
    TargetRules,
    ValidationReport,
)
from workbench.domain.validation.openai import _check_openai
from workbench.domain.validation.prompt_completion import _check_prompt_completion
from workbench.domain.validation.shape import _Dataset, _kind, _Out

# One checker per record shape; the catalogue says which shape a target trains on.
_CHECKERS: dict[Format, Callable[[dict[str, Any], _Out, TargetRules, _Dataset], int]] = {
    Format.OPENAI: _check_openai,
    Format.BEDROCK_CLAUDE: _check_haiku,
    Format.BEDROCK_NOVA: _check_converse,
    Format.PROMPT_COMPLETION: _check_prompt_completion,
}


def _too_long(tokens: int, rules: TargetRules) -> str:
    about = "" if rules.counter.exact else "about "
    counted = f"{about}{tokens:,} tokens (counted with {rules.counter.label})"
    limit = f"{rules.token_limit:,}"
    model = f" of {rules.model_note}" if rules.model_note else ""
    if not rules.token_limit_is_error:
        return (
            f"The example is {counted}, over the {limit}-token training context{model}; {rules.label} "
            "truncates it from the end, so the last assistant reply may be cut. Shorten or split it."
        )
    return (
        f"The record is {counted}; {rules.label}{model} allows {limit} per record and the job fails on a longer "
        "one. Shorten it or split the conversation."
    )


# Warnings about the dataset's shape rather than one broken record: always one finding each.
_GROUPED = {
    "missing_system_message": (
        "have no system message",
        "A system prompt is optional, but the same one in training and at inference usually helps.",
    ),
    "missing_user_message": ("have no user message", "The model sees no user input in them."),
    "multi_turn_warning": (
        "are multi-turn",
        "AWS documents Claude 3 Haiku fine-tuning as single-turn, though its sample validator accepts "
        "alternating multi-turn data; try a small job first.",
    ),
}
_SAMPLE_REFS = 10


def _json_size(record: Any) -> int:
    try:
        return len(orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)) + 1
    except TypeError:  # orjson.JSONEncodeError included; not JSON-serialisable, a rough size will do
        return len(repr(record).encode("utf-8", "replace")) + 1


def _describe(refs: list[tuple[int, RecordRef]], count: int) -> str:
    names = []
    for index, ref in refs[:3]:
        if ref.source_line is not None:
            names.append(f"line {ref.source_line}")
        elif ref.example_id is not None:
            names.append(f"example {ref.example_id}")
        else:
            names.append(f"record {index + 1}")
    more = ", ..." if count > 3 else ""
    return f" (e.g. {', '.join(names)}{more})"


def _dataset_findings(
    n: int, total_bytes: int, rules: TargetRules, data: _Dataset, base_model: str | None
) -> list[Finding]:
    found: list[Finding] = []

    def add(code: str, severity: Severity, message: str) -> None:
        found.append(Finding(code=code, severity=severity, message=message))

    label, split, low, high = rules.label, rules.split, rules.min_records, rules.max_records
    bounds = f"{low:,} to {high:,}" if high is not None else f"at least {low:,}"
    if n < low:
        add(
            "too_few_examples", Severity.ERROR,
            f"The {split} set has {n:,} records; {label} needs {bounds}. Add {low - n:,}.",
        )
    elif high is not None and n > high:
        add(
            "too_many_examples", Severity.ERROR,
            f"The {split} set has {n:,} records; {label} takes {bounds}. Remove {n - high:,}.",
        )
    elif rules.recommended_min_records and n < rules.recommended_min_records:
        add(
            "below_recommended_examples", Severity.WARNING,
            f"The {split} set has {n:,} records; {label} recommends at least {rules.recommended_min_records:,} "
            "for a visible improvement.",
        )
    if rules.max_bytes is not None and total_bytes > rules.max_bytes:
        size, cap = total_bytes / 1024**3, rules.max_bytes / 1024**3
        add(
            "file_too_large", Severity.ERROR,
            f"The {split} file would be {size:.2f} GB; {label} takes at most {cap:.0f} GB. Remove or shorten records.",
        )
    kinds = {k: v for k, v in data.media_kinds.items() if v}
    if len(kinds) > 1:
        mix = ", ".join(f"{v:,} {k}" for k, v in sorted(kinds.items()))
        add(
            "mixed_dataset_media", Severity.ERROR,
            f"The dataset mixes record kinds ({mix}); {label} needs all records text-only, all with images, or all with video.",
        )
    if kinds.keys() & {"image", "video"} and rules.media_supported is None:
        add(
            "media_model_unknown", Severity.WARNING,
            f"Records contain images or video, which only some {label} base models accept; choose a base model "
            "to check (Nova Micro accepts none).",
        )
    if len(data.buckets) > 1:
        buckets = ", ".join(sorted(data.buckets)[:3])
        add(
            "media_bucket_mismatch", Severity.ERROR,
            f"Media objects live in {len(data.buckets)} S3 buckets ({buckets}); each must be in the dataset's own "
            "bucket, so move them into one.",
        )
    if split == "validation" and not rules.uses_validation_set:
        add(
            "validation_not_supported", Severity.WARNING,
            f"{base_model or label} supervised fine-tuning does not use a validation set; the file is ignored.",
        )
    return found


def validate_records(
    records: Iterable[tuple[RecordRef, dict[str, Any]]],
    target: Target | str,
    *,
    split: str = "train",
    base_model: str | None = None,
    max_findings_per_code: int | None = 50,
    keep_per_record: int | None = None,
) -> ValidationReport:
    """Check records in the target's JSON shape against its rules, so a job never fails on its data.

    `split` ("train" or "validation") picks the record-count limits. `base_model` refines them where the
    model matters: OpenAI's tokenizer and context (default gpt-4o-mini), Nova Micro's ban on media,
    Llama 3.2 in the Converse shape. Only the first `max_findings_per_code` findings of a code are listed
    one by one; the rest fold into one finding with a `count`, so a systematic problem in 100,000
    records stays readable (None lists every one). Never raises on malformed records.

    `keep_per_record` bounds what is kept per record, so a million records take no more memory than a
    thousand: `token_counts` becomes a uniform sample of that many (the totals and `max_tokens` still
    count every record) and `error_positions` the first that many; the report says how many were left
    out. None keeps every one. Grouped findings always keep a count and the first few records only.
    """
    rules = rules_for(target, split=split, base_model=base_model)
    check = _CHECKERS[rules.format]
    data = _Dataset()
    token_counts: list[int] = []
    total_bytes = total_tokens = max_tokens = n = 0
    error_positions: list[int] = []
    errors_seen = 0
    sampler = random.Random(0)  # a fixed seed: the same records give the same sample
    counts: dict[str, int] = defaultdict(int)
    listed: list[Finding] = []
    folded: dict[tuple[str, Severity], list[tuple[int, RecordRef]]] = defaultdict(list)
    folded_counts: dict[tuple[str, Severity], int] = defaultdict(int)

    for index, (ref, record) in enumerate(records):
        out = _Out()
        if isinstance(record, dict):
            tokens = check(record, out, rules, data)
        else:
            tokens = 0
            out.error("data_type", None, f"The record is {_kind(record)}; each line must be one JSON object.")
        if rules.token_limit is not None and tokens > rules.token_limit:
            severity = Severity.ERROR if rules.token_limit_is_error else Severity.WARNING
            out.items.append((severity, "too_many_tokens", None, _too_long(tokens, rules)))
        n += 1
        total_tokens += tokens
        max_tokens = max(max_tokens, tokens)
        if keep_per_record is None or len(token_counts) < keep_per_record:
            token_counts.append(tokens)
        elif (slot := sampler.randrange(n)) < keep_per_record:
            token_counts[slot] = tokens  # reservoir sampling: every record equally likely to stay
        total_bytes += _json_size(record)
        if any(item[0] is Severity.ERROR for item in out.items):
            errors_seen += 1
            if keep_per_record is None or len(error_positions) < keep_per_record:
                error_positions.append(index)
        for severity, code, field, message in out.items:
            counts[code] += 1
            if code in _GROUPED or (max_findings_per_code is not None and counts[code] > max_findings_per_code):
                folded_counts[(code, severity)] += 1
                if len(folded[(code, severity)]) < _SAMPLE_REFS:
                    folded[(code, severity)].append((index, ref))
                continue
            listed.append(
                Finding(
                    code=code, severity=severity, message=message, example_id=ref.example_id,
                    source_line=ref.source_line, record_index=index, field=field,
                )
            )

    findings = _dataset_findings(n, total_bytes, rules, data, base_model) + listed
    for (code, severity), refs in folded.items():
        count = folded_counts[(code, severity)]
        if code in _GROUPED:
            what, advice = _GROUPED[code]
            message = f"{count:,} of {n:,} records {what}{_describe(refs, count)}. {advice}"
        else:
            message = (
                f"{count:,} more records have the same problem ({code}){_describe(refs, count)}; "
                f"only the first {max_findings_per_code} are listed."
            )
        sample = [ref for _, ref in refs[:_SAMPLE_REFS]]
        findings.append(Finding(code=code, severity=severity, message=message, count=count, records=sample))
    for finding in findings:
        counts.setdefault(finding.code, finding.count)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    return ValidationReport(
        target=rules.target, split=rules.split, base_model=base_model, ok=not errors, errors=errors,
        warnings=warnings, error_count=sum(f.count for f in errors), warning_count=sum(f.count for f in warnings),
        counts_by_code=dict(counts), record_count=n, error_positions=error_positions, token_counts=token_counts,
        total_tokens=total_tokens, max_tokens=max_tokens, token_counts_left_out=n - len(token_counts),
        error_positions_left_out=errors_seen - len(error_positions), total_bytes=total_bytes, token_limit=rules.token_limit,
        tokenizer_label=rules.counter.label, tokens_exact=rules.counter.exact, rules=list(rules.rules),
    )


def check_combined_counts(target: Target | str, train_count: int, validation_count: int) -> list[Finding]:
    """Check the train + validation total, the one limit neither split sees alone (Claude 3 Haiku: 10,000).

    The cap is the catalogue's `max_combined`, from the AWS sample validator's MAX_TOTAL_LINES
    (https://github.com/aws-samples/amazon-bedrock-samples, custom-models/bedrock-fine-tuning/claude-haiku).
    """
    spec = get_target(target)
    cap, total = spec.records.max_combined, train_count + validation_count
    if cap is None or total <= cap:
        return []
    message = (
        f"Train ({train_count:,}) and validation ({validation_count:,}) records add up to {total:,}; "
        f"{spec.label} takes at most {cap:,} in total. Remove {total - cap:,}."
    )
    return [Finding(code="too_many_total_examples", severity=Severity.ERROR, message=message)]
