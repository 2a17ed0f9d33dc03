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
        ({"schemaVersion": "x", "messages": [{"role": "user", "content": [{"image": {}}]}]}, None, "messages[0].content[0]", "only text"),
        ({"conversations": [{"from": "alien", "value": "x"}]}, None, "conversations[0].from", "'alien'"),
        ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": "1"}]}, None, "messages[1].weight", "number"),
        ({**CHAT, "metadata": [1]}, None, "metadata", "must be an object"),
    ],
)
def test_parse_errors_name_the_field(record: dict, fmt: Format | None, field: str, match: str) -> None:
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
    assert any("multi-turn" in loss for loss in rendered.losses)
    assert any("system prompt folded" in loss for loss in rendered.losses)
    assert any("weights dropped" in loss for loss in rendered.losses)


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
    assert rendered.losses == ["1 tool turn(s) dropped: bedrock-claude has no tool role"]
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


@settings(max_examples=200, deadline=None)
@given(record=st.recursive(st.none() | st.booleans() | st.integers() | texts, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["messages", "role", "content", "prompt", "completion", "instruction", "output", "system", "conversations", "from", "value", "x"]), c, max_size=4), max_leaves=12))
def test_parse_never_raises_anything_but_format_error(record: object) -> None:
    with contextlib.suppress(FormatError):
        parse(record)
