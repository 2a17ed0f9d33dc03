from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.domain.filters import ExampleFilter
from workbench.domain.tokens import openai_chat_tokens
from workbench.domain.validation import (
    RecordRef,
    Severity,
    Target,
    ValidationReport,
    check_combined_counts,
    rules_for,
    validate_records,
)
from workbench.errors import InvalidInput
from workbench.services import datasets, importing, validating
from workbench.services.splits import split_dataset
from workbench.store import Store

T = Target
E = Severity.ERROR
W = Severity.WARNING


# --- record builders -------------------------------------------------------------------------------


def m(role: Any, content: Any = "Hi", **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **extra}


SYS, USER, BOT = m("system", "You are terse."), m("user", "Hi"), m("assistant", "Hello.")


def oa(*messages: Any, **top: Any) -> dict[str, Any]:
    return {"messages": list(messages), **top}


def haiku(*messages: Any, **top: Any) -> dict[str, Any]:
    return {"system": "You are terse.", "messages": list(messages), **top}


def nm(role: Any, *items: Any) -> dict[str, Any]:
    return {"role": role, "content": list(items)}


NU, NA = nm("user", {"text": "Hi"}), nm("assistant", {"text": "Hello."})


def nova(*messages: Any, **top: Any) -> dict[str, Any]:
    return {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "You are terse."}], "messages": list(messages), **top}


def media(kind: str = "image", uri: str = "s3://ft-bucket/media/cat_1.png", fmt: str = "png") -> dict[str, Any]:
    return {kind: {"format": fmt, "source": {"s3Location": {"uri": uri}}}}


def pc(prompt: Any = "Hi", completion: Any = "Hello.", **extra: Any) -> dict[str, Any]:
    return {"prompt": prompt, "completion": completion, **extra}


VALID = {
    T.OPENAI: oa(SYS, USER, BOT),
    T.BEDROCK_CLAUDE_HAIKU: haiku(USER, BOT),
    T.BEDROCK_NOVA: nova(NU, NA),
    T.BEDROCK_LLAMA: pc(),
    T.BEDROCK_LLAMA32: nova(NU, NA),
    T.BEDROCK_TITAN: pc(),
}

# Tool use, OpenAI shape (https://platform.openai.com/docs/guides/fine-tuning, function-calling example).
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


def call(call_id: Any = "call_1", name: Any = "lookup", arguments: Any = '{"q": "x"}', **extra: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}, **extra}


def calls(*items: Any) -> dict[str, Any]:
    """An assistant turn that calls tools and says nothing, as the guide's example writes it."""
    return {"role": "assistant", "tool_calls": list(items)}


def result(call_id: Any = "call_1", content: str = '{"ok": true}') -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


OA_TOOLS = oa(SYS, USER, calls(call()), result(), BOT, tools=TOOLS)

# Tool use, Bedrock Converse shape (toolConfig / toolUse / toolResult).
CONFIG = {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]}


def use(tool_use_id: Any = "t1", name: Any = "lookup", arguments: Any = None) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": tool_use_id, "name": name, "input": {"q": "x"} if arguments is None else arguments}}


def answer(tool_use_id: Any = "t1", content: Any = None) -> dict[str, Any]:
    return {"toolResult": {"toolUseId": tool_use_id, "content": [{"json": {"ok": True}}] if content is None else content}}


def nova_tools(*turns: Any, **top: Any) -> dict[str, Any]:
    return nova(NU, *turns, NA, **{"toolConfig": CONFIG, **top})


NOVA_TOOLS = nova_tools(nm("assistant", use()), nm("user", answer()))


def dataset(record: dict[str, Any], n: int) -> list[tuple[RecordRef, Any]]:
    return [(RecordRef(source_line=i + 1), record) for i in range(n)]


def check(target: Target, record: Any, *, split: str = "train", base_model: str | None = None) -> ValidationReport:
    """Validate `record` as line 1 of a set padded with valid records up to the target's minimum."""
    pad = max(rules_for(target, split=split, base_model=base_model).min_records - 1, 0)
    records = [(RecordRef(source_line=1), record)] + dataset(VALID[target], pad + 1)[1:]
    return validate_records(records, target, split=split, base_model=base_model)


def found_at(report: ValidationReport, line: int = 1) -> set[tuple[str, Severity]]:
    """Return (code, severity) of every finding about a line, grouped findings included."""
    return {
        (f.code, f.severity)
        for f in report.errors + report.warnings
        if f.source_line == line or any(r.source_line == line for r in f.records)
    }


# --- one failing and one passing record per rule, per target --------------------------------------

FUNCTION_CALL = {"name": "lookup", "arguments": "{}"}

