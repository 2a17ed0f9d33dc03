"""The CLI as a user runs it: real subprocesses, one JSON object per command under --json."""

from __future__ import annotations

import os
import signal
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
    assert "Traceback" not in proc.stderr, proc.stderr
    return orjson.loads(proc.stdout)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


def test_import_validate_split_freeze_export_round_trip(db: Path, write_jsonl: WriteJsonl, tmp_path: Path) -> None:
    records = [chat(f"Question {i}", f"Answer {i}", system="Be brief.", metadata={"label": "xy"[i % 2]}) for i in range(40)]
    path = write_jsonl([*records, b"{broken", chat("Mail me: a@b.example", "ok")])

    imported = run(db, "datasets", "import", str(path), "--name", "qa")
    assert (imported["imported"], imported["duplicates"], imported["format"]) == (41, 0, "openai")
    assert imported["errors"] == [{"line": 41, "message": "not valid JSON: unexpected character, expected a string key at column 2"}]
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
    assert run(db, "datasets", "import", str(empty), "--name", "x", ok=False) == {
        "ok": False, "error": "empty.jsonl: the file is empty; nothing to import"
    }
    none = tmp_path / "none.jsonl"
    assert run(db, "datasets", "import", str(none), "--name", "x", ok=False) == {"ok": False, "error": f"{none}: no such file"}


def cli(*args: str, code: int, prelude: str = "", **popen: Any) -> subprocess.CompletedProcess[str]:
    """Run the CLI (after `prelude`, Python run first in the same process); check its exit status and stderr."""
    script = f"import sys\n{prelude}\nfrom workbench.cli import main\nmain()"
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120, **popen)
    assert proc.returncode == code, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr and "Aborted!" not in proc.stderr + proc.stdout, proc.stderr
    return proc


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["datasets", "import", "--json"], "Missing argument 'PATH'."),
        (["datasets", "validate", "d", "--target", "gpt-9", "--json"], "Invalid value for '--target': 'gpt-9' is not one of"),
        (["datasets", "list", "--colour", "--json"], "No such option '--colour'."),
        (["datasets", "frobnicate", "--json"], "No such command 'frobnicate'."),
    ],
)
def test_usage_errors_under_json_are_one_json_object(db: Path, args: list[str], message: str) -> None:
    proc = cli("--db", str(db), *args, code=2)
    payload = orjson.loads(proc.stdout)
    assert payload["ok"] is False and payload["error"].startswith(message)
    assert set(payload) == {"ok", "error"} and proc.stderr == ""


def test_an_unexpected_exception_is_one_json_error_and_a_non_zero_exit(db: Path) -> None:
    broken = "import workbench.services.datasets as d\nd.list_datasets = lambda store: 1 / 0"
    proc = cli("--db", str(db), "datasets", "list", "--json", code=1, prelude=broken)
    assert orjson.loads(proc.stdout) == {"ok": False, "error": "internal error: ZeroDivisionError: division by zero"}
    plain = cli("--db", str(db), "datasets", "list", code=1, prelude=broken)
    assert (plain.stdout, plain.stderr) == ("", "Error: internal error: ZeroDivisionError: division by zero\n")


