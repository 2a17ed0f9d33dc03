"""OpenAI chat fine-tuning records: messages with tool calls, tool results, names, weights and parts.

The shape is the Chat Completions one (https://platform.openai.com/docs/guides/fine-tuning):
`{"messages": [...], "tools": [...], "parallel_tool_calls": false}`, where an assistant turn may carry
`tool_calls` (`{"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}`) and a
`tool` turn answers one by `tool_call_id`. The older shape (`functions`, `function_call`, role
`function`) is read too and written back for examples that came in that way. A record read here and
written back is the same JSON, field for field: even `"content": null`, `""` and no content beside
tool calls are told apart.
"""

from __future__ import annotations

from typing import Any

from workbench.domain.example import (
    BlockKind,
    ContentBlock,
    Example,
    Message,
    Role,
    ToolCall,
    ToolDef,
    text_of,
)
from workbench.domain.format_parts import (
    Conversation,
    FormatError,
    Reader,
    Writer,
    arguments_text,
    call_ids,
    flag,
    obj,
    objects,
    optional_text,
    role,
    schema,
    text,
    weight,
    written_weight,
)

TOP_KEYS = frozenset({"messages", "metadata", "tools", "parallel_tool_calls", "functions"})
_MESSAGE_KEYS = ("role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call")
_ROLES = ("system", "user", "assistant", "tool", "function")
_WEB_URI = ("http://", "https://", "data:")
_PLAIN_KEYS = {"role", "content", "weight"}
_PLAIN_ROLES = {"user": Role.USER, "assistant": Role.ASSISTANT}


def read(record: dict[str, Any], reader: Reader) -> Conversation:
    """Read an OpenAI record: every key it defines, warning about unknown keys inside turns."""
    system: str | None = None
    out: list[Message] = []
    for i, m in enumerate(objects(record.get("messages"), "messages", "turns")):
        # Most turns are plain text: read them without the checks below (a third of an import's parse time).
        kind = m.get("role")
        if type(kind) is str and kind in _PLAIN_ROLES and type(m.get("content")) is str and m.keys() <= _PLAIN_KEYS:
            given = m.get("weight")
            turn_weight = None if given is None else weight(given, f"messages[{i}].weight")
            out.append(Message(role=_PLAIN_ROLES[kind], content=m["content"], weight=turn_weight))
            continue
        path = f"messages[{i}]"
        reader.unknown_keys(m, _MESSAGE_KEYS, path)
        kind = role(kind, f"{path}.role", _ROLES)
        if kind == "system":
            if out or system is not None:
                raise FormatError("a system message may only come first", f"{path}.role")
            for key in ("name", "weight", "tool_calls", "tool_call_id", "function_call"):
                if key in m:
                    reader.warn(f"{path}.{key}", "not kept: the system prompt has no such field")
            system = text(m.get("content"), f"{path}.content")
            continue
        out.append(_message(m, kind, path, reader))
    tools: list[ToolDef] = []
    if record.get("tools"):
        tools += [_tool(t, f"tools[{k}]", reader) for k, t in enumerate(objects(record["tools"], "tools"))]
    if record.get("functions"):
        tools += [_function(f, f"functions[{k}]", reader, legacy=True) for k, f in enumerate(objects(record["functions"], "functions"))]
    return Conversation(system, out, tools, flag(record.get("parallel_tool_calls"), "parallel_tool_calls"))