RULES = [
    # OpenAI: the cookbook's format errors (openai-cookbook Chat_finetuning_data_prep.ipynb) and the
    # fine-tuning guide's rules (https://platform.openai.com/docs/guides/fine-tuning).
    pytest.param(T.OPENAI, ["not", "an object"], VALID[T.OPENAI], "data_type", E, None, id="openai-data_type"),
    pytest.param(T.OPENAI, {}, VALID[T.OPENAI], "missing_messages_list", E, None, id="openai-no-messages"),
    pytest.param(T.OPENAI, {"messages": []}, VALID[T.OPENAI], "missing_messages_list", E, None, id="openai-empty-messages"),
    pytest.param(T.OPENAI, {"messages": "Hi"}, VALID[T.OPENAI], "missing_messages_list", E, None, id="openai-messages-str"),
    pytest.param(T.OPENAI, oa(SYS, "Hi", BOT), VALID[T.OPENAI], "invalid_type", E, None, id="openai-message-not-object"),
    pytest.param(T.OPENAI, oa(SYS, {"role": "user"}, BOT), VALID[T.OPENAI], "message_missing_key", E, None, id="openai-message_missing_key"),
    pytest.param(
        T.OPENAI, oa(SYS, m("user", refusal="no"), BOT), oa(SYS, m("user", name="bob"), BOT),
        "message_unrecognized_key", E, None, id="openai-message_unrecognized_key",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, m("bot", "42"), USER, BOT), oa(SYS, USER, m("function", "42", name="lookup"), BOT),
        "unrecognized_role", E, None, id="openai-unrecognized_role",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, {"role": "assistant"}), oa(SYS, USER, calls(call())), "message_missing_key", E, None,
        id="openai-content-may-be-left-out-only-beside-a-tool-call",
    ),
    # OpenAI tool calling.
    pytest.param(
        T.OPENAI, {**OA_TOOLS, "tools": [{"type": "function", "function": {"parameters": {}}}]}, OA_TOOLS,
        "invalid_tool_definition", E, None, id="openai-tool-without-name",
    ),
    pytest.param(
        T.OPENAI, {**OA_TOOLS, "tools": {"lookup": {}}}, OA_TOOLS, "invalid_tool_definition", E, None,
        id="openai-tools-not-a-list",
    ),
    pytest.param(
        # A control or bidi-override character in a function name passed validation and failed the job.
        T.OPENAI, {**OA_TOOLS, "tools": [{"type": "function", "function": {"name": "look\u202eup\x01", "parameters": {}}}]},
        OA_TOOLS, "invalid_tool_definition", E, None, id="openai-tool-name-outside-a-z-0-9-_-",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, m("user", tool_calls=[call()]), BOT, tools=TOOLS), OA_TOOLS, "misplaced_tool_calls", E, None,
        id="openai-tool_calls-on-user",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, m("assistant", "Hello.", tool_call_id="call_1"), tools=TOOLS), OA_TOOLS,
        "misplaced_tool_calls", E, None, id="openai-tool_call_id-on-assistant",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, calls(call(call_id=None)), BOT, tools=TOOLS), oa(SYS, USER, calls(call()), BOT, tools=TOOLS),
        "invalid_tool_call", E, None, id="openai-tool-call-without-id",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, {"role": "assistant", "tool_calls": []}, BOT), OA_TOOLS, "invalid_tool_call", E, None,
        id="openai-empty-tool_calls",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, calls(call(arguments={"q": "x"})), tools=TOOLS), oa(SYS, USER, calls(call()), tools=TOOLS),
        "tool_arguments_not_json_string", E, None, id="openai-arguments-object",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, calls(call(arguments="q=x")), tools=TOOLS),
        oa(SYS, USER, calls(call(arguments="{}")), tools=TOOLS), "tool_arguments_not_json_string", E, None,
        id="openai-arguments-not-json",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, calls(call()), {"role": "tool", "content": "42"}, BOT, tools=TOOLS), OA_TOOLS,
        "missing_tool_call_id", E, None, id="openai-tool-result-without-id",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, calls(call()), result("call_2"), BOT, tools=TOOLS), OA_TOOLS, "tool_result_without_call",
        E, None, id="openai-tool-result-for-no-call",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, calls(call(name="search")), tools=TOOLS), oa(SYS, USER, calls(call(name="search"))),
        "unknown_tool", W, None, id="openai-unknown_tool",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, m("user", ""), BOT), oa(SYS, USER, m("assistant", "", function_call=FUNCTION_CALL), BOT),
        "missing_content", E, None, id="openai-missing_content-empty",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, m("user", 42), BOT), oa(SYS, m("user", [{"type": "text", "text": "Hi"}]), BOT),
        "missing_content", E, None, id="openai-missing_content-not-str",
    ),
    # Vision fine-tuning (https://platform.openai.com/docs/guides/vision-fine-tuning): content parts and images.
    pytest.param(
        T.OPENAI, oa(SYS, m("user", [{"type": "image", "url": "https://x/a.png"}]), BOT),
        oa(SYS, m("user", [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]), BOT),
        "invalid_content_part", E, None, id="openai-invalid_content_part",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, m("assistant", [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}])),
        VALID[T.OPENAI], "image_in_assistant", E, None, id="openai-image_in_assistant",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, m("user", [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}] * 11), BOT),
        VALID[T.OPENAI], "too_many_images", E, None, id="openai-too_many_images",
    ),
    pytest.param(T.OPENAI, oa(SYS, m("user", None), BOT), VALID[T.OPENAI], "missing_content", E, None, id="openai-missing_content-null"),
    pytest.param(
        T.OPENAI, oa(SYS, USER), VALID[T.OPENAI], "example_missing_assistant_message", E, None,
        id="openai-example_missing_assistant_message",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, m("assistant", "Hello.", weight=0.5)), oa(SYS, USER, m("assistant", "Hello.", weight=1)),
        "invalid_weight", E, None, id="openai-invalid_weight-half",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, m("assistant", "Hello.", weight=True)), oa(SYS, USER, m("assistant", "Hello.", weight=0)),
        "invalid_weight", E, None, id="openai-invalid_weight-bool",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, m("assistant", "Hello.", weight="1")), oa(SYS, USER, m("assistant", "Hello.", weight=1.0)),
        "invalid_weight", E, None, id="openai-invalid_weight-str",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, m("user", weight=1), BOT), oa(SYS, USER, m("assistant", "Hello.", weight=1)),
        "misplaced_weight", W, None, id="openai-misplaced_weight",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, m("user", name=5), BOT), oa(SYS, m("user", name="bob"), BOT), "invalid_name", E, None,
        id="openai-name-not-str",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, BOT, metadata={"source": "x"}), oa(SYS, USER, BOT, tools=[]), "unrecognized_key", W, None,
        id="openai-unrecognized_key",
    ),
    pytest.param(T.OPENAI, oa(USER, BOT), VALID[T.OPENAI], "missing_system_message", W, None, id="openai-no-system"),
    pytest.param(T.OPENAI, oa(SYS, BOT), VALID[T.OPENAI], "missing_user_message", W, None, id="openai-no-user"),
    pytest.param(
        T.OPENAI, oa(SYS, USER, BOT, m("user", "Thanks")), oa(SYS, USER, BOT, USER, BOT), "last_not_assistant", W, None,
        id="openai-last_not_assistant",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, m("assistant", "A", weight=0)), oa(SYS, USER, m("assistant", "A", weight=0), USER, BOT),
        "all_weights_zero", W, None, id="openai-all_weights_zero",
    ),
    pytest.param(T.OPENAI, oa(SYS, m("user", "  \n"), BOT), VALID[T.OPENAI], "empty_content", W, None, id="openai-whitespace"),
    pytest.param(
        T.OPENAI, oa(SYS, USER, m("assistant", "word " * 66_000)), oa(SYS, USER, m("assistant", "word " * 60_000)),
        "too_many_tokens", W, None, id="openai-too_many_tokens-truncated",
    ),
    pytest.param(
        T.OPENAI, oa(SYS, USER, m("assistant", "word " * 4_100)), oa(SYS, USER, m("assistant", "word " * 4_000)),
        "too_many_tokens", W, "gpt-3.5-turbo-0613", id="openai-too_many_tokens-gpt35-0613",
    ),
    # Claude 3 Haiku (https://docs.aws.amazon.com/bedrock/latest/userguide/preparing-text-data.html and the
    # AWS sample validator, aws-samples/amazon-bedrock-samples .../claude-haiku/DataValidation/data_validation.py).
    pytest.param(T.BEDROCK_CLAUDE_HAIKU, 42, VALID[T.BEDROCK_CLAUDE_HAIKU], "data_type", E, None, id="haiku-data_type"),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(USER, BOT, metadata={}), {"messages": [USER, BOT]}, "forbidden_key", E, None,
        id="haiku-forbidden_key-top",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(m("user", weight=1), BOT), VALID[T.BEDROCK_CLAUDE_HAIKU], "forbidden_key", E, None,
        id="haiku-forbidden_key-message",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(USER, BOT, system=[{"text": "Be nice"}]), {"messages": [USER, BOT]},
        "invalid_type", E, None, id="haiku-system-list",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(m("user", [{"text": "Hi"}]), BOT), VALID[T.BEDROCK_CLAUDE_HAIKU], "invalid_type", E, None,
        id="haiku-content-list",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(["user", "Hi"], BOT), VALID[T.BEDROCK_CLAUDE_HAIKU], "invalid_type", E, None,
        id="haiku-message-not-object",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, {"system": "x"}, VALID[T.BEDROCK_CLAUDE_HAIKU], "missing_messages_list", E, None,
        id="haiku-missing_messages_list",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku({"role": "user"}, BOT), VALID[T.BEDROCK_CLAUDE_HAIKU], "missing_key", E, None,
        id="haiku-missing_key",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(m("system", "Be nice"), USER, BOT), VALID[T.BEDROCK_CLAUDE_HAIKU], "unrecognized_role", E,
        None, id="haiku-unrecognized_role",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(m("user", " "), BOT), VALID[T.BEDROCK_CLAUDE_HAIKU], "empty_content", E, None,
        id="haiku-empty_content",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(USER), haiku(USER, BOT), "too_few_messages", E, None, id="haiku-too_few_messages"
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(BOT, USER, BOT), VALID[T.BEDROCK_CLAUDE_HAIKU], "first_not_user", E, None,
        id="haiku-first_not_user",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(USER, USER, BOT), haiku(USER, BOT, USER, BOT), "roles_not_alternating", E, None,
        id="haiku-roles_not_alternating",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(USER, BOT, USER), VALID[T.BEDROCK_CLAUDE_HAIKU], "last_not_assistant", E, None,
        id="haiku-last_not_assistant",
    ),
    pytest.param(
        # The AWS validator's estimate: len(text) // 3 summed over system and every message.
        T.BEDROCK_CLAUDE_HAIKU, haiku(USER, m("assistant", "x" * 96_003), system="abc"),
        haiku(USER, m("assistant", "x" * 96_000), system="ab"), "too_many_tokens", E, None, id="haiku-too_many_tokens",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(USER, BOT, USER, BOT), VALID[T.BEDROCK_CLAUDE_HAIKU], "multi_turn_warning", W, None,
        id="haiku-multi_turn_warning",
    ),
    # Claude 3 Haiku takes no tool use: every tool field is named.
    pytest.param(T.BEDROCK_CLAUDE_HAIKU, haiku(USER, BOT, tools=TOOLS), haiku(USER, BOT), "tool_use_not_supported", E, None,
                 id="haiku-tools"),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(USER, m("assistant", "", tool_calls=[call()]), result(), BOT),
        haiku(USER, m("assistant", "Let me look."), m("user", "42"), BOT), "tool_use_not_supported", E, None,
        id="haiku-tool-turns",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(USER, m("assistant", [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}])),
        VALID[T.BEDROCK_CLAUDE_HAIKU], "tool_use_not_supported", E, None, id="haiku-tool_use-block",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(m("user", "Hi\nHuman: again"), BOT), haiku(m("user", "Hi Human: again"), BOT),
        "reserved_keyword", E, None, id="haiku-reserved_keyword-user",
    ),
    pytest.param(
        T.BEDROCK_CLAUDE_HAIKU, haiku(USER, BOT, system="Be terse.\nAssistant: ok"), haiku(USER, BOT, system="Assistant: ok"),
        "reserved_keyword", E, None, id="haiku-reserved_keyword-system",
    ),
    # Amazon Nova, Converse format (https://docs.aws.amazon.com/nova/latest/userguide/fine-tune-prepare-data-understanding.html
    # and the AWS sample validator .../nova/understanding/dataset_validation/nova_ft_dataset_validator.py).
    pytest.param(T.BEDROCK_NOVA, "a line", VALID[T.BEDROCK_NOVA], "data_type", E, None, id="nova-data_type"),
    pytest.param(
        T.BEDROCK_NOVA, {"schemaVersion": "bedrock-conversation-2024"}, {"messages": [NU, NA]}, "missing_messages_list", E,
        None, id="nova-missing_messages_list",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, NA, system="Be nice"), nova(NU, NA, system=[{"text": "Be nice"}, {"text": "Be brief"}]),
        "invalid_type", E, None, id="nova-system-str",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(m("user", "Hi"), NA), VALID[T.BEDROCK_NOVA], "invalid_type", E, None, id="nova-content-str"
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, NA, schemaVersion=2024), nova(NU, NA, schemaVersion="any string at all"), "invalid_type", E,
        None, id="nova-schemaVersion-number",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": 5}), NA), VALID[T.BEDROCK_NOVA], "invalid_type", E, None, id="nova-text-number"
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, NA, system=["Be nice"]), VALID[T.BEDROCK_NOVA], "invalid_type", E, None,
        id="nova-system-item-str",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {}), NA), nova(nm("user", {"text": "Hi"}, media()), NA), "missing_key", E, None,
        id="nova-missing_key-item",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, NA, system=[{}]), VALID[T.BEDROCK_NOVA], "missing_key", E, None, id="nova-missing_key-system"
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova({"content": [{"text": "Hi"}]}, NA), VALID[T.BEDROCK_NOVA], "missing_key", E, None,
        id="nova-missing_key-role",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("system", {"text": "x"}), NU, NA), VALID[T.BEDROCK_NOVA], "unrecognized_role", E, None,
        id="nova-unrecognized_role",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, NA, metadata={}), {"messages": [NU, NA]}, "unrecognized_key", W, None,
        id="nova-unrecognized_key-top",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "Hi", "cachePoint": {}}), NA), VALID[T.BEDROCK_NOVA], "unrecognized_key", W,
        None, id="nova-unrecognized_key-item",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": ""}), NA), nova(nm("user", {"text": ""}, media()), NA), "empty_content", E,
        None, id="nova-empty_content-text",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user"), NA), VALID[T.BEDROCK_NOVA], "empty_content", E, None, id="nova-empty_content-list"
    ),
    pytest.param(T.BEDROCK_NOVA, nova(NU), nova(NU, NA), "too_few_messages", E, None, id="nova-too_few_messages"),
    pytest.param(T.BEDROCK_NOVA, nova(NA, NU, NA), VALID[T.BEDROCK_NOVA], "first_not_user", E, None, id="nova-first_not_user"),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, NU, NA), nova(NU, NA, NU, NA), "roles_not_alternating", E, None,
        id="nova-roles_not_alternating",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, NA, NU), VALID[T.BEDROCK_NOVA], "last_not_assistant", E, None, id="nova-last_not_assistant"
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "User: hi"}), NA), nova(nm("user", {"text": "user: hi"}), NA),
        "reserved_token", E, None, id="nova-reserved_token-user",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, NA, system=[{"text": "[EOS] is the end"}]), VALID[T.BEDROCK_NOVA], "reserved_token", E,
        None, id="nova-reserved_token-system",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, nm("assistant", {"text": "Thought: easy"})), nova(NU, nm("assistant", {"text": "Thought about it: easy"})),
        "reserved_token", E, None, id="nova-reserved_token-assistant",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, nm("assistant", {"text": "Look"}, media())), nova(nm("user", {"text": "Look"}, media()), NA),
        "media_in_assistant", E, None, id="nova-media_in_assistant",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "x"}, media(fmt="bmp")), NA),
        nova(nm("user", {"text": "x"}, media(fmt="JPEG")), NA), "invalid_media_format", E, None,
        id="nova-invalid_media_format-image",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "x"}, media("video", "s3://ft-bucket/v.avi", "avi")), NA),
        nova(nm("user", {"text": "x"}, media("video", "s3://ft-bucket/v.mp4", "mp4")), NA), "invalid_media_format", E, None,
        id="nova-invalid_media_format-video",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "x"}, media(uri="https://example.com/a.png")), NA),
        nova(nm("user", {"text": "x"}, media(uri="s3://ft-bucket/a/b-c_d.e.png")), NA), "invalid_media_uri", E, None,
        id="nova-invalid_media_uri-scheme",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "x"}, media(uri="s3://ft-bucket/my cat.png")), NA), VALID[T.BEDROCK_NOVA],
        "invalid_media_uri", E, None, id="nova-invalid_media_uri-chars",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "x"}, {"image": {"format": "png"}}), NA),
        nova(nm("user", {"text": "x"}, media()), NA), "invalid_media", E, None, id="nova-invalid_media-no-source",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "x"}, {"image": "s3://ft-bucket/a.png"}), NA), VALID[T.BEDROCK_NOVA],
        "invalid_media", E, None, id="nova-invalid_media-str",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "x"}, *[media()] * 11), NA), nova(nm("user", {"text": "x"}, *[media()] * 10), NA),
        "too_many_images", E, None, id="nova-too_many_images",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "x"}, media("video", fmt="mp4"), media("video", fmt="mp4")), NA),
        nova(nm("user", {"text": "x"}, media("video", fmt="mp4")), NA), "too_many_videos", E, None, id="nova-too_many_videos",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "x"}, media(), media("video", fmt="mp4")), NA),
        nova(nm("user", {"text": "x"}, media(), media()), NA), "mixed_media", E, None, id="nova-mixed_media",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "x"}, media()), NA), VALID[T.BEDROCK_NOVA], "media_not_supported", E,
        "amazon.nova-micro-v1:0:128k", id="nova-micro-media_not_supported",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, nm("assistant", {"text": "x"}, {"toolUse": {"name": "f"}})), VALID[T.BEDROCK_NOVA],
        "tool_use", W, None, id="nova-tool_use",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "Hi", "reasoningContent": {}}), NA),
        nova(NU, nm("assistant", {"reasoningContent": {"reasoningText": {"text": "hm"}}}, {"text": "Hello."})),
        "forbidden_key", E, None, id="nova-reasoningContent-on-user",
    ),
    # Nova tool use, Converse shape (Bedrock API reference: ToolConfiguration, ToolUseBlock, ToolResultBlock).
    pytest.param(
        T.BEDROCK_NOVA, {**NOVA_TOOLS, "toolConfig": {"tools": [{"toolSpec": {"name": "lookup"}}]}}, NOVA_TOOLS,
        "invalid_tool_definition", E, None, id="nova-toolSpec-without-inputSchema",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova_tools(nm("assistant", {"text": "Looking."}), nm("user", {"text": "x"}, use())), NOVA_TOOLS,
        "misplaced_tool_use", E, None, id="nova-toolUse-in-user-turn",
    ),
    pytest.param(
        T.BEDROCK_NOVA, {**NOVA_TOOLS, "messages": [NU, nm("assistant", use(), answer()), nm("user", {"text": "ok"}), NA]},
        NOVA_TOOLS, "misplaced_tool_use", E, None, id="nova-toolResult-in-assistant-turn",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova_tools(nm("assistant", use(arguments='{"q": "x"}')), nm("user", answer())), NOVA_TOOLS,
        "invalid_tool_use", E, None, id="nova-toolUse-input-string",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova_tools(nm("assistant", use(tool_use_id="")), nm("user", answer())), NOVA_TOOLS,
        "invalid_tool_use", E, None, id="nova-toolUse-without-id",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova_tools(nm("assistant", use()), nm("user", answer("t2"))), NOVA_TOOLS,
        "tool_result_without_call", E, None, id="nova-toolResult-for-no-call",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova_tools(nm("assistant", use()), nm("user", answer(content="ok"))),
        nova_tools(nm("assistant", use()), nm("user", answer(content=[{"text": "ok"}]))), "invalid_tool_result", E, None,
        id="nova-toolResult-content-string",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova_tools(nm("assistant", use(name="search")), nm("user", answer())),
        nova(NU, nm("assistant", use(name="search")), nm("user", answer()), NA), "unknown_tool", W, None,
        id="nova-unknown_tool",
    ),
    # Nova base-model rules: Nova 2's media formats (nova-2-sft-data-prep), Nova 1's content items (the validator).
    pytest.param(
        T.BEDROCK_NOVA, nova(nm("user", {"text": "x"}, media(fmt="webp")), NA),
        nova(nm("user", {"text": "x"}, media(fmt="gif")), NA), "media_format_not_supported", E,
        "amazon.nova-2-lite-v1:0:256k", id="nova2-media_format_not_supported",
    ),
    pytest.param(
        T.BEDROCK_NOVA, nova(NU, nm("assistant", {"reasoningContent": {"reasoningText": {"text": "hm"}}}, {"text": "Hello."})),
        VALID[T.BEDROCK_NOVA], "block_not_supported", E, "amazon.nova-lite-v1:0:300k", id="nova1-block_not_supported",
    ),
    # Llama 3.2 is checked in the Converse shape, with Llama's own caps and no tool use.
    pytest.param(
        T.BEDROCK_LLAMA32, nova(NU, NA, system=[{"text": "a"}, {"text": "b"}]), VALID[T.BEDROCK_LLAMA32], "too_many_system_items", E,
        None, id="llama32-too_many_system_items",
    ),
    pytest.param(
        T.BEDROCK_LLAMA32, nova(nm("user", {"text": "x"}, media()), NA), VALID[T.BEDROCK_LLAMA32], "media_not_supported", E,
        "meta.llama3-2-3b-instruct-v1:0:128k", id="llama32-text-model-media_not_supported",
    ),
    pytest.param(
        T.BEDROCK_LLAMA32, nova(NU, nm("assistant", use()), nm("user", answer()), NA),
        nova(NU, nm("assistant", {"text": "Looking."}), nm("user", {"text": "42"}), NA), "tool_use_not_supported", E, None,
        id="llama32-tool-blocks",
    ),
    pytest.param(
        T.BEDROCK_LLAMA32, nova(NU, NA, toolConfig=CONFIG), nova(NU, NA), "tool_use_not_supported", E, None,
        id="llama32-toolConfig",
    ),
    pytest.param(
        T.BEDROCK_LLAMA32, nova(nm("user", {"text": "word " * 16_100}), NA), VALID[T.BEDROCK_LLAMA32], "too_many_tokens",
        E, None, id="llama32-too_many_tokens",
    ),
    # Llama 3.1 and Titan: prompt/completion (https://docs.aws.amazon.com/bedrock/latest/userguide/preparing-text-data.html).
    pytest.param(T.BEDROCK_LLAMA, None, pc(), "data_type", E, None, id="llama-data_type"),
    pytest.param(T.BEDROCK_LLAMA, {"completion": "x"}, pc(), "missing_key", E, None, id="llama-missing_key-prompt"),
    pytest.param(T.BEDROCK_LLAMA, oa(USER, BOT), pc(), "missing_key", E, None, id="llama-chat-record"),
    pytest.param(T.BEDROCK_LLAMA, pc(completion=5), pc(), "invalid_type", E, None, id="llama-invalid_type"),
    pytest.param(T.BEDROCK_LLAMA, pc(completion=" "), pc(), "empty_content", E, None, id="llama-empty-completion"),
    pytest.param(T.BEDROCK_LLAMA, pc(prompt=""), pc(), "empty_content", W, None, id="llama-empty-prompt"),
    pytest.param(T.BEDROCK_LLAMA, pc(system="Be nice"), pc(), "forbidden_key", E, None, id="llama-system"),
    pytest.param(T.BEDROCK_LLAMA, pc(source="faq"), pc(), "unrecognized_key", W, None, id="llama-unrecognized_key"),
    pytest.param(T.BEDROCK_TITAN, 3.5, pc(), "data_type", E, None, id="titan-data_type"),
    pytest.param(T.BEDROCK_TITAN, {"prompt": "x"}, pc(), "missing_key", E, None, id="titan-missing_key"),
    pytest.param(T.BEDROCK_TITAN, pc(completion=""), pc(), "empty_content", E, None, id="titan-empty-completion"),
    pytest.param(
        T.BEDROCK_TITAN, pc(prompt="word " * 4_100), pc(prompt="word " * 4_000), "too_many_tokens", E, None,
        id="titan-too_many_tokens",
    ),
    pytest.param(
        T.BEDROCK_LLAMA, pc(prompt="word " * 16_100), pc(prompt="word " * 15_900), "too_many_tokens", E, None,
        id="llama-too_many_tokens",
    ),
    pytest.param(T.BEDROCK_LLAMA, pc(tools=TOOLS), pc(), "tool_use_not_supported", E, None, id="llama-tools"),
    pytest.param(
        T.BEDROCK_TITAN, pc(functions=[{"name": "lookup"}]), pc(), "tool_use_not_supported", E, None, id="titan-functions"
    ),
]


