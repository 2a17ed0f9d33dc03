"""Costs → Budgets: each budget's spend and forecast as progress bars, and a form to add, change or delete one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from workbench.domain.access import Permission
from workbench.services import access, costs
from workbench.ui.costs_prices import cant_change
from workbench.ui.widgets import escape_markdown, field_help, flash, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

SCOPE = "costs.budgets"
PICK, NAME, KIND, VALUE, AMOUNT, ALERT = (f"costs.budget_{k}" for k in ("pick", "name", "scope", "value", "amount", "alert"))
NEW = "(new budget)"


@st.cache_data(ttl=60, max_entries=8, show_spinner=False)
def cached_scope_values(_store: Store, path: str, scope: str, today: object) -> list[str]:
    return costs.scope_values(_store, scope)


@st.cache_data(ttl=60, max_entries=8, show_spinner=False)
def cached_statuses(_store: Store, path: str, today: object) -> list[costs.BudgetStatus]:
    return costs.budget_statuses(_store)


def render(store: Store) -> None:
    show_flash(SCOPE)
    found = cached_statuses(store, str(store.path), costs.today_utc())
    if not found:
        st.info("No budgets yet. Add one below: a monthly amount over all spend, or one model, provider, task or tag.",
                icon=":material/savings:")
    for status in found:
        b = status.budget
        known = None if b.scope is costs.BudgetScope.ALL else cached_scope_values(
            store, str(store.path), b.scope.value, costs.today_utc())
        _budget(status, unmatched=known is not None and b.scope_value not in known)
    if not access.can(Permission.COSTS_WRITE):
        st.caption(cant_change("budgets"))
        return
    _editor(store, [s.budget for s in found])


def _budget(status: costs.BudgetStatus, *, unmatched: bool = False) -> None:
    b = status.budget
    scope = "all spend" if b.scope is costs.BudgetScope.ALL else f"{b.scope.value} {b.scope_value}"
    with st.container(border=True):
        head = f"**{escape_markdown(b.name)}** · {escape_markdown(scope)} · ${b.monthly_usd:,.2f} a month"
        if status.alert:
            st.markdown(f":red-badge[:material/warning: alert] {head}")
            st.caption(escape_markdown(status.reason))
        else:
            st.markdown(head)
        if unmatched:
            st.warning(f"No recent traffic has {b.scope.value} {escape_markdown(repr(b.scope_value))}: this budget "
                       "stays at $0.00 until some does. Check the spelling against the values the form offers.",
                       icon=":material/warning:")
        st.progress(min(status.pct_used / 100, 1.0),
                    text=f"spent ${status.spent:,.2f} ({status.pct_used:.0f}%) · forecast ${status.forecast:,.2f} "
                         f"({status.pct_forecast:.0f}%) · alert at {b.alert_pct:g}%")


def _scope_value(column: Any, scope: str, known: list[str], current: costs.Budget | None) -> str | None:
    """A pick among the values seen in traffic; a value not seen yet can still be typed (and is warned about)."""
    if scope == "all":
        column.text_input("Model, provider, task or tag", value="", disabled=True, key=f"{VALUE}.all",
                          help="A budget over all spend names nothing.")
        return None
    now = current.scope_value if current and current.scope.value == scope else None
    options = sorted({*known, *([now] if now else [])})
    return column.selectbox(f"{scope.capitalize()} (seen in traffic; or type one)", options,
                            index=options.index(now) if now else (0 if options else None), accept_new_options=True,
                            key=f"{VALUE}.{scope}", help=field_help(costs.Budget, "scope_value"),
                            placeholder=f"No {scope} seen in traffic yet: type one")


def _editor(store: Store, budgets: list[costs.Budget]) -> None:
    st.subheader(":material/edit: Add or change a budget", anchor=False)
    by_name = {b.name: b for b in budgets}
    pick = st.selectbox("Budget", [NEW, *by_name], key=PICK)
    current = by_name.get(pick)
    scopes = [s.value for s in costs.BudgetScope]
    # Outside the form, so the values offered below follow the scope picked.
    scope = st.selectbox("Scope", scopes, index=scopes.index(current.scope.value) if current else 0,
                         key=f"{KIND}.{pick}")
    known = [] if scope == "all" else cached_scope_values(store, str(store.path), scope, costs.today_utc())
    with st.form("costs.budget_form", border=False):
        cols = st.columns(2)
        name = cols[0].text_input("Name", value=current.name if current else "", key=NAME)
        value = _scope_value(cols[1], scope, known, current)
        amount = cols[1].number_input("Monthly USD", min_value=0.0, value=current.monthly_usd if current else 100.0,
                                      key=AMOUNT, help=field_help(costs.Budget, "monthly_usd"))
        alert = cols[0].number_input("Alert at %", min_value=0.0, max_value=1000.0,
                                     value=current.alert_pct if current else 80.0, key=ALERT,
                                     help=field_help(costs.Budget, "alert_pct"))
        if st.form_submit_button("Save budget", icon=":material/save:"):
            saved = run_action(SCOPE, costs.save_budget, store, {"name": name, "scope": scope, "scope_value": value,
                                                                 "monthly_usd": amount, "alert_pct": alert},
                               replace=current.name if current else None,
                               success=lambda b: f"Budget {escape_markdown(b.name)} saved.")
            warning = saved and costs.scope_warning(store, saved.scope, saved.scope_value)
            if warning:
                flash(SCOPE, f"Budget {escape_markdown(saved.name)} saved, but {escape_markdown(warning)}.", "warning")
            st.rerun()
    if current is not None:
        st.button("Delete this budget", icon=":material/delete:", key="costs.budget_delete",
                  on_click=run_action, args=(SCOPE, costs.delete_budget, store, current.name),
                  kwargs={"success": f"Budget {escape_markdown(current.name)} deleted."})
