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
    with pytest.raises(NotFound, match="no version named 'v9'"):
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
