"""Claude 3 Haiku on Bedrock: every rule with a record (or dataset) that breaks it and one that narrowly passes.

The edges follow AWS's sample validator (custom-models/bedrock-fine-tuning/claude-haiku/DataValidation/
data_validation.py): case-sensitive roles, '\\nHuman:' only with its newline, len(text) // 3 per field, and
`>` comparisons against 32,000 tokens, 10,000 / 1,000 records and 10 / 1 GB.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.rule_cases import Dataset, Findings, RuleCase, assert_breaks, assert_passes, valid_record
from tests.service_cases import service_cases
from workbench.domain.validation import rules_for
from workbench.domain.validation.dataset import _dataset_findings, check_combined_counts
from workbench.domain.validation.shape import _Dataset

T = "bedrock-claude-haiku"
GB = 1024**3


def rec(*messages: tuple[str, Any] | dict[str, Any], **top: Any) -> dict[str, Any]:
    """A Haiku record: messages given as (role, content) pairs or raw objects, then top-level keys."""
    turns = [m if isinstance(m, dict) else {"role": m[0], "content": m[1]} for m in messages]
    return {**top, "messages": turns}


U, A = ("user", "Hi"), ("assistant", "Hello.")
GOOD = rec(U, A)


def case(rule: str, breaks: Any, passes: Any, why: str, split: str = "train") -> RuleCase:
    return RuleCase(target=T, rule=f"haiku.{rule}", breaks=breaks, passes=passes, why=why, split=split)


def many(n: int) -> Dataset:
    return Dataset([valid_record(T)] * n)


def size_findings(split: str, total_bytes: int) -> Findings:
    """The dataset-level check on a file of `total_bytes`, without writing gigabytes."""
    rules = rules_for(T, split=split)
    return Findings(lambda: _dataset_findings(rules.min_records, total_bytes, rules, _Dataset(), None))


def combined(train: int, validation: int) -> Findings:
    return Findings(lambda: check_combined_counts(T, train, validation))


CASES: list[RuleCase] = [
    # JSON per line: a value that is not an object
    case("json-object", 42, GOOD, "an object"),
    case("json-object", [U, A], GOOD, "a list is not an object"),
    # messages: present, a list, not empty
    case("messages-list", {"system": "Be terse."}, GOOD, "no messages key"),
    case("messages-list", rec(system="Be terse."), GOOD, "empty list"),
    case("messages-list", {"messages": "Hi"}, GOOD, "messages a string"),
    # at least two messages
    case("two-messages", rec(U), rec(U, A), "one message vs two"),
    case("two-messages", rec(A), rec(U, A), "one assistant message"),
    # field types: system optional string, message objects, string content
    case("field-types", rec(U, A, system=[{"text": "Be terse."}]), rec(U, A), "system list vs no system key"),
    case("field-types", rec(U, A, system=None), rec(U, A), "system null vs no system key"),
    case("field-types", rec(U, A, system=7), rec(U, A, system=""), "empty system string passes"),
    case("field-types", rec(("user", [{"type": "text", "text": "Hi"}]), A), rec(U, A), "content list vs string"),
    case("field-types", rec(("user", 42), A), rec(("user", "42"), A), "content number vs digits"),
    case("field-types", rec(("user", None), A), rec(U, A), "content null"),
    case("field-types", rec({"role": "user"}, A), rec(U, A), "content missing"),
    case("field-types", rec({"content": "Hi"}, A), rec(U, A), "role missing"),
    case("field-types", {"messages": [["user", "Hi"], {"role": "assistant", "content": "Hello."}]}, GOOD,
         "message not an object"),
    # roles: exactly user / assistant, case-sensitive
    case("roles", rec(("User", "Hi"), A), rec(U, A), "User capitalised"),
    case("roles", rec(U, ("Assistant", "Hello.")), rec(U, A), "Assistant capitalised"),
    case("roles", rec(("system", "Be terse."), U, A), rec(U, A, system="Be terse."), "system as a message"),
    case("roles", rec(("human", "Hi"), A), rec(U, A), "human instead of user"),
    case("roles", rec(("user ", "Hi"), A), rec(U, A), "trailing space"),
    # first user, last assistant
    case("turn-order", rec(A, U, A), rec(U, A), "starts with assistant"),
    case("turn-order", rec(U, A, U), rec(U, A, U, A), "ends with user"),
    # alternating
    case("alternating", rec(U, U, A), rec(U, A, U, A), "two users in a row"),
    case("alternating", rec(U, A, A), rec(U, A), "two assistants in a row"),
    # reserved keywords, exactly as the validator matches them
    case("reserved-keywords", rec(("user", "Hi\nHuman: again"), A), rec(("user", "Human: again"), A),
         "Human: at the start, no newline"),
    case("reserved-keywords", rec(("user", "Hi\nHuman: again"), A), rec(("user", "Hi\nHuman : again"), A),
         "space before the colon"),
    case("reserved-keywords", rec(("user", "Hi\nHuman: again"), A), rec(("user", "Hi\nhuman: again"), A),
         "lower-case human"),
    case("reserved-keywords", rec(("user", "Hi\nHuman: again"), A), rec(("user", "Hi Human: again"), A),
         "space instead of newline"),
    case("reserved-keywords", rec(("user", "Hi\r\nHuman: again"), A), rec(("user", "Hi\n Human: again"), A),
         "CRLF refused, indented passes"),
    case("reserved-keywords", rec(U, ("assistant", "Sure.\n\nAssistant: done")),
         rec(U, ("assistant", "Sure.\n\nASSISTANT: done")), "assistant content, upper case passes"),
    case("reserved-keywords", rec(U, A, system="Be terse.\nAssistant: ok"), rec(U, A, system="Assistant: ok"),
         "system, no newline passes"),
    # tokens: sum of len(text) // 3 per field, over 32,000
    case("too-many-tokens", rec(U, ("assistant", "x" * 96_003)), rec(U, ("assistant", "x" * 96_002)),
         "32,001 vs 32,000 tokens"),
    case("too-many-tokens", rec(("user", "abc"), ("assistant", "x" * 96_000)),
         rec(("user", "ab"), ("assistant", "x" * 96_002), system="ab"), "each field rounded down"),
    case("too-many-tokens", rec(U, ("assistant", "x" * 96_000), system="abc"),
         rec(U, ("assistant", "x" * 96_000), system="ab"), "system counted"),
    # record counts per split
    case("record-counts", many(31), many(32), "31 vs 32 training"),
    case("record-counts", many(10_001), many(10_000), "10,001 vs 10,000 training"),
    case("record-counts", many(31), many(32), "31 vs 32 validation", split="validation"),
    case("record-counts", many(1_001), many(1_000), "1,001 vs 1,000 validation", split="validation"),
    # train + validation together
    case("combined-count", combined(9_001, 1_000), combined(9_000, 1_000), "10,001 vs 10,000 together"),
    case("combined-count", combined(10_000, 32), combined(9_968, 32), "full training set plus validation"),
    # file sizes
    case("file-size", size_findings("train", 10 * GB + 1), size_findings("train", 10 * GB), "10 GB training"),
    case("file-size", size_findings("validation", GB + 1), size_findings("validation", GB), "1 GB validation",
         split="validation"),
    # extra keys (Anthropic's cookbook: none allowed)
    case("no-extra-keys", rec(U, A, metadata={}), rec(U, A, system="Be terse."), "metadata at the top"),
    case("no-extra-keys", rec(U, A, schemaVersion="bedrock-conversation-2024"), rec(U, A), "schemaVersion"),
    case("no-extra-keys", rec({"role": "user", "content": "Hi", "name": "Ann"}, A), rec(U, A), "name on a message"),
    case("no-extra-keys", rec({"role": "user", "content": "Hi", "weight": 0}, A), rec(U, A), "weight on a message"),
    # tool use
    case("no-tool-use", rec(U, A, tools=[{"type": "function", "function": {"name": "f"}}]), rec(U, A), "tools"),
    case("no-tool-use", rec(U, ("tool", "42"), A), rec(U, A), "tool role"),
    case("no-tool-use", rec(U, {"role": "assistant", "content": "", "tool_calls": []}), rec(U, A), "tool_calls"),
    case("no-tool-use", rec(U, ("assistant", [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}])),
         rec(U, A), "tool_use block"),
    # multi-turn: a warning
    case("multi-turn", rec(U, A, U, A), rec(U, A), "two turns vs one"),
    # empty content (ours)
    case("empty-content", rec(("user", ""), A), rec(("user", "?"), A), "empty vs one character"),
    case("empty-content", rec(U, ("assistant", " \n")), rec(U, ("assistant", ".")), "whitespace reply"),
]

CASES += service_cases(T, "haiku.json-object", "haiku.conversion-loss")  # invalid_json, conversion_loss


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_breaks(case: RuleCase) -> None:
    assert_breaks(case)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_passes(case: RuleCase) -> None:
    assert_passes(case)


def test_the_haiku_breaking_messages_say_where_and_what_to_change() -> None:
    """A refused keyword names its field and a way out; an over-long record says the count and the limit."""
    from tests.rule_cases import findings_of

    found = findings_of(CASES[0], rec(("user", "Hi\nHuman: again"), A))
    hit = next(f for f in found if f.code == "reserved_keyword")
    assert hit.source_line == 1 and hit.field == "messages[0].content" and "Reword" in hit.message
    long = findings_of(CASES[0], rec(U, ("assistant", "x" * 96_003)))
    over = next(f for f in long if f.code == "too_many_tokens")
    assert "32,001" in over.message and "32,000" in over.message
