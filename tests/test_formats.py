"""Formats: detection, parsing with field-precise errors, rendering, and lossless round trips."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.domain.example import Example, Message, Role
from workbench.domain.formats import Format, FormatError, detect, is_definite, parse, render

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (CHAT, Format.OPENAI),
        ({"messages": [{"role": "system", "content": "s"}, *CHAT["messages"]]}, Format.OPENAI),
        ({"system": "s", **CHAT}, Format.BEDROCK_CLAUDE),
        ({"schemaVersion": "bedrock-conversation-2024", "messages": [{"role": "user", "content": [{"text": "a"}]}]}, Format.BEDROCK_NOVA),
        ({"system": [{"text": "s"}], "messages": []}, Format.BEDROCK_NOVA),
        ({"prompt": "p", "completion": "c"}, Format.PROMPT_COMPLETION),
        ({"instruction": "i", "input": "", "output": "o"}, Format.ALPACA),
        ({"conversations": [{"from": "human", "value": "a"}]}, Format.SHAREGPT),
        ({"text": "just text"}, None),
        ([1, 2], None),
        ("a string", None),
    ],
)
def test_detect(record: object, expected: Format | None) -> None:
    assert detect(record) == expected


def test_plain_chat_is_ambiguous_between_openai_and_claude() -> None:
    assert not is_definite(CHAT, Format.OPENAI)
    assert is_definite({"messages": [{"role": "system", "content": "s"}, *CHAT["messages"]]}, Format.OPENAI)


@pytest.mark.parametrize(
    ("record", "fmt", "field", "match"),
    [
        ({"messages": [{"role": "user", "content": "x"}, {"role": "bot", "content": "y"}]}, None, "messages[1].role", "'bot'"),
        ({"messages": [{"role": "user", "content": "x"}]}, None, "messages", "no assistant turn"),
        ({"messages": []}, None, "messages", "no turns"),
        ({"messages": "hello"}, None, "messages", "must be a list"),
        ({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "y"}]}, None, "messages[0].content", "must be a string"),
        ({"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "s"}, {"role": "assistant", "content": "y"}]}, None, "messages[1].role", "only come first"),
        ({"prompt": "p", "completion": None}, None, "completion", "found null"),
        ({"instruction": "i", "output": ["o"]}, None, "output", "found a list"),
        ({"system": 3, **CHAT}, Format.BEDROCK_CLAUDE, "system", "must be a string"),
        ({"schemaVersion": "x", "messages": [{"role": "user", "content": [{"image": {}}]}]}, None, "messages[0].content[0].image.format", "must be a string"),
        ({**CHAT, "tools": [{"type": "function", "function": {"description": "no name"}}]}, None, "tools[0].function.name", "must be a string"),
        ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": 3}}]}]}, None, "messages[1].tool_calls[0].function.arguments", "must be a string"),
        ({"messages": [{"role": "user", "content": "x", "tool_calls": []}, {"role": "assistant", "content": "y"}]}, None, "messages[0].content", None),
        ({"conversations": [{"from": "human", "value": "x"}, {"from": "function_call", "value": "not json"}]}, None, "conversations[1].value", "JSON text of a call"),
        ({"conversations": [{"from": "alien", "value": "x"}]}, None, "conversations[0].from", "'alien'"),
        ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": "1"}]}, None, "messages[1].weight", "number"),
        ({**CHAT, "metadata": [1]}, None, "metadata", "must be an object"),
    ],
)
def test_parse_errors_name_the_field(record: dict, fmt: Format | None, field: str, match: str | None) -> None:
    if match is None:  # a record that is fine: an empty tool_calls list on a user turn is no call
        assert parse(record, fmt).example.messages[0].tool_calls == []
        return
    with pytest.raises(FormatError, match=match) as info:
        parse(record, fmt)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_unrecognised_record_lists_its_keys() -> None:
    with pytest.raises(FormatError, match="found keys: foo, text"):
        parse({"text": "x", "foo": 1})


def test_unknown_keys_are_kept_in_metadata_with_a_warning() -> None:
    parsed = parse({**CHAT, "source": "crm", "metadata": {"task": "greeting"}})
    assert parsed.example.metadata == {"task": "greeting", "source": "crm"}
    assert parsed.warnings == ["source: unknown key for openai; kept in metadata"]


def test_hostile_text_is_kept_verbatim() -> None:
    hostile = "<script>alert(1)</script>'; DROP TABLE examples;-- \x00\x1b[31m"
    parsed = parse({"messages": [{"role": "user", "content": hostile}, {"role": "assistant", "content": "no"}]})
    assert parsed.example.messages[0].content == hostile


def test_alpaca_with_input_becomes_system_plus_user() -> None:
    parsed = parse({"instruction": "Classify", "input": "Feature X", "output": "yes"})
    assert parsed.example.system == "Classify"
    assert [m.content for m in parsed.example.messages] == ["Feature X", "yes"]
    assert render(parsed.example, Format.ALPACA).record == {"instruction": "Classify", "input": "Feature X", "output": "yes"}


def test_multi_turn_to_prompt_completion_reports_the_loss() -> None:
    example = Example(
        system="Be terse",
        messages=[
            Message(role=Role.USER, content="a"),
            Message(role=Role.ASSISTANT, content="b"),
            Message(role=Role.USER, content="c"),
            Message(role=Role.ASSISTANT, content="d", weight=1),
        ],
    )
    rendered = render(example, Format.PROMPT_COMPLETION)
    assert rendered.record == {"prompt": "Be terse\n\nUser: a\n\nAssistant: b\n\nUser: c", "completion": "d"}
    assert {loss.field for loss in rendered.lost} == {"messages", "messages[3].weight"}
    assert "messages: multi-turn conversation (4 turns) flattened into one prompt" in rendered.losses


def test_tool_turns_are_dropped_with_a_loss_where_unsupported() -> None:
    example = Example(
        messages=[
            Message(role=Role.USER, content="weather?"),
            Message(role=Role.TOOL, content="{\"t\": 20}"),
            Message(role=Role.ASSISTANT, content="20C"),
        ]
    )
    rendered = render(example, Format.BEDROCK_CLAUDE)
    assert [m["role"] for m in rendered.record["messages"]] == ["user", "assistant"]
    assert rendered.losses == ["messages[1]: tool result turn dropped: bedrock-claude has no place for it"]
    assert render(example, Format.SHAREGPT).losses == []


def test_nova_render_shape() -> None:
    example = parse({"system": "s", **CHAT}).example
    assert render(example, Format.BEDROCK_NOVA).record == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "s"}],
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}, {"role": "assistant", "content": [{"text": "Hello"}]}],
    }


# ------------------------------------------------------------------------------------- round trips

texts = st.text(min_size=0, max_size=40)
metadata = st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k != "metadata"), st.integers() | texts, max_size=3)


@st.composite
def conversations(draw: st.DrawFn, *, weights: bool, multi_turn: bool, tools: bool = False) -> Example:
    turns = draw(st.integers(1, 3)) if multi_turn else 1
    messages: list[Message] = []
    for _ in range(turns):
        messages.append(Message(role=Role.USER, content=draw(texts)))
        if tools and draw(st.booleans()):
            messages.append(Message(role=Role.TOOL, content=draw(texts)))
        weight = draw(st.sampled_from([None, 0.0, 1.0])) if weights else None
        messages.append(Message(role=Role.ASSISTANT, content=draw(texts), weight=weight))
    system = draw(st.none() | texts)
    return Example(system=system, messages=messages, metadata=draw(metadata))


ROUND_TRIPS = {
    Format.OPENAI: conversations(weights=True, multi_turn=True),
    Format.BEDROCK_CLAUDE: conversations(weights=False, multi_turn=True),
    Format.BEDROCK_NOVA: conversations(weights=False, multi_turn=True),
    Format.SHAREGPT: conversations(weights=True, multi_turn=True, tools=True),
}


@pytest.mark.parametrize("fmt", list(ROUND_TRIPS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_chat_formats_round_trip(fmt: Format, data: st.DataObject) -> None:
    example = data.draw(ROUND_TRIPS[fmt])
    rendered = render(example, fmt, include_metadata=True)
    assert rendered.losses == []
    back = parse(rendered.record, fmt).example
    assert (back.system, back.messages, back.metadata) == (example.system, example.messages, example.metadata)
    assert back.content_hash == example.with_hash().content_hash


@settings(max_examples=150, deadline=None)
@given(prompt=texts, completion=texts)
def test_prompt_completion_round_trips(prompt: str, completion: str) -> None:
    record = {"prompt": prompt, "completion": completion}
    assert render(parse(record, Format.PROMPT_COMPLETION).example, Format.PROMPT_COMPLETION).record == record


@settings(max_examples=150, deadline=None)
@given(instruction=texts, extra=texts, output=texts)
def test_alpaca_round_trips(instruction: str, extra: str, output: str) -> None:
    record = {"instruction": instruction, "input": extra, "output": output}
    back = render(parse(record, Format.ALPACA).example, Format.ALPACA).record
    assert back == record


@settings(max_examples=600, deadline=None)
@given(record=st.recursive(st.none() | st.booleans() | st.integers() | texts, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["messages", "role", "content", "prompt", "completion", "instruction", "output", "system", "conversations", "from", "value", "x", "tools", "tool_calls", "function", "function_call", "name", "arguments", "tool_call_id", "type", "text", "image", "toolUse", "toolResult", "toolConfig", "toolSpec", "schemaVersion", "source"]), c, max_size=4), max_leaves=12))
def test_parse_never_raises_anything_but_format_error(record: object) -> None:
    with contextlib.suppress(FormatError):
        parsed = parse(record)
        for fmt in Format:  # and whatever was read can be written in every format
            render(parsed.example, fmt, list_metadata=True)


# ------------------------------------------------------------------------------------------ tool use

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "format": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["location", "format"],
        },
    },
}

# A function-calling record as OpenAI documents it (https://platform.openai.com/docs/guides/fine-tuning),
# with parallel calls, their results, a name and a weight.
OPENAI_TOOLS = {
    "messages": [
        {"role": "system", "content": "You are a weather assistant."},
        {"role": "user", "content": "Weather in San Francisco and Paris?", "name": "alice"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_sf", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\"location\": \"San Francisco, USA\", \"format\": \"celsius\"}"}},
                {"id": "call_pa", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Paris, France\", \"format\": \"celsius\"}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_sf", "content": "21.0"},
        {"role": "tool", "tool_call_id": "call_pa", "content": "15.5"},
        {"role": "assistant", "content": "21 C in San Francisco, 15.5 C in Paris.", "weight": 1},
    ],
    "tools": [WEATHER_TOOL],
    "parallel_tool_calls": True,
}

NOVA_TOOLS = {
    "schemaVersion": "bedrock-conversation-2024",
    "system": [{"text": "You read invoices."}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"text": "What is the total?"},
                {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://bucket/invoices/7.png"}}}},
                {"document": {"format": "pdf", "name": "terms", "source": {"s3Location": {"uri": "s3://bucket/invoices/terms.pdf"}}}},
            ],
        },
        {"role": "assistant", "content": [{"text": "Looking it up."}, {"toolUse": {"toolUseId": "tu_1", "name": "lookup_invoice", "input": {"id": "INV-7"}}}]},
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tu_1", "content": [{"json": {"total": 120.5, "currency": "EUR"}}], "status": "success"}},
                {"text": "And in words?"},
            ],
        },
        {"role": "assistant", "content": [{"text": "One hundred twenty euros"}, {"text": "and fifty cents."}]},
    ],
    "toolConfig": {
        "tools": [{"toolSpec": {"name": "lookup_invoice", "description": "Find an invoice", "inputSchema": {"json": {"type": "object", "properties": {"id": {"type": "string"}}}}}}],
        "toolChoice": {"auto": {}},
    },
}

SHAREGPT_TOOLS = {
    "conversations": [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "Weather in Oslo?"},
        {"from": "function_call", "value": "{\"name\": \"weather\", \"arguments\": {\"city\": \"Oslo\"}}"},
        {"from": "observation", "value": "{\"temp\": -3}"},
        {"from": "gpt", "value": "-3 C."},
    ],
    "tools": "[{\"name\": \"weather\", \"description\": \"Current weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}]",
}

LEGACY_FUNCTIONS = {
    "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "function_call": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}},
        {"role": "function", "name": "weather", "content": "{\"temp\": -3}"},
        {"role": "assistant", "content": "-3 C."},
    ],
    "functions": [{"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
}

VISION = {
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}}]},
        {"role": "assistant", "content": "A cat."},
    ]
}


@pytest.mark.parametrize(
    ("record", "fmt"),
    [
        (OPENAI_TOOLS, Format.OPENAI),
        (LEGACY_FUNCTIONS, Format.OPENAI),
        (VISION, Format.OPENAI),
        (NOVA_TOOLS, Format.BEDROCK_NOVA),
        (SHAREGPT_TOOLS, Format.SHAREGPT),
    ],
    ids=["openai-tools", "openai-functions", "openai-vision", "nova-tools", "sharegpt-tools"],
)
def test_a_record_written_back_to_its_own_format_is_the_same_json(record: dict, fmt: Format) -> None:
    parsed = parse(record)
    assert parsed.format is fmt and parsed.warnings == []
    rendered = render(parsed.example, fmt)
    assert rendered.record == record
    assert rendered.lost == []


def test_openai_tool_use_is_read_into_the_canonical_example() -> None:
    example = parse(OPENAI_TOOLS).example
    call_turn, result = example.messages[1], example.messages[2]
    assert [(c.id, c.name) for c in call_turn.tool_calls] == [("call_sf", "get_current_weather"), ("call_pa", "get_current_weather")]
    assert call_turn.content == "" and call_turn.blocks is None
    assert (result.role, result.tool_call_id, result.content) == (Role.TOOL, "call_sf", "21.0")
    assert example.messages[0].name == "alice"
    assert example.tools[0].name == "get_current_weather" and example.tools[0].parameters["required"] == ["location", "format"]
    assert example.parallel_tool_calls is True


def test_assistant_content_null_and_absent_are_told_apart_without_changing_the_hash() -> None:
    absent = parse(OPENAI_TOOLS).example
    null_turn = {**OPENAI_TOOLS["messages"][2], "content": None}
    null = parse({**OPENAI_TOOLS, "messages": [*OPENAI_TOOLS["messages"][:2], null_turn, *OPENAI_TOOLS["messages"][3:]]}).example
    assert (absent.messages[1].empty_content, null.messages[1].empty_content) == ("absent", "null")
    assert "content" not in render(absent, Format.OPENAI).record["messages"][2]
    assert render(null, Format.OPENAI).record["messages"][2]["content"] is None
    assert absent.content_hash == null.content_hash


def test_openai_tool_use_becomes_converse_tool_use_and_results() -> None:
    record = render(parse(OPENAI_TOOLS).example, Format.BEDROCK_NOVA).record
    assert record["messages"][1] == {
        "role": "assistant",
        "content": [
            {"toolUse": {"toolUseId": "call_sf", "name": "get_current_weather", "input": {"location": "San Francisco, USA", "format": "celsius"}}},
            {"toolUse": {"toolUseId": "call_pa", "name": "get_current_weather", "input": {"location": "Paris, France", "format": "celsius"}}},
        ],
    }
    # Both results travel in one user message: Converse alternates user and assistant.
    assert record["messages"][2] == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "call_sf", "content": [{"text": "21.0"}]}},
            {"toolResult": {"toolUseId": "call_pa", "content": [{"text": "15.5"}]}},
        ],
    }
    assert [m["role"] for m in record["messages"]] == ["user", "assistant", "user", "assistant"]
    assert record["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"] == WEATHER_TOOL["function"]["parameters"]


def test_converse_tool_use_becomes_openai_tool_calls() -> None:
    example = parse(NOVA_TOOLS).example
    assert [m.role for m in example.messages] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.USER, Role.ASSISTANT]
    record = render(example, Format.OPENAI)
    turns = record.record["messages"]
    assert turns[2]["tool_calls"] == [{"id": "tu_1", "type": "function", "function": {"name": "lookup_invoice", "arguments": "{\"id\": \"INV-7\"}"}}]
    assert turns[3] == {"role": "tool", "content": "{\"total\": 120.5, \"currency\": \"EUR\"}", "tool_call_id": "tu_1"}
    assert {loss.field for loss in record.lost} == {"messages[0].content[1]", "messages[0].content[2]", "messages[2].status", "tool_choice"}


def test_sharegpt_calls_without_ids_get_ids_tying_results_to_them_in_openai() -> None:
    record = render(parse(SHAREGPT_TOOLS).example, Format.OPENAI).record
    call_id = record["messages"][2]["tool_calls"][0]["id"]
    assert record["messages"][3] == {"role": "tool", "content": "{\"temp\": -3}", "tool_call_id": call_id}
    assert record["tools"][0]["function"]["name"] == "weather"


@pytest.mark.parametrize(
    ("fmt", "fields"),
    [
        (
            Format.BEDROCK_CLAUDE,
            {"tools", "parallel_tool_calls", "messages[0].name", "messages[1].tool_calls", "messages[2]", "messages[3]", "messages[4].weight"},
        ),
        (
            Format.PROMPT_COMPLETION,
            {"tools", "parallel_tool_calls", "messages[0].name", "messages[1].tool_calls", "messages[2]", "messages[3]", "messages[4].weight"},
        ),
        (Format.ALPACA, {"tools", "parallel_tool_calls", "messages[0].name", "messages[1].tool_calls", "messages[2]", "messages[3]", "messages[4].weight"}),
        (
            Format.SHAREGPT,
            {"messages[0].name", "messages[1].tool_calls[0].id", "messages[1].tool_calls[1].id", "messages[2].tool_call_id", "messages[3].tool_call_id", "parallel_tool_calls"},
        ),
        (Format.BEDROCK_NOVA, {"messages[0].name", "messages[4].weight", "parallel_tool_calls"}),
    ],
)
def test_what_a_target_cannot_hold_is_listed_by_field(fmt: Format, fields: set[str]) -> None:
    rendered = render(parse(OPENAI_TOOLS).example, fmt)
    assert {loss.field for loss in rendered.lost} == fields
    assert all(str(loss).startswith(loss.field + ": ") for loss in rendered.lost)


def test_claude_keeps_the_text_turns_of_a_tool_conversation() -> None:
    record = render(parse(OPENAI_TOOLS).example, Format.BEDROCK_CLAUDE).record
    assert record == {
        "system": "You are a weather assistant.",
        "messages": [
            {"role": "user", "content": "Weather in San Francisco and Paris?"},
            {"role": "assistant", "content": "21 C in San Francisco, 15.5 C in Paris."},
        ],
    }


def test_metadata_left_out_of_an_export_is_listed_per_key() -> None:
    example = parse({**CHAT, "source": "crm", "metadata": {"task": "greeting"}}).example
    assert render(example, Format.OPENAI, list_metadata=True).losses == [
        "metadata.task: not written: exports carry only what trains the model",
        "metadata.source: not written: exports carry only what trains the model",
    ]
    assert render(example, Format.OPENAI, include_metadata=True, list_metadata=True).lost == []
    assert render(example, Format.OPENAI).lost == []  # validation: metadata never trains the model


def test_an_alpaca_system_key_is_kept_in_metadata_with_a_warning() -> None:
    parsed = parse({"instruction": "Translate", "input": "chat", "output": "cat", "system": "You translate French."})
    assert parsed.example.metadata == {"system": "You translate French."}
    assert parsed.warnings == [
        "system: alpaca has no system prompt beside the instruction; kept in metadata, not trained on: "
        "put it in the instruction to train on it"
    ]
    assert [str(loss) for loss in render(parsed.example, Format.ALPACA, list_metadata=True).lost] == [
        "metadata.system: not written: exports carry only what trains the model"
    ]


def test_a_prompt_completion_system_string_is_the_system_prompt() -> None:
    parsed = parse({"system": "Be terse.", "prompt": "P", "completion": "C"})
    assert (parsed.format, parsed.example.system, parsed.example.metadata, parsed.warnings) == (Format.PROMPT_COMPLETION, "Be terse.", {}, [])
    folded = render(parsed.example, Format.PROMPT_COMPLETION, list_metadata=True)
    assert (folded.record, folded.lost) == ({"prompt": "Be terse.\n\nP", "completion": "C"}, [])
    assert render(parsed.example, Format.BEDROCK_CLAUDE).record == {
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "P"}, {"role": "assistant", "content": "C"}],
    }
    plain = parse({"prompt": "P", "completion": "C"}).example
    assert parsed.example.content_hash != plain.content_hash  # a system prompt is training content


def test_an_empty_prompt_completion_system_is_no_system_prompt() -> None:
    parsed = parse({"system": "", "prompt": "P", "completion": "C"})
    assert (parsed.example.system, parsed.example.metadata, parsed.warnings) == ("", {}, [])
    assert render(parsed.example, Format.PROMPT_COMPLETION).record == {"prompt": "P", "completion": "C"}


@pytest.mark.parametrize(("value", "found"), [(["Be terse."], "a list"), (3, "a number"), (None, "null")])
def test_a_prompt_completion_system_that_is_not_a_string_is_kept_in_metadata_with_a_warning(value: object, found: str) -> None:
    parsed = parse({"system": value, "prompt": "P", "completion": "C"})
    assert (parsed.example.system, parsed.example.metadata) == (None, {"system": value})
    assert parsed.warnings == [f"system: must be a string to be read as the system prompt, found {found}; kept in metadata, not trained on"]


def test_several_converse_system_items_are_joined_with_a_warning() -> None:
    record = {"system": [{"text": "Be terse."}, {"text": "Answer in French."}], "messages": NOVA_TURNS}
    parsed = parse(record)
    assert parsed.example.system == "Be terse.\nAnswer in French."
    assert parsed.warnings == ["system: 2 text items joined into one system prompt (separated by a newline)"]
    assert parse({"system": [{"text": "Be terse."}], "messages": NOVA_TURNS}).warnings == []


NOVA_TURNS = [{"role": "user", "content": [{"text": "Hi"}]}, {"role": "assistant", "content": [{"text": "Hello"}]}]


@pytest.mark.parametrize(
    ("record", "warnings"),
    [
        (
            {"messages": [{"role": "user", "content": "x", "foo": 1}, {"role": "assistant", "content": "y", "refusal": None}]},
            ["messages[0].foo: unknown key for openai; not kept", "messages[1].refusal: unknown key for openai; not kept"],
        ),
        (
            {**CHAT, "tools": [{"type": "function", "function": {"name": "f", "extra": True}, "cache": 1}]},
            ["tools[0].cache: unknown key for openai; not kept", "tools[0].function.extra: unknown key for openai; not kept"],
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}, {"type": "text", "text": "hi"}]}, {"role": "assistant", "content": "y"}]},
            ["messages[0].content[0]: content part of type 'input_audio' not kept: only text and image_url parts are read"],
        ),
        (
            {"schemaVersion": "bedrock-conversation-2024", "messages": [{"role": "user", "content": [{"text": "x"}, {"cachePoint": {"type": "default"}}]}, {"role": "assistant", "content": [{"text": "y"}], "note": 1}]},
            [
                "messages[0].content[1]: cachePoint block not kept: this reader takes text, image, video, document, toolUse and toolResult",
                "messages[1].note: unknown key for bedrock-nova; not kept",
            ],
        ),
        (
            {"conversations": [{"from": "human", "value": "x", "lang": "en"}, {"from": "gpt", "value": "y"}]},
            ["conversations[0].lang: unknown key for sharegpt; not kept"],
        ),
        ({"system": "s", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 0}]}, ["messages[1].weight: unknown key for bedrock-claude; not kept"]),
    ],
)
def test_import_warns_about_every_nested_key_it_does_not_keep(record: dict, warnings: list[str]) -> None:
    assert parse(record).warnings == warnings


def test_an_empty_top_level_system_is_read_as_bedrock_claude() -> None:
    record = {"system": "", **CHAT}
    assert detect(record) is Format.BEDROCK_CLAUDE
    assert is_definite(record, Format.BEDROCK_CLAUDE)
    parsed = parse(record)
    assert parsed.format is Format.BEDROCK_CLAUDE and parsed.example.system == ""
    assert render(parsed.example, Format.BEDROCK_CLAUDE).record == record


def test_openai_image_parts_are_not_mistaken_for_converse_blocks() -> None:
    assert detect(VISION) is Format.OPENAI
    assert is_definite(OPENAI_TOOLS, Format.OPENAI)


def test_plain_examples_keep_their_stored_hash() -> None:
    # The hash of this record before tool use was stored (stored hashes must not change).
    assert parse({"system": "", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}).example.content_hash == "ab364e384d05882df02ff4bc8357e643"


def test_examples_differing_only_in_tool_use_hash_differently() -> None:
    base = parse(OPENAI_TOOLS).example
    other_call = base.messages[1].model_copy(update={"tool_calls": [base.messages[1].tool_calls[0]]})
    variants = [
        base,
        base.model_copy(update={"messages": [base.messages[0], other_call, *base.messages[2:]]}).with_hash(),
        base.model_copy(update={"tools": []}).with_hash(),
        base.model_copy(update={"parallel_tool_calls": False}).with_hash(),
    ]
    assert len({v.content_hash for v in variants}) == 4


def test_parts_reach_tool_arguments_and_results_for_pii_and_search() -> None:
    example = parse(OPENAI_TOOLS).example
    parts = dict(example.parts())
    assert parts["messages[1].tool_calls[0].arguments"] == "{\"location\": \"San Francisco, USA\", \"format\": \"celsius\"}"
    assert parts["messages[2]"] == "21.0"
    assert "Paris, France" in example.plain_text()


def test_scrubbing_reaches_tool_arguments_and_every_text_block() -> None:
    from workbench.domain.pii import find_pii, scrub_example

    record = {
        "schemaVersion": "bedrock-conversation-2024",
        "messages": [
            {"role": "user", "content": [{"text": "Mail bob@example.org"}, {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://b/x.png"}}}}, {"text": "or call"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t", "name": "send", "input": {"to": "bob@example.org"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "sent"}]}}]},
            {"role": "assistant", "content": [{"text": "Done."}]},
        ],
    }
    example = parse(record).example
    assert {f.where for f in find_pii(example)} == {"messages[0]", "messages[1].tool_calls[0].arguments"}
    clean = scrub_example(example)
    rendered = render(clean, Format.BEDROCK_NOVA).record
    assert "bob@example.org" not in str(rendered)
    assert rendered["messages"][0]["content"][0] == {"text": "Mail [EMAIL]"}
    assert rendered["messages"][0]["content"][1]["image"]["source"]["s3Location"]["uri"] == "s3://b/x.png"
    assert rendered["messages"][1]["content"][0]["toolUse"]["input"] == {"to": "[EMAIL]"}


def test_an_edited_turn_keeps_its_media_in_place() -> None:
    turn = parse(NOVA_TOOLS).example.messages[0]
    edited = turn.model_copy(update={"content": "What is the sum?"})
    assert [b.kind.value for b in edited.content_blocks()] == ["text", "image", "document"]
    assert edited.content_blocks()[0].text == "What is the sum?"


# A function-calling conversation in OpenAI's shape, drawn at random: ids, names, arguments, content
# null/absent/text/parts, names and weights, tools and parallel_tool_calls. Written back, it must be the same JSON.
names = st.text(alphabet="abcdefghij_", min_size=1, max_size=8)
arguments = st.dictionaries(names, st.integers() | texts, max_size=3).map(lambda v: __import__("json").dumps(v))


@st.composite
def openai_tool_records(draw: st.DrawFn) -> dict:
    messages: list[dict] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(texts)})
    for turn in range(draw(st.integers(1, 3))):
        user: dict = {"role": "user", "content": draw(texts)}
        if draw(st.booleans()):
            user["name"] = draw(names)
        messages.append(user)
        if draw(st.booleans()):
            ids = draw(st.lists(names, min_size=1, max_size=3, unique=True))
            call: dict = {"role": "assistant"}
            content = draw(st.sampled_from(["absent", "null", "text"]))
            if content != "absent":
                call["content"] = None if content == "null" else draw(texts)
            call["tool_calls"] = [
                {"id": f"call_{turn}_{i}", "type": "function", "function": {"name": draw(names), "arguments": draw(arguments)}}
                for i in ids
            ]
            messages.append(call)
            messages += [{"role": "tool", "tool_call_id": f"call_{turn}_{i}", "content": draw(texts)} for i in ids]
        reply: dict = {"role": "assistant", "content": draw(texts | st.lists(st.builds(lambda t: {"type": "text", "text": t}, texts), min_size=1, max_size=2))}
        if draw(st.booleans()):
            reply["weight"] = draw(st.sampled_from([0, 1]))
        messages.append(reply)
    record: dict = {"messages": messages}
    if draw(st.booleans()):
        record["tools"] = [{"type": "function", "function": {"name": draw(names), "description": draw(texts), "parameters": {"type": "object", "properties": {}}}}]
    if draw(st.booleans()):
        record["parallel_tool_calls"] = draw(st.booleans())
    return record


@settings(max_examples=150, deadline=None)
@given(record=openai_tool_records())
def test_openai_function_calling_records_round_trip_field_for_field(record: dict) -> None:
    parsed = parse(record, Format.OPENAI)
    assert parsed.warnings == []
    rendered = render(parsed.example, Format.OPENAI)
    assert rendered.record == record and rendered.lost == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | texts,  # what orjson reads from a file
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["text", "type", "id", "name", "json", "uri", "x"]), c, max_size=3),
    max_leaves=6,
)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*prefix, i))
    return out


def _replaced(value: object, path: tuple, new: object) -> object:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)  # type: ignore[call-overload]
    copy[path[0]] = _replaced(copy[path[0]], path[1:], new)
    return copy


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_a_damaged_tool_record_is_refused_by_field_or_read_and_writable_everywhere(data: st.DataObject) -> None:
    record = data.draw(st.sampled_from([OPENAI_TOOLS, LEGACY_FUNCTIONS, VISION, NOVA_TOOLS, SHAREGPT_TOOLS]))
    path = data.draw(st.sampled_from(_paths(record)[1:]))
    damaged = _replaced(record, path, data.draw(json_values))
    try:
        parsed = parse(damaged)
    except FormatError:
        return
    for fmt in Format:
        render(parsed.example, fmt, list_metadata=True)


def test_json_text_inside_a_record_is_read_as_the_file_is() -> None:
    # json.loads would keep a 30-digit integer exact, and hashing or writing it would then fail.
    record = {**SHAREGPT_TOOLS, "tools": '[{"name": "weather", "parameters": {"maximum": 123456789012345678901234567890}}]'}
    example = parse(record).example
    assert example.tools[0].parameters == {"maximum": 1.2345678901234568e29}
    assert example.content_hash and render(example, Format.BEDROCK_NOVA).record["toolConfig"]["tools"][0]["toolSpec"]["name"] == "weather"
