"""What every per-record check shares: where findings go, how values are named, and the shape rules.

Each checker reads one dict, records findings on `_Out` and returns the record's tokens. The shape rules
here (keys, lists of objects, message lists, roles and turn order) are worded the same for every target.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import orjson

from workbench.domain.validation.models import Severity

_FOREIGN_KEYS = {
    "schemaVersion": "it belongs to the Nova/Converse format",
    "prompt": "it belongs to the prompt/completion format",
    "completion": "it belongs to the prompt/completion format",
    "messages": "it belongs to a chat format",
    "conversations": "it belongs to the ShareGPT format",
    "instruction": "it belongs to the Alpaca format",
    "metadata": "export without metadata to drop it",
    "weight": "only OpenAI reads per-message weights",
    "name": "only OpenAI reads message names",
}
_CHAT_EXAMPLE = '{"role": "user", "content": "..."}'


class _Out:
    """Collect one record's findings as plain tuples: pydantic models are built only for real problems."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[Severity, str, str | None, str]] = []

    def error(self, code: str, field: str | None, message: str) -> None:
        self.items.append((Severity.ERROR, code, field, message))

    def warn(self, code: str, field: str | None, message: str) -> None:
        self.items.append((Severity.WARNING, code, field, message))


class _Dataset:
    """Gather what the dataset-level Converse rules need: each record's media kind, and the S3 buckets."""

    def __init__(self) -> None:
        self.media_kinds: dict[str, int] = defaultdict(int)
        self.buckets: set[str] = set()


def _kind(value: Any) -> str:
    """Name a JSON value's type the way a user reads it in a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    for types, name in ((str, "a string"), (int | float, "a number"), (list, "a list"), (dict, "an object")):
        if isinstance(value, types):
            return name
    return type(value).__name__


def _show(value: Any) -> str:
    """Render a value from the record as JSON, shortened, so messages quote what the file holds."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _path(parent: str, key: Any) -> str:
    return f"{parent}.{key}" if parent else str(key)


def _check_keys(
    obj: dict[str, Any], parent: str, allowed: tuple[str, ...], out: _Out, label: str, *, strict: bool,
    hints: dict[str, str] | None = None, skip: tuple[str, ...] = (),
) -> None:
    """Report keys outside `allowed`: an error where the target rejects them, otherwise a warning.

    Keys in `skip` are reported elsewhere (tool fields, by `tools._reject_tool_use`), so not twice.
    """
    where = parent or "The record"
    for key in obj:
        if key in allowed or key in skip:
            continue
        reason = {**_FOREIGN_KEYS, **(hints or {})}.get(key) if isinstance(key, str) else None
        hint = f" ({reason})" if reason else ""
        if strict:
            out.error(
                "forbidden_key", _path(parent, key),
                f"{where} has key {key!r}{hint}, which {label} does not allow. Remove it.",
            )
        else:
            out.warn(
                "unrecognized_key", _path(parent, key),
                f"{where} has key {key!r}{hint}, which {label} does not read. Remove it.",
            )


def _objects(items: list[Any], parent: str, out: _Out, expected: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (path, item) for each object in a list, reporting every other item as `invalid_type`.

    `expected` ends the message, e.g. 'each message must be an object like {...}'.
    """
    for i, item in enumerate(items):
        path = f"{parent}[{i}]"
        if isinstance(item, dict):
            yield path, item
        else:
            out.error("invalid_type", path, f"{path} is {_kind(item)}; {expected}.")


def _messages(record: dict[str, Any], out: _Out, label: str) -> list[Any] | None:
    messages = record.get("messages")
    if isinstance(messages, list) and messages:
        return messages
    if "messages" not in record:
        what = "has no 'messages' key"
    elif isinstance(messages, list):
        what = "has an empty 'messages' list"
    else:
        what = f"has 'messages' as {_kind(messages)}"
    hint = " It looks like a prompt/completion record." if "prompt" in record or "completion" in record else ""
    out.error(
        "missing_messages_list", "messages",
        f"The record {what}; {label} needs a non-empty list of messages.{hint}",
    )
    return None


def _message_role(
    message: dict[str, Any], path: str, out: _Out, label: str, system_home: str, skip_roles: tuple[str, ...] = ()
) -> str | None:
    """Return a message's role when it is 'user' or 'assistant'; report missing keys and other roles.

    Roles in `skip_roles` (tool roles, reported as unsupported tool use) are not reported again.
    """
    for key in ("role", "content"):
        if key not in message:
            out.error(
                "missing_key", f"{path}.{key}",
                f"{path} has no {key!r}; every message needs 'role' and 'content'.",
            )
    role = message.get("role")
    if isinstance(role, str) and role in ("user", "assistant"):
        return role
    if "role" in message and role not in skip_roles:
        hint = f" Move the system prompt to the top-level {system_home}." if role == "system" else ""
        out.error(
            "unrecognized_role", f"{path}.role",
            f"{path}.role is {_show(role)}; {label} takes only 'user' and 'assistant'.{hint}",
        )
    return None


def _chat_turns(
    messages: list[Any], roles: list[str], out: _Out, label: str, *, example: str, strict: bool, system_home: str,
    skip_keys: tuple[str, ...] = (), skip_roles: tuple[str, ...] = (),
) -> Iterator[tuple[str, str | None, Any]]:
    """Check each Bedrock chat message's keys and role; yield (path, role, content) where it has content.

    Valid roles are appended to `roles` as they are read, for `_check_turns` once the loop is done.
    """
    expected = f"each message must be an object like {example}"
    for path, message in _objects(messages, "messages", out, expected):
        _check_keys(message, path, ("role", "content"), out, label, strict=strict, skip=skip_keys)
        role = _message_role(message, path, out, label, system_home, skip_roles)
        if role:
            roles.append(role)
        if "content" in message:
            yield path, role, message["content"]


def _check_turns(messages: list[Any], roles: list[str], out: _Out, label: str) -> bool:
    """Check the turn order (first user, alternating, last assistant); return True when it is valid."""
    if len(messages) < 2:
        out.error(
            "too_few_messages", "messages",
            f"messages has {len(messages)} message; {label} needs at least a user message and the assistant reply.",
        )
        return False
    if len(roles) != len(messages):  # a role is already reported as broken
        return False
    before = len(out.items)
    if roles[0] != "user":
        out.error(
            "first_not_user", "messages[0].role",
            f"messages[0].role is {_show(roles[0])}; {label} conversations must start with a user message.",
        )
    for i in range(1, len(roles)):
        if roles[i] == roles[i - 1]:
            out.error(
                "roles_not_alternating", f"messages[{i}].role",
                f"messages[{i - 1}] and messages[{i}] are both {_show(roles[i])}; {label} needs user and assistant turns to "
                "alternate. Merge the two messages or add the missing turn between them.",
            )
            break
    if roles[-1] != "assistant":
        last = len(roles) - 1
        out.error(
            "last_not_assistant", f"messages[{last}].role",
            f"messages[{last}].role is {_show(roles[-1])}; {label} conversations must end with the assistant reply to train on.",
        )
    return len(out.items) == before
