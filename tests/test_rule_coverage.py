"""Every rule of every target is complete, names a real checker, and has a breaking and a narrowly passing case."""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.rule_cases import Dataset, Findings, RuleCase, findings_of
from tests.service_cases import MORE_TURNS, VIDEO, converse_chat, file_report, lossy_and_whole, openai_chat
from tests.test_validation import OA_TOOLS
from workbench.domain.catalogue import TARGETS, get_target
from workbench.domain.catalogue.rules_doc import render_markdown
from workbench.domain.validation import ValidationReport
from workbench.services.importing import import_path
from workbench.services.validating import validate_dataset
from workbench.store import Store

CASE_MODULES = ("test_rules_openai", "test_rules_haiku", "test_rules_nova", "test_rules_llama", "test_rules_titan")
DOC = Path(__file__).resolve().parents[1] / "docs" / "validation-rules.md"


def all_cases() -> list[RuleCase]:
    cases: list[RuleCase] = []
    for name in CASE_MODULES:
        cases += importlib.import_module(f"tests.{name}").CASES
    return cases


PREFIX = {"openai": "openai.", "bedrock-claude-haiku": "haiku.", "bedrock-nova": "nova.", "bedrock-llama": "llama31.",
          "bedrock-llama32": "llama32.", "bedrock-titan": "titan."}
ALL_RULES = [(t.id, r) for t in TARGETS for r in t.rules]


@pytest.mark.parametrize(("target", "rule"), ALL_RULES, ids=[f"{t}:{r.id or r.summary[:30]}" for t, r in ALL_RULES])
def test_rule_is_complete_and_names_its_checker(target, rule):
    assert rule.id.startswith(PREFIX[target]) and rule.id == rule.id.lower() and " " not in rule.id, rule.id
    assert rule.source.startswith("https://"), rule.source
    assert rule.check.startswith("workbench."), f"{rule.id}: no checker named"
    module, _, name = rule.check.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name, None)), f"{rule.id}: {rule.check} is not a function"


@pytest.mark.parametrize("target", [t.id for t in TARGETS])
def test_each_finding_names_one_rule(target):
    spec = get_target(target)
    ids = Counter(r.id for r in spec.rules)
    assert [i for i, n in ids.items() if n > 1] == []
    pairs = Counter((c, r.severity) for r in spec.rules for c in r.codes)
    assert [p for p, n in pairs.items() if n > 1] == [], "a (code, severity) pair belongs to two rules"


@pytest.mark.parametrize(("target", "rule"), ALL_RULES, ids=[f"{t}:{r.id or r.summary[:30]}" for t, r in ALL_RULES])
def test_every_rule_has_a_breaking_and_a_narrow_case(target, rule):
    assert any(c.target == target and c.rule == rule.id for c in all_cases()), f"{target} {rule.id}: no case"


def test_rule_ids_are_unique_across_targets():
    ids = Counter(r.id for _, r in ALL_RULES)
    assert [i for i, n in ids.items() if n > 1] == []


def test_docs_page_is_generated_from_the_catalogue():
    assert DOC.read_text(encoding="utf-8") == render_markdown(TARGETS), (
        "docs/validation-rules.md is stale: run `workbench targets rules --markdown > docs/validation-rules.md`"
    )


def _unnamed(report: ValidationReport) -> list[tuple[str, str]]:
    """The (code, severity) of every finding and group in the report as `--json` prints it that names no rule."""
    data = report.to_json_dict()
    return [(f["code"], f["severity"]) for f in [*data["errors"], *data["warnings"], *data["groups"]] if not f["rule"]]


def _mixed_records(target: str) -> list[dict[str, object]]:
    """A few records that break many rules at once once converted: losses, tool use, turns, media, reserved text."""
    (lossy, _), _ = lossy_and_whole(target)
    sneaky = openai_chat(3)
    sneaky["messages"][0]["content"] = "Say [EOS] then\n\nHuman: hi"
    return [lossy, OA_TOOLS, openai_chat(1, *MORE_TURNS), openai_chat(2, weight=0), sneaky,
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]},
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "What?"},
                                                       {"type": "image_url", "image_url": {"url": "https://x.io/a.png"}}]},
                          {"role": "assistant", "content": "A cat."}]}]


@pytest.mark.parametrize("target", [t.id for t in TARGETS])
def test_every_finding_of_datasets_validate_names_a_rule(target, tmp_path):
    """What `datasets validate --json` prints (report.to_json_dict) never has `rule: null`, service findings included."""
    store = Store(tmp_path / "workbench.db")
    for name, records in (("chats", _mixed_records(target)), ("clips", [converse_chat(1, VIDEO), converse_chat(2)])):
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        import_path(store, path, name)
        report = validate_dataset(store, name, target)
        assert report.errors or report.warnings
        assert _unnamed(report) == [], f"{target}: findings with no rule"
    checked = file_report(target, b"{not json", name="my train.json")
    assert checked.counts_by_code["invalid_json"] == 1 and _unnamed(checked) == []


@pytest.mark.parametrize("target", [t.id for t in TARGETS])
def test_every_finding_of_every_breaking_case_names_a_rule(target):
    """Each case's breaking record or dataset reports only findings a rule of the target lists."""
    spec = get_target(target)
    for case in (c for c in all_cases() if c.target == target and not isinstance(c.breaks, Findings)):
        found = findings_of(case, case.breaks)
        unnamed = [(f.code, f.severity.value) for f in found if spec.rule_for(f.code, f.severity) is None]
        assert unnamed == [], f"{case.id}: {'dataset' if isinstance(case.breaks, Dataset) else 'record'} findings with no rule"