@pytest.mark.parametrize(("target", "bad", "good", "code", "severity", "base_model"), RULES)
def test_rule_fails_the_bad_record(target, bad, good, code, severity, base_model):
    report = check(target, bad, base_model=base_model)
    assert (code, severity) in found_at(report)
    if severity is E:
        assert not report.ok
        assert report.error_positions[0] == 0


@pytest.mark.parametrize(("target", "bad", "good", "code", "severity", "base_model"), RULES)
def test_rule_passes_the_good_record(target, bad, good, code, severity, base_model):
    report = check(target, good, base_model=base_model)
    assert code not in {c for c, _ in found_at(report)}


NOVA2 = "amazon.nova-2-lite-v1:0:256k"  # tool blocks alone in a content item are Nova 2 shapes (the default, Lite, is Nova 1)


def test_nova_tool_turn_is_only_a_warning():
    record = nova(NU, nm("assistant", {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}))
    assert found_at(check(T.BEDROCK_NOVA, record, base_model=NOVA2)) == {("tool_use", W)}


def test_tool_examples_in_the_documented_shape_pass():
    assert found_at(check(T.OPENAI, OA_TOOLS)) == set()
    # Nova 2 accepts the Converse tool shape; AWS's warning that such jobs may fail stays a warning per block.
    assert found_at(check(T.BEDROCK_NOVA, NOVA_TOOLS, base_model=NOVA2)) == {("tool_use", W)}


