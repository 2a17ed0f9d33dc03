"""Review page pieces: the reviewer and filters (sidebar), the item in hand (a fragment, so Save & next redraws
only it), the reviewer's recent reviews, agreement between reviewers, and the queue's settings.

Every text from a dataset or a model is shown through `exact_text`/`conversation` (st.code), never as HTML.
Signed in, the reviewer is the signed-in address (shown, not typed); controls a role may not use are left out
with a line saying why, and the service refuses them anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import streamlit as st

from workbench.domain.access import Permission
from workbench.domain.example import Example
from workbench.errors import WorkbenchError
from workbench.services import access, review
from workbench.services.review import QueueFilter, ReviewItem, ReviewSettings, SourceKind
from workbench.ui.widgets import (
    conversation,
    escape_markdown,
    exact_text,
    field_help,
    flash,
    run_action,
    show_flash,
)

if TYPE_CHECKING:
    from workbench.store import Store

P = "review."
REVIEWER, SOURCE, TASK, MODEL, WITH_REFERENCE = P + "reviewer", P + "source", P + "task", P + "model", P + "with_reference"
VERDICT, RATING, CATEGORIES, CUSTOM = P + "verdict", P + "rating", P + "categories", P + "custom"
CORRECTION, TARGET, NEW_TARGET, COMMENT = P + "correction", P + "target", P + "new_target", P + "comment"
SAVE, SKIP, OPEN, SHOWN, REOPEN, SCOPE = P + "save", P + "skip", P + "open", P + "shown", P + "reopen", "review"
ANY = "(any)"
TEXT_HEIGHT = 360
SETTINGS_FORM = P + "settings"


def sidebar(store: Store) -> tuple[str, QueueFilter] | None:
    """Draw the reviewer name and the queue filters; return them, or None (with the reason shown) when the name is bad."""
    signed_in = review.signed_in_reviewer()
    if signed_in is None:
        st.session_state.setdefault(REVIEWER, review.default_reviewer())
    facets = review.queue_facets(store)
    with st.sidebar:
        if signed_in is None:
            name = st.text_input("Reviewer", key=REVIEWER, help="Your name on every review you save; two people "
                                 "reviewing the same items are what agreement is measured on.")
        else:
            name = signed_in
            st.markdown(f"**Reviewer**  \n:material/badge: {escape_markdown(signed_in)}",
                        help="You are signed in: every review you save carries your address.")
        source = st.selectbox("Source", [ANY, *facets["source_kind"]], key=SOURCE)
        task = st.selectbox("Task type", [ANY, *facets["task_type"]], key=TASK,
                            format_func=lambda t: t or "(no task type)")
        model = st.selectbox("Model", [ANY, *facets["model_id"]], key=MODEL, format_func=lambda m: m or "(unknown)")
        with_reference = st.checkbox("Only items with a reference", key=WITH_REFERENCE,
                                     help=field_help(QueueFilter, "with_reference"))
        _settings_form(store)
    try:
        reviewer = review.check_reviewer(name)
    except WorkbenchError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/person_off:")
        return None
    flt = QueueFilter(
        source_kind=None if source == ANY else SourceKind(source), task_type=None if task == ANY else task,
        model_id=None if model == ANY else model, with_reference=with_reference,
    )
    return reviewer, flt


@st.fragment
def item_area(store: Store, reviewer: str, flt: QueueFilter) -> None:
    """Draw progress, the item in hand and the review form; saving or skipping redraws only this."""
    show_flash(SCOPE)
    try:
        view = review.queue_view(store, reviewer, flt, item_id=st.session_state.get(OPEN))
    except WorkbenchError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/error:")
        return
    share = view.done / view.total if view.total else 1.0
    st.progress(share, text=f"{view.done:,} of {view.total:,} done")
    if view.item is None:
        st.success("Nothing left to review here: every item under these filters has been reviewed or skipped by you.",
                   icon=":material/task_alt:")
        return
    item = view.item
    _fill_defaults(item, view)
    _header(item, view)
    _texts(item)
    if access.can(Permission.REVIEW_WORK):
        _form(store, reviewer, item, view)
    else:
        st.caption(f"Your role ({_role()}) can read the queue but not review it: rating, correcting and skipping "
                   "need the reviewer or engineer role.")


def _role() -> str:
    role = access.current().role
    return role.value if role else "none"


def _header(item: ReviewItem, view: review.QueueView) -> None:
    parts = [f"item #{item.id}", f"{item.source_kind.value} {item.source_id}", f"model {item.model_id or 'unknown'}",
             f"task {item.task_type or 'none'}"]
    if item.template_version_id is not None:
        parts.append(f"template version {item.template_version_id}")
    if item.dataset:
        parts.append(f"from {item.dataset}" + (f" #{item.example_id}" if item.example_id else ""))
    if view.double:
        parts.append("double review: a second reviewer rates it too")
    st.caption(escape_markdown(" · ".join(parts)))
    if view.review is not None:
        when = view.review.updated_at.replace("T", " ")[:16]
        st.info(f"You reviewed this item on {escape_markdown(when)}; saving replaces that review.", icon=":material/edit:")


def _texts(item: ReviewItem) -> None:
    cols = st.columns(3 if item.reference is not None else 2)
    with cols[0]:
        st.markdown("**Input**")
        with st.container(height=TEXT_HEIGHT):
            conversation(Example(system=item.system, messages=review.input_turns(item)))
    with cols[1]:
        st.markdown("**Output**")
        with st.container(height=TEXT_HEIGHT):
            exact_text(item.output)
    if item.reference is not None:
        with cols[2]:
            st.markdown("**Reference**")
            with st.container(height=TEXT_HEIGHT):
                exact_text(item.reference)


def _fill_defaults(item: ReviewItem, view: review.QueueView) -> None:
    """Reset the form for a newly shown item (or fill it from the reviewer's earlier review); keep the target dataset."""
    shown = (item.id, view.review.updated_at if view.review else None)
    if st.session_state.get(SHOWN) == shown:
        return
    st.session_state[SHOWN] = shown
    earlier = view.review if view.review is not None and not view.review.skipped else None
    known = set(review.ISSUE_CATEGORIES)
    categories = earlier.categories if earlier else []
    st.session_state[VERDICT] = earlier.verdict.value if earlier and earlier.verdict else None
    st.session_state[RATING] = earlier.rating if earlier else None
    st.session_state[CATEGORIES] = [c for c in categories if c in known]
    st.session_state[CUSTOM] = ", ".join(c for c in categories if c not in known)
    st.session_state[CORRECTION] = earlier.correction if earlier and earlier.correction else item.output
    st.session_state[COMMENT] = earlier.comment if earlier else ""
    if earlier and earlier.dataset:
        st.session_state[NEW_TARGET] = earlier.dataset


def _form(store: Store, reviewer: str, item: ReviewItem, view: review.QueueView) -> None:
    with st.form(P + "form", border=True):
        cols = st.columns([1, 2])
        cols[0].radio("Verdict", ["good", "bad"], key=VERDICT, index=None, horizontal=True,
                      format_func=lambda v: {"good": "👍 good", "bad": "👎 bad"}[v])
        cols[1].radio("Rating", [1, 2, 3, 4, 5], key=RATING, index=None, horizontal=True,
                      help="1 unusable, 3 acceptable with edits, 5 could not be better.")
        cols = st.columns([2, 1])
        cols[0].multiselect("Issues", list(review.ISSUE_CATEGORIES), key=CATEGORIES)
        cols[1].text_input("Other issues", key=CUSTOM, placeholder="comma-separated")
        st.text_area("Correction", key=CORRECTION, height=200,
                     help="Pre-filled with the output: edit it into the answer the model should have given. Left as it "
                          "is, no correction is saved. A correction becomes a training example in the dataset below.")
        if view.review is not None and view.review.dataset and view.review.example_id:
            st.caption(f"Your correction landed in {escape_markdown(view.review.dataset)} as example "
                       f"#{view.review.example_id}.")
        cols = st.columns(3)
        targets = review.correction_targets(store, item)
        if st.session_state.get(TARGET) not in targets:
            st.session_state[TARGET] = targets[0]
        cols[0].selectbox("Correction goes to", targets, key=TARGET,
                          help="A dataset not created yet is created when the first correction lands in it.")
        cols[1].text_input("or a new dataset", key=NEW_TARGET, placeholder="name")
        cols[2].text_input("Comment", key=COMMENT)
        cols = st.columns([1, 1, 4])
        cols[0].form_submit_button("Save & next", key=SAVE, type="primary", icon=":material/check:",
                                   on_click=_save, args=(store, reviewer, item.id))
        cols[1].form_submit_button("Skip", key=SKIP, icon=":material/skip_next:", on_click=_skip,
                                   args=(store, reviewer, item.id))
        cols[2].caption("Enter in a one-line field, or Ctrl+Enter in the correction, saves.")


def _save(store: Store, reviewer: str, item_id: int) -> None:
    state = st.session_state
    if state.get(VERDICT) is None:
        flash(SCOPE, "Pick a verdict (good or bad) before saving, or Skip the item.", "warning")
        return
    custom = [c for c in str(state.get(CUSTOM) or "").split(",") if c.strip()]
    saved = _act(
        review.save_review, store, item_id, reviewer, verdict=state[VERDICT], rating=state.get(RATING),
        categories=[*state.get(CATEGORIES, []), *custom], correction=state.get(CORRECTION),
        comment=str(state.get(COMMENT) or ""), dataset=str(state.get(NEW_TARGET) or "").strip() or state.get(TARGET),
        success=lambda r: escape_markdown(r.summary()),
    )
    if saved is not None:
        state.pop(OPEN, None)


def _skip(store: Store, reviewer: str, item_id: int) -> None:
    if _act(review.skip, store, item_id, reviewer, success=lambda _: f"Skipped item #{item_id}.") is not None:
        st.session_state.pop(OPEN, None)


def _act(fn: Callable[..., Any], /, *args: Any, success: Callable[[Any], str], **kwargs: Any) -> Any:
    """Run a write from the item form and leave its outcome for the fragment's next draw.

    Not `run_action`: its toast is an element, which a callback of a fragment rerun must not draw.
    """
    try:
        result = fn(*args, **kwargs)
    except WorkbenchError as exc:
        flash(SCOPE, escape_markdown(str(exc)), "error")
        return None
    st.cache_data.clear()
    flash(SCOPE, success(result))
    return result


def recent(store: Store, reviewer: str) -> None:
    """List the reviewer's latest reviews, with a way to reopen one and change it."""
    mine = review.my_reviews(store, reviewer)
    with st.expander(f"Your recent reviews ({len(mine)})", icon=":material/history:"):
        if not mine:
            st.caption("None yet.")
            return
        st.dataframe(review.reviews_frame(mine), hide_index=True, width="stretch")
        cols = st.columns([1, 3])
        cols[0].selectbox("Item", [r.item_id for r in mine], key=REOPEN, label_visibility="collapsed")
        cols[1].button("Reopen to change", key=P + "reopen_go", icon=":material/edit:", on_click=_reopen)


def _reopen() -> None:
    st.session_state[OPEN] = st.session_state[REOPEN]


def agreement(store: Store) -> None:
    """Show how far reviewers agree on the double-reviewed items, and where they do not."""
    result = review.agreement(store)
    with st.expander(f"Agreement ({result.items} items double-reviewed)", icon=":material/group:"):
        cols = st.columns(4)
        cols[0].metric("Double-reviewed", f"{result.items:,}")
        cols[1].metric("Verdicts agree", "n/a" if result.verdict_agreement is None else f"{result.verdict_agreement:.0%}")
        cols[2].metric("Verdict kappa", _kappa(result.verdict_kappa), help=field_help(review.Agreement, "verdict_kappa"))
        cols[3].metric("Rating kappa", _kappa(result.rating_kappa), help=field_help(review.Agreement, "rating_kappa"))
        st.caption("Cohen's kappa: 1 is perfect agreement, 0 no better than chance; above 0.6 is usually read as "
                   "substantial (Landis & Koch, 1977). Ratings use quadratic weights, so 4 against 5 counts as a near miss.")
        for note in result.notes:
            st.caption(escape_markdown(note))
        if result.disagreements:
            st.dataframe(review.disagreements_frame(result), hide_index=True, width="stretch")
        elif result.items:
            st.caption("No disagreements.")


def _kappa(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _settings_form(store: Store) -> None:
    if not access.can(Permission.REVIEW_MANAGE):
        st.caption(f"Queue settings: your role ({_role()}) cannot change them.")
        return
    settings = review.get_settings(store)
    with st.expander("Queue settings", icon=":material/tune:"), st.form(SETTINGS_FORM, border=False):
        st.number_input("Double review (% of items)", 0, 100, round(settings.double_review_share * 100),
                        key=P + "share", help=field_help(ReviewSettings, "double_review_share"))
        st.number_input("Retrain at corrections", 1, 100_000, settings.retrain_corrections,
                        key=P + "corrections", help=field_help(ReviewSettings, "retrain_corrections"))
        st.number_input("Retrain at bad verdicts (%)", 1, 100, round(settings.retrain_bad_share * 100),
                        key=P + "bad", help=field_help(ReviewSettings, "retrain_bad_share"))
        st.number_input("Latest reviews counted", 1, 100_000, settings.retrain_window, key=P + "window",
                        help=field_help(ReviewSettings, "retrain_window"))
        st.form_submit_button("Save settings", key=P + "settings_save", on_click=_save_settings, args=(store,))
    show_flash(SCOPE + ".settings")


def _save_settings(store: Store) -> None:
    state = st.session_state
    run_action(
        SCOPE + ".settings", review.set_settings, store, double_review_share=state[P + "share"] / 100,
        retrain_corrections=int(state[P + "corrections"]), retrain_bad_share=state[P + "bad"] / 100,
        retrain_window=int(state[P + "window"]), success="Queue settings saved.",
    )
