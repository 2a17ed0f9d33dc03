"""OpenAI's chat fine-tuning rules: the cookbook's format checks, the guide's weights, tools and images.

Sources: openai/openai-cookbook `examples/Chat_finetuning_data_prep.ipynb` (the "Format validation" cell's
error keys and the "Data Warnings and Token Counts" cell) and https://platform.openai.com/docs/guides/fine-tuning
(weights, minimum examples, context, function calling). The cookbook's key and role lists predate tool
calling and vision: `tool_calls`, `tool_call_id`, the `tool` role, content left out beside a call, and
content as a list of text/image parts are accepted here because the guide documents them (see
`workbench.domain.catalogue.rules.openai` for where we differ from the cookbook, rule by rule).
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
"""The cookbook's five keys (role, content, name, function_call, weight) plus the guide's two tool keys."""
OPENAI_ROLES = ("system", "user", "assistant", "tool", "function")
"""The cookbook's code accepts system, user, assistant and function (its markdown omits function); the guide adds tool."""
_OPENAI_TOP_KEYS = ("messages", "tools", "functions", "parallel_tool_calls")
MAX_IMAGES_PER_EXAMPLE = 10
"""Vision fine-tuning (https://platform.openai.com/docs/guides/vision-fine-tuning): at most 10 images per example."""
_TEXT_PART = '{"type": "text", "text": "..."}'
_IMAGE_PART = '{"type": "image_url", "image_url": {"url": "https://... or data:image/...;base64,..."}}'


def _check_openai(record: dict[str, Any], out: _Out, rules: TargetRules, data: _Dataset) -> int:
    """Apply the OpenAI cookbook's format checks, the guide's weight rule, tool calling and image parts."""
    hints = {"system": 'OpenAI takes the system prompt as a {"role": "system"} message'}
    _check_keys(record, "", _OPENAI_TOP_KEYS, out, "OpenAI's chat format", strict=False, hints=hints)
    messages = _messages(record, out, "OpenAI")
    if messages is None:
        return 0
    paths: list[tuple[str, dict[str, Any]]] = []
    images = 0
    expected = f"each message must be an object like {_CHAT_EXAMPLE}"
    for path, message in _objects(messages, "messages", out, expected):
        paths.append((path, message))
        _check_message_keys(message, path, out)
        role = message.get("role")
        if "role" in message and (not isinstance(role, str) or role not in OPENAI_ROLES):
            out.error(
                "unrecognized_role", f"{path}.role",
                f'{path}.role is {_show(role)}; use "system", "user", "assistant" or "tool" ("function" for legacy '
                "function calls), in lower case.",
            )
        if "content" in message:
            images += _check_openai_content(message, path, out)
        if "name" in message and not isinstance(message["name"], str):
            out.error("invalid_name", f"{path}.name", f"{path}.name is {_kind(message['name'])}; make it a string or remove it.")
        if "weight" in message:
            _check_weight(message["weight"], role, f"{path}.weight", out)
    if images > MAX_IMAGES_PER_EXAMPLE:
        out.error(
            "too_many_images", "messages",
            f"The example has {images} images; OpenAI takes at most {MAX_IMAGES_PER_EXAMPLE} per example. Split it or drop some.",
        )
    dicts = [m for _, m in paths]
    _check_openai_roles(dicts, len(messages), out)
    _check_openai_tools(record, paths, out)
    return openai_chat_tokens([_as_text(m) for m in dicts], rules.counter.encoding or "cl100k_base")


def _calls_tool(message: dict[str, Any]) -> bool:
    return message.get("role") == "assistant" and bool(message.get("tool_calls") or message.get("function_call"))


def _check_message_keys(message: dict[str, Any], path: str, out: _Out) -> None:
    """The cookbook's `message_missing_key` and `message_unrecognized_key`, with the guide's tool keys."""
    # The guide's function-calling examples leave content out of an assistant message that calls a tool.
    required = ("role",) if _calls_tool(message) else ("role", "content")
    if missing := [k for k in required if k not in message]:
        names = " and ".join(repr(k) for k in missing)
        beside = " (only an assistant message with tool_calls may leave content out)" if "content" in missing else ""
        add = "add it" if len(missing) == 1 else "add them"
        out.error("message_missing_key", path, f"{path} has no {names}; {add}{beside}.")
    if unknown := [k for k in message if k not in OPENAI_MESSAGE_KEYS]:
        out.error(
            "message_unrecognized_key", _path(path, unknown[0]),
            f"{path} has key(s) {', '.join(repr(k) for k in unknown)}, which OpenAI does not accept; remove them "
            f"(allowed: {', '.join(OPENAI_MESSAGE_KEYS)}).",
        )


