"""Every Titan Text rule: a record (or dataset) that breaks it and one that narrowly passes.

Titan has no AWS sample validator: the rules come from Bedrock's text-data page, the 4,096-token limit the
service reports mid-job (aws-samples/amazon-bedrock-workshop#224), and the workbench's own checks; see
workbench/domain/catalogue/rules/titan.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.rule_cases import Dataset, RuleCase, assert_breaks, assert_passes
from tests.service_cases import service_cases

T = "bedrock-titan"


def pc(**kw: Any) -> dict[str, Any]:
    return {"prompt": "Hi", "completion": "Hello.", **kw}


CASES: list[RuleCase] = [
    RuleCase(T, "titan.json-object", 3.5, pc(), "a number vs an object"),
    RuleCase(T, "titan.required-keys", {"prompt": "Hi"}, pc(completion="x"), "no completion"),
    RuleCase(T, "titan.required-keys", {"completion": "x"}, pc(prompt=""), "no prompt vs empty prompt"),
    RuleCase(T, "titan.required-keys", {"messages": [{"role": "user", "content": "Hi"}]}, pc(messages=[]),
             "a chat record vs prompt/completion with a stray messages key"),
    RuleCase(T, "titan.string-values", pc(prompt=["Hi"]), pc(prompt="['Hi']"), "list vs string"),
    RuleCase(T, "titan.extra-keys", pc(system="Be nice"), pc(), "a system prompt Titan does not read"),
    RuleCase(T, "titan.completion-text", pc(completion=""), pc(completion=" x"), "empty vs one letter"),
    RuleCase(T, "titan.prompt-text", pc(prompt="\t"), pc(prompt=" x"), "blank vs one letter"),
    RuleCase(T, "titan.no-tools", pc(functions=[{"name": "lookup"}]), pc(function="lookup"),
             "functions vs a plain key named function"),
    RuleCase(T, "titan.at-least-one", Dataset([]), Dataset([pc()]), "0 vs 1 record"),
    RuleCase(T, "titan.at-least-one", Dataset([]), Dataset([pc()]), "validation 0 vs 1 record", split="validation"),
    RuleCase(T, "titan.token-limit", pc(prompt="word " * 4_100), pc(prompt="word " * 4_000), "4,100 vs 4,000 tokens"),
    RuleCase(T, "titan.token-limit", pc(completion="word " * 4_100), pc(completion="word " * 4_000),
             "the completion counts too"),
]

CASES += service_cases(T, "titan.json-object", "titan.conversion-loss")  # invalid_json, conversion_loss


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_breaks(case: RuleCase) -> None:
    assert_breaks(case)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_passes(case: RuleCase) -> None:
    assert_passes(case)
