"""Every rule of every target is complete, names a real checker, and has a breaking and a narrowly passing case."""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import pytest

from tests.rule_cases import RuleCase
from workbench.domain.catalogue import TARGETS, get_target
from workbench.domain.catalogue.rules_doc import render_markdown

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
