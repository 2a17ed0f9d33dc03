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
from workbench.domain.access import Permission
from workbench.errors import InvalidInput, WorkbenchError
from workbench.providers.inference import client_status
from workbench.services import comparisons, datasets, evaluations, versions
from workbench.services.evaluations import Evaluation, EvaluationComparison, ExamplePair
from workbench.store.tasks import TaskState
from workbench.ui.permits import may
from workbench.ui.task_panel import session_task, show_task, start_task
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
    elif may(Permission.MODELS_WRITE, "run evaluations, which call models and cost money"):
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
    bases: dict[str, list[str]] = {}
    for m in rows:
        try:
            base = evaluations.base_of(store, m.id)
        except WorkbenchError:
            continue
        if base:
            bases.setdefault(base, []).append(f"#{m.id} {m.name}")
    for base, tuned in bases.items():
        choices.setdefault(base, f"{base} (base of {', '.join(tuned)})")
    choices[OTHER_MODEL] = "another model (CLIENT:MODEL)…"
    return choices


def _usable(store: Store, model: str) -> bool:
    """Whether `model` could be evaluated from here now: it resolves (a deployment, an existing folder) and its
    client is configured. The form offers the first usable model, so a new user is not steered into a run that fails."""
    try:
        target = evaluations.resolve_model(store, model)
    except WorkbenchError:
        return False
    status = next((s for s in client_status() if s.kind.value == target.client), None)
    return status is None or status.configured


def _default_model(store: Store, choices: dict[str, str]) -> int:
    """The index of the first usable choice, the newest registered model first; else the first."""
    values = [v for v in choices if v != OTHER_MODEL]
    return next((i for i, v in enumerate(values) if _usable(store, v)), 0)


def _model_changed() -> None:
    """A new model brings its own default dataset, version and template: forget the ones chosen for the last."""
    for key in (DATASET, VERSION, TEMPLATE):
        st.session_state.pop(key, None)


def _dataset_changed() -> None:
    """Another dataset may want another template (its task): offer the one that fits it."""
    st.session_state.pop(TEMPLATE, None)


