"""One experiment's results: counts, the sample-ratio check, the tests against control, charts, guards, decide."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from workbench.domain.ab_stats import Comparison, MetricKind, chance_text
from workbench.domain.access import Permission
from workbench.errors import WorkbenchError
from workbench.services import access
from workbench.services import experiments as svc
from workbench.services.experiments import ExperimentResults, MetricResult
from workbench.store import Store
from workbench.store.experiments import ExperimentRow
from workbench.ui.widgets import chart_text, escape_markdown, run_action, show_flash

SCOPE = "experiments.decide"
PENDING = "experiments.pending"


def render(store: Store, experiment: ExperimentRow, results: ExperimentResults) -> None:
    if experiment.demo:
        st.info("**Demo data**: generated traffic, not a real test.", icon=":material/science:")
    st.subheader(escape_markdown(f"#{experiment.id} {experiment.name}"), anchor=False)
    if experiment.description:
        st.caption(escape_markdown(experiment.description))
    st.markdown(f"**{escape_markdown(results.headline)}** · state: {experiment.state} · randomised by "
                f"{experiment.unit} · primary metric: {escape_markdown(results.primary.label)}")
    show_flash(SCOPE)
    _srm(results)
    _counts(results)
    _comparisons(results.primary, primary=True)
    _charts(results)
    for guard in results.guards:
        _comparisons(guard, primary=False)
    _sample_size(results)
    _decide(store, experiment)


def _srm(results: ExperimentResults) -> None:
    srm = results.srm
    if srm.mismatch:
        st.error("**Sample ratio mismatch: do not trust these results.** " + escape_markdown(srm.explanation),
                 icon=":material/warning:")
    elif srm.mismatch is None:
        st.caption("Sample ratio check: " + escape_markdown(srm.explanation))
    else:
        st.caption(":material/check_circle: Sample ratio check: " + escape_markdown(srm.explanation))


def _counts(results: ExperimentResults) -> None:
    rate = results.primary.kind is MetricKind.RATE
    observed = svc.METRICS[results.primary.metric].observed
    st.dataframe(pd.DataFrame([{
        "variant": v.name + (" (control)" if i == 0 else ""),
        "target": v.target,
        "weight": v.weight,
        f"{results.experiment.unit}s" if results.experiment.unit != "request" else "requests": v.units,
        "predictions": v.predictions,
        observed: v.observations,
        **({"conversions": v.conversions, "rate": None if v.rate is None else f"{v.rate:.2%}"} if rate
           else {"mean": v.mean, "sd": v.sd}),
    } for i, v in enumerate(results.variants)]), hide_index=True, width="stretch", key="experiments.counts")


def p_value_text(p_value: float | None) -> str:
    """A p-value a column can hold: `< 0.0001` for the tiny ones, else 3 significant digits."""
    if p_value is None:
        return "–"
    return "< 0.0001" if p_value < 0.0001 else f"{p_value:.3g}"


def _difference_text(kind: MetricKind, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 100:+.2f} pts" if kind is MetricKind.RATE else f"{value:+.4g}"


def _comparisons(result: MetricResult, *, primary: bool) -> None:
    title = "Result against control" if primary else f"Guard metric: {result.label}"
    st.markdown(f"**{escape_markdown(title)}**")
    for comparison in result.analysis.comparisons:
        if primary:
            _headline_numbers(result.kind, comparison)
        elif comparison.outcome.value == "worse":
            st.warning(escape_markdown(f"{comparison.treatment} is worse than control on {result.metric}."),
                       icon=":material/warning:")
        st.caption(escape_markdown(comparison.explanation))
    st.dataframe(pd.DataFrame([{
        "treatment": c.treatment,
        "method": c.method,
        "difference": _difference_text(c.kind, c.difference),
        f"{c.confidence:.0%} CI": f"{_difference_text(c.kind, c.ci_low)} to {_difference_text(c.kind, c.ci_high)}",
        "p-value": p_value_text(c.p_value),
        "chance to beat control": chance_text(c.prob_to_beat_control),
        "outcome": c.outcome.value,
    } for c in result.analysis.comparisons]), hide_index=True, width="stretch",
        key=f"experiments.compare.{result.metric}")


def _headline_numbers(kind: MetricKind, comparison: Comparison) -> None:
    left, middle, right = st.columns(3)
    left.metric(f"{comparison.treatment} − {comparison.control}", _difference_text(kind, comparison.difference),
                help="Treatment minus control (rate points for rates).")
    middle.metric("p-value (frequentist)", p_value_text(comparison.p_value),
                  help=comparison.method)
    right.metric("Chance to beat control (Bayesian)",
                 chance_text(comparison.prob_to_beat_control))


def _charts(results: ExperimentResults) -> None:
    if not results.series:
        st.caption("No traffic logged under this experiment yet: send predictions with `experiment_id` "
                   f"\"{results.experiment.id}\" and the assigned `variant`.")
        return
    frame = pd.DataFrame([p.model_dump() for p in results.series])
    left, right = st.columns(2)
    value_title = f"cumulative {results.primary.label}"
    for column, field, title in ((left, "value", value_title), (right, "units", "cumulative units")):
        figure = go.Figure()
        for variant, part in frame.groupby("variant", sort=False):
            figure.add_trace(go.Scatter(x=part["day"], y=part[field], mode="lines", name=chart_text(str(variant))))
        figure.update_layout(title=chart_text(title), height=300, margin={"t": 40, "b": 20, "l": 20, "r": 20})
        column.plotly_chart(figure, key=f"experiments.chart.{field}")


def _sample_size(results: ExperimentResults) -> None:
    with st.expander("Sample-size calculator", icon=":material/calculate:"):
        rate = results.primary.kind is MetricKind.RATE
        mde = st.number_input("Smallest change worth detecting" + (" (rate points, 0.02 = 2 points)" if rate
                                                                   else " (in the metric's units)"),
                              value=0.02 if rate else max(abs(results.variants[0].mean or 1.0) * 0.05, 1e-6),
                              format="%.4f", key="experiments.mde")
        try:
            needed = svc.sample_size(results, mde)
        except WorkbenchError as exc:
            st.caption(escape_markdown(str(exc)))
            return
        have = min(v.observations for v in results.variants)
        observed = svc.METRICS[results.primary.metric].observed
        st.markdown(escape_markdown(svc.sample_size_text(results, needed)))
        st.caption(f"The metric is analysed per prediction, so the calculator counts {observed}, not "
                   f"{results.experiment.unit}s (the randomised unit).")
        st.progress(min(have / needed.units_per_variant, 1.0),
                    text=f"{have:,} of {needed.units_per_variant:,} {observed} in the smallest variant")


def _decide(store: Store, experiment: ExperimentRow) -> None:
    st.markdown("**Decision**")
    if experiment.decision:
        st.success(escape_markdown(f"{experiment.decision} {experiment.decided_variant or ''} — "
                                   f"{experiment.decision_note or ''} ({experiment.decided_at})"),
                   icon=":material/gavel:")
        return
    if not access.can(Permission.EXPERIMENTS_WRITE):
        st.caption(f"Your role ({_role()}) can read experiments but not start, stop or decide them; an engineer, "
                   "a PM or an admin can.")
        return
    if experiment.state == "draft":
        if st.button("Start assigning units", key="experiments.start", icon=":material/play_arrow:"):
            run_action(SCOPE, svc.start, store, experiment.id, success="Started.")
            st.rerun()
        return
    names = [v.name for v in experiment.variants]
    left, right = st.columns(2)
    ship = left.selectbox("Variant to ship", names, index=len(names) - 1, key="experiments.ship_variant")
    pending = st.session_state.get(PENDING)
    if left.button("Ship…", key="experiments.ship", icon=":material/rocket_launch:"):
        st.session_state[PENDING] = pending = ("ship", experiment.id, ship)
    if right.button("Stop, keep control…", key="experiments.stop", icon=":material/stop_circle:"):
        st.session_state[PENDING] = pending = ("stop", experiment.id, None)
    if pending and pending[1] == experiment.id:
        _confirm(store, experiment, pending)


def _role() -> str:
    role = access.current().role
    return role.value if role else "none"


def _confirm(store: Store, experiment: ExperimentRow, pending: tuple[str, int, str | None]) -> None:
    action, _, variant = pending
    target = next((v.target for v in experiment.variants if v.name == variant), "")
    words = (f"Ship {variant}? Its target {target} becomes what production serves (a model is activated for the "
             "task; a template version gets the production label)." if action == "ship"
             else f"Stop the test and keep {experiment.control}?")
    st.warning(escape_markdown(words), icon=":material/help:")
    yes, no = st.columns(2)
    if yes.button("Confirm", key="experiments.confirm", type="primary"):
        st.session_state.pop(PENDING, None)
        run_action(SCOPE, svc.decide, store, experiment.id, ship=variant if action == "ship" else None,
                   stop_test=action == "stop",
                   success=lambda e: escape_markdown(f"Recorded: {e.decision_note}"))
        st.rerun()
    if no.button("Cancel", key="experiments.cancel"):
        st.session_state.pop(PENDING, None)
        st.rerun()
