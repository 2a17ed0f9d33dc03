"""`workbench evaluate ...` as a user runs it: one JSON object per command under --json, failures included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from tests.doubles.chat_server import OPENAI_KEY, ChatDouble, answer, chat_double, failing
from tests.helpers import WriteJsonl, chat
from tests.test_evaluations import BASE, TUNED, add_model, base_answer, tuned_answer
from workbench.cli import main
from workbench.services import importing, splits, templates, versions
from workbench.store import Store


@pytest.fixture(scope="module")
def double() -> Iterator[ChatDouble]:
    with chat_double() as served:
        yield served


@pytest.fixture
def db(store: Store, write_jsonl: WriteJsonl, double: ChatDouble, monkeypatch: pytest.MonkeyPatch) -> Path:
    """'support' (20 questions, half test, frozen as v1), template 'ask', fine-tune #1; OpenAI pointed at the double."""
    double.reset()
    double.script(BASE, answer(base_answer))
    double.script(TUNED, answer(tuned_answer))
    monkeypatch.setenv("OPENAI_BASE_URL", double.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    importing.import_path(store, write_jsonl([chat(f"Question {i}: where is my order?", f"Answer {i}") for i in range(20)]), "support")
    splits.split_dataset(store, "support", (0.5, 0.0, 0.5), seed=3)
    versions.freeze(store, "support", "v1")
    templates.create_version(store, "ask", user_template="{{ input }}", settings={"model": BASE, "max_tokens": 20})
    add_model(store, "support-ft")
    return store.path


def run(db: Path, *args: str, ok: bool = True) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["--db", str(db), "evaluate", *args, "--json"])
    assert (result.exit_code == 0) == ok, result.output
    assert "Traceback" not in result.output
    payload: dict[str, Any] = orjson.loads(result.output)  # exactly one JSON object
    assert payload["ok"] is ok
    return payload


