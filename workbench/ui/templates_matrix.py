"""A comparison run's matrix: inputs as rows, variants as columns, a summary per variant, quality against cost.

Inputs, references and outputs are what datasets and models wrote: cells show them with st.code
(text, never HTML), cut to a preview with the whole text one click away; the CSV export has it all.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import plotly.express as px
import streamlit as st

from workbench.domain.access import Permission
from workbench.errors import WorkbenchError
from workbench.services import access, comparisons
from workbench.services.comparisons import RunReport
from workbench.store.comparisons import CellRow, RunRow
from workbench.ui.widgets import chart_text, escape_markdown, exact_text, flash, plural, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

RUN, FILTER, PAGE = "templates.run", "templates.matrix_filter", "templates.matrix_page"
FILTERS = ("All", "Failures", "Errors", "Different")
ROWS_PER_PAGE = 10
PREVIEW_CHARS = 300
INPUT_PREVIEW_CHARS = 400


def render(store: Store) -> None:
    """Draw the run picker (its choice in the URL as run=ID) and the chosen run's matrix."""
    st.subheader("Comparison runs", anchor=False)
    runs = {run.id: run for run in comparisons.list_runs(store, kind="compare", limit=100)}
    wanted = st.query_params.get("run")
    if wanted and wanted.isdigit() and int(wanted) not in runs:
        try:
            older = comparisons.get_run(store, int(wanted))
            runs[older.id] = older
        except WorkbenchError:
            st.warning(f"There is no comparison run {escape_markdown(wanted)}.", icon=":material/warning:")
    if not runs:
        st.caption("No comparison runs yet: start one above, or with `workbench compare run`.")
        return
    if st.session_state.get(RUN) not in runs:
        st.session_state[RUN] = int(wanted) if wanted and wanted.isdigit() and int(wanted) in runs else next(iter(runs))
    run_id = st.selectbox("Run", list(runs), key=RUN, format_func=lambda i: _run_label(runs[i]), on_change=_run_changed)
    if st.query_params.get("run") != str(run_id):
        st.query_params["run"] = str(run_id)
    run = runs[int(run_id)]
    report = comparisons.report(store, run.id)
    cells = comparisons.run_cells(store, run.id)
    _header(run, report)
    _summary(report)
    _chart(report)
    _matrix(report, cells)
    cols = st.columns(2)
    with cols[0]:
        _download(store, run.id)
    failed = sum(1 for c in cells if c.passed is False and c.output is not None)
    if not access.can(Permission.REVIEW_MANAGE):
        return
    cols[1].button(f"Send the {plural(failed, 'failed output')} to the review queue", key="templates.to_review",
                   icon=":material/rate_review:", disabled=not failed, on_click=_to_review, args=(store, run.id),
                   help="Reviewers rate and correct them on the Review page; a correction becomes a training example.")
    show_flash("templates.to_review")


def _to_review(store: Store, run_id: int) -> None:
    try:
        queued = comparisons.send_to_review(store, run_id)
    except WorkbenchError as exc:
        flash("templates.to_review", escape_markdown(str(exc)), "error")
        return
    flash("templates.to_review", f"Queued {plural(len(queued), 'output')} for review (outputs already queued count once).", "success")


def _run_changed() -> None:
    st.query_params["run"] = str(st.session_state[RUN])
    st.session_state.pop(PAGE, None)


def _run_label(run: RunRow) -> str:
    where = run.dataset_name or "(deleted dataset)"
    split = f" / {run.split}" if run.split else ""
    name = f" · {run.name}" if run.name else ""
    return f"#{run.id} · {run.created_at[:16].replace('T', ' ')} · {where}{split} · {len(run.variants)} variants · {run.state}{name}"


