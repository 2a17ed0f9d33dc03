"""Costs: headline tiles, spend over time by model, provider, task or tag, and cost per request; tabs for the rest.

Reads are cached briefly (`st.cache_data`, keyed by the store's path and the filters) and come from the daily
rollups, except spend by tag and per document, which read the window's raw rows once per minute at most.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from workbench.services import costs
from workbench.ui import costs_budgets, costs_prices, costs_whatif
from workbench.ui.costs_whatif import money_axis
from workbench.ui.widgets import chart_text, escape_markdown, url_tabs

if TYPE_CHECKING:
    from workbench.store import Store

TABS = "costs.tab"
DAYS, BY, FIXED, DOCS = "costs.days", "costs.by", "costs.fixed", "costs.documents"
WINDOWS = {7: "Last 7 days", 30: "Last 30 days", 90: "Last 90 days"}
SERIES_SHOWN = 8
"""Keys the stacked chart draws one by one; the rest are summed as 'other' so the chart stays readable."""
TTL = 60
PER = 1_000
"""Cost per request is shown per this many requests (and documents)."""


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def cached_summary(_store: Store, path: str, today: date) -> costs.CostSummary:
    return costs.summary(_store, today=today)


@st.cache_data(ttl=TTL, max_entries=32, show_spinner=False)
def cached_spend(_store: Store, path: str, since: date, until: date, by: str) -> list[costs.SpendPoint]:
    return costs.inference_spend(_store, since, until, by)


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def cached_per_request(_store: Store, path: str, since: date, until: date, documents: bool) -> list[costs.RequestCost]:
    return costs.cost_per_request(_store, since, until, documents=documents)


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def cached_fixed(_store: Store, path: str, since: date, until: date) -> tuple[list[costs.TrainingCost], list[costs.ServingCost]]:
    return costs.training_spend(_store, since, until), costs.serving_spend(_store, since, until)


@st.cache_data(ttl=TTL, max_entries=4, show_spinner=False)
def cached_demo(_store: Store, path: str) -> bool:
    return costs.is_demo(_store)


def render(store: Store) -> None:
    """Draw the demo note, the headline tiles, and the tabs."""
    if cached_demo(store, str(store.path)):
        st.info("**Demo data.** These costs come from predictions, jobs and deployments the demo generated "
                "(source `demo`); nothing here was spent.", icon=":material/science:")
    _tiles(store)
    url_tabs(TABS, {"Spend": _spend, "Budgets": costs_budgets.render, "Prices": costs_prices.render,
                    "Re-price": costs_whatif.render_reprice, "What-if router": costs_whatif.render_whatif}, store)


def _tiles(store: Store) -> None:
    got = cached_summary(store, str(store.path), costs.today_utc())
    f = got.forecast
    cols = st.columns(5)
    cols[0].metric("This month", _usd(got.total_usd), help=f"Inference, training and serving since {got.month}-01 (UTC).",
                   border=True)
    cols[1].metric("Month-end forecast", _usd(f.point), help=f"Band {_usd(f.low)} to {_usd(f.high)}. Method: {f.method}.",
                   border=True)
    cols[2].metric("Saved by caching", _usd(got.savings.total), border=True, help=_savings_help(got.savings))
    cols[3].metric("Training", _usd(got.training_usd), border=True, help="Jobs that finished this month.")
    cols[4].metric("Serving", _usd(got.serving_usd), border=True,
                   help="Provisioned Throughput: hours x hourly price x model units.")
    st.caption(f"Forecast {_usd(f.low)} to {_usd(f.high)}: spend so far + the last 7 days' daily average x "
               f"{f.days_left:.1f} days left (the rest of today included) · {got.requests:,} requests this month"
               + (f" · {_per_thousand(got.per_request)}" if got.per_request is not None else ""))
    if note := _unpriced_cache_note(got.savings):
        st.caption(note)


def _savings_help(savings: costs.Savings) -> str:
    words = (f"{savings.app_cache_hits:,} application cache hits ({_usd(savings.app_cache_usd)}), each priced like a "
             f"paid request of the same model, task and day; {savings.prompt_cache_tokens:,} prompt-cache tokens "
             f"({_usd(savings.prompt_cache_usd)}), each at the gap between the input and cached-input prices.")
    return words + (" " + note if (note := _unpriced_cache_note(savings)) else "")


def _unpriced_cache_note(savings: costs.Savings) -> str | None:
    """Say plainly why prompt caching may show no saving: a model with no cached-input price is charged the input
    price for cached tokens, so nothing was saved on paper."""
    if not savings.prompt_cache_unpriced_tokens:
        return None
    return (f"{savings.prompt_cache_unpriced_tokens:,} cached input tokens count no saving: their models have no "
            "cached-input price in the price table, so they were charged at the input price. Add `cached_input_per_1m` "
            "on the Prices tab if the provider charges less for them.")


def _usd(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"${value:,.{digits}f}"


def _per_thousand(value: float | None, what: str = "requests") -> str:
    return "—" if value is None else f"${value * PER:,.2f} per {PER:,} {what}"



def _spend(store: Store) -> None:
    cols = st.columns([1, 2, 1])
    days = cols[0].selectbox("Window", list(WINDOWS), format_func=WINDOWS.get, index=1, key=DAYS)
    by = cols[1].segmented_control("Spend by", [d.value for d in costs.Dimension], default="model", key=BY,
                                   required=True, help="Tags read the window's raw rows, so they take longer.")
    fixed = cols[2].toggle("Training and serving", value=True, key=FIXED,
                           help="Add the jobs' training spend and Provisioned Throughput hours to the chart.")
    until = costs.today_utc()
    since = until - timedelta(days=days - 1)
    path = str(store.path)
    points = cached_spend(store, path, since, until, by or "model")
    frame = pd.DataFrame([p.model_dump() for p in points], columns=["day", "key", "usd", "requests"])
    if fixed:
        training, serving = cached_fixed(store, path, since, until)
        extra = [{"day": t.day, "key": "training (jobs)", "usd": t.usd, "requests": 0} for t in training]
        extra += [{"day": d, "key": "serving (Provisioned Throughput)", "usd": usd, "requests": 0}
                  for s in serving for d, usd in s.by_day.items()]
        if extra:
            frame = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)
    if frame.empty:
        st.info("No spend in this window. Predictions sent to the ingest API (`workbench api`) or imported "
                "(`workbench predictions import`) are priced as they arrive.", icon=":material/payments:")
        return
    _spike_note(store, since, until)
    st.plotly_chart(_stacked(frame, since, until), key="costs.chart_spend")
    _per_request(store, since, until)


def _spike_note(store: Store, since: date, until: date) -> None:
    """Name the largest spend spike of the last 90 days, whatever window is shown: a PM opening the page on its
    default 30 days should still learn of a spike six weeks ago, and which window shows it."""
    longest = max(WINDOWS)
    spike = costs.largest_spike(cached_spend(store, str(store.path), until - timedelta(days=longest - 1), until, "model"))
    if spike is None:
        return
    span = spike.peak_day if spike.first_day == spike.last_day else f"{spike.first_day} to {spike.last_day}"
    where = ("" if spike.first_day >= since.isoformat()
             else f" It is outside this window: choose {WINDOWS[longest]} to see it.")
    st.warning(f"**Spend spike {span}:** {_usd(spike.peak_usd)} on {spike.peak_day} against a usual "
               f"{_usd(spike.usual_usd)} a day (the median of the 7 days before), {_usd(spike.extra_usd)} extra in all; "
               f"most of it ({_usd(spike.top_extra_usd)}) from {escape_markdown(spike.top_key)}.{where}", icon=":material/trending_up:")


def _stacked(frame: pd.DataFrame, since: date, until: date) -> go.Figure:
    totals = frame.groupby("key")["usd"].sum().sort_values(ascending=False)
    shown = set(totals.index[:SERIES_SHOWN])
    frame = frame.assign(key=[k if k in shown else "other" for k in frame["key"]])
    days = [d.isoformat() for d in pd.date_range(since, until).date]
    table = frame.pivot_table(index="day", columns="key", values="usd", aggfunc="sum").reindex(days).fillna(0.0)
    order = [k for k in totals.index if k in table.columns] + (["other"] if "other" in table.columns else [])
    long = table[order].reset_index().melt(id_vars="day", var_name="key", value_name="usd")
    long["key"] = long["key"].map(chart_text)
    figure = px.area(long, x="day", y="usd", color="key", labels={"usd": "USD", "day": "", "key": ""})
    figure.update_layout(height=360, margin={"t": 10, "b": 10}, legend={"orientation": "h"}, hovermode="x unified")
    money_axis(figure, "USD a day")
    return figure


def _per_request(store: Store, since: date, until: date) -> None:
    cols = st.columns([3, 1])
    cols[0].subheader("Cost per request and per document", anchor=False)
    documents = cols[1].toggle("Per document", value=False, key=DOCS,
                               help="Documents are found in the window's raw rows (tags), so they are read on request.")
    found = cached_per_request(store, str(store.path), since, until, documents)
    frame = pd.DataFrame([r.model_dump() for r in found])
    # Per 1,000: a request costs fractions of a cent, which an axis shows as "$750μ"; $0.75 per 1,000 reads at once.
    figure = go.Figure()
    figure.add_scatter(x=frame["day"], y=frame["per_request"] * PER, name=f"per {PER:,} requests", mode="lines+markers")
    if frame["documents"].sum():
        figure.add_scatter(x=frame["day"], y=frame["per_document"] * PER, name=f"per {PER:,} documents",
                           mode="lines+markers")
    figure.update_layout(height=280, margin={"t": 10, "b": 10}, legend={"orientation": "h"})
    money_axis(figure, f"USD per {PER:,} requests" + (" or documents" if frame["documents"].sum() else ""))
    st.plotly_chart(figure, key="costs.chart_per_request")
    total: dict[str, Any] = {"requests": int(frame["requests"].sum()), "usd": float(frame["usd"].sum()),
                             "documents": int(frame["documents"].sum()), "document_usd": float(frame["document_usd"].sum())}
    per_doc = total["document_usd"] / total["documents"] if total["documents"] else None
    per_req = total["usd"] / total["requests"] if total["requests"] else None
    words = f"{total['requests']:,} requests at {_per_thousand(per_req)}"
    if documents:
        words += f"; {total['documents']:,} documents at {_per_thousand(per_doc, 'documents')}"
    st.caption(words + ". A document is a prediction whose task type starts with `doc_` or which carries the tag "
               "`document`.")
