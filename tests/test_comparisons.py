"""Comparisons end to end: real SDK clients against the local chat double, a real SQLite store.

A 3-variant x 20-input matrix is run and its cells, summary and cache checked; failures (a model
erroring, timing out, rate limiting, a template that cannot render) fail their own cells only.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.chat_server import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    Behaviour,
    ChatDouble,
    answer,
    chat_double,
    failing,
    hang,
    rate_limited,
)
from tests.helpers import WriteJsonl, chat
from workbench.domain.comparison import RetryPolicy
from workbench.domain.progress import Progress
from workbench.errors import InvalidInput, WorkbenchError
from workbench.providers.inference import client_for
from workbench.services import comparisons, importing, templates
from workbench.store import Store

QUICK = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)
NO_RETRY = RetryPolicy(failure_attempts=1, base_delay_s=0.0)
NOVA = "amazon.nova-lite-v1:0"
"""A model the catalogue prices on demand, so cells carry a cost."""


def right_answer(request: dict[str, Any]) -> str:
    """Answer 'Question N ...' with 'Answer N', the reference the dataset holds."""
    last = request["messages"][-1]["content"]
    text = last if isinstance(last, str) else " ".join(part.get("text", "") for part in last)
    found = re.search(r"Question (\d+)", text)
    return f"Answer {found.group(1)}" if found else "no idea"


def half_right(request: dict[str, Any]) -> str:
    given = right_answer(request)
    return given if int(given.split()[-1]) % 2 == 0 else "Answer ?"


@pytest.fixture(scope="module")
def double() -> Iterator[ChatDouble]:
    with chat_double() as served:
        yield served


@pytest.fixture
def clients(double: ChatDouble) -> dict[str, Any]:
    double.reset()
    double.script("good", answer(right_answer))
    double.script(NOVA, answer(right_answer))
    double.script("half", answer(half_right))
    return {
        "openai": client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY),
        "anthropic": client_for("anthropic", base_url=double.anthropic_base_url, api_key=ANTHROPIC_KEY),
    }


@pytest.fixture
def loaded(store: Store, write_jsonl: WriteJsonl) -> Store:
    importing.import_path(store, write_jsonl([chat(f"Question {i}: where is my order?", f"Answer {i}") for i in range(20)]), "support")
    templates.create_version(store, "ask", user_template="{{ input }}", settings={"model": "good", "max_tokens": 50})
    templates.create_version(store, "polite", system_template="Be brief.", user_template="Please help. {{ input }}",
                             settings={"model": "good", "max_tokens": 50})
    return store


def run(store: Store, clients: dict[str, Any], variants: list[str], **options: Any) -> comparisons.RunReport:
    options.setdefault("dataset", "support")
    options.setdefault("limit", 20)
    return comparisons.run_comparison(store, variants, clients=clients, retry=QUICK, **options)


def test_a_three_by_twenty_matrix_runs_and_is_summarised(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    result = run(loaded, clients, ["ask=openai:good", "polite=anthropic:good", "ask=openai:half"], concurrency=4)

    assert result.state == "done" and result.inputs == 20
    assert result.assertions == ["equals"], "with references and no assertion chosen, equals-reference is the default"
    good, polite, half = result.variants
    assert (good.label, good.cells, good.passed, good.failed, good.errors) == ("ask@1=openai:good", 20, 20, 0, 0)
    assert (polite.passed, polite.errors) == (20, 0)
    assert (half.passed, half.failed) == (10, 10)
    assert half.summary.pass_rate == 0.5 and half.summary.pass_rate_ci is not None
    assert half.summary.pass_rate_ci.low < 0.5 < half.summary.pass_rate_ci.high
    assert good.latency_p50_ms is not None and good.latency_p95_ms >= good.latency_p50_ms  # type: ignore[operator]
    assert good.cache_hits == 0 and double.calls == 60

    cells = comparisons.run_cells(loaded, result.run_id)
    assert len(cells) == 60 and {(c.row, c.variant) for c in cells} == {(r, v) for r in range(20) for v in range(3)}
    first = next(c for c in cells if c.row == 3 and c.variant == 1)
    assert (first.input, first.reference, first.output, first.passed) == ("Question 3: where is my order?", "Answer 3", "Answer 3", True)
    assert first.input_tokens and first.output_tokens == 2, "token counts are the provider's own"
    sent = next(c for c in double.calls_to("anthropic") if "Question 3:" in json.dumps(c.body))
    assert sent.body["system"] == "Be brief." and "Please help. Question 3" in json.dumps(sent.body["messages"])
    assert comparisons.report(loaded, result.run_id) == result, "a kept run reopens as it was"


def test_a_rerun_is_answered_from_the_cache_and_records_the_cost_saved(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    first = run(loaded, clients, [f"ask=openai:{NOVA}", "polite=openai:good"], limit=10)
    spent = first.variants[0].cost_usd
    assert spent > 0 and first.variants[1].cost_usd == 0, "a model without a price costs nothing known"
    calls = double.calls

    again = run(loaded, clients, [f"ask=openai:{NOVA}", "polite=openai:good"], limit=12)
    assert double.calls == calls + 4, "only the two new inputs x two variants were called"
    nova = again.variants[0]
    assert nova.cache_hits == 10 and nova.passed == 12
    assert nova.cost_saved_usd == pytest.approx(spent) and nova.cost_usd == pytest.approx(spent * 2 / 10, rel=0.2)
    cells = comparisons.run_cells(loaded, again.run_id)
    assert all(c.price_row and "nova-lite" in c.price_row for c in cells if c.variant == 0)


def test_a_failing_model_fails_its_own_cells_and_the_rest_completes(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    double.script("broken", failing(500, "the model is overloaded"))
    result = run(loaded, clients, ["ask=openai:good", "ask=openai:broken"], limit=5)
    good, broken = result.variants
    assert (good.passed, good.errors) == (5, 0)
    assert (broken.errors, broken.passed, broken.summary.pass_rate) == (5, 0, 0.0)
    cell = next(c for c in comparisons.run_cells(loaded, result.run_id) if c.variant == 1)
    assert "the model is overloaded" in (cell.error or "") and cell.output is None
    assert cell.attempts == 0 or cell.attempts is not None


def test_a_timeout_fails_the_cell_with_its_message(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    double.script("slow", hang(5))
    result = comparisons.run_comparison(
        loaded, ["ask=openai:good", "ask=openai:slow"], dataset="support", limit=2, clients=clients, timeout_s=0.5,
        retry=RetryPolicy(failure_attempts=1),
    )
    assert result.variants[0].passed == 2 and result.variants[1].errors == 2
    cell = next(c for c in comparisons.run_cells(loaded, result.run_id) if c.variant == 1)
    assert "timed out" in (cell.error or "").lower() or "timeout" in (cell.error or "").lower(), cell.error


def test_rate_limits_are_retried_and_counted(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    double.script_next(rate_limited(retry_after="0"), times=2)
    result = run(loaded, clients, ["ask=openai:good", "polite=openai:good"], limit=1, concurrency=1)
    assert all(v.passed == 1 for v in result.variants)
    assert sum(c.attempts for c in comparisons.run_cells(loaded, result.run_id)) == 4, "two refusals, then two answers"


def test_a_template_that_cannot_render_fails_its_cells_without_a_call(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    templates.create_version(loaded, "needs-topic", user_template="{{ topic }}: {{ input }}", settings={"model": "good"})
    result = run(loaded, clients, ["ask=openai:good", "needs-topic=openai:good"], limit=3)
    assert result.variants[1].errors == 3 and double.calls == 3
    cell = next(c for c in comparisons.run_cells(loaded, result.run_id) if c.variant == 1)
    assert "topic" in (cell.error or "") and "needs-topic@1" in (cell.error or "")


def test_hostile_output_is_kept_verbatim_and_exported_safely(loaded: Store, clients: dict[str, Any], double: ChatDouble,
                                                             tmp_path: Path) -> None:
    hostile = "=HYPERLINK(\"http://x\")<script>alert(1)</script>" + "x" * 20_000
    double.script("hostile", answer(hostile))
    result = run(loaded, clients, ["ask=openai:good", "ask=openai:hostile"], limit=2)
    cell = next(c for c in comparisons.run_cells(loaded, result.run_id) if c.variant == 1)
    assert cell.output == hostile and cell.passed is False

    out = tmp_path / "run.csv"
    assert comparisons.export_run(loaded, result.run_id, out, "csv") == 4
    exported = list(csv.DictReader(out.open(encoding="utf-8")))
    assert exported[1]["output"].startswith("'=HYPERLINK"), "a spreadsheet must not run model output as a formula"
    assert comparisons.export_run(loaded, result.run_id, tmp_path / "run.jsonl", "jsonl") == 4


def test_assertions_and_a_judge(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    double.script("judge", answer('{"pass": true, "score": 0.9, "reason": "answers the question"}'))
    result = run(loaded, clients, ["ask=openai:good", "ask=openai:half"], limit=4,
                 assertions=["contains:Answer", "regex:^Answer \\d+$", "judge:Does it answer the question?"], judge="openai:judge")
    good, half = result.variants
    assert good.passed == 4 and half.passed == 2
    cell = comparisons.run_cells(loaded, result.run_id)[0]
    assert [r["passed"] for r in cell.results] == [True, True, True]
    judge_calls = [c for c in double.calls_to("openai") if c.model == "judge"]
    assert len(judge_calls) == 8 and "Does it answer the question?" in json.dumps(judge_calls[0].body)


@pytest.mark.parametrize(
    ("variants", "options", "said"),
    [
        (["ask=openai:good"], {}, "choose 2 to 6 variants; 1 given"),
        (["ask=openai:good", "ask=nowhere:x"], {}, "unknown client 'nowhere'"),
        (["ask=openai:good", "missing=openai:good"], {}, "no template named 'missing'"),
        (["ask=openai:good", "ask=openai:good"], {}, "the same variant is named twice"),
        (["ask=openai:good", "polite=openai:good"], {"assertions": ["judge:is it kind?"]}, "needs a judge model"),
        (["ask=openai:good", "polite=openai:good"], {"assertions": ["regex:(a+)+$"]}, "regex"),
        (["ask=openai:good", "polite=openai:good"], {"assertions": ['json-schema:{"type": 12}']}, "schema"),
        (["ask=openai:good", "polite=openai:good"], {"limit": 0}, "limit must be 1 to"),
        (["ask=openai:good", "polite=openai:good"], {"concurrency": 0}, "concurrency must be 1 to"),
        (["ask=openai:good", "polite=openai:good"], {"split": "test", "dataset": "support"}, "has no examples"),
    ],
)
def test_bad_requests_are_refused_before_any_call(loaded: Store, clients: dict[str, Any], double: ChatDouble, variants: list[str],
                                                  options: dict[str, Any], said: str) -> None:
    with pytest.raises(InvalidInput if "no template" not in said else Exception, match=re.escape(said)):
        run(loaded, clients, variants, **options)
    assert double.calls == 0 and comparisons.list_runs(loaded) == []


def test_a_stopped_run_resumes_with_only_the_missing_cells(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    asked = {"n": 0}

    def stop_after_some() -> bool:
        asked["n"] += 1
        return asked["n"] > 5

    progress = Progress(lambda state: None, stop_after_some, every=0)
    stopped = run(loaded, clients, ["ask=openai:good", "polite=openai:good"], limit=20, concurrency=1, progress=progress)
    assert stopped.state == "cancelled"
    kept = len(comparisons.run_cells(loaded, stopped.run_id))
    assert 0 < kept < 40
    calls = double.calls

    resumed = comparisons.resume_run(loaded, stopped.run_id, clients=clients, retry=QUICK)
    assert resumed.state == "done" and len(comparisons.run_cells(loaded, stopped.run_id)) == 40
    assert double.calls - calls == 40 - kept, "cells already written were not asked again"
    assert all(v.passed == 20 for v in resumed.variants)


def test_ctrl_c_keeps_the_written_cells_and_marks_the_run_cancelled(loaded: Store, clients: dict[str, Any]) -> None:
    asked = {"n": 0}

    def ctrl_c_after_some() -> bool:
        asked["n"] += 1
        if asked["n"] > 5:
            raise KeyboardInterrupt
        return False

    progress = Progress(lambda state: None, ctrl_c_after_some, every=0)
    with pytest.raises(KeyboardInterrupt):
        run(loaded, clients, ["ask=openai:good", "polite=openai:good"], limit=20, concurrency=1, progress=progress)
    [stopped] = comparisons.list_runs(loaded)
    assert stopped.state == "cancelled", "an interrupted run must not read as done"
    assert 0 < len(comparisons.run_cells(loaded, stopped.id)) < 40


def test_cancel_takes_effect_while_every_call_in_flight_hangs(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    first = run(loaded, clients, ["ask=openai:good", "polite=openai:good"], limit=4)  # these 8 cells are cached now
    assert first.state == "done"
    double.script("stuck", hang(30))
    started = time.monotonic()
    progress = Progress(lambda state: None, lambda: time.monotonic() - started > 1.0, every=0)
    stopped = run(loaded, clients, ["ask=openai:good", "ask=openai:stuck"], limit=4, concurrency=2, timeout_s=25,
                  progress=progress)
    assert time.monotonic() - started < 6, "the stop waited for the hung calls"
    assert stopped.state == "cancelled"
    cached = [c for c in comparisons.run_cells(loaded, stopped.run_id) if c.variant == 0]
    assert len(cached) == 4 and all(c.cache_hit for c in cached), "cells answered from the cache come first"


def test_a_client_with_no_key_refuses_the_run_before_anything_is_stored(loaded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    with pytest.raises(WorkbenchError, match="ANTHROPIC_API_KEY"):
        comparisons.run_comparison(loaded, ["ask=anthropic:claude-x", "polite=anthropic:claude-x"], dataset="support", limit=2)
    assert comparisons.list_runs(loaded) == []


def test_a_stop_keeps_the_answers_that_came_back_within_the_grace(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    double.script("slowish", Behaviour(delay_s=1.0))
    started = time.monotonic()
    progress = Progress(lambda state: None, lambda: time.monotonic() - started > 0.3, every=0)
    stopped = run(loaded, clients, ["ask=openai:slowish", "polite=openai:slowish"], limit=4, concurrency=4, progress=progress)
    assert stopped.state == "cancelled"
    kept = comparisons.run_cells(loaded, stopped.run_id)
    assert len(kept) >= 4, "the calls in flight when Cancel came were paid for: their answers are kept"
    calls = double.calls
    comparisons.resume_run(loaded, stopped.run_id, clients=clients, retry=QUICK)
    assert double.calls - calls == 8 - len(kept)


def test_resuming_a_finished_run_needs_no_configured_client(loaded: Store, clients: dict[str, Any],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    first = run(loaded, clients, ["ask=openai:good", "polite=openai:good"], limit=3)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    again = comparisons.resume_run(loaded, first.run_id)  # nothing to call: no key needed
    assert again.state == "done" and all(v.cells == 3 for v in again.variants)


def test_resume_can_call_failed_cells_again(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    double.script_next(failing(500, "overloaded"), times=3)
    first = comparisons.run_comparison(loaded, ["ask=openai:good", "polite=openai:good"], dataset="support", limit=5, concurrency=1,
                                       clients=clients, retry=NO_RETRY)
    assert sum(v.errors for v in first.variants) == 3
    calls = double.calls

    assert comparisons.resume_run(loaded, first.run_id, clients=clients).variants[0].cells == 5
    assert double.calls == calls, "a plain resume counts a failed cell as finished"
    again = comparisons.resume_run(loaded, first.run_id, clients=clients, retry_failed=True)
    assert double.calls - calls == 3 and sum(v.errors for v in again.variants) == 0


def test_sigterm_stops_a_cli_run_at_once_and_marks_it_cancelled(loaded: Store, double: ChatDouble) -> None:
    double.script("stuck", hang(30))
    env = {**os.environ, "OPENAI_BASE_URL": double.openai_base_url, "OPENAI_API_KEY": OPENAI_KEY}
    child = subprocess.Popen([sys.executable, "-m", "workbench", "--db", str(loaded.path), "compare", "run", "--variant", "ask=openai:stuck",
                              "--variant", "polite=openai:stuck", "--dataset", "support", "--limit", "4", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not comparisons.list_runs(loaded) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    sent = time.monotonic()
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=30)
    assert time.monotonic() - sent < 10, "a hung call held the exit"
    assert child.returncode == 130 and json.loads(out)["ok"] is False
    [stopped] = comparisons.list_runs(loaded)
    assert stopped.state == "cancelled", "a terminated run must not stay running for ever"


def test_a_cli_run_whose_every_cell_failed_exits_1_and_names_the_first_error(loaded: Store, double: ChatDouble) -> None:
    double.script("down", failing(500, "the model is down"))
    env = {**os.environ, "OPENAI_BASE_URL": double.openai_base_url, "OPENAI_API_KEY": OPENAI_KEY}
    done = subprocess.run([sys.executable, "-m", "workbench", "--db", str(loaded.path), "compare", "run", "--variant", "ask=openai:down",
                           "--variant", "polite=openai:down", "--dataset", "support", "--limit", "2", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    payload = json.loads(done.stdout)
    assert done.returncode == 1 and payload["ok"] is False
    assert "measured nothing" in payload["error"] and "the model is down" in payload["error"]
    assert isinstance(payload["run_id"], int), "the run is kept and named"


def test_the_cli_runs_a_comparison_and_prints_one_json_object(loaded: Store, double: ChatDouble) -> None:
    double.reset()
    double.script("good", answer(right_answer))
    double.script("half", answer(half_right))
    env = {**os.environ, "OPENAI_BASE_URL": double.openai_base_url, "OPENAI_API_KEY": OPENAI_KEY}
    base = [sys.executable, "-m", "workbench", "--db", str(loaded.path), "compare"]
    done = subprocess.run([*base, "run", "--variant", "ask=openai:good", "--variant", "ask=openai:half", "--dataset", "support",
                           "--limit", "6", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["ok"] is True and isinstance(payload["run_id"], int)
    good, half = payload["variants"]
    for field in ("cells", "passed", "failed", "errors", "cost_usd", "latency_p50_ms", "cache_hits"):
        assert field in good
    assert (good["cells"], good["passed"], half["passed"], half["failed"]) == (6, 6, 3, 3)
    assert done.stderr == "", "no progress noise under --json"

    shown = json.loads(subprocess.run([*base, "show", str(payload["run_id"]), "--cells", "--json"], capture_output=True, text=True,
                                      env=env, check=True).stdout)
    assert len(shown["cells"]) == 12
    queued = json.loads(subprocess.run([*base, "review", str(payload["run_id"]), "--json"], capture_output=True, text=True,
                                       env=env, check=True).stdout)
    assert queued["ok"] is True and queued["queued"] == 3, "the half-right variant's 3 failures"
    bad = subprocess.run([*base, "run", "--variant", "nope=openai:good", "--variant", "ask=openai:good", "--dataset", "support", "--json"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and json.loads(bad.stdout)["ok"] is False and "nope" in json.loads(bad.stdout)["error"]


def test_a_comparison_runs_as_a_background_task_with_progress(loaded: Store, double: ChatDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the Templates page starts: the run in a process of its own, its summary kept with the task."""
    import time

    from workbench.services import tasks
    from workbench.store.tasks import TaskState

    double.reset()
    double.script("good", answer(right_answer))
    monkeypatch.delenv("WORKBENCH_TASKS_INLINE", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", double.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    task = tasks.start(loaded, "compare", "support", {"variants": ["ask=openai:good", "polite=openai:good"], "limit": 5})
    deadline = time.monotonic() + 120
    while task.state.active:
        assert time.monotonic() < deadline
        time.sleep(0.2)
        task = tasks.get(loaded, task.id)
    assert task.state is TaskState.DONE, task.error
    assert task.unit == "cells" and task.done == task.total == 10
    assert [v["passed"] for v in task.result["variants"]] == [5, 5]
    assert comparisons.report(loaded, task.result["run_id"]).model_dump(mode="json") == task.result


def test_failed_outputs_go_to_the_review_queue_once(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    from workbench.services import review

    result = run(loaded, clients, ["ask=openai:good", "ask=openai:half"], limit=6)
    queued = comparisons.send_to_review(loaded, result.run_id)
    assert len(queued) == 3, "the half-right variant failed 3 of 6; passing outputs stay out unless asked"
    assert comparisons.send_to_review(loaded, result.run_id) == queued, "sending a run twice adds nothing"
    assert len(comparisons.send_to_review(loaded, result.run_id, everything=True)) == 12

    item = review.next_item(loaded, "alice")
    assert item is not None and item.source_kind == "comparison" and item.model_id in ("good", "half")
    assert item.reference is not None and item.reference.startswith("Answer ")
    assert review.input_turns(item)[-1].content.startswith("Question ")
