"""Jobs, Models and Settings pages driven through AppTest: the ledger listed, a job's live view, launch, settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.doubles.openai_server import API_KEY, OpenAIDouble
from tests.helpers import WriteJsonl, chat
from workbench.domain.jobs import JobEvent, JobState, MetricPoint
from workbench.services import importing, jobs, models, splits, versions
from workbench.store import Store
from workbench.store import jobs as job_rows
from workbench.ui import jobs_detail, jobs_launch, jobs_list

ROOT = Path(__file__).resolve().parents[1]
JOBS = str(ROOT / "pages" / "2_Jobs.py")
MODELS = str(ROOT / "pages" / "3_Models.py")
SETTINGS = str(ROOT / "pages" / "9_Settings.py")
GPT = "gpt-4o-mini-2024-07-18"
HOSTILE = "**bold** <img src=x onerror=alert(1)> [link](http://x)"
SECRET = "sk-live-do-not-show-0123456789"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")

_CLEARED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WORKBENCH_S3_URI", "WORKBENCH_BEDROCK_ROLE_ARN",
            "WORKBENCH_SAGEMAKER_ROLE_ARN", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    path = tmp_path / "jobs-ui.db"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    return Store(path)


@pytest.fixture
def data(db: Store, write_jsonl: WriteJsonl) -> Store:
    """'support': 60 chats split 48/12; 'tiny': 5 chats, under OpenAI's minimum of 10."""
    records = [chat(f"Question {i} about parcels", f"Answer {i}: it ships in {i % 5 + 1} days.", system="Be brief.")
               for i in range(60)]
    importing.import_path(db, write_jsonl(records, "support.jsonl"), "support")
    splits.split_dataset(db, "support", (0.8, 0.2, 0.0), seed=1)
    importing.import_path(db, write_jsonl([chat(f"q{i}", f"a{i}") for i in range(5)], "tiny.jsonl"), "tiny")
    return db


def add_job(store: Store, name: str, state: JobState, *, backend: str = "openai", points: int = 0,
            **fields: object) -> int:
    with store.write() as db:
        found = db.execute("SELECT id FROM datasets WHERE name = 'support'").fetchone()
        fields.setdefault("dataset_id", found[0] if found else None)
        row = job_rows.insert_job(db, name=name, backend=backend, base_model=GPT, dataset_name="support",
                                  version="v1", state=state.value, hyperparameters={"n_epochs": 2},
                                  estimate_usd=0.42, provider_job_id=f"ftjob-{name}",
                                  submitted_at="2026-11-30T09:00:00+00:00", **fields)
        job_rows.add_metrics(db, row.id, [MetricPoint(step=s, epoch=s / 10, train_loss=2.0 - s * 0.1,
                                                      val_loss=2.1 - s * 0.1 if s % 2 == 0 else None)
                                          for s in range(1, points + 1)])
        return row.id


@pytest.fixture
def ledger(db: Store) -> dict[str, int]:
    """A job in each of several states, one with a hostile failure message."""
    ids = {
        "running": add_job(db, "run-live", JobState.RUNNING, points=6, provider_status="running", progress=0.5),
        "succeeded": add_job(db, "run-done", JobState.SUCCEEDED, points=10, output_model="ft:gpt-4o-mini:acme::x1",
                             finished_at="2026-11-30T10:00:00+00:00", provider_status="succeeded"),
        "failed": add_job(db, "run-broke", JobState.FAILED, backend="bedrock", failure_message=HOSTILE,
                          finished_at="2026-11-30T09:30:00+00:00", provider_status="Failed"),
        "unknown": add_job(db, "run-lost", JobState.UNKNOWN, backend="sagemaker", provider_status="Deleted"),
    }
    with db.write() as conn:
        job_rows.add_events(conn, ids["running"], [JobEvent(key="e1", at="2026-11-30T09:05:00+00:00",
                                                             message="Step 6/12: training loss=1.40")])
    return ids


