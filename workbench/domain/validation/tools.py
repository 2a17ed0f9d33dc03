"""Tool use in training records: the shape each target requires, or an error where it has no place.

- OpenAI (https://platform.openai.com/docs/guides/fine-tuning; the same example, field for field, at
  https://learn.microsoft.com/en-us/azure/ai-services/openai/how-to/fine-tuning-functions): a top-level
  `tools` list of `{"type": "function", "function": {"name", "parameters"}}`; an assistant message's
  `tool_calls` of `{"id", "type": "function", "function": {"name", "arguments"}}` with `arguments` a JSON
  *string*; a `tool` message with the `tool_call_id` of an earlier call.
- Bedrock Converse (Nova): `toolConfig` `{"tools": [{"toolSpec": {"name", "inputSchema": {"json"}}}]}`
  (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolConfiguration.html); `toolUse`
  blocks `{"toolUseId", "name", "input"}` with `input` a JSON *object*, in assistant turns
  (.../API_runtime_ToolUseBlock.html); `toolResult` blocks `{"toolUseId", "content": [...]}` in user turns
  (.../API_runtime_ToolResultBlock.html). AWS warns that tool use in Nova fine-tuning data might make the
  job fail (https://docs.aws.amazon.com/bedrock/latest/userguide/nova-2-sft-data-prep.html).
- Claude 3 Haiku, Llama and Titan: their documented record shapes have no field for tools
  (https://docs.aws.amazon.com/bedrock/latest/userguide/preparing-text-data.html), so any tool field is an
  error naming it rather than a key the job silently ignores or rejects late.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from workbench.domain.validation.shape import _kind, _Out, _show

TOOL_TOP_KEYS = ("tools", "toolConfig", "functions", "tool_choice", "parallel_tool_calls")
TOOL_MESSAGE_KEYS = ("tool_calls", "tool_call_id", "function_call")
TOOL_ROLES = ("tool", "function", "ipython")
TOOL_BLOCK_KEYS = ("toolUse", "toolResult")
_TOOL_BLOCK_TYPES = ("tool_use", "tool_result")
_OPENAI_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
"""What OpenAI accepts as a function name (https://platform.openai.com/docs/api-reference/chat/create,
`tools[].function.name`): anything else in training data fails the job's file validation."""
_OPENAI_CALL = '{"id": "call_1", "type": "function", "function": {"name": "...", "arguments": "{...}"}}'
_CONVERSE_SPEC = '{"toolSpec": {"name": "...", "inputSchema": {"json": {...}}}}'


def _not_supported(out: _Out, field: str, label: str, what: str) -> None:
    out.error(
        "tool_use_not_supported", field,
        f"{field} is {what}; {label} fine-tuning data has no place for tool use. Export without tools, or "
        "choose a target that accepts them (OpenAI, Bedrock Nova).",
    )


def _reject_tool_use(record: dict[str, Any], out: _Out, label: str) -> None:
    """Report every tool field in a record for a target that takes none, naming each field."""
    for key in TOOL_TOP_KEYS:
        if key in record:
            _not_supported(out, key, label, "a tool field")
    messages = record.get("messages")
    if not isinstance(messages, list):
        return
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        path = f"messages[{i}]"
        for key in TOOL_MESSAGE_KEYS:
            if key in message:
                _not_supported(out, f"{path}.{key}", label, "a tool call field")
        if message.get("role") in TOOL_ROLES:
            _not_supported(out, f"{path}.role", label, f"{_show(message['role'])} (a tool result)")
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for j, block in enumerate(content):
            if not isinstance(block, dict):
                continue
            for key in TOOL_BLOCK_KEYS:
                if key in block:
                    _not_supported(out, f"{path}.content[{j}].{key}", label, "a tool block")
            if block.get("type") in _TOOL_BLOCK_TYPES:
                _not_supported(out, f"{path}.content[{j}].type", label, f"{_show(block['type'])} (a tool block)")


# --- OpenAI ------------------------------------------------------------------------------------------


