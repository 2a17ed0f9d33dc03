"""Dataset formats: detect a record's shape, parse it into the canonical Example, render it back out.

Every format goes through the canonical model, so N formats need N parsers and N renderers rather
than N x N converters. A conversion that cannot carry something across (a multi-turn chat into one
prompt/completion pair, a training weight into a format without one) reports it as a `loss` per
example instead of failing silently.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from workbench.domain.example import Example, Message, Role, content_hash


class Format(StrEnum):
    OPENAI = "openai"
    BEDROCK_CLAUDE = "bedrock-claude"
    BEDROCK_NOVA = "bedrock-nova"
    PROMPT_COMPLETION = "prompt-completion"
    ALPACA = "alpaca"
    SHAREGPT = "sharegpt"


FORMAT_LABELS: dict[Format, str] = {
    Format.OPENAI: "OpenAI chat fine-tuning (messages)",
    Format.BEDROCK_CLAUDE: "Bedrock Claude 3 Haiku (system + messages)",
    Format.BEDROCK_NOVA: "Bedrock Nova (bedrock-conversation-2024)",
    Format.PROMPT_COMPLETION: "Prompt / completion (Llama, Titan, Cohere, classic OpenAI)",
    Format.ALPACA: "Instruction / input / output (Alpaca)",
    Format.SHAREGPT: "ShareGPT conversations (from / value)",
}

NOVA_SCHEMA_VERSION = "bedrock-conversation-2024"

# Keys each format owns at the top level; anything else is reported and kept in metadata.
_TOP_KEYS: dict[Format, frozenset[str]] = {
    Format.OPENAI: frozenset({"messages", "metadata", "tools", "parallel_tool_calls", "functions"}),
    Format.BEDROCK_CLAUDE: frozenset({"system", "messages", "metadata"}),
    Format.BEDROCK_NOVA: frozenset({"schemaVersion", "system", "messages", "metadata", "toolConfig"}),
    Format.PROMPT_COMPLETION: frozenset({"prompt", "completion", "metadata"}),
    Format.ALPACA: frozenset({"instruction", "input", "output", "metadata", "system"}),
    Format.SHAREGPT: frozenset({"conversations", "metadata", "system", "id"}),
}

_SHAREGPT_ROLES: dict[str, Role | None] = {
    "human": Role.USER,
    "user": Role.USER,
    "gpt": Role.ASSISTANT,
    "assistant": Role.ASSISTANT,
    "model": Role.ASSISTANT,
    "chatgpt": Role.ASSISTANT,
    "bard": Role.ASSISTANT,
    "tool": Role.TOOL,
    "observation": Role.TOOL,
    "function_response": Role.TOOL,
    "system": None,
}
_SHAREGPT_OUT = {Role.USER: "human", Role.ASSISTANT: "gpt", Role.TOOL: "observation"}


class FormatError(ValueError):
    """A record does not fit its format; `field` is the JSON path of the offending part."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class Parsed(BaseModel):
    """A record parsed into canonical form, with what the parser noticed but did not reject."""

    example: Example
    format: Format
    warnings: list[str] = Field(default_factory=list, description="Unknown keys kept in metadata, etc.")


class Rendered(BaseModel):
    """An example written out in one format, with anything the conversion could not carry across."""

    record: dict[str, Any]
    losses: list[str] = Field(default_factory=list, description="What this conversion dropped or folded.")


# --------------------------------------------------------------------------------------------- detect


