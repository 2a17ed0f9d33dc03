"""Check examples against user-written rules (regexes or word lists) before they reach a training file.

Backtracking: Python's `re` has no timeout and holds the GIL while it matches, so one pathological
rule would freeze the whole Streamlit server, not just one page. Rules are therefore limited at
validation time: a regex may be at most `MAX_REGEX_LENGTH` characters and may not nest unbounded
repeats (`(a+)+`, `(\\w+\\s?)*`), the classic source of exponential time. Each part of an example is
matched in full, never truncated, because a rule that silently skipped the end of a long answer would
pass what it should block; the price is that a slow-but-not-exponential pattern (`\\w*\\w*\\w*x`) can
still take quadratic or cubic time on a very long turn. Word lists compile to escaped literals and
cannot backtrack catastrophically, so they get a larger limit.
"""

from __future__ import annotations

import functools
import re
import re._constants as sre_constants  # private, but the only parser for Python's own regex syntax
import re._parser as sre_parser
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workbench.domain.example import Example, Role
from workbench.domain.finding_groups import FindingGroup, FindingRow, GroupCollector
from workbench.domain.progress import Progress

MAX_REGEX_LENGTH = 1000
MAX_WORDS_LENGTH = 20_000
LISTED_EXAMPLES = 100
"""Failing (and, apart, warned) examples a report lists in full; the rest are counted, not kept."""


class RuleKind(StrEnum):
    REGEX = "regex"
    WORDS = "words"


class RuleAction(StrEnum):
    BLOCK = "block"
    WARN = "warn"


class RuleScope(StrEnum):
    ANY = "any"
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class GuardrailRule(BaseModel):
    """A user-written check; validated on construction so a broken pattern is refused when saved."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    name: str = Field(min_length=1, description="Short label shown next to each match.")
    kind: RuleKind = Field(
        default=RuleKind.REGEX,
        description="'regex': a Python regular expression. 'words': whole words or phrases to find.",
    )
    pattern: str = Field(
        description=(
            "The regular expression, or the words: one per line or comma-separated. Words match whole "
            "words only, and a phrase matches across any run of whitespace."
        )
    )
    scope: RuleScope = Field(
        default=RuleScope.ANY,
        description="Which part of an example the rule looks at: the system prompt, turns of one role, or any.",
    )
    action: RuleAction = Field(
        default=RuleAction.BLOCK,
        description="'block' makes a matching example fail the check; 'warn' only reports the match.",
    )
    message: str = Field(default="", description="Shown to the user for each match; the rule name if empty.")
    case_sensitive: bool = Field(
        default=False, description="Match letter case exactly (off: 'Foo' finds 'foo')."
    )
    enabled: bool = Field(default=True, description="Disabled rules are kept but not checked.")

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("Rule name must not be blank.")
        return name.strip()

    @model_validator(mode="after")
    def _pattern_compiles(self) -> GuardrailRule:
        _compile(self.kind, self.pattern, self.case_sensitive)
        return self

    def compiled(self) -> re.Pattern[str]:
        """Return the compiled pattern (cached), the one place that turns a rule's text into a regex."""
        return _compile(self.kind, self.pattern, self.case_sensitive)

    def applies_to(self, where: str, role: Role | None) -> bool:
        """Say whether this rule looks at a part, given its 'system'/'messages[i]' location and role."""
        if self.scope is RuleScope.ANY:
            return True
        if self.scope is RuleScope.SYSTEM:
            return where == "system"
        return role is not None and role.value == self.scope.value


class RuleViolation(BaseModel):
    """One match of one rule, located precisely enough to highlight it in the example."""

    model_config = ConfigDict(frozen=True)

    rule_id: int | None = None
    rule_name: str
    action: RuleAction
    where: str = Field(description="'system' or 'messages[i]' - the part of the example holding the match.")
    start: int = Field(description="Character offset of the match within that part's text.")
    end: int = Field(description="Character offset one past the end of the match.")
    text: str = Field(description="The matched text itself.")
    message: str = Field(description="The rule's message for the user.")


class ExampleViolations(BaseModel):
    """Every match found in one example, for the report's failing and warning lists."""

    model_config = ConfigDict(frozen=True)

    example_id: int | None = Field(description="The example's id; None for examples not stored yet.")
    position: int = Field(description="Zero-based position of the example in the checked sequence.")
    violations: list[RuleViolation]


