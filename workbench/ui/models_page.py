"""Models: every model a finished job produced, which one is active per task, and two side by side."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import streamlit as st

from workbench.domain.access import Permission
from workbench.errors import WorkbenchError
from workbench.services import access, job_views, models
from workbench.store.models import ModelRow
from workbench.ui import models_evaluate
from workbench.ui.permits import may
from workbench.ui.widgets import escape_markdown, run_action, show_flash, url_tabs

if TYPE_CHECKING:
    from workbench.store import Store

ACTIVATE_MODEL, TASK, COMPARE, SCOPE = "models.activate_model", "models.task", "models.compare", "models.activate"
DEPLOYMENTS = "workbench.services.deployments"
PREFIX_DEPLOY, DEPLOY_SCOPE = "models.deploy_", "models.deploy"
DEPLOY_PLAN, UNDEPLOY = PREFIX_DEPLOY + "plan", "models.undeploy"
TABS = "models.tab"


def render(store: Store) -> None:
    """Draw two tabs: the registry (table, activate, compare, deployments) and evaluating models on test splits."""
    rows = models.list_models(store)
    url_tabs(TABS, {"Registry": _registry, "Evaluate": models_evaluate.render}, store, rows)


def _registry(store: Store, rows: list[ModelRow]) -> None:
    """Draw the registry table, the activate form, the comparison and the deployment note."""
    if not rows:
        st.info("No models yet. A job that succeeds registers its output model here once the watcher sees it "
                "finish (`workbench jobs watch`).", icon=":material/deployed_code:")
        return
    st.dataframe(job_views.models_frame(rows), hide_index=True, width="stretch", key="models.table")
    by_id = {m.id: m for m in rows}
    left, right = st.columns(2, gap="large")
    with left:
        _activate(store, by_id)
    with right:
        _compare(store, by_id)
    _deployments(store, by_id)


def _label(model: ModelRow) -> str:
    return f"#{model.id} {model.name}" + (f" (active for {model.task})" if model.active else "")


def _activate(store: Store, by_id: dict[int, ModelRow]) -> None:
    st.subheader(":material/toggle_on: Activate for a task", anchor=False)
    show_flash(SCOPE)
    doing = ("activate them here (shipping an A/B test's winner on the Experiments page activates it)"
             if access.can(Permission.EXPERIMENTS_WRITE) else "activate them")
    if not may(Permission.MODELS_WRITE, doing):
        return
    with st.form("models.activate_form", border=False):
        model = st.selectbox("Model", list(by_id), key=ACTIVATE_MODEL, format_func=lambda i: _label(by_id[i]))
        task = st.text_input("Task", key=TASK, placeholder="e.g. support-triage",
                             help="One model is active per task; activating another replaces it.")
        if st.form_submit_button("Activate", icon=":material/check:"):
            run_action(SCOPE, models.activate_model, store, model, task,
                       success=lambda m: f"{escape_markdown(m.name)} is now active for {escape_markdown(m.task or '')}.")
            st.rerun()


def _compare(store: Store, by_id: dict[int, ModelRow]) -> None:
    st.subheader(":material/compare_arrows: Compare two", anchor=False)
    picked = st.multiselect("Models", list(by_id), key=COMPARE, max_selections=2, placeholder="pick two models",
                            format_func=lambda i: _label(by_id[i]))
    if len(picked) < 2:
        st.caption("Pick two models to see their hyperparameters and metrics side by side.")
        return
    result = models.compare_models(store, picked)
    names = [f"#{m.id} {m.name}" for m in result.models]
    st.markdown("**Metrics**")
    st.dataframe(job_views.side_by_side(names, result.metrics), width="stretch")
    st.markdown("**Hyperparameters** (provider default where not set)")
    st.dataframe(job_views.side_by_side(names, result.hyperparameters), width="stretch")
    st.caption(" · ".join(escape_markdown(f"{n}: {m.base_model} on {job_views.dataset_ref(m.dataset_name, m.version)}")
                          for n, m in zip(names, result.models, strict=True)))


def _deployments(store: Store, by_id: dict[int, ModelRow]) -> None:
    st.subheader(":material/cloud_upload: Serve on Bedrock", anchor=False)
    if importlib.util.find_spec(DEPLOYMENTS) is None:
        st.info("Bedrock Provisioned Throughput and on-demand deployments are not available in this version yet: "
                "the workbench creates no deployment. Use the Bedrock console to serve a custom model for now.",
                icon=":material/construction:")
        return
    from workbench.services import deployments

    show_flash(DEPLOY_SCOPE)
    current = deployments.list_deployments(store)
    if current:
        st.dataframe(job_views.deployments_frame(current, by_id), hide_index=True, width="stretch")
    if not may(Permission.MODELS_WRITE, "deploy models or delete deployments, which are billed by the hour"):
        return
    if current:
        live = {d.id: d for d in current}
        cols = st.columns([3, 1], vertical_alignment="bottom")
        chosen = cols[0].selectbox("Deployment", list(live), key=UNDEPLOY, format_func=lambda i: f"#{i} {live[i].name}")
        cols[1].button("Delete", key=UNDEPLOY + "_go", icon=":material/delete:", on_click=run_action,
                       args=(DEPLOY_SCOPE, deployments.undeploy, store, chosen),
                       kwargs={"success": "Deployment deleted: billing stops once Bedrock removes it."})
    bedrock = {i: m for i, m in by_id.items() if m.backend == "bedrock"}
    if not bedrock:
        st.caption("Only models from succeeded Bedrock jobs can be deployed; none is registered yet.")
        return
    with st.form("models.deploy_form", border=False):
        cols = st.columns(4)
        model = cols[0].selectbox("Model", list(bedrock), key=PREFIX_DEPLOY + "model", format_func=lambda i: _label(bedrock[i]))
        kind = cols[1].selectbox("Kind", ["provisioned", "on-demand"], key=PREFIX_DEPLOY + "kind")
        units = cols[2].number_input("Model units", min_value=1, value=1, step=1, key=PREFIX_DEPLOY + "units")
        commitment = cols[3].selectbox("Commitment", ["none", "1month", "6months"], key=PREFIX_DEPLOY + "commitment")
        if st.form_submit_button("Show the cost", icon=":material/payments:"):
            try:
                st.session_state[DEPLOY_PLAN] = deployments.plan_deployment(
                    store, model, kind=kind, units=int(units), commitment=commitment)
            except WorkbenchError as exc:
                st.session_state.pop(DEPLOY_PLAN, None)
                st.error(escape_markdown(str(exc)))
    plan = st.session_state.get(DEPLOY_PLAN)
    if plan is None:
        return
    for refusal in plan.refusals:
        st.error("Refused: " + escape_markdown(refusal), icon=":material/block:")
    for warning in plan.warnings:
        st.warning(escape_markdown(warning), icon=":material/warning:")
    st.info(escape_markdown(f"{plan.name}: {plan.cost_text()}"), icon=":material/payments:")
    st.button("Create deployment (billed from now)", key=PREFIX_DEPLOY + "go", type="primary", disabled=not plan.ok,
              icon=":material/cloud_upload:", on_click=_deploy, args=(store, plan))


def _deploy(store: Store, plan: object) -> None:
    from workbench.services import deployments

    if run_action(DEPLOY_SCOPE, deployments.deploy, store, plan,
                  success=lambda d: f"Deployment {escape_markdown(d.name or '')} is being created.") is not None:
        st.session_state.pop(DEPLOY_PLAN, None)
