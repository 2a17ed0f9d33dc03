"""Validate tab: check a dataset against a fine-tuning target, and chart what is in it."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pandas as pd
import plotly.express as px
import streamlit as st

from workbench.domain.example import Split
from workbench.domain.stats import DatasetStats
from workbench.domain.validation import Finding, FindingGroup, RecordRef, Severity, ValidationReport
from workbench.services import datasets, validating
from workbench.store.tasks import Task
from workbench.ui.datasets_browse import example_table
from workbench.ui.task_panel import AUTO_START_MAX_EXAMPLES, start_task, task_panel
from workbench.ui.task_panel import latest as task_panel_latest
from workbench.ui.widgets import chart_text, field_help, human_bytes, plural

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

    from workbench.domain.catalogue import TargetSpec
    from workbench.store import Store

TARGET, SPLIT, CLASS_FIELD = "datasets.target", "datasets.validate_split", "datasets.class_field"
GROUP = "datasets.validation_group"
ALL = "all"
SPLITS = [ALL, Split.TRAIN.value, Split.VALIDATION.value, Split.TEST.value]
EXAMPLES_PER_ROW = 5


def render(store: Store, dataset: str) -> None:
    """Draw the Validate tab for one dataset."""
    specs = {t.id: t for t in validating.targets()}
    cols = st.columns([2, 1, 1], vertical_alignment="bottom")
    if TARGET not in st.session_state:
        st.session_state[TARGET] = validating.default_target(datasets.get_dataset(store, dataset).source_format).value
    target = cols[0].selectbox("Target", list(specs), key=TARGET, format_func=lambda t: specs[t].label,
                               help="The service and base model family the dataset is meant for.")
    spec = specs[target]
    split = cols[1].selectbox("Split", SPLITS, key=SPLIT, help="'all' checks every example and judges record counts "
                              "per split, as a launch would: the train split against the training limits, the "
                              "validation split against its own (smaller) ones.")
    chosen = None if split == ALL else split
    shown: list[ValidationReport] = []

    def draw(result: object, _task: Task) -> None:
        shown.append(ValidationReport.model_validate(result))
        _report(store, shown[0], spec)

    task = task_panel(store, dataset, "validate", {"target": target, "split": chosen}, key="datasets.validate",
                      label="Validate", icon=":material/fact_check:", primary=True, render=draw, container=cols[2])
    report = shown[0] if shown else None
    if task is None:
        st.caption("Validate renders each example in the target's format and checks it against the target's published "
                   "rules, before a job is paid for.")
    _rules(spec)
    st.divider()
    _stats(store, dataset, chosen, report)


def _report(store: Store, report: ValidationReport, spec: TargetSpec) -> None:
    if report.ok:
        st.success(f"Ready for {spec.label}: no errors in {plural(report.record_count, 'record')}.",
                   icon=":material/check_circle:")
    else:
        st.error(f"{spec.label} would reject this file: {plural(report.error_count, 'error')}.",
                 icon=":material/block:")
    cols = st.columns(5)
    cols[0].metric("Records", f"{report.record_count:,}")
    cols[1].metric("Errors", f"{report.error_count:,}", help=field_help(ValidationReport, "error_count"))
    cols[2].metric("Warnings", f"{report.warning_count:,}", help=field_help(ValidationReport, "warning_count"))
    cols[3].metric("Tokens", f"{report.total_tokens:,}")
    cols[4].metric("Size", human_bytes(report.total_bytes), help=field_help(ValidationReport, "total_bytes"))
    st.caption(f"Tokens counted with {report.tokenizer_label}" + ("" if report.tokens_exact else " (an estimate)")
               + (f"; limit {report.token_limit:,} tokens per record." if report.token_limit else "."))
    groups = report.groups(EXAMPLES_PER_ROW)
    for severity, title, total, key in ((Severity.ERROR, "Errors", report.error_count, "datasets.validation_errors"),
                                        (Severity.WARNING, "Warnings", report.warning_count, "datasets.validation_warnings")):
        rows = [g for g in groups if g.severity is severity]
        if rows:
            st.markdown(f"**{title} ({total:,})**: one row per code, with the first record's message")
            frame = _groups_frame(store, spec, rows)
            example_table(frame, key=key, row_height=_row_height(frame["message"], 360), column_config=GROUP_COLUMNS,
                          column_order=list(GROUP_COLUMNS), placeholder="")
    if groups:
        _findings(store, report, spec, groups)


GROUP_COLUMNS = {
    "rule": st.column_config.TextColumn("rule", width=140, pinned=True),
    "code": st.column_config.TextColumn("code", width=120),
    "records": st.column_config.NumberColumn("records", width=56),
    "message": st.column_config.TextColumn("message (first record's)", width=360),
    "examples": st.column_config.TextColumn("records to open", width=120),
    "source": st.column_config.LinkColumn("source", width=64, display_text=r"https?://(?:www\.)?([^/.]+)"),
    "where": st.column_config.TextColumn("where (first record)", width=140),
    "example_id": st.column_config.NumberColumn("first example", width=90, format="%d"),
}
"""Widths that fit the page: the message wraps instead of pushing the columns after it off-screen."""


def _row_height(texts: pd.Series, width: int, most: int = 6) -> int:
    """A row height that lets the longest text wrap onto up to `most` lines of a column `width` pixels wide."""
    longest = max((len(str(t)) for t in texts), default=0)
    lines = min(most, max(1, -(-longest * 7 // width)))  # about 7 px a character
    return 16 + 22 * lines


def _groups_frame(store: Store, spec: TargetSpec, groups: list[FindingGroup]) -> pd.DataFrame:
    """One row per code: its rule, the true count, the first message, and the records to open (the first is selectable).

    `where` names the part of the first record the way every tab does ('system', 'turn 1 (user)'):
    the record's own path would count OpenAI's system prompt as messages[0].
    """
    first = [next((r.example_id for r in g.examples if r.example_id is not None), None) for g in groups]
    where = datasets.record_part_labels(store, spec.format, [(i, g.field) for i, g in zip(first, groups, strict=True)])
    return pd.DataFrame(
        [{"rule": g.rule or "", "code": g.code, "records": g.count, "message": g.message, "where": label or g.field or "",
          "example_id": example_id, "examples": _examples(g), "source": validating.rule_source(spec, g.rule)}
         for g, example_id, label in zip(groups, first, where, strict=True)],
        columns=["rule", "code", "records", "message", "where", "example_id", "examples", "source"],
    )


def _examples(group: FindingGroup) -> str:
    """The group's first records, file line first, and how many more it stands for ('+8 more')."""
    listed = ", ".join(_where(r) for r in group.examples)
    more = group.count - len(group.examples)
    return f"{listed} +{more:,} more" if listed and more > 0 else listed


