"""Dataset formats: detect a record's shape, parse it into the canonical Example, render it back out.

Every format goes through the canonical model, so N formats need N parsers and N renderers rather
than N x N converters. Each parser reads everything its format defines (tool definitions, tool calls
and results, names, weights, content blocks) and warns, by field, about every key it does not keep;
each renderer writes everything its format can hold and lists the rest as a `Loss` per field (a
multi-turn chat folded into one prompt/completion pair, tools into Claude 3 Haiku, a weight into a
format without one). The chat formats live in their own modules: `format_openai`,
`format_converse` (Nova) and `format_sharegpt`; docs/formats.md describes every shape.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, computed_field

from workbench.domain import format_converse as converse
from workbench.domain import format_openai as openai
from workbench.domain import format_sharegpt as sharegpt
from workbench.domain.example import BlockKind, Example, Message, Role, content_hash
from workbench.domain.format_converse import SCHEMA_VERSION
from workbench.domain.format_parts import (
    Conversation,
    FormatError,
    Loss,
    Reader,
    Writer,
    json_type,
    objects,
    optional_text,
    role,
    text,
)

__all__ = ["FORMAT_LABELS", "Format", "FormatError", "Loss", "Parsed", "Rendered", "detect", "is_definite", "parse", "render"]


class Format(StrEnum):
    OPENAI = "openai"
    BEDROCK_CLAUDE = "bedrock-claude"
    BEDROCK_NOVA = "bedrock-nova"
    PROMPT_COMPLETION = "prompt-completion"
    ALPACA = "alpaca"
    SHAREGPT = "sharegpt"


# What each record shape looks like; which targets train on it is the target catalogue's to say
# (`workbench.domain.catalogue.format_label` adds them).
FORMAT_LABELS: dict[Format, str] = {
    Format.OPENAI: "OpenAI chat (messages)",
    Format.BEDROCK_CLAUDE: "Claude chat (system string + messages)",
    Format.BEDROCK_NOVA: "Bedrock Converse (bedrock-conversation-2024)",
    Format.PROMPT_COMPLETION: "Prompt / completion",
    Format.ALPACA: "Instruction / input / output (Alpaca)",
    Format.SHAREGPT: "ShareGPT conversations (from / value)",
}

NOVA_SCHEMA_VERSION = SCHEMA_VERSION

# Keys each format owns at the top level; anything else is reported and kept in metadata.
_TOP_KEYS: dict[Format, frozenset[str]] = {
    Format.OPENAI: openai.TOP_KEYS,
    Format.BEDROCK_CLAUDE: frozenset({"system", "messages", "metadata"}),
    Format.BEDROCK_NOVA: converse.TOP_KEYS,
    # A top-level `system` string (as Llama and Titan users write) is the system prompt; its parser reads it.
    Format.PROMPT_COMPLETION: frozenset({"prompt", "completion", "system", "metadata"}),
    # Alpaca has no system prompt beside its instruction: its parser keeps a `system` key in metadata, with a warning.
    Format.ALPACA: frozenset({"instruction", "input", "output", "system", "metadata"}),
    Format.SHAREGPT: sharegpt.TOP_KEYS,
}


class Parsed(BaseModel):
    """A record parsed into canonical form, with what the parser noticed but did not reject."""

    example: Example
    format: Format
    warnings: list[str] = Field(
        default_factory=list, description="'<field>: <what happened>' for each key kept in metadata or not kept at all."
    )


class Rendered(BaseModel):
    """An example written out in one format, with anything the conversion could not carry across."""

    record: dict[str, Any]
    lost: list[Loss] = Field(default_factory=list, description="What this conversion dropped or folded, by field.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def losses(self) -> list[str]:
        """The losses as readable lines, '<field>: <reason>'."""
        return [str(loss) for loss in self.lost]


# --------------------------------------------------------------------------------------------- detect


def detect(record: Any) -> Format | None:
    """Return the format a record is in, or None when no format fits.

    A chat record whose messages are plain strings with only user/assistant roles fits both OpenAI and
    Bedrock Claude; it is reported as OpenAI, and `is_definite` lets a file-level vote prefer the
    format its unambiguous lines show. A top-level `system` (even an empty string) is Claude's: OpenAI
    puts the system prompt in a message.
    """
    if not isinstance(record, dict):
        return None
    if "conversations" in record:
        return Format.SHAREGPT
    if "messages" in record:
        messages = record["messages"]
        if record.get("schemaVersion") is not None or isinstance(record.get("system"), list) or "toolConfig" in record:
            return Format.BEDROCK_NOVA
        if isinstance(messages, list) and any(
            isinstance(m, dict) and isinstance(m.get("content"), list) and _has_converse_blocks(m) for m in messages
        ):
            return Format.BEDROCK_NOVA
        if "system" in record:
            return Format.BEDROCK_CLAUDE
        return Format.OPENAI
    if "prompt" in record and "completion" in record:
        return Format.PROMPT_COMPLETION
    if "instruction" in record and "output" in record:
        return Format.ALPACA
    return None


def _has_converse_blocks(message: Any) -> bool:
    """Say whether a turn's content is a list of Converse blocks (OpenAI parts carry a `type`)."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return False
    return not any(isinstance(part, dict) and "type" in part for part in message["content"])


