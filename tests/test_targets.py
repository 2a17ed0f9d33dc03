"""The target catalogue: one entry per target, every fact sourced, and rule lists that match the validator."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.rule_cases import valid_record
from tests.service_cases import dataset_report, file_report, lossy_and_whole
from tests.test_validation import RULES, VALID, dataset, image_record
from workbench.domain.catalogue import (
    TARGETS,
    Target,
    ToolSupport,
    format_label,
    get_target,
    target_ids,
    targets_for,
)
from workbench.domain.formats import FORMAT_LABELS, Format
from workbench.domain.validation import RecordRef, check_combined_counts, rules_for, validate_records
from workbench.errors import InvalidInput


def test_every_target_is_one_enum_member_and_one_cli_choice():
    assert [t.value for t in Target] == [t.id for t in TARGETS] == target_ids()
    assert len({t.label for t in TARGETS}) == len(TARGETS)
    assert Target.BEDROCK_CLAUDE_HAIKU == "bedrock-claude-haiku"


def test_unknown_target_names_the_known_ones():
    with pytest.raises(InvalidInput, match="unknown target 'bedrock-mistral'; use one of openai, bedrock-claude-haiku"):
        get_target("bedrock-mistral")


def _sources(spec: Any) -> list[str]:
    found = [spec.records.source, spec.tool_use.source, *(r.source for r in spec.rules), *(r.source for r in spec.model_rules)]
    if spec.tokens.per_record is not None:
        found.append(spec.tokens.source)
    for model in spec.base_models:
        found += [model.source, *(h.source for h in model.hyperparameters), *(p.source for p in model.prices)]
    return found


@pytest.mark.parametrize("spec", TARGETS, ids=lambda t: t.id)
def test_every_fact_cites_an_original_source(spec):
    for source in _sources(spec):
        assert source and source.startswith("https://"), (spec.id, source)


@pytest.mark.parametrize("spec", TARGETS, ids=lambda t: t.id)
def test_base_models_and_hyperparameters_are_consistent(spec):
    ids = [m.id for m in spec.base_models]
    assert len(set(ids)) == len(ids)
    assert spec.default_base_model in ids
    for model in spec.base_models:
        for hp in model.hyperparameters:
            if hp.auto:
                assert hp.default == "auto"
            else:
                assert hp.min is not None and hp.max is not None and hp.min <= hp.default <= hp.max, (model.id, hp.name)
        assert all(p.usd > 0 for p in model.prices)


def test_catalogue_holds_the_documented_haiku_facts():
    haiku = get_target("bedrock-claude-haiku")
    assert (haiku.records.min_train, haiku.records.max_train, haiku.records.max_validation) == (32, 10_000, 1_000)
    assert haiku.records.max_combined == 10_000
    assert (haiku.tokens.per_record, haiku.tokens.is_error) == (32_000, True)
    [model] = haiku.base_models
    epochs = next(h for h in model.hyperparameters if h.name == "epochCount")
    assert (epochs.min, epochs.max, epochs.default) == (1, 10, 2)
    assert model.prices[0].usd == 0.004 and model.prices[0].verified is False
    assert model.lifecycle.retirement is None  # no date is documented in our sources: left empty, not invented


@pytest.mark.parametrize(
    ("target", "model", "encoding", "limit", "media"),
    [
        ("openai", None, "o200k_base", 65_536, None),
        ("openai", "gpt-3.5-turbo-0125", "cl100k_base", 16_385, None),
        ("openai", "gpt-3.5-turbo-0613", "cl100k_base", 4_096, None),
        ("bedrock-nova", "amazon.nova-micro-v1:0:128k", "cl100k_base", None, False),
        ("bedrock-nova", "amazon.nova-pro-v1:0:300k", "cl100k_base", None, True),
        ("bedrock-nova", None, "cl100k_base", None, None),
        ("bedrock-llama32", "meta.llama3-2-90b-instruct-v1:0:128k", "cl100k_base", 16_000, True),
        ("bedrock-llama32", "meta.llama3-2-1b-instruct-v1:0:128k", "cl100k_base", 16_000, False),
        ("bedrock-titan", None, "cl100k_base", 4_096, None),
    ],
)
def test_model_rules_refine_the_target(target, model, encoding, limit, media):
    facts = get_target(target).facts(model)
    assert (facts.tokenizer.encoding, facts.token_limit, facts.media_supported) == (encoding, limit, media)
    rules = rules_for(target, base_model=model)
    assert (rules.counter, rules.token_limit, rules.media_supported) == (facts.tokenizer, limit, media)


def test_nova_2_is_known_to_ignore_a_validation_set():
    assert get_target("bedrock-nova").facts("amazon.nova-2-lite-v1:0:256k").uses_validation_set is False
    assert get_target("bedrock-nova").facts("amazon.nova-lite-v1:0:300k").uses_validation_set is True


def test_formats_name_the_targets_that_train_on_them():
    assert [t.id for t in targets_for(Format.PROMPT_COMPLETION)] == ["bedrock-llama", "bedrock-titan"]
    assert format_label(Format.PROMPT_COMPLETION) == "Prompt / completion — Bedrock: Llama 3.1, Bedrock: Titan Text"
    assert format_label(Format.ALPACA) == FORMAT_LABELS[Format.ALPACA]
    assert "Claude 3 Haiku" not in FORMAT_LABELS[Format.BEDROCK_CLAUDE]  # target names come from the catalogue


@pytest.mark.parametrize(
    ("target", "support"),
    [
        ("openai", ToolSupport.ACCEPTED),
        ("bedrock-nova", ToolSupport.CAUTION),
        ("bedrock-claude-haiku", ToolSupport.REJECTED),
        ("bedrock-llama", ToolSupport.REJECTED),
        ("bedrock-llama32", ToolSupport.REJECTED),
        ("bedrock-titan", ToolSupport.REJECTED),
    ],
)
def test_tool_support_per_target(target, support):
    spec = get_target(target)
    assert spec.tool_use.support is support
    codes = spec.rule_codes()
    assert ("tool_use_not_supported" in codes) is (support is ToolSupport.REJECTED)


@pytest.mark.parametrize(("train", "validation", "expected"), [(9_001, 1_000, 1), (9_000, 1_000, 0)])
def test_combined_limit_comes_from_the_catalogue(train, validation, expected):
    found = check_combined_counts("bedrock-claude-haiku", train, validation)
    assert len(found) == expected
    if found:
        assert "10,001" in found[0].message and "at most 10,000" in found[0].message


# --- the rules a target lists are exactly the codes its validator reports ------------------------------


def _record_codes(target: str) -> set[str]:
    """Run every rule test's bad record of the same record shape through `target`; return the codes reported."""
    fmt = get_target(target).format
    refs = []
    for param in RULES:
        other, bad, _, _, _, base_model = param.values
        if get_target(other).format is fmt:
            refs.append((bad, base_model if other == target else None))
    codes: set[str] = set()
    for bad, base_model in refs:
        pad = max(rules_for(target, base_model=base_model).min_records - 1, 0)
        records = [(RecordRef(source_line=1), bad)] + dataset(VALID[Target(target)], pad + 1)[1:]
        report = validate_records(records, target, base_model=base_model)
        codes |= {f.code for f in report.errors + report.warnings}
    return codes