def _check_openai_content(message: dict[str, Any], path: str, out: _Out) -> int:
    """Check `content` (the cookbook's `missing_content`, widened to the guide's parts); return its image count.

    The cookbook's test is `(not content and not function_call) or not isinstance(content, str)`: a
    string with text, or an empty string beside a function call. The guide also takes null beside a
    call and a list of text/image parts (vision fine-tuning).
    """
    content = message["content"]
    calls = _calls_tool(message)
    if content is None and calls:
        return 0
    if isinstance(content, list) and content:
        return _check_parts(content, message.get("role"), f"{path}.content", out)
    if not isinstance(content, str):
        out.error(
            "missing_content", f"{path}.content",
            f"{path}.content is {_kind(content)}; make it the message text as a string (or a list of text/image parts).",
        )
    elif not content and not calls:
        out.error("missing_content", f"{path}.content", f"{path}.content is empty; write the message text.")
    elif not content.strip() and not calls:
        out.warn("empty_content", f"{path}.content", f"{path}.content is only whitespace; write the message text.")
    return 0


def _check_parts(parts: list[Any], role: Any, path: str, out: _Out) -> int:
    """Check a content list of text and image_url parts; images only outside assistant messages."""
    images = 0
    for i, part in enumerate(parts):
        ppath = f"{path}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            continue
        image = part.get("image_url") if kind == "image_url" else None
        if isinstance(image, dict) and isinstance(image.get("url"), str) and image["url"]:
            images += 1
            if role == "assistant":
                out.error(
                    "image_in_assistant", ppath,
                    f"{ppath} is an image in an assistant message; OpenAI takes images only in user and system "
                    "messages. Move it to the user turn or remove it.",
                )
            continue
        out.error(
            "invalid_content_part", ppath,
            f"{ppath} is {_show(part)}; each content part must be {_TEXT_PART} or {_IMAGE_PART}.",
        )
    return images


def _as_text(message: dict[str, Any]) -> dict[str, Any]:
    """The message with content parts joined to their text, so image URLs are not counted as text tokens."""
    content = message.get("content")
    if not isinstance(content, list):
        return message
    text = "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return {**message, "content": text}


def _check_weight(weight: Any, role: Any, path: str, out: _Out) -> None:
    """The guide: "The allowed values for weight are currently 0 or 1", set on assistant messages."""
    if role != "assistant":
        out.warn(
            "misplaced_weight", path,
            f"{path} is set on a {_show(role)} message; OpenAI reads weight only on assistant messages. Remove it.",
        )
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight not in (0, 1):
        out.error(
            "invalid_weight", path,
            f"{path} is {_show(weight)}; OpenAI accepts only 0 (skip this turn) or 1 (train on it).",
        )


def _check_openai_roles(dicts: list[dict[str, Any]], n_messages: int, out: _Out) -> None:
    """The cookbook's `example_missing_assistant_message` error and its missing system/user warnings."""
    roles = [m.get("role") for m in dicts]
    if "assistant" not in roles:
        out.error(
            "example_missing_assistant_message", "messages",
            'The example has no message with role "assistant"; OpenAI trains on assistant turns, so add the reply.',
        )
    else:
        weights = [m.get("weight", 1) for m in dicts if m.get("role") == "assistant"]
        if all(isinstance(w, int | float) and not isinstance(w, bool) and w == 0 for w in weights):
            out.warn(
                "all_weights_zero", "messages",
                "Every assistant message has weight 0, so the example teaches nothing; set weight 1 on the turns to learn.",
            )
        if roles[-1] != "assistant" and len(dicts) == n_messages:
            out.warn(
                "last_not_assistant", f"messages[{n_messages - 1}].role",
                f"The example ends with a {_show(roles[-1])} message after the last assistant reply; it is never trained on.",
            )
    if "system" not in roles:
        out.warn("missing_system_message", "messages", "The example has no system message.")
    if "user" not in roles:
        out.warn("missing_user_message", "messages", "The example has no user message.")