def _header(run: RunRow, report: RunReport) -> None:
    facts = [f"{plural(report.inputs, 'input')}", f"{plural(len(report.variants), 'variant')}", f"state {report.state}",
             f"concurrency {run.concurrency}"]
    if run.judge:
        facts.append(f"judge {run.judge}")
    st.caption(escape_markdown(" · ".join(facts)))
    st.caption("Assertions: " + escape_markdown("; ".join(report.assertions) or "none (outputs shown unjudged)"))
    if report.state == "cancelled":
        st.info("This run was stopped before the end: the matrix shows the cells it finished.", icon=":material/stop_circle:")
    if report.error:
        st.error(escape_markdown(report.error), icon=":material/error:")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _summary(report: RunReport) -> None:
    rows = []
    for v in report.variants:
        s = v.summary
        interval = f"{s.pass_rate_ci.low:.0%}–{s.pass_rate_ci.high:.0%}" if s.pass_rate_ci else ""
        rows.append({
            "variant": v.label, "cells": v.cells, "passed": v.passed, "failed": v.failed, "errors": v.errors,
            "pass rate": _percent(s.pass_rate), "95% interval": interval,
            "mean score": "" if s.mean_score is None else f"{s.mean_score:.2f}",
            "cost per 1k calls": s.cost_per_1k_calls_usd, "p50 ms": v.latency_p50_ms, "p95 ms": v.latency_p95_ms,
            "cache hits": v.cache_hits, "spent": v.cost_usd, "saved by cache": v.cost_saved_usd,
        })
    money = st.column_config.NumberColumn(format="$%.6f")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "cost per 1k calls": money, "spent": money,
        "saved by cache": money, "p50 ms": st.column_config.NumberColumn(format="%.0f"),
        "p95 ms": st.column_config.NumberColumn(format="%.0f"),
    })


def _chart(report: RunReport) -> None:
    points = [(v.label, v.summary.pass_rate, v.summary.cost_per_1k_calls_usd) for v in report.variants]
    priced = [p for p in points if p[1] is not None and p[2] is not None]
    unpriced = [label for label, rate, cost in points if rate is not None and cost is None]
    if priced:
        frame = pd.DataFrame({"variant": [chart_text(p[0]) for p in priced], "pass rate": [p[1] for p in priced],
                              "cost per 1k calls (USD)": [p[2] for p in priced]})
        figure = px.scatter(frame, x="cost per 1k calls (USD)", y="pass rate", text="variant", color="variant",
                            title="Quality against cost")
        figure.update_traces(textposition="top center", marker={"size": 14})
        widest = max(p[2] for p in priced) or 1.0
        figure.update_layout(showlegend=False, yaxis={"tickformat": ".0%", "range": [-0.05, 1.1]}, height=360,
                             xaxis={"range": [-0.15 * widest, 1.3 * widest]})
        st.plotly_chart(figure, config={"displayModeBar": False})
    if unpriced:
        st.caption(escape_markdown(f"Not on the chart, no catalogue price for their model: {', '.join(unpriced)}."))


def row_kind(cells: Sequence[CellRow]) -> set[str]:
    """Which filters a row of the matrix matches: Failures, Errors, Different."""
    kinds = {"All"}
    if any(c.passed is False for c in cells):
        kinds.add("Failures")
    if any(c.error for c in cells):
        kinds.add("Errors")
    answers = {(c.output or "").strip() if c.error is None else f"error: {c.error}" for c in cells}
    if len(answers) > 1:
        kinds.add("Different")
    return kinds


