from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from workbench.domain.example import Example, Message, Role
from workbench.domain.guardrails import (
    MAX_REGEX_LENGTH,
    GuardrailReport,
    GuardrailRule,
    RuleAction,
    RuleCount,
    RuleKind,
    RuleScope,
    check_example,
    parse_words,
    run_rules,
)


def _example(*turns: tuple[Role, str], system: str | None = None, example_id: int | None = None) -> Example:
    return Example(
        id=example_id, system=system, messages=[Message(role=role, content=text) for role, text in turns]
    )


def _rule(pattern: str, **fields: object) -> GuardrailRule:
    return GuardrailRule(name=str(fields.pop("name", "rule")), pattern=pattern, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "position", "reason"),
    [
        ("(abc", 0, "missing \\), unterminated subpattern"),
        ("abc)", 3, "unbalanced parenthesis"),
        ("[z-a]", 1, "bad character range"),
        ("*a", 0, "nothing to repeat"),
    ],
)
def test_invalid_regex_is_refused_with_its_position(pattern: str, position: int, reason: str) -> None:
    with pytest.raises(
        ValidationError, match=rf"Invalid regular expression at position {position}: {reason}"
    ):
        _rule(pattern)


@pytest.mark.parametrize("pattern", ["(a+)+$", r"(?:\s*\w+)*x", r"(x|y+)*z", r"(?>(b+)+c)", r"(?=(a*)*)b"])
def test_nested_unbounded_repeats_are_refused(pattern: str) -> None:
    with pytest.raises(ValidationError, match="exponential time"):
        _rule(pattern)


@pytest.mark.parametrize(
    "pattern", [r"(?:a++)+b", r"(?>a+)+b", r"(a+){2}b", r"\d{3}-\d{4}", r"(?:ab)+", r"a{2,5}(b|c)*"]
)
def test_safe_repeats_are_accepted(pattern: str) -> None:
    assert _rule(pattern).compiled().pattern == pattern


def test_possessive_rewrite_of_a_refused_pattern_runs_fast() -> None:
    rule = _rule(r"(?:a++)+$")
    started = time.perf_counter()
    assert check_example([rule], _example((Role.USER, "a" * 5000 + "!"))) == []
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"pattern": "x" * (MAX_REGEX_LENGTH + 1)}, "limit is 1000"),
        ({"pattern": ""}, "empty"),
        ({"pattern": " , \n ,", "kind": RuleKind.WORDS}, "word list is empty"),
        ({"pattern": "x", "name": "  "}, "name"),
    ],
)
def test_rule_fields_are_validated(fields: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        _rule(**fields)  # type: ignore[arg-type]


def test_long_word_list_is_allowed_beyond_the_regex_limit() -> None:
    words = ", ".join(f"word{i}" for i in range(500))
    rule = _rule(words, kind=RuleKind.WORDS)
    assert len(words) > MAX_REGEX_LENGTH
    assert [v.text for v in check_example([rule], _example((Role.USER, "say word499 now")))] == ["word499"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("foo, bar\nbaz", ["foo", "bar", "baz"]),
        ("  credit   card ,, \n\n", ["credit card"]),
        ("dup, dup, Dup", ["dup", "Dup"]),
    ],
)
def test_parse_words(text: str, expected: list[str]) -> None:
    assert parse_words(text) == expected


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("I have a Password here", ["Password"]),
        ("passwords are plural", []),
        ("my_password is a variable", []),
        ("the secret key, the Secret\n  Key", ["secret key", "Secret\n  Key"]),
        ("I write C++ daily, c++!", ["C++", "c++"]),
        ("ping @admin now", ["@admin"]),
        ("nothing here", []),
    ],
)
def test_word_lists_match_whole_words_case_insensitively(text: str, matches: list[str]) -> None:
    rule = _rule("password\nsecret key, c++, @admin", kind=RuleKind.WORDS)
    assert [v.text for v in check_example([rule], _example((Role.USER, text)))] == matches


def test_word_list_prefers_the_longest_phrase() -> None:
    rule = _rule("credit card, credit card number", kind=RuleKind.WORDS)
    found = check_example([rule], _example((Role.USER, "my credit card number is")))
    assert [(v.text, v.start, v.end) for v in found] == [("credit card number", 3, 21)]


@pytest.mark.parametrize(("case_sensitive", "matches"), [(False, ["Foo", "foo"]), (True, ["foo"])])
def test_case_sensitivity(case_sensitive: bool, matches: list[str]) -> None:
    rule = _rule("foo", case_sensitive=case_sensitive)
    assert [v.text for v in check_example([rule], _example((Role.USER, "Foo and foo")))] == matches