@pytest.mark.parametrize(
    ("target", "record", "fields"),
    [
        (T.BEDROCK_CLAUDE_HAIKU, haiku(USER, m("assistant", "", tool_calls=[call()]), result(), BOT, tools=TOOLS),
         {"tools", "messages[1].tool_calls", "messages[2].tool_call_id", "messages[2].role"}),
        (T.BEDROCK_LLAMA32, nova(NU, nm("assistant", use()), nm("user", answer()), NA, toolConfig=CONFIG),
         {"toolConfig", "messages[1].content[0].toolUse", "messages[2].content[0].toolResult"}),
        (T.BEDROCK_LLAMA, pc(tools=TOOLS, tool_choice="auto"), {"tools", "tool_choice"}),
    ],
)
def test_unsupported_tool_use_is_one_error_per_field_it_names(target, record, fields):
    report = check(target, record)
    found = [f for f in report.errors if f.source_line == 1]
    assert {f.field for f in found if f.code == "tool_use_not_supported"} == fields
    assert all(f.field in f.message for f in found if f.code == "tool_use_not_supported")
    # Reported once, as tool use, not again as an unknown key or role.
    assert not {f.code for f in found} & {"forbidden_key", "unrecognized_key", "unrecognized_role"}


def test_broken_turn_order_is_not_also_called_multi_turn():
    assert found_at(check(T.BEDROCK_CLAUDE_HAIKU, haiku(BOT, USER, BOT))) == {("first_not_user", E)}


