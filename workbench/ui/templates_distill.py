"""Generate data tab: a teacher model answers a dataset's inputs (or writes inputs from seed topics first),
and its answers land as training data, pending review.

The estimate (calls, tokens, cost low to high, the price row) is shown before the Run button. The
run is task kind "distill", so it shows live with Cancel while the page stays usable; a stopped or
died run is finished with Resume, which calls only what is missing. Everything a model or a
dataset wrote is shown escaped or in a table, never as HTML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pandas as pd
import streamlit as st

from workbench.domain.access import Permission
from workbench.domain.comparison import CLIENTS, MAX_CONCURRENCY
from workbench.domain.distill import (
    MAX_PER_TOPIC,
    client_for_model,
    client_mismatch,
    format_usd,
    parse_topics,
)
from workbench.domain.example import Split
from workbench.errors import WorkbenchError
from workbench.providers.inference import client_status
from workbench.services import access, comparisons, datasets, distill, tasks, templates
from workbench.store.tasks import TaskState
from workbench.ui.permits import may
from workbench.ui.task_panel import session_task, show_task, start_task
from workbench.ui.templates_common import all_refs
from workbench.ui.widgets import escape_markdown, flash, plural, show_flash

if TYPE_CHECKING:
    from workbench.store import Store
    from workbench.store.tasks import Task

PREFIX = "templates.distill."
SOURCE, TEMPLATE, CLIENT, MODEL = PREFIX + "source", PREFIX + "template", PREFIX + "client", PREFIX + "model"
DATASET, SPLIT, LIMIT, LAND = PREFIX + "dataset", PREFIX + "split", PREFIX + "limit", PREFIX + "land"
TOPICS, PER_TOPIC, INTO, CONCURRENCY = PREFIX + "topics", PREFIX + "per_topic", PREFIX + "into", PREFIX + "concurrency"
RUN, RESUME, RESUME_RUN, TASK = PREFIX + "run", PREFIX + "resume", PREFIX + "resume_run", PREFIX + "task"
CLIENT_FOR = PREFIX + "client_for"
"""The model the client was last defaulted for: a new model gets its own client; a pick for the same model stays."""
FROM_DATASET, FROM_SEEDS = "A dataset's inputs", "Seed topics"
AS_NEW, AS_REFERENCES = "As a new dataset", "As reference answers where missing"
ALL_SPLITS = "all"


def render(store: Store, name: str | None) -> None:
    """Draw the Generate data tab: the form, its estimate, the Run button, the running task and past runs."""
    st.subheader("Generate training data with a teacher model", anchor=False)
    st.caption("A strong model answers inputs through a template; its answers land as training examples with their "
               "provenance (teacher, template version, cost), pending review in the Review page's queue.")
    refs = all_refs(store)
    if not refs:
        st.info("Generating data needs a template (Library tab).", icon=":material/info:")
        return
    if not may(Permission.TEMPLATES_WRITE, "generate data, which calls a teacher model and costs money"):
        _past_runs(store, None)
        return
    kwargs, _ = _form(store, refs, name)
    client, _, model = str(kwargs["teacher"]).partition(":")
    ready = _client_ready(client)
    mismatch = client_mismatch(client, model)
    if mismatch:
        st.warning(escape_markdown(mismatch), icon=":material/warning:")
    found = _estimate(store, kwargs)
    valid = found is not None and _valid(store, kwargs)
    running = _running(store)
    st.button("Generate", key=RUN, icon=":material/play_arrow:", type="primary", on_click=_start, args=(store,),
              disabled=running is not None or not ready or not valid or found is None or found.calls == 0,
              help=None if ready else "Configure the teacher's client first (see above).")
    _task(store)
    st.divider()
    _past_runs(store, running)


def _form(store: Store, refs: list[str], name: str | None) -> tuple[dict[str, Any], str | None]:
    """Draw the inputs and return the request they make (the keyword arguments of `distill.estimate`) and its dataset."""
    source = st.radio("Inputs", [FROM_DATASET, FROM_SEEDS], horizontal=True, key=SOURCE,
                      help="Answer a dataset's inputs, or have the teacher first write inputs for each seed topic.")
    mine = [ref for ref in refs if ref.rpartition("@")[0] == name]
    cols = st.columns([3, 1.3, 3], vertical_alignment="bottom")
    ref = cols[0].selectbox("Template@version", refs, index=refs.index(mine[0]) if mine else 0, key=TEMPLATE,
                            help="What the teacher is prompted with, rendered on each input.")
    model = _model(store, str(ref or ""))
    if st.session_state.get(CLIENT_FOR) != model or CLIENT not in st.session_state:
        st.session_state[CLIENT] = default_client(model)
        st.session_state[CLIENT_FOR] = model
    cols[1].selectbox("Teacher client", CLIENTS, key=CLIENT, help="Follows the model's id (amazon.… is Bedrock, claude-… "
                      "Anthropic, gpt-… OpenAI); a local model takes the first configured client.")
    cols[2].text_input("Teacher model", key=MODEL, placeholder="the version's model",
                       help="Empty: the model the template version is set up for.")
    names = [d.name for d in datasets.list_datasets(store)]
    if source == FROM_DATASET and not names:
        st.info("No datasets yet: import one on the Datasets page, or generate from seed topics.", icon=":material/info:")
    elif source == FROM_DATASET:
        cols = st.columns([2, 1, 1])
        cols[0].selectbox("Dataset", names, key=DATASET)
        cols[1].selectbox("Split", [ALL_SPLITS, *(s.value for s in Split if s is not Split.UNASSIGNED)], key=SPLIT)
        cols[2].number_input("Limit", min_value=1, max_value=comparisons.MAX_INPUTS, value=20, key=LIMIT,
                             help="How many inputs, in dataset order.")
        st.radio("Land the answers", [AS_NEW, AS_REFERENCES], horizontal=True, key=LAND,
                 help="A new dataset of input + answer, or answers added in place to the examples that lack one (an "
                      "existing answer is never replaced).")
    else:
        st.text_area("Seed topics, one per line", key=TOPICS, height=120, placeholder="refund requests\nlate deliveries",
                     help="Lines starting with # are skipped; repeated topics are kept once.")
        st.number_input("Inputs per topic", min_value=1, max_value=MAX_PER_TOPIC, value=5, key=PER_TOPIC)
    cols = st.columns([3, 1])
    if _landing_new():
        cols[0].text_input("New dataset", key=INTO, placeholder=_suggested_name(),
                           help="The dataset the examples land in; it must not exist yet.")
    cols[1].number_input("Concurrency", min_value=1, max_value=MAX_CONCURRENCY, value=4, key=CONCURRENCY,
                         help="Calls in flight at once.")
    return request_from_form(store)


def _landing_new() -> bool:
    return st.session_state.get(SOURCE) == FROM_SEEDS or st.session_state.get(LAND, AS_NEW) == AS_NEW


def _suggested_name() -> str:
    dataset = st.session_state.get(DATASET) if st.session_state.get(SOURCE, FROM_DATASET) == FROM_DATASET else None
    return f"{dataset}-distilled" if dataset else "distilled"


def _model(store: Store, ref: str) -> str:
    """The teacher's model: the one typed, else the one the template version is set up for."""
    model = str(st.session_state.get(MODEL) or "").strip()
    if not model and ref:
        try:
            model = templates.resolve(store, ref).settings.model
        except WorkbenchError:
            return ""
    return model


