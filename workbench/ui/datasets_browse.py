"""Browse tab: filters, the paginated table, bulk actions on the filtered selection, the open example."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from workbench.domain.example import Split
from workbench.domain.filters import ExampleFilter
from workbench.errors import WorkbenchError
from workbench.services import datasets
from workbench.services.datasets import BulkAction
from workbench.ui import datasets_example
from workbench.ui.datasets_access import can_change, read_only_caption
from workbench.ui.datasets_filters import (
    PAGE,
    PAGER,
    TAB,
    clear_filters,
    current_filter,
    filter_widgets,
    set_page,
)
from workbench.ui.widgets import escape_markdown, plural, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

PAGE_SIZE = 50
EXAMPLE_ID, TABLE, PAGE_IDS = "datasets.example_id", "datasets.table", "datasets.page_ids"
BULK_ACTION, BULK_TAG, BULK_SPLIT = "datasets.bulk_action", "datasets.bulk_tag", "datasets.bulk_split"
BULK_CONFIRM = "datasets.bulk_confirm"
BULK_LABELS = {
    BulkAction.TAG: "Add a tag",
    BulkAction.ACCEPT: "Accept",
    BulkAction.REJECT: "Reject",
    BulkAction.MOVE_TO_SPLIT: "Move to split",
    BulkAction.DELETE: "Delete",
}


def render(store: Store, dataset: str) -> None:
    """Draw the Browse tab for one dataset."""
    facets = datasets.facets(store, dataset)
    flt = filter_widgets(facets)
    try:
        result = datasets.browse(store, dataset, flt, page=st.session_state.get(PAGE, 1), page_size=PAGE_SIZE)
    except WorkbenchError as exc:
        # A filter that ran into the query time limit, say: the filters above stay, to narrow it.
        st.error(str(exc), icon=":material/error:")
        return
    if result.page != st.session_state.get(PAGE, 1):
        set_page(result.page)  # past the end (after a delete, or a shared link): the last page is shown

    head = st.columns([4, 1], vertical_alignment="center")
    first = (result.page - 1) * result.page_size + 1
    head[0].markdown(
        f"**{result.total:,}** matching example{'s' if result.total != 1 else ''}"
        + (f" · showing {first:,}-{first + len(result.examples) - 1:,}" if result.total else "")
        + ("" if flt.is_empty() else " · filtered")
    )
    head[1].button("Clear filters", icon=":material/filter_alt_off:", key="datasets.clear_filters",
                   on_click=clear_filters, disabled=flt.is_empty(), width="stretch")
    _bulk(store, dataset, flt, result.total)

    if not result.examples:
        st.info(
            "Nothing matches these filters. Search matches whole words and word beginnings: try a shorter word, "
            "loosen a filter, or press Clear filters."
            if not flt.is_empty()
            else "This dataset has no examples. Add some from the Import tab.",
            icon=":material/search_off:",
        )
    else:
        _table(result.examples)
        if result.pages > 1:
            # The service clamps a page past the end (after a delete, say); redraw the pager on that page.
            if st.session_state.get(PAGER, result.page) != result.page:
                del st.session_state[PAGER]
            st.pagination(result.pages, key=PAGER, default=result.page, on_change=_paged)
    _open_example(store, dataset, flt, result.page, list(facets.tags))


def _table(examples: list) -> None:
    frame = datasets.examples_frame(examples)
    st.session_state[PAGE_IDS] = frame["id"].tolist()
    st.dataframe(
        frame, key=TABLE, on_select=_row_selected, selection_mode="single-row", hide_index=True, width="stretch",
        column_config={
            "id": st.column_config.NumberColumn("id", width="small", format="%d"),
            "preview": st.column_config.TextColumn("First user turn", width="large"),
            "turns": st.column_config.NumberColumn("turns", width="small"),
            "tokens": st.column_config.NumberColumn("tokens", width="small"),
            "rating": st.column_config.TextColumn("rating", width="small"),
            "pii": st.column_config.NumberColumn("PII", width="small", help="PII findings"),
            "checks": st.column_config.TextColumn("checks", width="small", help="Format checks at import"),
        },
    )
    st.caption("Select a row to open the example below.")


def _paged() -> None:
    set_page(st.session_state[PAGER], from_pager=True)


def _row_selected() -> None:
    rows = st.session_state[TABLE].selection.rows
    ids = st.session_state.get(PAGE_IDS, [])
    if rows and rows[0] < len(ids):
        st.session_state[EXAMPLE_ID] = ids[rows[0]]
        _example_changed()


def _example_changed() -> None:
    example_id = st.session_state.get(EXAMPLE_ID)
    if example_id:
        st.query_params["example"] = str(example_id)
    else:
        st.query_params.pop("example", None)


def example_table(frame: pd.DataFrame, key: str, id_column: str = "example_id", **options: Any) -> None:
    """Show a table elsewhere on the page whose row, once selected, opens that example in Browse."""
    ids = [int(i) if pd.notna(i) else None for i in frame[id_column]]
    if not any(ids):
        st.dataframe(frame, key=key, hide_index=True, width="stretch", **options)
        return
    st.dataframe(
        frame, key=key, on_select=partial(_open_from_table, key, ids), selection_mode="single-row",
        hide_index=True, width="stretch", **options,
    )
    st.caption("Select a row to open that example in the Browse tab.")


def _open_from_table(key: str, ids: list[int | None]) -> None:
    rows = st.session_state[key].selection.rows
    if rows and rows[0] < len(ids) and ids[rows[0]] is not None:
        st.session_state[EXAMPLE_ID] = ids[rows[0]]
        _example_changed()
        st.session_state[TAB] = "Browse"
        st.query_params["tab"] = "Browse"


def _open_example(store: Store, dataset: str, flt: ExampleFilter, page: int, known_tags: list[str]) -> None:
    if EXAMPLE_ID not in st.session_state:
        wanted = st.query_params.get("example", "")
        st.session_state[EXAMPLE_ID] = int(wanted) if wanted.isdigit() else None
    st.divider()
    cols = st.columns([1, 4], vertical_alignment="bottom")
    example_id = cols[0].number_input(
        "Open example by id", min_value=1, step=1, key=EXAMPLE_ID, on_change=_example_changed, placeholder="id",
    )
    if example_id is None:
        cols[1].caption("Select a row in the table, or type an example id.")
        return
    neighbours = datasets.neighbours(store, dataset, flt, int(example_id), page=page, page_size=PAGE_SIZE)
    datasets_example.render(
        store, datasets.get_dataset(store, dataset), int(example_id), known_tags, neighbours=neighbours, on_step=_step,
    )


def _step(example_id: int, page: int) -> None:
    """Open a neighbouring example, turning the table's page when it lies on the next or previous one."""
    st.session_state[EXAMPLE_ID] = example_id
    _example_changed()
    if page != st.session_state.get(PAGE, 1):
        set_page(page)


