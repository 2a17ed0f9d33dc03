"""Compare tab: which model clients are set up, the comparison form (run as a background task), and past runs.

A comparison runs as task kind "compare" on its dataset, so its progress shows live with Cancel
while the page stays usable; the finished run is stored and shown by `templates_matrix`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from workbench.domain import assertion_forms as forms
from workbench.domain import assertions as checks
from workbench.domain.access import Permission
from workbench.domain.comparison import CLIENTS, MAX_CONCURRENCY, MAX_VARIANTS, MIN_VARIANTS
from workbench.domain.example import Split
from workbench.errors import InvalidInput, WorkbenchError
from workbench.providers.inference import client_status
from workbench.services import comparisons, datasets
from workbench.store.tasks import TaskState
from workbench.ui import templates_matrix
from workbench.ui.permits import may
from workbench.ui.task_panel import session_task, show_task, start_task
from workbench.ui.templates_common import all_refs
from workbench.ui.widgets import escape_markdown, flash, plural, show_flash

if TYPE_CHECKING:
    from workbench.store import Store
    from workbench.store.tasks import Task

PREFIX = "templates.compare."
COUNT, DATASET, SPLIT, LIMIT = PREFIX + "count", PREFIX + "dataset", PREFIX + "split", PREFIX + "limit"
ASSERTIONS, JUDGE, CONCURRENCY, RUN = PREFIX + "assertions", PREFIX + "judge", PREFIX + "concurrency", PREFIX + "run"
TASK, SHOWN = PREFIX + "task", PREFIX + "shown"
ALL_SPLITS = "all"
ASSERTION_HELP = (
    "One assertion per line. With none and reference answers present, each output must equal its reference "
    "(white space trimmed). Forms:\n\n" + "\n".join(f"- `{form}`" for form in forms.FORMS)
)


def render(store: Store, name: str | None) -> None:
    """Draw the Compare tab: client status, the form, the running or finished task, and the matrix of a run."""
    _clients()
    refs = all_refs(store)
    names = [d.name for d in datasets.list_datasets(store)]
    if len(refs) < 1 or not names:
        st.info("A comparison needs a template (Library tab) and a dataset (Datasets page).", icon=":material/info:")
    elif may(Permission.TEMPLATES_WRITE, "run comparisons, which call models and cost money"):
        _form(store, refs, names, name)
        _task(store)
    st.divider()
    templates_matrix.render(store)


def _clients() -> None:
    statuses = client_status()
    ready = [s for s in statuses if s.configured]
    with st.expander(f"Model clients: {len(ready)} of {len(statuses)} configured", expanded=not ready, icon=":material/key:"):
        for status in statuses:
            if status.configured:
                st.markdown(f":green[:material/check_circle:] **{status.kind.value}**: {escape_markdown(status.detail)}")
            else:
                setting = f" Set `{status.setting}`." if status.setting and status.setting.replace("_", "").isalnum() else ""
                st.markdown(f":orange[:material/warning:] **{status.kind.value}**: not configured.{setting}  \n"
                            f"{escape_markdown(status.detail)}")
        if not ready:
            st.caption("Templates still render and cost on the other tabs without any client; only a comparison calls a model.")


def _form(store: Store, refs: list[str], names: list[str], name: str | None) -> None:
    st.subheader("New comparison", anchor=False)
    count = int(st.columns(4)[0].number_input(
        "Variants", min_value=MIN_VARIANTS, max_value=MAX_VARIANTS, value=MIN_VARIANTS, key=COUNT,
        help="Each variant is a template version answered by a client and a model.",
    ))
    # The template picked above the tabs comes first: its newest versions are the usual thing to compare.
    mine = [i for i, ref in enumerate(refs) if ref.rpartition("@")[0] == name]
    starts = mine + [i for i in range(len(refs)) if i not in mine]
    for i in range(count):
        cols = st.columns([3, 1.3, 3], vertical_alignment="bottom")
        default = starts[min(i, len(starts) - 1)]
        cols[0].selectbox(f"Variant {i + 1}: template@version", refs, index=default, key=f"{PREFIX}ref.{i}")
        cols[1].selectbox("Client", CLIENTS, index=CLIENTS.index("openai"), key=f"{PREFIX}client.{i}")
        cols[2].text_input("Model", key=f"{PREFIX}model.{i}", placeholder="the version's model",
                           help="Empty: the model the template version is set up for.")
    cols = st.columns([2, 1, 1, 1])
    cols[0].selectbox("Dataset", names, key=DATASET)
    cols[1].selectbox("Split", [ALL_SPLITS, *(s.value for s in Split if s is not Split.UNASSIGNED)], key=SPLIT)
    cols[2].number_input("Limit", min_value=1, max_value=comparisons.MAX_INPUTS, value=20, key=LIMIT,
                         help="How many inputs, in dataset order.")
    cols[3].number_input("Concurrency", min_value=1, max_value=MAX_CONCURRENCY, value=4, key=CONCURRENCY,
                         help="Calls in flight at once.")
    st.text_area("Assertions", key=ASSERTIONS, height=100, help=ASSERTION_HELP,
                 placeholder="contains:refund\nlength:..400")
    st.text_input("Judge (CLIENT:MODEL)", key=JUDGE, placeholder="e.g. anthropic:claude-sonnet-4-5",
                  help="Answers the judge:RUBRIC assertions; needed only when there is one.")
    st.button("Run comparison", key=RUN, icon=":material/play_arrow:", type="primary", on_click=_start, args=(store,),
              disabled=_running(store) is not None)


def params_from_form() -> tuple[str, dict[str, Any]]:
    """Read the form into the dataset and the compare task's params."""
    count = int(st.session_state.get(COUNT) or MIN_VARIANTS)
    variants = []
    for i in range(count):
        ref = str(st.session_state.get(f"{PREFIX}ref.{i}") or "")
        client = str(st.session_state.get(f"{PREFIX}client.{i}") or "openai")
        model = str(st.session_state.get(f"{PREFIX}model.{i}") or "").strip()
        variants.append(f"{ref}={client}" + (f":{model}" if model else ""))
    split = st.session_state.get(SPLIT)
    lines = [line.strip() for line in str(st.session_state.get(ASSERTIONS) or "").splitlines() if line.strip()]
    params = {
        "variants": variants, "limit": int(st.session_state.get(LIMIT) or 20),
        "split": None if split in (None, ALL_SPLITS) else str(split), "assertions": lines,
        "judge": str(st.session_state.get(JUDGE) or "").strip() or None,
        "concurrency": int(st.session_state.get(CONCURRENCY) or 4),
    }
    return str(st.session_state.get(DATASET) or ""), params


