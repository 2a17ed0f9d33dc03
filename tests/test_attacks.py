"""Faults found by attacking the datasets capability through the real CLI, each pinned by a test.

Every case runs `python -m workbench ... --json` in a subprocess, as a script would, and checks the
promise of the CLI (one JSON object on stdout, no traceback on stderr) as well as what was kept.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from tests.helpers import chat


def cli(db: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run the CLI with --json; check stdout is exactly one JSON object and stderr has no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--db", str(db), *args, "--json"], capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    payload = orjson.loads(proc.stdout)  # exactly one JSON value: orjson refuses anything after it
    assert isinstance(payload, dict) and (proc.returncode == 0) == payload["ok"], (proc.returncode, proc.stdout)
    return proc.returncode, payload


def _line(record: dict[str, Any]) -> bytes:
    """One JSONL line; the standard library writes nesting orjson will not (it reads 1,024 levels, writes 254)."""
    return json.dumps(record).encode() + b"\n"


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"a": value}
    return value


def test_metadata_nested_past_what_can_be_stored_costs_its_line_only(tmp_path: Path) -> None:
    # orjson reads 1,024 levels but writes 254: this line parsed, then failed to encode, and the
    # whole import ended in "internal error: TypeError: Recursion limit reached".
    deep = tmp_path / "deep.jsonl"
    deep.write_bytes(
_line(chat("kept before", "a")) + _line(chat("deep", "a", metadata=_nested(500))) + _line(chat("kept after", "a"))
    )
    code, payload = cli(tmp_path / "wb.db", "datasets", "import", str(deep), "--name", "d")
    assert code == 0 and payload["imported"] == 2
    assert payload["errors"] == [
        {"line": 2, "message": "cannot be stored: nested too deeply: more than 254 levels of arrays and objects in one field"}
    ]


def test_a_tool_schema_nested_past_what_can_be_hashed_costs_its_line_only(tmp_path: Path) -> None:
    # Hashing the example serialises its tools: pydantic raised "Maximum serialization depth
    # exceeded" out of parse() and the import stopped with an internal error.
    tool = {"type": "function", "function": {"name": "deep", "parameters": _nested(500)}}
    deep = tmp_path / "tools.json"
    deep.write_text(json.dumps([chat("deep", "a", tools=[tool]), chat("kept", "a")]))
    code, payload = cli(tmp_path / "wb.db", "datasets", "import", str(deep), "--name", "d")
    assert code == 0 and payload["imported"] == 1
    assert [e["line"] for e in payload["errors"]] == [1]
    assert payload["errors"][0]["message"].startswith("cannot be stored: nested too deeply")


def test_a_split_seed_beyond_64_bits_is_a_usage_error_not_an_internal_error(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"".join(orjson.dumps(chat(f"q{i}", "a")) + b"\n" for i in range(10)))
    db = tmp_path / "wb.db"
    assert cli(db, "datasets", "import", str(data), "--name", "d")[0] == 0
    code, payload = cli(db, "datasets", "split", "d", "--seed", str(2**70))
    assert code == 2 and "Invalid value for '--seed'" in payload["error"] and "internal error" not in payload["error"]
    code, payload = cli(db, "datasets", "split", "d", "--seed", str(2**63 - 1))
    assert code == 0 and payload["seed"] == 2**63 - 1 and sum(payload["counts"].values()) == 10
