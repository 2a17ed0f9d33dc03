"""Read the hyperparameters a user typed (`key=value`) against a base model's own schema.

A value the provider would refuse is refused here, before any upload, with the range the catalogue
states; a key the model does not take is refused with the keys it does. Values the user leaves out are
left out of the request: the provider's default applies, and the form says what it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from workbench.domain.catalogue import Hyperparameter
from workbench.errors import InvalidInput

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A plain ASCII decimal number: what the provider's JSON takes. Python's float() also reads '1_0', '١' and
'１' (other scripts' digits), which a user did not mean as a number the provider would read."""
MAX_WHOLE = 2**53
"""The largest whole number a JSON number carries exactly (a double's integer range)."""


def _number(text: str, spec: Hyperparameter) -> int | float:
    if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise InvalidInput(f"{spec.name}={text!r} is not a finite number; {describe(spec)}")
    if not _NUMBER.fullmatch(text):
        raise InvalidInput(f"{spec.name}={text!r} is not a number (write digits 0-9, e.g. 2 or 0.5); {describe(spec)}")
    value = float(text)
    if not math.isfinite(value):
        raise InvalidInput(f"{spec.name}={text!r} is not a finite number; {describe(spec)}")
    if value == 0 and any(c in "123456789" for c in text.lower().partition("e")[0]):
        raise InvalidInput(f"{spec.name}={text!r} is too small to be told from 0; {describe(spec)}")
    if spec.type == "int":
        exact = Decimal(text)  # exact, so 2**53 + 1 is not rounded into range by float()
        if exact != exact.to_integral_value():
            raise InvalidInput(f"{spec.name}={text!r} must be a whole number; {describe(spec)}")
        if abs(exact) > MAX_WHOLE:
            raise InvalidInput(f"{spec.name}={text!r} is too large (at most 2**53); {describe(spec)}")
        return int(exact)
    return value


def describe(spec: Hyperparameter) -> str:
    """Say what a hyperparameter takes, e.g. 'epochCount takes a whole number from 1 to 10 (default 2)'."""
    if spec.type == "str":
        listed = f" ({', '.join(spec.choices)})" if spec.choices else ""
        return f"{spec.name} takes one of the listed values{listed}" + (f" (default {spec.default})" if spec.default else "")
    kind = "a whole number" if spec.type == "int" else "a number"
    if spec.min is not None and spec.max is not None:
        span = f" from {spec.min:g} to {spec.max:g}"
    elif spec.min is not None:
        span = f" of at least {spec.min:g}"
    elif spec.max is not None:
        span = f" of at most {spec.max:g}"
    else:
        span = ""
    if spec.positive and (spec.min is None or spec.min <= 0):
        span = " greater than 0" + (f" and at most {spec.max:g}" if spec.max is not None else "")
    auto = " or 'auto'" if spec.auto else ""
    shown = _show(spec.default, spec)
    default = f" (default {shown:g})" if isinstance(shown, float) else f" (default {shown})" if shown is not None else ""
    return f"{spec.name} takes {kind}{span}{auto}{default}"


def parse(raw: Mapping[str, Any], schema: tuple[Hyperparameter, ...], *, model: str) -> dict[str, int | float | str]:
    """Check each given value against the schema; return typed values, 'auto' kept as the string."""
    known = {h.name: h for h in schema}
    out: dict[str, int | float | str] = {}
    for key, value in raw.items():
        spec = known.get(key)
        if spec is None:
            names = ", ".join(known) or "none"
            raise InvalidInput(f"{model} has no hyperparameter {key!r}; it takes: {names}")
        text = str(value).strip()
        if text == "":
            continue
        if spec.type == "str":
            if spec.choices and text not in spec.choices:
                raise InvalidInput(f"{key}={text!r} is not one of {', '.join(spec.choices)}")
            out[key] = text
            continue
        if text.lower() == "auto":
            if not spec.auto:
                raise InvalidInput(f"{key}='auto' is not accepted; {describe(spec)}")
            out[key] = "auto"
            continue
        number = _number(text, spec)
        low = (spec.min is not None and number < spec.min) or (spec.positive and number <= 0)
        if low or (spec.max is not None and number > spec.max):
            raise InvalidInput(f"{key}={text} is out of range; {describe(spec)}")
        out[key] = number
    return out


def parse_pairs(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Split CLI `key=value` pairs; a pair without '=' or a key given twice is refused by position."""
    out: dict[str, str] = {}
    for index, pair in enumerate(pairs, start=1):
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"--param {index} is {pair!r}; write it as key=value, e.g. epochCount=2")
        if key in out:
            raise InvalidInput(f"--param {key} is given twice")
        out[key] = value.strip()
    return out


def _show(value: Any, spec: Hyperparameter) -> Any:
    """A default as the provider states it: 2, not 2.0, for a whole-number parameter."""
    if spec.type == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def effective(values: Mapping[str, Any], schema: tuple[Hyperparameter, ...]) -> dict[str, Any]:
    """Return every hyperparameter's value as the job will run it: the user's, else the provider's default."""
    return {h.name: values.get(h.name, _show(h.default, h)) for h in schema}
