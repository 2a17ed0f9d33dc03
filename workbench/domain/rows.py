"""How an example is laid out as the store's columns, kept free of SQLite so worker processes can use it.

An import encodes examples in worker processes and sends back plain tuples of strings and numbers
(pickling the pydantic model costs more than inserting it); `workbench.store.examples` writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from workbench.domain.example import Example, Message, PiiFinding


def encode_messages(messages: Sequence[Message]) -> str:
    """Serialise turns compactly: role and content always, weight, name, tool calls, blocks only when set.

    A plain turn is written as it was before tool use was stored, so old and new rows read alike.
    """
    return orjson.dumps([_message(m) for m in messages]).decode()


def _message(m: Message) -> dict[str, Any]:
    if not m.has_extras():
        if m.weight is None:
            return {"role": m.role.value, "content": m.content}
        return {"role": m.role.value, "content": m.content, "weight": m.weight}
    return m.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {"role": m.role.value, "content": m.content}


def encode_tools(example: Example) -> str | None:
    """Serialise an example's tool definitions and settings for the `tools` column; None when it has none."""
    value: dict[str, Any] = {}
    if example.tools:
        value["tools"] = [t.model_dump(mode="json", exclude_none=True, exclude_defaults=True) for t in example.tools]
    if example.parallel_tool_calls is not None:
        value["parallel_tool_calls"] = example.parallel_tool_calls
    if example.tool_choice is not None:
        value["tool_choice"] = example.tool_choice
    return orjson.dumps(value).decode() if value else None


def decode_tools(value: str | None) -> dict[str, Any]:
    """Return the Example fields a `tools` column holds (nothing for NULL: rows from before tool use)."""
    return orjson.loads(value) if value else {}


def encode_pii(findings: Sequence[PiiFinding]) -> str:
    """Serialise PII findings for the `pii` column."""
    return orjson.dumps([f.model_dump() for f in findings]).decode()


NearKey = tuple[int, bytes]
"""An example's near-duplicate state: its normalized text's hash and its MinHash band keys (`dedup.near_keys`)."""

EncodedExample = tuple[tuple[Any, ...], str, list[str], NearKey | None]
"""An example ready to insert: its column values (all but dataset and timestamps), its search text, its
tags, and its near-duplicate state when the caller computed it (an import does, in its worker; without
it the next dedup computes it).

Plain tuples of strings and numbers, so an import can build them in a worker process and send them
back cheaply (pickling the pydantic model costs more than inserting it).
"""


def encode_example(example: Example, text: str | None = None, near: NearKey | None = None) -> EncodedExample:
    """Turn an example into what `insert_encoded` writes (`text`: its plain text, if already built)."""
    values = (
        example.content_hash,
        example.source_line,
        example.system,
        encode_messages(example.messages),
        orjson.dumps(example.metadata, default=str).decode(),
        example.split.value,
        example.quality_score,
        example.rating,
        example.review_state.value,
        example.notes,
        orjson.dumps(example.tags).decode(),
        encode_pii(example.pii),
        len(example.pii),
        example.validation_status.value,
        orjson.dumps(example.validation_messages).decode(),
        example.token_count,
        len(example.messages),
        example.revision,
        encode_tools(example),
    )
    return values, example.plain_text() if text is None else text, list(example.tags), near
