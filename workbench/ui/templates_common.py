"""What the Templates tabs share: the template picker, version pickers, variable inputs and the rendered prompt.

Everything a template or a model wrote is user text: it is shown with st.code, st.text or escaped
markdown, never as HTML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from workbench.domain.templates import RenderedPrompt, TemplateVersion
from workbench.services import datasets, templates
from workbench.ui.widgets import escape_markdown, exact_text

if TYPE_CHECKING:
    from workbench.store import Store

TAB = "templates.tab"
TEMPLATE = "templates.template"
TYPED, FROM_EXAMPLE = "Type them", "From a dataset example"


def pick_template(store: Store) -> str | None:
    """Draw the template picker (its choice kept in the URL); None when the library is empty."""
    names = [s.template.name for s in templates.list_templates(store)]
    if not names:
        return None
    if st.session_state.get(TEMPLATE) not in names:
        wanted = st.query_params.get("template")
        if wanted and wanted not in names:
            st.warning(f"There is no template called {escape_markdown(wanted)}; showing {escape_markdown(names[0])} instead.")
        st.session_state[TEMPLATE] = wanted if wanted in names else names[0]
    cols = st.columns([2, 3], vertical_alignment="bottom")
    name = cols[0].selectbox("Template", names, key=TEMPLATE, on_change=_template_changed)
    if st.query_params.get("template") != name:
        st.query_params["template"] = name
    return str(name)


def _template_changed() -> None:
    st.query_params["template"] = st.session_state[TEMPLATE]
    st.query_params.pop("version", None)
    for key in [k for k in st.session_state if str(k).startswith(("templates.version", "templates.form.", "templates.diff_"))]:
        del st.session_state[key]


def version_label(version: TemplateVersion) -> str:
    """Say which version an option is: `3 · production, latest · tighter wording`."""
    parts = [str(version.version)]
    if version.labels:
        parts.append(", ".join(version.labels))
    if version.commit_message:
        parts.append(version.commit_message[:60])
    return " · ".join(parts)


def pick_version(store: Store, name: str, key: str, *, label: str = "Version", default: int | None = None,
                 container: Any = None, on_change: Any = None) -> TemplateVersion:
    """Draw a version picker for one template, newest first; return the chosen version."""
    detail = templates.template_detail(store, name)
    by_number = {v.version: v for v in detail.versions}
    numbers = sorted(by_number, reverse=True)
    if st.session_state.get(key) not in by_number:
        st.session_state[key] = default if default in by_number else numbers[0]
    chosen = (container or st).selectbox(label, numbers, key=key, format_func=lambda n: version_label(by_number[n]),
                                             on_change=on_change)
    return by_number[int(chosen)]


def all_refs(store: Store) -> list[str]:
    """Every version of every template as NAME@N, newest versions first."""
    refs: list[str] = []
    for summary in templates.list_templates(store):
        refs += [f"{summary.template.name}@{n}" for n in range(summary.latest or 0, 0, -1)]
    return refs


def variables_input(store: Store, version: TemplateVersion, prefix: str) -> tuple[dict[str, Any], str | None, int | None]:
    """Draw the variable inputs: typed, one per variable the version uses, or a dataset example.

    Return (typed variables, dataset, example id): what `templates.render` and `templates.diff` take.
    """
    source = st.radio("Variables", [TYPED, FROM_EXAMPLE], key=f"{prefix}.source", horizontal=True,
                      help="A dataset example offers input (its last user turn), reference (its last assistant turn), "
                           "system, messages and each of its metadata keys.")
    if source == FROM_EXAMPLE:
        names = [d.name for d in datasets.list_datasets(store)]
        if not names:
            st.info("There are no datasets yet: type the variables instead.", icon=":material/info:")
            return {}, None, None
        cols = st.columns([2, 1])
        dataset = cols[0].selectbox("Dataset", names, key=f"{prefix}.dataset")
        example_id = cols[1].number_input("Example id", min_value=1, step=1, value=None, key=f"{prefix}.example",
                                          placeholder="e.g. 12", help="The id the Datasets page shows for an example.")
        if example_id is None:
            st.caption("Give an example id to render on it.")
        return {}, str(dataset), int(example_id) if example_id is not None else None
    if not version.variables:
        st.caption("This version uses no variables.")
        return {}, None, None
    typed: dict[str, Any] = {}
    cols = st.columns(min(2, len(version.variables)))
    for i, variable in enumerate(version.variables):
        typed[variable] = cols[i % len(cols)].text_area(variable, key=f"{prefix}.var.{variable}", height=100)
    return typed, None, None


def show_prompt(rendered: RenderedPrompt) -> None:
    """Show exactly what the model is sent: the system text, then each turn, as text."""
    st.caption("system")
    if rendered.system is None:
        st.caption("(no system prompt)")
    else:
        exact_text(rendered.system)
    for i, turn in enumerate(rendered.messages):
        st.caption(escape_markdown(f"turn {i + 1} · {turn.role}"))
        exact_text(turn.content)


def show_tokens(rendered: RenderedPrompt) -> None:
    """Tokens per part and in all, with how far the count can be trusted."""
    tokens = rendered.tokens
    parts = [("system", tokens.system)] + [(f"turn {i + 1} · {t.role}", n) for i, (t, n) in
                                           enumerate(zip(rendered.messages, tokens.messages, strict=True))]
    cols = st.columns([1, 2], vertical_alignment="top")
    cols[0].metric("Prompt tokens", f"{tokens.total:,}", help="With the chat format's per-turn overhead: what input is billed on.")
    cols[1].dataframe(pd.DataFrame(parts, columns=["part", "tokens"]), hide_index=True, width="stretch")
    st.caption(escape_markdown(f"Counted with {tokens.counter}."))


def show_costs(rendered: RenderedPrompt) -> None:
    """The cost of one call per priced model, the version's own model first; say when it has no price."""
    own = rendered.costs[0]
    if own.usd is None:
        st.warning(escape_markdown(own.note), icon=":material/price_change:")
    rows = [{
        "model": c.model, "name": c.label, "this version's model": c.template_model, "input tokens": c.input_tokens,
        "output tokens": c.output_tokens, "USD per call": c.usd, "input USD / 1K": c.input_usd_per_1k,
        "output USD / 1K": c.output_usd_per_1k, "price row": c.price_row, "effective": c.effective, "note": c.note,
    } for c in rendered.costs]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"USD per call": st.column_config.NumberColumn(format="$%.6f")})
    st.caption(f"Output is costed at {rendered.costs[0].output_tokens:,} tokens (the version's max tokens unless you gave "
               "an expected length). Prices are on-demand list prices from the catalogue.")