def _where(ref: RecordRef) -> str:
    if ref.source_line is not None:
        return f"line {ref.source_line}" + (f" (#{ref.example_id})" if ref.example_id is not None else "")
    return f"#{ref.example_id}" if ref.example_id is not None else ""


def _findings(store: Store, report: ValidationReport, spec: TargetSpec, groups: list[FindingGroup]) -> None:
    """List one code's findings one by one, each with its own record, part and message (a group shows the first)."""
    names = {f"{g.severity.value}: {g.rule or g.code} ({g.code}), {plural(g.count, 'record')}": g for g in groups}
    if st.session_state.get(GROUP) not in names:
        st.session_state.pop(GROUP, None)
    group = names[st.selectbox("Findings one by one", list(names), key=GROUP,
                               help="Each finding of the chosen code with its own record, part and message.")]
    members = [f for f in [*report.errors, *report.warnings] if (f.severity, f.code) == (group.severity, group.code)]
    labels = datasets.record_part_labels(store, spec.format, [(f.example_id, f.field) for f in members])
    frame = pd.DataFrame(
        [{"line": _finding_lines(f), "example_id": f.example_id, "where": label or f.field or "", "records": f.count,
          "message": f.message} for f, label in zip(members, labels, strict=True)],
        columns=["line", "example_id", "where", "records", "message"],
    )
    row_height = _row_height(frame["message"], 520)
    example_table(frame, key="datasets.validation_findings", row_height=row_height,
                  height=row_height * min(len(frame), 8) + 40, placeholder="", column_config={
                      "line": st.column_config.TextColumn("line", width=80),
                      "example_id": st.column_config.NumberColumn("example", width=70, format="%d"),
                      "where": st.column_config.TextColumn("where", width=140),
                      "records": st.column_config.NumberColumn("records", width=56),
                      "message": st.column_config.TextColumn("message", width=520),
                  })
    one_by_one = sum(f.count == 1 for f in members)
    if one_by_one < group.count:
        st.caption(f"The first {one_by_one:,} are listed one by one; a row with more than one record stands for the rest.")


