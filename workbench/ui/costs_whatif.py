"""Costs → Re-price and What-if router: past traffic at changed prices, and under a cheaper-model routing policy."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from workbench.errors import WorkbenchError
from workbench.services import cost_prices, cost_whatif, costs
from workbench.ui.widgets import escape_markdown, field_help

if TYPE_CHECKING:
    from workbench.store import Store

RP = "costs.reprice_"
WI = "costs.whatif_"
DAY_CHOICES = [7, 14, 30, 60, 90]


@st.cache_data(ttl=60, max_entries=8, show_spinner=False)
def cached_keys(_store: Store, path: str, days: int) -> tuple[list[str], list[str]]:
    today = costs.today_utc()
    return costs.traffic_keys(_store, today - timedelta(days=days - 1), today)


def money_axis(figure: go.Figure, title: str) -> None:
    """Dollars as a PM reads them: "$0.0008", never an SI suffix ("$750μ", "$1.2k"), and a title saying the unit."""
    figure.update_yaxes(tickprefix="$", exponentformat="none", separatethousands=True, title_text=title)


def render_reprice(store: Store) -> None:
    st.caption("Apply a changed price to the past days of one model's traffic: token sums per day from the daily "
               "rollups, priced at the price row in force then (old) and at the prices below (new).")
    models, _ = cached_keys(store, str(store.path), 90)
    if not models:
        st.info("No traffic in the last 90 days to re-price.", icon=":material/info:")
        return
    cols = st.columns(2)
    model = cols[0].selectbox("Model", models, key=RP + "model")
    days = cols[1].select_slider("Past days", DAY_CHOICES, value=30, key=RP + "days")
    current = cost_prices.price_book(store).row_for(model, costs.today_utc().isoformat())
    cols = st.columns(3)
    new = {
        field: cols[i].number_input(label, min_value=0.0, format="%.6f", key=RP + field,
                                    value=getattr(current, field) if current and getattr(current, field) is not None else 0.0,
                                    help=field_help(cost_prices.PriceRow, field))
        for i, (field, label) in enumerate((("input_per_1m", "New input $/1M"), ("output_per_1m", "New output $/1M"),
                                            ("cached_input_per_1m", "New cached input $/1M")))
    }
    if not st.button("Re-price", icon=":material/calculate:", key=RP + "run"):
        return
    try:
        got = cost_whatif.reprice(store, model, days=days, **new)
    except WorkbenchError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/error:")
        return
    cols = st.columns(3)
    cols[0].metric("At the prices in force", "—" if got.old_usd is None else f"${got.old_usd:,.4f}", border=True)
    cols[1].metric("At the new prices", f"${got.new_usd:,.4f}", border=True,
                   delta=None if got.difference_usd is None else f"{got.difference_usd:+,.4f} USD", delta_color="inverse")
    cols[2].metric("Recorded at arrival", f"${got.stored_usd:,.4f}", border=True)
    frame = pd.DataFrame([d.model_dump() for d in got.by_day])
    if not frame.empty:
        figure = go.Figure()
        figure.add_scatter(x=frame["day"], y=frame["old_usd"], name="old prices", mode="lines")
        figure.add_scatter(x=frame["day"], y=frame["new_usd"], name="new prices", mode="lines")
        figure.update_layout(height=280, margin={"t": 10, "b": 10}, legend={"orientation": "h"})
        money_axis(figure, "USD a day")
        st.plotly_chart(figure, key=RP + "chart")
    st.caption(f"Method: {got.method}.")


def render_whatif(store: Store) -> None:
    st.caption("Re-price logged traffic as if simple requests (short input, or one task) had gone to a cheaper model, "
               "and estimate what that costs in accuracy where ground truth was logged.")
    days = st.select_slider("Past days", DAY_CHOICES, value=30, key=WI + "days")
    models, tasks = cached_keys(store, str(store.path), days)
    priced = sorted({p.model for p in cost_prices.list_prices(store) if p.input_per_1m is not None and p.output_per_1m is not None})
    choices = sorted(set(priced) | set(models))
    if not choices:
        st.info("No priced model to route to: add input and output prices on the Prices tab.", icon=":material/info:")
        return
    cols = st.columns(3)
    to_model = cols[0].selectbox("Send to", choices, key=WI + "to", help=field_help(cost_whatif.RouterPolicy, "to_model"))
    max_chars = cols[1].number_input("Input shorter than (characters, 0 = any length)", min_value=0, value=500,
                                     step=100, key=WI + "chars")
    task = cols[2].selectbox("Task (any)", ["", *tasks], key=WI + "task", help=field_help(cost_whatif.RouterPolicy, "task_type"))
    from_models = st.multiselect("Only requests now served by (any)", models, key=WI + "from")
    if not st.button("Run what-if", icon=":material/alt_route:", key=WI + "run"):
        return
    try:
        policy = cost_whatif.RouterPolicy(to_model=to_model, max_input_chars=max_chars or None, task_type=task or None,
                                    from_models=from_models)
        got = cost_whatif.what_if(store, policy, days=days)
    except WorkbenchError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/error:")
        return
    _whatif_result(got)


def _signed_usd(value: float, digits: int) -> str:
    """"-$0.0013", not "$-0.0013": a negative saving (the policy costs more) reads as a loss."""
    return f"{'-' if value < 0 else ''}${abs(value):,.{digits}f}"


def routed_words(got: cost_whatif.WhatIf) -> str:
    """The routed count on the window's scale, like the saving beside it, and what it was estimated from."""
    words = f"about {got.routed_window_rows:,} of {got.window_rows:,} requests in the window"
    if got.sample_rows < got.window_rows:
        words += f", from a sample of {got.sample_rows:,} ({got.routed_rows:,} of them routed)"
    return words


def _whatif_result(got: cost_whatif.WhatIf) -> None:
    cols = st.columns(4)
    cols[0].metric("Requests routed", f"about {got.routed_window_rows:,}", border=True,
                   help=routed_words(got))
    cols[1].metric("Saving", _signed_usd(got.saving_usd, 4), border=True,
                   delta=None if got.saving_pct is None else f"{got.saving_pct:.1f}% of spend")
    cols[2].metric("Saving over the window", _signed_usd(got.saving_window_usd, 2), border=True)
    if got.accuracy_before is not None and got.accuracy_after is not None:
        cols[3].metric("Accuracy", f"{got.accuracy_after:.1%}", border=True,
                       delta=f"{100 * (got.accuracy_after - got.accuracy_before):+.1f} points")
    else:
        cols[3].metric("Accuracy", "—", border=True, help="No ground truth logged in this window.")
    if got.tasks:
        frame = pd.DataFrame([t.model_dump() for t in got.tasks])
        figure = go.Figure()
        figure.add_bar(x=frame["task"], y=frame["current_accuracy"], name="as served")
        figure.add_bar(x=frame["task"], y=frame["to_model_accuracy"], name=f"{got.policy.to_model} (own traffic)")
        figure.update_layout(height=260, margin={"t": 10, "b": 10}, barmode="group", legend={"orientation": "h"})
        figure.update_yaxes(tickformat=".0%", range=[0, 1])
        st.plotly_chart(figure, key=WI + "chart")
    st.caption(routed_words(got).capitalize() + ".")
    st.markdown("**Assumptions**\n" + "\n".join(f"- {escape_markdown(a)}" for a in got.assumptions))
    if got.unpriced_rows:
        st.caption(f"{got.unpriced_rows:,} matching requests had no token counts and were left out.")