def _form(store: Store, rows: list[ModelRow], refs: list[str], dataset_names: list[str]) -> None:
    choices = _model_choices(store, rows)
    cols = st.columns([3, 2])
    chosen = cols[0].selectbox("Model", list(choices), key=MODEL, format_func=lambda v: choices.get(v, v),
                               on_change=_model_changed, index=_default_model(store, choices) if MODEL not in st.session_state else 0,
                               help="A fine-tuned model from the table above, its base model, or any CLIENT:MODEL.")
    model = str(chosen)
    if chosen == OTHER_MODEL:
        model = cols[1].text_input("CLIENT:MODEL", key=OTHER, placeholder="e.g. openai:gpt-4o-mini").strip()
    trained_on, trained_version = _defaults(store, model)
    index = dataset_names.index(trained_on) if trained_on in dataset_names else 0
    planned = st.session_state.get(DATASET) or dataset_names[index]
    fitting = evaluations.suggest_template(store, refs, model, str(planned))
    st.selectbox("Template version", refs, key=TEMPLATE, index=refs.index(fitting) if fitting in refs else 0,
                 help="Renders each input into the prompt the model sees. Default: the newest version of the template "
                      "whose task fits the model (or the dataset).")
    ready = _target_note(store, model) if model else False
    cols = st.columns([2, 2, 1, 1])
    dataset = cols[0].selectbox("Dataset", dataset_names, index=index, key=DATASET, on_change=_dataset_changed,
                                help="Default: the dataset the model was trained on.")
    frozen = [v.name for v in versions.list_versions(store, dataset)] if dataset else []
    options = [LIVE, *frozen]
    version = cols[1].selectbox("Version", options, index=options.index(trained_version) if trained_version in options else 0,
                                key=VERSION, help="Default: the frozen version the model was trained on.")
    split = cols[2].selectbox("Split", SPLITS, key=SPLIT, help="Default: the test split, which the model never saw in training.")
    limit = cols[3].number_input("Limit", min_value=1, max_value=comparisons.MAX_INPUTS, value=50, key=LIMIT,
                                 help="How many inputs, in dataset order. Two evaluations pair only on the same inputs.")
    has_inputs = _split_note(store, dataset, None if version == LIVE else version, split, int(limit))
    st.text_area("Assertions", key=ASSERTIONS, height=80, placeholder="e.g. contains:WORD\nis-json\njson-field:PATH",
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


def _split_note(store: Store, dataset: str | None, version: str | None, split: str, limit: int) -> bool:
    """Say how many examples the evaluation would run on (the limit of how many there are); False when none."""
    if not dataset:
        return False
    try:
        counts = evaluations.split_counts(store, dataset, version)
    except WorkbenchError as exc:
        st.warning(escape_markdown(str(exc)), icon=":material/warning:")
        return False
    held = sum(counts.values()) if split == ALL_SPLITS else counts.get(split, 0)
    where = " · ".join(f"{name} {n:,}" for name, n in sorted(counts.items()))
    text = (f"{limit:,} of {held:,} examples to evaluate on" if limit < held else
            f"{plural(held, 'example')} to evaluate on") + f" ({where})."
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


def _running(store: Store) -> Task | None:
    task = session_task(store, TASK)
    return task if task is not None and task.state.active else None


def _task(store: Store) -> None:
    task = session_task(store, TASK)
    if task is None or task.state is not TaskState.DONE:
        show_task(store, (task.dataset or "") if task else "", task, key=RUN, render=lambda result, t: None, recompute=False,
                  follows_data=False)
        return
    show_flash(RUN)
    run_id = task.result.get("run_id") if isinstance(task.result, dict) else None
    try:
        kept = evaluations.get_evaluation(store, int(run_id)) if run_id is not None else None
    except (WorkbenchError, ValueError):
        kept = None
    if kept is not None and evaluations.failed_everywhere(kept):
        st.error(escape_markdown(evaluations.all_failed_message(store, kept)), icon=":material/error:")
        return
    st.success(f"Evaluation finished: run {run_id}, {plural(task.done, 'input')}. It is listed below.",
               icon=":material/check_circle:")


# --------------------------------------------------------------------------------------------- kept runs


def _who(ref: str | None, names: dict[str, str]) -> str:
    return names.get(ref or "", ref or "?")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _outcome(e: Evaluation) -> str:
    """Passed out of all with the errors beside it, so a run whose inputs all failed does not read as a result."""
    errors = f", {plural(e.errors, 'error')}" if e.errors else ""
    return f"passed {e.passed}/{e.cells}{errors}"


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
        "run": e.run_id, "model": _who(e.model_ref, names), "result": _outcome(e), "template and model": e.label,
        "dataset": e.dataset or "(deleted)", "version": e.version or "live", "split": e.split or "all", "state": e.state,
        "inputs": e.cells, "passed": e.passed, "failed": e.failed, "errors": e.errors,
        "pass rate": _percent(e.pass_rate),
        "mean score": e.mean_score, "spent": e.cost_usd, "when": e.created_at[:16].replace("T", " "),
    } for e in found])
    st.dataframe(frame, hide_index=True, width="stretch", key=PREFIX + "table", column_config={
        "spent": st.column_config.NumberColumn(format="$%.4f"), "mean score": st.column_config.NumberColumn(format="%.2f"),
    })


def _comparison(store: Store, found: list[Evaluation], names: dict[str, str]) -> None:
    st.subheader(":material/compare_arrows: Fine-tuned against base", anchor=False)
    by_id = {e.run_id: e for e in found}
    chosen = (st.session_state.get(BASE_RUN), st.session_state.get(CANDIDATE_RUN))
    if not all(run in by_id for run in chosen):
        pair = evaluations.suggest_pair(store, found)
        if pair is None:
            st.info("No two of these evaluations can be paired yet: a comparison needs two runs over the same dataset, "
                    "version, split, examples (the same limit) and assertions. Evaluate the base model with the same "
                    "settings as the fine-tuned one.", icon=":material/info:")
            return
        st.session_state[BASE_RUN], st.session_state[CANDIDATE_RUN] = pair

    def label(run_id: int) -> str:
        e = by_id[run_id]
        model = names.get(e.model_ref or "")
        who = f"model {model}" if model else (e.model_ref or "?")
        return f"run {e.run_id} · {who} · {e.dataset}{f'@{e.version}' if e.version else ''}/{e.split or 'all'}"

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
    st.plotly_chart(_win_rate_chart(shown), config={"displayModeBar": False}, key=PREFIX + "chart")