def run(script: str, **params: str) -> AppTest:
    at = AppTest.from_file(script, default_timeout=60)
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def text_of(at: AppTest) -> str:
    parts = [m.value for m in (*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(str(p) for p in parts)


def frames(at: AppTest) -> list:
    return [d.value for d in at.dataframe]


# --- the list and a job's detail -----------------------------------------------------------------------------


def test_jobs_page_with_no_jobs_says_how_to_launch(db: Store) -> None:
    at = run(JOBS)
    assert any("No jobs yet" in i.value for i in at.info)


def test_jobs_list_shows_every_state_and_filters(db: Store, ledger: dict[str, int]) -> None:
    at = run(JOBS)
    table = at.dataframe[0].value
    assert set(table["name"]) == {"run-live", "run-done", "run-broke", "run-lost"}
    assert {"● running", "✓ succeeded", "✗ failed", "? unknown"} == set(table["state"])
    assert set(table["dataset"]) == {"support@v1"} and set(table["estimate"]) == {"$0.42"}
    at.multiselect(key=jobs_list.STATES).set_value([JobState.FAILED, JobState.UNKNOWN]).run()
    assert set(at.dataframe[0].value["name"]) == {"run-broke", "run-lost"}
    at.selectbox(key=jobs_list.BACKEND).set_value("bedrock").run()
    assert list(at.dataframe[0].value["name"]) == ["run-broke"]


def test_job_in_url_opens_its_live_detail_with_curves_and_events(db: Store, ledger: dict[str, int]) -> None:
    at = run(JOBS, job=str(ledger["running"]))
    assert at.selectbox(key=jobs_list.OPEN).value == ledger["running"]
    chart = at.get("plotly_chart")[0].proto.spec
    assert '"name":"train"' in chart and '"name":"validation"' in chart
    assert "Step 6/12: training loss=1.40" in set(frames(at)[-1]["message"])
    assert not at.button(key="jobs.cancel").disabled and at.button(key="jobs.retry").disabled
    assert [m.label for m in at.metric] == ["Elapsed", "ETA", "Estimate", "Steps"]
    assert "$0.42" in [m.value for m in at.metric]


@pytest.mark.parametrize("state", list(JobState))
def test_only_active_jobs_refresh_themselves(state: JobState) -> None:
    assert (jobs_detail.refresh_every(state) is not None) == state.active


def test_failed_job_shows_its_message_escaped_and_offers_retry(db: Store, ledger: dict[str, int]) -> None:
    at = run(JOBS, job=str(ledger["failed"]))
    errors = [e.value for e in at.error]
    assert any("The job failed" in e and "\\*\\*bold\\*\\*" in e and "\\<img" in e for e in errors), errors
    assert at.button(key="jobs.cancel").disabled and not at.button(key="jobs.retry").disabled


def test_clone_fills_the_launch_form(data: Store, ledger: dict[str, int]) -> None:
    versions.freeze(data, "support", "v1")
    at = run(JOBS, job=str(ledger["succeeded"]))
    at.button(key="jobs.clone").click().run()
    assert not at.exception
    assert at.session_state[jobs_launch.BACKEND] == "openai"
    assert at.session_state[jobs_launch.MODEL] == GPT
    assert at.session_state[jobs_launch.VERSION] == "v1"
    assert at.text_input(key=jobs_launch.HP + "n_epochs").value == "2"


def test_compare_overlays_curves_and_marks_the_best(db: Store, ledger: dict[str, int]) -> None:
    at = run(JOBS, tab="compare")
    at.multiselect(key=jobs_list.COMPARE).set_value([ledger["running"], ledger["succeeded"]]).run()
    assert "**Best run:** ★ run\\-done" in text_of(at)
    table = frames(at)[-1]
    assert table.loc[table["best"] == "★", "job"].tolist() == ["run-done"]


# --- launching ------------------------------------------------------------------------------------------------


def launch_form(at: AppTest, dataset: str) -> AppTest:
    at.selectbox(key=jobs_launch.BACKEND).set_value("openai").run()
    at.selectbox(key=jobs_launch.DATASET).set_value(dataset).run()
    at.text_input(key=jobs_launch.NAME).set_value(f"ui-{dataset}").run()
    return at


def test_launch_form_refuses_a_dataset_under_the_minimum(data: Store) -> None:
    at = launch_form(run(JOBS, tab="launch"), "tiny")
    at.button(key=jobs_launch.PREFIX + "check").click().run()
    assert any("Refused" in e.value and "rules" in e.value for e in at.error), [e.value for e in at.error]
    assert any("OPENAI\\_API\\_KEY is not set" in e.value for e in at.error)  # no key: said plainly, no traceback
    assert at.button(key=jobs_launch.PREFIX + "go").disabled


def test_launch_form_estimates_a_good_dataset_and_draws_the_schema(data: Store) -> None:
    at = launch_form(run(JOBS, tab="launch"), "support")
    assert at.text_input(key=jobs_launch.HP + "n_epochs").placeholder.startswith("provider default")
    at.text_input(key=jobs_launch.HP + "n_epochs").set_value("2").run()
    at.button(key=jobs_launch.PREFIX + "check").click().run()
    assert not any("Refused" in e.value for e in at.error)
    estimate = next(m.value for m in at.metric if m.label == "Training estimate")
    assert estimate.startswith("$")
    assert any(d["cost"].tolist()[0] == "training" for d in frames(at) if "cost" in d)


@pytest.fixture
def openai_double(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIDouble]:
    double = OpenAIDouble().serve()
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", double.base_url)
    yield double
    double.close()


def test_launch_against_the_openai_double_creates_a_job(data: Store, openai_double: OpenAIDouble) -> None:
    at = launch_form(run(JOBS, tab="launch"), "support")
    at.button(key=jobs_launch.PREFIX + "check").click().run()
    assert any(j.value for j in at.json), "the request preview is shown"
    assert not at.button(key=jobs_launch.PREFIX + "go").disabled
    at.button(key=jobs_launch.PREFIX + "go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    made = jobs.get_job(data, "ui-support")
    assert made.provider_job_id and made.state in (JobState.QUEUED, JobState.VALIDATING, JobState.RUNNING)
    assert at.query_params["job"] == [str(made.id)] or at.query_params["job"] == str(made.id)
    assert openai_double.requests_to("POST", "/v1/fine_tuning/jobs")


# --- models and settings --------------------------------------------------------------------------------------


def test_models_page_lists_activates_and_compares(db: Store, ledger: dict[str, int]) -> None:
    assert models.register_from_job(db, ledger["succeeded"]) is not None
    second = add_job(db, "run-done-2", JobState.SUCCEEDED, points=4, output_model="ft:gpt-4o-mini:acme::x2")
    models.register_from_job(db, second)
    at = run(MODELS)
    table = at.dataframe[0].value
    assert set(table["model id"]) == {"ft:gpt-4o-mini:acme::x1", "ft:gpt-4o-mini:acme::x2"}
    at.text_input(key="models.task").set_value("support-triage")
    at.button[0].click().run()
    assert any(m.active and m.task == "support-triage" for m in models.list_models(db))
    at.multiselect(key="models.compare").set_value([m.id for m in models.list_models(db)]).run()
    assert len(at.dataframe) >= 3


def test_models_page_prices_a_bedrock_deployment_before_creating_it(db: Store) -> None:
    job = add_job(db, "nova-done", JobState.SUCCEEDED, backend="bedrock", points=3,
                  output_model="arn:aws:bedrock:us-east-1:123456789012:custom-model/nova-x",
                  finished_at="2026-11-30T10:00:00+00:00")
    with db.write() as conn:
        job_rows.update_job(conn, job, base_model="amazon.nova-micro-v1:0:128k")
    models.register_from_job(db, job)
    at = run(MODELS)
    at.button[1].click().run()  # "Show the cost" (the activate form's button comes first)
    assert not at.exception, [e.value for e in at.exception]
    costs = [i.value for i in at.info if "nova" in i.value]
    assert costs and ("per hour" in costs[0] or "hourly cost unknown" in costs[0]), [i.value for i in at.info]
    at.button(key="models.deploy_go").click().run()
    assert any("AWS" in e.value for e in at.error), [e.value for e in at.error]  # missing settings, said plainly


def test_models_page_empty(db: Store) -> None:
    assert any("No models yet" in i.value for i in run(MODELS).info)


def test_settings_show_what_is_set_and_never_a_secret(db: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("WORKBENCH_S3_URI", "s3://Bad Bucket/x")
    at = run(SETTINGS)
    shown = "\n".join(d.to_csv() for d in frames(at)) + text_of(at)
    assert SECRET not in shown and AWS_SECRET not in shown and "AKIAIOSFODNN7EXAMPLE" not in shown
    assert "****MPLE" in shown and "eu-west-1" in shown
    workbench = frames(at)[0].set_index("setting")["status"]
    assert workbench["OPENAI_API_KEY"] == "✓ set" and workbench["WORKBENCH_BEDROCK_ROLE_ARN"] == "⚠ missing"
    assert workbench["WORKBENCH_S3_URI"] == "✗ invalid"
    assert any("is not an S3 URI Bedrock accepts" in e.value for e in at.error)


@pytest.mark.parametrize(
    ("backend", "model", "field"),
    [("bedrock", None, "epochCount"), ("sagemaker", "Qwen/Qwen2.5-0.5B-Instruct", "lora_r"),
     ("local", "/models/tiny", "learning_rate")],
)
def test_each_provider_draws_its_schema_and_says_what_is_missing(data: Store, backend: str, model: str | None,
                                                                field: str) -> None:
    at = run(JOBS, tab="launch")
    at.selectbox(key=jobs_launch.BACKEND).set_value(backend).run()
    if model:
        at.text_input(key=jobs_launch.MODEL_TEXT).set_value(model).run()
    assert at.text_input(key=jobs_launch.HP + field).value == ""
    at.button(key=jobs_launch.PREFIX + "check").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.error, "missing settings, credentials or weights are said, not raised"
    assert at.button(key=jobs_launch.PREFIX + "go").disabled


def test_settings_name_a_missing_aws_profile_instead_of_failing(db: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    at = run(SETTINGS)
    assert any("no\\-such\\-profile" in e.value and "could not be found" in e.value for e in at.error)
    assert "⚠ missing" in set(frames(at)[0]["status"])  # nothing else set: missing ones are listed as such