def is_definite(record: dict[str, Any], fmt: Format) -> bool:
    """Say whether a record could only be in `fmt` (see `detect` for the OpenAI/Claude overlap)."""
    if fmt is not Format.OPENAI:
        return True
    messages = record.get("messages")
    if not isinstance(messages, list) or record.keys() & {"tools", "functions", "parallel_tool_calls"}:
        return True
    return any(
        isinstance(m, dict) and (m.get("role") in ("system", "tool", "function") or m.keys() & _OPENAI_ONLY)
        for m in messages
    )


_OPENAI_ONLY = {"weight", "name", "tool_calls", "tool_call_id", "function_call"}


def describe_unrecognised(record: Any) -> str:
    """Explain why `detect` found no format, naming the keys a user would need."""
    if not isinstance(record, dict):
        return f"expected a JSON object, found {json_type(record)}"
    keys = ", ".join(sorted(map(str, record))) or "none"
    return (
        "no known format: expected 'messages', 'prompt' + 'completion', 'instruction' + 'output' "
        f"or 'conversations'; found keys: {keys}"
    )


# ---------------------------------------------------------------------------------------------- parse


def parse(record: Any, fmt: Format | None = None) -> Parsed:
    """Parse one record into a canonical Example, detecting its format unless one is given.

    Raises FormatError naming the field when the record cannot become a trainable example
    (wrong roles, no assistant turn, content of the wrong type). Unknown keys do not fail the
    record: top-level ones are kept in metadata, nested ones (inside a turn, a tool, a block) are
    not; both are reported as warnings naming their path, so nothing a user had goes unmentioned.
    """
    detected = detect(record)
    if fmt is None:
        if detected is None:
            raise FormatError(describe_unrecognised(record))
        fmt = detected
    elif not isinstance(record, dict):
        raise FormatError(f"expected a JSON object, found {json_type(record)}")
    reader = Reader(fmt.value)
    conversation = _PARSERS[fmt](record, reader)
    metadata = _metadata(record, fmt, reader.warnings)
    metadata.update(conversation.kept)
    _check_conversation(conversation.messages)
    example = Example(
        system=conversation.system,
        messages=conversation.messages,
        tools=conversation.tools,
        parallel_tool_calls=conversation.parallel_tool_calls,
        tool_choice=conversation.tool_choice,
        metadata=metadata,
        content_hash=content_hash(
            conversation.system,
            conversation.messages,
            conversation.tools,
            parallel_tool_calls=conversation.parallel_tool_calls,
            tool_choice=conversation.tool_choice,
        ),
    )
    return Parsed(example=example, format=fmt, warnings=reader.warnings)


def _metadata(record: dict[str, Any], fmt: Format, warnings: list[str]) -> dict[str, Any]:
    meta = record.get("metadata")
    if meta is None:
        metadata: dict[str, Any] = {}
    elif isinstance(meta, dict):
        metadata = dict(meta)
    else:
        raise FormatError(f"must be an object, found {json_type(meta)}", "metadata")
    for key in record:
        if key not in _TOP_KEYS[fmt]:
            warnings.append(f"{key}: unknown key for {fmt.value}; kept in metadata")
            metadata[key] = record[key]
    return metadata