# -------------------------------------------------------------------------------------------- bulk


def _bulk(store: Store, dataset: str, flt: ExampleFilter, total: int) -> None:
    if not can_change():
        read_only_caption("run bulk actions on them")
        return
    last = datasets.last_bulk(store, dataset)
    with st.expander(f"Bulk actions on the {plural(total, 'matching example')}", icon=":material/checklist:",
                     expanded=last is not None):
        show_flash("browse.bulk")
        if flt.is_empty():
            st.caption("No filter is set, so an action applies to the whole dataset.")
        cols = st.columns([1.3, 1.5, 1.2], vertical_alignment="bottom")
        action = cols[0].selectbox("Action", list(BULK_LABELS), key=BULK_ACTION, format_func=BULK_LABELS.get)
        ready = total > 0
        if action is BulkAction.TAG:
            ready &= bool(cols[1].text_input("Tag", key=BULK_TAG, placeholder="e.g. needs-review").strip())
        elif action is BulkAction.MOVE_TO_SPLIT:
            cols[1].selectbox("Split", [s.value for s in Split], key=BULK_SPLIT)
        elif action is BulkAction.DELETE:
            ready &= cols[1].checkbox(f"Yes, delete {plural(total, 'example')}", key=BULK_CONFIRM)
        cols[2].button(
            f"{BULK_LABELS[action]}: {plural(total, 'example')}", key="datasets.bulk_apply", disabled=not ready,
            type="primary", width="stretch", on_click=_apply_bulk, args=(store, dataset),
        )
        if last is not None:
            undo_button(store, dataset, "browse.bulk", last)


def undo_button(store: Store, dataset: str, scope: str, last: datasets.LastBulk | None = None) -> None:
    """Offer to undo the dataset's last bulk action (bulk edits, duplicate resolution), if one can be."""
    if not can_change():
        return
    last = last or datasets.last_bulk(store, dataset)
    if last is None:
        return
    if scope != "browse.bulk":
        show_flash(scope)
    what = " ".join(filter(None, (last.action.value, escape_markdown(last.detail))))
    st.button(
        f"Undo last bulk action ({what} on {plural(last.example_count, 'example')})",
        icon=":material/undo:", key="datasets.undo_" + scope.replace(".", "_"), on_click=run_action,
        args=(scope, datasets.undo_last_bulk, store, dataset),
        kwargs={"success": _undone},
    )


def _undone(result: datasets.BulkResult) -> str:
    """Say what an undo put back, and what it left because someone changed it after the action."""
    left = result.left_alone
    kept = f"; {plural(left, 'example')} changed since and {'was' if left == 1 else 'were'} left as {'it is' if left == 1 else 'they are'}"
    return f"Undone: {plural(result.affected, 'example')} restored{kept if left else ''}."


def _apply_bulk(store: Store, dataset: str) -> None:
    action = st.session_state[BULK_ACTION]
    value = {BulkAction.TAG: st.session_state.get(BULK_TAG, ""), BulkAction.MOVE_TO_SPLIT: st.session_state.get(BULK_SPLIT, "")}
    result = run_action(
        "browse.bulk", datasets.bulk, store, dataset, current_filter(), action, value.get(action, ""),
        success=lambda r: f"{BULK_LABELS[r.action]}: {plural(r.affected, 'example')} changed." if r.affected else "Nothing matched the filters.",
    )
    if result is not None:
        st.session_state[BULK_CONFIRM] = False
