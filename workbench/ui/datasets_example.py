"""One example, opened from the Browse table: the conversation, labels, PII, checks, edits and history.

What a reviewer types stays until they save it or open another example: each widget is put back to
the stored value only when that stored value changes (another example opened, a save, a bulk
action), so rating or accepting an example never wipes unsaved tags, notes or turn edits.

Every save carries the revision the page showed. When someone else saved the example since, the
service refuses it by name (`Conflict`); what this person typed is then kept as a draft (tags and
notes stay in their boxes, an edit of the turns stays in the editor) beside the stored values
now shown, so nothing is lost and they choose what to save again. Controls the person's role may
not use are disabled, with a caption saying why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd
import streamlit as st

from workbench.domain.access import Permission
from workbench.domain.example import Example, Message, ReviewState, Role, ValidationStatus
from workbench.domain.formats import FORMAT_LABELS, Format
from workbench.domain.locations import field_label, part_label, relabel_paths
from workbench.errors import Conflict, InvalidInput, NotFound, WorkbenchError
from workbench.services import access, cleaning, datasets
from workbench.services.datasets import Neighbours
from workbench.store.datasets import Dataset
from workbench.ui.widgets import conversation, escape_markdown, field_help, flash, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

RATING, TAGS, NOTES = "datasets.label_rating", "datasets.label_tags", "datasets.label_notes"
SYSTEM, TURNS = "datasets.edit_system", "datasets.edit_turns"
LOADED, REVISION = "datasets.example_loaded", "datasets.revision"
LABEL_DRAFT, EDIT_DRAFT = "datasets.label_draft", "datasets.edit_draft"
"""What a person typed when their save was refused because someone else changed the example first."""
VIEW, JSON_FORMAT = "datasets.example_view", "datasets.example_format"
SCOPE = "browse.example"
ANCHOR = "open-example"
VIEWS = ("Text", "Rendered", "JSON")
VIEW_HELP = (
    "Text: exactly as stored, every character. Rendered: read as Markdown (lists, code, emphasis). "
    "JSON: the record an export in the chosen format writes with Keep PII on (an export scrubs PII by default)."
)
REVIEW_BUTTONS = {
    ReviewState.ACCEPTED: ("Accept", ":material/check:"),
    ReviewState.REJECTED: ("Reject", ":material/close:"),
    ReviewState.PENDING: ("Pending", ":material/undo:"),
}
Step = Callable[[int, int], None]


def render(
    store: Store, dataset: Dataset, example_id: int, known_tags: list[str], *,
    neighbours: Neighbours | None = None, on_step: Step | None = None,
) -> None:
    """Show example `example_id`, with every control that changes it and, given `on_step`, previous/next."""
    try:
        example = datasets.get_example(store, example_id)
    except NotFound:
        st.warning(f"There is no example {example_id}; it may have been deleted.")
        return
    if example.dataset_id != dataset.id:
        st.warning(f"Example {example_id} belongs to another dataset.")
        return
    _seed(example)
    _header(example, neighbours or Neighbours(), on_step)
    show_flash(SCOPE)
    left, right = st.columns([3, 2], gap="large")
    with left:
        _content(store, example, dataset.source_format)
        _pii(store, example)
        _checks(example)
    with right:
        _labels(store, example, known_tags)
        st.markdown("**Metadata**")
        if example.metadata:
            st.json(example.metadata, expanded=1)
        else:
            st.caption("None: the record had no metadata or extra keys.")
    _edit(store, example)
    _history(store, example)


def _header(example: Example, neighbours: Neighbours, on_step: Step | None) -> None:
    cols = st.columns([4, 1, 1], vertical_alignment="center")
    cols[0].subheader(f"Example {example.id}", anchor=ANCHOR)
    if on_step is not None:
        for col, label, icon, target, page in (
            (cols[1], "Previous", ":material/arrow_back:", neighbours.previous, neighbours.previous_page),
            (cols[2], "Next", ":material/arrow_forward:", neighbours.next, neighbours.next_page),
        ):
            col.button(
                label, icon=icon, key=f"datasets.example_{label.lower()}", width="stretch", disabled=target is None,
                on_click=on_step, args=(target, page), help="The neighbouring example in the table's order and filters.",
            )
        if not neighbours.listed:
            cols[0].caption("Not on the table's current page: open it from the table to step through the list.")
    rating = f"{example.rating} ★" if example.rating else "unrated"
    st.caption(
        f"split **{example.split.value}** · review **{example.review_state.value}** · {rating} · "
        f"**{example.token_count:,}** tokens · revision {example.revision}"
        + (f" · line {example.source_line} of the imported file" if example.source_line else "")
    )
    _scroll_into_view(example.id or 0)


def _scroll_into_view(example_id: int) -> None:
    # Opening a row redraws the page where the reader was, below the fold; bring the example up.
    # The script changes with the id, so it runs once per example opened, not on every rerun.
    # Only a number of our own goes into it, never dataset text.
    st.html(
        f"<script>/* example {int(example_id)} */ setTimeout(() => window.parent.document"
        f".getElementById('{ANCHOR}')?.scrollIntoView({{behavior: 'smooth', block: 'start'}}), 150);</script>",
        unsafe_allow_javascript=True,
    )


def _seed(example: Example) -> None:
    # Widgets keep their own state across reruns. Put a stored value back into its widget only
    # when it differs from the one seeded last time: another example, or a change saved here or
    # elsewhere. A rating saved does not touch the notes being typed.
    stored = {RATING: example.rating, TAGS: list(example.tags), NOTES: example.notes, "content": example.content_hash}
    seen = st.session_state.get(LOADED)
    fresh = seen is None or seen.get("id") != example.id
    if fresh:  # a draft kept from a refused save belongs to the example it was typed on
        for draft in (LABEL_DRAFT, EDIT_DRAFT):
            if (st.session_state.get(draft) or {}).get("id") != example.id:
                st.session_state.pop(draft, None)
    labels_kept = _draft(LABEL_DRAFT, example) is not None
    for key, value in stored.items():
        if not fresh and seen.get(key) == value:
            continue
        if key in (TAGS, NOTES) and labels_kept:
            continue  # what they typed stays in the boxes; the stored values are shown beside them
        if key == "content":  # the turns were saved or scrubbed: the editor starts again from them (or the draft)
            edit = _draft(EDIT_DRAFT, example)
            st.session_state[SYSTEM] = (edit["system"] if edit else example.system) or ""
            st.session_state.pop(TURNS, None)
        else:
            st.session_state[key] = value
    if fresh:
        st.session_state.pop(REVISION, None)
    st.session_state[LOADED] = {"id": example.id, **stored}


# ----------------------------------------------------------------------------------------- content


def _content(store: Store, example: Example, source_format: str | None) -> None:
    cols = st.columns([1, 1], vertical_alignment="bottom")
    view = cols[0].segmented_control("Show", VIEWS, key=VIEW, default=VIEWS[0], required=True, help=VIEW_HELP)
    if view != "JSON":
        conversation(example, rendered=view == "Rendered")
        return
    formats = list(Format)
    if st.session_state.get(JSON_FORMAT) not in formats:
        st.session_state[JSON_FORMAT] = Format(source_format) if source_format in formats else Format.OPENAI
    fmt = cols[1].selectbox("Format", formats, key=JSON_FORMAT, format_func=lambda f: FORMAT_LABELS[Format(f)])
    try:
        out = datasets.record_json(store, example.id or 0, fmt)
    except WorkbenchError as exc:
        st.error(str(exc))
        return
    st.code(orjson.dumps(out.record, option=orjson.OPT_INDENT_2).decode(), language="json", wrap_lines=True)
    if out.losses:
        # Losses name canonical turns; label them as the conversation above does, not by the record's index.
        roles = [m.role.value for m in example.messages]
        st.warning(
            "Not carried into this format:\n"
            + "\n".join(f"- {escape_markdown(f'{field_label(loss.field, roles)}: {loss.reason}')}" for loss in out.lost),
            icon=":material/warning:",
        )


# ------------------------------------------------------------------------------------------ drafts


def _draft(key: str, example: Example) -> dict[str, Any] | None:
    """The draft kept under `key` for this example, if a save of it was refused."""
    draft = st.session_state.get(key)
    return draft if isinstance(draft, dict) and draft.get("id") == example.id else None


def _refused(exc: WorkbenchError) -> None:
    """Show why a save was refused; a conflict also says that what they typed is still here."""
    message = escape_markdown(str(exc))
    if isinstance(exc, Conflict):
        message += "\n\nWhat you typed is still here, beside the stored version: compare, then save again."
    flash(SCOPE, message, "error")


def role_caption(permission: Permission, what: str) -> str:
    """Say why a control is disabled: 'Your role (reviewer) can read datasets but not edit turns'."""
    actor = access.current()
    role = actor.role.value if actor.role else "none"
    return f"Your role ({role}) can read this example but not {what} (needs {permission.value})."


# ------------------------------------------------------------------------------------------ labels


def _labels(store: Store, example: Example, known_tags: list[str]) -> None:
    st.markdown("**Label**")
    allowed = access.can(Permission.LABELS_WRITE)
    if not allowed:
        st.caption(role_caption(Permission.LABELS_WRITE, "label it"))
    st.segmented_control(
        "Rating", [1, 2, 3, 4, 5], key=RATING, format_func=lambda n: f"{n} ★", disabled=not allowed,
        on_change=_rate, args=(store, example.id, example.revision),
        help="Reviewer rating, 1 (bad) to 5 (excellent); click the chosen one again to clear it.",
    )
    cols = st.columns(3)
    for col, (state, (label, icon)) in zip(cols, REVIEW_BUTTONS.items(), strict=True):
        col.button(
            label, icon=icon, key=f"datasets.review_{state.value}", width="stretch",
            disabled=example.review_state is state or not allowed,
            type="primary" if state is ReviewState.ACCEPTED else "secondary",
            on_click=run_action, args=(SCOPE, datasets.label, store, example.id),
            kwargs={"review_state": state, "expected_revision": example.revision, "success": f"Example {example.id}: {state.value}."},
        )
    # Not a form: a form's typed values live only in the browser until submitted, and a rating
    # click in between must not be able to lose them.
    typed_tags = [str(t) for t in st.session_state.get(TAGS) or []]
    st.multiselect(
        "Tags", sorted(set(known_tags) | set(example.tags) | set(typed_tags)), key=TAGS, accept_new_options=True,
        placeholder="Choose or type a new tag", disabled=not allowed,
    )
    st.text_area("Notes", key=NOTES, height=80, max_chars=datasets.MAX_NOTES_CHARS,
                 placeholder="What a reviewer should know about this example", disabled=not allowed)
    if _draft(LABEL_DRAFT, example) is not None:
        st.caption(
            "Stored now (after the other change): tags "
            + (escape_markdown(", ".join(example.tags)) if example.tags else "none")
            + " · notes " + (f"“{escape_markdown(example.notes)}”" if example.notes else "none")
        )
    unsaved = list(st.session_state.get(TAGS) or []) != list(example.tags) or (st.session_state.get(NOTES) or "") != example.notes
    if allowed:
        st.button(
            "Save tags and notes", icon=":material/save:", key="datasets.label_save", type="primary" if unsaved else "secondary",
            on_click=_save_labels, args=(store, example.id, example.revision), width="stretch",
        )  # never disabled: typed text reaches the server as the button is clicked, a disabled one would eat the click
    if unsaved and allowed:
        st.caption(":orange[Unsaved changes to tags or notes]")


def _rate(store: Store, example_id: int, revision: int) -> None:
    rating = st.session_state[RATING]
    try:
        datasets.label(store, example_id, rating=rating, expected_revision=revision)
    except WorkbenchError as exc:
        _refused(exc)
        seen = st.session_state.get(LOADED) or {}
        seen[RATING] = "refused"  # so the widget shows the stored rating again, not the one that was not saved
        return
    st.cache_data.clear()
    message = f"Example {example_id}: " + (f"rated {rating}." if rating else "rating cleared.")
    flash(SCOPE, message)
    st.toast(message, icon=":material/check:")


def _save_labels(store: Store, example_id: int, revision: int) -> None:
    tags, notes = list(st.session_state[TAGS] or []), st.session_state[NOTES] or ""
    try:
        datasets.label(store, example_id, tags=tags, notes=notes, expected_revision=revision)
    except WorkbenchError as exc:
        if isinstance(exc, Conflict):
            st.session_state[LABEL_DRAFT] = {"id": example_id, "tags": tags, "notes": notes}
        _refused(exc)
        return
    st.session_state.pop(LABEL_DRAFT, None)
    st.cache_data.clear()
    flash(SCOPE, f"Example {example_id}: tags and notes saved.")
    st.toast(f"Example {example_id}: tags and notes saved.", icon=":material/check:")


# -------------------------------------------------------------------------------------- PII, checks


def _pii(store: Store, example: Example) -> None:
    if not example.pii:
        return
    roles = [m.role.value for m in example.messages]
    with st.container(border=True):
        head = st.columns([3, 1], vertical_alignment="center")
        head[0].markdown(f":red-background[**{len(example.pii)} PII finding{'s' if len(example.pii) != 1 else ''}**]")
        head[1].button(
            "Scrub PII", icon=":material/cleaning_services:", key="datasets.scrub", width="stretch",
            disabled=not access.can(Permission.DATASETS_WRITE),
            help="Replace each finding with a typed placeholder such as [EMAIL], in place."
            + ("" if access.can(Permission.DATASETS_WRITE) else " " + role_caption(Permission.DATASETS_WRITE, "scrub it")),
            on_click=run_action, args=(SCOPE, cleaning.scrub, store, example.id),
            kwargs={"success": f"Example {example.id}: PII replaced with placeholders."},
        )
        st.dataframe(
            pd.DataFrame([{"kind": f.kind, "where": part_label(f.where, roles), "text": f.text} for f in example.pii]),
            hide_index=True, width="stretch",
        )


def _checks(example: Example) -> None:
    if not example.validation_messages:
        return
    roles = [m.role.value for m in example.messages]
    box = st.error if example.validation_status is ValidationStatus.ERROR else st.warning
    box("\n".join(f"- {escape_markdown(relabel_paths(m, roles))}" for m in example.validation_messages), icon=":material/rule:")


# ------------------------------------------------------------------------------------------- edits


def _edit(store: Store, example: Example) -> None:
    if not access.can(Permission.DATASETS_WRITE):
        st.caption(role_caption(Permission.DATASETS_WRITE, "edit its turns"))
        return
    draft = _draft(EDIT_DRAFT, example)
    with st.expander("Edit turns", icon=":material/edit:", expanded=draft is not None):
        if draft is not None:
            st.warning(
                "The editor holds your edit from before the other change; the conversation above is what is stored now. "
                "Save it again to replace theirs, or discard it.", icon=":material/merge:",
            )
            st.button("Discard my edit", key="datasets.edit_discard", on_click=_discard_edit)
        st.text_area("System prompt", key=SYSTEM, height=90, help=field_help(Example, "system"))
        # The index is each turn's position, so a saved row keeps what the table does not show
        # (tool calls, blocks, names); deleted rows drop out and added rows get new positions.
        frame = pd.DataFrame(
            [{"role": m.role.value, "content": m.content, "weight": m.weight} for m in _base_turns(example)],
            columns=["role", "content", "weight"],
        )
        st.data_editor(
            frame, key=TURNS, num_rows="dynamic", hide_index=True, width="stretch",
            column_config={
                "role": st.column_config.SelectboxColumn("Role", options=[r.value for r in Role], required=True, width="small"),
                "content": st.column_config.TextColumn("Content", required=True, width="large"),
                "weight": st.column_config.NumberColumn("Weight", min_value=0, max_value=1, step=1, help=field_help(Message, "weight")),
            },
        )
        st.caption("Add a row for a new turn; select rows and press Delete to remove turns. Saving keeps the old text as a revision.")
        st.button("Save as new revision", icon=":material/save:", key="datasets.edit_save", on_click=_save_edit, args=(store, example))


def _base_turns(example: Example) -> list[Message]:
    """The turns the editor starts from: the draft kept from a refused save, else the stored ones."""
    draft = _draft(EDIT_DRAFT, example)
    return [Message.model_validate(m) for m in draft["messages"]] if draft else example.messages


def _discard_edit() -> None:
    st.session_state.pop(EDIT_DRAFT, None)
    seen = st.session_state.get(LOADED) or {}
    seen["content"] = None  # the editor starts again from the stored turns


def _save_edit(store: Store, example: Example) -> None:
    messages: list[Message] | None = None
    try:
        messages = edited_messages(_base_turns(example), st.session_state.get(TURNS) or {})
        saved = datasets.edit_turns(
            store, example.id or 0, st.session_state[SYSTEM], messages, expected_revision=example.revision
        )
    except WorkbenchError as exc:
        if isinstance(exc, Conflict) and messages is not None:
            st.session_state[EDIT_DRAFT] = {
                "id": example.id, "system": st.session_state[SYSTEM], "messages": [m.model_dump(mode="json") for m in messages],
            }
            st.session_state.pop(TURNS, None)  # the editor is drawn from the draft now, which already holds these edits
        _refused(exc)
        return
    st.session_state.pop(EDIT_DRAFT, None)
    st.cache_data.clear()
    flash(SCOPE, f"Example {example.id}: saved as revision {saved.revision}." if saved.revision != example.revision else "Nothing changed.")


def edited_messages(original: list[Message], edits: dict[str, Any]) -> list[Message]:
    """Apply a data editor's edit state (edited, added and deleted rows) to the turns it was drawn from.

    An edited turn keeps everything the table does not show; a turn left without text is dropped
    unless it carries tool calls or media (an assistant turn that only calls a tool has no text).
    """
    deleted = set(edits.get("deleted_rows") or [])
    rows: list[tuple[Message | None, dict[str, Any]]] = []
    for i, message in enumerate(original):
        if i not in deleted:
            change = (edits.get("edited_rows") or {}).get(i) or (edits.get("edited_rows") or {}).get(str(i)) or {}
            rows.append((message, change))
    rows.extend((None, dict(added)) for added in edits.get("added_rows") or [])
    out = []
    for message, change in rows:
        content = str(change.get("content", message.content if message else "") or "")
        if not content.strip() and (message is None or not (message.tool_calls or message.blocks)):
            continue
        out.append(_message(message, change, content))
    return out


def _message(message: Message | None, change: dict[str, Any], content: str) -> Message:
    weight = change.get("weight", message.weight if message else None)
    if weight is None or (isinstance(weight, float) and math.isnan(weight)):
        weight = None
    try:
        role = Role(change.get("role") or (message.role.value if message else "user"))
        if message is None:
            return Message(role=role, content=content, weight=weight)
        return message.model_copy(update={"role": role, "content": content, "weight": weight})
    except ValueError as exc:
        raise InvalidInput(f"turn {content!r:.40}: {exc}") from exc


def _history(store: Store, example: Example) -> None:
    revisions = datasets.revisions(store, example.id or 0)
    if not revisions:
        return
    with st.expander(f"Revision history ({len(revisions)} earlier)", icon=":material/history:"):
        index = st.selectbox(
            "Revision", range(len(revisions)), key=REVISION,
            format_func=lambda i: f"revision {revisions[i]['revision']} (replaced {revisions[i]['created_at'][:16].replace('T', ' ')} UTC)",
        )
        chosen = revisions[index or 0]
        conversation(Example(system=chosen["system"], messages=chosen["messages"]))