def _win_rate_chart(shown: list[AssertionComparison]) -> go.Figure:
    """One row per assertion: the candidate's win rate as a dot with its interval as a bar around it, against a
    dashed 50% line (no difference). Counts go in the row's label, outside the plot, so nothing overlaps."""
    counts = "<br>{} won · {} lost · {} tied"
    labels = [chart_text(r.label) + counts.format(r.wins, r.losses, r.ties) for r in shown]
    rates = [r.win_rate or 0.0 for r in shown]
    figure = go.Figure(go.Scatter(
        x=rates, y=labels, mode="markers+text", marker={"size": 12, "color": "#1f77b4"},
        text=[f"{rate:.0%}" for rate in rates], textposition="top center", cliponaxis=False,
        error_x={"type": "data", "symmetric": False, "thickness": 2, "width": 6,
                 "array": [r.win_rate_ci.high - rate for r, rate in zip(shown, rates, strict=True)],  # type: ignore[union-attr]
                 "arrayminus": [rate - r.win_rate_ci.low for r, rate in zip(shown, rates, strict=True)]},  # type: ignore[union-attr]
        hovertemplate="%{y}<br>win rate %{x:.0%}<extra></extra>",
    ))
    figure.add_vline(x=0.5, line_dash="dash", line_color="gray")
    figure.update_layout(
        title="Candidate win rate per assertion, with 95% Wilson interval", height=140 + 70 * len(shown),
        margin={"l": 10, "r": 20, "t": 60, "b": 50}, showlegend=False,
        xaxis={"range": [0, 1], "tickformat": ".0%", "dtick": 0.25, "zeroline": False,
               "title": {"text": "← the base wins more · 50% = no difference · the candidate wins more →"}},
        yaxis={"autorange": "reversed", "automargin": True, "tickfont": {"size": 13}},
    )
    return figure


def _row(row: AssertionComparison) -> dict[str, Any]:
    ci = row.win_rate_ci
    return {
        "assertion": row.label, "inputs": row.pairs, "wins": row.wins, "losses": row.losses, "ties": row.ties,
        "win rate": _percent(row.win_rate), "95% interval": f"{ci.low:.0%}–{ci.high:.0%}" if ci else "",
        "base pass rate": _percent(row.base_pass_rate), "candidate pass rate": _percent(row.candidate_pass_rate),
        "McNemar p": "" if row.mcnemar_p is None else f"{row.mcnemar_p:.3g}", "note": row.note or "",
    }


def _examples(result: EvaluationComparison) -> None:
    who = "The fine-tuned model" if (result.candidate.model_ref or "").startswith(evaluations.REGISTERED) else "The candidate"
    lists = (("Best", result.best, f"{who} did not beat the base on any input."),
             ("Worst", result.worst, f"{who} did not do worse than the base on any input."),
             ("Changed", result.changed, "No input passed with one model and failed with the other."))
    tabs = st.tabs([f"{title} ({len(pairs)})" for title, pairs, _ in lists])
    for tab, (_, pairs, empty) in zip(tabs, lists, strict=True):
        with tab:
            if not pairs:
                st.caption(empty)
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
                _text(output if error is None else f"error: {evaluations.explain_error(error)}", "output")


def _text(text: str | None, what: str) -> None:
    text = text or ""
    if len(text) <= PREVIEW_CHARS:
        exact_text(text)
        return
    exact_text(text[:PREVIEW_CHARS] + "…")
    with st.expander(f"Whole {what}: {len(text):,} characters"):
        exact_text(text)
