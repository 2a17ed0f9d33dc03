"""Bedrock Converse records (Nova, Llama 3.2): content as blocks, tool use and results, tool config.

Shape (https://docs.aws.amazon.com/nova/latest/userguide/fine-tune-prepare-data-understanding.html,
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ContentBlock.html):
`{"schemaVersion": "bedrock-conversation-2024", "system": [{"text"}], "messages": [{"role", "content":
[blocks]}], "toolConfig": {"tools": [{"toolSpec": ...}], "toolChoice": ...}}`. A block is one of `text`,
`image` / `video` (`{"format", "source": {"s3Location": {"uri"}} | {"bytes"}}`), `document` (adds
`name`), `toolUse` (`{"toolUseId", "name", "input"}`, assistant turns) and `toolResult`
(`{"toolUseId", "content": [blocks], "status"}`, user turns).

In the canonical example each tool result is a turn of its own (as in OpenAI); a user message holding
results is split into them, and written back by merging a run of tool and user turns into one user
message, since Converse alternates user and assistant.
"""

from __future__ import annotations

import json
import re
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
    Reader,
    Writer,
    arguments_text,
    call_ids,
    obj,
    objects,
    optional_text,
    parse_arguments,
    role,
    schema,
    text,
)

SCHEMA_VERSION = "bedrock-conversation-2024"
TOP_KEYS = frozenset({"schemaVersion", "system", "messages", "metadata", "toolConfig"})
_MEDIA = {"image": BlockKind.IMAGE, "video": BlockKind.VIDEO, "document": BlockKind.DOCUMENT}
_DATA_URI = re.compile(r"data:(?P<mime>[\w.+-]+/(?P<subtype>[\w.+-]+));base64,(?P<data>.*)", re.DOTALL)


def read(record: dict[str, Any], reader: Reader) -> Conversation:
    """Read a Converse record, splitting tool results out of user messages into tool turns."""
    version = record.get("schemaVersion")
    if version is not None and version != SCHEMA_VERSION:
        reader.warn("schemaVersion", f"{version!r} not kept: exports write {SCHEMA_VERSION!r}")
    system = record.get("system")
    system_text = None if system is None else _system(system, reader)
    out: list[Message] = []
    for i, m in enumerate(objects(record.get("messages"), "messages", "turns")):
        path = f"messages[{i}]"
        reader.unknown_keys(m, ("role", "content"), path)
        kind = Role(role(m.get("role"), f"{path}.role", ("user", "assistant")))
        out.extend(_message(kind, m.get("content"), path, reader))
    tools, choice = _tool_config(record.get("toolConfig"), reader)
    return Conversation(system_text, out, tools, None, choice)


def _system(value: Any, reader: Reader) -> str:
    """Read the system blocks' text as one system prompt, saying so when several are joined.

    The example has one system prompt, and writing Converse gives it one block, so two or more text
    items come back as one: the warning tells the user their file's shape changes here.
    """
    if isinstance(value, str):
        return value
    texts = []
    for j, block in enumerate(objects(value, "system", "{'text': ...} blocks")):
        if "text" in block:
            reader.unknown_keys(block, ("text",), f"system[{j}]")
            texts.append(text(block["text"], f"system[{j}].text"))
        else:
            reader.warn(f"system[{j}]", f"{_kind_of(block)} block not kept: only text is read in the system prompt")
    if len(texts) > 1:
        reader.warn("system", f"{len(texts)} text items joined into one system prompt (separated by a newline)")
    return "\n".join(texts)


def _message(kind: Role, content: Any, path: str, reader: Reader) -> list[Message]:
    """Turn one Converse message into canonical turns: its own content, plus a tool turn per result."""
    if isinstance(content, str):
        return [Message(role=kind, content=content)]
    out: list[Message] = []
    blocks: list[ContentBlock] = []
    calls: list[ToolCall] = []

    def flush() -> None:
        if blocks or calls or not out:
            out.append(_turn(kind, list(blocks), list(calls)))
        blocks.clear()
        calls.clear()

    for j, block in enumerate(objects(content, f"{path}.content", "content blocks")):
        where = f"{path}.content[{j}]"
        if "toolUse" in block and kind is Role.ASSISTANT:
            calls.append(_tool_use(obj(block["toolUse"], f"{where}.toolUse"), f"{where}.toolUse", reader))
        elif "toolResult" in block and kind is Role.USER:
            if blocks or calls:
                flush()
            out.append(_tool_result(obj(block["toolResult"], f"{where}.toolResult"), f"{where}.toolResult", reader))
        else:
            parsed = _block(block, where, reader)
            if parsed is not None:
                blocks.append(parsed)
    if blocks or calls or not out:
        flush()
    return out