def human(db: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", str(db), "evaluate", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_run_list_show_and_compare(db: Path) -> None:
    tuned = run(db, "run", "support-ft", "--template", "ask@1")
    assert (tuned["model_ref"], tuned["base_model"], tuned["dataset"], tuned["split"], tuned["inputs"]) == (
        "model:1", f"openai:{BASE}", "support", "test", 10)
    [variant] = tuned["variants"]
    assert variant["model"] == TUNED and variant["cells"] == 10
    base = run(db, "run", f"openai:{BASE}", "--template", "ask@1", "--dataset", "support", "--version", "v1")
    assert base["model_ref"] == f"openai:{BASE}" and base["base_model"] is None

    listed = run(db, "list")["evaluations"]
    assert [e["run_id"] for e in listed] == [base["run_id"], tuned["run_id"]]
    assert [e["run_id"] for e in run(db, "list", "--model", "support-ft")["evaluations"]] == [tuned["run_id"]]

    shown = run(db, "show", str(tuned["run_id"]), "--cells")
    assert shown["evaluation"]["model_ref"] == "model:1" and len(shown["cells"]) == 10

    compared = run(db, "compare", str(base["run_id"]), str(tuned["run_id"]), "--examples", "3")
    overall = compared["paired"]["overall"]
    assert overall["pairs"] == 10 and overall["wins"] + overall["losses"] + overall["ties"] == 10
    assert {"win_rate", "win_rate_ci", "mcnemar_p", "only_candidate_passed", "only_base_passed"} <= set(overall)
    assert [a["label"] for a in compared["paired"]["assertions"]] == ["equals"]
    assert len(compared["best"]) <= 3 and all({"input", "base_output", "candidate_output", "reference"} <= set(p) for p in compared["best"])
    assert all(p["candidate_passed"] and not p["base_passed"] for p in compared["best"])

    text = human(db, "compare", str(base["run_id"]), str(tuned["run_id"]))
    assert "overall: wins" in text and "McNemar p" in text and "best:" in text and "worst:" in text and "changed:" in text


def test_a_human_run_points_at_the_base_evaluation(db: Path) -> None:
    text = human(db, "run", "1", "--template", "ask@1", "--limit", "4")
    assert f"against its base: `workbench evaluate run openai:{BASE} --template ask@1 --dataset support --version v1 " \
           "--split test --limit 4`" in text


@pytest.mark.parametrize(("args", "message"), [
    (["run", "nope", "--template", "ask@1"], "no model 'nope'"),
    (["run", f"openai:{BASE}", "--template", "ask@1"], "name the dataset"),
    (["run", "support-ft", "--template", "missing@1"], "missing"),
    (["run", "support-ft", "--template", "ask@1", "--version", "v9"], "no version named 'v9'"),
    (["run", "support-ft", "--template", "ask@1", "--limit", "0"], "limit must be 1"),
    (["show", "42"], "no evaluation run 42"),
    (["compare", "1", "2"], "no evaluation run 1"),
])
def test_failures_are_one_json_object(db: Path, args: list[str], message: str) -> None:
    payload = run(db, *args, ok=False)
    assert message in payload["error"], payload


def test_a_mismatched_pair_is_refused_with_what_differs(db: Path) -> None:
    first = run(db, "run", "support-ft", "--template", "ask@1", "--limit", "3")
    second = run(db, "run", "support-ft", "--template", "ask@1", "--split", "train", "--limit", "3")
    payload = run(db, "compare", str(first["run_id"]), str(second["run_id"]), ok=False)
    assert "different split ('test'" in payload["error"]


def test_the_installed_command_runs_an_evaluation(db: Path, double: ChatDouble) -> None:
    env = {**os.environ, "OPENAI_BASE_URL": double.openai_base_url, "OPENAI_API_KEY": OPENAI_KEY}
    done = subprocess.run([sys.executable, "-m", "workbench", "--db", str(db), "evaluate", "run", "support-ft", "--template", "ask@1",
                           "--limit", "2", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["variants"][0]["cells"] == 2
    assert done.stderr == "", "no progress noise under --json"


def test_a_run_whose_every_input_failed_exits_1_and_is_still_kept(db: Path, double: ChatDouble) -> None:
    double.script(TUNED, failing(404, "The model does not exist"))
    payload = run(db, "run", "support-ft", "--template", "ask@1", "--limit", "3", ok=False)
    assert payload["run_id"] and payload["variants"][0]["errors"] == 3, "the run is kept and named"
    assert f"run {payload['run_id']}" in payload["error"] and "all 3 inputs failed" in payload["error"]
    assert "does not exist" in payload["error"], "the first cell's error is named"
    assert "passed 0/3 (0%), 3 errors" in human(db, "list")

    result = CliRunner().invoke(main, ["--db", str(db), "evaluate", "run", "support-ft", "--template", "ask@1", "--limit", "3"])
    assert result.exit_code == 1 and "all 3 inputs failed" in result.output


def test_a_template_variable_the_dataset_lacks_names_what_it_has_not_var(db: Path) -> None:
    from workbench.services import templates as template_service

    template_service.create_version(Store(db), "needs-foo", user_template="{{ foo }}", settings={"model": BASE})
    payload = run(db, "run", "support-ft", "--template", "needs-foo@1", ok=False)
    assert "'foo'" in payload["error"] and "they give: input, messages, reference" in payload["error"]
    assert "--var" not in payload["error"]


@pytest.mark.parametrize("args", [["show", "99999999999999999999999"], ["compare", "1", "99999999999999999999999"],
                                  ["compare", "99999999999999999999999", "1"]])
def test_a_run_id_too_large_is_no_evaluation_run(db: Path, args: list[str]) -> None:
    run(db, "run", "support-ft", "--template", "ask@1", "--limit", "2")
    payload = run(db, *args, ok=False)
    assert "no evaluation run 99999999999999999999999" in payload["error"], payload
    assert "internal error" not in payload["error"]


def test_show_cells_prints_the_cells_in_text(db: Path, double: ChatDouble) -> None:
    first = run(db, "run", "support-ft", "--template", "ask@1", "--limit", "3")
    text = human(db, "show", str(first["run_id"]), "--cells")
    lines = [line for line in text.splitlines() if line.strip().startswith("row ")]
    assert len(lines) == 3, text
    assert all(("passed" in line or "failed" in line) and "example " in line and "score" in line for line in lines), lines
    assert "'Answer" in text, "the output, shortened"
