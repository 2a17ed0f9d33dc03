"""OpenAI's chat fine-tuning rules: the cookbook's format checks, the guide's weights, and tool calls.

Sources: openai/openai-cookbook `examples/Chat_finetuning_data_prep.ipynb` (format errors and token
counting) and https://platform.openai.com/docs/guides/fine-tuning (weights, minimum examples, context).
The cookbook's key and role lists predate tool calling; `tool_calls`, `tool_call_id` and the `tool` role
are added from the guide's function-calling example (see `tools.py`).
"""

from __future__ import annotations

from typing import Any

from workbench.domain.tokens import openai_chat_tokens
from workbench.domain.validation.models import TargetRules
from workbench.domain.validation.shape import (
    _CHAT_EXAMPLE,
    _check_keys,
    _Dataset,
    _kind,
    _messages,
    _objects,
    _Out,
    _path,
    _show,
)
from workbench.domain.validation.tools import _check_openai_tools

OPENAI_MESSAGE_KEYS = ("role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id")
OPENAI_ROLES = ("system", "user", "assistant", "tool", "function")
_OPENAI_TOP_KEYS = ("messages", "tools", "functions", "parallel_tool_calls")


def _check_openai(record: dict[str, Any], out: _Out, rules: TargetRules, data: _Dataset) -> int:
    """Apply the OpenAI cookbook's format checks, the guide's weight rule and the tool-calling shape."""
    hints = {"system": 'OpenAI takes the system prompt as a {"role": "system"} message'}
    _check_keys(record, "", _OPENAI_TOP_KEYS, out, "OpenAI's chat format", strict=False, hints=hints)
    messages = _messages(record, out, "OpenAI")
    if messages is None:
        return 0
    dicts: list[dict[str, Any]] = []
    paths: list[tuple[str, dict[str, Any]]] = []
    expected = f"each message must be an object like {_CHAT_EXAMPLE}"
    for path, message in _objects(messages, "messages", out, expected):
        dicts.append(message)
        paths.append((path, message))
        # An assistant tool call may leave content out (the guide's function-calling example does).
        required = ("role",) if _calls_tool(message) else ("role", "content")
        if missing := [k for k in required if k not in message]:
            names = " or ".join(repr(k) for k in missing)
            out.error(
                "message_missing_key", path,
                f"{path} has no {names}; every message needs 'role' and 'content'.",
            )
        if unknown := [k for k in message if k not in OPENAI_MESSAGE_KEYS]:
            out.error(
                "message_unrecognized_key", _path(path, unknown[0]),
                f"{path} has key(s) {', '.join(repr(k) for k in unknown)}, which OpenAI does not accept; "
                f"allowed: {', '.join(OPENAI_MESSAGE_KEYS)}.",
            )
        role = message.get("role")
        if "role" in message and (not isinstance(role, str) or role not in OPENAI_ROLES):
            out.error(
                "unrecognized_role", f"{path}.role",
                f'{path}.role is {_show(role)}; use "system", "user", "assistant" or "tool" ("function" for legacy function calls).',
            )
        if "content" in message:
            _check_openai_content(message, path, out)
        if "name" in message and not isinstance(message["name"], str):
            out.error(
                "invalid_type", f"{path}.name",
                f"{path}.name is {_kind(message['name'])}; it must be a string.",
            )
        if "weight" in message:
            _check_weight(message["weight"], role, f"{path}.weight", out)
    _check_openai_roles(dicts, len(messages), out)
    _check_openai_tools(record, paths, out)
    return openai_chat_tokens(dicts, rules.counter.encoding or "cl100k_base")


def _calls_tool(message: dict[str, Any]) -> bool:
    return message.get("role") == "assistant" and bool(message.get("tool_calls") or message.get("function_call"))


def _check_openai_content(message: dict[str, Any], path: str, out: _Out) -> None:
    # The cookbook's test: `(not content and not function_call) or not isinstance(content, str)`, with
    # tool_calls standing in for function_call, and null content allowed beside a call.
    content = message["content"]
    if content is None and _calls_tool(message):
        return
    if not isinstance(content, str):
        out.error(
            "missing_content", f"{path}.content",
            f"{path}.content is {_kind(content)}; it must be the message text as a string.",
        )
    elif not content and not _calls_tool(message):
        out.error(
            "missing_content", f"{path}.content",
            f"{path}.content is empty; give the message text (or a tool call).",
        )
    elif not content.strip() and not _calls_tool(message):
        out.warn("empty_content", f"{path}.content", f"{path}.content is only whitespace; give the message text.")


def _check_weight(weight: Any, role: Any, path: str, out: _Out) -> None:
    if role != "assistant":
        out.error(
            "misplaced_weight", path,
            f"{path} is set on a {_show(role)} message; OpenAI reads weight only on assistant messages. Remove it.",
        )
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight not in (0, 1):
        out.error(
            "invalid_weight", path,
            f"{path} is {_show(weight)}; OpenAI accepts only 0 (skip this turn) or 1 (train on it).",
        )


def _check_openai_roles(dicts: list[dict[str, Any]], n_messages: int, out: _Out) -> None:
    roles = [m.get("role") for m in dicts]
    if "assistant" not in roles:
        out.error(
            "example_missing_assistant_message", "messages",
            "The example has no assistant message; OpenAI trains on assistant turns, so add at least one.",
        )
    else:
        weights = [m.get("weight", 1) for m in dicts if m.get("role") == "assistant"]
        if all(isinstance(w, int | float) and not isinstance(w, bool) and w == 0 for w in weights):
            out.warn(
                "all_weights_zero", "messages",
                "Every assistant message has weight 0, so the example teaches nothing; set weight 1 on the turns to learn.",
            )
        if roles[-1] != "assistant":
            out.warn(
                "last_not_assistant", f"messages[{n_messages - 1}].role",
                f"The example ends with a {_show(roles[-1])} message after the last assistant reply; it is never trained on.",
            )
    if "system" not in roles:
        out.warn("missing_system_message", "messages", "The example has no system message.")
    if "user" not in roles:
        out.warn("missing_user_message", "messages", "The example has no user message.")

