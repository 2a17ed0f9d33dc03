"""The text forms of assertions (`contains:refund`, `length:10..200`, a JSON object), read into specs and back.

Kept apart from the checks: this is what a person types on a command line or in a form, with its
own messages listing every form; `assertions` is what a run stores and evaluates.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from workbench.domain.assertions import (
    AssertionSpec,
    ContainsSpec,
    EqualsSpec,
    GuardrailsSpec,
    IsJsonSpec,
    JsonFieldSpec,
    JsonSchemaSpec,
    JudgeSpec,
    LengthSpec,
    RegexSpec,
    StartsWithSpec,
    describe,
    load_assertion,
    shorten,
    validation_messages,
)
from workbench.errors import InvalidInput

FORMS = (
    "equals | iequals | equals:TEXT",
    "contains:X | icontains:X | contains-any:A,B | contains-all:A,B | icontains-any:A,B | icontains-all:A,B",
    "starts-with:X",
    "regex:PATTERN",
    "is-json",
    "json-schema:@FILE | json-schema:{...inline JSON...}",
    "json-field:PATH (dotted, e.g. result.flag)",
    "length:MIN..MAX | words:MIN..MAX (either bound may be left out: length:..200)",
    "guardrails",
    "judge:RUBRIC",
    "not-<form> for equals, contains, starts-with, regex and is-json",
    "or a JSON object such as {\"type\": \"contains\", \"value\": \"refund\", \"weight\": 2}",
)
_NEGATABLE = {"equals", "iequals", "contains", "icontains", "contains-any", "contains-all", "icontains-any",
              "icontains-all", "starts-with", "regex", "is-json"}


def parse_assertion(text: str, *, read_file: Callable[[str], str] | None = None) -> AssertionSpec:
    """Parse the compact text form (`contains:refund`, `length:10..200`) or a JSON object into a spec.

    `read_file` reads `json-schema:@path`; it is passed in (by the CLI) because this layer does no IO.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            raise _bad_form(text, f"not valid JSON ({shorten(str(exc), 80)})") from None
        if not isinstance(data, dict):
            raise _bad_form(text, "a JSON assertion must be an object")
        return load_assertion(data)
    kind, colon, arg = stripped.partition(":")
    kind = kind.strip().lower()
    value = arg if colon else None
    negate = kind.startswith("not-")
    if negate:
        kind = kind[4:]
        if kind not in _NEGATABLE:
            raise _bad_form(text, f"'{kind}' cannot be negated")
    try:
        spec = _from_form(kind, value, text, read_file)
    except ValidationError as exc:
        raise InvalidInput(f"Assertion {shorten(text, 120)!r}: {validation_messages(exc)}") from None
    return spec.model_copy(update={"negate": True}) if negate else spec


def parse_assertions(texts: Iterable[str], *, read_file: Callable[[str], str] | None = None) -> list[AssertionSpec]:
    """Parse several text forms (one per `--assert` option)."""
    return [parse_assertion(t, read_file=read_file) for t in texts]


def _from_form(kind: str, value: str | None, text: str, read_file: Callable[[str], str] | None) -> AssertionSpec:
    def needed() -> str:
        if not value:
            raise _bad_form(text, f"'{kind}' needs a value after the colon")
        return value

    def nothing() -> None:
        if value is not None:
            raise _bad_form(text, f"'{kind}' takes no value")

    if kind in ("equals", "iequals"):
        return EqualsSpec(value=value or None, ignore_case=kind == "iequals")
    if kind in ("contains", "icontains"):
        return ContainsSpec(values=[needed()], ignore_case=kind == "icontains")
    if kind in ("contains-any", "contains-all", "icontains-any", "icontains-all"):
        match = "any" if kind.endswith("any") else "all"
        return ContainsSpec(values=_split_list(needed(), text), match=match, ignore_case=kind.startswith("i"))
    if kind == "starts-with":
        return StartsWithSpec(value=needed())
    if kind == "regex":
        return RegexSpec(pattern=needed())
    if kind in ("is-json", "guardrails"):
        nothing()
        return IsJsonSpec() if kind == "is-json" else GuardrailsSpec()
    if kind == "json-schema":
        return JsonSchemaSpec(schema=_schema_arg(needed().strip(), text, read_file))
    if kind == "json-field":
        return JsonFieldSpec(field=needed().strip())
    if kind in ("length", "words"):
        low, high = _bounds(needed(), text)
        return LengthSpec(unit="chars" if kind == "length" else "words", min=low, max=high)
    if kind == "judge":
        return JudgeSpec(rubric=needed().strip())
    raise _bad_form(text, f"unknown assertion '{kind}'")


def _split_list(value: str, text: str) -> list[str]:
    try:
        items = next(csv.reader([value], skipinitialspace=True, strict=True), [])
    except csv.Error as exc:
        raise _bad_form(text, f"the list of values cannot be read ({exc})") from None
    if not items or any(item == "" for item in items):
        raise _bad_form(text, "the list has an empty value; separate values with commas, quote one holding a comma")
    return items


def _bounds(value: str, text: str) -> tuple[int | None, int | None]:
    match = re.fullmatch(r"\s*(\d*)\s*\.\.\s*(\d*)\s*", value)
    if not match or not (match.group(1) or match.group(2)):
        raise _bad_form(text, "bounds are written MIN..MAX, MIN.. or ..MAX with whole numbers")
    low, high = match.groups()
    return (int(low) if low else None), (int(high) if high else None)


def _schema_arg(value: str, text: str, read_file: Callable[[str], str] | None) -> Any:
    if value.startswith("@"):
        if read_file is None:
            raise _bad_form(text, "a schema file can only be read where files are (the CLI); give the schema inline")
        try:
            value = read_file(value[1:])
        except OSError as exc:
            raise InvalidInput(f"Assertion {shorten(text, 120)!r}: cannot read the schema file: {exc}") from None
    try:
        schema = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise _bad_form(text, f"the schema is not valid JSON ({shorten(str(exc), 80)})") from None
    if not isinstance(schema, dict):
        raise _bad_form(text, "the schema must be a JSON object")
    return schema


def _bad_form(text: str, why: str) -> InvalidInput:
    return InvalidInput(f"Assertion {shorten(text, 120)!r}: {why}. The forms are: " + "; ".join(FORMS) + ".")


def to_text(spec: AssertionSpec) -> str:
    """Write a spec so that `parse_assertion` gives it back: the short form when it says everything, else JSON."""
    short = describe(spec)
    try:
        if parse_assertion(short) == spec:
            return short
    except InvalidInput:
        pass
    return json.dumps(spec.model_dump(mode="json", exclude_defaults=True) | {"type": spec.type}, ensure_ascii=False)
