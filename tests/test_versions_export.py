"""Frozen versions, diffs between them, and export to every format (scrubbed, lossy conversions reported)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.helpers import WriteJsonl, chat
from workbench.domain.example import Message, Role
from workbench.domain.filters import ExampleFilter
from workbench.domain.formats import Format, parse
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.services import datasets, exporting, versions
from workbench.services.importing import import_path
from workbench.services.validating import targets_for, validate_file_records
from workbench.store import Store


@pytest.fixture
def loaded(store: Store, write_jsonl: WriteJsonl) -> Store:
    records = [chat(f"How do I reset item {i}?", f"Press the button {i} times.", system="You are helpful.") for i in range(40)]
    records.append(chat("Call me on (415) 555-0134 or mail bob@example.org", "Will do."))
    records.append({"messages": [
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "one"},
        {"role": "user", "content": "second"}, {"role": "assistant", "content": "two"},
    ]})
    import_path(store, write_jsonl(records), "d")
    return store


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_version_is_frozen_against_later_edits(loaded: Store) -> None:
    v1 = versions.freeze(loaded, "d", "v1", note="first")
    assert v1.example_count == 42
    target = datasets.browse(loaded, "d", ExampleFilter(search="item 7")).examples[0]
    datasets.edit_turns(loaded, target.id, None, [Message(role=Role.USER, content="changed"), Message(role=Role.ASSISTANT, content="x")])  # type: ignore[arg-type]
    frozen = list(exporting.source_examples(loaded, "d", version="v1"))
    assert any(e.messages[0].content == "How do I reset item 7?" for e in frozen)
    assert not any(e.messages[0].content == "changed" for e in frozen)


def test_diff_between_versions(loaded: Store, write_jsonl: WriteJsonl) -> None:
    versions.freeze(loaded, "d", "v1")
    page = datasets.browse(loaded, "d", ExampleFilter(search="item"), page_size=3).examples
    datasets.edit_turns(loaded, page[0].id, None, [Message(role=Role.USER, content="edited"), Message(role=Role.ASSISTANT, content="x")])  # type: ignore[arg-type]
    datasets.bulk(loaded, "d", ExampleFilter(search="item 3"), "delete")
    datasets.bulk(loaded, "d", ExampleFilter(search="item 5"), "move-to-split", "test")
    import_path(loaded, write_jsonl([chat("brand new", "yes")], "new.jsonl"), "d")
    versions.freeze(loaded, "d", "v2")
    d = versions.diff(loaded, "d", "v1", "v2")
    assert (len(d.added), len(d.removed), len(d.changed), len(d.moved)) == (1, 1, 1, 1)
    assert d.unchanged == 42 - 3
    assert [v.name for v in versions.list_versions(loaded, "d")] == ["v2", "v1"]


@pytest.mark.parametrize(("name", "match", "error"), [("v1", "already has a version", Conflict), ("bad name!", "must start with", InvalidInput)])
def test_version_names(loaded: Store, name: str, match: str, error: type) -> None:
    versions.freeze(loaded, "d", "v1")
    with pytest.raises(error, match=match):
        versions.freeze(loaded, "d", name)


def test_freezing_an_empty_split_is_refused(loaded: Store) -> None:
    with pytest.raises(InvalidInput, match="no examples to freeze"):
        versions.freeze(loaded, "d", "t", split="test")
    assert versions.list_versions(loaded, "d") == []


def test_unknown_version(loaded: Store) -> None:
    with pytest.raises(NotFound, match="has no version named .v9."):
        versions.diff(loaded, "d", "v9", "v9")


@pytest.mark.parametrize("fmt", list(Format))
def test_export_passes_validate_for_its_targets_and_reparses(loaded: Store, tmp_path: Path, fmt: Format) -> None:
    out = tmp_path / f"out-{fmt.value}.jsonl"
    result = exporting.export_path(loaded, "d", fmt, out)
    assert result.written == 42 and result.scrubbed == 1
    lines = _lines(out)
    assert len(lines) == 42
    assert all(parse(line, fmt) for line in lines)
    for target in targets_for(fmt):
        report = validate_file_records(str(out), target)
        assert report.errors == [], (target, report.errors[:3])
    text = out.read_text()
    assert "bob@example.org" not in text and "[EMAIL]" in text and "[PHONE]" in text


def test_export_can_keep_pii(loaded: Store) -> None:
    data, result = exporting.export_bytes(loaded, "d", Format.OPENAI, scrub_pii=False)
    assert b"bob@example.org" in data and result.scrubbed == 0


def test_lossy_conversion_names_the_example_and_why(loaded: Store) -> None:
    _, result = exporting.export_bytes(loaded, "d", Format.PROMPT_COMPLETION)
    multi = [loss for loss in result.lossy if any("multi-turn" in text for text in loss.losses)]
    assert len(multi) == 1 and multi[0].example_id is not None and multi[0].source_line == 42
    _, lossless = exporting.export_bytes(loaded, "d", Format.OPENAI)
    assert lossless.lossy == []


def test_export_of_a_version_and_a_split(loaded: Store) -> None:
    datasets.bulk(loaded, "d", ExampleFilter(search="item 1"), "move-to-split", "validation")
    versions.freeze(loaded, "d", "v1")
    datasets.bulk(loaded, "d", ExampleFilter(), "delete")
    data, result = exporting.export_bytes(loaded, "d", Format.OPENAI, version="v1", split="validation")
    assert result.written == len(data.splitlines()) == 1


def test_a_failed_export_leaves_no_file(loaded: Store, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    with pytest.raises(InvalidInput, match="no examples to export"):
        exporting.export_path(loaded, "d", Format.OPENAI, out, split="test")
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_unknown_export_format(loaded: Store) -> None:
    with pytest.raises(InvalidInput, match="unknown format 'xml'"):
        exporting.export_bytes(loaded, "d", "xml")


def test_validating_a_file_reports_lines_that_are_not_json(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\n".join([orjson.dumps(chat(f"q{i}", "a")) for i in range(12)] + [b"{oops"]))
    report = validate_file_records(str(path), "openai")
    assert not report.ok
    assert report.errors[0].code == "invalid_json" and report.errors[0].source_line == 13


# ------------------------------------------------------------------------------- tool use, end to end


def _tool_record(i: int) -> dict:
    """An OpenAI function-calling record as its guide documents it (https://platform.openai.com/docs/guides/fine-tuning)."""
    return {
        "messages": [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "user", "content": f"Weather in city {i}?", "name": "alice"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": f"call_{i}", "type": "function", "function": {"name": "get_weather", "arguments": f"{{\"city\": \"city {i}\"}}"}}
                ],
            },
            {"role": "tool", "tool_call_id": f"call_{i}", "content": f"{i} C"},
            {"role": "assistant", "content": f"It is {i} C.", "weight": 1},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "parallel_tool_calls": False,
    }


