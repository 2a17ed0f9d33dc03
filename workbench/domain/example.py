"""The canonical training example every format is parsed into and written back out from."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Split(StrEnum):
    UNASSIGNED = "unassigned"
    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


class ReviewState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ValidationStatus(StrEnum):
    """Outcome of the format checks run at import (target-specific checks run on demand)."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


class BlockKind(StrEnum):
    """What one piece of a turn's content is; media are references (a URI), never the bytes themselves."""

    TEXT = "text"
    IMAGE = "image"
    DOCUMENT = "document"
    VIDEO = "video"
    JSON = "json"


class ContentBlock(BaseModel):
    """One block of a turn's content, as Converse (`{"text"}`, `{"image"}`...) and OpenAI parts hold it."""

    model_config = ConfigDict(frozen=True)

    kind: BlockKind
    text: str | None = Field(default=None, description="The text of a text block; a JSON block's value as JSON text.")
    uri: str | None = Field(
        default=None,
        description="Where a media block's data is: s3://... (Converse s3Location), https://... or a data: URL "
        "(OpenAI image_url; Converse inline bytes are kept as a data: URL).",
    )
    format: str | None = Field(default=None, description="Media format as the provider names it: png, jpeg, pdf, mp4...")
    name: str | None = Field(default=None, description="A document's name (Converse requires one).")
    detail: str | None = Field(default=None, description="OpenAI image detail: low, high or auto.")


class ToolCall(BaseModel):
    """A call the assistant makes to a tool: what the model learns to emit."""

    model_config = ConfigDict(frozen=True)

    id: str | None = Field(default=None, description="Call id that the tool result answers (OpenAI `id`, Converse `toolUseId`).")
    name: str = Field(description="Name of the tool (function) called.")
    arguments: str = Field(
        description="Arguments as the JSON text OpenAI uses; Converse's `input` object is kept as its JSON text."
    )


class ToolDef(BaseModel):
    """A tool the model may call, as declared beside the conversation."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = Field(default=None, description="JSON Schema of the arguments.")
    strict: bool | None = Field(default=None, description="OpenAI strict schema adherence, when given.")
    legacy: bool = Field(
        default=False, description="Declared in OpenAI's older `functions` list; written back there for OpenAI."
    )


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Role
    content: str = Field(description="The turn's text (its text and JSON blocks joined by newlines): what most tools read.")
    weight: float | None = Field(
        default=None,
        description="Per-message training weight (OpenAI accepts 0 or 1 on assistant turns); None = default.",
    )
    name: str | None = Field(default=None, description="Speaker name (OpenAI `name`); a legacy function result's function.")
    tool_calls: list[ToolCall] = Field(default_factory=list, description="Tool calls an assistant turn makes.")
    tool_call_id: str | None = Field(default=None, description="On a tool turn: the id of the call it answers.")
    status: str | None = Field(default=None, description="On a tool turn: Converse toolResult status (success, error).")
    blocks: list[ContentBlock] | None = Field(
        default=None,
        description="Content as blocks when it is not one plain string: several blocks, media, or a list in the "
        "source. None: `content` is the whole turn.",
    )
    empty_content: Literal["null", "absent", "empty"] | None = Field(
        default=None,
        description="How an OpenAI turn that only calls tools wrote its missing text (null, no key, or \"\"), "
        "so it is written back the same way.",
    )

    def has_extras(self) -> bool:
        """Say whether the turn holds more than role, text and weight (what the oldest rows store)."""
        return bool(
            self.name is not None
            or self.tool_calls
            or self.tool_call_id is not None
            or self.status is not None
            or self.blocks is not None
            or self.empty_content is not None
        )

    def content_blocks(self) -> list[ContentBlock]:
        """Return the turn's blocks with its current text: blocks whose text no longer matches `content`
        (after an edit made through `content` alone) are replaced by one text block holding it."""
        if self.blocks is None:
            return [ContentBlock(kind=BlockKind.TEXT, text=self.content)] if self.content else []
        texts = [b.text or "" for b in self.blocks if b.kind in _TEXTUAL]
        if "\n".join(texts) == self.content and (texts or not self.content):
            return list(self.blocks)
        out: list[ContentBlock] = []
        placed = False
        for block in self.blocks:
            if block.kind not in _TEXTUAL:
                out.append(block)
            elif not placed:
                out.append(ContentBlock(kind=BlockKind.TEXT, text=self.content))
                placed = True
        if not placed and self.content:
            out.insert(0, ContentBlock(kind=BlockKind.TEXT, text=self.content))
        return out

    def map_text(self, fn: Callable[[str], str]) -> Message:
        """Return a copy with `fn` applied to every text it trains on: each text block, tool arguments, JSON results."""
        update: dict[str, Any] = {}
        if self.blocks is not None:
            blocks = [
                b.model_copy(update={"text": fn(b.text)}) if b.text and b.kind in _TEXTUAL else b
                for b in self.content_blocks()
            ]
            update["blocks"] = blocks
            update["content"] = text_of(blocks)
        else:
            update["content"] = fn(self.content)
        if self.tool_calls:
            update["tool_calls"] = [c.model_copy(update={"arguments": fn(c.arguments)}) for c in self.tool_calls]
        return self.model_copy(update=update)


def keep_turn_fields(old: list[Message], new: list[Message]) -> list[Message]:
    """Return edited turns with what a text editor cannot show carried over from the turns they replace.

    An editor hands back role, text and weight only; a turn at the same place with the same role
    keeps its tool calls, call id, name, status and media from before, so editing the words of a
    tool-using turn does not drop its calls.
    """
    out: list[Message] = []
    for i, turn in enumerate(new):
        before = old[i] if i < len(old) else None
        if before is not None and before.role is turn.role and before.has_extras() and not turn.has_extras():
            turn = before.model_copy(update={"content": turn.content, "weight": turn.weight})
        out.append(turn)
    return out


_TEXTUAL = (BlockKind.TEXT, BlockKind.JSON)


def text_of(blocks: list[ContentBlock]) -> str:
    """Return the text a list of blocks holds, the value of `Message.content` for them."""
    return "\n".join(b.text or "" for b in blocks if b.kind in _TEXTUAL)


class PiiFinding(BaseModel):
    """One piece of personal data found in an example, located precisely enough to highlight and scrub."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="What was found: email, phone, credit_card, ssn, ip_address, aws_key, api_key.")
    where: str = Field(
        description="The part of the example holding it: 'system', 'messages[i]' or 'messages[i].tool_calls[j].arguments'."
    )
    start: int = Field(description="Character offset of the match within that part's text.")
    end: int = Field(description="Character offset one past the end of the match.")
    text: str = Field(description="The matched text itself.")


