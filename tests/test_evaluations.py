"""Evaluating models end to end: registered models called through the real openai SDK against the chat double.

A fine-tuned model and its base answer a frozen dataset version's test split; the two runs are then
paired, and the win counts, McNemar p-value and example lists checked against what the scripted
answers make them. Every way an evaluation is refused is checked too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.chat_server import OPENAI_KEY, ChatDouble, answer, chat_double, failing
from tests.helpers import WriteJsonl, chat
from workbench.domain.comparison import RetryPolicy
from workbench.domain.eval_stats import mcnemar_exact
from workbench.domain.progress import Progress
from workbench.errors import InvalidInput, NotFound
from workbench.providers.inference import client_for
from workbench.services import comparisons, evaluations, importing, splits, task_actions, templates, versions
from workbench.services.models import register_from_job
from workbench.store import Store
from workbench.store import deployments as deployment_rows
from workbench.store import jobs as job_rows

QUICK = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)
BASE = "gpt-4o-mini-2024-07-18"
TUNED = "ft:gpt-4o-mini:acme::x1"
NOVA_MICRO = "amazon.nova-micro-v1:0:128k"


def number(request: dict[str, Any]) -> int:
    last = request["messages"][-1]["content"]
    text = last if isinstance(last, str) else " ".join(part.get("text", "") for part in last)
    found = re.search(r"Question (\d+)", text)
    assert found, text
    return int(found.group(1))


def base_answer(request: dict[str, Any]) -> str:
    """The base model knows the even questions only."""
    n = number(request)
    return f"Answer {n}" if n % 2 == 0 else "I am not sure."


def tuned_answer(request: dict[str, Any]) -> str:
    """The fine-tuned model knows every question but those divisible by 5."""
    n = number(request)
    return f"Answer {n}" if n % 5 else "Answer ?"


@pytest.fixture(scope="module")
def double() -> Iterator[ChatDouble]:
    with chat_double() as served:
        yield served


@pytest.fixture
def clients(double: ChatDouble) -> dict[str, Any]:
    double.reset()
    double.script(BASE, answer(base_answer))
    double.script(TUNED, answer(tuned_answer))
    return {"openai": client_for("openai", base_url=double.openai_base_url, api_key=OPENAI_KEY)}


def add_model(store: Store, name: str, *, backend: str = "openai", base_model: str = BASE, output: str = TUNED,
              dataset: str | None = "support", version: str | None = "v1") -> int:
    with store.write() as db:
        job = job_rows.insert_job(db, name=name, backend=backend, base_model=base_model, state="succeeded",
                                  provider_job_id=name, output_model=output, dataset_name=dataset, version=version,
                                  finished_at="2026-11-30T10:00:00+00:00")
    model = register_from_job(store, job.id)
    assert model is not None
    return model.id


@pytest.fixture
def loaded(store: Store, write_jsonl: WriteJsonl) -> Store:
    """'support': 40 questions split half train, half test, frozen as v1; template 'ask'; a registered fine-tune."""
    records = [chat(f"Question {i}: where is my order?", f"Answer {i}") for i in range(40)]
    importing.import_path(store, write_jsonl(records), "support")
    splits.split_dataset(store, "support", (0.5, 0.0, 0.5), seed=7)
    versions.freeze(store, "support", "v1")
    templates.create_version(store, "ask", user_template="{{ input }}", settings={"model": BASE, "max_tokens": 20})
    add_model(store, "support-ft")
    return store


def question_numbers(store: Store, split: str = "test") -> list[int]:
    """The numbers of the questions in a split of v1: what the expected win counts are worked out from."""
    from workbench.domain.templates import example_variables
    from workbench.services import exporting

    found = []
    for example in exporting.source_examples(store, "support", version="v1", split=split):
        match = re.search(r"Question (\d+)", str(example_variables(example)["input"]))
        assert match
        found.append(int(match.group(1)))
    return found


def evaluate(store: Store, clients: dict[str, Any], model: str, **options: Any) -> comparisons.RunReport:
    options.setdefault("template", "ask@1")
    return evaluations.evaluate(store, model, clients=clients, retry=QUICK, **options)


# --------------------------------------------------------------------------------------------- running


def test_a_registered_model_is_evaluated_on_its_training_versions_test_split(loaded: Store, clients: dict[str, Any],
                                                                               double: ChatDouble) -> None:
    numbers = question_numbers(loaded)
    result = evaluate(loaded, clients, "support-ft")

    assert (result.state, result.dataset, result.split, result.inputs) == ("done", "support", "test", 20)
    [variant] = result.variants
    assert (variant.client, variant.model, variant.label) == ("openai", TUNED, f"ask@1=openai:{TUNED}")
    assert variant.passed == sum(1 for n in numbers if n % 5) and variant.errors == 0
    assert {c.model for c in double.calls_to("openai")} == {TUNED}, "the fine-tuned id is what the SDK sent"
    run = comparisons.get_run(loaded, result.run_id)
    assert (run.kind, run.model_ref, run.version_name, run.name) == ("evaluate", "model:1", "v1", "#1 support-ft")
    sent = {number(c.body) for c in double.calls_to("openai")}
    assert sent == set(numbers), "only the test split of version v1 was asked"


def test_fine_tuned_against_base_gives_the_known_wins_losses_and_examples(loaded: Store, clients: dict[str, Any]) -> None:
    numbers = question_numbers(loaded)
    base_ref = evaluations.base_of(loaded, "1")
    assert base_ref == f"openai:{BASE}"
    base = evaluate(loaded, clients, base_ref, dataset="support", version="v1")
    tuned = evaluate(loaded, clients, "1")

    result = evaluations.compare_evaluations(loaded, base.run_id, tuned.run_id, examples=50)

    wins = [n for n in numbers if n % 2 == 1 and n % 5]  # the fine-tune passes, the base fails
    losses = [n for n in numbers if n % 2 == 0 and n % 5 == 0]  # the reverse
    overall = result.paired.overall
    assert (result.paired.pairs, overall.wins, overall.losses, overall.ties) == (20, len(wins), len(losses), 20 - len(wins) - len(losses))
    assert (overall.only_candidate_passed, overall.only_base_passed) == (len(wins), len(losses))
    assert overall.mcnemar_p == pytest.approx(mcnemar_exact(len(wins), len(losses)))
    assert overall.win_rate == pytest.approx(len(wins) / (len(wins) + len(losses)))
    assert overall.win_rate_ci is not None and overall.win_rate_ci.low <= overall.win_rate <= overall.win_rate_ci.high
    assert [a.label for a in result.paired.assertions] == ["equals"]
    assert (result.base.model_ref, result.candidate.model_ref) == (f"openai:{BASE}", "model:1")

    assert sorted(number_of(p.input) for p in result.best) == sorted(wins)
    assert all(p.candidate_passed and not p.base_passed for p in result.best)
    assert sorted(number_of(p.input) for p in result.worst) == sorted(losses)
    worst = result.worst[0]
    assert (worst.base_output, worst.candidate_output, worst.reference) == (
        f"Answer {number_of(worst.input)}", "Answer ?", f"Answer {number_of(worst.input)}")
    assert sorted(number_of(p.input) for p in result.changed) == sorted(wins + losses)


def test_the_example_lists_are_cut_to_the_number_asked(loaded: Store, clients: dict[str, Any]) -> None:
    base = evaluate(loaded, clients, f"openai:{BASE}", dataset="support", version="v1")
    tuned = evaluate(loaded, clients, "support-ft")
    result = evaluations.compare_evaluations(loaded, base.run_id, tuned.run_id, examples=2)
    assert len(result.best) == 2 and len(result.changed) == 2


def test_evaluations_are_listed_per_model(loaded: Store, clients: dict[str, Any]) -> None:
    base = evaluate(loaded, clients, f"openai:{BASE}", dataset="support", version="v1", limit=5)
    tuned = evaluate(loaded, clients, "support-ft", limit=5)
    assert [e.run_id for e in evaluations.list_evaluations(loaded)] == [tuned.run_id, base.run_id]
    for name in ("support-ft", "1", "model:1", TUNED):
        [found] = evaluations.list_evaluations(loaded, name)
        assert (found.run_id, found.cells, found.split, found.version) == (tuned.run_id, 5, "test", "v1")
    [found] = evaluations.list_evaluations(loaded, f"openai:{BASE}")
    assert found.run_id == base.run_id and found.pass_rate is not None


def test_the_evaluate_task_runs_an_evaluation(loaded: Store, double: ChatDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    double.reset()
    double.script(TUNED, answer(tuned_answer))
    monkeypatch.setenv("OPENAI_BASE_URL", double.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    params = {"model": "support-ft", "template": "ask@1", "version": "v1", "split": "test", "limit": 4}
    task_actions.check_params("evaluate", params)
    result = task_actions.action("evaluate").run(loaded, "support", params, Progress())
    run = comparisons.get_run(loaded, result["run_id"])
    assert (run.kind, run.model_ref, run.cells_total) == ("evaluate", "model:1", 4)
    with pytest.raises(InvalidInput, match="needs model, template"):
        task_actions.check_params("evaluate", {"split": "test"})


# --------------------------------------------------------------------------------------------- resolving


def test_each_backend_resolves_to_what_answers_for_it(loaded: Store, tmp_path: Path) -> None:
    adapter = tmp_path / "runs" / "7" / "adapter"
    adapter.mkdir(parents=True)
    local = add_model(loaded, "local-ft", backend="local", base_model="Qwen/Qwen2.5-0.5B-Instruct", output=str(adapter))
    nova = add_model(loaded, "nova-ft", backend="bedrock", base_model=NOVA_MICRO,
                     output="arn:aws:bedrock:us-east-1:123456789012:custom-model/nova/abc")
    assert (evaluations.resolve_model(loaded, local).client, evaluations.resolve_model(loaded, local).model) == ("local", str(adapter))
    assert evaluations.base_of(loaded, local) == "local:Qwen/Qwen2.5-0.5B-Instruct"
    assert evaluations.base_of(loaded, nova) == "bedrock:amazon.nova-micro-v1:0"
    assert evaluations.base_of(loaded, "openai:gpt-4o") is None
    plain = evaluations.resolve_model(loaded, "bedrock:arn:aws:bedrock:us-east-1:1:provisioned-model/x")
    assert (plain.client, plain.model, plain.ref) == ("bedrock", "arn:aws:bedrock:us-east-1:1:provisioned-model/x",
                                                      "bedrock:arn:aws:bedrock:us-east-1:1:provisioned-model/x")

    arn = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123"
    with loaded.write() as db:
        deployment_rows.insert(db, model_id=nova, kind="provisioned", name="nova-pt", provider_id=arn, status="active")
    target = evaluations.resolve_model(loaded, "nova-ft")
    assert (target.client, target.model, target.ref) == ("bedrock", arn, f"model:{nova}")


def test_a_bedrock_model_without_a_deployment_is_refused_with_the_command_to_deploy_it(loaded: Store) -> None:
    nova = add_model(loaded, "nova-ft", backend="bedrock", base_model=NOVA_MICRO,
                     output="arn:aws:bedrock:us-east-1:123456789012:custom-model/nova/abc")
    with pytest.raises(InvalidInput, match=rf"no active one: deploy it first with `workbench models deploy {nova} --kind on-demand`"):
        evaluations.resolve_model(loaded, nova)
    with loaded.write() as db:
        deployment_rows.insert(db, model_id=nova, kind="on-demand", name="nova-od", status="creating")
    with pytest.raises(InvalidInput, match="its deployment 'nova-od' is creating, not active yet"):
        evaluations.evaluate(loaded, nova, template="ask@1")
    assert comparisons.list_runs(loaded) == [], "nothing was stored"


def test_a_sagemaker_model_has_no_client_yet(loaded: Store) -> None:
    model = add_model(loaded, "sm-ft", backend="sagemaker", base_model="Qwen/Qwen2.5-0.5B-Instruct", output="s3://bucket/out/model.tar.gz")
    with pytest.raises(InvalidInput, match="no inference client for SageMaker models yet"):
        evaluations.evaluate(loaded, model, template="ask@1")


@pytest.mark.parametrize("model", ["nope", "99", "model:99"])
def test_an_unknown_model_is_not_found(loaded: Store, model: str) -> None:
    with pytest.raises(NotFound, match=f"no model '{model}'.*CLIENT:MODEL"):
        evaluations.evaluate(loaded, model, template="ask@1")


@pytest.mark.parametrize("model", ["openai:", "openai: "])
def test_a_client_without_a_model_is_refused(loaded: Store, model: str) -> None:
    with pytest.raises(InvalidInput, match="write it as CLIENT:MODEL"):
        evaluations.resolve_model(loaded, model)


def test_a_base_model_needs_a_dataset(loaded: Store) -> None:
    with pytest.raises(InvalidInput, match=r"base model with no training dataset: name the dataset.*--dataset"):
        evaluations.evaluate(loaded, f"openai:{BASE}", template="ask@1")


def test_an_empty_test_split_is_said_clearly_and_nothing_is_stored(loaded: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(loaded, write_jsonl([chat(f"Question {i}", f"Answer {i}") for i in range(5)], "raw.jsonl"), "raw")
    with pytest.raises(InvalidInput, match=r"the test split of dataset 'raw' is empty \(it holds: unassigned 5\): "
                                           r"split it first \(`workbench datasets split raw`\)"):
        evaluations.evaluate(loaded, f"openai:{BASE}", template="ask@1", dataset="raw")
    versions.freeze(loaded, "support", "train-only", split="train")
    with pytest.raises(InvalidInput, match="the test split of dataset 'support' version 'train-only' is empty"):
        evaluations.evaluate(loaded, "support-ft", template="ask@1", version="train-only")
    assert comparisons.list_runs(loaded) == []


# --------------------------------------------------------------------------------------------- refusing to pair


def test_runs_over_different_inputs_are_not_paired(loaded: Store, clients: dict[str, Any]) -> None:
    tuned = evaluate(loaded, clients, "support-ft", limit=6)
    fewer = evaluate(loaded, clients, f"openai:{BASE}", dataset="support", version="v1", limit=4)
    train = evaluate(loaded, clients, f"openai:{BASE}", dataset="support", version="v1", split="train", limit=6)
    live = evaluate(loaded, clients, f"openai:{BASE}", dataset="support", limit=6)
    other = evaluate(loaded, clients, f"openai:{BASE}", dataset="support", version="v1", limit=6, assertions=["contains:Answer"])

    with pytest.raises(InvalidInput, match=rf"different inputs, 2 only in run {tuned.run_id} \(examples \d+, \d+\)"):
        evaluations.compare_evaluations(loaded, tuned.run_id, fewer.run_id)
    with pytest.raises(InvalidInput, match=rf"different split \('test' in run {tuned.run_id}, 'train' in run {train.run_id}\)"):
        evaluations.compare_evaluations(loaded, tuned.run_id, train.run_id)
    with pytest.raises(InvalidInput, match=r"different dataset version \('v1' in run \d+, '\(live examples\)' in run \d+\)"):
        evaluations.compare_evaluations(loaded, tuned.run_id, live.run_id)
    with pytest.raises(InvalidInput, match="different assertions"):
        evaluations.compare_evaluations(loaded, tuned.run_id, other.run_id)
    with pytest.raises(InvalidInput, match=f"the same run {tuned.run_id}"):
        evaluations.compare_evaluations(loaded, tuned.run_id, tuned.run_id)
    with pytest.raises(NotFound, match="no evaluation run 999; `workbench evaluate list`"):
        evaluations.compare_evaluations(loaded, tuned.run_id, 999)


def test_a_comparison_of_several_variants_is_not_an_evaluation(loaded: Store, clients: dict[str, Any]) -> None:
    tuned = evaluate(loaded, clients, "support-ft", limit=3)
    matrix = comparisons.run_comparison(loaded, [f"ask=openai:{BASE}", f"ask=openai:{TUNED}"], dataset="support",
                                        version="v1", split="test", limit=3, clients=clients, retry=QUICK)
    with pytest.raises(InvalidInput, match=f"run {matrix.run_id} is a comparison of 2 variants"):
        evaluations.compare_evaluations(loaded, matrix.run_id, tuned.run_id)


def test_a_live_dataset_edited_between_runs_is_not_paired(loaded: Store, clients: dict[str, Any]) -> None:
    first = evaluate(loaded, clients, f"openai:{BASE}", dataset="support", limit=3)
    example_id = comparisons.run_cells(loaded, first.run_id)[0].example_id
    assert example_id is not None
    from workbench.domain.example import Message, Role
    from workbench.services import datasets

    datasets.edit_turns(loaded, example_id, None, [Message(role=Role.USER, content="Question 99: edited"),
                                                   Message(role=Role.ASSISTANT, content="Answer 99")])
    second = evaluate(loaded, clients, "support-ft", dataset="support", limit=3)
    with pytest.raises(InvalidInput, match=f"example {example_id}'s text changed.*freeze a version"):
        evaluations.compare_evaluations(loaded, first.run_id, second.run_id)


def number_of(text: str) -> int:
    found = re.search(r"Question (\d+)", text)
    assert found
    return int(found.group(1))


# --------------------------------------------------------------------------------------------- review fixes


def test_the_suggested_pair_is_always_one_that_can_be_paired(loaded: Store, clients: dict[str, Any]) -> None:
    base = evaluate(loaded, clients, f"openai:{BASE}", dataset="support", version="v1", limit=4)
    tuned = evaluate(loaded, clients, "support-ft", limit=4)
    evaluate(loaded, clients, "support-ft", limit=4, assertions=["contains:Answer"])  # newest, but other assertions
    found = evaluations.list_evaluations(loaded)
    assert evaluations.suggest_pair(loaded, found) == (base.run_id, tuned.run_id)
    assert evaluations.pairing_problem(loaded, base.run_id, tuned.run_id) is None
    assert "different assertions" in str(evaluations.pairing_problem(loaded, base.run_id, found[0].run_id))


def test_no_pairable_evaluations_suggest_no_pair(loaded: Store, clients: dict[str, Any]) -> None:
    evaluate(loaded, clients, f"openai:{BASE}", dataset="support", version="v1", limit=4, assertions=["contains:Answer"])
    evaluate(loaded, clients, "support-ft", limit=4)
    evaluate(loaded, clients, "support-ft", limit=3)
    assert evaluations.suggest_pair(loaded, evaluations.list_evaluations(loaded)) is None


@pytest.mark.parametrize("run_id", [2**63, 10**23, -1])
def test_a_run_id_too_large_for_sqlite_is_not_found(loaded: Store, run_id: int) -> None:
    with pytest.raises(NotFound, match=f"no evaluation run {run_id}"):
        evaluations.get_evaluation(loaded, run_id)
    with pytest.raises(NotFound, match=f"no evaluation run {run_id}"):
        evaluations.compare_evaluations(loaded, run_id, 1)


def test_a_local_model_whose_folder_is_gone_is_refused_before_a_run(loaded: Store, tmp_path: Path) -> None:
    gone = tmp_path / "gone" / "adapter"
    model = add_model(loaded, "local-ft", backend="local", base_model="Qwen/Qwen2.5-0.5B-Instruct", output=str(gone))
    with pytest.raises(InvalidInput, match=f"its adapter folder {re.escape(str(gone))} does not exist"):
        evaluations.evaluate(loaded, model, template="ask@1")
    with pytest.raises(InvalidInput, match="does not exist"):
        evaluations.resolve_model(loaded, f"local:{gone}")
    assert evaluations.resolve_model(loaded, "local:Qwen/Qwen2.5-0.5B-Instruct").model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert comparisons.list_runs(loaded) == [], "nothing was stored"


def test_a_template_using_a_variable_the_dataset_lacks_is_refused_naming_what_it_has(loaded: Store) -> None:
    templates.create_version(loaded, "needs-foo", user_template="{{ foo }}: {{ input }}", settings={"model": BASE})
    with pytest.raises(InvalidInput) as caught:
        evaluations.evaluate(loaded, "support-ft", template="needs-foo@1")
    message = str(caught.value)
    assert "needs-foo@1 uses the variable 'foo'" in message and "they give: input, messages, reference" in message
    assert "--var" not in message
    assert comparisons.list_runs(loaded) == [], "nothing was stored"


def test_a_stored_render_error_is_reworded_without_the_var_hint() -> None:
    stored = ("could not render ask@1: ask@1: variable 'foo' used in the user template is not defined (given: input); "
              "pass it with --var foo=... or render on a dataset example that has it")
    reworded = evaluations.explain_error(stored)
    assert "--var" not in reworded and "add 'foo' to the examples' metadata" in reworded and "(given: input)" in reworded


def test_the_suggested_template_fits_the_models_task_or_the_dataset(loaded: Store) -> None:
    templates.create_version(loaded, "aaa-other", user_template="{{ input }}", task_type="translation")
    templates.create_version(loaded, "support-answer", user_template="{{ input }}", task_type="qa")
    templates.create_version(loaded, "support-answer", user_template="Q: {{ input }}", task_type="qa")
    refs = evaluations.template_refs(loaded)
    assert evaluations.suggest_template(loaded, refs, "support-ft", "support") == "support-answer@2", "the dataset's words"
    with loaded.write() as db:
        db.execute("UPDATE models SET task = 'translation' WHERE name = 'support-ft'")
    assert evaluations.suggest_template(loaded, refs, "support-ft", "support") == "aaa-other@1", "the model's task first"
    assert evaluations.suggest_template(loaded, refs, "openai:gpt-4o", "unrelated") == refs[0]
    assert evaluations.suggest_template(loaded, [], None, None) is None


def test_a_run_whose_every_input_failed_says_so(loaded: Store, clients: dict[str, Any], double: ChatDouble) -> None:
    double.script(TUNED, failing(404, "The model does not exist"))
    result = evaluate(loaded, clients, "support-ft", limit=3)
    kept = evaluations.get_evaluation(loaded, result.run_id)
    assert evaluations.failed_everywhere(kept)
    message = evaluations.all_failed_message(loaded, kept)
    assert f"run {result.run_id}" in message and "all 3 inputs failed" in message and "does not exist" in message
