"""Clean tab: PII, duplicates, leakage between splits, and guardrail rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.express as px
import streamlit as st

from workbench.domain.dedup import DuplicateGroup
from workbench.domain.filters import ExampleFilter
from workbench.domain.finding_groups import FindingGroup, group_violations
from workbench.domain.guardrails import GuardrailReport, GuardrailRule, RuleAction, RuleKind, RuleScope
from workbench.errors import WorkbenchError
from workbench.services import cleaning, datasets, duplicates
from workbench.services.cleaning import PiiSummary
from workbench.store.tasks import Task, TaskState
from workbench.ui.datasets_access import can_change, read_only_caption, why_not
from workbench.ui.datasets_browse import example_table, undo_button
from workbench.ui.datasets_filters import show_in_browse
from workbench.ui.task_panel import AUTO_START_MAX_EXAMPLES, latest, show_task, start_task, task_panel
from workbench.ui.widgets import escape_markdown, field_help, plural, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

THRESHOLD = "datasets.dup_threshold"
PII_SCAN, SCRUB, RESOLVE = "datasets.pii_scan", "datasets.scrub_task", "datasets.resolve_task"
SCRUB_CONFIRM = "datasets.scrub_all_confirm"
PII_GROUP, RULE_GROUP, RULE_DELETE = "datasets.pii_group", "datasets.rule_group", "datasets.rule_delete"
# What a fresh "Add a rule" form shows: empty fields, the first option of each choice.
RULE_FORM_DEFAULTS = {
    "datasets.rule_name": "", "datasets.rule_kind": list(RuleKind)[0].value, "datasets.rule_scope": list(RuleScope)[0].value,
    "datasets.rule_action": list(RuleAction)[0].value, "datasets.rule_pattern": "", "datasets.rule_message": "",
    "datasets.rule_case": False,
}
GROUPS_SHOWN = 20


def render(store: Store, dataset: str) -> None:
    """Draw the Clean tab for one dataset."""
    undo_button(store, dataset, "clean.undo")
    _pii(store, dataset)
    _duplicates(store, dataset)
    _leakage(store, dataset)
    _guardrails(store, dataset)


# --------------------------------------------------------------------------------------------- PII


def _pii(store: Store, dataset: str) -> None:
    st.subheader(":material/shield_person: Personal data", anchor=False)
    scan, scrub = latest(store, dataset, "pii_scan", {}), latest(store, dataset, "pii_scrub", {})
    scrubbing = scrub is not None and scrub.state.active
    size = datasets.get_dataset(store, dataset).example_count
    if not scrubbing and (scan is None or (scan.stale and not scan.state.active)) and size <= AUTO_START_MAX_EXAMPLES:
        # Findings are counted in the background whenever the data changed since the last count (a large
        # dataset is counted on request: opening the tab must not start minutes of work).
        scan = start_task(store, "pii_scan", dataset, {}, PII_SCAN) or scan
    if scan is None and not scrubbing:
        st.caption(f"Counting personal data reads all {size:,} examples in the background: start it when you need it.")
        st.button("Count personal data", key="datasets.pii_first_scan", icon=":material/search:", on_click=start_task,
                  args=(store, "pii_scan", dataset, {}, PII_SCAN))
    if scrub is not None and _shows_scrub(scrub, scan):
        show_task(store, dataset, scrub, key=SCRUB, render=_scrubbed)
    show_task(store, dataset, scan, key=PII_SCAN, recompute=size > AUTO_START_MAX_EXAMPLES,
              render=lambda result, _task: _pii_summary(store, dataset, PiiSummary.model_validate(result)))
    if scan is not None and scan.state in (TaskState.FAILED, TaskState.CANCELLED):
        st.button("Count again", key="datasets.pii_rescan", on_click=start_task, args=(store, "pii_scan", dataset, {}, PII_SCAN))


def _shows_scrub(scrub: Task, scan: Task | None) -> bool:
    """A scrub shows while it runs, its count until the data changes again, and why it stopped until the next count."""
    if scrub.state.active:
        return True
    if scrub.state is TaskState.DONE:
        return not scrub.stale
    return scan is None or scrub.id > scan.id


def _scrubbed(result: Any, _task: Task) -> None:
    st.success(f"Scrubbed {plural(result['changed'], 'example')}: PII replaced with placeholders such as [EMAIL].",
               icon=":material/check_circle:")


def _pii_summary(store: Store, dataset: str, summary: PiiSummary) -> None:
    cols = st.columns([1, 1, 2])
    cols[0].metric("Examples with PII", f"{summary.examples_with_pii:,}", help="Found at import and after every edit.")
    cols[1].metric("Share of the dataset", f"{summary.examples_with_pii / max(summary.examples, 1):.1%}")
    if summary.by_kind:
        chart = px.bar(x=list(summary.by_kind), y=list(summary.by_kind.values()), labels={"x": "kind", "y": "findings"}, height=220)
        chart.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0})
        cols[2].plotly_chart(chart, key="datasets.pii_chart")
    if not summary.examples_with_pii:
        st.success("No PII found in this dataset.", icon=":material/verified_user:")
        return
    _groups(store, summary.groups, "kind", PII_GROUP)
    cols = st.columns([1, 1.4, 1.2], vertical_alignment="center")
    cols[0].button("Show them in Browse", icon=":material/visibility:", key="datasets.show_pii",
                   on_click=show_in_browse, args=(ExampleFilter(has_pii=True),))
    if not can_change():
        with cols[1]:
            read_only_caption("scrub them")
        return
    sure = cols[1].checkbox("Replace in place; this cannot be undone", key=SCRUB_CONFIRM)
    scrubbing = (scrub := latest(store, dataset, "pii_scrub", {})) is not None and scrub.state.active
    cols[2].button(
        f"Scrub all {plural(summary.examples_with_pii, 'example')}", icon=":material/cleaning_services:",
        key="datasets.scrub_all", type="primary", disabled=not sure or scrubbing, on_click=start_task,
        args=(store, "pii_scrub", dataset, {}, SCRUB),
    )


# -------------------------------------------------------------------------------------- duplicates


def _duplicates(store: Store, dataset: str) -> None:
    st.subheader(":material/content_copy: Duplicates", anchor=False)
    show_flash("clean.duplicates")
    cols = st.columns([2, 1, 1], vertical_alignment="bottom")
    threshold = cols[0].slider(
        "Similarity threshold", 0.5, 1.0, 0.8, 0.05, key=THRESHOLD,
        help="Examples at least this similar (estimated Jaccard over word shingles) form a group; 1.0 finds exact copies only.",
    )
    params = {"threshold": threshold}
    resolving = latest(store, dataset, "resolve_duplicates", params)
    found = task_panel(
        store, dataset, "duplicates", params, key="datasets.find_duplicates", label="Find duplicates",
        icon=":material/search:", container=cols[1],
        render=lambda result, _task: _duplicate_groups(store, dataset, params, result, cols[2], resolving),
    )
    if resolving is not None and (found is None or resolving.id > found.id or resolving.state.active):
        show_task(store, dataset, resolving, key=RESOLVE, render=_resolved)
    if found is None:
        st.caption("Exact and near-duplicates waste training budget and over-weight what they repeat.")


def _duplicate_groups(store: Store, dataset: str, params: dict[str, Any], result: dict[str, Any], slot: Any, resolving: Task | None) -> None:
    groups = [DuplicateGroup.model_validate(g) for g in result.get("groups", [])]
    if not groups:
        st.success("No duplicates at this threshold.", icon=":material/check:")
        return
    total = int(result.get("group_count", len(groups)))
    doomed = int(result.get("duplicate_count", sum(len(g.example_ids) - 1 for g in groups)))
    slot.button(
        f"Keep one of each ({plural(doomed, 'deletion')})", key="datasets.resolve_all", type="primary", width="stretch",
        on_click=start_task, args=(store, "resolve_duplicates", dataset, params, RESOLVE),
        disabled=(resolving is not None and resolving.state.active) or not can_change(),
        help="Deletes all but the suggested keeper of every group; undoable."
        + ("" if can_change() else " " + why_not("resolve duplicates")),
    )
    st.markdown(f"**{plural(total, 'group')}** holding {plural(doomed + total, 'example')}. The suggested keeper is "
                "the accepted, best-rated, highest-quality member (the oldest on a tie).")
    for i, group in enumerate(groups[:GROUPS_SHOWN]):
        _group(store, dataset, i, group)
    if total > GROUPS_SHOWN:
        st.caption(f"{total - GROUPS_SHOWN} more groups are not shown; 'Keep one of each' resolves them all.")


def _resolved(result: Any, _task: Task) -> None:
    st.success(f"Deleted {plural(result['deleted'], 'duplicate')}. Undo is at the top of this tab.", icon=":material/check_circle:")


def _group(store: Store, dataset: str, index: int, group: DuplicateGroup) -> None:
    label = f"Group {index + 1}: {group.kind.value}, {len(group.example_ids)} examples, similarity ≥ {group.similarity:.2f}"
    with st.expander(label):
        rows = []
        for example_id in group.example_ids:
            try:
                example = datasets.get_example(store, example_id)
            except WorkbenchError:
                continue  # deleted since the groups were found
            first = next((m.content for m in example.messages if m.role.value == "user"), "")
            rows.append({"id": example_id, "split": example.split.value, "review": example.review_state.value,
                         "rating": example.rating, "first user turn": first[:200]})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        cols = st.columns([2, 1], vertical_alignment="bottom")
        keep = cols[0].radio("Keep", group.example_ids, index=group.example_ids.index(group.keep), horizontal=True,
                             key=f"datasets.keep_{index}", format_func=lambda i: f"#{i}")
        cols[1].button("Keep this one, delete the rest", key=f"datasets.resolve_{index}", width="stretch",
                       disabled=not can_change(), on_click=_resolve, args=(store, dataset, [group.model_copy(update={"keep": keep})]))


def _resolve(store: Store, dataset: str, groups: list[DuplicateGroup]) -> None:
    run_action("clean.duplicates", duplicates.resolve_duplicates, store, dataset, groups,
               success=lambda n: f"Deleted {plural(n, 'duplicate')}. Undo is at the top of this tab.")


# ----------------------------------------------------------------------------------------- leakage


def _leakage(store: Store, dataset: str) -> None:
    st.subheader(":material/call_split: Leakage between splits", anchor=False)
    task = task_panel(store, dataset, "leakage", {"threshold": st.session_state.get(THRESHOLD, 0.8)}, key="datasets.find_leakage",
                      label="Check leakage", icon=":material/search:", render=_leaks)
    if task is None:
        st.caption("An evaluation example that (nearly) repeats a training example inflates every score measured on it. "
                   "Uses the similarity threshold above.")


def _leaks(result: dict[str, Any], _task: Task) -> None:
    pairs = result.get("pairs", [])
    total = int(result.get("pair_count", len(pairs)))
    if not total:
        st.success("No example repeats across splits.", icon=":material/check:")
        return
    st.warning(f"{plural(total, 'pair')} of examples repeat across splits.", icon=":material/warning:")
    example_table(pd.DataFrame(pairs), key="datasets.leakage_table")
    if total > len(pairs):
        st.caption(f"The first {len(pairs):,} of {total:,} pairs are listed.")


# -------------------------------------------------------------------------------------- guardrails


def _guardrails(store: Store, dataset: str) -> None:
    st.subheader(":material/policy: Guardrail rules", anchor=False)
    show_flash("clean.rules")
    rules = cleaning.list_rules(store)
    writable = can_change()
    if not rules:
        st.caption("No rules yet. A rule flags a regular expression or a list of words in the turns it looks at.")
    if not writable:
        read_only_caption("add, change or delete guardrail rules; you can run them")
    for rule in rules:
        cols = st.columns([0.6, 5, 0.8], vertical_alignment="center")
        cols[0].toggle("on", value=rule.enabled, key=f"datasets.rule_enabled_{rule.id}", label_visibility="collapsed",
                       on_change=_toggle_rule, args=(store, rule.id), help="Disabled rules are kept but not checked.",
                       disabled=not writable)
        cols[1].markdown(
            f"**{escape_markdown(rule.name)}** · {rule.kind.value} · {rule.scope.value} · "
            f"{':red[block]' if rule.action is RuleAction.BLOCK else ':orange[warn]'}  \n"
            f":gray[{escape_markdown(' '.join(rule.pattern.split())[:160])}]"
            + (f"  \n{escape_markdown(rule.message)}" if rule.message else "")
        )
        cols[2].button("Delete", icon=":material/delete:", key=f"datasets.rule_delete_{rule.id}",
                       on_click=_ask_delete, args=(rule.id,), disabled=not writable)
        if writable and st.session_state.get(RULE_DELETE) == rule.id:
            _confirm_delete(store, rule)
    if writable:
        _add_rule_form(store)
    enabled = sorted(r.id for r in rules if r.enabled)
    fingerprint = cleaning.rules_fingerprint([r for r in rules if r.enabled])  # a rule edited or an id reused: not the kept result
    task_panel(store, dataset, "guardrails", {"rule_ids": enabled, "rules": fingerprint}, key="datasets.run_rules", label="Run rules",
               icon=":material/play_arrow:", primary=True, disabled=not enabled,
               render=lambda result, _task: _rule_report(store, GuardrailReport.model_validate(result)))


def _rule_report(store: Store, report: GuardrailReport) -> None:
    cols = st.columns(3)
    cols[0].metric("Pass rate", f"{report.pass_rate:.1%}", help="Examples with no 'block' match.")
    cols[1].metric("Failing", f"{report.failing_count:,}", help=f"of {report.checked:,} checked")
    cols[2].metric("Passed with warnings", f"{report.warning_count:,}")
    quiet = [c.rule_name for c in report.rule_counts if not c.matches]
    if quiet:
        st.caption(f"No matches for {', '.join(escape_markdown(name) for name in quiet)}.")
    _groups(store, group_violations(report), "rule", RULE_GROUP)


def _confirm_delete(store: Store, rule: GuardrailRule) -> None:
    # Rules are global: one click on one dataset's tab must not silently change every other's checks.
    count = len(datasets.list_datasets(store))
    with st.container(border=True):
        st.warning(
            f"Rule **{escape_markdown(rule.name)}** belongs to no single dataset: deleting it removes it from the checks of "
            f"every dataset ({plural(count, 'dataset')} in this workspace). To stop it for now, switch it off instead.",
            icon=":material/warning:",
        )
        cols = st.columns([2, 1, 3])
        cols[0].button(
            "Delete for every dataset", key="datasets.rule_delete_confirm", type="primary", on_click=_delete_rule,
            args=(store, rule),
        )
        cols[1].button("Cancel", key="datasets.rule_delete_cancel", on_click=_ask_delete, args=(None,))


def _ask_delete(rule_id: int | None) -> None:
    st.session_state[RULE_DELETE] = rule_id


def _delete_rule(store: Store, rule: GuardrailRule) -> None:
    st.session_state.pop(RULE_DELETE, None)
    run_action("clean.rules", cleaning.delete_rule, store, rule.id, success=f"Rule {escape_markdown(rule.name)} deleted.")


def _groups(store: Store, groups: list[FindingGroup], noun: str, key: str) -> None:
    """One row per kind or rule with exact counts and sample matches; pick one to list where it occurs."""
    if not groups:
        return
    rules = noun == "rule"
    st.dataframe(
        pd.DataFrame(
            [
                {noun: g.name, **({"action": g.action} if rules else {}), "findings": g.findings, "examples": g.examples,
                 "e.g.": " · ".join(" ".join(t.split())[:60] for t in g.samples)}
                for g in groups
            ]
        ),
        hide_index=True, width="stretch",
        column_config={"findings": st.column_config.NumberColumn("matches" if rules else "findings", format="localized"),
                       "examples": st.column_config.NumberColumn(format="localized")},
    )
    names = [None, *range(len(groups))]
    chosen = st.selectbox(
        f"Where each {noun} occurs", names, key=key, placeholder=f"Choose a {noun}",
        format_func=lambda i: f"Choose a {noun}" if i is None else f"{groups[i].name} ({plural(groups[i].findings, 'finding')})",
    )
    if chosen is None or chosen >= len(groups):
        return
    group = groups[chosen]
    labels = datasets.part_labels(store, [(r.example_id, r.where) for r in group.rows])
    example_table(
        pd.DataFrame([{"example_id": r.example_id, "where": label, "text": r.text} for r, label in zip(group.rows, labels, strict=True)]),
        key=f"{key}_table",
    )
    if group.findings > len(group.rows):
        st.caption(f"The first {len(group.rows):,} of {group.findings:,} are listed.")


def _toggle_rule(store: Store, rule_id: int) -> None:
    enabled = st.session_state[f"datasets.rule_enabled_{rule_id}"]
    run_action("clean.rules", cleaning.set_rule_enabled, store, rule_id, enabled,
               success=f"Rule {'enabled' if enabled else 'disabled'}.")


def _add_rule_form(store: Store) -> None:
    with st.expander("Add a rule", icon=":material/add:"), st.form("datasets.rule_form", border=False):
        cols = st.columns([2, 1, 1, 1])
        cols[0].text_input("Name", key="datasets.rule_name", help=field_help(GuardrailRule, "name"))
        cols[1].selectbox("Kind", [k.value for k in RuleKind], key="datasets.rule_kind", help=field_help(GuardrailRule, "kind"))
        cols[2].selectbox("Looks at", [s.value for s in RuleScope], key="datasets.rule_scope", help=field_help(GuardrailRule, "scope"))
        cols[3].selectbox("Action", [a.value for a in RuleAction], key="datasets.rule_action", help=field_help(GuardrailRule, "action"))
        st.text_area("Pattern", key="datasets.rule_pattern", height=80, help=field_help(GuardrailRule, "pattern"))
        cols = st.columns([3, 1], vertical_alignment="bottom")
        cols[0].text_input("Message", key="datasets.rule_message", help=field_help(GuardrailRule, "message"))
        cols[1].checkbox("Case-sensitive", key="datasets.rule_case", help=field_help(GuardrailRule, "case_sensitive"))
        st.form_submit_button("Add rule", icon=":material/add:", key="datasets.rule_submit", on_click=_add_rule, args=(store,))


def _add_rule(store: Store) -> None:
    state = st.session_state
    pattern = state["datasets.rule_pattern"]
    regex = state["datasets.rule_kind"] == RuleKind.REGEX.value
    added = run_action(
        "clean.rules", cleaning.add_rule, store, name=state["datasets.rule_name"],
        regex=pattern if regex else None, words=None if regex else pattern, scope=state["datasets.rule_scope"],
        action=state["datasets.rule_action"], message=state["datasets.rule_message"], case_sensitive=state["datasets.rule_case"],
        success=lambda rule: f"Rule {escape_markdown(rule.name)} added.",
    )
    if added is not None:
        # The next rule starts from an empty form; a rejected one keeps what was typed, to fix it.
        state.update(RULE_FORM_DEFAULTS)