class Example(BaseModel):
    """A training example in canonical form plus the workbench's own curation fields."""

    system: str | None = Field(default=None, description="System prompt, if the example has one.")
    messages: list[Message] = Field(default_factory=list)
    tools: list[ToolDef] = Field(default_factory=list, description="Tools the conversation may call (OpenAI `tools`, Converse `toolConfig`).")
    parallel_tool_calls: bool | None = Field(default=None, description="OpenAI `parallel_tool_calls`, when the record sets it.")
    tool_choice: dict[str, Any] | None = Field(default=None, description="Converse `toolConfig.toolChoice`, when the record sets it.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Free-form: source, task type, document type, class label..."
    )

    id: int | None = None
    dataset_id: int | None = None
    source_line: int | None = Field(default=None, description="Line (or row) of the imported file it came from.")
    content_hash: str = ""
    split: Split = Split.UNASSIGNED
    quality_score: float | None = Field(default=None, description="0..1, higher is better; set by cleaning tools.")
    rating: int | None = Field(default=None, ge=1, le=5, description="Reviewer rating, 1 (bad) to 5 (excellent).")
    tags: list[str] = Field(default_factory=list)
    review_state: ReviewState = ReviewState.PENDING
    notes: str = ""
    pii: list[PiiFinding] = Field(default_factory=list)
    validation_status: ValidationStatus = ValidationStatus.OK
    validation_messages: list[str] = Field(default_factory=list)
    token_count: int = Field(default=0, description="cl100k_base tokens over the system prompt and every turn.")
    revision: int = 1
    created_at: str | None = None
    updated_at: str | None = None

    def parts(self) -> list[tuple[str, str]]:
        """Return (where, text) for every text the model trains on, the units PII, search and rules work on.

        `where` is 'system', 'messages[i]' for a turn's text (a tool result's too), and
        'messages[i].tool_calls[j].arguments' for a call's arguments. Scrubbing writes each back in
        place through `Message.map_text`.
        """
        out: list[tuple[str, str]] = []
        if self.system:
            out.append(("system", self.system))
        for i, m in enumerate(self.messages):
            out.append((f"messages[{i}]", m.content))
            if m.tool_calls:
                out.extend((f"messages[{i}].tool_calls[{j}].arguments", c.arguments) for j, c in enumerate(m.tool_calls))
        return out

    def plain_text(self) -> str:
        """Return every part's text joined, the string that full-text search indexes."""
        return "\n".join(text for _, text in self.parts())

    def has_tool_use(self) -> bool:
        """Say whether the example declares or uses tools."""
        return bool(self.tools or any(m.tool_calls or m.role is Role.TOOL for m in self.messages))

    def with_hash(self) -> Example:
        """Return a copy whose content_hash matches its training content."""
        return self.model_copy(update={"content_hash": example_hash(self)})


def example_hash(example: Example) -> str:
    """Hash everything an example trains on: system, turns with their tool calls and blocks, and tools."""
    return content_hash(
        example.system,
        example.messages,
        example.tools,
        parallel_tool_calls=example.parallel_tool_calls,
        tool_choice=example.tool_choice,
    )


def content_hash(
    system: str | None,
    messages: list[Message],
    tools: list[ToolDef] | None = None,
    *,
    parallel_tool_calls: bool | None = None,
    tool_choice: dict[str, Any] | None = None,
) -> str:
    """Hash what the model trains on, so re-imports and exact copies are recognised.

    Metadata and curation fields are left out on purpose: the same conversation tagged differently
    is still the same training signal. A plain-text example (no tools, calls, names or blocks) is
    hashed exactly as before they existed, so stored hashes stay valid; anything more joins the
    payload, so two examples differing only in a tool call are not duplicates.
    """
    extended = bool(tools) or parallel_tool_calls is not None or tool_choice is not None or any(m.has_extras() for m in messages)
    turns: list[list[Any]] = [[m.role.value, m.content, m.weight] for m in messages]
    if not extended:
        payload = orjson.dumps([system or "", turns])
    else:
        for turn, m in zip(turns, messages, strict=True):
            # How an empty text was spelled (null or no key) is not training content.
            extras = {"role", "content", "weight", "empty_content"}
            turn.append(m.model_dump(mode="json", exclude=extras, exclude_none=True, exclude_defaults=True))
        payload = orjson.dumps(
            [
                system or "",
                turns,
                [t.model_dump(mode="json", exclude_none=True) for t in tools or []],
                parallel_tool_calls,
                tool_choice,
            ],
            option=orjson.OPT_SORT_KEYS,
        )
    return hashlib.blake2b(payload, digest_size=16).hexdigest()