def _finding_lines(finding: Finding) -> str:
    """The file line of a finding, or of the first records a finding standing for many names."""
    if finding.source_line is not None:
        return str(finding.source_line)
    lines = [str(r.source_line) for r in finding.records if r.source_line is not None]
    return ", ".join(lines[:3]) + (", ..." if len(lines) > 3 else "")


def _rules(spec: TargetSpec) -> None:
    with st.expander(f"Rules checked for {spec.label} ({len(spec.rules)})", icon=":material/rule:"):
        st.caption("  \n".join(validating.RULES_LEGEND))
        st.caption(f"Tool use: {spec.tool_use.support.value}. {spec.tool_use.shape}")
        rows = validating.rule_rows(spec)
        frame = pd.DataFrame(rows)
        # Every row shows at once (no scroll box); long text wraps onto the taller rows.
        height = _row_height(frame["requires"], 330, most=4)  # the width of `requires` in RULE_COLUMNS
        chosen = st.dataframe(
            frame, key="datasets.validation_rules", hide_index=True, width="stretch", height=height * len(rows) + 40,
            row_height=height, column_config=RULE_COLUMNS, on_select="rerun", selection_mode="single-row",
        )
        picked = chosen.selection.rows if chosen is not None else []
        if picked:
            _rule_details(rows[picked[0]])
        else:
            st.caption("Select a rule to read where its source states it and how we differ; "
                       f"the same list in a terminal: `workbench targets rules {spec.id}`.")


def _rule_details(row: dict[str, str]) -> None:
    st.markdown(f"**{row['rule']}** ({row['severity']}, {row['origin']}): {row['requires']}  \n"
                f"Codes: {row['codes']}. Stated in [{row['source']}]({row['source']})"
                + (f", at {row['where in source']}" if row["where in source"] else "") + ".")
    if row["note"]:
        st.info(row["note"], icon=":material/info:")


RULE_COLUMNS = {
    "rule": st.column_config.TextColumn("rule", width=160, pinned=True),
    "severity": st.column_config.TextColumn("severity", width=64),
    "origin": st.column_config.TextColumn("origin", width=72),
    "requires": st.column_config.TextColumn("requires", width=330),
    "codes": st.column_config.TextColumn("codes", width=130),
    "source": st.column_config.LinkColumn("source", width=90, display_text=r"https?://(?:www\.)?([^/.]+)"),
    "where in source": st.column_config.TextColumn("where in source", width=220),
    "note": st.column_config.TextColumn("note", width=420),
}


# ------------------------------------------------------------------------------------------- stats


