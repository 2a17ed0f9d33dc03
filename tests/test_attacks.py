"""Faults found by attacking the datasets capability through the real CLI, each pinned by a test.

Every case runs `python -m workbench ... --json` in a subprocess, as a script would, and checks the
promise of the CLI (one JSON object on stdout, no traceback on stderr) as well as what was kept.
"""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from tests.helpers import chat
from workbench.domain.pii import find_pii_in_text
from workbench.domain.pii.numeric import _IPV4


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


def test_a_jsonl_file_whose_first_line_is_damaged_keeps_its_other_lines(tmp_path: Path) -> None:
    # A comma in the first line made the reader take a .jsonl file for CSV: the whole file was
    # refused ("CSV header has columns ...") although only line 1 was broken.
    damaged = tmp_path / "damaged.jsonl"
    good = orjson.dumps(chat("q2", "a2")).decode()
    damaged.write_text(good[1:] + "\n" + good.replace("q2", "q3") + "\n")
    code, payload = cli(tmp_path / "wb.db", "datasets", "import", str(damaged), "--name", "d")
    assert code == 0 and payload["imported"] == 1 and payload["format"] == "openai"
    assert [e["line"] for e in payload["errors"]] == [1]
    assert payload["errors"][0]["message"].startswith("not JSON: expected an object starting with '{'")


def test_dataset_names_that_hide_or_reverse_text_are_refused_on_import_and_rename(tmp_path: Path) -> None:
    # "ab\u202ecd" lists as "abdc"; "a\u200bb" lists exactly like "ab"; "\u200d" lists as nothing.
    data = tmp_path / "d.jsonl"
    data.write_bytes(orjson.dumps(chat("q", "a")) + b"\n")
    db = tmp_path / "wb.db"
    for name, shown in [("ab\u202ecd", "U+202E"), ("a\u200bb", "U+200B"), ("\u2066x\u2069", "U+2066"), ("\u200d", "shows nothing")]:
        code, payload = cli(db, "datasets", "import", str(data), "--name", name)
        assert code == 1 and shown in payload["error"], payload
    assert cli(db, "datasets", "import", str(data), "--name", "na\u00efve \U0001f469\u200d\U0001f4bb")[0] == 0  # ZWJ in an emoji is fine
    code, payload = cli(db, "datasets", "rename", "na\u00efve \U0001f469\u200d\U0001f4bb", "x\u202e")
    assert code == 1 and "U+202E" in payload["error"]
    assert [d["name"] for d in cli(db, "datasets", "list")[1]["datasets"]] == ["na\u00efve \U0001f469\u200d\U0001f4bb"]


def test_a_csv_quote_never_closed_is_reported_not_swallowed_into_one_cell(tmp_path: Path) -> None:
    # The lenient csv reader read lines 3-5 into the completion of line 3 and said nothing: a
    # "successful" import of one example whose answer held the rest of the file.
    data = tmp_path / "rows.csv"
    data.write_text('prompt,completion\np1,c1\np2,"never closed\np3,c3\np4,c4\n')
    code, payload = cli(tmp_path / "wb.db", "datasets", "import", str(data), "--name", "d")
    assert code == 0 and payload["imported"] == 1
    assert payload["errors"] == [{
        "line": 3,
        "message": "a quoted cell opened here is never closed: lines 3-5 (the rest of the file) were read as one cell, "
        'so the row was skipped; close the quote or double it ("")',
    }]
    # A quoted cell spanning lines, and a last row without a newline, are still whole rows.
    data.write_text('prompt,completion\np1,"two\nlines"\np2,"last"')
    code, payload = cli(tmp_path / "wb.db", "datasets", "import", str(data), "--name", "e")
    assert code == 0 and payload["imported"] == 2 and payload["errors"] == []


def test_jsonl_with_cr_only_line_ends_says_so(tmp_path: Path) -> None:
    # Every record sat on "line 1" and the only message was "unexpected content after document".
    data = tmp_path / "mac.jsonl"
    data.write_bytes(b"".join(orjson.dumps(chat(f"q{i}", "a")) + b"\r" for i in range(3)))
    code, payload = cli(tmp_path / "wb.db", "datasets", "import", str(data), "--name", "d")
    assert code == 1 and payload["error_count"] == 1
    assert "the lines end in CR alone (classic Mac line endings); JSON Lines needs LF or CRLF line ends" in payload["error"]


def test_pii_scan_of_a_long_run_of_dots_and_digits_stays_linear_and_quick() -> None:
    # Every position of "1.1.1.1.1..." was a dotted-quad match rejected in Python: 1 s per MB, so a
    # 10 MB record took 11 s to scan, and as long again to scrub.
    hostile = "1." * 1_000_000
    assert next(_IPV4.finditer(hostile), None) is None  # rejected by the regex engine, not one by one in Python
    began = time.perf_counter()
    assert find_pii_in_text(hostile) == []
    elapsed = time.perf_counter() - began
    assert elapsed < 10, f"2 MB of dots and digits took {elapsed:.1f} s to scan"  # a generous bound: the machine may be busy
    found = find_pii_in_text("ssh to 10.0.0.1 now, not 1.2.3.4.5")  # addresses standing alone are still found
    assert [(f.kind, f.text) for f in found] == [("ip_address", "10.0.0.1")]


def test_a_utf16_json_array_broken_part_way_keeps_the_elements_before_the_break(tmp_path: Path) -> None:
    # The array reader asked for 1 MB at once; the re-encoder raised on the bad code unit inside that
    # read and the good text before it went with it: "cannot be read", no line, nothing imported.
    items = [orjson.dumps(chat(f"q{i} " + "x" * 40, "a")).decode() for i in range(9000)]
    kept = 6000
    head = "[\n" + ",\n".join(items[:kept]) + ",\n"
    tail = ",\n".join(items[kept:]) + "\n]\n"
    data = tmp_path / "u16.json"
    data.write_bytes(codecs.BOM_UTF16_LE + head.encode("utf-16-le") + b"\x00\xdc" + tail.encode("utf-16-le"))
    code, payload = cli(tmp_path / "wb.db", "datasets", "import", str(data), "--name", "d")
    assert code == 1 and payload["imported"] == kept
    assert payload["fault"]["line"] == kept + 2  # line 1 is the '['
    offset = len(codecs.BOM_UTF16_LE + head.encode("utf-16-le"))
    assert f"not valid UTF-16-LE (illegal encoding), at byte {offset:,} of the file" in payload["fault"]["message"]