def test_ctrl_c_during_an_import_is_one_json_error_and_keeps_what_was_committed(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"".join(orjson.dumps(chat(f"Question {i}", f"Answer {i}")) + b"\n" for i in range(60_000)))
    child = subprocess.Popen(
        [sys.executable, "-m", "workbench", "--db", str(db), "datasets", "import", str(path), "--name", "big", "--progress", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stderr is not None
    first = child.stderr.readline()
    assert first.startswith("progress "), first
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert orjson.loads(stdout) == {"ok": False, "error": "interrupted; work already committed is kept"}
    assert "Traceback" not in stderr and "Aborted!" not in stderr


def closed_reader(db: Path, *args: str) -> tuple[int, str]:
    """Run the CLI with its reader gone before it writes (`... | head -0`); return its status and stderr."""
    child = subprocess.Popen(
        [sys.executable, "-m", "workbench", "--db", str(db), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader goes away before the command writes
    stderr = child.stderr.read()
    return child.wait(timeout=60), stderr


def test_a_closed_stdout_ends_quietly_with_the_status_the_command_would_have_had(db: Path, write_jsonl: WriteJsonl) -> None:
    # A shell user's `workbench datasets list | head -1` is not a failure: no message, status 0.
    run(db, "demo", "load", "--no-history")
    assert closed_reader(db, "datasets", "list", "--json") == (0, "")
    assert closed_reader(db, "datasets", "list") == (0, "")
    # A rejected dataset still exits 1 when nobody reads the report: the status is the verdict.
    run(db, "datasets", "import", str(write_jsonl([chat("q", "a")])), "--name", "tiny")
    assert closed_reader(db, "datasets", "validate", "tiny", "--target", "openai") == (1, "")
    assert closed_reader(db, "datasets", "validate", "tiny", "--target", "openai", "--json") == (1, "")
    # A failure's message still reaches stderr when stdout is gone.
    assert closed_reader(db, "datasets", "show", "nope") == (1, "Error: no dataset named 'nope'\n")
    # Started with stdout closed altogether (`>&-`): quiet too.
    closed = ["bash", "-c", '"$@" >&-', "bash", sys.executable, "-m", "workbench", "--db", str(db), "datasets", "list", "--json"]
    proc = subprocess.run(closed, stderr=subprocess.PIPE, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (0, "")


def human(db: Path, *args: str, code: int = 0, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI without --json, as a person at a shell; check its status and that nothing crashed."""
    proc = subprocess.run([sys.executable, "-m", "workbench", "--db", str(db), *args], capture_output=True, text=True,
                          timeout=120, input=stdin)
    assert proc.returncode == code, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr and "Aborted!" not in proc.stderr, proc.stderr
    return proc


def test_rules_list_is_a_table_that_shows_whether_each_rule_is_on(db: Path) -> None:
    assert human(db, "rules", "list").stdout == "no rules; add one with `workbench rules add`\n"
    run(db, "rules", "add", "no ai", "--regex", "as an ai", "--scope", "assistant", "--action", "block")
    run(db, "rules", "add", "profanity", "--words", "damn,crap")
    lines = human(db, "rules", "list").stdout.splitlines()
    assert lines[0].split() == ["id", "name", "enabled", "action", "scope", "pattern"]
    assert lines[1].split()[:6] == ["1", "no", "ai", "yes", "block", "assistant"]
    assert lines[2].split()[:5] == ["2", "profanity", "yes", "warn", "any"] and "'damn,crap'" in lines[2]
    # Aligned: every column starts at the same place on every line.
    for column in ("name", "enabled", "action", "scope", "pattern"):
        start = lines[0].index(column)
        assert all(line[start - 2 : start] == "  " and line[start] != " " for line in lines[1:]), (column, lines)
    assert [r["enabled"] for r in run(db, "rules", "list")["rules"]] == [True, True]


def test_rules_delete_says_it_affects_every_dataset_and_needs_yes(db: Path, write_jsonl: WriteJsonl) -> None:
    for name in ("a", "b"):
        run(db, "datasets", "import", str(write_jsonl([chat(f"q {name}", "a")], name=f"{name}.jsonl")))
    rule_id = run(db, "rules", "add", "no ai", "--regex", "as an ai")["rule"]["id"]

    refused = run(db, "rules", "delete", str(rule_id), ok=False)
    assert refused == {"ok": False, "error": f"rule {rule_id} 'no ai' applies to every dataset: deleting it changes "
                                            "the checks of 2 datasets; add --yes to confirm"}
    # No terminal to ask at: refused the same way, in words, whatever is piped in.
    assert "add --yes to confirm" in human(db, "rules", "delete", str(rule_id), code=1, stdin="y\n").stderr
    assert run(db, "rules", "delete", "99", ok=False) == {"ok": False, "error": "no rule with id 99"}
    assert len(run(db, "rules", "list")["rules"]) == 1

    assert run(db, "rules", "delete", str(rule_id), "--yes") == {"ok": True, "deleted": rule_id}
    assert run(db, "rules", "list")["rules"] == []


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize(("answer", "kept"), [("n", True), ("y", False)])
def test_rules_delete_at_a_terminal_asks_first(db: Path, write_jsonl: WriteJsonl, answer: str, kept: bool) -> None:
    run(db, "datasets", "import", str(write_jsonl([chat("q", "a")])), "--name", "d")
    rule_id = run(db, "rules", "add", "no ai", "--regex", "as an ai")["rule"]["id"]
    leader, follower = os.openpty()  # stdin is a terminal, as for a person typing
    try:
        os.write(leader, f"{answer}\n".encode())
        proc = subprocess.run([sys.executable, "-m", "workbench", "--db", str(db), "rules", "delete", str(rule_id)],
                              stdin=follower, capture_output=True, text=True, timeout=120)
    finally:
        os.close(follower)
        os.close(leader)
    assert "Traceback" not in proc.stderr
    assert "applies to every dataset: deleting it changes the checks of 1 dataset. Delete it?" in proc.stdout
    assert proc.returncode == (1 if kept else 0), proc.stderr
    assert len(run(db, "rules", "list")["rules"]) == (1 if kept else 0)


def test_guardrails_names_the_blocked_examples_rules_and_turns(db: Path, write_jsonl: WriteJsonl) -> None:
    records = [chat(f"Question {i}", f"As an AI language model, no ({i}).", system="Be kind.") for i in range(23)]
    records.append(chat("Is it risk-free profit?", "Fine.", system="Be kind."))
    run(db, "datasets", "import", str(write_jsonl([*records, chat("ok", "fine")])), "--name", "d")
    run(db, "rules", "add", "no ai", "--regex", "as an ai", "--scope", "assistant", "--action", "block")
    run(db, "rules", "add", "promises", "--words", "risk-free profit", "--action", "block")
    ids = run(db, "datasets", "guardrails", "d", ok=False)["failing"]
    assert len(ids) == 24

    out = human(db, "datasets", "guardrails", "d", code=1).stdout.splitlines()
    assert out[0] == "pass rate 4.0% over 25 examples; 24 blocked"
    assert out[1] == f"  example {ids[0]['example_id']}: rule 'no ai' in turn 2 (assistant)"
    assert len(out) == 1 + 20 + 1 and out[-1] == "  ... and 4 more blocked examples"
    # With the first rule gone, the one left blocks the last example, for what its user turn says.
    run(db, "rules", "delete", "1", "--yes")
    lines = human(db, "datasets", "guardrails", "d", code=1).stdout.splitlines()
    assert lines[1:] == [f"  example {ids[-1]['example_id']}: rule 'promises' in turn 1 (user)"]


def test_rules_and_cleaning_commands(db: Path, write_jsonl: WriteJsonl) -> None:
    path = write_jsonl([chat("hello there", "As an AI language model, no."), chat("hello there!", "As an AI language model, no."), chat("q", "fine")])
    run(db, "datasets", "import", str(path), "--name", "d")
    rule = run(db, "rules", "add", "ai", "--regex", "as an ai", "--scope", "assistant", "--action", "block")["rule"]
    assert rule["scope"] == "assistant"
    bad = run(db, "rules", "add", "broken", "--regex", "(", ok=False)
    assert bad == {"ok": False, "error": "Invalid regular expression at position 0: missing ), unterminated subpattern."}
    report = run(db, "datasets", "guardrails", "d", ok=False)
    assert report["checked"] == 3 and report["passed"] == 1
    dedup = run(db, "datasets", "dedup", "d", "--resolve")
    assert dedup["deleted"] == 1
    assert run(db, "datasets", "pii", "d")["examples_with_pii"] == 0


def test_demo_load_fills_an_empty_store_once(db: Path) -> None:
    loaded = run(db, "demo", "load", "--if-empty", "--history-rows", "5000")
    assert not loaded["skipped"] and len(loaded["datasets"]) == 3 and loaded["predictions"] == 5000
    assert all(n >= 200 for n in loaded["datasets"].values())
    assert run(db, "demo", "load", "--if-empty")["skipped"] is True
    shown = run(db, "datasets", "show", "demo-geo-compliance")
    assert set(shown["splits"]) == {"train", "validation", "test"}
    pii = run(db, "datasets", "pii", "demo-stylist-feedback")
    assert pii["examples_with_pii"] > 0
    assert run(db, "datasets", "guardrails", "demo-optimization-modeling", ok=False)["pass_rate"] < 1.0


def test_import_without_a_name_uses_the_file_name_as_the_app_does(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "support-tickets.jsonl"
    path.write_bytes(orjson.dumps(chat("Where is my order?", "It ships today.")) + b"\n")
    imported = run(db, "datasets", "import", str(path))
    assert (imported["dataset"], imported["imported"]) == ("support-tickets", 1)
    listed = run(db, "datasets", "list")
    assert [d["name"] for d in listed["datasets"]] == ["support-tickets"]


def test_import_prints_its_notes_in_the_terminal_too(tmp_path: Path, write_jsonl: WriteJsonl) -> None:
    record = {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "One."}, {"text": "Two."}],
              "messages": [{"role": "user", "content": [{"text": "q"}]}, {"role": "assistant", "content": [{"text": "a"}]}]}
    path = write_jsonl([record], name="two_system.jsonl")
    proc = cli("--db", str(tmp_path / "w.db"), "datasets", "import", str(path), code=0)
    assert "line 1 (kept, note): system: 2 text items joined into one system prompt" in proc.stderr