def _stats(store: Store, dataset: str, split: str | None, report: ValidationReport | None) -> None:
    st.subheader(":material/bar_chart: What is in it", anchor=False)
    keys = datasets.facets(store, dataset).metadata_keys
    cols = st.columns([1, 1, 1], vertical_alignment="bottom")
    class_field = cols[0].selectbox("Class balance by", ["", *keys], key=CLASS_FIELD, format_func=lambda k: k or "(choose a metadata field)",
                                    help="A metadata field holding a label; each value's share is charted.")
    params = {"split": split, "class_field": class_field or None}
    kept = task_panel_latest(store, dataset, "describe", params)
    size = datasets.get_dataset(store, dataset).example_count
    if kept is None and size <= AUTO_START_MAX_EXAMPLES:
        kept = start_task(store, "describe", dataset, params, "datasets.describe")  # in the background: the page goes on
    if kept is None:
        st.caption(f"Measuring reads all {size:,} examples in the background, a minute or more at this size: start it when you need it.")

    def draw(result: object, _task: Task) -> None:
        _charts(DatasetStats.model_validate(result), report)

    task_panel(store, dataset, "describe", params, key="datasets.describe", label="Measure again" if kept else "Measure",
               icon=":material/refresh:",
               render=draw, container=cols[1],
               help="Counts tokens, turns and roles of every example, in a background task.")


def _charts(stats: DatasetStats, report: ValidationReport | None) -> None:
    if stats.example_count == 0:
        st.info("No examples in this split yet.")
        return
    lengths, limit = stats.token_lengths, None
    label = f"tokens per example ({stats.encoding})"
    if report is not None and report.token_counts:
        lengths, limit, label = report.token_counts, report.token_limit, f"tokens per record ({report.tokenizer_label})"
    cols = st.columns(2)
    longest = max(lengths, default=0)
    # A large dataset's series are a random sample: every title says so, so no count reads as the whole.
    of = f" (random sample of {len(stats.turn_counts):,} of {stats.example_count:,})" if stats.series_left_out else ""
    counted = "examples in the sample" if stats.series_left_out else "examples"
    histogram = px.histogram(x=lengths, nbins=40, labels={"x": label, "count": counted}, title="Length" + (of if lengths is stats.token_lengths else ""))
    if limit and limit <= 2 * longest:
        histogram.add_vline(x=limit, line_dash="dash", line_color="red", annotation_text=f"limit {limit:,}")
    elif limit:
        # A line far to the right would squash the bars into one column; say it instead.
        histogram.update_layout(title=f"Length (limit {limit:,}, far above the longest: {longest:,})")
    cols[0].plotly_chart(_tidy(histogram), key="datasets.chart_tokens")
    turn_counts = Counter(stats.turn_counts)
    turns = px.bar(x=[str(n) for n in sorted(turn_counts)], y=[turn_counts[n] for n in sorted(turn_counts)],
                   labels={"x": "turns per example", "y": counted}, title="Turns" + of)
    turns.update_xaxes(type="category")
    cols[1].plotly_chart(_tidy(turns), key="datasets.chart_turns")
    cols = st.columns(2)
    roles = px.bar(x=list(stats.role_counts), y=list(stats.role_counts.values()), labels={"x": "role", "y": "turns"}, title="Roles")
    cols[0].plotly_chart(_tidy(roles), key="datasets.chart_roles")
    if stats.class_counts:
        balance = px.bar(x=[chart_text(c) for c in stats.class_counts], y=list(stats.class_counts.values()),
                         labels={"x": chart_text(stats.class_field or ""), "y": "examples"}, title="Class balance")
        cols[1].plotly_chart(_tidy(balance), key="datasets.chart_classes")
    sampled = f" (charts and percentiles from a sample of {len(stats.token_lengths):,})" if stats.series_left_out else ""
    st.caption(
        f"Text only, counted with {stats.encoding}{sampled}: median {stats.tokens.median:,.0f} tokens, "
        f"95th percentile {stats.tokens.p95:,.0f}, longest {stats.tokens.max:,.0f}; {stats.total_tokens:,} tokens in all "
        f"(validation counts each record as the target renders it, so its total differs). Without a system prompt: "
        f"{stats.examples_without_system:,}; without an assistant turn: {stats.examples_without_assistant:,}."
    )


def _tidy(figure: Figure) -> Figure:
    figure.update_layout(height=300, margin={"l": 0, "r": 0, "t": 40, "b": 0}, bargap=0.05, showlegend=False)
    return figure