@pytest.fixture
def tools_store(store: Store, write_jsonl: WriteJsonl) -> Store:
    result = import_path(store, write_jsonl([_tool_record(i) for i in range(12)], "tools.jsonl"), "t")
    assert (result.imported, result.errors, result.warnings) == (12, [], [])
    # A turn that only calls a tool is not an "empty assistant turn", nor are call, result and reply "two in a row".
    assert [e.validation_messages for e in datasets.browse(store, "t", ExampleFilter()).examples] == [[]] * 12
    return store


def test_an_openai_function_calling_file_exports_to_openai_as_the_same_json(tools_store: Store, tmp_path: Path) -> None:
    out = tmp_path / "back.jsonl"
    result = exporting.export_path(tools_store, "t", Format.OPENAI, out)
    assert _lines(out) == [_tool_record(i) for i in range(12)]
    assert result.lossy == [] and result.lost_fields == {}


def test_export_lists_what_claude_cannot_hold_per_example_and_field(tools_store: Store) -> None:
    data, result = exporting.export_bytes(tools_store, "t", Format.BEDROCK_CLAUDE)
    assert len(result.lossy) == 12
    first = result.lossy[0]
    assert first.source_line == 1 and first.example_id is not None
    assert [loss.field for loss in first.lost] == [
        "tools", "parallel_tool_calls", "messages[0].name", "messages[1].tool_calls", "messages[2]", "messages[3].weight",
    ]
    assert first.losses[0] == "tools: 1 tool definition(s) dropped: bedrock-claude has no place for it"
    assert result.lost_fields == {
        "tools": 12, "parallel_tool_calls": 12, "messages[*].name": 12, "messages[*].tool_calls": 12, "messages[*]": 12, "messages[*].weight": 12,
    }
    line = orjson.loads(data.splitlines()[0])
    assert line["messages"] == [{"role": "user", "content": "Weather in city 0?"}, {"role": "assistant", "content": "It is 0 C."}]


def test_a_frozen_version_keeps_tool_use(tools_store: Store) -> None:
    versions.freeze(tools_store, "t", "v1")
    datasets.bulk(tools_store, "t", ExampleFilter(), "delete")
    data, result = exporting.export_bytes(tools_store, "t", Format.OPENAI, version="v1")
    assert [orjson.loads(line) for line in data.splitlines()] == [_tool_record(i) for i in range(12)]
    assert result.lossy == []