def default_client(model: str) -> str:
    """The client a model's id belongs to; for an id that does not say, the first client that is configured."""
    known = client_for_model(model)
    if known is not None:
        return known
    configured = {s.kind.value for s in client_status() if s.configured}
    return next((c for c in CLIENTS if c in configured), "openai")


def request_from_form(store: Store) -> tuple[dict[str, Any], str | None]:
    """Read the form as it stands (in a callback too, where widget values are newer than the last draw)."""
    ref = str(st.session_state.get(TEMPLATE) or "")
    model = _model(store, ref)
    client = st.session_state.get(CLIENT) or default_client(model)
    kwargs: dict[str, Any] = {"teacher": f"{client}:{model}", "template": ref}
    dataset = None
    if st.session_state.get(SOURCE, FROM_DATASET) == FROM_DATASET:
        dataset = str(st.session_state.get(DATASET) or "")
        split = st.session_state.get(SPLIT)
        kwargs |= {"dataset": dataset, "split": None if split in (None, ALL_SPLITS) else str(split),
                   "limit": int(st.session_state.get(LIMIT) or 20), "fill_references": not _landing_new()}
    else:
        kwargs |= {"seeds": parse_topics(str(st.session_state.get(TOPICS) or "")),
                   "per_topic": int(st.session_state.get(PER_TOPIC) or 5)}
    if _landing_new():
        kwargs["into"] = str(st.session_state.get(INTO) or "").strip() or _suggested_name()
    kwargs["concurrency"] = int(st.session_state.get(CONCURRENCY) or 4)
    return kwargs, dataset or None


