"""Claude 3 Haiku's fine-tuning record rules on Amazon Bedrock.

Sources: AWS's sample validator (aws-samples/amazon-bedrock-samples `custom-models/bedrock-fine-tuning/
claude-haiku/DataValidation/data_validation.py`), https://docs.aws.amazon.com/bedrock/latest/userguide/
preparing-text-data.html and Anthropic's cookbook "Finetuning Claude 3 Haiku on Bedrock". The rules, one by
one, with the function that checks each, are listed in `workbench/domain/catalogue/rules/haiku.py` and
docs/validation-rules.md.
"""

from __future__ import annotations

from typing import Any

from workbench.domain.tokens import TokenCounter
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

# The AWS sample validator's RESERVED_KEYWORDS: refused, case-sensitively and as plain substrings, in the
# system prompt and in every message's content.
HAIKU_RESERVED_KEYWORDS = ("\nHuman:", "\nAssistant:")
_NOVA_SHAPE_HINT = ' A list of {"text": ...} objects is the Nova format.'


def _check_haiku(record: dict[str, Any], out: _Out, rules: TargetRules, data: _Dataset) -> int:
    """Apply the Claude 3 Haiku rules: plain strings, no extra keys, alternating turns, no tool use."""
    label = rules.label
    _reject_tool_use(record, out, label)
    _check_keys(record, "", ("system", "messages"), out, label, strict=True, skip=TOOL_TOP_KEYS)
    _check_system(record, out, label)
    messages = _messages(record, out, label)
    if messages is not None:
        roles: list[str] = []
        turns = _chat_turns(
            messages, roles, out, label, example=_CHAT_EXAMPLE, strict=True, system_home="'system' string",
            skip_keys=TOOL_MESSAGE_KEYS, skip_roles=TOOL_ROLES,
        )
        for path, _, content in turns:
            _check_content(content, f"{path}.content", out, label)
        if _check_turns(messages, roles, out, label):
            _warn_multi_turn(messages, out)
    return _record_tokens(record, rules.counter)


def _check_system(record: dict[str, Any], out: _Out, label: str) -> None:
    """`system` is optional, but when the key is there it holds a plain string.

    An explicit null passes the validator's `Optional[str]`, yet its token count then takes len(None) and
    the whole run stops, so null is refused too: leaving the key out is the documented way.
    """
    if "system" not in record:
        return
    system = record["system"]
    if isinstance(system, str):
        _check_haiku_keywords(system, "system", out)
        return
    hint = _NOVA_SHAPE_HINT if isinstance(system, list) else ""
    out.error(
        "invalid_type", "system",
        f"system is {_kind(system)}; {label} takes the system prompt as a plain string. Give it text, or remove "
        f"the 'system' key for no system prompt.{hint}",
    )


def _check_content(content: Any, path: str, out: _Out, label: str) -> None:
    """Content is a plain string (the validator's `content: str`), with text, and no reserved keyword."""
    if not isinstance(content, str):
        hint = _NOVA_SHAPE_HINT if isinstance(content, list) else ""
        out.error(
            "invalid_type", path, f"{path} is {_kind(content)}; {label} takes plain-string content.{hint}",
        )
        return
    _check_haiku_keywords(content, path, out)
    if not content.strip():
        out.error("empty_content", path, f"{path} is empty; every message needs text. Write it or drop the record.")


def _check_haiku_keywords(text: str, path: str, out: _Out) -> None:
    """Refuse '\\nHuman:' and '\\nAssistant:' exactly as the validator does: with the newline, case-sensitive."""
    if found := [k for k in HAIKU_RESERVED_KEYWORDS if k in text]:
        listed = " and ".join(repr(k) for k in found)
        out.error(
            "reserved_keyword", path,
            f"{path} contains {listed} (a line starting with a speaker name), which Claude 3 Haiku fine-tuning "
            "refuses. Reword it (e.g. 'Human -' instead of 'Human:') or join the line to the one before.",
        )


def _warn_multi_turn(messages: list[Any], out: _Out) -> None:
    """AWS documents Haiku data as single-turn, while its validator and Anthropic's cookbook accept more turns."""
    if len(messages) > 2:
        out.warn("multi_turn_warning", "messages", "The record is multi-turn.")


def _record_tokens(record: dict[str, Any], counter: TokenCounter) -> int:
    """Estimate tokens as the validator does: len(text) // 3 for the system prompt plus each message's content.

    Each field is rounded down on its own, as `count_tokens` is called per field there; roles and keys are
    not counted. The caller compares the sum with the 32,000 limit.
    """
    system = record.get("system")
    tokens = counter.count(system) if isinstance(system, str) else 0
    messages = record.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                tokens += counter.count(content)
    return tokens