def _turn(kind: Role, blocks: list[ContentBlock], calls: list[ToolCall]) -> Message:
    plain = len(blocks) == 1 and blocks[0].kind is BlockKind.TEXT
    return Message(role=kind, content=text_of(blocks), tool_calls=calls, blocks=None if plain or not blocks else blocks)


def _block(block: dict[str, Any], where: str, reader: Reader) -> ContentBlock | None:
    if "text" in block:
        reader.unknown_keys(block, ("text",), where)
        return ContentBlock(kind=BlockKind.TEXT, text=text(block["text"], f"{where}.text"))
    if "json" in block:
        reader.unknown_keys(block, ("json",), where)
        return ContentBlock(kind=BlockKind.JSON, text=json.dumps(block["json"], ensure_ascii=False))
    for key, kind in _MEDIA.items():
        if key in block:
            reader.unknown_keys(block, (key,), where)
            return _media(kind, obj(block[key], f"{where}.{key}"), f"{where}.{key}", reader)
    reader.warn(where, f"{_kind_of(block)} block not kept: this reader takes text, image, video, document, toolUse and toolResult")
    return None


def _media(kind: BlockKind, media: dict[str, Any], path: str, reader: Reader) -> ContentBlock:
    allowed = ("format", "source", "name") if kind is BlockKind.DOCUMENT else ("format", "source")
    reader.unknown_keys(media, allowed, path)
    fmt = text(media.get("format"), f"{path}.format")
    source = obj(media.get("source"), f"{path}.source")
    reader.unknown_keys(source, ("s3Location", "bytes"), f"{path}.source")
    if "s3Location" in source:
        location = obj(source["s3Location"], f"{path}.source.s3Location")
        reader.unknown_keys(location, ("uri",), f"{path}.source.s3Location")
        uri = text(location.get("uri"), f"{path}.source.s3Location.uri")
    else:
        data = text(source.get("bytes"), f"{path}.source.bytes")
        mime = f"application/{fmt}" if kind is BlockKind.DOCUMENT else f"{kind.value}/{fmt}"
        uri = f"data:{mime};base64,{data}"
    name = optional_text(media.get("name"), f"{path}.name")
    return ContentBlock(kind=kind, uri=uri, format=fmt, name=name)


def _tool_use(use: dict[str, Any], path: str, reader: Reader) -> ToolCall:
    reader.unknown_keys(use, ("toolUseId", "name", "input"), path)
    return ToolCall(
        id=optional_text(use.get("toolUseId"), f"{path}.toolUseId"),
        name=text(use.get("name"), f"{path}.name"),
        arguments=arguments_text(use.get("input", {})),
    )


def _tool_result(result: dict[str, Any], path: str, reader: Reader) -> Message:
    reader.unknown_keys(result, ("toolUseId", "content", "status"), path)
    blocks = [b for j, item in enumerate(objects(result.get("content") or [], f"{path}.content")) if (b := _block(item, f"{path}.content[{j}]", reader))]
    plain = len(blocks) == 1 and blocks[0].kind is BlockKind.TEXT
    return Message(
        role=Role.TOOL,
        content=text_of(blocks),
        tool_call_id=optional_text(result.get("toolUseId"), f"{path}.toolUseId"),
        status=optional_text(result.get("status"), f"{path}.status"),
        blocks=None if plain else blocks,
    )


def _tool_config(config: Any, reader: Reader) -> tuple[list[ToolDef], dict[str, Any] | None]:
    if config is None:
        return [], None
    config = obj(config, "toolConfig")
    reader.unknown_keys(config, ("tools", "toolChoice"), "toolConfig")
    tools = []
    for k, tool in enumerate(objects(config.get("tools") or [], "toolConfig.tools")):
        path = f"toolConfig.tools[{k}]"
        reader.unknown_keys(tool, ("toolSpec",), path)
        spec = obj(tool.get("toolSpec"), f"{path}.toolSpec")
        reader.unknown_keys(spec, ("name", "description", "inputSchema"), f"{path}.toolSpec")
        input_schema = spec.get("inputSchema")
        parameters = None
        if input_schema is not None:
            input_schema = obj(input_schema, f"{path}.toolSpec.inputSchema")
            reader.unknown_keys(input_schema, ("json",), f"{path}.toolSpec.inputSchema")
            parameters = schema(input_schema.get("json"), f"{path}.toolSpec.inputSchema.json")
        tools.append(
            ToolDef(
                name=text(spec.get("name"), f"{path}.toolSpec.name"),
                description=optional_text(spec.get("description"), f"{path}.toolSpec.description"),
                parameters=parameters,
            )
        )
    choice = config.get("toolChoice")
    return tools, None if choice is None else obj(choice, "toolConfig.toolChoice")


