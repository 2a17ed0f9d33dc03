"""One example, opened from the Browse table: the conversation, labels, PII, checks, edits and history."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from workbench.domain.example import Example, Message, ReviewState, Role, ValidationStatus
from workbench.errors import InvalidInput, NotFound, WorkbenchError
from workbench.services import cleaning, datasets
from workbench.ui.widgets import conversation, escape_markdown, field_help, flash, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

RATING, TAGS, NOTES = "datasets.label_rating", "datasets.label_tags", "datasets.label_notes"
SYSTEM, TURNS = "datasets.edit_system", "datasets.edit_turns"
LOADED, REVISION = "datasets.example_loaded", "datasets.revision"
SCOPE = "browse.example"
REVIEW_BUTTONS = {
    ReviewState.ACCEPTED: ("Accept", ":material/check:"),
    ReviewState.REJECTED: ("Reject", ":material/close:"),
    ReviewState.PENDING: ("Pending", ":material/undo:"),
}


def render(store: Store, dataset_id: int, example_id: int, known_tags: list[str]) -> None:
    """Show example `example_id`, with every control that changes it."""
    try:
        example = datasets.get_example(store, example_id)
    except NotFound:
        st.warning(f"There is no example {example_id}; it may have been deleted.")
        return
    if example.dataset_id != dataset_id:
        st.warning(f"Example {example_id} belongs to another dataset.")
        return
    _seed(example)

    st.subheader(f"Example {example.id}", anchor=False)
    st.caption(
        f"split **{example.split.value}** · review **{example.review_state.value}** · "
        f"rating **{example.rating or 'none'}** · **{example.token_count:,}** tokens · "
        f"revision {example.revision}" + (f" · line {example.source_line} of the imported file" if example.source_line else "")
    )
    show_flash(SCOPE)
    left, right = st.columns([3, 2], gap="large")
    with left:
        conversation(example)
        _pii(store, example)
        _checks(example)
    with right:
        _labels(store, example, known_tags)
        st.markdown("**Metadata**")
        st.json(example.metadata, expanded=1)
    _edit(store, example)
    _history(store, example)


def _seed(example: Example) -> None:
    # Widgets keep their own state across reruns; when the stored example changes (another example
    # opened, an edit, a bulk action), put the stored values back into them.
    token = (example.id, example.rating, tuple(example.tags), example.notes, example.content_hash)
    if st.session_state.get(LOADED) == token:
        return
    st.session_state[LOADED] = token
    st.session_state[RATING] = example.rating
    st.session_state[TAGS] = list(example.tags)
    st.session_state[NOTES] = example.notes
    st.session_state[SYSTEM] = example.system or ""
    st.session_state.pop(TURNS, None)
    st.session_state.pop(REVISION, None)


# ------------------------------------------------------------------------------------------ labels


def _labels(store: Store, example: Example, known_tags: list[str]) -> None:
    st.markdown("**Label**")
    st.segmented_control(
        "Rating", [1, 2, 3, 4, 5], key=RATING, format_func=lambda n: f"{n} ★",
        on_change=_rate, args=(store, example.id), help="Reviewer rating, 1 (bad) to 5 (excellent); click the chosen one again to clear it.",
    )
    cols = st.columns(3)
    for col, (state, (label, icon)) in zip(cols, REVIEW_BUTTONS.items(), strict=True):
        col.button(
            label, icon=icon, key=f"datasets.review_{state.value}", width="stretch",
            disabled=example.review_state is state,
            type="primary" if state is ReviewState.ACCEPTED else "secondary",
            on_click=run_action, args=(SCOPE, datasets.label, store, example.id),
            kwargs={"review_state": state, "success": f"Example {example.id}: {state.value}."},
        )
    with st.form("datasets.label_form", border=False):
        st.multiselect(
            "Tags", sorted(set(known_tags) | set(example.tags)), key=TAGS, accept_new_options=True,
            placeholder="Choose or type a new tag",
        )
        st.text_area("Notes", key=NOTES, height=80, placeholder="What a reviewer should know about this example")
        st.form_submit_button(
            "Save tags and notes", icon=":material/save:", key="datasets.label_save", on_click=_save_labels, args=(store, example.id),
        )


def _rate(store: Store, example_id: int) -> None:
    rating = st.session_state[RATING]
    run_action(
        SCOPE, datasets.label, store, example_id, rating=rating,
        success=f"Example {example_id}: " + (f"rated {rating}." if rating else "rating cleared."),
    )


def _save_labels(store: Store, example_id: int) -> None:
    run_action(
        SCOPE, datasets.label, store, example_id, tags=st.session_state[TAGS], notes=st.session_state[NOTES],
        success=f"Example {example_id}: tags and notes saved.",
    )


# -------------------------------------------------------------------------------------- PII, checks


def _pii(store: Store, example: Example) -> None:
    if not example.pii:
        return
    with st.container(border=True):
        head = st.columns([3, 1], vertical_alignment="center")
        head[0].markdown(f":red-background[**{len(example.pii)} PII finding{'s' if len(example.pii) != 1 else ''}**] highlighted above")
        head[1].button(
            "Scrub PII", icon=":material/cleaning_services:", key="datasets.scrub", width="stretch",
            help="Replace each finding with a typed placeholder such as [EMAIL], in place.",
            on_click=run_action, args=(SCOPE, cleaning.scrub, store, example.id),
            kwargs={"success": f"Example {example.id}: PII replaced with placeholders."},
        )
        st.dataframe(
            pd.DataFrame([{"kind": f.kind, "where": f.where, "text": f.text} for f in example.pii]),
            hide_index=True, width="stretch",
        )


def _checks(example: Example) -> None:
    if not example.validation_messages:
        return
    box = st.error if example.validation_status is ValidationStatus.ERROR else st.warning
    box("\n".join(f"- {escape_markdown(m)}" for m in example.validation_messages), icon=":material/rule:")


# ------------------------------------------------------------------------------------------- edits


def _edit(store: Store, example: Example) -> None:
    with st.expander("Edit turns", icon=":material/edit:"), st.form("datasets.edit_form", border=False):
        st.text_area("System prompt", key=SYSTEM, height=90, help=field_help(Example, "system"))
        frame = pd.DataFrame(
            [{"role": m.role.value, "content": m.content, "weight": m.weight} for m in example.messages],
            columns=["role", "content", "weight"],
        )
        edited = st.data_editor(
            frame, key=TURNS, num_rows="dynamic", hide_index=True, width="stretch",
            column_config={
                "role": st.column_config.SelectboxColumn("Role", options=[r.value for r in Role], required=True, width="small"),
                "content": st.column_config.TextColumn("Content", required=True, width="large"),
                "weight": st.column_config.NumberColumn("Weight", min_value=0, max_value=1, step=1, help=field_help(Message, "weight")),
            },
        )
        st.caption("Add a row for a new turn; select rows and press Delete to remove turns. Saving keeps the old text as a revision.")
        if st.form_submit_button("Save as new revision", icon=":material/save:", key="datasets.edit_save"):
            try:
                messages = [_message(row) for row in edited.to_dict("records") if str(row.get("content") or "").strip()]
                saved = datasets.edit_turns(store, example.id, st.session_state[SYSTEM], messages)
            except WorkbenchError as exc:
                st.error(str(exc))
                return
            st.cache_data.clear()
            flash(SCOPE, f"Example {example.id}: saved as revision {saved.revision}." if saved.revision != example.revision else "Nothing changed.")
            st.rerun()


def _message(row: dict[str, Any]) -> Message:
    weight = row.get("weight")
    if weight is None or (isinstance(weight, float) and math.isnan(weight)):
        weight = None
    try:
        return Message(role=Role(row.get("role") or "user"), content=str(row["content"]), weight=weight)
    except ValueError as exc:
        raise InvalidInput(f"turn {row.get('content')!r:.40}: {exc}") from exc


def _history(store: Store, example: Example) -> None:
    revisions = datasets.revisions(store, example.id)
    if not revisions:
        return
    with st.expander(f"Revision history ({len(revisions)} earlier)", icon=":material/history:"):
        index = st.selectbox(
            "Revision", range(len(revisions)), key=REVISION,
            format_func=lambda i: f"revision {revisions[i]['revision']} (replaced {revisions[i]['created_at'][:16].replace('T', ' ')} UTC)",
        )
        chosen = revisions[index or 0]
        conversation(Example(system=chosen["system"], messages=chosen["messages"]), highlight_pii=False)
