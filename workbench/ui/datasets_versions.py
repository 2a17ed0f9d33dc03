"""Split & versions tab: assign train/validation/test, freeze named versions, compare two of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import plotly.express as px
import streamlit as st

from workbench.domain.example import Split
from workbench.domain.splitting import SplitRatios
from workbench.errors import WorkbenchError
from workbench.services import datasets, tasks, versions
from workbench.services.splits import SplitSummary
from workbench.services.versions import VersionDiff
from workbench.store.tasks import Task, TaskState
from workbench.store.versions import Version
from workbench.ui.datasets_access import can_change, read_only_caption
from workbench.ui.task_panel import latest, show_task, start_task, task_panel
from workbench.ui.widgets import escape_markdown, field_help, plural

if TYPE_CHECKING:
    from workbench.store import Store

TRAIN, VALIDATION, TEST = "datasets.split_train", "datasets.split_validation", "datasets.split_test"
SEED, STRATIFY, ONLY_NEW = "datasets.split_seed", "datasets.split_stratify", "datasets.split_only_new"
VERSION_NAME, VERSION_SPLIT, VERSION_NOTE = "datasets.version_name", "datasets.version_split", "datasets.version_note"
SPLIT_TASK, FREEZE_TASK, FREEZE_SHOWN = "datasets.split_task", "datasets.freeze_task", "datasets.freeze_shown"
SPLIT_ORDER = [s.value for s in (Split.TRAIN, Split.VALIDATION, Split.TEST, Split.UNASSIGNED)]


def render(store: Store, dataset: str) -> None:
    """Draw the Split & versions tab for one dataset."""
    info = datasets.get_dataset(store, dataset)
    facets = datasets.facets(store, dataset)
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader(":material/call_split: Split", anchor=False)
        if can_change():
            _split_form(store, dataset, info.split_config or {}, facets.metadata_keys)
        else:
            read_only_caption("split it")
    with right:
        counts = {s: facets.splits.get(s, 0) for s in SPLIT_ORDER if facets.splits.get(s) or s != Split.UNASSIGNED.value}
        chart = px.bar(x=list(counts), y=list(counts.values()), labels={"x": "split", "y": "examples"}, text=list(counts.values()))
        chart.update_layout(height=280, margin={"l": 0, "r": 0, "t": 10, "b": 0})
        st.plotly_chart(chart, key="datasets.split_chart")
        show_task(store, dataset, latest(store, dataset, "split"), key=SPLIT_TASK, render=_split_done, recompute=False)
    st.divider()
    _versions(store, dataset)


def _split_form(store: Store, dataset: str, config: dict, metadata_keys: list[str]) -> None:
    ratios = SplitRatios(**config.get("ratios", {}))
    with st.form("datasets.split_form"):
        cols = st.columns(3)
        for col, key, name in zip(cols, (TRAIN, VALIDATION, TEST), ("train", "validation", "test"), strict=True):
            col.number_input(name.capitalize(), 0.0, 1.0, getattr(ratios, name), 0.05, key=key, format="%.2f",
                             help=field_help(SplitRatios, name))
        cols = st.columns(2)
        cols[0].number_input("Seed", 0, 2**31 - 1, int(config.get("seed", 42)), key=SEED,
                             help="The same seed on the same examples always gives the same split.")
        stratify = config.get("stratify_by") or ""
        options = ["", *metadata_keys]
        cols[1].selectbox("Stratify by", options, index=options.index(stratify) if stratify in options else 0, key=STRATIFY,
                          format_func=lambda k: k or "(none)", help="A metadata field whose values keep their balance in every split.")
        st.checkbox("Only examples without a split", key=ONLY_NEW, value=bool(config),
                    help="Never moves an example that already has a split, so earlier evaluations stay comparable.")
        if config:
            st.caption("This dataset has been split before; new imports join the splits automatically.")
        st.form_submit_button("Split", icon=":material/call_split:", type="primary", key="datasets.split_submit", on_click=_split, args=(store, dataset))


def _split(store: Store, dataset: str) -> None:
    state = st.session_state
    params = {"ratios": [state[TRAIN], state[VALIDATION], state[TEST]], "seed": int(state[SEED]),
              "stratify_by": state[STRATIFY] or None, "only_new": bool(state[ONLY_NEW])}
    start_task(store, "split", dataset, params, SPLIT_TASK)


def _split_done(result: dict, _task: Task) -> None:
    summary = SplitSummary.model_validate(result)
    st.success(f"Assigned {plural(summary.assigned, 'example')}: " + ", ".join(f"{k} {v:,}" for k, v in summary.counts.items()) + ".",
               icon=":material/check_circle:")
    if summary.by_stratum:
        st.caption(f"Per value of {escape_markdown(summary.stratify_by or '')}")
        st.dataframe(pd.DataFrame(summary.by_stratum).T.fillna(0).astype(int), width="stretch")


# ---------------------------------------------------------------------------------------- versions


def _versions(store: Store, dataset: str) -> None:
    st.subheader(":material/inventory_2: Versions", anchor=False)
    _settle_freeze(store)
    found = versions.list_versions(store, dataset)
    freezing = latest(store, dataset, "freeze")
    left, right = st.columns(2, gap="large")
    with left:
        if can_change():
            _freeze_form(store, dataset, freezing)
        else:
            read_only_caption("freeze versions of it; you can compare them")
    with left:
        if freezing is not None and (freezing.state.active or freezing.id == st.session_state.get(FREEZE_SHOWN)):
            show_task(store, dataset, freezing, key=FREEZE_TASK, render=_frozen, recompute=False, follows_data=False)
    with right:
        if not found:
            st.caption("No versions yet. A version is an immutable copy: jobs and exports can name it, and two can be compared.")
        else:
            st.dataframe(
                pd.DataFrame(
                    [{"name": v.name, "split": v.split or "all", "examples": v.example_count, "note": v.note,
                      "frozen (UTC)": v.created_at[:16].replace("T", " ")} for v in found]
                ),
                key="datasets.versions_table", hide_index=True, width="stretch",
            )
    if len(found) >= 2:
        _diff(store, dataset, [v.name for v in found])


def _freeze_form(store: Store, dataset: str, freezing: Task | None) -> None:
    with st.form("datasets.freeze_form"):
        st.markdown("**Freeze the dataset as it is now**")
        cols = st.columns(2)
        cols[0].text_input("Version name", key=VERSION_NAME, placeholder="v1", help="Letters, digits, '.', '_' or '-'.")
        cols[1].selectbox("Split", ["all", *(s.value for s in Split if s is not Split.UNASSIGNED)], key=VERSION_SPLIT)
        st.text_input("Note", key=VERSION_NOTE, placeholder="What changed, what it is for")
        st.form_submit_button(
            "Freeze", icon=":material/lock:", key="datasets.freeze_submit", on_click=_freeze, args=(store, dataset),
            disabled=freezing is not None and freezing.state.active, help="One freeze at a time: this one waits for the running one.",
        )


def _freeze(store: Store, dataset: str) -> None:
    state = st.session_state
    split = state[VERSION_SPLIT]
    params = {"name": state[VERSION_NAME].strip(), "split": None if split == "all" else split, "note": state[VERSION_NOTE]}
    task = start_task(store, "freeze", dataset, params, FREEZE_TASK)
    if task is not None:
        state[FREEZE_SHOWN] = task.id
        _settle_freeze(store)


def _settle_freeze(store: Store) -> None:
    """Once this session's freeze is done, the next version starts from an empty form; a refused one keeps what was typed."""
    state = st.session_state
    task_id = state.get(FREEZE_SHOWN)
    if task_id is None or state.get(f"{FREEZE_SHOWN}_settled") == task_id:
        return
    try:
        task = tasks.get(store, task_id)
    except WorkbenchError:
        return
    if task.state.active:
        return
    state[f"{FREEZE_SHOWN}_settled"] = task_id
    if task.state is TaskState.DONE:
        state[VERSION_NAME], state[VERSION_NOTE] = "", ""


