"""`workbench datasets rename/describe/delete` as a user runs them: real subprocesses, one JSON object each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import WriteJsonl, chat


def cli(db: Path, *args: str, ok: bool = True, stdin: str | None = None, as_json: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--db", str(db), *args, *(["--json"] if as_json else [])],
        capture_output=True, text=True, timeout=120, input=stdin,
    )
    assert (proc.returncode == 0) == ok, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr and "Aborted!" not in proc.stderr, proc.stderr
    return proc


def run(db: Path, *args: str, ok: bool = True) -> dict[str, Any]:
    return orjson.loads(cli(db, *args, ok=ok).stdout)


@pytest.fixture
def db(tmp_path: Path, write_jsonl: WriteJsonl) -> Path:
    path = tmp_path / "cli.db"
    cli(path, "datasets", "import", str(write_jsonl([chat(f"q{i}", f"a{i}") for i in range(3)])), "--name", "qa")
    return path


def test_rename_and_describe(db: Path) -> None:
    assert run(db, "datasets", "rename", "qa", "qa-2024")["dataset"]["name"] == "qa-2024"
    described = run(db, "datasets", "describe", "qa-2024", "Three questions.")
    assert described["dataset"]["description"] == "Three questions."
    assert [d["name"] for d in run(db, "datasets", "list")["datasets"]] == ["qa-2024"]


def test_a_name_with_control_characters_is_one_json_error(db: Path) -> None:
    out = run(db, "datasets", "rename", "qa", "qa\x1b[31m", ok=False)
    assert out["ok"] is False and "may not contain control characters" in out["error"] and "U+001B" in out["error"]
    assert run(db, "datasets", "rename", "nope", "x", ok=False)["error"] == "no dataset named 'nope'"


def test_delete_says_what_it_removes_and_needs_yes(db: Path) -> None:
    refused = run(db, "datasets", "delete", "qa", ok=False)
    assert refused == {"ok": False, "error": "deleting 'qa' removes 3 examples, 0 versions and 1 import record; add --yes to confirm"}

    # Asked at a prompt (no terminal here, so it is refused the same way, in words).
    human = cli(db, "datasets", "delete", "qa", ok=False, stdin="y\n", as_json=False)
    assert "add --yes to confirm" in human.stderr

    deleted = run(db, "datasets", "delete", "qa", "--yes")
    assert deleted["removed"] == {"examples": 3, "revisions": 0, "versions": 0, "imports": 1}
    assert run(db, "datasets", "list")["datasets"] == []


def test_show_prints_the_description(db: Path) -> None:
    plain = cli(db, "datasets", "show", "qa", as_json=False).stdout.splitlines()
    assert plain[1] == "  description: (none)"
    run(db, "datasets", "describe", "qa", "Three questions.")
    assert cli(db, "datasets", "show", "qa", as_json=False).stdout.splitlines()[1] == "  description: Three questions."
    assert run(db, "datasets", "show", "qa")["dataset"]["description"] == "Three questions."


TOOL_CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
}


def test_export_and_validate_name_lost_fields_by_turn_as_the_app_does(db: Path, write_jsonl: WriteJsonl, tmp_path: Path) -> None:
    # The canonical `messages[1]` is the assistant's tool call; in the OpenAI file it is the user's turn.
    cli(db, "datasets", "import", str(write_jsonl([TOOL_CHAT], name="tools.jsonl")), "--name", "tools")
    out = tmp_path / "claude.jsonl"
    exported = run(db, "datasets", "export", "tools", "--format", "bedrock-claude", "--out", str(out))
    lost = exported["lossy"][0]["lost"]
    assert [(loss["field"], loss["where"]) for loss in lost] == [
        ("tools", "tools"), ("messages[1].tool_calls", "turn 2 (assistant), tool_calls"), ("messages[2]", "turn 3 (tool)"),
    ]
    assert all(loss["reason"] for loss in lost) and len(exported["lossy"][0]["losses"]) == 3  # existing keys kept

    plain = cli(db, "datasets", "export", "tools", "--format", "bedrock-claude", "--out", str(out), as_json=False)
    assert "turn 2 (assistant), tool_calls: 1 tool call(s) dropped" in plain.stderr
    assert "turn 3 (tool): tool result turn dropped" in plain.stderr and "messages[" not in plain.stderr

    report = run(db, "datasets", "validate", "tools", "--target", "bedrock-claude-haiku", ok=False)
    loss = next(w for w in report["warnings"] if w["code"] == "conversion_loss")
    assert "turn 2 (assistant), tool_calls: 1 tool call(s) dropped" in loss["message"] and "messages[" not in loss["message"]
    text = cli(db, "datasets", "validate", "tools", "--target", "bedrock-claude-haiku", ok=False, as_json=False).stdout
    assert "turn 2 (assistant), tool_calls" in text and "messages[1]" not in text


def test_validate_labels_a_finding_s_field_as_the_validate_tab_does(db: Path, write_jsonl: WriteJsonl) -> None:
    # OpenAI puts the system prompt first, so the record's messages[2] is the first assistant turn.
    empty = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": ""}]}
    cli(db, "datasets", "import", str(write_jsonl([empty], name="empty.jsonl")), "--name", "empty")
    report = run(db, "datasets", "validate", "empty", "--target", "openai", ok=False)
    finding = next(e for e in report["errors"] if e["code"] == "missing_content")
    assert (finding["field"], finding["where"]) == ("messages[2].content", "turn 2 (assistant)")
    group = next(g for g in report["groups"] if g["code"] == "missing_content")
    assert (group["field"], group["where"]) == ("messages[2].content", "turn 2 (assistant)")
    assert "where" not in next(e for e in report["errors"] if e["code"] == "too_few_examples")  # no field, no label
    text = cli(db, "datasets", "validate", "empty", "--target", "openai", ok=False, as_json=False).stdout
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if "(missing_content)" in line)
    assert "line 1 (example #" in lines[header + 1] and "turn 2 (assistant)" in lines[header + 1], text


def test_a_tool_call_the_target_cannot_hold_is_named_by_its_turn(db: Path, write_jsonl: WriteJsonl) -> None:
    # The field of this finding is a path in the stored example, not in the target's record.
    no_definitions = {"messages": TOOL_CHAT["messages"]}
    cli(db, "datasets", "import", str(write_jsonl([no_definitions], name="calls.jsonl")), "--name", "calls")
    report = run(db, "datasets", "validate", "calls", "--target", "bedrock-claude-haiku", ok=False)
    finding = next(e for e in report["errors"] if e["code"] == "tool_use_not_supported")
    assert (finding["field"], finding["where"]) == ("messages[1].tool_calls", "turn 2 (assistant), tool_calls")
    assert finding["message"].startswith("turn 2 (assistant), tool_calls holds tool use")


def test_leakage_exits_1_when_examples_leak_across_splits_as_its_json_says(tmp_path: Path, write_jsonl: WriteJsonl) -> None:
    path = tmp_path / "leaky.db"
    rows = [chat(f"Where is order number {i} for customer {i * 7}?", f"It ships on day {i}.") for i in range(40)]
    cli(path, "datasets", "import", str(write_jsonl([*rows, *rows[:5]], "a.jsonl")), "--name", "d")
    cli(path, "datasets", "split", "d", "--train", "0.5", "--validation", "0.25", "--test", "0.25", "--seed", "1")
    clean = run(path, "datasets", "leakage", "d")
    assert clean["ok"] is True and clean["pairs"] == []
    near = [chat(f"Where is order number {i} for customer {i * 7}??", f"It ships on day {i}.") for i in range(40)]
    cli(path, "datasets", "import", str(write_jsonl(near, "b.jsonl")), "--name", "d")
    cli(path, "datasets", "split", "d", "--train", "0.5", "--validation", "0.25", "--test", "0.25", "--seed", "2")
    leaking = run(path, "datasets", "leakage", "d", ok=False)
    assert leaking["ok"] is False and leaking["pairs"]
