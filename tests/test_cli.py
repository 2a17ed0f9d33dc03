"""The CLI as a user runs it: real subprocesses, one JSON object per command under --json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import WriteJsonl, chat


def run(db: Path, *args: str, ok: bool = True) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--db", str(db), *args, "--json"], capture_output=True, text=True, timeout=120
    )
    assert (proc.returncode == 0) == ok, proc.stderr + proc.stdout
    return orjson.loads(proc.stdout)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


def test_import_validate_split_freeze_export_round_trip(db: Path, write_jsonl: WriteJsonl, tmp_path: Path) -> None:
    records = [chat(f"Question {i}", f"Answer {i}", system="Be brief.", metadata={"label": "xy"[i % 2]}) for i in range(40)]
    path = write_jsonl([*records, b"{broken", chat("Mail me: a@b.example", "ok")])

    imported = run(db, "datasets", "import", str(path), "--name", "qa")
    assert (imported["imported"], imported["duplicates"], imported["format"]) == (41, 0, "openai")
    assert imported["errors"] == [{"line": 41, "message": imported["errors"][0]["message"]}]
    assert "truncated" in imported["errors"][0]["message"] or "JSON" in imported["errors"][0]["message"]
    assert run(db, "datasets", "import", str(path), "--name", "qa")["duplicates"] == 41

    split = run(db, "datasets", "split", "qa", "--seed", "1", "--stratify", "label")
    assert sum(split["counts"].values()) == 41

    report = run(db, "datasets", "validate", "qa", "--target", "bedrock-claude-haiku", "--split", "validation", ok=False)
    assert report["ok"] is False and any(e["code"] == "too_few_examples" for e in report["errors"])
    whole = run(db, "datasets", "validate", "qa", "--target", "openai")
    assert whole["ok"] is True and {"errors", "warnings"} <= set(whole)

    assert run(db, "datasets", "freeze", "qa", "v1")["version"]["example_count"] == 41
    out = tmp_path / "qa.nova.jsonl"
    exported = run(db, "datasets", "export", "qa", "--format", "bedrock-nova", "--version", "v1", "--out", str(out))
    assert exported["written"] == 41 and exported["scrubbed"] == 1
    lines = out.read_bytes().splitlines()
    assert len(lines) == 41 and b"[EMAIL]" in b"".join(lines)

    back = run(db, "datasets", "import", str(out), "--name", "roundtrip", "--format", "bedrock-nova")
    assert back["imported"] == 41 and back["errors"] == []
    listed = run(db, "datasets", "list")
    assert {d["name"] for d in listed["datasets"]} == {"qa", "roundtrip"}


def test_failures_print_one_json_error_and_exit_1(db: Path, tmp_path: Path) -> None:
    missing = run(db, "datasets", "validate", "nope", "--target", "openai", ok=False)
    assert missing == {"ok": False, "error": "no dataset named 'nope'"}
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert "empty" in run(db, "datasets", "import", str(empty), "--name", "x", ok=False)["error"]
    assert "no such file" in run(db, "datasets", "import", str(tmp_path / "none.jsonl"), "--name", "x", ok=False)["error"]


def test_rules_and_cleaning_commands(db: Path, write_jsonl: WriteJsonl) -> None:
    path = write_jsonl([chat("hello there", "As an AI language model, no."), chat("hello there!", "As an AI language model, no."), chat("q", "fine")])
    run(db, "datasets", "import", str(path), "--name", "d")
    rule = run(db, "rules", "add", "ai", "--regex", "as an ai", "--scope", "assistant", "--action", "block")["rule"]
    assert rule["scope"] == "assistant"
    bad = run(db, "rules", "add", "broken", "--regex", "(", ok=False)
    assert "pattern" in bad["error"] or "regex" in bad["error"].lower()
    report = run(db, "datasets", "guardrails", "d", ok=False)
    assert report["checked"] == 3 and report["passed"] == 1
    dedup = run(db, "datasets", "dedup", "d", "--resolve")
    assert dedup["deleted"] == 1
    assert run(db, "datasets", "pii", "d")["examples_with_pii"] == 0


def test_demo_load_fills_an_empty_store_once(db: Path) -> None:
    loaded = run(db, "demo", "load", "--if-empty")
    assert not loaded["skipped"] and len(loaded["datasets"]) == 3
    assert all(n >= 200 for n in loaded["datasets"].values())
    assert run(db, "demo", "load", "--if-empty")["skipped"] is True
    shown = run(db, "datasets", "show", "demo-geo-compliance")
    assert set(shown["splits"]) == {"train", "validation", "test"}
    pii = run(db, "datasets", "pii", "demo-stylist-feedback")
    assert pii["examples_with_pii"] > 0
    assert run(db, "datasets", "guardrails", "demo-optimization-modeling", ok=False)["pass_rate"] < 1.0