def _check_conversation(messages: list[Message]) -> None:
    if not messages:
        raise FormatError("no turns: at least one user and one assistant turn are needed", "messages")
    if not any(m.role is Role.ASSISTANT for m in messages):
        raise FormatError("no assistant turn: the model needs a reply to learn from", "messages")


def _parse_claude(record: dict[str, Any], reader: Reader) -> Conversation:
    system = optional_text(record.get("system"), "system")
    out = []
    for i, m in enumerate(objects(record.get("messages"), "messages", "turns")):
        path = f"messages[{i}]"
        reader.unknown_keys(m, ("role", "content"), path)
        kind = role(m.get("role"), f"{path}.role", ("user", "assistant"))
        out.append(Message(role=Role(kind), content=text(m.get("content"), f"{path}.content")))
    return Conversation(system, out)


def _parse_prompt_completion(record: dict[str, Any], reader: Reader) -> Conversation:
    """Read the pair, and a top-level `system` string as the system prompt.

    Read into the example's `system` (not metadata), a system prompt trains the model: written back to
    prompt/completion it goes in front of the prompt, and chat formats keep it as their system prompt.
    Anything but a string cannot be one, so it is kept in metadata with a warning, as an unknown key is.
    """
    messages = [
        Message(role=Role.USER, content=text(record.get("prompt"), "prompt")),
        Message(role=Role.ASSISTANT, content=text(record.get("completion"), "completion")),
    ]
    if "system" not in record or isinstance(record["system"], str):
        return Conversation(record.get("system"), messages)
    found = json_type(record["system"])
    reader.warn("system", f"must be a string to be read as the system prompt, found {found}; kept in metadata, not trained on")
    return Conversation(None, messages, kept={"system": record["system"]})


def _parse_alpaca(record: dict[str, Any], reader: Reader) -> Conversation:
    instruction = text(record.get("instruction"), "instruction")
    extra = text(record.get("input"), "input", allow_none=True)
    output = text(record.get("output"), "output")
    kept = _alpaca_system(record, reader)
    # With an input, the instruction is the standing task (a system prompt) and the input the user's
    # turn; without one, the instruction is itself the request. Rendering inverts this exactly.
    if extra:
        turns = [Message(role=Role.USER, content=extra), Message(role=Role.ASSISTANT, content=output)]
        return Conversation(instruction, turns, kept=kept)
    return Conversation(None, [Message(role=Role.USER, content=instruction), Message(role=Role.ASSISTANT, content=output)], kept=kept)


def _alpaca_system(record: dict[str, Any], reader: Reader) -> dict[str, Any]:
    """Keep a top-level `system` (LLaMA-Factory writes one) in metadata, saying it is not trained on.

    Not read as the system prompt, unlike prompt/completion's: with an input the instruction already
    is the system prompt, so reading both would merge two texts into one field and the file would no
    longer round-trip.
    """
    if "system" not in record:
        return {}
    reader.warn(
        "system",
        "alpaca has no system prompt beside the instruction; kept in metadata, not trained on: "
        "put it in the instruction to train on it",
    )
    return {"system": record["system"]}


_PARSERS: dict[Format, Callable[[dict[str, Any], Reader], Conversation]] = {
    Format.OPENAI: openai.read,
    Format.BEDROCK_CLAUDE: _parse_claude,
    Format.BEDROCK_NOVA: converse.read,
    Format.PROMPT_COMPLETION: _parse_prompt_completion,
    Format.ALPACA: _parse_alpaca,
    Format.SHAREGPT: sharegpt.read,
}


# --------------------------------------------------------------------------------------------- render


def render(example: Example, fmt: Format, *, include_metadata: bool = False, list_metadata: bool = False) -> Rendered:
    """Write an example in `fmt`, listing by field everything the conversion lost.

    Metadata is left out by default: provider validators reject unknown keys (Bedrock Claude allows
    none), so training files carry only what trains the model. With `list_metadata`, each metadata
    key left out is listed as a loss too (an export does, since metadata holds the top-level keys
    import kept); validation leaves it out, metadata never being training content.
    """
    writer = Writer(fmt.value)
    record = _RENDERERS[fmt](example, writer)
    if include_metadata and example.metadata:
        record["metadata"] = example.metadata
    elif list_metadata:
        for key in example.metadata:
            writer.lose(f"metadata.{key}", "not written: exports carry only what trains the model")
    return Rendered(record=record, lost=writer.lost)


