"""Render and Diff tabs: exactly what a model is sent, with tokens and cost; two versions on the same input."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.errors import WorkbenchError
from workbench.services import templates
from workbench.ui.templates_common import pick_version, show_costs, show_prompt, show_tokens, variables_input
from workbench.ui.widgets import escape_markdown

if TYPE_CHECKING:
    from workbench.store import Store

RENDER_VERSION, RENDER_VARS, EXPECTED = "templates.version_render", "templates.render", "templates.render_expected"
DIFF_A, DIFF_B, DIFF_VARS = "templates.diff_a", "templates.diff_b", "templates.diff_vars"


def render(store: Store, name: str | None) -> None:
    """Draw the Render tab for the template picked above the tabs."""
    if name is None:
        st.info("No templates yet: add one on the Library tab.", icon=":material/info:")
        return
    cols = st.columns([1, 1, 2], vertical_alignment="bottom")
    version = pick_version(store, name, RENDER_VERSION, container=cols[0])
    expected = cols[1].number_input(
        "Expected output tokens", min_value=0, max_value=200_000, value=None, step=50, key=EXPECTED,
        placeholder=f"{version.settings.max_tokens:,} (max tokens)", help="What the cost assumes the model writes; "
        "empty: the version's max tokens, the most a call can cost.",
    )
    typed, dataset, example_id = variables_input(store, version, RENDER_VARS)
    if dataset is not None and example_id is None:
        return
    empty = sorted(k for k, v in typed.items() if not str(v).strip())
    typed = {k: v for k, v in typed.items() if k not in empty}  # an empty box is not given: `is defined` sees that
    try:
        rendered = templates.render(store, version.ref, typed, dataset=dataset, example_id=example_id,
                                    expected_output_tokens=int(expected) if expected is not None else None)
    except WorkbenchError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/error:")
        return
    if empty:
        st.caption(escape_markdown(f"Left empty, so not given to the template: {', '.join(empty)}."))
    st.subheader("What the model sees", anchor=False)
    st.caption(escape_markdown(f"{rendered.template}@{rendered.version} · model {rendered.settings.model} · temperature "
                               f"{rendered.settings.temperature:g} · max tokens {rendered.settings.max_tokens:,}"))
    show_prompt(rendered)
    st.subheader("Tokens", anchor=False)
    show_tokens(rendered)
    st.subheader("Cost per call", anchor=False)
    show_costs(rendered)


def part_name(part: str) -> str:
    """Name a diffed part as the prompts above it do: `messages[2] (user)` is `turn 3 · user`."""
    turn = re.fullmatch(r"messages\[(\d+)\] \((\w+)\)", part)
    return f"turn {int(turn.group(1)) + 1} · {turn.group(2)}" if turn else part


def render_diff(store: Store, name: str | None) -> None:
    """Draw the Diff tab: two versions of the picked template rendered on the same input, part by part."""
    if name is None:
        st.info("No templates yet: add one on the Library tab.", icon=":material/info:")
        return
    detail = templates.template_detail(store, name)
    if len(detail.versions) < 2:
        st.info(f"{escape_markdown(name)} has one version: save another on the Library tab to diff them.", icon=":material/info:")
    numbers = sorted(v.version for v in detail.versions)
    cols = st.columns(2)
    a = pick_version(store, name, DIFF_A, label="Version A", default=numbers[-2] if len(numbers) > 1 else numbers[-1],
                     container=cols[0])
    b = pick_version(store, name, DIFF_B, label="Version B", default=numbers[-1], container=cols[1])
    both = sorted({*a.variables, *b.variables})
    typed, dataset, example_id = variables_input(store, a.model_copy(update={"variables": both}), DIFF_VARS)
    if dataset is not None and example_id is None:
        return
    typed = {k: v for k, v in typed.items() if str(v).strip()}
    try:
        diff = templates.diff(store, name, a.version, b.version, typed, dataset=dataset, example_id=example_id)
    except WorkbenchError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/error:")
        return
    changed = [p for p in diff.parts if p.changed]
    st.caption(f"{len(changed)} of {len(diff.parts)} parts differ" + (f"; settings differ: {', '.join(diff.settings)}"
                                                                       if diff.settings else "; settings are the same") + ".")
    left, right = st.columns(2)
    for column, rendered in ((left, diff.a), (right, diff.b)):
        with column:
            st.subheader(f"{escape_markdown(rendered.template)}@{rendered.version}", anchor=False)
            st.caption(f"{rendered.tokens.total:,} prompt tokens · model {escape_markdown(rendered.settings.model)}")
            show_prompt(rendered)
    if diff.settings:
        st.subheader("Settings", anchor=False)
        st.dataframe(pd.DataFrame([{"setting": k, f"version {a.version}": str(v[0]), f"version {b.version}": str(v[1])}
                                   for k, v in diff.settings.items()]), hide_index=True, width="stretch")
    st.subheader("Unified diff", anchor=False)
    for part in diff.parts:
        where = part_name(part.part)
        if not part.changed:
            st.caption(escape_markdown(f"{where}: unchanged"))
            continue
        st.caption(escape_markdown(f"{where}: changed"))
        st.code("\n".join(part.diff), language="diff", wrap_lines=True)