def test_messages_quote_values_as_json():
    report = check(T.OPENAI, oa(SYS, USER, m("assistant", "Hello.", weight=True)))
    [finding] = [f for f in report.errors if f.code == "invalid_weight"]
    assert finding.message.startswith("messages[2].weight is true;")


def test_llama32_multimodal_accepts_media_and_nova_accepts_several_system_items():
    record = nova(nm("user", {"text": "x"}, media()), NA)
    assert not found_at(check(T.BEDROCK_LLAMA32, record, base_model="meta.llama3-2-11b-instruct-v1:0:128k"))
    two_system = nova(NU, NA, system=[{"text": "a"}, {"text": "b"}])
    assert not found_at(check(T.BEDROCK_NOVA, two_system))


# --- whole datasets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", list(Target))
def test_minimal_valid_dataset_passes(target):
    n = rules_for(target).min_records
    report = validate_records(dataset(VALID[target], n), target)
    assert report.ok, report.errors
    assert report.errors == []
    assert report.record_count == n


@pytest.mark.parametrize("target", list(Target))
def test_clean_dataset_has_no_findings_at_all(target):
    report = validate_records(dataset(VALID[target], 100), target)
    assert (report.errors, report.warnings) == ([], [])
    assert report.error_positions == []


COUNTS = [
    (T.OPENAI, "train", 9, "too_few_examples"),
    (T.OPENAI, "train", 10, None),
    (T.OPENAI, "validation", 0, "too_few_examples"),
    (T.OPENAI, "validation", 1, None),
    (T.BEDROCK_CLAUDE_HAIKU, "train", 31, "too_few_examples"),
    (T.BEDROCK_CLAUDE_HAIKU, "train", 32, None),
    (T.BEDROCK_CLAUDE_HAIKU, "train", 10_000, None),
    (T.BEDROCK_CLAUDE_HAIKU, "train", 10_001, "too_many_examples"),
    (T.BEDROCK_CLAUDE_HAIKU, "validation", 31, "too_few_examples"),
    (T.BEDROCK_CLAUDE_HAIKU, "validation", 1_000, None),
    (T.BEDROCK_CLAUDE_HAIKU, "validation", 1_001, "too_many_examples"),
    (T.BEDROCK_NOVA, "train", 7, "too_few_examples"),
    (T.BEDROCK_NOVA, "train", 8, None),
    (T.BEDROCK_NOVA, "train", 20_000, None),
    (T.BEDROCK_NOVA, "train", 20_001, "too_many_examples"),
    (T.BEDROCK_LLAMA, "train", 0, "too_few_examples"),
    (T.BEDROCK_LLAMA, "train", 10_000, None),
    (T.BEDROCK_LLAMA, "train", 10_001, "too_many_examples"),
    (T.BEDROCK_LLAMA, "validation", 1_000, None),
    (T.BEDROCK_LLAMA, "validation", 1_001, "too_many_examples"),
    (T.BEDROCK_LLAMA32, "train", 10_000, None),
    (T.BEDROCK_LLAMA32, "train", 10_001, "too_many_examples"),
    (T.BEDROCK_LLAMA32, "validation", 1_001, "too_many_examples"),
    (T.BEDROCK_TITAN, "train", 0, "too_few_examples"),
    (T.BEDROCK_TITAN, "train", 1, None),
]


