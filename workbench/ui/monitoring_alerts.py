"""The Monitoring page's Alerts tab: what is firing, the rules, and a form to add one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from workbench.domain.access import Permission
from workbench.domain.monitoring import DRIFT_PREFIX, METRIC_HELP, RULE_DEFAULTS, Comparison
from workbench.services import access, alerts, monitoring
from workbench.ui.widgets import escape_markdown, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

SCOPE = "monitoring.alerts"
ANY_MODEL = "(any model)"


def _metric_label(metric: str) -> str:
    if metric.startswith(DRIFT_PREFIX):
        return f"drift of {monitoring.SIGNALS[metric.removeprefix(DRIFT_PREFIX)]}"
    return f"{metric}: {METRIC_HELP[metric]}"


def render(store: Store, models: list[str], tasks: list[str] | None = None) -> None:
    show_flash(SCOPE)
    firing = alerts.firing(store)
    st.subheader("Firing now", anchor=False)
    if not firing:
        st.caption("No alert is firing. The watcher (`workbench jobs watch`, started by `make run`) checks the "
                   "rules about once a minute; **Check now** runs them here.")
    for event in firing:
        st.error(f"**{escape_markdown(event.rule_name)}** since {event.fired_at}: {escape_markdown(event.message)}",
                 icon=":material/notifications_active:")
    st.button("Check now", key="monitoring.alerts_check", icon=":material/refresh:",
              on_click=run_action, args=(SCOPE, alerts.evaluate_rules, store),
              kwargs={"success": lambda r: f"Checked {r.checked} rule(s): {len(r.fired)} fired, "
                                           f"{len(r.resolved)} resolved."})
    rules = alerts.list_rules(store)
    st.subheader("Rules", anchor=False)
    if rules:
        st.dataframe([{"name": r.name, "metric": r.metric, "model": r.model_version or "any",
                       "task": "any" if r.task_type is None else (r.task_type or "(none)"),
                       "window (days)": r.window_days, "fires when": alerts.describe(r).split(" day(s) ", 1)[-1],
                       "enabled": r.enabled} for r in rules], hide_index=True, key="monitoring.alert_rules")
    else:
        st.caption("No rules yet.")
    if not access.can(Permission.ALERTS_WRITE):
        role = access.current().role
        st.caption(f"Your role ({role.value if role else 'none'}) can read alerts but not add, change or delete "
                   "rules; an engineer, a PM or an admin can.")
    else:
        _rule_controls(store, rules)
        _create_form(store, models, tasks or [])
    history = [e for e in alerts.recent_events(store, limit=20) if e.resolved_at]
    if history:
        with st.expander("Recently resolved"):
            st.dataframe([{"rule": e.rule_name, "fired": e.fired_at, "resolved": e.resolved_at, "value": e.value}
                          for e in history], hide_index=True, key="monitoring.alert_history")


def _rule_controls(store: Store, rules: list[alerts.AlertRule]) -> None:
    """Enable, disable or delete a rule: for the roles that may change rules."""
    if rules:
        cols = st.columns([3, 1, 1])
        chosen = cols[0].selectbox("Rule", [r.name for r in rules], key="monitoring.alert_rule")
        rule = next(r for r in rules if r.name == chosen)
        cols[1].button("Disable" if rule.enabled else "Enable", key="monitoring.alert_toggle",
                       on_click=run_action, args=(SCOPE, alerts.set_enabled, store, rule.id, not rule.enabled),
                       kwargs={"success": f"{'Disabled' if rule.enabled else 'Enabled'} {escape_markdown(rule.name)}."})
        cols[2].button("Delete", key="monitoring.alert_delete", type="secondary", icon=":material/delete:",
                       on_click=run_action, args=(SCOPE, alerts.delete_rule, store, rule.id),
                       kwargs={"success": f"Deleted {escape_markdown(rule.name)}."})


FORM_KEYS = ("monitoring.alert_name", "monitoring.alert_metric", "monitoring.alert_model", "monitoring.alert_task",
             "monitoring.alert_cmp", "monitoring.alert_threshold", "monitoring.alert_window",
             "monitoring.alert_reference")
ANY_TASK = "(any task)"
NO_TASK = "(no task type)"


def _apply_metric_defaults() -> None:
    """Set the comparison and threshold a rule on the chosen metric usually wants (error rate: > 0.05...)."""
    metric = st.session_state.get("monitoring.alert_metric")
    comparison, threshold = RULE_DEFAULTS.get(metric, (Comparison.BELOW, 0.0))
    st.session_state["monitoring.alert_cmp"] = comparison.value
    st.session_state["monitoring.alert_threshold"] = threshold


def _add_rule(store: Store) -> None:
    """Create the rule from the fields; on success empty the fields so the next rule starts afresh."""
    state = st.session_state
    metric = state["monitoring.alert_metric"]
    is_drift = metric.startswith(DRIFT_PREFIX)
    model, task, name = state["monitoring.alert_model"], state["monitoring.alert_task"], state["monitoring.alert_name"]
    added = run_action(SCOPE, alerts.create_rule, store, name=name, metric=metric,
                       threshold=None if is_drift else float(state["monitoring.alert_threshold"]),
                       comparison=None if is_drift else state["monitoring.alert_cmp"],
                       model_version=None if model == ANY_MODEL else model,
                       task_type=None if task == ANY_TASK else "" if task == NO_TASK else task,
                       window_days=int(state["monitoring.alert_window"]),
                       reference_days=int(state["monitoring.alert_reference"]),
                       success=f"Added rule {escape_markdown(name)}.")
    if added is not None:
        for key in FORM_KEYS:
            state.pop(key, None)


def _create_form(store: Store, models: list[str], tasks: list[str]) -> None:
    st.markdown("**New rule**")
    metrics = alerts.metric_names()
    if "monitoring.alert_metric" not in st.session_state:
        st.session_state["monitoring.alert_metric"] = metrics[0]
        _apply_metric_defaults()
    cols = st.columns(4)
    cols[0].text_input("Name", key="monitoring.alert_name")
    metric = cols[1].selectbox("Metric", metrics, format_func=_metric_label, key="monitoring.alert_metric",
                               on_change=_apply_metric_defaults)
    cols[2].selectbox("Model version", [ANY_MODEL, *models], key="monitoring.alert_model", help="Drift rules need one.")
    cols[3].selectbox("Task", [ANY_TASK, *[NO_TASK if t == "" else t for t in tasks]], key="monitoring.alert_task",
                      help="Only predictions of this task type count; (any task) counts them all.")
    is_drift = metric.startswith(DRIFT_PREFIX)
    cols = st.columns(4)
    cols[0].selectbox("Fires when the value is", [c.value for c in Comparison], key="monitoring.alert_cmp",
                      disabled=is_drift, help="Drift rules fire on a drift verdict instead.")
    cols[1].number_input("Threshold", format="%.4f", key="monitoring.alert_threshold", disabled=is_drift,
                         help=None if is_drift else METRIC_HELP.get(metric))
    cols[2].number_input("Window (days)", 1, 365, 1, key="monitoring.alert_window")
    cols[3].number_input("Reference for drift (days)", 1, 365, 7, key="monitoring.alert_reference")
    st.button("Add rule", icon=":material/add_alert:", key="monitoring.alert_add", on_click=_add_rule, args=(store,))
