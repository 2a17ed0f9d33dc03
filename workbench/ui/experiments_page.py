"""Experiments: the list with each test's state and headline result, one test's results, and defining a new one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.services import experiments as svc
from workbench.services.experiments import ExperimentResults
from workbench.store import Store
from workbench.store.experiments import ExperimentRow
from workbench.ui import experiments_define, experiments_results
from workbench.ui.widgets import url_tabs

TABS, PICK = "experiments.tab", "experiments.pick"


@st.cache_data(ttl=30, max_entries=64, show_spinner=False)
def results(_store: Store, path: str, experiment_id: int, updated_at: str) -> ExperimentResults:
    """One experiment's results, cached briefly; `path` and `updated_at` key the cache (a decision changes it)."""
    return svc.analyze(_store, experiment_id)


def render(store: Store) -> None:
    url_tabs(TABS, {"Experiments": _experiments, "Define": experiments_define.render}, store)


def _experiments(store: Store) -> None:
    found = svc.list_experiments(store)
    if not found:
        st.info("No experiments yet. Define one in the **Define** tab, or `workbench experiments create`.",
                icon=":material/science:")
        return
    read = {e.id: results(store, str(store.path), e.id, e.updated_at) for e in found}
    st.dataframe(_table(found, read), hide_index=True, width="stretch", key="experiments.table")
    by_id = {e.id: e for e in found}
    wanted = st.query_params.get("experiment")
    default = int(wanted) if wanted and wanted.isdigit() and int(wanted) in by_id else _first_open(found)
    picked = st.selectbox("Experiment", list(by_id), index=list(by_id).index(default), key=PICK,
                          format_func=lambda i: f"#{i} {by_id[i].name}" + (" (demo)" if by_id[i].demo else ""))
    st.query_params["experiment"] = str(picked)
    st.divider()
    experiments_results.render(store, by_id[picked], read[picked])


def _first_open(found: list[ExperimentRow]) -> int:
    return next((e.id for e in found if e.state == "running"), found[0].id)


def _table(found: list[ExperimentRow], read: dict[int, ExperimentResults]) -> pd.DataFrame:
    return pd.DataFrame([{
        "id": e.id,
        "name": e.name + (" (demo)" if e.demo else ""),
        "state": e.state,
        "metric": e.metric,
        "unit": e.unit,
        "variants": ", ".join(f"{v.name} {v.weight:g}" for v in e.variants),
        "units": sum(v.units for v in read[e.id].variants),
        "result": read[e.id].headline,
        "p-value": experiments_results.p_value_text(read[e.id].p_value),
        "chance to beat control": experiments_results.chance_text(read[e.id].prob_to_beat_control),
    } for e in found])