def _matrix(report: RunReport, cells: list[CellRow]) -> None:
    st.subheader("Matrix", anchor=False)
    by_row: dict[int, dict[int, CellRow]] = {}
    for cell in cells:
        by_row.setdefault(cell.row, {})[cell.variant] = cell
    chosen = st.radio("Show rows", FILTERS, key=FILTER, horizontal=True,
                      help="Failures: a cell failed an assertion. Errors: a call failed. Different: the outputs differ.")
    rows = [r for r in sorted(by_row) if chosen in row_kind(list(by_row[r].values()))]
    st.caption(f"{plural(len(rows), 'row')} of {len(by_row):,}")
    if not rows:
        return
    pages = (len(rows) + ROWS_PER_PAGE - 1) // ROWS_PER_PAGE
    page = int(st.number_input("Page", min_value=1, max_value=pages, value=1, key=PAGE)) if pages > 1 else 1
    widths = [2.0] + [2.0] * len(report.variants)
    head = st.columns(widths)
    head[0].markdown("**Input**")
    for column, variant in zip(head[1:], report.variants, strict=True):
        s = variant.summary
        column.markdown(f"**{escape_markdown(variant.label)}**")
        interval = f" ({s.pass_rate_ci.low:.0%}–{s.pass_rate_ci.high:.0%})" if s.pass_rate_ci else ""
        column.caption(escape_markdown(
            f"pass {_percent(s.pass_rate) or 'n/a'}{interval} · score {'n/a' if s.mean_score is None else f'{s.mean_score:.2f}'}"
            f" · {_money(s.cost_per_1k_calls_usd)} per 1k calls · p50 {_ms(s.latency_p50_ms)} · p95 {_ms(s.latency_p95_ms)}"
            f" · {variant.cache_hits} cache hits · spent {_money(variant.cost_usd)}, saved {_money(variant.cost_saved_usd)}"
        ))
    for r in rows[(page - 1) * ROWS_PER_PAGE: page * ROWS_PER_PAGE]:
        row = by_row[r]
        with st.container(border=True):
            columns = st.columns(widths)
            first = next(iter(row.values()))
            with columns[0]:
                st.caption(f"row {r + 1}" + (f" · example {first.example_id}" if first.example_id is not None else ""))
                _preview(first.input, INPUT_PREVIEW_CHARS, "input")
                if first.reference is not None:
                    st.caption("reference")
                    _preview(first.reference, INPUT_PREVIEW_CHARS, "reference")
            for index, column in enumerate(columns[1:]):
                with column:
                    _cell(row.get(index))


def _cell(cell: CellRow | None) -> None:
    if cell is None:
        st.caption("not run")
        return
    if cell.error:
        st.markdown(":orange[**error**]")
        _preview(cell.error, PREVIEW_CHARS, "error")
    else:
        verdict = {True: ":green[**pass**]", False: ":red[**fail**]", None: ":gray[unjudged]"}[cell.passed]
        st.markdown(verdict + (f" · score {cell.score:.2f}" if cell.score is not None else ""))
        _preview(cell.output or "", PREVIEW_CHARS, "output")
    tokens = f"{cell.input_tokens}→{cell.output_tokens} tok" if cell.input_tokens is not None else "tokens n/a"
    facts = [_ms(cell.latency_ms), tokens, _money(cell.cost_usd)]
    if cell.cache_hit:
        facts.append("cached")
    if cell.attempts > 1:
        facts.append(f"{cell.attempts} attempts")
    st.caption(escape_markdown(" · ".join(facts)))
    failed = [r for r in cell.results if not r.get("passed")]
    for result in failed[:3]:
        st.caption(escape_markdown(f"✗ {result.get('label', '')}: {result.get('reason', '')}"[:300]))


def _preview(text: str, limit: int, what: str) -> None:
    if len(text) <= limit:
        exact_text(text)
        return
    exact_text(text[:limit] + "…")
    with st.expander(f"Whole {what}: {len(text):,} characters"):
        exact_text(text)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms"


def _money(value: float | None) -> str:
    return "no price" if value is None else f"${value:,.6f}"


def _download(store: Store, run_id: int) -> None:
    with tempfile.TemporaryDirectory(prefix="workbench-compare-") as folder:
        path = Path(folder) / f"comparison-{run_id}.csv"
        written = comparisons.export_run(store, run_id, path)
        data = path.read_bytes()
    st.download_button(f"Download the run as CSV ({plural(written, 'cell')})", data, file_name=path.name, mime="text/csv",
                       key="templates.download", icon=":material/download:", on_click="ignore")
