"""Format-independent checks every example gets on import, and the enrichment that goes with them.

Target-specific rules (record counts, token limits, reserved tokens) live in `validation`; these are
the problems that make an example suspect for any provider, shown as the 'validation status' filter.
"""

from __future__ import annotations

from typing import Any

from workbench.domain.example import Example, Role, ValidationStatus, example_hash
from workbench.domain.pii import find_pii
from workbench.domain.tokens import count_tokens


def basic_findings(example: Example) -> list[str]:
    """Return human-readable problems that any fine-tuning target would object to."""
    found: list[str] = []
    if example.system is not None and not example.system.strip():
        found.append("system: empty system prompt")
    for i, message in enumerate(example.messages):
        if not message.content.strip() and not message.tool_calls and message.blocks is None:
            found.append(f"messages[{i}].content: empty {message.role.value} turn")
    roles = [m.role for m in example.messages if m.role is not Role.TOOL]
    if roles and roles[0] is not Role.USER:
        found.append("messages[0].role: the conversation should open with a user turn")
    if example.messages and example.messages[-1].role is not Role.ASSISTANT:
        found.append(f"messages[{len(example.messages) - 1}].role: the conversation should end with an assistant turn")
    # Tool results count as turns here: a call, its result and the reply alternate as they should.
    turns = [m.role for m in example.messages]
    for i in range(1, len(turns)):
        if turns[i] == turns[i - 1] and turns[i] is not Role.TOOL:
            found.append(f"messages: two {turns[i].value} turns in a row; most targets need alternating turns")
            break
    return found


def derived_fields(example: Example, text: str | None = None) -> dict[str, Any]:
    """Return the fields an import fills in (PII findings, token count, validation), as a copy update.

    Kept apart from `prepare` so that an import, whose parser has just hashed the example, can set
    these and the source line in one copy instead of three. `text` is the example's plain text when
    the caller already has it.
    """
    findings = basic_findings(example)
    return {
        "pii": find_pii(example),
        "token_count": count_tokens(example.plain_text() if text is None else text),
        "validation_status": ValidationStatus.WARNING if findings else ValidationStatus.OK,
        "validation_messages": findings,
    }


def prepare(example: Example) -> Example:
    """Return the example with its hash, PII findings, token count and basic validation filled in."""
    return example.model_copy(
        update={**derived_fields(example), "content_hash": example_hash(example)}
    )