def test_editing_the_words_of_a_tool_conversation_keeps_its_calls_and_the_revision_keeps_its_tools(tools_store: Store) -> None:
    example = datasets.browse(tools_store, "t", ExampleFilter(search="city 3")).examples[0]
    # What the example editor hands back: roles, text and weights only.
    edited = [Message(role=m.role, content=m.content, weight=m.weight) for m in example.messages]
    edited[-1] = Message(role=Role.ASSISTANT, content="About 3 C.", weight=1)
    saved = datasets.edit_turns(tools_store, example.id, example.system, edited)  # type: ignore[arg-type]
    assert saved.revision == 2 and saved.tools == example.tools
    assert saved.messages[1].tool_calls == example.messages[1].tool_calls
    assert saved.messages[2].tool_call_id == "call_3"
    revision = datasets.revisions(tools_store, example.id)[0]  # type: ignore[arg-type]
    assert revision["tools"] == example.tools and revision["messages"][1].tool_calls == example.messages[1].tool_calls


def test_undo_restores_tool_use_and_reads_snapshots_from_before_tools_were_stored(tools_store: Store) -> None:
    datasets.bulk(tools_store, "t", ExampleFilter(search="city 5"), "delete")
    datasets.undo_last_bulk(tools_store, "t")
    data, _ = exporting.export_bytes(tools_store, "t", Format.OPENAI)
    assert [orjson.loads(line) for line in data.splitlines()] == [_tool_record(i) for i in range(12)]
    # A row as the store held it before migration m004: no tools column, plain turns.
    from workbench.store import examples as example_rows

    with tools_store.connect() as db:
        row = example_rows.raw_rows(db, [datasets.browse(tools_store, "t", ExampleFilter(search="city 5")).examples[0].id])[0]  # type: ignore[list-item]
        old = {k: v for k, v in row.items() if k != "tools"} | {"messages": '[{"role":"user","content":"old"},{"role":"assistant","content":"row"}]'}
        example = example_rows.row_to_example(old)
    assert (example.tools, [m.content for m in example.messages], example.messages[0].tool_calls) == ([], ["old", "row"], [])


def test_import_warns_per_line_and_field_about_keys_it_does_not_keep(store: Store, write_jsonl: WriteJsonl) -> None:
    records = [chat("a", "b"), {"messages": [{"role": "user", "content": "x", "lang": "en"}, {"role": "assistant", "content": "y"}]}]
    result = import_path(store, write_jsonl(records), "w")
    assert [(w.line, w.message) for w in result.warnings] == [(2, "messages[0].lang: unknown key for openai; not kept")]


def test_a_file_of_records_with_an_empty_system_imports_as_bedrock_claude(store: Store, write_jsonl: WriteJsonl) -> None:
    records = [{"system": "", "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]} for i in range(3)]
    records.append(chat("plain", "chat"))  # fits both formats; the definite lines decide
    result = import_path(store, write_jsonl(records), "c")
    assert result.format == "bedrock-claude" and result.formats == {"bedrock-claude": 3, "openai": 1}
    data, _ = exporting.export_bytes(store, "c", Format.BEDROCK_CLAUDE)
    assert orjson.loads(data.splitlines()[0]) == records[0]


def test_export_lists_metadata_it_leaves_out_per_example(store: Store, write_jsonl: WriteJsonl) -> None:
    import_path(store, write_jsonl([chat("a", "b", source="crm"), chat("c", "d")]), "m")
    _, result = exporting.export_bytes(store, "m", Format.OPENAI)
    assert [(loss.source_line, loss.losses) for loss in result.lossy] == [
        (1, ["metadata.source: not written: exports carry only what trains the model"])
    ]


def test_a_store_from_before_tool_use_upgrades_and_reads_its_rows(tmp_path: Path, write_jsonl: WriteJsonl) -> None:
    from sqlite_utils import Database

    from workbench.store.migrations import migrations

    path = tmp_path / "old.db"
    old = Database(path)
    migrations.apply(old, stop_before="m004_example_tools")
    now = "2026-01-01T00:00:00Z"
    old.execute("INSERT INTO datasets (id, name, created_at, updated_at) VALUES (1, 'd', ?, ?)", [now, now])
    old.execute(
        "INSERT INTO examples (id, dataset_id, content_hash, messages, created_at, updated_at) VALUES (1, 1, 'h', ?, ?, ?)",
        ['[{"role":"user","content":"hi"},{"role":"assistant","content":"yo","weight":0.0}]', now, now],
    )
    old.conn.commit()
    old.close()
    store = Store(path)
    data, result = exporting.export_bytes(store, "d", Format.OPENAI)
    assert orjson.loads(data) == {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "weight": 0}]}
    assert result.lossy == []
    import_path(store, write_jsonl([_tool_record(1)]), "d")
    data, _ = exporting.export_bytes(store, "d", Format.OPENAI)
    assert orjson.loads(data.splitlines()[1]) == _tool_record(1)