class RuleCount(BaseModel):
    """How often one rule fired across a run, so a rule that catches everything (or nothing) stands out."""

    model_config = ConfigDict(frozen=True)

    rule_id: int | None = None
    rule_name: str
    action: RuleAction
    examples: int = Field(description="Examples with at least one match.")
    matches: int = Field(description="Matches in total.")


class GuardrailReport(BaseModel):
    """Outcome of checking a set of examples against the enabled rules.

    Counts cover every example checked; the lists hold the first `LISTED_EXAMPLES` failing and
    warned examples and the groups a bounded sample per rule, so a report on a million examples stays
    small enough to keep and show.
    """

    model_config = ConfigDict(frozen=True)

    checked: int = Field(description="Examples checked.")
    passed: int = Field(description="Examples with no 'block' match (warnings allowed).")
    pass_rate: float = Field(description="passed / checked, 0..1; 1.0 when nothing was checked.")
    rule_counts: list[RuleCount] = Field(description="One entry per enabled rule, in the order given.")
    failing: list[ExampleViolations] = Field(
        description=f"The first {LISTED_EXAMPLES} examples with a 'block' match, each with all its matches "
        "(warnings included)."
    )
    warnings: list[ExampleViolations] = Field(
        description=f"The first {LISTED_EXAMPLES} examples that passed but have 'warn' matches."
    )
    failing_count: int = Field(default=-1, description="Examples with a 'block' match, listed or not.")
    warning_count: int = Field(default=-1, description="Examples that passed with 'warn' matches, listed or not.")
    groups: list[FindingGroup] = Field(
        default_factory=list, description="Matches per rule over every example, with a bounded sample each."
    )

    @model_validator(mode="before")
    @classmethod
    def _counted(cls, data: Any) -> Any:
        # A report built by hand (or kept from before the counts existed) counts what it lists.
        if isinstance(data, dict):
            data = dict(data)
            for count, listed in (("failing_count", "failing"), ("warning_count", "warnings")):
                if data.get(count, -1) < 0:
                    data[count] = len(data.get(listed) or [])
        return data

    @property
    def failing_left_out(self) -> int:
        """Failing examples counted but not listed."""
        return self.failing_count - len(self.failing)

    @property
    def warnings_left_out(self) -> int:
        """Warned examples counted but not listed."""
        return self.warning_count - len(self.warnings)


def check_example(rules: Iterable[GuardrailRule], example: Example) -> list[RuleViolation]:
    """List every match of every enabled rule in an example, in rule order then position order."""
    parts = list(_parts(example))
    return [v for rule in rules if rule.enabled for v in _violations(rule, parts)]


def run_rules(
    rules: Iterable[GuardrailRule], examples: Iterable[Example], *, progress: Progress | None = None
) -> GuardrailReport:
    """Check many examples and summarise, so a dataset can be gated on its pass rate before export.

    An example passes when no 'block' rule matches it; 'warn' matches are reported but do not fail it.
    Examples stream through: counts are exact, and only the first `LISTED_EXAMPLES` failing and
    warned examples and a sample of each rule's matches are kept. `progress` is advanced once per
    example (the caller names the stage and its total).
    """
    progress = progress or Progress()
    enabled = [rule for rule in rules if rule.enabled]
    example_hits = [0] * len(enabled)
    match_hits = [0] * len(enabled)
    checked = failing_count = warning_count = 0
    failing: list[ExampleViolations] = []
    warnings: list[ExampleViolations] = []
    groups = GroupCollector()
    for position, example in enumerate(examples):
        checked += 1
        progress.advance()
        parts = list(_parts(example))
        violations: list[RuleViolation] = []
        for i, rule in enumerate(enabled):
            found = _violations(rule, parts)
            if found:
                example_hits[i] += 1
                match_hits[i] += len(found)
                violations.extend(found)
        if not violations:
            continue
        for v in violations:
            groups.add(v.rule_name, v.action.value, FindingRow(example_id=example.id, where=v.where, text=v.text))
        blocked = any(v.action is RuleAction.BLOCK for v in violations)
        listed = failing if blocked else warnings
        if len(listed) < LISTED_EXAMPLES:
            listed.append(ExampleViolations(example_id=example.id, position=position, violations=violations))
        if blocked:
            failing_count += 1
        else:
            warning_count += 1
    passed = checked - failing_count
    return GuardrailReport(
        checked=checked,
        passed=passed,
        pass_rate=passed / checked if checked else 1.0,
        rule_counts=[
            RuleCount(
                rule_id=rule.id,
                rule_name=rule.name,
                action=rule.action,
                examples=example_hits[i],
                matches=match_hits[i],
            )
            for i, rule in enumerate(enabled)
        ],
        failing=failing,
        warnings=warnings,
        failing_count=failing_count,
        warning_count=warning_count,
        groups=groups.groups(),
    )