def _openai_tool_names(record: dict[str, Any], out: _Out) -> set[str] | None:
    """Check the `tools` definitions; return the declared function names, or None when none are declared."""
    names: set[str] = set()
    legacy = record.get("functions")
    if isinstance(legacy, list):
        names |= {f["name"] for f in legacy if isinstance(f, dict) and isinstance(f.get("name"), str)}
    if "tools" not in record:
        return names or None
    tools = record["tools"]
    if not isinstance(tools, list):
        out.error(
            "invalid_tool_definition", "tools",
            f'tools is {_kind(tools)}; it must be a list of {{"type": "function", "function": {{...}}}} objects.',
        )
        return None
    for i, tool in enumerate(tools):
        path = f"tools[{i}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            out.error(
                "invalid_tool_definition", path,
                f'{path} is {_show(tool)}; each tool must be {{"type": "function", "function": {{"name": ..., '
                '"parameters": {...}}}.',
            )
            continue
        name = function.get("name")
        if not isinstance(name, str) or not name:
            out.error("invalid_tool_definition", f"{path}.function.name", f"{path}.function.name must be a non-empty string.")
            continue
        names.add(name)
        if not _OPENAI_FUNCTION_NAME.fullmatch(name):
            # ascii(): a control, bidi-override or zero-width character in the name is shown, not obeyed.
            out.error(
                "invalid_tool_definition", f"{path}.function.name",
                f"{path}.function.name is {ascii(name)}; a function name uses only a-z, A-Z, 0-9, '_' and '-', "
                "at most 64 characters.",
            )
        if "parameters" in function and not isinstance(function["parameters"], dict):
            out.error(
                "invalid_tool_definition", f"{path}.function.parameters",
                f"{path}.function.parameters is {_kind(function['parameters'])}; it must be a JSON Schema object.",
            )
    return names


def _check_openai_calls(calls: Any, path: str, names: set[str] | None, out: _Out) -> set[str]:
    """Check one assistant message's `tool_calls`; return the call ids it declares."""
    ids: set[str] = set()
    if not isinstance(calls, list) or not calls:
        out.error("invalid_tool_call", path, f"{path} is {_show(calls)}; it must be a non-empty list like [{_OPENAI_CALL}].")
        return ids
    for i, call in enumerate(calls):
        cpath = f"{path}[{i}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(function, dict) or call.get("type") != "function":
            out.error("invalid_tool_call", cpath, f"{cpath} is {_show(call)}; each call must look like {_OPENAI_CALL}.")
            continue
        if isinstance(call_id := call.get("id"), str) and call_id:
            ids.add(call_id)
        else:
            out.error("invalid_tool_call", f"{cpath}.id", f"{cpath}.id must be a non-empty string the tool message answers.")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            out.error("invalid_tool_call", f"{cpath}.function.name", f"{cpath}.function.name must be a non-empty string.")
        elif names is not None and name not in names:
            out.warn(
                "unknown_tool", f"{cpath}.function.name",
                f"{cpath} calls {name!r}, which the example's tools do not define; add its definition to tools.",
            )
        _check_arguments(function.get("arguments"), f"{cpath}.function.arguments", out)
    return ids


def _check_arguments(arguments: Any, path: str, out: _Out) -> None:
    if not isinstance(arguments, str):
        hint = " Serialise it: json.dumps(arguments)." if isinstance(arguments, dict) else ""
        out.error(
            "tool_arguments_not_json_string", path,
            f"{path} is {_kind(arguments)}; OpenAI takes function arguments as a string holding a JSON object.{hint}",
        )
        return
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        out.error(
            "tool_arguments_not_json_string", path,
            f"{path} is {_show(arguments)}, which is not a JSON object; write the arguments as a JSON object string.",
        )


def _check_function_call(call: Any, role: Any, path: str, names: set[str] | None, out: _Out) -> None:
    """Check a legacy `function_call` ({name, arguments}), which only an assistant message makes."""
    if role != "assistant":
        out.error(
            "misplaced_tool_calls", path,
            f"{path} is on a {_show(role)} message; only assistant messages make function calls.",
        )
        return
    name = call.get("name") if isinstance(call, dict) else None
    if not isinstance(name, str) or not name:
        out.error(
            "invalid_tool_call", path,
            f'{path} is {_show(call)}; it must look like {{"name": "...", "arguments": "{{...}}"}}.',
        )
        return
    if names is not None and name not in names:
        out.warn("unknown_tool", f"{path}.name", f"{path} calls {name!r}, which the example's functions do not define.")
    _check_arguments(call.get("arguments"), f"{path}.arguments", out)