def money(amount: float | None) -> str:
    """Dollars for markdown, where a bare $ would start a formula."""
    return escape_markdown(format_usd(amount))


def _client_ready(kind: str) -> bool:
    """Say whether the teacher's client is set up; when not, say exactly what to set (the estimate still works)."""
    status = next((s for s in client_status() if s.kind.value == kind), None)
    if status is None or status.configured:
        return True
    setting = f" Set `{status.setting}`." if status.setting and status.setting.replace("_", "").isalnum() else ""
    st.warning(f"The **{kind}** client is not configured.{setting} {escape_markdown(status.detail)}  \n"
               "The estimate below still works; generating needs the client.", icon=":material/key:")
    return False


@st.cache_data(ttl=30, max_entries=32, show_spinner="Counting tokens…")
def _cached_estimate(_store: Store, path: str, request: str) -> dict[str, Any]:
    import json

    return distill.estimate(_store, **json.loads(request)).model_dump(mode="json")


def _estimate(store: Store, kwargs: dict[str, Any]) -> distill.DistillEstimate | None:
    """Show what the run would call and cost, before anything is called; None when the request is not valid yet."""
    import json

    asked = {k: v for k, v in kwargs.items() if k not in ("into", "concurrency")}
    try:
        found = distill.DistillEstimate.model_validate(_cached_estimate(store, str(store.path), json.dumps(asked, sort_keys=True)))
    except WorkbenchError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/error:")
        return None
    with st.container(border=True):
        cols = st.columns(4)
        cols[0].metric("Calls", f"{found.calls:,}", help=f"{plural(found.inputs, 'input')}"
                       + (f" from {plural(found.topics, 'topic')}" if found.topics else ""))
        exact = "exact, as rendered" if all(s.exact_input for s in found.stages) else f"at most {found.input_tokens_high:,}"
        cols[1].metric("Prompt tokens", f"{found.input_tokens:,}", help=exact)
        cols[2].metric("Output tokens", f"~{found.output_tokens_typical:,}", help=f"at most {found.output_tokens_bound:,} (max_tokens)")
        if found.cost_low_usd is None:
            cols[3].metric("Cost", "unknown", help="The catalogue has no on-demand price for this model.")
        else:
            cols[3].metric("Cost", format_usd(found.cost_low_usd), help=f"typical; at most {format_usd(found.cost_high_usd)}")
            st.caption(f"Estimated cost {money(found.cost_low_usd)} typical to {money(found.cost_high_usd)} at most, at "
                       f"{escape_markdown(found.price_row or '')}.")
        for stage in found.stages:
            st.caption(f"{escape_markdown(stage.stage)}: {plural(stage.calls, 'call')}; typical output: "
                       f"{escape_markdown(stage.typical_from)}.")
            if stage.unrenderable:
                st.warning(f"{plural(stage.unrenderable, 'input')} cannot be rendered and will fail without a call: "
                           f"{escape_markdown(stage.first_error or '')}", icon=":material/warning:")
        if found.answered_skipped:
            st.caption(f"{plural(found.answered_skipped, 'example')} already have an answer and are skipped.")
        if found.note:
            st.caption(escape_markdown(found.note))
    if found.calls == 0:
        st.info("Nothing to answer with these settings.", icon=":material/info:")
    return found