def _violations(rule: GuardrailRule, parts: list[tuple[str, Role | None, str]]) -> list[RuleViolation]:
    pattern = rule.compiled()
    violations = []
    for where, role, text in parts:
        if not rule.applies_to(where, role):
            continue
        for match in pattern.finditer(text):
            # A pattern that can match nothing (`x*`) matches between every two characters; that is
            # not a finding.
            if match.end() == match.start():
                continue
            violations.append(
                RuleViolation(
                    rule_id=rule.id,
                    rule_name=rule.name,
                    action=rule.action,
                    where=where,
                    start=match.start(),
                    end=match.end(),
                    text=match.group(),
                    message=rule.message or f"Matched rule '{rule.name}'.",
                )
            )
    return violations


def _parts(example: Example) -> Iterator[tuple[str, Role | None, str]]:
    # Same locations as Example.parts(), plus each turn's role for scoping.
    if example.system:
        yield "system", None, example.system
    for i, message in enumerate(example.messages):
        yield f"messages[{i}]", message.role, message.content
        for j, call in enumerate(message.tool_calls):
            yield f"messages[{i}].tool_calls[{j}].arguments", message.role, call.arguments


@functools.lru_cache(maxsize=512)
def _compile(kind: RuleKind, pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    flags = 0 if case_sensitive else re.IGNORECASE
    if kind is RuleKind.WORDS:
        return re.compile(_words_regex(pattern), flags)
    if not pattern:
        raise ValueError("The regular expression is empty.")
    if len(pattern) > MAX_REGEX_LENGTH:
        raise ValueError(
            f"The regular expression is {len(pattern)} characters long; the limit is {MAX_REGEX_LENGTH}."
        )
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise ValueError(f"Invalid regular expression at position {exc.pos}: {exc.msg}.") from exc
    if _nests_unbounded_repeats(sre_parser.parse(pattern, flags)):
        raise ValueError(
            "The regular expression repeats a group that itself repeats without limit, like (a+)+, which "
            "can take exponential time. Drop the inner or outer repeat, or make the inner one possessive "
            "(a++) or atomic ((?>a+))."
        )
    return compiled


def parse_words(text: str) -> list[str]:
    """Split a word-list rule into its words or phrases (one per line or comma-separated), as matched."""
    seen: dict[str, None] = {}
    for chunk in re.split(r"[,\n]", text):
        word = " ".join(chunk.split())
        if word:
            seen.setdefault(word, None)
    return list(seen)


def _words_regex(text: str) -> str:
    words = parse_words(text)
    if not words:
        raise ValueError("The word list is empty: give words one per line or separated by commas.")
    if len(text) > MAX_WORDS_LENGTH:
        raise ValueError(f"The word list is {len(text)} characters long; the limit is {MAX_WORDS_LENGTH}.")
    # Longest first, so "credit card number" wins over "credit card". Lookarounds rather than \b, so
    # words that start or end with a symbol ("c++", "@admin") still match as whole words.
    alternatives = [r"\s+".join(map(re.escape, w.split())) for w in sorted(words, key=len, reverse=True)]
    return rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)"


def _nests_unbounded_repeats(subpattern: Any, inside_unbounded: bool = False) -> bool:
    """Say whether an unbounded repeat sits inside another one (in the parse tree of `re`)."""
    for op, av in subpattern:
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            unbounded = av[1] == sre_constants.MAXREPEAT
            if unbounded and inside_unbounded:
                return True
            if _nests_unbounded_repeats(av[2], inside_unbounded or unbounded):
                return True
        elif op is sre_constants.POSSESSIVE_REPEAT:
            # A possessive repeat never gives back what it matched, so the repeats inside it are not
            # retried against one another; only what nests inside its own body counts.
            if _nests_unbounded_repeats(av[2]):
                return True
        elif op is sre_constants.ATOMIC_GROUP:
            if _nests_unbounded_repeats(av):
                return True
        else:
            for child in _children(av):
                if _nests_unbounded_repeats(child, inside_unbounded):
                    return True
    return False


def _children(av: Any) -> Iterator[Any]:
    if isinstance(av, sre_parser.SubPattern):
        yield av
    elif isinstance(av, tuple | list):
        for item in av:
            yield from _children(item)
