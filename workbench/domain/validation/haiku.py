"""Claude 3 Haiku's fine-tuning record rules on Amazon Bedrock.

Sources: https://docs.aws.amazon.com/bedrock/latest/userguide/preparing-text-data.html and AWS's sample
validator (aws-samples/amazon-bedrock-samples `custom-models/bedrock-fine-tuning/claude-haiku/DataValidation/
data_validation.py`). The rules, one by one, are listed in `workbench/domain/catalogue/rules/haiku.py` and
docs/validation-rules.md.
"""

from __future__ import annotations

from typing import Any

from workbench.domain.validation.models import TargetRules
from workbench.domain.validation.shape import (
    _CHAT_EXAMPLE,
    _chat_turns,
    _check_keys,
    _check_turns,
    _Dataset,
    _kind,
    _messages,
    _Out,
)
from workbench.domain.validation.tools import (
    TOOL_MESSAGE_KEYS,
    TOOL_ROLES,
    TOOL_TOP_KEYS,
    _reject_tool_use,
)

# The AWS sample validator's RESERVED_KEYWORDS for Claude 3 Haiku: refused in system and every content.
HAIKU_RESERVED_KEYWORDS = ("\nHuman:", "\nAssistant:")
_NOVA_SHAPE_HINT = ' A list of {"text": ...} objects is the Nova format.'


def _check_haiku(record: dict[str, Any], out: _Out, rules: TargetRules, data: _Dataset) -> int:
    """Apply the Claude 3 Haiku rules: plain strings, no extra keys, alternating turns, no tool use."""
    label = rules.label
    _reject_tool_use(record, out, label)
    _check_keys(record, "", ("system", "messages"), out, label, strict=True, skip=TOOL_TOP_KEYS)
    tokens = 0
    system = record.get("system")
    if isinstance(system, str):
        tokens += rules.counter.count(system)
        _check_haiku_keywords(system, "system", out)
    elif system is not None:
        hint = _NOVA_SHAPE_HINT if isinstance(system, list) else ""
        out.error(
            "invalid_type", "system",
            f"system is {_kind(system)}; {label} takes the system prompt as a plain string.{hint}",
        )
    messages = _messages(record, out, label)
    if messages is None:
        return tokens
    roles: list[str] = []
    turns = _chat_turns(
        messages, roles, out, label, example=_CHAT_EXAMPLE, strict=True, system_home="'system' string",
        skip_keys=TOOL_MESSAGE_KEYS, skip_roles=TOOL_ROLES,
    )
    for path, _, content in turns:
        if not isinstance(content, str):
            hint = _NOVA_SHAPE_HINT if isinstance(content, list) else ""
            out.error(
                "invalid_type", f"{path}.content",
                f"{path}.content is {_kind(content)}; {label} takes plain-string content.{hint}",
            )
            continue
        tokens += rules.counter.count(content)
        _check_haiku_keywords(content, f"{path}.content", out)
        if not content.strip():
            out.error("empty_content", f"{path}.content", f"{path}.content is empty; every message needs text.")
    if _check_turns(messages, roles, out, label) and len(messages) > 2:
        out.warn("multi_turn_warning", "messages", "The record is multi-turn.")
    return tokens


def _check_haiku_keywords(text: str, path: str, out: _Out) -> None:
    if found := [k for k in HAIKU_RESERVED_KEYWORDS if k in text]:
        listed = " and ".join(repr(k) for k in found)
        out.error(
            "reserved_keyword", path,
            f"{path} contains {listed} (a line starting with a speaker name), which Claude 3 Haiku fine-tuning "
            "refuses. Reword it, e.g. 'Human -' instead of 'Human:'.",
        )

