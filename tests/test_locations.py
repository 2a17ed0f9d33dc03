"""One way to name where a finding is ('system', 'turn 2 (assistant)'), and findings grouped by kind with exact counts."""

from __future__ import annotations

from typing import Any

import pytest

from workbench.domain.example import Example, Message, PiiFinding, Role
from workbench.domain.finding_groups import SAMPLE_ROWS, SAMPLE_TEXTS, group_pii, group_violations
from workbench.domain.formats import Format, render
from workbench.domain.guardrails import GuardrailRule, run_rules
from workbench.domain.locations import part_label, record_part_label, relabel_paths

ROLES = ["user", "assistant", "user", "assistant"]


@pytest.mark.parametrize(
    ("where", "roles", "label"),
    [
        ("system", ROLES, "system"),
        ("messages[0]", ROLES, "turn 1 (user)"),
        ("messages[3]", ROLES, "turn 4 (assistant)"),
        ("messages[1].tool_calls[0].arguments", ROLES, "turn 2 (assistant), tool call 1 arguments"),
        ("messages[2]", [], "turn 3"),
        ("messages[9]", ROLES, "turn 10"),
        ("tools", ROLES, "tools"),
    ],
)
def test_part_label(where: str, roles: list[str], label: str) -> None:
    assert part_label(where, roles) == label


OPENAI = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
SHAREGPT = {"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
NOVA = {"system": [{"text": "s"}], "messages": [{"role": "user", "content": [{"text": "q"}]}, {"role": "assistant", "content": [{"text": "a"}]}]}


@pytest.mark.parametrize(
    ("record", "path", "label"),
    [
        # OpenAI puts the system prompt in the list: its messages[0] is not a turn.
        (OPENAI, "messages[0].content", "system"),
        (OPENAI, "messages[1].role", "turn 1 (user)"),
        (OPENAI, "messages[2]", "turn 2 (assistant)"),
        ({"messages": OPENAI["messages"][1:]}, "messages[0].role", "turn 1 (user)"),
        ({"system": "s", "messages": OPENAI["messages"][1:]}, "messages[0].content", "turn 1 (user)"),
        ({"system": "s", "messages": OPENAI["messages"][1:]}, "system", "system"),
        (NOVA, "system[0].text", "system"),
        (NOVA, "messages[1].content[0].text", "turn 2 (assistant)"),
        (SHAREGPT, "conversations[1].value", "turn 1 (user)"),
        (SHAREGPT, "conversations[0]", "system"),
        ({"prompt": "p", "completion": "c"}, "completion", "completion"),
        (OPENAI, "messages[7].role", "messages[7].role"),
        (OPENAI, None, ""),
        ("not an object", "messages[0]", "messages[0]"),
    ],
)
def test_record_part_label(record: Any, path: str | None, label: str) -> None:
    assert record_part_label(record, path) == label


@pytest.mark.parametrize("system", [None, "", "Be brief."])
@pytest.mark.parametrize("fmt", [Format.OPENAI, Format.BEDROCK_CLAUDE, Format.BEDROCK_NOVA, Format.SHAREGPT])
def test_a_turn_has_one_label_whichever_path_names_it(system: str | None, fmt: Format) -> None:
    """The bug this module exists for: validation called the system prompt `messages[0]`, PII the first user turn."""
    example = Example(
        system=system,
        messages=[Message(role=Role(r), content=f"text {i}") for i, r in enumerate(ROLES)],
    )
    record = render(example, fmt).record
    key = "conversations" if fmt is Format.SHAREGPT else "messages"
    offset = len(record[key]) - len(example.messages)  # a system prompt in the list shifts every turn by one
    for i in range(len(example.messages)):
        assert record_part_label(record, f"{key}[{i + offset}].content") == part_label(f"messages[{i}]", ROLES)
    if offset:
        assert record_part_label(record, f"{key}[0]") == part_label("system") == "system"


def test_relabel_paths_in_messages_from_the_checks_at_import() -> None:
    assert relabel_paths("messages[1].content: empty assistant turn", ROLES) == "turn 2 (assistant): empty assistant turn"
    assert relabel_paths("messages[0].role: should open with a user turn", ["assistant"]) == (
        "turn 1 (assistant): should open with a user turn"
    )
    assert relabel_paths("messages: two user turns in a row", ROLES) == "messages: two user turns in a row"


# ------------------------------------------------------------------------------------------- groups


def _pii(example_id: int, *found: tuple[str, str, str]) -> Example:
    return Example(
        id=example_id,
        messages=[Message(role=Role.USER, content="x"), Message(role=Role.ASSISTANT, content="y")],
        pii=[PiiFinding(kind=kind, where=where, start=0, end=len(text), text=text) for kind, where, text in found],
    )


def test_group_pii_counts_every_finding_and_each_example_once() -> None:
    examples = [
        _pii(1, ("email", "messages[0]", "a@x.io"), ("email", "messages[1]", "a@x.io"), ("phone", "system", "555 0100")),
        *(_pii(i, ("email", "messages[0]", f"user{i}@x.io")) for i in range(2, 120)),
    ]

    groups = group_pii(examples)

    assert [(g.name, g.findings, g.examples) for g in groups] == [("email", 120, 119), ("phone", 1, 1)]
    email = groups[0]
    assert email.samples == ["a@x.io", "user2@x.io", "user3@x.io"][:SAMPLE_TEXTS]
    assert len(email.rows) == SAMPLE_ROWS
    assert (email.rows[0].example_id, email.rows[0].where) == (1, "messages[0]")


def test_group_violations_agrees_with_the_rule_counts() -> None:
    rules = [
        GuardrailRule(id=1, name="no refunds", kind="words", pattern="refund", action="block"),
        GuardrailRule(id=2, name="sorry", kind="regex", pattern=r"\bsorry\b", action="warn"),
        GuardrailRule(id=3, name="never", kind="words", pattern="zebra", action="warn"),
    ]
    examples = [
        Example(id=i, messages=[Message(role=Role.USER, content="refund refund" if i % 3 == 0 else "hello"),
                                Message(role=Role.ASSISTANT, content="sorry" if i % 2 == 0 else "ok")])
        for i in range(1, 301)
    ]
    report = run_rules(rules, examples)

    groups = {g.name: g for g in group_violations(report)}

    for count in report.rule_counts:
        if count.matches:
            assert (groups[count.rule_name].findings, groups[count.rule_name].examples) == (count.matches, count.examples)
            assert groups[count.rule_name].action == count.action.value
    assert "never" not in groups
    assert (groups["no refunds"].findings, groups["no refunds"].examples) == (200, 100)