def _taken(store: Store, kwargs: dict[str, Any]) -> str | None:
    """The app's words for a new dataset's name that is taken (the service's name the CLI's flags)."""
    into = kwargs.get("into")
    if not into or not any(d.name == into for d in datasets.list_datasets(store)):
        return None
    return (f"Dataset {into!r} already exists: choose another name for the new dataset, or pick "
            f"\"{AS_REFERENCES}\" to fill the missing answers of a dataset's examples.")


def _valid(store: Store, kwargs: dict[str, Any]) -> bool:
    """Say what a run would refuse that the estimate does not check (the new dataset's name), before Generate."""
    taken = _taken(store, kwargs)
    if taken:
        st.warning(escape_markdown(taken), icon=":material/warning:")
        return False
    try:
        distill.check_request(store, **{k: v for k, v in kwargs.items() if k != "concurrency"})
    except WorkbenchError as exc:
        st.warning(escape_markdown(str(exc)), icon=":material/warning:")
        return False
    return True


def _start(store: Store) -> None:
    """Check the request as a run would (the new dataset's name included), then start the distill task."""
    try:
        kwargs, dataset = request_from_form(store)
        taken = _taken(store, kwargs)
        if taken:
            flash(RUN, escape_markdown(taken), "error")
            return
        distill.check_request(store, **{k: v for k, v in kwargs.items() if k != "concurrency"})
    except WorkbenchError as exc:
        flash(RUN, escape_markdown(str(exc)), "error")
        return
    params = {k: v for k, v in kwargs.items() if k != "dataset" and v not in (None, "", [], False)}
    task = start_task(store, "distill", dataset, params, RUN)  # type: ignore[arg-type]  # None: a seed run makes its dataset
    if task is not None:
        st.session_state[TASK] = task.id


def _resume(store: Store, distill_id: int) -> None:
    task = start_task(store, "distill", None, {"resume": distill_id}, RESUME)  # type: ignore[arg-type]
    if task is not None:
        st.session_state[TASK] = task.id


def _running(store: Store) -> Task | None:
    """The distillation running now, started here or anywhere else: one at a time, so two never land at once."""
    try:
        active = [t for t in tasks.list_tasks(store, active_only=True) if t.kind == "distill"]
    except WorkbenchError:
        active = []
    return active[0] if active else None


def _task(store: Store) -> None:
    """The run this session started: live with Cancel while it runs, then what landed and where."""
    task = session_task(store, TASK)
    if task is not None and task.state is TaskState.CANCELLED:
        show_flash(RUN)
        _stopped(store, task)
        return
    show_task(store, (task.dataset or "") if task else "", task, key=RUN, render=_finished, recompute=False, follows_data=False)


def _run_of(store: Store, task: Task) -> int | None:
    """The distillation a task ran: the one it resumed, else the first started since the task was (one runs at a time)."""
    if task.params.get("resume"):
        return int(task.params["resume"])
    since = [r for r in distill.list_runs(store, limit=20) if r.created_at >= task.created_at]
    return since[-1].id if since else None


def _stopped(store: Store, task: Task) -> None:
    """A stopped run: what landed before the stop, and Resume (below) for the rest."""
    distill_id = _run_of(store, task)
    try:
        report = distill.report(store, distill_id) if distill_id is not None else None
    except WorkbenchError:
        report = None
    if report is None:
        st.info("Stopped before anything landed. Resume it below to finish it.", icon=":material/stop_circle:")
        return
    landed = report.landed + report.already
    where = f" in **{escape_markdown(report.into_dataset)}**" if report.into_dataset and landed else ""
    st.info(f"Distillation #{report.id} stopped: {report.answered:,} of {plural(report.inputs, 'input')} answered, "
            f"{plural(landed, 'output')} landed{where}. Resume #{report.id} below to answer the rest; only what is missing "
            "is called.", icon=":material/stop_circle:")


