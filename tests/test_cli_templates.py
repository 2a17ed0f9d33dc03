"""`workbench templates ...` as a user runs it: one JSON object per command under --json, failures included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from tests.helpers import WriteJsonl, chat
from workbench.cli import main
from workbench.services.importing import import_path
from workbench.store import Store


def run(db: Path, *args: str, ok: bool = True) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["--db", str(db), "templates", *args, "--json"])
    assert (result.exit_code == 0) == ok, result.output
    lines = result.output.strip().splitlines()
    assert lines and "Traceback" not in result.output
    return orjson.loads(result.output)  # exactly one JSON object


def human(db: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", str(db), "templates", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    texts = {
        "user": "Summarise for {{ audience }}:\n{{ input }}\n",
        "user2": "Summarise in three bullets for {{ audience }}:\n{{ input }}\n",
        "system": "You write clear executive summaries.",
        "hostile": "{{ cycler.__init__.__globals__ }}",
        "broken": "line one\n{% if input %}\nno end",
        "undefined": "{{ input }} {{ tone }}",
    }
    out = {}
    for key, text in texts.items():
        out[key] = tmp_path / f"{key}.j2"
        out[key].write_text(text)
    out["latin1"] = tmp_path / "latin1.j2"
    out["latin1"].write_bytes("caf\xe9 {{ input }}".encode("latin-1"))
    return out


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


def test_create_list_show_label_render_diff(db: Path, files: dict[str, Path]) -> None:
    made = run(db, "create", "summary", "--user-file", str(files["user"]), "--system-file", str(files["system"]),
               "--task", "summarisation", "--model", "amazon.nova-micro-v1:0", "--temperature", "0.2",
               "--max-tokens", "300", "--message", "first cut")
    assert (made["created"], made["new_template"]) == (True, True)
    assert made["version"]["version"] == 1 and made["version"]["variables"] == ["audience", "input"]
    assert made["version"]["settings"]["model"] == "amazon.nova-micro-v1:0"

    same = run(db, "create", "summary", "--user-file", str(files["user"]))
    assert (same["created"], same["version"]["version"]) == (False, 1)
    second = run(db, "create", "summary", "--user-file", str(files["user2"]), "--message", "bullets")
    assert second["created"] and second["version"]["version"] == 2
    assert second["version"]["system_template"] == "You write clear executive summaries."  # kept from version 1

    moved = run(db, "label", "summary", "1", "production")
    assert moved["moved"] and moved["labels"] == {"latest": 2, "production": 1}
    assert run(db, "label", "summary", "1", "production")["moved"] is False

    listed = run(db, "list")["templates"]
    assert [(t["name"], t["task_type"], t["versions"], t["latest"]) for t in listed] == [("summary", "summarisation", 2, 2)]

    shown = run(db, "show", "summary@production")
    assert shown["version"]["version"] == 1 and shown["version"]["commit_message"] == "first cut"
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert {m["label"] for m in shown["moves"]} == {"latest", "production"}

    rendered = run(db, "render", "summary", "--var", "input=Sales rose 4%.", "--var", "audience=the board")["rendered"]
    assert rendered["version"] == 2 and rendered["system"] == "You write clear executive summaries."
    assert rendered["messages"] == [
        {"role": "user", "content": "Summarise in three bullets for the board:\nSales rose 4%."},
    ]
    own = rendered["costs"][0]
    assert own["template_model"] and own["model"] == "amazon.nova-micro-v1:0" and own["output_tokens"] == 300
    assert own["usd"] > 0 and own["source"].startswith("https://")

    diff = run(db, "diff", "summary", "production", "2", "--var", "input=x", "--var", "audience=y")["diff"]
    user = next(p for p in diff["parts"] if p["part"] == "messages[0] (user)")
    assert user["changed"] and "+Summarise in three bullets for y:" in user["diff"]


def test_human_output_shows_the_prompt_tokens_and_costs(db: Path, files: dict[str, Path]) -> None:
    run(db, "create", "summary", "--user-file", str(files["user"]), "--system-file", str(files["system"]))
    out = human(db, "render", "summary@1", "--var", "input=<script>x</script>", "--var", "audience=CEO", "--output-tokens", "50")
    assert "--- system (" in out and "You write clear executive summaries." in out
    assert "Summarise for CEO:\n<script>x</script>" in out
    assert "input tokens in all" in out and "[this version's model]" in out and "50 out x" in out
    assert "created summary@2" in human(db, "create", "summary", "--temperature", "1")
    assert "setting temperature: 0.0 -> 1.0" in human(db, "diff", "summary", "1", "2", "--var", "input=a", "--var", "audience=b")


def test_render_on_a_dataset_example(db: Path, files: dict[str, Path], write_jsonl: WriteJsonl) -> None:
    import_path(Store(db), write_jsonl([chat("Quarterly numbers are up.", "Up.", metadata={"audience": "investors"})]), "notes")
    with Store(db).connect() as conn:
        (example_id,) = conn.execute("SELECT id FROM examples").fetchone()
    run(db, "create", "summary", "--user-file", str(files["user"]))
    rendered = run(db, "render", "summary", "--dataset", "notes", "--example", str(example_id))["rendered"]
    assert rendered["messages"][-1]["content"] == "Summarise for investors:\nQuarterly numbers are up."
    assert rendered["variables"]["reference"] == "Up."
    shot = run(db, "create", "summary", "--shot", str(example_id), "--shots-dataset", "notes")["version"]
    assert shot["few_shot"] == [{"input": "Quarterly numbers are up.", "output": "Up.", "source": f"notes example {example_id}"}]


@pytest.mark.parametrize(("args", "message"), [
    (["render", "nope"], "no template named 'nope'; templates: summary"),
    (["render", "summary@5"], "template 'summary' has no version 5; versions: 1 to 1"),
    (["show", "summary@prod"], "template 'summary' has no label 'prod'; labels: latest -> 1"),
    (["render", "summary", "--var", "input=x"], "summary@1: variable 'audience' used in the user template is not defined (given: input)"),
    (["render", "summary", "--var", "oops"], "--var 'oops': write it as key=value"),
    (["render", "summary", "--example", "42"], "no example with id 42"),
    (["label", "summary", "1", "latest"], "moves by itself"),
    (["label", "summary", "3", "production"], "has no version 3"),
    (["create", "bad name", "--user-file", "{user}"], "bad template name 'bad name'"),
    (["create", "evil", "--user-file", "{hostile}"], "reaches for Python internals ('__globals__'): refused"),
    (["create", "broken", "--user-file", "{broken}"], "syntax error in the user template, line 3"),
    (["create", "summary", "--temperature", "3"], "model setting temperature"),
    (["create", "fresh"], "a new template needs a user template"),
    (["create", "latin", "--user-file", "{latin1}"], "is not UTF-8 text"),
    (["create", "summary", "--shot", "1", "--no-shots"], "contradict each other"),
    (["create", "missing", "--user-file", "/no/such/file.j2"], "does not exist"),
    (["diff", "summary", "1", "9"], "has no version 9"),
])
def test_every_failure_is_one_json_object(db: Path, files: dict[str, Path], args: list[str], message: str) -> None:
    run(db, "create", "summary", "--user-file", str(files["user"]))
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    failed = run(db, *args, ok=False)
    assert failed["ok"] is False and message in failed["error"]


def test_the_installed_command_runs(db: Path, files: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--db", str(db), "templates", "create", "t", "--user-file", str(files["undefined"]),
         "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0 and orjson.loads(proc.stdout)["version"]["variables"] == ["input", "tone"]
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--db", str(db), "templates", "render", "t", "--var", "input=x", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert orjson.loads(proc.stdout) == {
        "ok": False,
        "error": "t@1: variable 'tone' used in the user template is not defined (given: input); "
                 "pass it with --var tone=... or render on a dataset example that has it",
    }