@pytest.mark.parametrize(("target", "split", "n", "code"), COUNTS)
def test_record_count_limits(target, split, n, code):
    report = validate_records(dataset(VALID[target], n), target, split=split)
    count_errors = [f for f in report.errors if f.code in ("too_few_examples", "too_many_examples")]
    if code is None:
        assert report.ok, report.errors
    else:
        assert [f.code for f in count_errors] == [code]
        assert count_errors[0].example_id is None and count_errors[0].source_line is None
        assert f"{n:,} records" in count_errors[0].message


@pytest.mark.parametrize(
    ("target", "n", "warned"),
    [(T.OPENAI, 49, True), (T.OPENAI, 50, False), (T.BEDROCK_NOVA, 99, True), (T.BEDROCK_NOVA, 100, False)],
)
def test_below_recommended_size_is_a_warning(target, n, warned):
    report = validate_records(dataset(VALID[target], n), target)
    assert report.ok
    assert ("below_recommended_examples" in {f.code for f in report.warnings}) is warned


def test_haiku_validation_file_over_one_gigabyte_is_an_error():
    big = haiku(USER, m("assistant", "x" * 34_000_000))
    report = validate_records(dataset(big, 32), T.BEDROCK_CLAUDE_HAIKU, split="validation")
    assert "file_too_large" in {f.code for f in report.errors}
    small = validate_records(dataset(VALID[T.BEDROCK_CLAUDE_HAIKU], 32), T.BEDROCK_CLAUDE_HAIKU, split="validation")
    assert small.ok


def image_record(bucket: str = "ft-bucket") -> dict[str, Any]:
    return nova(nm("user", {"text": "What is this?"}, media(uri=f"s3://{bucket}/img/1.png")), NA)


LITE = "amazon.nova-lite-v1:0:300k"


@pytest.mark.parametrize(
    ("records", "base_model", "split", "code", "severity"),
    [
        ([VALID[T.BEDROCK_NOVA]] * 4 + [image_record()] * 4, LITE, "train", "mixed_dataset_media", E),
        ([image_record("ft-bucket")] * 4 + [image_record("other-bucket")] * 4, LITE, "train", "media_bucket_mismatch", E),
        ([image_record()] * 8, None, "train", "media_model_unknown", W),
        ([VALID[T.BEDROCK_NOVA]], "amazon.nova-2-lite-v1:0:256k", "validation", "validation_not_supported", W),
    ],
)
def test_nova_dataset_rules(records, base_model, split, code, severity):
    refs = [(RecordRef(source_line=i + 1), r) for i, r in enumerate(records)]
    report = validate_records(refs, T.BEDROCK_NOVA, split=split, base_model=base_model)
    finding = next(f for f in report.errors + report.warnings if f.code == code)
    assert finding.severity is severity
    assert finding.example_id is None


@pytest.mark.parametrize(
    ("records", "base_model", "split"),
    [
        ([image_record()] * 100, LITE, "train"),  # one kind, one bucket, a model that takes images
        ([VALID[T.BEDROCK_NOVA]], LITE, "validation"),  # Nova 1 takes a validation set
    ],
)
def test_nova_dataset_rules_pass(records, base_model, split):
    refs = [(RecordRef(source_line=i + 1), r) for i, r in enumerate(records)]
    report = validate_records(refs, T.BEDROCK_NOVA, split=split, base_model=base_model)
    assert (report.errors, report.warnings) == ([], [])


@pytest.mark.parametrize(
    ("target", "train", "validation", "expected"),
    [
        (T.BEDROCK_CLAUDE_HAIKU, 9_000, 1_001, ["too_many_total_examples"]),
        (T.BEDROCK_CLAUDE_HAIKU, 9_000, 1_000, []),
        (T.BEDROCK_NOVA, 20_000, 5_000, []),
        ("openai", 50_000, 5_000, []),
    ],
)
def test_combined_train_and_validation_counts(target, train, validation, expected):
    assert [f.code for f in check_combined_counts(target, train, validation)] == expected


# --- reporting --------------------------------------------------------------------------------------


def test_finding_names_the_field_and_where_to_find_it():
    records = [(RecordRef(example_id=7, source_line=12), haiku(USER, USER, BOT))]
    records += dataset(VALID[T.BEDROCK_CLAUDE_HAIKU], 32)
    report = validate_records(records, T.BEDROCK_CLAUDE_HAIKU)
    [finding] = [f for f in report.errors if f.code == "roles_not_alternating"]
    assert (finding.example_id, finding.source_line, finding.record_index) == (7, 12, 0)
    assert finding.field == "messages[1].role"
    assert 'messages[0] and messages[1] are both "user"' in finding.message


def test_repeated_findings_beyond_the_cap_fold_into_one():
    records = dataset({"messages": "nope"}, 10)
    report = validate_records(records, T.OPENAI, max_findings_per_code=3)
    folded = [f for f in report.errors if f.code == "missing_messages_list"]
    assert [f.count for f in folded] == [1, 1, 1, 7]
    assert folded[-1].example_id is None
    assert [r.source_line for r in folded[-1].records] == [4, 5, 6, 7, 8, 9, 10]
    assert "7 more records" in folded[-1].message
    assert report.counts_by_code["missing_messages_list"] == 10
    assert report.error_count == 10
    assert report.error_positions == list(range(10))


def test_no_cap_lists_every_finding():
    report = validate_records(dataset({"messages": "nope"}, 60), T.OPENAI, max_findings_per_code=None)
    assert len([f for f in report.errors if f.code == "missing_messages_list"]) == 60


def test_dataset_shape_warnings_are_one_finding():
    report = validate_records(dataset(oa(USER, BOT), 20), T.OPENAI)
    [finding] = [f for f in report.warnings if f.code == "missing_system_message"]
    assert finding.count == 20
    assert finding.example_id is None
    assert finding.message.startswith("20 of 20 records have no system message (e.g. line 1, line 2, line 3, ...)")


