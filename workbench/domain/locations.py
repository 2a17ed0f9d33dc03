"""Name the part of an example a finding points at, one way in every tab: "system", "turn 2 (assistant)".

Findings come with two kinds of path. PII findings, guardrail matches and the checks run at import
use the canonical example: `system`, then `messages[i]` over the turns alone. Validation findings
use the target's own record, where OpenAI and ShareGPT put the system prompt first in the list, so
their `messages[0]` is the system prompt while everyone else's `messages[0]` is the first turn.
Showing raw paths side by side would make the same turn carry two numbers; these functions turn
both into one label, counting turns from 1 and never counting the system prompt as a turn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

SYSTEM = "system"
# A leading list item of a record: `messages[3]`, `conversations[0]`, `system[0]`, then the rest.
_ITEM = re.compile(r"^(?P<key>[A-Za-z_]+)\[(?P<index>\d+)\](?P<rest>.*)$", re.DOTALL)
# Canonical turn paths inside a message of the checks run at import.
_CANONICAL_IN_TEXT = re.compile(r"messages\[(\d+)\](?:\.(?:content|role)\b)?")
_ANY_TURN = "messages[*]"
_TOOL_ARGUMENTS = re.compile(r"^\.tool_calls\[(\d+)\]\.arguments")
# Speaker names the record formats use for roles, in the words of the canonical example.
_ROLE_NAMES = {
    "system": SYSTEM, "developer": SYSTEM,
    "user": "user", "human": "user",
    "assistant": "assistant", "gpt": "assistant", "model": "assistant", "chatgpt": "assistant",
    "function_call": "assistant",
    "tool": "tool", "function": "tool", "observation": "tool", "function_response": "tool",
}


def turn_label(index: int, role: str | None = None) -> str:
    """Return how turn `index` (0-based, over the turns alone) is shown: 'turn 1 (user)'."""
    return f"turn {index + 1}" + (f" ({role})" if role else "")


def part_label(where: str, roles: Sequence[str] = ()) -> str:
    """Return the label of a canonical part ('system', 'messages[i]', 'messages[i].tool_calls[j].arguments').

    `roles` are the example's turn roles in order, so the label can say whose turn it is; without
    them the label still numbers the turn the same way.
    """
    if where == SYSTEM:
        return SYSTEM
    item = _ITEM.match(where)
    if item is None or item["key"] != "messages":
        return where
    index = int(item["index"])
    label = turn_label(index, roles[index] if index < len(roles) else None)
    call = _TOOL_ARGUMENTS.match(item["rest"])
    return f"{label}, tool call {int(call[1]) + 1} arguments" if call else label


def field_label(field: str, roles: Sequence[str] = ()) -> str:
    """Return the label of a canonical field a conversion lost ('messages[1].tool_calls', 'tools').

    Losses name fields of the canonical example, whose `messages[1]` is the second turn: shown beside
    an OpenAI record, whose `messages[1]` is the first user turn, the raw path points at the wrong
    turn. The turn is labelled as everywhere else and the field inside it kept:
    'turn 2 (assistant), tool_calls'.
    """
    if field.startswith(_ANY_TURN):  # a count over examples, turn numbers left out: 'messages[*].tool_calls'
        rest = field.removeprefix(_ANY_TURN).lstrip(".")
        return "a turn" + (f", {rest}" if rest else "")
    item = _ITEM.match(field)
    if item is None or item["key"] != "messages" or _TOOL_ARGUMENTS.match(item["rest"]):
        return part_label(field, roles)
    turn = part_label(f"messages[{item['index']}]", roles)
    rest = item["rest"].lstrip(".")
    return f"{turn}, {rest}" if rest else turn


def record_part_label(record: Any, path: str | None) -> str:
    """Return the label of a path into a record in a target's shape (what validation findings carry).

    Turns are counted in the record's own list, skipping system entries, so `messages[1]` of an
    OpenAI record with a system prompt is 'turn 1 (user)', as it is for PII in the same example.
    Paths outside the conversation (`prompt`, `tools`, a record-level finding) are returned as they
    are, or as '' when there is no path.
    """
    if not path:
        return ""
    if path == SYSTEM or path.startswith((SYSTEM + ".", SYSTEM + "[")):
        return SYSTEM
    item = _ITEM.match(path)
    turns = record.get(item["key"]) if item and isinstance(record, dict) else None
    if item is None or item["key"] not in ("messages", "conversations") or not isinstance(turns, list):
        return path
    index = int(item["index"])
    if index >= len(turns):
        return path
    roles = [_role_of(turn) for turn in turns]
    if roles[index] == SYSTEM:
        return SYSTEM
    turn = index - sum(1 for role in roles[:index] if role == SYSTEM)
    return turn_label(turn, roles[index])


def relabel_paths(text: str, roles: Sequence[str] = ()) -> str:
    """Return a message with each canonical turn path in it ('messages[1].content: empty turn') labelled."""
    return _CANONICAL_IN_TEXT.sub(lambda m: part_label(f"messages[{m[1]}]", roles), text)


def _role_of(turn: Any) -> str | None:
    if not isinstance(turn, dict):
        return None
    raw = turn.get("role", turn.get("from"))
    return _ROLE_NAMES.get(raw.lower(), raw) if isinstance(raw, str) else None