def _finished(result: Any, task: Task) -> None:
    """Say what a finished run landed, where, what it cost and what failed, with links to the data and the queue."""
    if not isinstance(result, dict):
        return
    report = distill.DistillReport.model_validate(result)
    where = report.into_dataset or ""
    if report.state == "failed":
        st.error(f"Distillation #{report.id} failed: {escape_markdown(report.error or 'no reason given')}  \n"
                 f"Nothing landed; fix the cause, then Resume #{report.id} below.", icon=":material/error:")
        _failures(report)
        return
    notes = [text for count, text in ((report.already, f"{report.already} landed before"),
                                      (report.duplicates, f"{plural(report.duplicates, 'duplicate')} skipped"),
                                      (report.kept_existing, f"{report.kept_existing} kept the answer they had")) if count]
    st.success(f"Distillation #{report.id} finished: {plural(report.landed, 'example')} landed in **{escape_markdown(where)}**"
               + (f" ({', '.join(notes)})" if notes else "")
               + f"; {plural(report.queued, 'example')} waiting for review. {_cost_words(report)}", icon=":material/check_circle:")
    st.markdown(f"[Open {escape_markdown(where)} on the Datasets page](Datasets?dataset={quote(where, safe='')}) · "
                "[Review the new examples](Review)")
    _failures(report)


def _cost_words(report: distill.DistillReport) -> str:
    if report.cost_usd is None:
        return f"Cost unknown (no price for {escape_markdown(report.teacher.partition(':')[2])})."
    return (f"{money(report.cost_usd)} spent, {money(report.cost_saved_usd)} saved by "
            f"{plural(report.cache_hits, 'cache hit')}.")


def _failures(report: distill.DistillReport) -> None:
    if report.failures:
        st.warning(f"{plural(report.failed, 'input')} failed and landed nothing.", icon=":material/warning:")
        st.dataframe(pd.DataFrame([f.model_dump() for f in report.failures]), hide_index=True, width="stretch")
    if report.unusable_replies:
        st.warning(f"{plural(report.unusable_count, 'seed topic')} gave fewer inputs than asked.", icon=":material/warning:")
        st.dataframe(pd.DataFrame([u.model_dump() for u in report.unusable_replies]), hide_index=True, width="stretch")


def _past_runs(store: Store, running: Task | None) -> None:
    """Recent distillations, and Resume for one that stopped, failed or whose process died."""
    runs = distill.list_runs(store, limit=20)
    if not runs:
        return
    st.markdown("**Recent distillations**")
    st.dataframe(pd.DataFrame([
        {"id": r.id, "state": r.state, "teacher": r.teacher, "template": r.template,
         "inputs from": r.source_dataset or f"{len(r.seeds)} seed topics",
         "landed in": r.into_dataset or "", "landing": "new dataset" if r.target == "new" else "fill references",
         "started": r.created_at[:16].replace("T", " ")}
        for r in runs
    ]), hide_index=True, width="stretch")
    unfinished = [r.id for r in runs if r.state != "done"]
    if not unfinished or not access.can(Permission.TEMPLATES_WRITE):
        return
    cols = st.columns([2, 1], vertical_alignment="bottom")
    chosen = cols[0].selectbox("Unfinished run", unfinished, key=RESUME_RUN, format_func=lambda i: f"#{i}",
                               help="A stopped, failed or died run: Resume calls only what is missing, then lands what is new.")
    cols[1].button("Resume", key=RESUME, icon=":material/resume:", disabled=running is not None, width="stretch",
                   on_click=_resume, args=(store, int(chosen)))