def test_report_json_shape():
    records = [(RecordRef(example_id=3), oa(SYS, USER))] + dataset(VALID[T.OPENAI], 10)
    data = validate_records(records, T.OPENAI).to_json_dict()
    assert data["ok"] is False
    assert {"ok", "errors", "warnings", "record_count", "tokenizer_label", "token_limit"} <= data.keys()
    [error] = data["errors"]
    assert {"code", "message", "example_id", "source_line"} <= error.keys()
    assert (error["code"], error["example_id"], error["source_line"]) == ("example_missing_assistant_message", 3, None)


@pytest.mark.parametrize(
    ("target", "base_model", "label", "limit", "exact"),
    [
        (T.OPENAI, None, "o200k_base (exact)", 65_536, True),
        (T.OPENAI, "gpt-3.5-turbo-0125", "cl100k_base (exact)", 16_385, True),
        (T.BEDROCK_CLAUDE_HAIKU, None, "estimate: chars/3 (AWS sample validator)", 32_000, False),
        (T.BEDROCK_NOVA, None, "cl100k_base (proxy; Nova's tokenizer is not published)", None, False),
        (T.BEDROCK_LLAMA, None, "cl100k_base (proxy for the Llama 3 tokenizer)", 16_000, False),
        (T.BEDROCK_LLAMA32, None, "cl100k_base (proxy for the Llama 3 tokenizer)", 16_000, False),
        (T.BEDROCK_TITAN, None, "cl100k_base (proxy; Titan's tokenizer is not published)", 4_096, False),
    ],
)
def test_report_says_how_tokens_were_counted(target, base_model, label, limit, exact):
    report = validate_records(dataset(VALID[target], 1), target, base_model=base_model)
    assert (report.tokenizer_label, report.token_limit, report.tokens_exact) == (label, limit, exact)


def test_token_counts_per_record():
    openai = validate_records(dataset(VALID[T.OPENAI], 2), T.OPENAI)
    assert openai.token_counts == [openai_chat_tokens(VALID[T.OPENAI]["messages"], "o200k_base")] * 2
    haiku_report = validate_records(dataset(haiku(USER, m("assistant", "x" * 30)), 1), T.BEDROCK_CLAUDE_HAIKU)
    assert haiku_report.token_counts == [len("You are terse.") // 3 + len("Hi") // 3 + 10]
    assert haiku_report.total_tokens == haiku_report.token_counts[0]


def test_records_can_be_a_one_pass_generator():
    records = ((RecordRef(source_line=i), pc()) for i in range(3))
    assert validate_records(records, "bedrock-llama").record_count == 3


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: validate_records([], "bedrock-mistral"), "unknown target 'bedrock-mistral'"),
        (lambda: validate_records([], T.OPENAI, split="test"), "split must be 'train' or 'validation'"),
    ],
)
def test_bad_arguments_are_invalid_input(call, match):
    with pytest.raises(InvalidInput, match=match):
        call()


# --- never raises on arbitrary JSON ----------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "messages", "system", "role", "content", "text", "prompt", "completion", "schemaVersion", "weight", "name",
        "function_call", "image", "video", "format", "source", "s3Location", "uri", "reasoningContent", "toolUse",
    ]
) | st.text(max_size=4)
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats()
    | st.sampled_from(["user", "assistant", "system", "", " ", "User: hi", "png", "mp4", "s3://b/k.png", "s3://c/k.png"])
    | st.text(max_size=10)
)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5), max_leaves=25)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(JSON | st.dictionaries(KEYS, JSON, max_size=5), max_size=6), target=st.sampled_from(list(Target)))
def test_validate_records_never_raises(records, target):
    refs = [(RecordRef(source_line=i + 1), r) for i, r in enumerate(records)]
    report = validate_records(refs, target, max_findings_per_code=2)
    assert report.record_count == len(records) == len(report.token_counts)
    assert report.ok is (not report.errors)
    for record, count in zip(records, report.token_counts, strict=True):
        assert count >= 0
        if not isinstance(record, dict):
            assert count == 0
    report.to_json_dict()


def _or_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy | JSON


# Near-valid records: the right keys at the right depth with junk mixed in, to reach the deep checks.
MEDIA = st.fixed_dictionaries(
    {
        "format": _or_junk(st.sampled_from(["png", "mp4", "bmp"])),
        "source": _or_junk(st.fixed_dictionaries({"s3Location": _or_junk(st.fixed_dictionaries({"uri": SCALARS}))})),
    }
)
ITEM = st.fixed_dictionaries(
    {}, optional={"text": SCALARS, "image": _or_junk(MEDIA), "video": _or_junk(MEDIA), "reasoningContent": JSON, "toolUse": JSON}
)
MESSAGE = st.fixed_dictionaries(
    {},
    optional={
        "role": SCALARS, "content": _or_junk(st.lists(_or_junk(ITEM), max_size=4)), "weight": SCALARS, "name": SCALARS,
        "function_call": JSON,
    },
)
RECORD = st.fixed_dictionaries(
    {},
    optional={
        "messages": _or_junk(st.lists(_or_junk(MESSAGE), max_size=5)),
        "system": _or_junk(st.lists(_or_junk(st.fixed_dictionaries({}, optional={"text": SCALARS})), max_size=3)),
        "schemaVersion": SCALARS, "prompt": SCALARS, "completion": SCALARS,
    },
)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(RECORD, max_size=5),
    target=st.sampled_from(list(Target)),
    base_model=st.sampled_from([None, "amazon.nova-micro-v1:0:128k", "meta.llama3-2-3b-instruct-v1:0:128k"]),
    split=st.sampled_from(["train", "validation"]),
)
def test_validate_records_never_raises_on_near_valid_records(records, target, base_model, split):
    refs = [(RecordRef(example_id=i), r) for i, r in enumerate(records)]
    report = validate_records(refs, target, split=split, base_model=base_model, max_findings_per_code=1)
    assert report.error_count >= len(report.error_positions)
    report.to_json_dict()


# --- through the service and the CLI: a real store in tmp_path, a real subprocess ---------------------


def _haiku_file(path: Path, n: int, start: int = 0) -> Path:
    path.write_bytes(b"".join(orjson.dumps(haiku(m("user", f"Question {i}"), m("assistant", f"Answer {i}"))) + b"\n"
                              for i in range(start, start + n)))
    return path


@pytest.fixture(scope="module")
def haiku_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """10,001 Claude 3 Haiku records split 90/10: one more than train + validation may hold together."""
    tmp = tmp_path_factory.mktemp("haiku")
    store = Store(tmp / "workbench.db")
    importing.import_path(store, _haiku_file(tmp / "train.jsonl", 10_001), "h", fmt="bedrock-claude")
    summary = split_dataset(store, "h", (0.9, 0.1, 0.0), seed=1)
    assert summary.counts["train"] + summary.counts["validation"] == 10_001
    return store


