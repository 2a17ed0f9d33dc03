"""Sweeps end to end: the real openai SDK over HTTP to the local double, real SQLite, the real watcher round."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.doubles.openai_server import OpenAIDouble, backends
from workbench.domain.jobs import BackendName, JobState
from workbench.errors import InvalidInput
from workbench.providers.openai_ft import OpenAIBackend
from workbench.services import jobs, sweeps, watcher
from workbench.services.versions import list_versions
from workbench.store import Store
from workbench.store import jobs as job_rows
from workbench.store import sweeps as sweep_rows

TODAY = date(2026, 11, 30)
GRID = {"n_epochs": ["1", "2"], "learning_rate_multiplier": ["0.5", "1.5"]}


def form(**kw: Any) -> jobs.LaunchForm:
    base = {"backend": BackendName.OPENAI, "dataset": "support", "base_model": "gpt-4o-mini-2024-07-18",
            "params": {"batch_size": "4"}}
    return jobs.LaunchForm(**{**base, **kw})


def _sweep_jobs(store: Store, name: str) -> list[job_rows.JobRow]:
    with store.connect() as db:
        return sweep_rows.cells(db, sweep_rows.get_sweep(db, name).id)


def _finish(double: OpenAIDouble, job: job_rows.JobRow, val_loss: float) -> None:
    remote = str(job.provider_job_id)
    double.set_status(remote, "running")
    for step in range(1, 5):
        double.add_metrics(remote, step, 2.0 / step, total_steps=4, full_valid_loss=val_loss + 1.0 / step)
    double.set_status(remote, "succeeded", fine_tuned_model=f"ft:gpt-4o-mini:acme:{job.name}:x", trained_tokens=100)


def test_a_2x2_sweep_runs_two_at_a_time_and_marks_the_best(support, double):
    done = sweeps.launch_sweep(support, form(), GRID, 2, "lr-ep", backends=backends(double), today=TODAY)
    assert len(done.submitted) == 2 and done.pending == 2 and not done.errors
    cells = _sweep_jobs(support, "lr-ep")
    assert [c.name for c in cells] == ["lr-ep-1", "lr-ep-2", "lr-ep-3", "lr-ep-4"]
    launched, pending = cells[:2], cells[2:]
    assert all(c.provider_job_id and c.state is JobState.VALIDATING for c in launched)
    assert all(c.provider_job_id is None and c.state is JobState.QUEUED for c in pending)
    assert [c.hyperparameters for c in pending] == [
        {"batch_size": 4, "n_epochs": 2, "learning_rate_multiplier": 0.5},
        {"batch_size": 4, "n_epochs": 2, "learning_rate_multiplier": 1.5},
    ]
    # Frozen once: every cell trains on the same version.
    assert {c.version for c in cells} == {"sweep-lr-ep"}
    assert [v.name for v in list_versions(support, "support")] == ["sweep-lr-ep"]
    assert len(double.requests_to("POST", "/v1/fine_tuning/jobs")) == 2

    # Two active: a round submits nothing more.
    first = watcher.poll_round(support, backends=backends(double))
    assert first.polled == 2 and len(double.requests_to("POST", "/v1/fine_tuning/jobs")) == 2
    _finish(double, launched[0], val_loss=0.9)
    _finish(double, launched[1], val_loss=0.4)
    for job in launched:
        _due_now(support, job.id)
    finished = watcher.poll_round(support, backends=backends(double))
    assert sorted(finished.changed) == ["lr-ep-1: validating -> succeeded", "lr-ep-2: validating -> succeeded"]
    # The next round fills the two freed slots with the pending cells.
    refill = watcher.poll_round(support, backends=backends(double))
    assert sum("submitted as job" in line for line in refill.changed) == 2, refill
    bodies = [r.body for r in double.requests_to("POST", "/v1/fine_tuning/jobs")]
    sent = {(b["method"]["supervised"]["hyperparameters"]["n_epochs"],
             b["method"]["supervised"]["hyperparameters"]["learning_rate_multiplier"]) for b in bodies}
    assert sent == {(1, 0.5), (1, 1.5), (2, 0.5), (2, 1.5)}
    cells = _sweep_jobs(support, "lr-ep")
    assert len(cells) == 4 and all(c.provider_job_id and c.sweep_id for c in cells)
    assert {c.version for c in cells} == {"sweep-lr-ep"}

    summary = sweeps.sweep_summary(support, "lr-ep")
    assert summary.best == "lr-ep-2"
    assert [r.name for r in summary.rows if r.best] == ["lr-ep-2"]
    best = next(r for r in summary.rows if r.best)
    assert best.best_val_loss == pytest.approx(0.65) and best.params == {"n_epochs": 1, "learning_rate_multiplier": 1.5}
    assert summary.counts == {"succeeded": 2, "validating": 2}
    assert summary.total_estimate_usd == pytest.approx(sum(r.estimate_usd or 0 for r in summary.rows))


def _due_now(store: Store, job_id: int) -> None:
    with store.write() as db:
        job_rows.update_job(db, job_id, next_poll_at=None)


def test_the_total_estimate_is_the_sum_of_the_cells(support, double):
    plan = sweeps.plan_sweep(support, form(), GRID, 2, "priced", today=TODAY)
    assert plan.ok and len(plan.cells) == 4 and plan.unpriced == 0
    each = [c.estimate_usd for c in plan.cells]
    assert all(e and e > 0 for e in each)
    assert plan.total_estimate_usd == pytest.approx(sum(each))  # type: ignore[arg-type]
    by_epochs = {c.values["n_epochs"]: c.estimate_usd for c in plan.cells}
    assert by_epochs["2"] == pytest.approx(2 * by_epochs["1"], rel=0.05)  # type: ignore[operator]  # rounded cents
    assert [c.values for c in plan.cells] == [dict(zip(GRID, combo, strict=True))
                                              for combo in itertools.product(*GRID.values())]
    assert plan.freeze_as == "sweep-priced" and plan.version is None


def test_an_out_of_range_cell_refuses_the_sweep_before_anything_is_launched(support, double):
    grid = {"n_epochs": ["0", "2"], "learning_rate_multiplier": ["0.5"]}
    plan = sweeps.plan_sweep(support, form(), grid, 2, "bad", today=TODAY)
    assert not plan.ok
    [refusal] = plan.refusals
    assert refusal.startswith("cell 1 (n_epochs=0, learning_rate_multiplier=0.5): n_epochs=0 is out of range")
    assert "from 1 to 50" in refusal
    with pytest.raises(InvalidInput, match=r"sweep refused: cell 1 \(n_epochs=0.*from 1 to 50"):
        sweeps.launch_sweep(support, form(), grid, 2, "bad", backends=backends(double), today=TODAY)
    assert jobs.list_jobs(support) == [] and double.requests_to("POST", "/v1/files") == []
    assert sweeps.list_sweeps(support) == [] and list_versions(support, "support") == []


def test_a_grid_too_big_is_refused_with_its_size(support):
    grid = {"n_epochs": [str(i) for i in range(1, 11)], "batch_size": [str(i) for i in range(1, 7)]}
    with pytest.raises(InvalidInput, match=r"the grid has 60 cells \(10 n_epochs x 6 batch_size\); a sweep runs at most 50"):
        sweeps.plan_sweep(support, form(params={}), grid, 2, "huge", today=TODAY)


def test_values_that_read_the_same_collapse_to_one_cell(support, double):
    grid = {"n_epochs": ["1", "1.0", "01", "2", "auto", "AUTO"], "learning_rate_multiplier": ["0.5", ".5", "5e-1"]}
    plan = sweeps.plan_sweep(support, form(), grid, 2, "dupes", today=TODAY)
    assert plan.ok and plan.grid == {"n_epochs": ["1", "2", "auto"], "learning_rate_multiplier": ["0.5"]}
    assert [c.values["n_epochs"] for c in plan.cells] == ["1", "2", "auto"]
    done = sweeps.launch_sweep(support, form(), grid, 3, "dupes", backends=backends(double), today=TODAY)
    assert len(done.submitted) == 3 and done.pending == 0
    assert len(_sweep_jobs(support, "dupes")) == 3


def test_a_key_in_both_param_and_grid_is_refused(support, double):
    both = form(params={"batch_size": "4", "n_epochs": "3"})
    with pytest.raises(InvalidInput, match="n_epochs is given both as --param and as --grid"):
        sweeps.plan_sweep(support, both, {"n_epochs": ["1", "2"]}, 2, "both", today=TODAY)
    with pytest.raises(InvalidInput, match="n_epochs is given both as --param and as --grid"):
        sweeps.launch_sweep(support, both, {"n_epochs": ["1", "2"]}, 2, "both", backends=backends(double), today=TODAY)
    assert jobs.list_jobs(support) == [] and sweeps.list_sweeps(support) == []


def test_cli_max_concurrent_and_budget_are_checked_as_usage(support, double):
    env = {**os.environ}
    common = ["jobs", "sweep", "--provider", "openai", "--dataset", "support", "--base-model", "gpt-4o-mini-2024-07-18",
              "--grid", "n_epochs=1,2", "--dry-run"]
    for bad in (["--max-concurrent", "0"], ["--max-concurrent", "101"], ["--budget", "nan"], ["--budget", "-inf"],
                ["--budget", "inf"]):
        proc = subprocess.run([sys.executable, "-m", "workbench", "--db", str(support.path), *common, *bad],
                              capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "internal error" not in proc.stdout + proc.stderr and bad[0] in proc.stderr, proc.stderr


def test_parse_grid_reads_key_and_values_and_names_mistakes():
    assert sweeps.parse_grid(["n_epochs=1, 2,2", "batch_size=4"]) == {"n_epochs": ["1", "2"], "batch_size": ["4"]}
    with pytest.raises(InvalidInput, match="--grid 1 is 'n_epochs'; write it as key=value1,value2"):
        sweeps.parse_grid(["n_epochs"])
    with pytest.raises(InvalidInput, match="--grid n_epochs is given twice"):
        sweeps.parse_grid(["n_epochs=1", "n_epochs=2"])
    with pytest.raises(InvalidInput, match="--grid n_epochs has no values"):
        sweeps.parse_grid(["n_epochs=,"])


def test_a_claimed_cell_counts_against_the_limit_and_is_submitted_once(support, double):
    sweeps.launch_sweep(support, form(), GRID, 1, "one", backends=backends(double), today=TODAY)
    cells = _sweep_jobs(support, "one")
    assert sum(c.provider_job_id is not None for c in cells) == 1
    # Another watcher is mid-launch on cell 2: the sweep is full even after cell 1 ends.
    with support.write() as db:
        claimed = sweep_rows.claim_pending(db, cells[1].id, "other-watcher", lease_s=600, now=datetime.now(UTC))
        assert claimed is not None and claimed.name == "one-2~submitting"
        assert sweep_rows.claim_pending(db, cells[1].id, "me", lease_s=600, now=datetime.now(UTC)) is None
    double.set_status(str(cells[0].provider_job_id), "succeeded", fine_tuned_model="ft:one")
    assert sweeps.advance_sweeps(support, backends=backends(double)).submitted == []
    assert len(double.requests_to("POST", "/v1/fine_tuning/jobs")) == 1


def test_a_launch_killed_after_creating_its_job_is_adopted_not_sent_again(support, double):
    sweeps.launch_sweep(support, form(), {"n_epochs": ["1", "2"]}, 1, "kill", backends=backends(double), today=TODAY)
    cells = _sweep_jobs(support, "kill")
    # As if a watcher launched cell 2 and died before swapping it in: the job exists under the cell's name.
    stored = jobs.LaunchForm.model_validate((cells[1].request or {})["sweep_cell"])
    with support.write() as db:
        sweep_rows.claim_pending(db, cells[1].id, "dead", lease_s=0, now=datetime.now(UTC))
    job = jobs.launch(support, stored, backends=backends(double), today=TODAY)
    with support.write() as db:
        job_rows.update_job(db, cells[0].id, state=JobState.SUCCEEDED.value)
    done = sweeps.advance_sweeps(support, backends=backends(double))
    assert done.submitted == [f"sweep kill: kill-2 was already launched (job {job.id}); adopted it"]
    assert [c.id for c in _sweep_jobs(support, "kill")] == [cells[0].id, job.id]
    assert len(double.requests_to("POST", "/v1/fine_tuning/jobs")) == 2


def test_missing_credentials_leave_cells_pending(support, double, monkeypatch):
    sweeps.launch_sweep(support, form(), {"n_epochs": ["1", "2"]}, 1, "creds", backends=backends(double), today=TODAY)
    cells = _sweep_jobs(support, "creds")
    with support.write() as db:
        job_rows.update_job(db, cells[0].id, state=JobState.FAILED.value)

    def broken(name: BackendName) -> OpenAIBackend:
        return OpenAIBackend.from_environment()

    monkeypatch.delenv("OPENAI_API_KEY")
    done = sweeps.advance_sweeps(support, backends=broken)
    assert done.errors and "creds-2 waits" in done.errors[0] and "OPENAI_API_KEY" in done.errors[0]
    [pending] = [c for c in _sweep_jobs(support, "creds") if c.provider_job_id is None]
    assert pending.name == "creds-2" and pending.state is JobState.QUEUED


def _cli(db: Path, *args: str, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "workbench", "--db", str(db), *args, "--json"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, orjson.loads(proc.stdout)


def test_cli_sweep_dry_run_refusal_launch_and_show(support, double):
    env = {**os.environ}
    common = ["jobs", "sweep", "--provider", "openai", "--dataset", "support", "--base-model", "gpt-4o-mini-2024-07-18"]
    code, dry = _cli(support.path, *common, "--grid", "n_epochs=1,2", "--name", "cli", "--dry-run", env=env)
    assert code == 0 and dry["ok"] and len(dry["plan"]["cells"]) == 2
    assert dry["plan"]["total_estimate_usd"] == pytest.approx(sum(c["estimate_usd"] for c in dry["plan"]["cells"]))
    code, bad = _cli(support.path, *common, "--grid", "n_epochs=0,1", "--name", "cli", env=env)
    assert code == 1 and not bad["ok"] and "cell 1 (n_epochs=0)" in bad["plan"]["refusals"][0]
    code, launched = _cli(support.path, *common, "--grid", "n_epochs=1,2", "--name", "cli", "--max-concurrent", "1",
                          env=env)
    assert code == 0 and len(launched["submitted"]) == 1 and launched["pending"] == 1, launched
    code, shown = _cli(support.path, "jobs", "sweep-show", "cli", env=env)
    assert code == 0 and [r["state"] for r in shown["rows"]] == ["validating", "pending"]
    assert shown["rows"][1]["params"] == {"n_epochs": 2}
