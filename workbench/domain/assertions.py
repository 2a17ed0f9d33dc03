"""Check one model output against the assertions a comparison or an evaluation chose.

An assertion is a small, serialisable spec (a pydantic model in one discriminated union, tagged by
`type`), so a run stores exactly what it checked and can be re-scored later. Each spec is checked by
one pure function of (output, reference, example metadata); the LLM judge is the exception that
needs a model call, made by a service, whose reply comes back here as `judge_verdict`.

A check that cannot be made (no reference to compare with, an unreadable judge verdict) is an
*error* result: it fails, whatever `not` says, because "could not check" must never read as a pass.
The names and text forms follow promptfoo's assertions
(https://www.promptfoo.dev/docs/configuration/expected-outputs/).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from referencing.exceptions import Unresolvable

from workbench.domain.example import Example, Message, Role
from workbench.domain.guardrails import GuardrailRule, RuleAction, RuleKind, check_example
from workbench.errors import InvalidInput

MAX_REGEX_TEXT = 20_000
"""Characters of an output a regex assertion looks at; beyond this a slow pattern could stall a run."""
QUOTE_CHARS = 80
"""Characters of a text a reason quotes before cutting it."""


class AssertionResult(BaseModel):
    """What one assertion found in one output, kept with the cell so a reviewer sees why it failed."""

    model_config = ConfigDict(frozen=True)

    label: str = Field(description="The assertion in its short text form (`contains:refund`), to group by.")
    passed: bool
    score: float = Field(ge=0, le=1, description="1 for a pass, 0 for a fail; a judge may give anything between.")
    weight: float = Field(default=1.0, ge=0, description="How much this assertion counts in the output's score.")
    reason: str = Field(description="What was expected and what was found, with long texts cut.")
    error: bool = Field(
        default=False,
        description="The check could not be made (no reference, an unreadable judge verdict); always a fail.",
    )


class Verdict(BaseModel):
    """The assertions of one output combined: a weighted mean score and an all-must-pass flag.

    `passed` requires every assertion with weight > 0 to pass, so a heavily weighted pass cannot hide
    a failed guardrail; weights only decide how far each assertion moves the score. Weight-0 results are
    kept for display and count for neither. With no weighted assertion, nothing was judged: both are None.
    """

    model_config = ConfigDict(frozen=True)

    passed: bool | None
    score: float | None = Field(description="Weighted mean of the assertion scores, 0..1.")
    errors: int = Field(default=0, description="Assertions that could not be checked.")
    results: list[AssertionResult] = Field(default_factory=list)


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True)

    weight: float = Field(
        default=1.0, ge=0, allow_inf_nan=False, description="Share in the output's score; 0 shows without counting."
    )


class _Negatable(_Spec):
    negate: bool = Field(
        default=False, alias="not", description="Pass when the check fails (`not-contains:sorry`)."
    )


class EqualsSpec(_Negatable):
    """The output equals the reference answer (or a given value) after trimming white space."""

    type: Literal["equals"] = "equals"
    value: str | None = Field(default=None, description="Compare with this text instead of the reference.")
    metadata_key: str | None = Field(
        default=None, description="Compare with this metadata value of the example instead of the reference."
    )
    ignore_case: bool = False


class ContainsSpec(_Negatable):
    """The output contains one value, or any or all of several."""

    type: Literal["contains"] = "contains"
    values: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    match: Literal["any", "all"] = Field(default="any", description="With several values: any one, or all.")
    ignore_case: bool = False

    @model_validator(mode="before")
    @classmethod
    def _one_value(cls, data: Any) -> Any:
        # promptfoo writes `value`: one string, or a list for contains-any/contains-all.
        if isinstance(data, dict) and "value" in data and "values" not in data:
            value = data["value"]
            data = {key: item for key, item in data.items() if key != "value"}
            data["values"] = value if isinstance(value, list) else [value]
        return data


class StartsWithSpec(_Negatable):
    """The output starts with a value (leading white space ignored)."""

    type: Literal["starts-with"] = "starts-with"
    value: str = Field(min_length=1)
    ignore_case: bool = False


class RegexSpec(_Negatable):
    """A regular expression finds a match somewhere in the output."""

    type: Literal["regex"] = "regex"
    pattern: str
    ignore_case: bool = False

    @model_validator(mode="after")
    def _compiles(self) -> RegexSpec:
        compiled_regex(self.pattern, self.ignore_case)
        return self


class IsJsonSpec(_Negatable):
    """The output is valid JSON (a single ```json fence around it is accepted and reported)."""

    type: Literal["is-json"] = "is-json"


class JsonSchemaSpec(_Spec):
    """The output is JSON that matches a JSON schema (Draft 2020-12)."""

    type: Literal["json-schema"] = "json-schema"
    json_schema: dict[str, Any] = Field(alias="schema", description="A JSON Schema, Draft 2020-12.")

    @model_validator(mode="after")
    def _valid_schema(self) -> JsonSchemaSpec:
        schema_validator(json.dumps(self.json_schema, sort_keys=True))
        return self


class JsonFieldSpec(_Spec):
    """A field of the output's JSON equals the same field of the reference's JSON (classification outputs)."""

    type: Literal["json-field"] = "json-field"
    field: str = Field(pattern=r"^[^.\s]+(\.[^.\s]+)*$", description="Dotted path: `flag`, `result.label`, `items.0`.")
    metadata_key: str | None = Field(
        default=None, description="Expect this metadata value of the example instead of the reference's field."
    )
    ignore_case: bool = Field(default=True, description="Compare text values without regard to letter case.")


class LengthSpec(_Spec):
    """The output's length, in characters or words, lies within bounds."""

    type: Literal["length"] = "length"
    unit: Literal["chars", "words"] = "chars"
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> LengthSpec:
        if self.min is None and self.max is None:
            raise ValueError("a length assertion needs a minimum, a maximum or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"the minimum length {self.min} is above the maximum {self.max}")
        return self


class GuardrailsSpec(_Spec):
    """No enabled 'block' guardrail rule matches the output; the service fills in the workspace's rules."""

    type: Literal["guardrails"] = "guardrails"
    rules: list[GuardrailRule] = Field(default_factory=list)


class JudgeSpec(_Spec):
    """A judge model grades the output against a rubric (see `workbench.domain.judge`)."""

    type: Literal["judge"] = "judge"
    rubric: str = Field(min_length=1, pattern=r"\S")
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="Pass when the judge's score reaches this; None: the judge's own pass."
    )


@functools.lru_cache(maxsize=256)
def compiled_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """Compile a regex assertion's pattern once, refusing what the guardrail rules refuse.

    The guardrail rule model already rejects bad syntax (with its position) and nested unbounded
    repeats such as `(a+)+`, which backtrack exponentially; reusing it keeps one definition of "safe".
    """
    try:
        rule = GuardrailRule(name="regex", kind=RuleKind.REGEX, pattern=pattern, case_sensitive=not ignore_case)
    except ValidationError as exc:
        raise ValueError(f"regex {pattern!r}: {_first_message(exc)}") from None
    return rule.compiled()


@functools.lru_cache(maxsize=64)
def schema_validator(schema_json: str) -> Draft202012Validator:
    """Check a JSON schema (given as JSON text, so it can be cached) and build its validator once."""
    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"invalid JSON schema at {exc.json_path}: {shorten(exc.message, 200)}") from None
    remote = sorted(ref for ref in _refs(schema) if not ref.startswith("#"))
    if remote:
        raise ValueError(f"the JSON schema refers to {remote[0]!r}: only references inside it ('#/...') work")
    return Draft202012Validator(schema)


AssertionSpec = Annotated[
    EqualsSpec | ContainsSpec | StartsWithSpec | RegexSpec | IsJsonSpec | JsonSchemaSpec | JsonFieldSpec
    | LengthSpec | GuardrailsSpec | JudgeSpec,
    Field(discriminator="type"),
]
_SPEC = TypeAdapter(AssertionSpec)


def default_assertions(has_reference: bool) -> list[AssertionSpec]:
    """Return what to check when the user chose nothing: equals-reference when there is a reference."""
    return [EqualsSpec()] if has_reference else []


def load_assertion(data: Mapping[str, Any]) -> AssertionSpec:
    """Build a spec from its stored or JSON form, turning pydantic's complaint into an InvalidInput."""
    try:
        return _SPEC.validate_python(dict(data))
    except ValidationError as exc:
        raise InvalidInput(f"Assertion {shorten(json.dumps(data, default=str), 120)}: {validation_messages(exc, 1)}") from None


def evaluate(
    spec: AssertionSpec,
    output: str,
    reference: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    judge_verdict: str | None = None,
) -> AssertionResult:
    """Check one output against one assertion; `judge_verdict` is the judge model's reply, for a judge spec."""
    label = describe(spec)
    if isinstance(spec, JudgeSpec):
        from workbench.domain.judge import verdict_result  # judge.py builds on this module's result model

        if judge_verdict is None:
            return _error(label, spec.weight, "The judge model was not called for this output.")
        return verdict_result(judge_verdict, label=label, weight=spec.weight, threshold=spec.threshold)
    try:
        passed, expected, found = _CHECKS[type(spec)](spec, output, reference, metadata or {})
    except _CannotCheck as exc:
        return _error(label, spec.weight, str(exc))
    if isinstance(spec, _Negatable) and spec.negate:
        passed, expected = not passed, "not " + expected
    return AssertionResult(
        label=label, passed=passed, score=1.0 if passed else 0.0, weight=spec.weight,
        reason=f"Expected the output {expected}; found {found}.",
    )


def check_output(
    specs: Sequence[AssertionSpec],
    output: str,
    reference: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    judge_verdicts: Mapping[int, str] | None = None,
) -> Verdict:
    """Check every assertion and combine them; judge replies are given by the spec's position."""
    results = []
    seen: dict[str, int] = {}
    for position, spec in enumerate(specs):
        result = evaluate(spec, output, reference, metadata, judge_verdict=(judge_verdicts or {}).get(position))
        seen[result.label] = seen.get(result.label, 0) + 1
        if seen[result.label] > 1:  # two identical labels would merge in per-assertion statistics
            result = result.model_copy(update={"label": f"{result.label} #{seen[result.label]}"})
        results.append(result)
    return combine(results)


def combine(results: Iterable[AssertionResult]) -> Verdict:
    """Combine assertion results into one verdict (see `Verdict` for the rule)."""
    results = list(results)
    weighed = [r for r in results if r.weight > 0]
    if not weighed:
        return Verdict(passed=None, score=None, errors=sum(r.error for r in results), results=results)
    total = sum(r.weight for r in weighed)
    score = min(1.0, max(0.0, sum(r.score * r.weight for r in weighed) / total))
    return Verdict(
        passed=all(r.passed for r in weighed), score=score, errors=sum(r.error for r in results), results=results
    )


def attach_guardrail_rules(specs: Iterable[AssertionSpec], rules: Sequence[GuardrailRule]) -> list[AssertionSpec]:
    """Give every guardrails assertion that names no rules of its own the workspace's rules."""
    return [
        s.model_copy(update={"rules": list(rules)}) if isinstance(s, GuardrailsSpec) and not s.rules else s
        for s in specs
    ]


# ---- checks: each returns (passed, what was expected, what was found) ------------------------------------


class _CannotCheck(Exception):
    """The check has nothing to compare with; the message says what is missing."""


_Check = tuple[bool, str, str]


def _check_equals(spec: EqualsSpec, output: str, reference: str | None, metadata: Mapping[str, Any]) -> _Check:
    if spec.value is not None:
        expected, what = spec.value, "the value"
    elif spec.metadata_key is not None:
        if spec.metadata_key not in metadata:
            raise _CannotCheck(f"The example's metadata has no {spec.metadata_key!r} to compare with.")
        expected, what = _shown(metadata[spec.metadata_key]), f"metadata {spec.metadata_key!r}"
    elif reference is None:
        raise _CannotCheck("The example has no reference answer to compare with.")
    else:
        expected, what = reference, "the reference"
    got, want = output.strip(), expected.strip()
    same = got.casefold() == want.casefold() if spec.ignore_case else got == want
    case = " (ignoring case)" if spec.ignore_case else ""
    if same:
        return True, f"to equal {what} {_quote(want)}{case}", "an equal text"
    at = _first_difference(got.casefold(), want.casefold()) if spec.ignore_case else _first_difference(got, want)
    return False, f"to equal {what} {_quote(want)}{case}", f"{_quote(got)}, which differs at character {at}"


def _check_contains(spec: ContainsSpec, output: str, reference: str | None, metadata: Mapping[str, Any]) -> _Check:
    text = output.casefold() if spec.ignore_case else output
    where = {v: text.find(v.casefold() if spec.ignore_case else v) for v in spec.values}
    found = [v for v in spec.values if where[v] >= 0]
    missing = [v for v in spec.values if where[v] < 0]
    case = " (ignoring case)" if spec.ignore_case else ""
    if len(spec.values) == 1:
        value = spec.values[0]
        expected = f"to contain {_quote(value)}{case}"
        return bool(found), expected, f"it at character {where[value]}" if found else f"no match in {_quote(output)}"
    expected = f"to contain {spec.match} of {_quote_list(spec.values)}{case}"
    passed = bool(found) if spec.match == "any" else not missing
    seen = f"{_quote_list(found)} present" if found else "none of them"
    if missing and found:
        seen += f", {_quote_list(missing)} missing"
    return passed, expected, seen


def _check_starts(spec: StartsWithSpec, output: str, reference: str | None, metadata: Mapping[str, Any]) -> _Check:
    text = output.lstrip()
    head = text[: len(spec.value)]
    passed = head.casefold() == spec.value.casefold() if spec.ignore_case else head == spec.value
    case = " (ignoring case)" if spec.ignore_case else ""
    return passed, f"to start with {_quote(spec.value)}{case}", f"it starts with {_quote(text[: max(len(spec.value), 20)])}"


def _check_regex(spec: RegexSpec, output: str, reference: str | None, metadata: Mapping[str, Any]) -> _Check:
    text = output[:MAX_REGEX_TEXT]
    cut = f" (only the first {MAX_REGEX_TEXT} of {len(output)} characters were checked)" if len(output) > MAX_REGEX_TEXT else ""
    match = compiled_regex(spec.pattern, spec.ignore_case).search(text)
    expected = f"to match the regex {_quote(spec.pattern)}"
    if match is None:
        return False, expected, f"no match in {_quote(output)}{cut}"
    return True, expected, f"{_quote(match.group())} at character {match.start()}{cut}"


def _check_is_json(spec: IsJsonSpec, output: str, reference: str | None, metadata: Mapping[str, Any]) -> _Check:
    try:
        value, fenced = read_json(output)
    except ValueError as exc:
        return False, "to be valid JSON", str(exc)
    return True, "to be valid JSON", f"{_json_kind(value)}{_FENCED if fenced else ''}"


def _check_schema(spec: JsonSchemaSpec, output: str, reference: str | None, metadata: Mapping[str, Any]) -> _Check:
    expected = "to match the JSON schema"
    try:
        value, fenced = read_json(output)
    except ValueError as exc:
        return False, expected, str(exc)
    try:
        errors = list(schema_validator(json.dumps(spec.json_schema, sort_keys=True)).iter_errors(value))
    except Unresolvable as exc:
        raise _CannotCheck(f"The JSON schema has a reference that leads nowhere: {shorten(str(exc), 120)}.") from None
    fence = _FENCED if fenced else ""
    if not errors:
        return True, expected, f"{_json_kind(value)} that does{fence}"
    first = best_match(errors)
    more = f" ({len(errors)} problems in all)" if len(errors) > 1 else ""
    return False, expected, f"at {first.json_path}: {shorten(first.message, 160)}{more}{fence}"


def _check_field(spec: JsonFieldSpec, output: str, reference: str | None, metadata: Mapping[str, Any]) -> _Check:
    if spec.metadata_key is not None:
        if spec.metadata_key not in metadata:
            raise _CannotCheck(f"The example's metadata has no {spec.metadata_key!r} to compare with.")
        want, source = metadata[spec.metadata_key], f"metadata {spec.metadata_key!r}"
    else:
        if reference is None:
            raise _CannotCheck("The example has no reference answer to compare with.")
        try:
            want = _field(read_json(reference)[0], spec.field)
        except ValueError as exc:
            raise _CannotCheck(f"The reference cannot give field {spec.field!r}: {exc}.") from None
        source = "the reference's"
    expected = f"to have field {spec.field!r} equal to {source} {_quote(_shown(want))}"
    try:
        got = _field(read_json(output)[0], spec.field)
    except ValueError as exc:
        return False, expected, str(exc)
    return _normal(got, spec.ignore_case) == _normal(want, spec.ignore_case), expected, _quote(_shown(got))


def _check_length(spec: LengthSpec, output: str, reference: str | None, metadata: Mapping[str, Any]) -> _Check:
    size = len(output.strip()) if spec.unit == "chars" else len(output.split())
    unit = "characters" if spec.unit == "chars" else "words"
    if spec.min is not None and spec.max is not None:
        bounds = f"between {spec.min} and {spec.max}"
    elif spec.min is not None:
        bounds = f"at least {spec.min}"
    else:
        bounds = f"at most {spec.max}"
    passed = (spec.min is None or size >= spec.min) and (spec.max is None or size <= spec.max)
    return passed, f"to be {bounds} {unit} long", f"{size} {unit}"


def _check_guardrails(spec: GuardrailsSpec, output: str, reference: str | None, metadata: Mapping[str, Any]) -> _Check:
    expected = "to break no 'block' guardrail rule"
    if not any(rule.enabled for rule in spec.rules):
        return True, expected, "no enabled guardrail rules, so nothing was checked"
    example = Example(messages=[Message(role=Role.ASSISTANT, content=output)])
    violations = check_example(spec.rules, example)
    blocks = [v for v in violations if v.action is RuleAction.BLOCK]
    warns = len(violations) - len(blocks)
    warned = f"; {warns} 'warn' match{'es' if warns != 1 else ''} noted" if warns else ""
    if not blocks:
        return True, expected, f"none broken{warned}"
    first = blocks[0]
    rules = sorted({v.rule_name for v in blocks})
    others = f" (rules broken: {', '.join(map(repr, rules))})" if len(rules) > 1 else ""
    return False, expected, f"rule {first.rule_name!r} matching {_quote(first.text)} at character {first.start}{others}{warned}"


_CHECKS: dict[type, Callable[..., _Check]] = {
    EqualsSpec: _check_equals,
    ContainsSpec: _check_contains,
    StartsWithSpec: _check_starts,
    RegexSpec: _check_regex,
    IsJsonSpec: _check_is_json,
    JsonSchemaSpec: _check_schema,
    JsonFieldSpec: _check_field,
    LengthSpec: _check_length,
    GuardrailsSpec: _check_guardrails,
}


# ---- JSON helpers ------------------------------------------------------------------------------------------

_FENCED = " (inside a ```json fence)"
_FENCE = re.compile(r"\A```[ \t]*(?:json)?[ \t]*\r?\n(.*?)\r?\n?```\Z", re.DOTALL | re.IGNORECASE)


