"""Models page, Evaluate tab: run a model over a test split (a background task), list evaluations, pair two.

An evaluation runs as task kind "evaluate" on its dataset, so its progress shows live with Cancel
while the page stays usable. Two evaluations (by default the newest base model against the newest
fine-tuned one on the same inputs) are compared per assertion: win rates with their intervals as a
table and a chart, McNemar p-values, and the best, worst and changed examples, whose text (dataset
and model output) is always shown as text, never as markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from workbench.domain import assertion_forms as forms
from workbench.domain import assertions as checks
from workbench.errors import InvalidInput, WorkbenchError
from workbench.providers.inference import client_status
from workbench.services import comparisons, datasets, evaluations, tasks, versions
from workbench.services.evaluations import Evaluation, EvaluationComparison, ExamplePair
from workbench.store.tasks import TaskState
from workbench.ui.task_panel import show_task, start_task
from workbench.ui.widgets import chart_text, escape_markdown, exact_text, flash, plural, show_flash

if TYPE_CHECKING:
    from workbench.domain.eval_stats import AssertionComparison
    from workbench.store import Store
    from workbench.store.models import ModelRow
    from workbench.store.tasks import Task

PREFIX = "models.evaluate."
MODEL, OTHER, TEMPLATE, DATASET = PREFIX + "model", PREFIX + "other", PREFIX + "template", PREFIX + "dataset"
VERSION, SPLIT, LIMIT, ASSERTIONS, JUDGE = PREFIX + "version", PREFIX + "split", PREFIX + "limit", PREFIX + "assertions", PREFIX + "judge"
RUN, TASK = PREFIX + "run", PREFIX + "task"
BASE_RUN, CANDIDATE_RUN, EXAMPLES = PREFIX + "base_run", PREFIX + "candidate_run", PREFIX + "examples"
OTHER_MODEL, LIVE, ALL_SPLITS = "other", "(live examples)", "all"
SPLITS = ["test", "validation", "train", ALL_SPLITS]
PREVIEW_CHARS = 600


def render(store: Store, rows: list[ModelRow]) -> None:
    """Draw the evaluation form (with its running task), the kept evaluations, and a comparison of two."""
    names = {f"{evaluations.REGISTERED}{m.id}": f"#{m.id} {m.name}" for m in rows}
    st.subheader(":material/fact_check: Evaluate a model", anchor=False)
    refs = evaluations.template_refs(store)
    dataset_names = [d.name for d in datasets.list_datasets(store)]
    if not refs or not dataset_names:
        st.info("An evaluation needs a template (Templates page) and a dataset with a test split (Datasets page).",
                icon=":material/info:")
    else:
        _form(store, rows, refs, dataset_names)
        _task(store)
    st.divider()
    found = evaluations.list_evaluations(store, limit=200)
    _history(store, found, names)
    if len(found) >= 2:
        _comparison(store, found, names)


# --------------------------------------------------------------------------------------------- the form


def _model_choices(store: Store, rows: list[ModelRow]) -> dict[str, str]:
    """Registered models, then their base models, then 'another CLIENT:MODEL': value -> label."""
    choices = {f"{evaluations.REGISTERED}{m.id}": f"#{m.id} {m.name} (fine-tuned, {m.backend})" for m in rows}
    for m in rows:
        try:
            base = evaluations.base_of(store, m.id)
        except WorkbenchError:
            continue
        if base:
            choices.setdefault(base, f"{base} (base of #{m.id})")
    choices[OTHER_MODEL] = "another model (CLIENT:MODEL)…"
    return choices


def _model_changed() -> None:
    """A new model brings its own default dataset and version: forget the ones chosen for the last."""
    for key in (DATASET, VERSION):
        st.session_state.pop(key, None)


def _form(store: Store, rows: list[ModelRow], refs: list[str], dataset_names: list[str]) -> None:
    choices = _model_choices(store, rows)
    cols = st.columns([3, 2])
    chosen = cols[0].selectbox("Model", list(choices), key=MODEL, format_func=lambda v: choices.get(v, v),
                               on_change=_model_changed,
                               help="A fine-tuned model from the table above, its base model, or any CLIENT:MODEL.")
    model = str(chosen)
    if chosen == OTHER_MODEL:
        model = cols[1].text_input("CLIENT:MODEL", key=OTHER, placeholder="e.g. openai:gpt-4o-mini").strip()
    st.selectbox("Template version", refs, key=TEMPLATE, help="Renders each input into the prompt the model sees.")
    ready = _target_note(store, model) if model else False
    trained_on, trained_version = _defaults(store, model)
    cols = st.columns([2, 2, 1, 1])
    index = dataset_names.index(trained_on) if trained_on in dataset_names else 0
    dataset = cols[0].selectbox("Dataset", dataset_names, index=index, key=DATASET,
                                help="Default: the dataset the model was trained on.")
    frozen = [v.name for v in versions.list_versions(store, dataset)] if dataset else []
    options = [LIVE, *frozen]
    version = cols[1].selectbox("Version", options, index=options.index(trained_version) if trained_version in options else 0,
                                key=VERSION, help="Default: the frozen version the model was trained on.")
    split = cols[2].selectbox("Split", SPLITS, key=SPLIT, help="Default: the test split, which the model never saw in training.")
    cols[3].number_input("Limit", min_value=1, max_value=comparisons.MAX_INPUTS, value=50, key=LIMIT,
                         help="How many inputs, in dataset order. Two evaluations pair only on the same inputs.")
    has_inputs = _split_note(store, dataset, None if version == LIVE else version, split)
    st.text_area("Assertions", key=ASSERTIONS, height=80, placeholder="contains:refund\njson-field:label",
                 help="One per line; none means: equals the reference answer, white space trimmed. Forms:\n\n"
                      + "\n".join(f"- `{form}`" for form in forms.FORMS))
    st.text_input("Judge (CLIENT:MODEL)", key=JUDGE, placeholder="e.g. anthropic:claude-sonnet-4-5",
                  help="Answers the judge:RUBRIC assertions; needed only when there is one.")
    st.button("Evaluate", key=RUN, icon=":material/play_arrow:", type="primary", on_click=_start, args=(store, model),
              disabled=not ready or not has_inputs or _running(store) is not None)


def _defaults(store: Store, model: str) -> tuple[str | None, str | None]:
    try:
        return evaluations.default_dataset(store, model) if model else (None, None)
    except WorkbenchError:
        return None, None


def _target_note(store: Store, model: str) -> bool:
    """Say what will answer, or why nothing can (no deployment, no client configured); True when it can run."""
    try:
        target = evaluations.resolve_model(store, model)
    except WorkbenchError as exc:
        st.warning(escape_markdown(str(exc)), icon=":material/warning:")
        return False
    status = next((s for s in client_status() if s.kind.value == target.client), None)
    if status is not None and not status.configured:
        setting = f" Set {escape_markdown(status.setting)}." if status.setting else ""
        st.warning(f"The {target.client} client is not configured, so this model cannot be called from here yet.{setting}  \n"
                   f"{escape_markdown(status.detail)}  \nKept evaluations below still open and compare.",
                   icon=":material/key:")
        return False
    st.caption(escape_markdown(f"Calls {target.client}:{target.model}; the run is filed under {target.ref}."))
    return True


def _split_note(store: Store, dataset: str | None, version: str | None, split: str) -> bool:
    """Say how many examples the evaluation would run on; False when there are none."""
    if not dataset:
        return False
    try:
        counts = evaluations.split_counts(store, dataset, version)
    except WorkbenchError as exc:
        st.warning(escape_markdown(str(exc)), icon=":material/warning:")
        return False
    held = sum(counts.values()) if split == ALL_SPLITS else counts.get(split, 0)
    where = " · ".join(f"{name} {n:,}" for name, n in sorted(counts.items()))
    text = f"{plural(held, 'example')} to evaluate on ({where})."
    if held:
        st.caption(escape_markdown(text))
    else:
        st.warning(escape_markdown(f"The {split} split is empty ({where or 'no examples'}): split the dataset on the "
                                   "Datasets page, or choose another split."), icon=":material/warning:")
    return held > 0


def _params(model: str) -> tuple[str, dict[str, Any]]:
    version = st.session_state.get(VERSION)
    split = st.session_state.get(SPLIT) or "test"
    lines = [line.strip() for line in str(st.session_state.get(ASSERTIONS) or "").splitlines() if line.strip()]
    return str(st.session_state.get(DATASET) or ""), {
        "model": model, "template": str(st.session_state.get(TEMPLATE) or ""),
        "version": None if version in (None, LIVE) else str(version), "split": None if split == ALL_SPLITS else str(split),
        "limit": int(st.session_state.get(LIMIT) or 50), "assertions": lines,
        "judge": str(st.session_state.get(JUDGE) or "").strip() or None,
    }


def _start(store: Store, model: str) -> None:
    """Check what can be checked at once (model, assertions, judge), then start the evaluate task."""
    dataset, params = _params(model)
    try:
        evaluations.resolve_model(store, model)
        specs = forms.parse_assertions(params["assertions"])
        if any(isinstance(s, checks.JudgeSpec) for s in specs) and not params["judge"]:
            raise InvalidInput("a judge: assertion needs a judge model: fill in Judge as CLIENT:MODEL")
    except WorkbenchError as exc:
        flash(RUN, escape_markdown(str(exc)), "error")
        return
    task = start_task(store, "evaluate", dataset, params, RUN)
    if task is not None:
        st.session_state[TASK] = task.id


def _current(store: Store) -> Task | None:
    task_id = st.session_state.get(TASK)
    if task_id is None:
        return None
    try:
        return tasks.get(store, int(task_id))
    except WorkbenchError:
        return None


def _running(store: Store) -> Task | None:
    task = _current(store)
    return task if task is not None and task.state.active else None


def _task(store: Store) -> None:
    task = _current(store)
    if task is None or task.state is not TaskState.DONE:
        show_task(store, (task.dataset or "") if task else "", task, key=RUN, render=lambda result, t: None, recompute=False,
                  follows_data=False)
        return
    show_flash(RUN)
    run_id = task.result.get("run_id") if isinstance(task.result, dict) else None
    st.success(f"Evaluation finished: run #{run_id}, {plural(task.done, 'input')}. It is listed below.",
               icon=":material/check_circle:")


# --------------------------------------------------------------------------------------------- kept runs


def _who(ref: str | None, names: dict[str, str]) -> str:
    return names.get(ref or "", ref or "?")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _history(store: Store, found: list[Evaluation], names: dict[str, str]) -> None:
    st.subheader("Evaluations", anchor=False)
    if not found:
        st.caption("No evaluations yet: start one above, or with `workbench evaluate run MODEL --template NAME@VERSION`.")
        return
    chosen = st.session_state.get(MODEL)
    model = st.session_state.get(OTHER) if chosen == OTHER_MODEL else chosen
    if model and st.toggle("Only the chosen model's", key=PREFIX + "mine"):
        try:
            found = evaluations.list_evaluations(store, str(model), limit=200)
        except WorkbenchError as exc:
            st.caption(escape_markdown(str(exc)))
    if not found:
        st.caption("No evaluation of this model yet.")
        return
    frame = pd.DataFrame([{
        "run": e.run_id, "model": _who(e.model_ref, names), "template and model": e.label,
        "dataset": e.dataset or "(deleted)", "version": e.version or "live", "split": e.split or "all", "state": e.state,
        "inputs": e.cells, "passed": e.passed, "failed": e.failed, "errors": e.errors, "pass rate": _percent(e.pass_rate),
        "mean score": e.mean_score, "spent": e.cost_usd, "when": e.created_at[:16].replace("T", " "),
    } for e in found])
    st.dataframe(frame, hide_index=True, width="stretch", key=PREFIX + "table", column_config={
        "spent": st.column_config.NumberColumn(format="$%.4f"), "mean score": st.column_config.NumberColumn(format="%.2f"),
    })


def _comparison(store: Store, found: list[Evaluation], names: dict[str, str]) -> None:
    st.subheader(":material/compare_arrows: Fine-tuned against base", anchor=False)
    by_id = {e.run_id: e for e in found}
    pair = evaluations.suggest_pair(found)
    for key, default in ((BASE_RUN, pair[0] if pair else None), (CANDIDATE_RUN, pair[1] if pair else None)):
        if st.session_state.get(key) not in by_id and default is not None:
            st.session_state[key] = default

    def label(run_id: int) -> str:
        e = by_id[run_id]
        return f"#{e.run_id} {_who(e.model_ref, names)} · {e.dataset}{f'@{e.version}' if e.version else ''}/{e.split or 'all'}"

    cols = st.columns([3, 3, 1])
    base = cols[0].selectbox("Base run", list(by_id), key=BASE_RUN, format_func=label)
    candidate = cols[1].selectbox("Candidate run", list(by_id), key=CANDIDATE_RUN, format_func=label)
    listed = int(cols[2].number_input("Examples", min_value=1, max_value=50, value=5, key=EXAMPLES,
                                      help="How many best, worst and changed examples to show."))
    try:
        result = evaluations.compare_evaluations(store, int(base), int(candidate), examples=listed)
    except WorkbenchError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/block:")
        return
    _win_rates(result)
    _examples(result)


def _win_rates(result: EvaluationComparison) -> None:
    paired = result.paired
    rows = [paired.overall, *paired.assertions]
    st.caption(escape_markdown(
        f"{plural(paired.pairs, 'input')} answered by both. A win is an input where the candidate scored higher than "
        "the base; ties are left out of the win rate. McNemar's exact test asks whether the pass/fail flips lean one way."))
    st.dataframe(pd.DataFrame([_row(r) for r in rows]), hide_index=True, width="stretch", key=PREFIX + "win_rates")
    diff = paired.score_difference
    if diff.mean is not None:
        interval = "" if diff.ci is None else f" (95% interval {diff.ci.low:+.3f} to {diff.ci.high:+.3f})"
        p = "" if diff.p_value is None else f", paired t-test p = {diff.p_value:.3g}"
        st.caption(escape_markdown(f"Mean score change, candidate minus base: {diff.mean:+.3f}{interval}{p}."))
    shown = [r for r in rows if r.win_rate is not None and r.win_rate_ci is not None]
    if not shown:
        return
    figure = go.Figure(go.Bar(
        x=[r.win_rate for r in shown], y=[chart_text(r.label) for r in shown], orientation="h",
        error_x={"type": "data", "symmetric": False, "array": [r.win_rate_ci.high - r.win_rate for r in shown],  # type: ignore[union-attr,operator]
                 "arrayminus": [r.win_rate - r.win_rate_ci.low for r in shown]},  # type: ignore[union-attr,operator]
        text=[f"{r.wins}–{r.losses}" for r in shown], textposition="inside",
    ))
    figure.add_vline(x=0.5, line_dash="dash", annotation_text="no difference")
    figure.update_layout(title="Candidate win rate per assertion (95% Wilson interval)", height=120 + 40 * len(shown),
                         xaxis={"range": [0, 1], "tickformat": ".0%"}, yaxis={"autorange": "reversed"}, showlegend=False)
    st.plotly_chart(figure, config={"displayModeBar": False}, key=PREFIX + "chart")


def _row(row: AssertionComparison) -> dict[str, Any]:
    ci = row.win_rate_ci
    return {
        "assertion": row.label, "inputs": row.pairs, "wins": row.wins, "losses": row.losses, "ties": row.ties,
        "win rate": _percent(row.win_rate), "95% interval": f"{ci.low:.0%}–{ci.high:.0%}" if ci else "",
        "base pass rate": _percent(row.base_pass_rate), "candidate pass rate": _percent(row.candidate_pass_rate),
        "McNemar p": "" if row.mcnemar_p is None else f"{row.mcnemar_p:.3g}", "note": row.note or "",
    }


def _examples(result: EvaluationComparison) -> None:
    lists = (("Best", result.best, "the candidate gained most"), ("Worst", result.worst, "the candidate lost most"),
             ("Changed", result.changed, "pass/fail differs"))
    tabs = st.tabs([f"{title} ({len(pairs)})" for title, pairs, _ in lists])
    for tab, (_, pairs, what) in zip(tabs, lists, strict=True):
        with tab:
            if not pairs:
                st.caption(f"No input where {what}.")
            for pair in pairs:
                _example(pair)


def _example(pair: ExamplePair) -> None:
    with st.container(border=True):
        st.caption(f"example {escape_markdown(str(pair.example_id))}")
        _text(pair.input, "input")
        if pair.reference is not None:
            st.caption("reference")
            _text(pair.reference, "reference")
        cols = st.columns(2)
        for column, side, output, error, passed, score in (
            (cols[0], "base", pair.base_output, pair.base_error, pair.base_passed, pair.base_score),
            (cols[1], "candidate", pair.candidate_output, pair.candidate_error, pair.candidate_passed, pair.candidate_score),
        ):
            with column:
                verdict = {True: ":green[pass]", False: ":red[fail]", None: ":gray[unjudged]"}[passed]
                st.markdown(f"**{side}** {verdict}" + ("" if score is None else f" · score {score:.2f}"))
                _text(output if error is None else f"error: {error}", "output")


def _text(text: str | None, what: str) -> None:
    text = text or ""
    if len(text) <= PREVIEW_CHARS:
        exact_text(text)
        return
    exact_text(text[:PREVIEW_CHARS] + "…")
    with st.expander(f"Whole {what}: {len(text):,} characters"):
        exact_text(text)
