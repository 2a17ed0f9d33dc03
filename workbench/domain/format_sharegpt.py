"""ShareGPT records: `conversations` of `from` / `value` turns, with function calls and observations.

Tool use follows LLaMA-Factory's ShareGPT layout
(https://github.com/hiyouga/LLaMA-Factory/blob/main/data/README.md): a `function_call` turn whose
value is the JSON text `{"name": ..., "arguments": {...}}` (a list of them for parallel calls), an
`observation` turn holding the tool's answer, and a top-level `tools` holding the JSON text of the
function definitions. A per-turn `weight`, as published ShareGPT sets carry one, is kept. ShareGPT
has no call ids: results answer calls in order.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.domain.example import Example, Message, Role, ToolCall, ToolDef
from workbench.domain.format_parts import (
    Conversation,
    FormatError,
    Reader,
    Writer,
    arguments_text,
    json_type,
    obj,
    objects,
    optional_text,
    parse_arguments,
    schema,
    text,
    weight,
)

TOP_KEYS = frozenset({"conversations", "metadata", "system", "tools", "id"})
_ROLES: dict[str, Role | None] = {
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
_FUNCTION_CALL = "function_call"
_OUT = {Role.USER: "human", Role.ASSISTANT: "gpt", Role.TOOL: "observation"}


def read(record: dict[str, Any], reader: Reader) -> Conversation:
    """Read a ShareGPT record: turns, function calls, observations and tool definitions."""
    system = optional_text(record.get("system"), "system")
    out: list[Message] = []
    for i, turn in enumerate(objects(record.get("conversations"), "conversations", "turns")):
        path = f"conversations[{i}]"
        reader.unknown_keys(turn, ("from", "value", "weight"), path)
        speaker = turn.get("from")
        known = isinstance(speaker, str) and (speaker.lower() in _ROLES or speaker.lower() == _FUNCTION_CALL)
        if not known:
            raise FormatError(f"speaker {speaker!r} is not one of {', '.join([*_ROLES, _FUNCTION_CALL])}", f"{path}.from")
        value = text(turn.get("value"), f"{path}.value")
        turn_weight = weight(turn.get("weight"), f"{path}.weight")
        if speaker.lower() == _FUNCTION_CALL:
            out.append(Message(role=Role.ASSISTANT, content="", tool_calls=_calls(value, f"{path}.value"), weight=turn_weight))
            continue
        role = _ROLES[speaker.lower()]
        if role is None:
            if out or system is not None:
                raise FormatError("a system turn may only come first", f"{path}.from")
            system = value
            continue
        out.append(Message(role=role, content=value, weight=turn_weight))
    kept = {"id": record["id"]} if "id" in record else {}
    return Conversation(system, out, _tools(record.get("tools"), reader), kept=kept)


def _calls(value: str, path: str) -> list[ToolCall]:
    ok, parsed = parse_arguments(value)
    if not ok:
        raise FormatError("must be the JSON text of a call: {\"name\": ..., \"arguments\": {...}}", path)
    calls = []
    for j, call in enumerate(parsed if isinstance(parsed, list) else [parsed]):
        where = f"{path}[{j}]" if isinstance(parsed, list) else path
        call = obj(call, where)
        arguments = call.get("arguments", {})
        calls.append(
            ToolCall(
                name=text(call.get("name"), f"{where}.name"),
                arguments=arguments if isinstance(arguments, str) else arguments_text(arguments),
            )
        )
    return calls


def _tools(value: Any, reader: Reader) -> list[ToolDef]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        ok, value = parse_arguments(value)
        if not ok:
            raise FormatError("must be a list of function definitions or its JSON text", "tools")
    if not isinstance(value, list):
        raise FormatError(f"must be a list of function definitions, found {json_type(value)}", "tools")
    tools = []
    for k, tool in enumerate(value):
        path = f"tools[{k}]"
        tool = obj(tool, path)
        if tool.get("type") == "function" and "function" in tool:  # OpenAI-style entries, as some exports hold
            reader.unknown_keys(tool, ("type", "function"), path)
            tool, path = obj(tool["function"], f"{path}.function"), f"{path}.function"
        reader.unknown_keys(tool, ("name", "description", "parameters"), path)
        tools.append(
            ToolDef(
                name=text(tool.get("name"), f"{path}.name"),
                description=optional_text(tool.get("description"), f"{path}.description"),
                parameters=schema(tool.get("parameters"), f"{path}.parameters"),
            )
        )
    return tools


# ------------------------------------------------------------------------------------------- write


def write(example: Example, writer: Writer) -> dict[str, Any]:
    """Write an example as ShareGPT, tool calls as function_call turns and results as observations."""
    turns: list[dict[str, Any]] = []
    if example.system is not None:
        turns.append({"from": "system", "value": example.system})
    for i, m in enumerate(example.messages):
        path = f"messages[{i}]"
        if m.name is not None:
            writer.no_place(f"{path}.name", "speaker name")
        if m.status is not None:
            writer.no_place(f"{path}.status", f"tool result status {m.status!r}")
        if m.tool_call_id is not None:
            writer.no_place(f"{path}.tool_call_id", "call id (results answer calls in order)")
        for j, block in enumerate(m.content_blocks()):
            if block.kind.value not in ("text", "json"):
                writer.no_place(f"{path}.content[{j}]", f"{block.kind.value} block ({block.uri or 'no uri'})")
        if m.content or not m.tool_calls:
            turns.append(_turn(_OUT[m.role], m.content, m.weight))
        if m.tool_calls:
            for j, call in enumerate(m.tool_calls):
                if call.id is not None:
                    writer.no_place(f"{path}.tool_calls[{j}].id", "call id")
            calls = [_call_out(c) for c in m.tool_calls]
            value = json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)
            turns.append(_turn(_FUNCTION_CALL, value, None if m.content else m.weight))
    record: dict[str, Any] = {"conversations": turns}
    if example.tools:
        record["tools"] = json.dumps([_definition(t, k, writer) for k, t in enumerate(example.tools)], ensure_ascii=False)
    if example.parallel_tool_calls is not None:
        writer.no_place("parallel_tool_calls", "OpenAI parallel_tool_calls")
    if example.tool_choice is not None:
        writer.no_place("tool_choice", "Converse toolChoice")
    return record


def _turn(speaker: str, value: str, turn_weight: float | None) -> dict[str, Any]:
    turn: dict[str, Any] = {"from": speaker, "value": value}
    if turn_weight is not None:
        turn["weight"] = turn_weight
    return turn


def _call_out(call: ToolCall) -> dict[str, Any]:
    ok, arguments = parse_arguments(call.arguments)
    return {"name": call.name, "arguments": arguments if ok else call.arguments}


def _definition(tool: ToolDef, k: int, writer: Writer) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    if tool.parameters is not None:
        out["parameters"] = tool.parameters
    if tool.strict is not None:
        writer.no_place(f"tools[{k}].strict", "OpenAI strict flag")
    return out
