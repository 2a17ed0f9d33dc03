"""Audit page pieces: filters over the trail, one page of events newest first, an event's details, and a CSV.

The trail grows with every change anyone makes, so the page counts the matching events and reads one page of
them (`limit`/`offset`), never the whole trail; the CSV reads the filtered events in batches when asked for.
Every value from the trail is shown as data (a table cell, st.code), never as Markdown.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd
import streamlit as st
from pydantic import BaseModel

from workbench.errors import WorkbenchError
from workbench.services import access, audit
from workbench.store.audit import AuditEvent
from workbench.ui.widgets import escape_markdown, exact_text, plural

if TYPE_CHECKING:
    from workbench.store import Store

P = "audit."
ACTOR, ACTION, OUTCOME, TARGET, DATES, PAGE, DETAIL = (
    P + "actor", P + "action", P + "outcome", P + "target", P + "dates", P + "page", P + "detail")
ANY = "(any)"
PAGE_SIZE = 50
CSV_BATCH = audit.MAX_LIMIT
OUTCOME_MARKS = {"ok": "✓ ok", "refused": "⛔ refused"}
COLUMNS = ["id", "when", "actor", "role", "via", "action", "target", "outcome", "detail"]


class AuditFilter(BaseModel):
    """The filters as the audit service takes them (None: any)."""

    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    target: str | None = None
    since: str | None = None
    until: str | None = None

    def query(self) -> dict[str, Any]:
        return self.model_dump()


def render(store: Store) -> None:
    """Draw the filters, the counts, one page of events, an event's details and the CSV download."""
    flt = filters(store)
    total = audit.count(store, **flt.query())
    refused = total if flt.outcome == "refused" else (
        0 if flt.outcome == "ok" else audit.count(store, **(flt.query() | {"outcome": "refused"})))
    cols = st.columns(3)
    cols[0].metric("Events", f"{total:,}")
    cols[1].metric("Refused", f"{refused:,}", help="Attempts a role was not allowed: a page opened, a change tried.")
    pages = max(1, -(-total // PAGE_SIZE))
    page = cols[2].number_input("Page", 1, pages, 1, key=PAGE, help=f"{PAGE_SIZE} events a page") if pages > 1 else 1
    if refused and flt.outcome != "refused":
        st.warning(f"{plural(refused, 'refused attempt')} under these filters: they show as ⛔ refused.",
                   icon=":material/block:")
    shown = audit.events(store, **flt.query(), limit=PAGE_SIZE, offset=(int(page) - 1) * PAGE_SIZE)
    if not shown:
        st.info("No events match these filters." if total == 0 else "No events on this page.", icon=":material/info:")
        return
    st.dataframe(style(events_frame(shown)), hide_index=True, width="stretch", key=P + "table",
                 column_config={"detail": st.column_config.TextColumn("detail", width="large")})
    st.caption(f"Events {(int(page) - 1) * PAGE_SIZE + 1:,}-{(int(page) - 1) * PAGE_SIZE + len(shown):,} of "
               f"{total:,} (page {int(page):,} of {pages:,}), newest first. Times are UTC.")
    _details(shown)
    st.download_button(
        f"Download the {plural(total, 'filtered event')} as CSV", access.bind(lambda: csv_of(store, flt)),
        file_name="audit-events.csv", mime="text/csv", key=P + "csv", icon=":material/download:", on_click="ignore",
    )


def filters(store: Store) -> AuditFilter:
    """Draw the filter row and return what it selects; a bad date range is said and ignored."""
    actors, actions = audit.actors(store), audit.actions(store)
    areas = sorted({a.split(".", 1)[0] for a in actions if "." in a})
    cols = st.columns([2, 2, 1, 2, 2])
    actor = cols[0].selectbox("Actor", [ANY, *actors], key=ACTOR, on_change=_first_page)
    action = cols[1].selectbox("Action or area", [ANY, *areas, *actions], key=ACTION, on_change=_first_page,
                               format_func=lambda a: a if a == ANY or "." in a else f"{a}.* (every {a} action)")
    outcome = cols[2].selectbox("Outcome", [ANY, "ok", "refused"], key=OUTCOME, on_change=_first_page,
                                format_func=lambda o: OUTCOME_MARKS.get(o, o))
    target = cols[3].text_input("Target", key=TARGET, placeholder="example:12, job:7, user:ana@acme.com",
                                on_change=_first_page, help="One target exactly, as the table shows it.")
    dates = cols[4].date_input("Dates", value=(), key=DATES, on_change=_first_page, format="YYYY-MM-DD",
                               help="A day or a range of days (UTC); empty: any time.")
    since, until = _range(dates)
    return AuditFilter(actor=None if actor == ANY else actor, action=None if action == ANY else action,
                       outcome=None if outcome == ANY else outcome, target=target.strip() or None,
                       since=since, until=until)


def _range(dates: Any) -> tuple[str | None, str | None]:
    """Return [since, until) for the picked days: a one-day pick (a range being chosen) means that day."""
    picked = [d for d in (dates if isinstance(dates, (tuple, list)) else (dates,)) if isinstance(d, date)]
    if not picked:
        return None, None
    first, last = picked[0], picked[-1]
    return first.isoformat(), (last + timedelta(days=1)).isoformat()


def _first_page() -> None:
    st.session_state.pop(PAGE, None)


def events_frame(events: list[AuditEvent]) -> pd.DataFrame:
    """Return events as table rows: the detail as compact JSON text, the outcome marked."""
    return pd.DataFrame(
        [{"id": e.id, "when": e.ts.replace("T", " ")[:19], "actor": e.actor, "role": e.role or "", "via": e.via,
          "action": e.action, "target": e.target, "outcome": OUTCOME_MARKS.get(e.outcome, e.outcome),
          "detail": _detail(e)} for e in events],
        columns=COLUMNS,
    )


def _detail(event: AuditEvent) -> str:
    return orjson.dumps(event.detail, default=str).decode() if event.detail else ""


def style(frame: pd.DataFrame) -> Any:
    """Tint refused rows, so refusals stand out in a page of ordinary events."""
    refused = OUTCOME_MARKS["refused"]

    def tint(row: pd.Series) -> list[str]:
        return ["background-color: rgba(255, 75, 75, 0.15)" if row["outcome"] == refused else ""] * len(row)

    return frame.style.apply(tint, axis=1)


def _details(shown: list[AuditEvent]) -> None:
    with st.expander("Event details", icon=":material/data_object:"):
        chosen = st.selectbox("Event", [e.id for e in shown], key=DETAIL,
                              format_func=lambda i: _label(next(e for e in shown if e.id == i)))
        event = next((e for e in shown if e.id == chosen), shown[0])
        st.caption(escape_markdown(f"{event.ts} · {event.actor} ({event.role or 'no role'}, via {event.via}) · "
                                   f"{event.action} {event.target} · {event.outcome}"))
        exact_text(orjson.dumps(event.detail, option=orjson.OPT_INDENT_2, default=str).decode())


def _label(event: AuditEvent) -> str:
    return f"#{event.id} {event.action} {event.target} by {event.actor} ({event.outcome})"


def csv_of(store: Store, flt: AuditFilter) -> str:
    """Return every event under the filters as CSV, newest first, read in batches."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "ts", "actor", "role", "via", "action", "target", "outcome", "detail"])
    offset, seen = 0, set()
    while True:
        batch = audit.events(store, **flt.query(), limit=CSV_BATCH, offset=offset)
        for e in batch:
            # Events written while this runs push older ones down a batch: they come round again, never skipped.
            if e.id in seen:
                continue
            seen.add(e.id)
            writer.writerow([_csv_safe(str(v)) for v in (e.id, e.ts, e.actor, e.role or "", e.via, e.action,
                                                         e.target, e.outcome, _detail(e))])
        if len(batch) < CSV_BATCH:
            return out.getvalue()
        offset += CSV_BATCH


def _csv_safe(text: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (a detail or target can hold what a user typed)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def safe_render(store: Store) -> None:
    """Draw the page, showing a refusal or a bad filter as a message rather than a traceback."""
    try:
        render(store)
    except WorkbenchError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/error:")