def _plain_turns(example: Example, writer: Writer, *, keep_tool_calls: bool = False) -> list[tuple[int, Message]]:
    """Return the turns a plain-text format can hold, listing what it drops from them and the example.

    Tool turns go, and assistant turns that only call tools; names, weights, media and tool calls are
    listed by field.
    """
    if example.tools:
        writer.no_place("tools", f"{len(example.tools)} tool definition(s)")
    if example.parallel_tool_calls is not None:
        writer.no_place("parallel_tool_calls", "OpenAI parallel_tool_calls")
    if example.tool_choice is not None:
        writer.no_place("tool_choice", "Converse toolChoice")
    kept: list[tuple[int, Message]] = []
    for i, m in enumerate(example.messages):
        path = f"messages[{i}]"
        if m.role is Role.TOOL and not keep_tool_calls:
            writer.no_place(path, "tool result turn")
            continue
        if m.tool_calls and not keep_tool_calls:
            writer.no_place(f"{path}.tool_calls", f"{len(m.tool_calls)} tool call(s)")
            if not m.content and m.blocks is None:
                continue
        if m.name is not None:
            writer.no_place(f"{path}.name", "speaker name")
        for j, block in enumerate(m.content_blocks()):
            if block.kind is not BlockKind.TEXT:
                writer.no_place(f"{path}.content[{j}]", f"{block.kind.value} block ({block.uri or 'no uri'})")
        kept.append((i, m))
    return kept


def _drop_weights(turns: list[tuple[int, Message]], writer: Writer) -> None:
    for i, m in turns:
        if m.weight is not None:
            writer.no_place(f"messages[{i}].weight", "training weight")


def _render_claude(example: Example, writer: Writer) -> dict[str, Any]:
    turns = _plain_turns(example, writer)
    _drop_weights(turns, writer)
    record: dict[str, Any] = {}
    if example.system is not None:
        record["system"] = example.system
    record["messages"] = [{"role": m.role.value, "content": m.content} for _, m in turns]
    return record


def _single_turn(example: Example, writer: Writer) -> tuple[str, str]:
    """Fold a conversation into one request and the final reply, saying what was folded."""
    turns = _plain_turns(example, writer)
    _drop_weights(turns, writer)
    replies = [n for n, (_, m) in enumerate(turns) if m.role is Role.ASSISTANT]
    if not replies:
        writer.lose("messages", "no assistant reply with text left to write as the completion")
        return "\n\n".join(m.content for _, m in turns), ""
    last = replies[-1]
    if last != len(turns) - 1:
        writer.lose(f"messages[{turns[last + 1][0]}]", f"{len(turns) - 1 - last} turn(s) after the last assistant reply dropped")
    history, reply = turns[:last], turns[last][1]
    if len(history) == 1 and history[0][1].role is Role.USER:
        return history[0][1].content, reply.content
    writer.lose("messages", f"multi-turn conversation ({len(history) + 1} turns) flattened into one prompt")
    lines = [f"{m.role.value.capitalize()}: {m.content}" for _, m in history]
    return "\n\n".join(lines), reply.content


def _render_prompt_completion(example: Example, writer: Writer) -> dict[str, Any]:
    prompt, completion = _single_turn(example, writer)
    if example.system:  # its text is kept, in front of the prompt: not a loss
        prompt = f"{example.system}\n\n{prompt}"
    return {"prompt": prompt, "completion": completion}


def _render_alpaca(example: Example, writer: Writer) -> dict[str, Any]:
    request, output = _single_turn(example, writer)
    if example.system is not None and (example.system or request):
        return {"instruction": example.system, "input": request, "output": output}
    return {"instruction": request, "input": "", "output": output}


_RENDERERS: dict[Format, Callable[[Example, Writer], dict[str, Any]]] = {
    Format.OPENAI: openai.write,
    Format.BEDROCK_CLAUDE: _render_claude,
    Format.BEDROCK_NOVA: converse.write,
    Format.PROMPT_COMPLETION: _render_prompt_completion,
    Format.ALPACA: _render_alpaca,
    Format.SHAREGPT: sharegpt.write,
}
