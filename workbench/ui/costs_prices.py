"""Costs → Prices: the price table, editable in place; a new row for a model takes over from its effective day.

Saving sends the whole table to `cost_prices.save_prices`, which checks every row before writing any, so a bad
price says which row and field and nothing is half-saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from workbench.domain.access import Permission
from workbench.errors import WorkbenchError
from workbench.services import access, cost_prices
from workbench.ui.widgets import escape_markdown, flash, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

SCOPE, EDITOR = "costs.prices", "costs.prices_editor"
COLUMNS = ["id", "model", "provider", "match_pattern", "input_per_1m", "output_per_1m", "cached_input_per_1m",
           "training_per_1m", "pt_hourly", "effective_from", "effective_to", "source_url", "note", "created_by"]


def render(store: Store) -> None:
    show_flash(SCOPE)
    st.caption("USD per 1M tokens, and per model unit per hour for Provisioned Throughput. The table starts as a copy "
               "of the catalogue's prices (`created_by` catalogue). A price changed in a row applies from today (UTC): "
               "the row ends today and a new row of yours starts; to correct the past as well, change the row's "
               "`effective_from` too. Or add a row for a model with an `effective_from` day: from that day it replaces "
               "the model's row in force then, and ends where the model's next row starts (a row on a day that already "
               "starts one replaces it). A blank price cell keeps the price it had. An edited row becomes yours "
               "(`created_by` user). Past predictions keep the cost "
               "they were priced at on arrival; the Re-price tab shows what a change would have cost.")
    frame = pd.DataFrame([p.model_dump() for p in cost_prices.list_prices(store)], columns=COLUMNS)
    config = {
        "id": st.column_config.NumberColumn("id", disabled=True, width="small"),
        "created_by": st.column_config.TextColumn("created by", disabled=True),
        "source_url": st.column_config.LinkColumn("source"),
        # No min_value: the grid would clamp a typed "-5" to 5 before the check below could refuse it.
        **{name: st.column_config.NumberColumn(name.replace("_", " "), format="%.6g",
                                               help=cost_prices.PriceRow.model_fields[name].description)
           for name in ("input_per_1m", "output_per_1m", "cached_input_per_1m", "training_per_1m", "pt_hourly")},
    }
    if not access.can(Permission.COSTS_WRITE):
        st.dataframe(frame, hide_index=True, column_config=config, width="stretch", key=f"{EDITOR}.read")
        st.caption(cant_change("prices"))
        return
    edited = st.data_editor(frame, key=EDITOR, num_rows="dynamic", hide_index=True, column_config=config, width="stretch")
    if st.button("Save prices", icon=":material/save:", key="costs.prices_save"):
        _save(store, frame, edited)
        st.rerun()


def _save(store: Store, before: pd.DataFrame, after: pd.DataFrame) -> None:
    records: list[dict[str, Any]] = [
        {k: (None if _blank(v) else v) for k, v in row.items()} for row in after.to_dict(orient="records")
    ]
    kept = {int(r["id"]) for r in records if r.get("id") is not None}
    removed = [int(i) for i in before["id"] if int(i) not in kept]
    try:
        cost_prices.save_prices(store, records)
        for price_id in removed:
            cost_prices.delete_price(store, price_id)
    except WorkbenchError as exc:
        flash(SCOPE, escape_markdown(str(exc)), "error")
        return
    st.cache_data.clear()
    flash(SCOPE, f"Prices saved ({len(records)} rows" + (f", {len(removed)} deleted)." if removed else ")."))


def cant_change(what: str) -> str:
    """Why a form is missing: the actor's role reads costs but may not change them."""
    role = access.current().role
    return (f"Your role ({role.value if role else 'none'}) can read costs but not change {what}; "
            "an engineer, a PM or an admin can.")


def _blank(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
