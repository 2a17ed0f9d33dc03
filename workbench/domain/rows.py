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
    """Serialise turns compactly, leaving out weights that are unset."""
    return orjson.dumps(
        [
            {"role": m.role.value, "content": m.content}
            if m.weight is None
            else {"role": m.role.value, "content": m.content, "weight": m.weight}
            for m in messages
        ]
    ).decode()


def encode_pii(findings: Sequence[PiiFinding]) -> str:
    """Serialise PII findings for the `pii` column."""
    return orjson.dumps([f.model_dump() for f in findings]).decode()


EncodedExample = tuple[tuple[Any, ...], str, list[str]]
"""An example ready to insert: its column values (all but dataset and timestamps), its search text, its tags.

Plain tuples of strings and numbers, so an import can build them in a worker process and send them
back cheaply (pickling the pydantic model costs more than inserting it).
"""


def encode_example(example: Example, text: str | None = None) -> EncodedExample:
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
    )
    return values, example.plain_text() if text is None else text, list(example.tags)