def _start(store: Store) -> None:
    """Check what can be checked at once (variants, assertions, judge), then start the compare task."""
    dataset, params = params_from_form()
    try:
        comparisons.resolve_variants(store, params["variants"])
        specs = forms.parse_assertions(params["assertions"])
        if params["judge"] and ":" not in params["judge"]:
            raise InvalidInput(f"judge {params['judge']!r}: write it as CLIENT:MODEL, e.g. anthropic:claude-sonnet-4-5")
        if any(isinstance(s, checks.JudgeSpec) for s in specs) and not params["judge"]:
            raise InvalidInput("a judge: assertion needs a judge model: fill in Judge as CLIENT:MODEL")
    except WorkbenchError as exc:
        flash(RUN, escape_markdown(str(exc)), "error")
        return
    task = start_task(store, "compare", dataset, params, RUN)
    if task is not None:
        st.session_state[TASK] = task.id


def _running(store: Store) -> Task | None:
    task = session_task(store, TASK)
    return task if task is not None and task.state.active else None


def _task(store: Store) -> None:
    """The comparison this session started: live with Cancel while it runs, then a pointer to its run below."""
    task = session_task(store, TASK)
    if task is None or task.state is not TaskState.DONE:
        show_task(store, (task.dataset or "") if task else "", task, key=RUN, render=_finished, recompute=False,
                  follows_data=False)
        return
    show_flash(RUN)
    _finished(task.result, task)
    run_id = task.result.get("run_id") if isinstance(task.result, dict) else None
    st.success(f"Comparison finished: run #{run_id}, {plural(task.done, 'cell')}. Its matrix is below.",
               icon=":material/check_circle:")


def _finished(result: Any, task: Task) -> None:
    """Point the matrix below at the run a task just finished, once (the user may pick another run after)."""
    run_id = result.get("run_id") if isinstance(result, dict) else None
    if run_id is None or st.session_state.get(SHOWN) == task.id:
        return
    st.session_state[SHOWN] = task.id
    st.session_state[templates_matrix.RUN] = int(run_id)
    st.query_params["run"] = str(run_id)