def _check_openai_tools(record: dict[str, Any], messages: list[tuple[str, dict[str, Any]]], out: _Out) -> None:
    """Check tool definitions, assistant tool calls and tool results of one OpenAI example."""
    names = _openai_tool_names(record, out)
    call_ids: set[str] = set()
    for path, message in messages:
        role = message.get("role")
        if "tool_calls" in message:
            if role == "assistant":
                call_ids |= _check_openai_calls(message["tool_calls"], f"{path}.tool_calls", names, out)
            else:
                out.error(
                    "misplaced_tool_calls", f"{path}.tool_calls",
                    f"{path} is a {_show(role)} message with tool_calls; only assistant messages make tool calls.",
                )
        if "function_call" in message:
            _check_function_call(message["function_call"], role, f"{path}.function_call", names, out)
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                out.error(
                    "missing_tool_call_id", f"{path}.tool_call_id",
                    f"{path} is a tool result without a tool_call_id; give the id of the assistant tool call it answers.",
                )
            elif call_id not in call_ids:
                out.error(
                    "tool_result_without_call", f"{path}.tool_call_id",
                    f"{path}.tool_call_id is {call_id!r}, which no earlier assistant tool call has as its id.",
                )
        elif "tool_call_id" in message:
            out.error(
                "misplaced_tool_calls", f"{path}.tool_call_id",
                f"{path} is a {_show(role)} message with tool_call_id; only tool messages answer a call.",
            )


# --- Bedrock Converse --------------------------------------------------------------------------------


class _ConverseTools:
    """What one Converse record declares and calls, so a result can be tied to its call."""

    __slots__ = ("call_ids", "names")

    def __init__(self, names: set[str] | None) -> None:
        self.names = names
        self.call_ids: set[str] = set()


def _converse_tool_names(record: dict[str, Any], out: _Out) -> set[str] | None:
    """Check a record's `toolConfig`; return the declared tool names, or None when it has none."""
    if "toolConfig" not in record:
        return None
    config = record["toolConfig"]
    tools = config.get("tools") if isinstance(config, dict) else None
    if not isinstance(tools, list):
        out.error(
            "invalid_tool_definition", "toolConfig",
            f"toolConfig is {_show(config)}; it must be {{\"tools\": [{_CONVERSE_SPEC}]}}.",
        )
        return None
    names: set[str] = set()
    for i, tool in enumerate(tools):
        path = f"toolConfig.tools[{i}]"
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        name = spec.get("name") if isinstance(spec, dict) else None
        schema = spec.get("inputSchema") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not name or not isinstance(schema, dict) or not isinstance(schema.get("json"), dict):
            out.error("invalid_tool_definition", path, f"{path} is {_show(tool)}; each tool must look like {_CONVERSE_SPEC}.")
            continue
        names.add(name)
    return names


def _check_converse_tool_block(key: str, block: Any, path: str, role: str | None, out: _Out, tools: _ConverseTools) -> None:
    """Check one `toolUse` (assistant) or `toolResult` (user) block of a Converse message."""
    home = "assistant" if key == "toolUse" else "user"
    if role is not None and role != home:
        out.error("misplaced_tool_use", path, f"{path} is in a {role} turn; Converse puts {key} blocks in {home} turns.")
    if not isinstance(block, dict):
        code = "invalid_tool_use" if key == "toolUse" else "invalid_tool_result"
        out.error(code, path, f"{path} is {_kind(block)}; it must be an object.")
        return
    tool_use_id = block.get("toolUseId")
    if key == "toolUse":
        name, arguments = block.get("name"), block.get("input")
        if not isinstance(tool_use_id, str) or not tool_use_id or not isinstance(name, str) or not name:
            out.error("invalid_tool_use", path, f"{path} needs a 'toolUseId' and a 'name', both non-empty strings.")
        if not isinstance(arguments, dict):
            hint = " Parse it: Converse takes the arguments as a JSON object, not a string." if isinstance(arguments, str) else ""
            out.error("invalid_tool_use", f"{path}.input", f"{path}.input is {_kind(arguments)}; it must be an object.{hint}")
        if isinstance(tool_use_id, str):
            tools.call_ids.add(tool_use_id)
        if isinstance(name, str) and tools.names is not None and name not in tools.names:
            out.warn("unknown_tool", f"{path}.name", f"{path} uses {name!r}, which toolConfig does not declare.")
        return
    if not isinstance(tool_use_id, str) or tool_use_id not in tools.call_ids:
        out.error(
            "tool_result_without_call", f"{path}.toolUseId",
            f"{path}.toolUseId is {_show(tool_use_id)}, which no earlier toolUse block has.",
        )
    content = block.get("content")
    if not isinstance(content, list) or not all(
        isinstance(c, dict) and c.keys() & {"text", "json", "image", "document"} for c in content
    ):
        out.error(
            "invalid_tool_result", f"{path}.content",
            f'{path}.content is {_show(content)}; it must be a list of {{"text": ...}} or {{"json": {{...}}}} blocks.',
        )
    if "status" in block and block["status"] not in ("success", "error"):
        out.error("invalid_tool_result", f"{path}.status", f"{path}.status is {_show(block['status'])}; use 'success' or 'error'.")
