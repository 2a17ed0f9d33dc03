"""`workbench distill ...` as a user runs it: the estimate first, a question before spending, one JSON object under --json."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from tests.doubles.chat_server import OPENAI_KEY, ChatDouble, answer, chat_double, failing
from tests.helpers import WriteJsonl, chat
from workbench.cli import main
from workbench.services import importing, templates
from workbench.store import Store

NOVA = "amazon.nova-lite-v1:0"
TEACHER = f"openai:{NOVA}"


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatDouble]:
    with chat_double() as served:
        served.script(NOVA, answer(lambda r: '["How do refunds work?", "Can I return a gift?"]'
                                   if "Topic:" in r["messages"][-1]["content"] else "A teacher's answer."))
        monkeypatch.setenv("OPENAI_BASE_URL", served.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        yield served


@pytest.fixture
def db(store: Store, write_jsonl: WriteJsonl) -> Path:
    importing.import_path(store, write_jsonl([chat(f"Question {i}?", f"Answer {i}.") for i in range(4)]), "support")
    templates.create_version(store, "answer", user_template="{{ input }}", settings={"model": NOVA, "max_tokens": 100})
    return store.path


def invoke(db: Path, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, ["--db", str(db), "distill", *args], input=stdin)


def as_json(db: Path, *args: str, ok: bool = True) -> dict[str, Any]:
    result = invoke(db, *args, "--json")
    assert (result.exit_code == 0) == ok, result.output
    assert "Traceback" not in result.output
    return orjson.loads(result.output)  # exactly one JSON object


BASE = ("--teacher", TEACHER, "--template", "answer@1")


def test_estimate_prints_calls_tokens_and_the_cost_range(db: Path, double: ChatDouble) -> None:
    found = as_json(db, "estimate", *BASE, "--dataset", "support")
    assert found["ok"] is True and found["calls"] == 4 and found["cost_low_usd"] <= found["cost_high_usd"]
    assert "nova-lite" in found["price_row"] and double.calls == 0
    words = invoke(db, "estimate", *BASE, "--dataset", "support").output
    assert "4 calls" in words and "cost: $" in words and "at most" in words


def test_run_under_json_needs_yes_and_says_so_in_one_object(db: Path, double: ChatDouble) -> None:
    refused = as_json(db, "run", *BASE, "--dataset", "support", "--into", "out", ok=False)
    assert refused["ok"] is False and "--yes" in refused["error"] and refused["estimate"]["calls"] == 4
    assert double.calls == 0


def test_run_asks_first_and_a_no_calls_nothing(db: Path, double: ChatDouble) -> None:
    said_no = invoke(db, "run", *BASE, "--dataset", "support", "--into", "out", stdin="n\n")
    assert said_no.exit_code != 0 and "Run it?" in said_no.output and double.calls == 0

    said_yes = invoke(db, "run", *BASE, "--dataset", "support", "--into", "out", stdin="y\n")
    assert said_yes.exit_code == 0, said_yes.output
    assert "landed 4 in out" in said_yes.output and "4 waiting for review" in said_yes.output and double.calls == 4


def test_run_with_yes_lands_a_new_dataset_then_list_show_and_resume(db: Path, double: ChatDouble) -> None:
    done = as_json(db, "run", *BASE, "--dataset", "support", "--into", "out", "--yes")
    assert done["ok"] is True and done["state"] == "done" and done["landed"] == 4 and done["queued"] == 4
    listed = as_json(db, "list")
    assert [r["id"] for r in listed["runs"]] == [done["id"]] and listed["runs"][0]["into_dataset"] == "out"
    assert as_json(db, "show", str(done["id"]))["landed"] == 4
    again = as_json(db, "resume", str(done["id"]))
    assert again["already"] == 4 and again["landed"] == 0 and double.calls == 4, "a resume calls only what is missing"


def test_run_from_seed_topics(db: Path, double: ChatDouble, tmp_path: Path) -> None:
    seeds = tmp_path / "topics.txt"
    seeds.write_text("# what customers ask about\nrefunds\n\nreturns\n", encoding="utf-8")
    done = as_json(db, "run", *BASE, "--seeds", str(seeds), "--per-topic", "2", "--into", "seeded", "--yes")
    assert done["topics"] == 2 and done["inputs"] == 2, "the second topic's inputs repeat the first's and are dropped"
    assert done["landed"] == 2 and double.calls == 2 + 2
    assert [(u["topic"], u["problem"]) for u in done["unusable_replies"]] == [
        ("returns", "2 of its 2 inputs repeated an earlier topic's and were dropped")]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("run", *BASE, "--dataset", "support", "--yes"), "say where the answers land"),
        (("run", *BASE, "--dataset", "support", "--into", "support", "--yes"), "already exists"),
        (("run", "--teacher", "gpt-4o", "--template", "answer@1", "--dataset", "support", "--into", "x", "--yes"), "CLIENT:MODEL"),
        (("estimate", *BASE, "--seeds", "/nonexistent/topics.txt"), "could not read the seed topics"),
        (("resume", "99"), "no distillation 99"),
        (("show", "99"), "no distillation 99"),
    ],
)
def test_failures_are_one_json_object(db: Path, double: ChatDouble, args: tuple[str, ...], said: str) -> None:
    failed = as_json(db, *args, ok=False)
    assert failed["ok"] is False and said in failed["error"]
    assert double.calls == 0


def test_an_empty_seed_file_is_refused(db: Path, double: ChatDouble, tmp_path: Path) -> None:
    seeds = tmp_path / "empty.txt"
    seeds.write_text("# nothing here\n\n", encoding="utf-8")
    failed = as_json(db, "estimate", *BASE, "--seeds", str(seeds), ok=False)
    assert "no seed topics" in failed["error"]


def test_a_run_where_nothing_lands_fails_with_the_first_error_and_the_resume_command(db: Path, double: ChatDouble) -> None:
    double.script(NOVA, failing(401, "invalid api key"))
    failed = as_json(db, "run", *BASE, "--dataset", "support", "--into", "out", "--yes", ok=False)
    assert failed["ok"] is False and failed["state"] == "failed" and failed["landed"] == 0 and failed["failed"] == 4
    assert "nothing landed: all 4 inputs failed" in failed["error"] and "invalid api key" in failed["error"]
    assert f"workbench distill resume {failed['id']}" in failed["error"]
    assert as_json(db, "list")["runs"][0]["into_dataset"] == "out"
    words = invoke(db, "resume", str(failed["id"]))
    assert words.exit_code != 0 and "nothing landed" in words.output

    double.script(NOVA, answer("A teacher's answer."))
    fixed = as_json(db, "resume", str(failed["id"]))
    assert fixed["ok"] is True and fixed["landed"] == 4


def test_an_unpriced_teacher_says_cost_unknown_not_zero(db: Path, double: ChatDouble) -> None:
    double.script("my-own-model", answer("A local answer."))
    args = ("--teacher", "openai:my-own-model", "--template", "answer@1", "--dataset", "support", "--limit", "1", "--yes")
    done = as_json(db, "run", *args, "--into", "local-out")
    assert done["ok"] is True and done["cost_usd"] is None and done["cost_saved_usd"] is None
    words = invoke(db, "show", str(done["id"])).output
    assert "cost unknown (no price for my-own-model)" in words and "$0.0000" not in words
