"""What every format's reader and writer share: errors, warnings and losses named by field, and call ids.

A reader records every key it does not keep as a warning naming its path (`messages[2].foo`); a
writer records everything the target cannot hold as a `Loss` naming the canonical field it came
from. Both are plain lists the caller reports per line or per example, so nothing is dropped
without a line saying so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, Field

from workbench.domain.example import Message, Role, ToolDef


class FormatError(ValueError):
    """A record does not fit its format; `field` is the JSON path of the offending part."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class Loss(BaseModel):
    """One thing a conversion could not carry into its target, named by the example's field."""

    field: str = Field(description="Path in the canonical example: 'tools', 'messages[3].tool_calls', 'metadata.source'...")
    reason: str = Field(description="What happened to it and why, in words.")

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass
class Conversation:
    """What a reader returns: the training content of one record, before it becomes an Example."""

    system: str | None
    messages: list[Message]
    tools: list[ToolDef] = field(default_factory=list)
    parallel_tool_calls: bool | None = None
    tool_choice: dict[str, Any] | None = None
    kept: dict[str, Any] = field(default_factory=dict)
    """Top-level values the format defines but the example has no field for, kept in metadata silently."""


class Reader:
    """Collect one record's warnings while a format reads it."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.warnings: list[str] = []

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")

    def unknown_keys(self, obj: dict[str, Any], allowed: Iterable[str], path: str) -> None:
        """Warn about each key of a nested object that the format does not define (it is not kept)."""
        known = set(allowed)
        for key in obj:
            if key not in known:
                self.warn(f"{path}.{key}", f"unknown key for {self.fmt}; not kept")


class Writer:
    """Collect one example's losses while a format writes it."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.lost: list[Loss] = []

    def lose(self, path: str, reason: str) -> None:
        self.lost.append(Loss(field=path, reason=reason))

    def no_place(self, path: str, what: str) -> None:
        self.lose(path, f"{what} dropped: {self.fmt} has no place for it")


# ------------------------------------------------------------------------------------- value checks


def json_type(value: Any) -> str:
    """Name a JSON value's type the way a user reads it in a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def text(value: Any, path: str, *, allow_none: bool = False) -> str:
    if value is None and allow_none:
        return ""
    if not isinstance(value, str):
        raise FormatError(f"must be a string, found {json_type(value)}", path)
    return value


def optional_text(value: Any, path: str) -> str | None:
    return None if value is None else text(value, path)


def obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(f"must be an object, found {json_type(value)}", path)
    return value


def objects(value: Any, path: str, what: str = "objects") -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise FormatError(f"must be a list of {what}, found {json_type(value)}", path)
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise FormatError(f"must be an object, found {json_type(item)}", f"{path}[{i}]")
    return value


def role(value: Any, path: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        shown = value if isinstance(value, str) else json_type(value)
        raise FormatError(f"role {shown!r} is not one of {', '.join(allowed)}", path)
    return value


def weight(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(f"must be a number, found {json_type(value)}", path)
    return float(value)


def written_weight(value: float) -> int | float:
    """Write 1.0 as 1, as the files people write do."""
    return int(value) if float(value).is_integer() else value


def flag(value: Any, path: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise FormatError(f"must be true or false, found {json_type(value)}", path)


def schema(value: Any, path: str) -> dict[str, Any] | None:
    return None if value is None else obj(value, path)


def arguments_text(value: Any) -> str:
    """Write a tool call's arguments object as the JSON text OpenAI carries (json.dumps' spacing)."""
    return json.dumps(value, ensure_ascii=False)


def parse_arguments(arguments: str) -> tuple[bool, Any]:
    """Return (True, value) when a call's arguments are JSON, else (False, None).

    Read as the file's lines are (orjson), so a number too large for 64 bits becomes a float here
    too, and whatever is read can be written again.
    """
    try:
        return True, orjson.loads(arguments)
    except ValueError:
        return False, None


# ------------------------------------------------------------------------------------------ call ids


def call_ids(messages: list[Message]) -> tuple[dict[tuple[int, int], str], dict[int, str], dict[int, str]]:
    """Give every tool call an id and tie every tool result to one, for formats that need ids.

    Returns (call id by (turn, call), answered call id by tool turn, called function name by tool
    turn). A call that has an id keeps it; one without gets `call_<turn>_<call>`. A result that
    names its call keeps that id; one that does not (legacy OpenAI functions, ShareGPT
    observations) answers the oldest call not yet answered, the order those formats imply.
    """
    ids: dict[tuple[int, int], str] = {}
    names: dict[str, str] = {}
    open_calls: list[str] = []
    answers: dict[int, str] = {}
    answered_names: dict[int, str] = {}
    for i, m in enumerate(messages):
        for j, call in enumerate(m.tool_calls):
            call_id = call.id or f"call_{i}_{j}"
            ids[(i, j)] = call_id
            names[call_id] = call.name
            open_calls.append(call_id)
        if m.role is Role.TOOL:
            if m.tool_call_id is not None:
                answer = m.tool_call_id
                if answer in open_calls:
                    open_calls.remove(answer)
            elif open_calls:
                answer = open_calls.pop(0)
            else:
                continue
            answers[i] = answer
            if answer in names:
                answered_names[i] = names[answer]
    return ids, answers, answered_names