@pytest.mark.parametrize(
    ("scope", "where"),
    [
        (RuleScope.ANY, ["system", "messages[0]", "messages[1]", "messages[2]"]),
        (RuleScope.SYSTEM, ["system"]),
        (RuleScope.USER, ["messages[0]"]),
        (RuleScope.ASSISTANT, ["messages[1]"]),
        (RuleScope.TOOL, ["messages[2]"]),
    ],
)
def test_scope_limits_the_parts_checked(scope: RuleScope, where: list[str]) -> None:
    example = _example((Role.USER, "x marks"), (Role.ASSISTANT, "an x"), (Role.TOOL, "x"), system="x is here")
    assert [v.where for v in check_example([_rule(r"\bx\b", scope=scope)], example)] == where


def test_violation_locates_the_match_and_carries_the_rule() -> None:
    rule = _rule(r"\d{3}-\d{4}", id=7, name="phone", action=RuleAction.WARN, message="No phone numbers.")
    example = _example((Role.USER, "hi"), (Role.ASSISTANT, "call 555-1234 or 555-9876"))
    found = check_example([rule], example)
    assert [(v.where, v.start, v.end, v.text) for v in found] == [
        ("messages[1]", 5, 13, "555-1234"),
        ("messages[1]", 17, 25, "555-9876"),
    ]
    assert {(v.rule_id, v.rule_name, v.action, v.message) for v in found} == {
        (7, "phone", RuleAction.WARN, "No phone numbers.")
    }
    assert example.messages[1].content[found[0].start : found[0].end] == found[0].text


def test_default_message_names_the_rule() -> None:
    [violation] = check_example([_rule("bad", name="no bad")], _example((Role.USER, "bad")))
    assert violation.message == "Matched rule 'no bad'."


def test_disabled_rules_and_empty_matches_are_ignored() -> None:
    example = _example((Role.USER, "abc"))
    assert check_example([_rule("abc", enabled=False)], example) == []
    assert check_example([_rule("x*")], example) == []
    assert [v.text for v in check_example([_rule("b*")], example)] == ["b"]


def test_violations_follow_rule_order_then_position() -> None:
    example = _example((Role.USER, "a b"), (Role.ASSISTANT, "b a"))
    found = check_example([_rule("b", name="B"), _rule("a", name="A")], example)
    assert [(v.rule_name, v.where, v.start) for v in found] == [
        ("B", "messages[0]", 2),
        ("B", "messages[1]", 0),
        ("A", "messages[0]", 0),
        ("A", "messages[1]", 2),
    ]


def test_run_rules_reports_pass_rate_failures_and_warnings() -> None:
    block = _rule("forbidden", id=1, name="block")
    warn = _rule("hmm", id=2, name="warn", action=RuleAction.WARN)
    off = _rule("clean", id=3, name="off", enabled=False)
    examples = [
        _example((Role.USER, "clean"), example_id=10),
        _example((Role.USER, "forbidden hmm forbidden"), example_id=11),
        _example((Role.USER, "hmm"), example_id=12),
        _example((Role.USER, "fine")),
    ]
    report = run_rules([block, warn, off], examples)

    assert (report.checked, report.passed, report.pass_rate) == (4, 3, 0.75)
    assert report.rule_counts == [
        RuleCount(rule_id=1, rule_name="block", action=RuleAction.BLOCK, examples=1, matches=2),
        RuleCount(rule_id=2, rule_name="warn", action=RuleAction.WARN, examples=2, matches=2),
    ]
    assert [(f.example_id, f.position, [v.text for v in f.violations]) for f in report.failing] == [
        (11, 1, ["forbidden", "forbidden", "hmm"])
    ]
    assert [(w.example_id, w.position) for w in report.warnings] == [(12, 2)]


def test_run_rules_on_nothing_passes() -> None:
    assert run_rules([_rule("x")], []) == GuardrailReport(
        checked=0,
        passed=0,
        pass_rate=1.0,
        rule_counts=[RuleCount(rule_name="rule", action=RuleAction.BLOCK, examples=0, matches=0)],
        failing=[],
        warnings=[],
    )


def test_run_rules_accepts_a_generator() -> None:
    report = run_rules([_rule("x")], (_example((Role.USER, t)) for t in ["x", "y"]))
    assert (report.checked, report.passed) == (2, 1)


def test_rule_enums_serialise_as_plain_strings() -> None:
    rule = _rule("a, b", kind=RuleKind.WORDS, scope=RuleScope.ASSISTANT, action=RuleAction.WARN)
    assert rule.model_dump(mode="json") == {
        "id": None,
        "name": "rule",
        "kind": "words",
        "pattern": "a, b",
        "scope": "assistant",
        "action": "warn",
        "message": "",
        "case_sensitive": False,
        "enabled": True,
    }
    assert GuardrailRule.model_validate(rule.model_dump(mode="json")) == rule