def _frozen(result: dict, _task: Task) -> None:
    version = Version.model_validate(result)
    st.success(f"Froze {plural(version.example_count, 'example')} as version {escape_markdown(version.name)}.",
               icon=":material/check_circle:")


def _diff(store: Store, dataset: str, names: list[str]) -> None:
    st.markdown("**Compare two versions**")
    cols = st.columns([2, 2, 1], vertical_alignment="bottom")
    old = cols[0].selectbox("Older", names, index=1, key="datasets.diff_old")
    new = cols[1].selectbox("Newer", names, index=0, key="datasets.diff_new")
    task_panel(store, dataset, "diff", {"old": old, "new": new}, key="datasets.diff", label="Compare", icon=":material/difference:",
               container=cols[2], follows_data=False, render=_diff_result)


def _diff_result(data: dict, _task: Task) -> None:
    result = VersionDiff.model_validate(data)
    st.caption(f"From {escape_markdown(result.old)} to {escape_markdown(result.new)}")
    cols = st.columns(5)
    parts = (("Added", "added"), ("Removed", "removed"), ("Edited", "changed"), ("Moved split", "moved"))
    for col, (label, name) in zip(cols, parts, strict=False):
        col.metric(label, f"{getattr(result, f'{name}_count'):,}", help=field_help(VersionDiff, f"{name}_count"))
    cols[4].metric("Unchanged", f"{result.unchanged:,}")
    if result.added or result.removed or result.changed or result.moved:
        with st.expander("Example ids"):
            for label, name in parts:
                ids, count = getattr(result, name), getattr(result, f"{name}_count")
                if ids:
                    st.text(f"{label}: " + ", ".join(map(str, ids)) + (f" … and {count - len(ids):,} more" if count > len(ids) else ""))