def read_json(text: str) -> tuple[Any, bool]:
    """Parse strict JSON, also when the whole text is one ```json fence; say whether it was fenced.

    Raises ValueError saying why the text is not JSON. NaN and Infinity, which Python's json accepts but
    JSON does not, are refused.
    """
    stripped = text.strip()
    fence = _FENCE.match(stripped)
    body = fence.group(1) if fence else stripped
    if not body:
        raise ValueError("an empty text, not JSON")
    try:
        return json.loads(body, parse_constant=_refuse_constant), fence is not None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"invalid JSON ({shorten(str(exc), 80)})") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _field(value: Any, path: str) -> Any:
    for i, key in enumerate(path.split(".")):
        here = ".".join(path.split(".")[: i + 1])
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise ValueError(f"no field {here!r} in the JSON ({_json_kind(value)})")
    return value


def _normal(value: Any, ignore_case: bool) -> Any:
    """Bring a JSON value to one spelling: true/"true"/"True" alike, 1/"1"/1.0 alike, text trimmed."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return _number_text(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("true", "false", "null"):
            return text.lower()
        if re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text):
            return _number_text(float(text))
        return text.casefold() if ignore_case else text
    if isinstance(value, list):
        return [_normal(v, ignore_case) for v in value]
    if isinstance(value, dict):
        return {str(k): _normal(v, ignore_case) for k, v in value.items()}
    return str(value)


def _number_text(number: float) -> str:
    return str(int(number)) if float(number).is_integer() and abs(number) < 2**63 else repr(float(number))


def _json_kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _refs(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


# ---- labels ------------------------------------------------------------------------------------------------


def describe(spec: AssertionSpec) -> str:
    """Write a spec's short text form, the label results are grouped and shown by.

    Weight, metadata keys, thresholds and rules are left out; `to_text` keeps everything.
    """
    no = "not-" if isinstance(spec, _Negatable) and spec.negate else ""
    match spec:
        case EqualsSpec():
            kind = "iequals" if spec.ignore_case else "equals"
            return f"{no}{kind}:{spec.value}" if spec.value else f"{no}{kind}"
        case ContainsSpec():
            i = "i" if spec.ignore_case else ""
            if len(spec.values) == 1 and spec.match == "any":
                return f"{no}{i}contains:{spec.values[0]}"
            return f"{no}{i}contains-{spec.match}:" + ",".join(map(_csv_item, spec.values))
        case StartsWithSpec():
            return f"{no}starts-with:{spec.value}"
        case RegexSpec():
            return f"{no}regex:{spec.pattern}"
        case IsJsonSpec():
            return f"{no}is-json"
        case JsonSchemaSpec():
            return "json-schema:" + json.dumps(spec.json_schema, separators=(",", ":"), ensure_ascii=False)
        case JsonFieldSpec():
            return f"json-field:{spec.field}"
        case LengthSpec():
            kind = "length" if spec.unit == "chars" else "words"
            return f"{kind}:{'' if spec.min is None else spec.min}..{'' if spec.max is None else spec.max}"
        case GuardrailsSpec():
            return "guardrails"
        case JudgeSpec():
            return f"judge:{spec.rubric}"
    raise TypeError(f"not an assertion spec: {spec!r}")


def _csv_item(value: str) -> str:
    if value != value.strip() or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


# ---- reasons -----------------------------------------------------------------------------------------------


def _error(label: str, weight: float, reason: str) -> AssertionResult:
    return AssertionResult(label=label, passed=False, score=0.0, weight=weight, reason=reason, error=True)


def _quote(text: str, limit: int = QUOTE_CHARS) -> str:
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def _quote_list(values: Sequence[str]) -> str:
    return ", ".join(_quote(v, 40) for v in values[:5]) + (f" and {len(values) - 5} more" if len(values) > 5 else "")


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _first_message(exc: ValidationError) -> str:
    return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")


def validation_messages(exc: ValidationError, skip: int = 0) -> str:
    """Join pydantic's errors as `field: message`; `skip` drops the union's tag from each location."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"][skip:])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