def test_service_checks_the_combined_train_and_validation_limit(haiku_store: Store) -> None:
    counts = datasets.facets(haiku_store, "h").splits
    for split in ("validation", "train", None):
        report = validating.validate_dataset(haiku_store, "h", "bedrock-claude-haiku", split=split)
        [finding] = [f for f in report.errors if f.code == "too_many_total_examples"]
        assert finding.message == (
            f"Train ({counts['train']:,}) and validation ({counts['validation']:,}) records add up to 10,001; "
            "Bedrock: Claude 3 Haiku takes at most 10,000 in total. Remove 1."
        )
        assert not report.ok
    # The other targets state no combined limit.
    assert "too_many_total_examples" not in validating.validate_dataset(haiku_store, "h", "bedrock-nova").counts_by_code

    # One record fewer is exactly at the limit.
    one = datasets.browse(haiku_store, "h", ExampleFilter(split="train"), page_size=1).examples[0].id or 0
    datasets.delete_examples(haiku_store, "h", [one])
    try:
        at_limit = validating.validate_dataset(haiku_store, "h", "bedrock-claude-haiku", split="train")
        assert "too_many_total_examples" not in at_limit.counts_by_code
    finally:
        datasets.undo_last_bulk(haiku_store, "h")


def test_cli_reports_the_combined_limit_and_the_rules_checked(haiku_store: Store) -> None:
    def validate(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "workbench", "--db", str(haiku_store.path), "datasets", "validate", "h",
             "--target", "bedrock-claude-haiku", "--split", "train", *extra],
            capture_output=True, text=True, timeout=300,
        )

    proc = validate("--json")
    assert proc.returncode == 1, proc.stderr
    data = orjson.loads(proc.stdout)
    assert data["ok"] is False
    assert [g["code"] for g in data["groups"] if g["severity"] == "error"] == ["too_many_total_examples"]
    assert any(r["source"].startswith("https://github.com/aws-samples/") for r in data["rules"])
    text = validate()
    assert f"REJECTED: {data['record_count']:,} records for bedrock-claude-haiku, 1 error," in text.stdout
    assert "add up to 10,001" in text.stdout and "Rules checked for bedrock-claude-haiku (" in text.stdout


def _split_haiku(store: Store, tmp_path: Path, fractions: tuple[float, float, float]) -> dict[str, int]:
    importing.import_path(store, _haiku_file(tmp_path / "h36.jsonl", 36), "h36", fmt="bedrock-claude")
    return split_dataset(store, "h36", fractions, seed=1).counts


def test_without_a_split_record_counts_are_judged_per_split_as_a_launch_does(store: Store, tmp_path: Path) -> None:
    """36 examples pass Claude 3 Haiku's 32-record minimum, but a launch trains on the 29 in the train split."""
    assert _split_haiku(store, tmp_path, (0.8, 0.1, 0.1)) == {"train": 29, "validation": 4, "test": 3}
    report = validating.validate_dataset(store, "h36", "bedrock-claude-haiku")
    assert not report.ok and report.record_count == 36
    assert [(f.code, f.message) for f in report.errors] == [
        ("too_few_examples", "The train split has 29 records; Bedrock: Claude 3 Haiku needs 32 to 10,000. Add 3."),
        ("too_few_examples", "The validation split has 4 records; Bedrock: Claude 3 Haiku needs 32 to 1,000. Add 28."),
    ]
    assert report.counts_by_code["too_few_examples"] == 2 == report.error_count
    # One split alone gives the same verdict on its own count.
    train = validating.validate_dataset(store, "h36", "bedrock-claude-haiku", split="train")
    assert [f.message for f in train.errors] == [report.errors[0].message]


def test_a_dataset_never_split_counts_every_example_as_training(store: Store, tmp_path: Path) -> None:
    importing.import_path(store, _haiku_file(tmp_path / "h.jsonl", 31), "h31", fmt="bedrock-claude")
    [finding] = validating.validate_dataset(store, "h31", "bedrock-claude-haiku").errors
    assert finding.message == ("The dataset (never split, so a launch trains on every example) has 31 records; "
                               "Bedrock: Claude 3 Haiku needs 32 to 10,000. Add 1.")
    importing.import_path(store, _haiku_file(tmp_path / "one.jsonl", 1, start=31), "h31")
    assert validating.validate_dataset(store, "h31", "bedrock-claude-haiku").ok


def test_a_validation_split_the_target_ignores_is_a_warning_not_a_count(store: Store, tmp_path: Path) -> None:
    """Nova 2 does not use a validation set: a launch sends none, so its size is no error."""
    records = [nova(m("user", [{"text": f"Q{i}"}]), m("assistant", [{"text": f"A{i}"}])) for i in range(12)]
    path = tmp_path / "n.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    importing.import_path(store, path, "n", fmt="bedrock-nova")
    split_dataset(store, "n", (0.75, 0.25, 0.0), seed=1)
    report = validating.validate_dataset(store, "n", "bedrock-nova", base_model="amazon.nova-2-lite-v1:0:256k")
    [ignored] = [f for f in report.warnings if f.code == "validation_not_supported"]
    assert ignored.message.startswith("The validation split has 3 records, but amazon.nova-2-lite")


def test_repeated_findings_are_one_group_with_the_true_count(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    path.write_bytes(b"".join(orjson.dumps(oa(m("user", f"Q{i}"), m("assistant", f"A{i}"), m("user", "Thanks"), m("assistant", "Bye")))
                              + b"\n" for i in range(120)))
    importing.import_path(store, path, "c")
    report = validating.validate_dataset(store, "c", "bedrock-llama")  # multi-turn into prompt/completion loses turns
    groups = {(g.severity, g.code): g for g in report.groups()}
    assert groups[(W, "conversion_loss")].count == 120
    assert len(report.warnings) < 120  # listed findings stop at 50; the count does not
    assert sum(g.count for g in groups.values() if g.severity is W) == report.warning_count
    assert len(groups[(W, "conversion_loss")].examples) == 5
    assert report.to_json_dict()["groups"][0]["count"] == groups[next(iter(groups))].count


def test_service_names_tool_use_a_target_cannot_train_on(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "tools.jsonl"
    records = [{**OA_TOOLS, "messages": [m("user", f"Q{i}"), *OA_TOOLS["messages"][2:]]} for i in range(60)]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    importing.import_path(store, path, "t")

    haiku_report = validating.validate_dataset(store, "t", "bedrock-claude-haiku")
    assert not haiku_report.ok
    [group] = [g for g in haiku_report.groups() if g.code == "tool_use_not_supported"]
    assert group.count == 60 == haiku_report.counts_by_code["tool_use_not_supported"]
    first = next(f for f in haiku_report.errors if f.code == "tool_use_not_supported")
    assert first.field == "tools" and first.example_id is not None
    assert "Bedrock: Claude 3 Haiku fine-tuning data has no place for" in first.message

    openai_report = validating.validate_dataset(store, "t", "openai")
    assert "tool_use_not_supported" not in openai_report.counts_by_code
    assert not [f for f in openai_report.errors if "tool" in f.code]
    nova_report = validating.validate_dataset(store, "t", "bedrock-nova")
    assert "tool_use_not_supported" not in nova_report.counts_by_code
    assert nova_report.counts_by_code["tool_use"] >= 60  # AWS's warning, once per tool block