def _kind_of(block: dict[str, Any]) -> str:
    return ", ".join(sorted(map(str, block))) or "empty"


# ------------------------------------------------------------------------------------------- write


def write(example: Example, writer: Writer) -> dict[str, Any]:
    """Write an example as a Converse record, merging tool results into the user messages that hold them."""
    ids, answers, _ = call_ids(example.messages)
    record: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION}
    if example.system is not None:
        record["system"] = [{"text": example.system}]
    messages: list[dict[str, Any]] = []
    for i, m in enumerate(example.messages):
        path = f"messages[{i}]"
        if m.name is not None:
            writer.no_place(f"{path}.name", "speaker name")
        if m.weight is not None:
            writer.no_place(f"{path}.weight", "training weight")
        if m.role is Role.TOOL:
            if i not in answers:
                writer.lose(f"{path}.tool_call_id", f"answers no call; written with toolUseId 'result_{i}'")
            result: dict[str, Any] = {"toolUseId": answers.get(i, f"result_{i}"), "content": _blocks(m, path, writer, in_result=True)}
            if m.status is not None:
                result["status"] = m.status
            blocks = [{"toolResult": result}]
        else:
            blocks = _blocks(m, path, writer, in_result=False)
            for j, call in enumerate(m.tool_calls):
                ok, value = parse_arguments(call.arguments)
                if not ok:
                    writer.lose(f"{path}.tool_calls[{j}].arguments", "dropped with its call: not JSON, and Converse needs a JSON input")
                    continue
                blocks.append({"toolUse": {"toolUseId": ids[(i, j)], "name": call.name, "input": value}})
        wire_role = "assistant" if m.role is Role.ASSISTANT else "user"
        # Converse alternates roles: a tool result and the user text around it share one message.
        if messages and wire_role == "user" and messages[-1]["role"] == "user" and (m.role is Role.TOOL or example.messages[i - 1].role is Role.TOOL):
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": wire_role, "content": blocks})
    record["messages"] = messages
    if example.tools or example.tool_choice is not None:
        record["toolConfig"] = _tool_config_out(example, writer)
    if example.parallel_tool_calls is not None:
        writer.no_place("parallel_tool_calls", "OpenAI parallel_tool_calls")
    return record


def _blocks(m: Message, path: str, writer: Writer, *, in_result: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if m.blocks is None and not m.content and (m.tool_calls or in_result):
        return out
    for j, block in enumerate(m.content_blocks()):
        where = f"{path}.content[{j}]"
        if block.kind is BlockKind.TEXT:
            out.append({"text": block.text or ""})
        elif block.kind is BlockKind.JSON:
            ok, value = parse_arguments(block.text or "")
            out.append({"json": value} if ok and in_result else {"text": block.text or ""})
        else:
            media = _media_out(block, where, writer)
            if media is not None:
                out.append(media)
    return out


def _media_out(block: ContentBlock, where: str, writer: Writer) -> dict[str, Any] | None:
    uri = block.uri or ""
    data = _DATA_URI.fullmatch(uri)
    fmt = block.format or (data.group("subtype") if data else uri.rsplit(".", 1)[-1].lower() if "." in uri.rsplit("/", 1)[-1] else None)
    if uri.startswith("s3://"):
        source: dict[str, Any] = {"s3Location": {"uri": uri}}
    elif data:
        source = {"bytes": data.group("data")}
    else:
        writer.lose(where, f"{block.kind.value} at {uri or 'no uri'} dropped: Converse takes media from S3 or inline bytes only")
        return None
    if fmt is None:
        writer.lose(where, f"{block.kind.value} dropped: its format is unknown and Converse requires one")
        return None
    media: dict[str, Any] = {"format": fmt}
    if block.kind is BlockKind.DOCUMENT:
        media["name"] = block.name or "document"
    media["source"] = source
    return {block.kind.value: media}


def _tool_config_out(example: Example, writer: Writer) -> dict[str, Any]:
    tools = []
    for k, tool in enumerate(example.tools):
        spec: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            spec["description"] = tool.description
        spec["inputSchema"] = {"json": tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}}}
        if tool.strict is not None:
            writer.no_place(f"tools[{k}].strict", "OpenAI strict flag")
        tools.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": tools}
    if example.tool_choice is not None:
        config["toolChoice"] = example.tool_choice
    return config