def _dataset_codes(target: str) -> set[str]:
    """Produce the dataset-level findings a target can report, from small datasets that break each limit."""
    spec, valid = get_target(target), VALID[Target(target)]
    runs: list[tuple[list[tuple[RecordRef, Any]], str, str | None]] = [(dataset(valid, 0), "train", None)]
    if spec.records.max_train:
        runs.append((dataset(valid, spec.records.max_train + 1), "train", None))
    if spec.records.recommended_min_train:
        runs.append((dataset(valid, spec.records.recommended_min_train - 1), "train", None))
    if spec.format is Format.BEDROCK_NOVA:
        mixed = [valid] * 4 + [image_record()] * 4 + [image_record("other-bucket")] * 4
        runs.append(([(RecordRef(source_line=i), r) for i, r in enumerate(mixed)], "train", None))
        runs += [(dataset(valid, 10), "validation", m.id) for m in spec.base_models]
    codes = _service_codes(target)
    for records, split, model in runs:
        report = validate_records(records, target, split=split, base_model=model)
        codes |= {f.code for f in report.errors + report.warnings}
    if spec.records.max_combined:
        codes |= {f.code for f in check_combined_counts(target, spec.records.max_combined, 1)}
    if spec.records.max_train_bytes:
        codes.add("file_too_large")  # a >10 GB file is too slow here: tests/test_validation.py checks the 1 GB one
    return codes


def _service_codes(target: str) -> set[str]:
    """Produce what the services add, for real: the file check (a line that is not JSON, a file name Nova refuses)
    and the dataset check (an imported example that loses a field in the target's format)."""
    good = orjson.dumps(valid_record(target))
    checked = file_report(target, b"{not json", name="my train.json")
    (lossy, pad), _ = lossy_and_whole(target)
    converted = dataset_report(target, lossy, pad)
    assert file_report(target, good).ok, "the padding file is valid, so only the named faults are reported"
    return {f.code for report in (checked, converted) for f in report.errors + report.warnings}


@pytest.mark.parametrize("target", target_ids())
def test_listed_rules_are_exactly_what_the_validator_reports(target):
    reported = _record_codes(target) | _dataset_codes(target)
    listed = get_target(target).rule_codes()
    assert reported - listed == set(), "reported but not listed in the catalogue"
    assert listed - reported == set(), "listed in the catalogue but never reported"