def _message(m: dict[str, Any], kind: str, path: str, reader: Reader) -> Message:
    calls = [_call(c, f"{path}.tool_calls[{j}]", reader) for j, c in enumerate(objects(m["tool_calls"], f"{path}.tool_calls"))] if m.get("tool_calls") else []
    if m.get("function_call") is not None:
        call = obj(m["function_call"], f"{path}.function_call")
        reader.unknown_keys(call, ("name", "arguments"), f"{path}.function_call")
        calls.append(ToolCall(name=text(call.get("name"), f"{path}.function_call.name"), arguments=_arguments(call.get("arguments"), f"{path}.function_call.arguments", reader)))
    if calls and kind != "assistant":
        raise FormatError("only an assistant turn may call tools", f"{path}.tool_calls")
    content = m.get("content")
    blocks: list[ContentBlock] | None = None
    if isinstance(content, list):
        blocks = _parts(content, f"{path}.content", reader)
        words = text_of(blocks)
    elif content is None and calls:
        words = ""  # null and absent are both allowed beside tool calls
    else:
        words = text(content, f"{path}.content")
    empty = None
    if calls and not words and blocks is None:
        empty = "absent" if "content" not in m else "null" if content is None else "empty"
    return Message(
        role=Role.TOOL if kind in ("tool", "function") else Role(kind),
        content=words,
        weight=weight(m.get("weight"), f"{path}.weight"),
        name=optional_text(m.get("name"), f"{path}.name"),
        tool_calls=calls,
        tool_call_id=optional_text(m.get("tool_call_id"), f"{path}.tool_call_id"),
        blocks=blocks,
        empty_content=empty,
    )


def _parts(parts: list[Any], path: str, reader: Reader) -> list[ContentBlock]:
    out: list[ContentBlock] = []
    for j, part in enumerate(objects(parts, path, "content parts")):
        where = f"{path}[{j}]"
        kind = part.get("type")
        if kind == "text":
            reader.unknown_keys(part, ("type", "text"), where)
            out.append(ContentBlock(kind=BlockKind.TEXT, text=text(part.get("text"), f"{where}.text")))
        elif kind == "image_url":
            reader.unknown_keys(part, ("type", "image_url"), where)
            image = obj(part.get("image_url"), f"{where}.image_url")
            reader.unknown_keys(image, ("url", "detail"), f"{where}.image_url")
            out.append(
                ContentBlock(
                    kind=BlockKind.IMAGE,
                    uri=text(image.get("url"), f"{where}.image_url.url"),
                    detail=optional_text(image.get("detail"), f"{where}.image_url.detail"),
                )
            )
        else:
            reader.warn(where, f"content part of type {kind!r} not kept: only text and image_url parts are read")
    return out


def _call(call: dict[str, Any], path: str, reader: Reader) -> ToolCall:
    reader.unknown_keys(call, ("id", "type", "function"), path)
    if call.get("type", "function") != "function":
        raise FormatError(f"tool call type {call.get('type')!r} is not 'function'", f"{path}.type")
    function = obj(call.get("function"), f"{path}.function")
    reader.unknown_keys(function, ("name", "arguments"), f"{path}.function")
    return ToolCall(
        id=optional_text(call.get("id"), f"{path}.id"),
        name=text(function.get("name"), f"{path}.function.name"),
        arguments=_arguments(function.get("arguments"), f"{path}.function.arguments", reader),
    )


def _arguments(value: Any, path: str, reader: Reader) -> str:
    if isinstance(value, dict):
        reader.warn(path, "an object where OpenAI expects JSON text; kept as its JSON text")
        return arguments_text(value)
    return text(value, path)


def _tool(tool: dict[str, Any], path: str, reader: Reader) -> ToolDef:
    reader.unknown_keys(tool, ("type", "function"), path)
    if tool.get("type", "function") != "function":
        raise FormatError(f"tool type {tool.get('type')!r} is not 'function'", f"{path}.type")
    return _function(obj(tool.get("function"), f"{path}.function"), f"{path}.function", reader)


def _function(function: dict[str, Any], path: str, reader: Reader, *, legacy: bool = False) -> ToolDef:
    reader.unknown_keys(function, ("name", "description", "parameters", "strict"), path)
    return ToolDef(
        name=text(function.get("name"), f"{path}.name"),
        description=optional_text(function.get("description"), f"{path}.description"),
        parameters=schema(function.get("parameters"), f"{path}.parameters"),
        strict=flag(function.get("strict"), f"{path}.strict"),
        legacy=legacy,
    )


# ------------------------------------------------------------------------------------------- write


