"""Define an A/B test: variants (control first) with targets and weights, the unit, the metrics."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from workbench.domain.access import Permission
from workbench.services import access, models, templates
from workbench.services import experiments as svc
from workbench.store import Store
from workbench.ui.widgets import escape_markdown, run_action, show_flash

SCOPE = "experiments.define"


def render(store: Store) -> None:
    show_flash(SCOPE)
    if not access.can(Permission.EXPERIMENTS_WRITE):
        role = access.current().role
        st.info(f"Your role ({role.value if role else 'none'}) can read experiments but not define them; an "
                "engineer, a PM or an admin can.", icon=":material/lock:")
        return
    st.caption("Variants are model versions (`model:ID` for a registered model, or the `model_version` your "
               "traffic logs) or template versions (`NAME@VERSION`). The first row is control. Units are "
               "assigned by a hash of the seed (the name) and the unit id: sticky with no storage.")
    _known_targets(store)
    with st.form("experiments.define_form"):
        name = st.text_input("Name", key="experiments.name", placeholder="e.g. support-model-v2")
        description = st.text_input("What does the test ask?", key="experiments.description")
        variants = st.data_editor(
            pd.DataFrame([{"name": "control", "target": "", "weight": 50.0},
                          {"name": "treatment", "target": "", "weight": 50.0}]),
            num_rows="dynamic", hide_index=True, width="stretch", key="experiments.variants")
        left, middle, right = st.columns(3)
        unit = left.selectbox("Randomise by", list(svc.UNITS), key="experiments.unit")
        metric = middle.selectbox("Primary metric", list(svc.METRICS), key="experiments.metric",
                                  format_func=lambda m: svc.METRICS[m].label)
        guards = right.multiselect("Guard metrics (must not get worse)", list(svc.METRICS),
                                   default=["latency_ms", "cost_usd"], key="experiments.guards")
        task = st.text_input("Task a shipped model is activated for", key="experiments.task",
                             placeholder="e.g. support-triage (optional)")
        if st.form_submit_button("Create experiment", icon=":material/add:"):
            run_action(SCOPE, svc.create, store, name, _variants(variants), metric=metric, guard_metrics=guards,
                       unit=unit, task=task or None, description=description,
                       success=lambda e: escape_markdown(f"Created #{e.id} {e.name} (draft): open it in the "
                                                         "Experiments tab and start it."))
            st.rerun()


def _variants(frame: pd.DataFrame) -> list[svc.VariantIn]:
    found = []
    for row in frame.to_dict("records"):
        weight = row.get("weight")
        number = float(weight) if isinstance(weight, int | float) and not math.isnan(float(weight)) else 0.0
        found.append(svc.VariantIn(name=str(row.get("name") or "").strip(), target=str(row.get("target") or ""),
                                   weight=number))
    return found


def _known_targets(store: Store) -> None:
    registered = [f"model:{m.id} ({m.name})" for m in models.list_models(store)[:10]]
    versions = [f"{t.template.name}@{t.latest}" for t in templates.list_templates(store)[:10] if t.latest]
    if registered or versions:
        st.caption(escape_markdown("Targets you can use: " + ", ".join(registered + versions)))