def detect(record: Any) -> Format | None:
    """Return the format a record is in, or None when no format fits.

    A chat record whose messages are plain strings with only user/assistant roles fits both OpenAI and
    Bedrock Claude; it is reported as OpenAI, and `is_definite` lets a file-level vote prefer the
    format its unambiguous lines show.
    """
    if not isinstance(record, dict):
        return None
    if "conversations" in record:
        return Format.SHAREGPT
    if "messages" in record:
        messages = record["messages"]
        if record.get("schemaVersion") is not None or isinstance(record.get("system"), list):
            return Format.BEDROCK_NOVA
        if isinstance(messages, list) and any(
            isinstance(m, dict) and isinstance(m.get("content"), list) for m in messages
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


def is_definite(record: dict[str, Any], fmt: Format) -> bool:
    """Say whether a record could only be in `fmt` (see `detect` for the OpenAI/Claude overlap)."""
    if fmt is not Format.OPENAI:
        return True
    messages = record.get("messages")
    if not isinstance(messages, list):
        return True
    return any(
        isinstance(m, dict) and (m.get("role") == "system" or "weight" in m or "name" in m) for m in messages
    )


def describe_unrecognised(record: Any) -> str:
    """Explain why `detect` found no format, naming the keys a user would need."""
    if not isinstance(record, dict):
        return f"expected a JSON object, found {_json_type(record)}"
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
    record: they are kept in metadata and reported as warnings, so nothing a user had is lost.
    """
    detected = detect(record)
    if fmt is None:
        if detected is None:
            raise FormatError(describe_unrecognised(record))
        fmt = detected
    elif not isinstance(record, dict):
        raise FormatError(f"expected a JSON object, found {_json_type(record)}")
    parser = _PARSERS[fmt]
    warnings: list[str] = []
    system, messages = parser(record)
    metadata = _metadata(record, fmt, warnings)
    _check_conversation(messages)
    example = Example(system=system, messages=messages, metadata=metadata, content_hash=content_hash(system, messages))
    return Parsed(example=example, format=fmt, warnings=warnings)


def _metadata(record: dict[str, Any], fmt: Format, warnings: list[str]) -> dict[str, Any]:
    meta = record.get("metadata")
    if meta is None:
        metadata: dict[str, Any] = {}
    elif isinstance(meta, dict):
        metadata = dict(meta)
    else:
        raise FormatError(f"must be an object, found {_json_type(meta)}", "metadata")
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


def _text(value: Any, field: str, *, allow_none: bool = False) -> str:
    if value is None and allow_none:
        return ""
    if not isinstance(value, str):
        raise FormatError(f"must be a string, found {_json_type(value)}", field)
    return value


def _role(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        shown = value if isinstance(value, str) else _json_type(value)
        raise FormatError(f"role {shown!r} is not one of {', '.join(allowed)}", field)
    return value


def _weight(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(f"must be a number, found {_json_type(value)}", field)
    return float(value)


def _message_list(record: dict[str, Any], key: str = "messages") -> list[Any]:
    messages = record.get(key)
    if not isinstance(messages, list):
        raise FormatError(f"must be a list of turns, found {_json_type(messages)}", key)
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise FormatError(f"must be an object, found {_json_type(m)}", f"{key}[{i}]")
    return messages


def _parse_openai(record: dict[str, Any]) -> tuple[str | None, list[Message]]:
    system: str | None = None
    out: list[Message] = []
    for i, m in enumerate(_message_list(record)):
        field = f"messages[{i}]"
        role = _role(m.get("role"), f"{field}.role", ("system", "user", "assistant", "tool"))
        content = _text(m.get("content"), f"{field}.content", allow_none=role == "assistant" and "tool_calls" in m)
        if role == "system":
            if out or system is not None:
                raise FormatError("a system message may only come first", f"{field}.role")
            system = content
            continue
        out.append(Message(role=Role(role), content=content, weight=_weight(m.get("weight"), f"{field}.weight")))
    return system, out


def _parse_claude(record: dict[str, Any]) -> tuple[str | None, list[Message]]:
    system = record.get("system")
    if system is not None:
        system = _text(system, "system")
    out = []
    for i, m in enumerate(_message_list(record)):
        field = f"messages[{i}]"
        role = _role(m.get("role"), f"{field}.role", ("user", "assistant"))
        out.append(Message(role=Role(role), content=_text(m.get("content"), f"{field}.content")))
    return system, out


def _nova_text(blocks: Any, field: str) -> str:
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise FormatError(f"must be a list of {{'text': ...}} blocks, found {_json_type(blocks)}", field)
    texts = []
    for j, block in enumerate(blocks):
        if not isinstance(block, dict):
            raise FormatError(f"must be an object, found {_json_type(block)}", f"{field}[{j}]")
        if "text" not in block:
            kinds = ", ".join(sorted(block)) or "nothing"
            raise FormatError(f"only text blocks are supported, found {kinds}", f"{field}[{j}]")
        texts.append(_text(block["text"], f"{field}[{j}].text"))
    return "\n".join(texts)


def _parse_nova(record: dict[str, Any]) -> tuple[str | None, list[Message]]:
    system = record.get("system")
    system_text = None if system is None else _nova_text(system, "system")
    out = []
    for i, m in enumerate(_message_list(record)):
        field = f"messages[{i}]"
        role = _role(m.get("role"), f"{field}.role", ("user", "assistant"))
        out.append(Message(role=Role(role), content=_nova_text(m.get("content"), f"{field}.content")))
    return system_text, out


def _parse_prompt_completion(record: dict[str, Any]) -> tuple[str | None, list[Message]]:
    return None, [
        Message(role=Role.USER, content=_text(record.get("prompt"), "prompt")),
        Message(role=Role.ASSISTANT, content=_text(record.get("completion"), "completion")),
    ]


def _parse_alpaca(record: dict[str, Any]) -> tuple[str | None, list[Message]]:
    instruction = _text(record.get("instruction"), "instruction")
    extra = _text(record.get("input"), "input", allow_none=True)
    output = _text(record.get("output"), "output")
    # With an input, the instruction is the standing task (a system prompt) and the input the user's
    # turn; without one, the instruction is itself the request. Rendering inverts this exactly.
    if extra:
        return instruction, [Message(role=Role.USER, content=extra), Message(role=Role.ASSISTANT, content=output)]
    return None, [Message(role=Role.USER, content=instruction), Message(role=Role.ASSISTANT, content=output)]


def _parse_sharegpt(record: dict[str, Any]) -> tuple[str | None, list[Message]]:
    system = record.get("system")
    system = None if system is None else _text(system, "system")
    out = []
    for i, turn in enumerate(_message_list(record, "conversations")):
        field = f"conversations[{i}]"
        speaker = turn.get("from")
        if not isinstance(speaker, str) or speaker.lower() not in _SHAREGPT_ROLES:
            raise FormatError(f"speaker {speaker!r} is not one of {', '.join(_SHAREGPT_ROLES)}", f"{field}.from")
        value = _text(turn.get("value"), f"{field}.value")
        role = _SHAREGPT_ROLES[speaker.lower()]
        if role is None:
            if out or system is not None:
                raise FormatError("a system turn may only come first", f"{field}.from")
            system = value
            continue
        out.append(Message(role=role, content=value, weight=_weight(turn.get("weight"), f"{field}.weight")))
    return system, out


_PARSERS = {
    Format.OPENAI: _parse_openai,
    Format.BEDROCK_CLAUDE: _parse_claude,
    Format.BEDROCK_NOVA: _parse_nova,
    Format.PROMPT_COMPLETION: _parse_prompt_completion,
    Format.ALPACA: _parse_alpaca,
    Format.SHAREGPT: _parse_sharegpt,
}


# --------------------------------------------------------------------------------------------- render


def render(example: Example, fmt: Format, *, include_metadata: bool = False) -> Rendered:
    """Write an example in `fmt`, listing what the conversion lost.

    Metadata is left out by default: provider validators reject unknown keys (Bedrock Claude allows
    none), so training files carry only what trains the model.
    """
    losses: list[str] = []
    record = _RENDERERS[fmt](example, losses)
    if include_metadata and example.metadata:
        record["metadata"] = example.metadata
    return Rendered(record=record, losses=losses)


def _drop_tool_turns(example: Example, fmt: Format, losses: list[str]) -> list[Message]:
    kept = [m for m in example.messages if m.role is not Role.TOOL]
    if len(kept) != len(example.messages):
        losses.append(f"{len(example.messages) - len(kept)} tool turn(s) dropped: {fmt.value} has no tool role")
    return kept


def _drop_weights(messages: list[Message], fmt: Format, losses: list[str]) -> None:
    if any(m.weight is not None for m in messages):
        losses.append(f"per-turn training weights dropped: {fmt.value} has no weight field")


def _render_openai(example: Example, losses: list[str]) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    if example.system is not None:
        out.append({"role": "system", "content": example.system})
    for m in _drop_tool_turns(example, Format.OPENAI, losses):
        turn: dict[str, Any] = {"role": m.role.value, "content": m.content}
        if m.weight is not None:
            turn["weight"] = int(m.weight) if float(m.weight).is_integer() else m.weight
        out.append(turn)
    return {"messages": out}


def _render_claude(example: Example, losses: list[str]) -> dict[str, Any]:
    messages = _drop_tool_turns(example, Format.BEDROCK_CLAUDE, losses)
    _drop_weights(messages, Format.BEDROCK_CLAUDE, losses)
    record: dict[str, Any] = {}
    if example.system is not None:
        record["system"] = example.system
    record["messages"] = [{"role": m.role.value, "content": m.content} for m in messages]
    return record


def _render_nova(example: Example, losses: list[str]) -> dict[str, Any]:
    messages = _drop_tool_turns(example, Format.BEDROCK_NOVA, losses)
    _drop_weights(messages, Format.BEDROCK_NOVA, losses)
    record: dict[str, Any] = {"schemaVersion": NOVA_SCHEMA_VERSION}
    if example.system is not None:
        record["system"] = [{"text": example.system}]
    record["messages"] = [{"role": m.role.value, "content": [{"text": m.content}]} for m in messages]
    return record


def _single_turn(example: Example, fmt: Format, losses: list[str]) -> tuple[str, str]:
    """Fold a conversation into one request and the final reply, saying what was folded."""
    messages = example.messages
    _drop_weights(messages, fmt, losses)
    last_reply = max(i for i, m in enumerate(messages) if m.role is Role.ASSISTANT)
    if last_reply != len(messages) - 1:
        losses.append(f"{len(messages) - 1 - last_reply} turn(s) after the last assistant reply dropped")
    history = messages[:last_reply]
    if len(history) == 1 and history[0].role is Role.USER:
        return history[0].content, messages[last_reply].content
    losses.append(f"multi-turn conversation ({len(history) + 1} turns) flattened into one prompt")
    lines = [f"{m.role.value.capitalize()}: {m.content}" for m in history]
    return "\n\n".join(lines), messages[last_reply].content


def _render_prompt_completion(example: Example, losses: list[str]) -> dict[str, Any]:
    prompt, completion = _single_turn(example, Format.PROMPT_COMPLETION, losses)
    if example.system:
        losses.append("system prompt folded into the prompt")
        prompt = f"{example.system}\n\n{prompt}"
    return {"prompt": prompt, "completion": completion}


def _render_alpaca(example: Example, losses: list[str]) -> dict[str, Any]:
    request, output = _single_turn(example, Format.ALPACA, losses)
    if example.system is not None and (example.system or request):
        return {"instruction": example.system, "input": request, "output": output}
    return {"instruction": request, "input": "", "output": output}


def _render_sharegpt(example: Example, losses: list[str]) -> dict[str, Any]:
    # Per-turn weights ride along as `weight` (axolotl's ShareGPT loader reads them).
    turns: list[dict[str, Any]] = []
    if example.system is not None:
        turns.append({"from": "system", "value": example.system})
    for m in example.messages:
        turn: dict[str, Any] = {"from": _SHAREGPT_OUT[m.role], "value": m.content}
        if m.weight is not None:
            turn["weight"] = m.weight
        turns.append(turn)
    return {"conversations": turns}


_RENDERERS = {
    Format.OPENAI: _render_openai,
    Format.BEDROCK_CLAUDE: _render_claude,
    Format.BEDROCK_NOVA: _render_nova,
    Format.PROMPT_COMPLETION: _render_prompt_completion,
    Format.ALPACA: _render_alpaca,
    Format.SHAREGPT: _render_sharegpt,
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