def write(example: Example, writer: Writer) -> dict[str, Any]:
    """Write an example as an OpenAI record, in the older functions shape if it came in that way."""
    legacy = _is_legacy(example)
    ids, answers, answered_names = call_ids(example.messages)
    out: list[dict[str, Any]] = []
    if example.system is not None:
        out.append({"role": "system", "content": example.system})
    for i, m in enumerate(example.messages):
        path = f"messages[{i}]"
        turn: dict[str, Any] = {"role": "function" if legacy and m.role is Role.TOOL else m.role.value}
        content = _content(m, path, writer)
        if content is not _ABSENT:
            turn["content"] = content
        name = m.name if m.name is not None else (answered_names.get(i) if legacy and m.role is Role.TOOL else None)
        if name is not None:
            turn["name"] = name
        if m.tool_calls and legacy:
            call = m.tool_calls[0]
            turn["function_call"] = {"name": call.name, "arguments": call.arguments}
        elif m.tool_calls:
            turn["tool_calls"] = [
                {"id": ids[(i, j)], "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for j, c in enumerate(m.tool_calls)
            ]
        if m.role is Role.TOOL and not legacy and i in answers:
            turn["tool_call_id"] = answers[i]
        if m.status is not None:
            writer.no_place(f"{path}.status", f"tool result status {m.status!r}")
        if m.weight is not None:
            turn["weight"] = written_weight(m.weight)
        out.append(turn)
    record: dict[str, Any] = {"messages": out}
    if example.tools:
        key = "functions" if legacy else "tools"
        record[key] = [_definition(t) if legacy else {"type": "function", "function": _definition(t)} for t in example.tools]
    if example.parallel_tool_calls is not None:
        record["parallel_tool_calls"] = example.parallel_tool_calls
    if example.tool_choice is not None:
        writer.no_place("tool_choice", "Converse toolChoice")
    return record


_ABSENT = object()


def _content(m: Message, path: str, writer: Writer) -> Any:
    if m.blocks is None:
        if m.tool_calls and not m.content:
            # As the record had it; from another format, no key, as OpenAI's guide writes it.
            return {"null": None, "empty": ""}.get(m.empty_content or "absent", _ABSENT)
        return m.content
    blocks = m.content_blocks()
    if all(b.kind is BlockKind.TEXT for b in m.blocks) and len(blocks) == 1 and blocks[0] not in m.blocks:
        return m.content  # edited since import: the parts collapsed into one text
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        if block.kind in (BlockKind.TEXT, BlockKind.JSON):
            parts.append({"type": "text", "text": block.text or ""})
        elif block.kind is BlockKind.IMAGE and block.uri and block.uri.startswith(_WEB_URI):
            image: dict[str, Any] = {"url": block.uri}
            if block.detail is not None:
                image["detail"] = block.detail
            parts.append({"type": "image_url", "image_url": image})
        else:
            writer.no_place(f"{path}.content[{j}]", f"{block.kind.value} block ({block.uri or 'no uri'})")
    foreign = any(b.kind not in (BlockKind.TEXT, BlockKind.IMAGE) or not (b.uri or "").startswith(_WEB_URI) for b in blocks if b.kind is not BlockKind.TEXT)
    if foreign and all(p["type"] == "text" for p in parts):
        return m.content  # blocks from another format (a JSON result, S3 media): plain text is what OpenAI reads best
    return parts


def _definition(tool: ToolDef) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    if tool.parameters is not None:
        out["parameters"] = tool.parameters
    if tool.strict is not None:
        out["strict"] = tool.strict
    return out


def _is_legacy(example: Example) -> bool:
    """Say whether the example is best written in the older functions shape.

    It is when it came that way (definitions from `functions`), or has calls and results without
    ids and no definitions saying otherwise; never when a turn makes two calls (a `function_call`
    holds one) or anything carries an id.
    """
    calls = [c for m in example.messages for c in m.tool_calls]
    if any(c.id for c in calls) or any(m.tool_call_id for m in example.messages) or any(len(m.tool_calls) > 1 for m in example.messages):
        return False
    if example.tools:
        return all(t.legacy for t in example.tools)
    return bool(calls)
