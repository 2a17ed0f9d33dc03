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
