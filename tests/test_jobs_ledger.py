"""The job ledger and launch planning, with real SQLite files: hyperparameters, cost, lifecycle, leases, idempotent writes."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import WriteJsonl, chat
from workbench.domain import hyperparameters as hp
from workbench.domain.catalogue import get_target
from workbench.domain.catalogue.training import LORA_HYPERPARAMETERS
from workbench.domain.jobs import BackendName, JobEvent, JobSnapshot, JobState, MetricPoint, PollCursor
from workbench.domain.pricing import openai_default_epochs
from workbench.errors import Conflict, InvalidInput
from workbench.services import importing, jobs, splits
from workbench.store import Store
from workbench.store import jobs as job_rows

NOVA_MICRO = "amazon.nova-micro-v1:0:128k"
NOVA_HP = get_target("bedrock-nova").base_model(NOVA_MICRO).hyperparameters  # type: ignore[union-attr]


# --- hyperparameters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"epochCount": "9"}, "epochCount=9 is out of range; epochCount takes a whole number from 1 to 5 (default 2)"),
        ({"epochCount": "2.5"}, "must be a whole number"),
        ({"learningRate": "fast"}, "is not a number"),
        ({"learningRate": "nan"}, "not a finite number"),
        ({"batchSize": "8"}, "has no hyperparameter 'batchSize'; it takes: epochCount, learningRate, learningRateWarmupSteps"),
        ({"epochCount": "auto"}, "'auto' is not accepted"),
    ],
)
def test_bad_hyperparameters_are_refused_with_the_range(raw, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        hp.parse(raw, NOVA_HP, model=NOVA_MICRO)


def test_hyperparameters_at_the_edges_pass_typed():
    assert hp.parse({"epochCount": "5", "learningRate": "1e-6", "learningRateWarmupSteps": "0"}, NOVA_HP, model="m") == {
        "epochCount": 5, "learningRate": 1e-6, "learningRateWarmupSteps": 0,
    }
    assert hp.effective({"epochCount": 3}, NOVA_HP) == {"epochCount": 3, "learningRate": 1e-5, "learningRateWarmupSteps": 10}


def test_openai_takes_auto_and_empty_means_provider_default():
    schema = get_target("openai").base_model("gpt-4o-mini-2024-07-18").hyperparameters  # type: ignore[union-attr]
    assert hp.parse({"n_epochs": "auto", "batch_size": ""}, schema, model="gpt") == {"n_epochs": "auto"}


@pytest.mark.parametrize("pairs", [("epochCount",), ("=3",), ("a=1", "a=2")])
def test_param_pairs_must_be_key_value_once(pairs):
    with pytest.raises(InvalidInput):
        hp.parse_pairs(pairs)


@pytest.mark.parametrize(("n", "epochs"), [(5, 20), (10, 10), (34, 3), (100, 3), (8333, 3), (8334, 2), (30000, 1)])
def test_openai_auto_epochs_follow_the_cookbook(n, epochs):
    assert openai_default_epochs(n) == epochs


# --- planning a launch ----------------------------------------------------------------------------------------


@pytest.fixture
def chat_store(store: Store, write_jsonl: WriteJsonl) -> Store:
    records = [chat(f"Question {i} about parcels", f"Answer {i}: it ships in {i % 5 + 1} days.", system="Be brief.")
               for i in range(60)]
    importing.import_path(store, write_jsonl(records), "support")
    splits.split_dataset(store, "support", (0.8, 0.2, 0.0), seed=1)
    return store


def form(**kw) -> jobs.LaunchForm:
    base = {"backend": BackendName.OPENAI, "dataset": "support", "base_model": "gpt-4o-mini-2024-07-18", "name": "run-1"}
    return jobs.LaunchForm(**{**base, **kw})


def test_plan_trains_on_the_train_split_and_prices_tokens_times_epochs(chat_store):
    plan = jobs.plan_launch(chat_store, form(params={"n_epochs": "2"}), today=date(2026, 11, 30))
    assert plan.ok, plan.refusals
    assert (plan.train_split, plan.validation_split) == ("train", "validation")
    assert plan.train_records == 48 and plan.validation_records == 12
    training = plan.estimate.lines[0]
    assert plan.estimate.epochs == 2
    assert plan.estimate.training_usd == pytest.approx(plan.estimate.train_tokens * 2 * 3.00 / 1e6, abs=1e-4)
    assert "tokens x 2 epochs" in training.detail
    assert plan.version is None and plan.freeze_as == "run-1"


def test_plan_warns_before_the_openai_cutoff_and_refuses_after(chat_store):
    before = jobs.plan_launch(chat_store, form(), today=date(2026, 11, 30))
    assert any("stops taking new fine-tuning jobs on 2027-01-06" in w for w in before.warnings)
    after = jobs.plan_launch(chat_store, form(), today=date(2027, 1, 6))
    assert any("stopped taking new fine-tuning jobs on 2027-01-06" in r for r in after.refusals)
    retired = jobs.plan_launch(chat_store, form(base_model="gpt-3.5-turbo-0125"), today=date(2026, 11, 30))
    assert any("was retired on 2026-10-23" in r for r in retired.refusals)


def test_budget_below_the_estimate_refuses(chat_store):
    plan = jobs.plan_launch(chat_store, form(budget_usd=0.0001, params={"n_epochs": "3"}), today=date(2026, 11, 30))
    assert any("above the budget $0.00" in r for r in plan.refusals)


def test_a_dataset_never_split_trains_on_everything(store, write_jsonl):
    importing.import_path(store, write_jsonl([chat(f"q{i}", f"a{i}") for i in range(12)]), "flat")
    plan = jobs.plan_launch(store, form(dataset="flat"), today=date(2026, 11, 30))
    assert (plan.train_split, plan.validation_split, plan.train_records) == (None, None, 12)


def test_over_the_record_limit_is_refused_with_the_finding(store, write_jsonl):
    importing.import_path(store, write_jsonl([chat(f"q{i}", f"a{i}") for i in range(5)]), "tiny")
    plan = jobs.plan_launch(store, form(dataset="tiny"), today=date(2026, 11, 30))
    assert not plan.ok and any("fails OpenAI chat fine-tuning's rules" in r for r in plan.refusals)
    assert any(f["code"] == "too_few_examples" for f in plan.findings)


@pytest.mark.parametrize(
    ("backend", "name", "ok"),
    [(BackendName.SAGEMAKER, "run_1", False), (BackendName.SAGEMAKER, "run-1", True), (BackendName.BEDROCK, "run.1+a", True),
     (BackendName.BEDROCK, "-run", False), (BackendName.LOCAL, "a" * 64, False), (BackendName.OPENAI, "a b", False)],
)
def test_job_names_follow_the_providers_pattern(backend, name, ok):
    if ok:
        assert jobs.check_name(name, backend) == name
    else:
        with pytest.raises(InvalidInput, match="does not fit"):
            jobs.check_name(name, backend)


def test_bedrock_model_picks_its_target_and_unknown_is_refused():
    assert jobs.target_for(BackendName.BEDROCK, NOVA_MICRO).id == "bedrock-nova"
    assert jobs.target_for(BackendName.BEDROCK, "meta.llama3-2-1b-instruct-v1:0:128k").id == "bedrock-llama32"
    assert jobs.target_for(BackendName.LOCAL, "/models/tiny").id == "openai"
    with pytest.raises(InvalidInput, match="Bedrock cannot fine-tune 'cohere.command'"):
        jobs.target_for(BackendName.BEDROCK, "cohere.command")
    assert jobs.hyperparameter_schema(BackendName.LOCAL, get_target("openai"), "/m") == LORA_HYPERPARAMETERS


def test_nova_warmup_advice_follows_dataset_size(chat_store):
    advice = jobs._advice(NOVA_HP, NOVA_MICRO, 6400)
    assert advice == [f"learningRateWarmupSteps: AWS suggests records / 640 for {NOVA_MICRO}: 6,400 / 640 = 10.0, "
                      "so 10 (the default is 10)."]


# --- the ledger: leases and idempotent writes -------------------------------------------------------------------


def _job(db, name: str, state: JobState = JobState.RUNNING) -> job_rows.JobRow:
    row = job_rows.insert_job(db, name=name, backend="openai", base_model="m", state=state.value)
    job_rows.update_job(db, row.id, provider_job_id=f"ft-{name}")
    return job_rows.get_job(db, row.id)


def test_names_are_unique(store):
    with store.write() as db:
        _job(db, "a")
        with pytest.raises(Conflict, match="a job named 'a' already exists"):
            _job(db, "a")


def test_two_watchers_split_the_due_jobs_and_a_dead_lease_frees(store):
    with store.write() as db:
        for i in range(10):
            _job(db, f"j{i}")
        _job(db, "done", JobState.SUCCEEDED)
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    with store.connect() as db:
        first = job_rows.claim_due(db, "w1", lease_s=60, limit=6, now=now)
        second = job_rows.claim_due(db, "w2", lease_s=60, limit=100, now=now)
        assert len(first) == 6 and len(second) == 4
        assert not {j.id for j in first} & {j.id for j in second}
        assert job_rows.claim_due(db, "w3", lease_s=60, limit=100, now=now) == []
        # w1 is killed: its leases run out and w3 takes those jobs.
        later = job_rows.claim_due(db, "w3", lease_s=60, limit=100, now=now + timedelta(seconds=61))
        assert {j.id for j in later} == {j.id for j in first} | {j.id for j in second}


def _claim(path: str, owner: str, out: multiprocessing.Queue) -> None:
    s = Store(path)
    with s.connect() as db:
        out.put([j.id for j in job_rows.claim_due(db, owner, lease_s=60, limit=1000)])


def test_watcher_processes_racing_never_claim_the_same_job(store):
    with store.write() as db:
        for i in range(40):
            _job(db, f"j{i}")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(str(store.path), f"w{i}", queue)) for i in range(4)]
    for p in procs:
        p.start()
    claimed = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    flat = [i for ids in claimed for i in ids]
    assert sorted(flat) == sorted(set(flat)) and len(flat) == 40


def test_writing_the_same_poll_twice_changes_nothing(store):
    with store.write() as db:
        job = _job(db, "x")
    at = datetime(2026, 11, 30, tzinfo=UTC)
    snap = JobSnapshot(
        state=JobState.RUNNING, provider_status="running", cursor=PollCursor(last_step=2),
        events=(JobEvent(key="e1", at=at, message="Step 1"), JobEvent(key="e2", at=at, message="Step 2")),
        metrics=(MetricPoint(step=1, train_loss=2.0), MetricPoint(step=2, train_loss=1.5)),
    )
    for _ in range(2):
        with store.write() as db:
            job_rows.record_snapshot(db, job, snap)
    # A later poll brings the validation loss of step 2: it fills the row, keeping the training loss.
    with store.write() as db:
        job_rows.record_snapshot(db, job, snap.model_copy(update={"events": (), "metrics": (MetricPoint(step=2, val_loss=1.7),)}))
    with store.connect() as db:
        assert [(p.step, p.train_loss, p.val_loss) for p in job_rows.job_metrics(db, job.id)] == [(1, 2.0, None), (2, 1.5, 1.7)]
        assert [e.key for e in job_rows.job_events(db, job.id)] == ["e1", "e2"]
        row = job_rows.get_job(db, job.id)
    assert row.cursor.last_step == 2 and row.started_at is not None


def test_jobs_show_json_for_an_unknown_job_is_one_error(tmp_path: Path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "workbench", "--db", str(tmp_path / "w.db"), "jobs", "show", "nope", "--json"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 1 and out.stdout.count("\n") == 1 and '"ok":false' in out.stdout.replace(" ", "")
    assert "no job 'nope'" in out.stdout


def test_demo_history_is_marked_final_and_clonable(store):
    from workbench.services.demo import load_demo
    from workbench.services.demo_jobs import DEMO_NOTE
    from workbench.services.models import list_models

    load_demo(store)
    rows = jobs.list_jobs(store)
    assert len(rows) == 5 and all(j.state.final and j.note == DEMO_NOTE and j.name.startswith("demo-") for j in rows)
    assert len(list_models(store)) == 3
    assert load_demo(store).jobs == 0  # loading twice adds nothing
    with store.connect() as db:
        assert job_rows.claim_due(db, "w", lease_s=60, limit=100) == []  # the watcher never polls them
    clone = jobs.clone_form(store, "demo-geo-gpt4o-mini")
    plan = jobs.plan_launch(store, clone.model_copy(update={"name": "again"}), today=date(2026, 11, 30))
    assert plan.version == "demo-v1" and plan.train_records > 0


def test_sagemaker_takes_resources_from_a_closed_list():
    from workbench.domain.catalogue.training import SAGEMAKER_HYPERPARAMETERS

    schema = jobs.hyperparameter_schema(BackendName.SAGEMAKER, get_target("openai"), "Qwen/Qwen2.5-0.5B-Instruct")
    assert schema == SAGEMAKER_HYPERPARAMETERS
    assert hp.parse({"instance_type": "ml.g5.12xlarge", "epochs": "2"}, schema, model="q") == {
        "instance_type": "ml.g5.12xlarge", "epochs": 2}
    with pytest.raises(InvalidInput, match="'ml.t2.micro' is not one of ml.g5.xlarge"):
        hp.parse({"instance_type": "ml.t2.micro"}, schema, model="q")


def test_an_alias_keeps_its_snapshots_retirement_and_every_openai_model_the_cutoff(chat_store):
    alias = jobs.plan_launch(chat_store, form(base_model="gpt-3.5-turbo"), today=date(2026, 11, 30))
    assert any("was retired on 2026-10-23" in r for r in alias.refusals)
    unknown = jobs.plan_launch(chat_store, form(base_model="gpt-5-mini-2025-08-07"), today=date(2027, 1, 7))
    assert any("stopped taking new fine-tuning jobs on 2027-01-06" in r for r in unknown.refusals)


def test_local_runs_are_not_held_to_openais_service_limits(store, write_jsonl):
    importing.import_path(store, write_jsonl([chat(f"q{i}", f"a{i}") for i in range(5)]), "five")
    local = jobs.plan_launch(store, form(dataset="five", backend=BackendName.LOCAL, base_model="/m"), today=date(2026, 11, 30))
    assert local.ok and not any(f["code"] in ("too_few_examples", "below_recommended_examples") for f in local.findings)
    assert not jobs.plan_launch(store, form(dataset="five"), today=date(2026, 11, 30)).ok


def test_compare_marks_no_best_across_different_data(store):
    from workbench.services.compare import compare_jobs
    from workbench.services.demo import load_demo

    load_demo(store)
    mixed = compare_jobs(store, ["demo-stylist-nova-lr1e-5", "demo-geo-gpt4o-mini"])
    assert mixed.best is None and "different data" in (mixed.warning or "")
    same = compare_jobs(store, ["demo-stylist-nova-lr1e-5", "demo-stylist-nova-lr5e-5"])
    assert same.best == "demo-stylist-nova-lr5e-5" and same.warning is None


def test_budget_message_keeps_small_amounts_readable():
    assert jobs.money(0.0001) == "$0.0001" and jobs.money(0.0581) == "$0.0581" and jobs.money(1234.5) == "$1,234.50"
    assert jobs.money(None) == "—" and jobs.money(0) == "$0"


# --- attacker findings: number text, OpenAI ranges, model ids, the CLI's budget -----------------------------

OPENAI_HP = get_target("openai").base_model("gpt-4o-mini-2024-07-18").hyperparameters  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"n_epochs": "٣"}, "is not a number"),
        ({"n_epochs": "1_0"}, "is not a number"),
        ({"n_epochs": "１"}, "is not a number"),
        ({"batch_size": " 0x10"}, "is not a number"),
        ({"learning_rate_multiplier": "1e-400"}, "too small to be told from 0"),
        ({"n_epochs": str(2**53 + 1)}, r"too large \(at most 2\*\*53\)"),
        ({"n_epochs": "51"}, "n_epochs=51 is out of range; n_epochs takes a whole number from 1 to 50"),
        ({"batch_size": "257"}, "batch_size=257 is out of range; batch_size takes a whole number from 1 to 256"),
        ({"learning_rate_multiplier": "0"}, "out of range; learning_rate_multiplier takes a number greater than 0"),
        ({"learning_rate_multiplier": "-0.5"}, "out of range"),
    ],
)
def test_openai_numbers_are_ascii_in_range_and_representable(raw, message):
    with pytest.raises(InvalidInput, match=message):
        hp.parse(raw, OPENAI_HP, model="gpt")


def test_openai_edges_and_plain_spellings_pass():
    got = hp.parse({"n_epochs": "50", "batch_size": "256", "learning_rate_multiplier": "1e-300"}, OPENAI_HP, model="gpt")
    assert got == {"n_epochs": 50, "batch_size": 256, "learning_rate_multiplier": 1e-300}
    assert hp.parse({"n_epochs": "+1.0", "learning_rate_multiplier": ".5"}, OPENAI_HP, model="gpt") == {
        "n_epochs": 1, "learning_rate_multiplier": 0.5}
    assert hp.parse({"learningRateWarmupSteps": "0.0e-9"}, NOVA_HP, model="m") == {"learningRateWarmupSteps": 0}


@pytest.mark.parametrize("ref", ["²", "１", "99999999999999999999", str(2**63), "-1"])
def test_a_model_id_that_is_not_a_row_id_is_not_found(store, ref):
    from workbench.errors import NotFound
    from workbench.store import models as model_rows

    with store.connect() as db, pytest.raises(NotFound, match="no model"):
        model_rows.get_model(db, ref)


@pytest.mark.parametrize("budget", ["nan", "-inf", "inf", "-1", "lots"])
def test_cli_budget_that_is_not_an_amount_is_a_usage_error(tmp_path: Path, budget: str):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "workbench", "--db", str(tmp_path / "w.db"), "jobs", "launch",
                          "--provider", "openai", "--dataset", "d", "--base-model", "gpt-4o-mini-2024-07-18",
                          "--budget", budget, "--dry-run"], capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "--budget" in out.stderr and "internal error" not in out.stdout + out.stderr


def test_a_form_value_the_model_refuses_is_plain_input_error():
    from workbench.cli_jobs import _launch_form

    with pytest.raises(InvalidInput, match=r"budget_usd: .*\(got nan\)"):
        _launch_form(backend=BackendName.OPENAI, dataset="d", base_model="m", budget_usd=float("nan"))
