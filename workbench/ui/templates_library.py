"""Library tab: every template, one template's versions and content, label moves, and new versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from workbench.domain.access import Permission
from workbench.domain.templates import (
    DEFAULT_MODEL,
    DEFAULT_TASK,
    SUGGESTED_LABELS,
    ModelSettings,
    TemplateVersion,
)
from workbench.services import templates
from workbench.ui.permits import may
from workbench.ui.templates_common import TEMPLATE, pick_version
from workbench.ui.widgets import escape_markdown, exact_text, field_help, flash, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

VERSION = "templates.version"
FORM = "templates.form."
FIELDS = ("name", "task", "system", "user", "model", "temperature", "max_tokens", "message")
LABEL, CUSTOM_LABEL, LABEL_TARGET = "templates.label", "templates.label_custom", "templates.label_version"
CUSTOM = "custom…"
CREATE, MOVE, STARTERS = "templates.create", "templates.move_label", "templates.starters"


def render(store: Store, name: str | None) -> None:
    """Draw the Library tab; `name` is the template picked above the tabs (None when there are none)."""
    summaries = templates.list_templates(store)
    if not summaries:
        st.info("No templates yet. Install the starter library (summaries, action items, risk, Q&A with citations and the "
                "demo tasks) or write one below.", icon=":material/waving_hand:")
        if not may(Permission.TEMPLATES_WRITE, "write templates"):
            return
        st.button("Install starter templates", key=STARTERS, icon=":material/library_add:", type="primary",
                  on_click=run_action, args=(STARTERS, templates.install_starters, store),
                  kwargs={"success": lambda added: f"Installed {len(added)} starter templates."})
        show_flash(STARTERS)
        _create_form(store, None)
        return
    show_flash(STARTERS)
    st.dataframe(pd.DataFrame([{
        "name": s.template.name, "task type": s.template.task_type, "latest version": s.latest, "versions": s.versions,
        "labels": ", ".join(f"{label} → {number}" for label, number in sorted(s.labels.items())), "model": s.model,
        "description": s.template.description,
    } for s in summaries]), hide_index=True, width="stretch")
    if name is None:
        return
    wanted = st.query_params.get("version")
    version = pick_version(store, name, VERSION, default=int(wanted) if wanted and wanted.isdigit() else None,
                           container=st.columns([1, 3])[0], on_change=_version_changed)
    st.query_params["version"] = str(version.version)
    _versions(store, name)
    _content(version)
    if not may(Permission.TEMPLATES_WRITE, "move labels or write versions"):
        return
    _labels(store, name, version)
    _create_form(store, version)


def _version_changed() -> None:
    """Start the new-version form from the version now shown."""
    st.query_params["version"] = str(st.session_state[VERSION])
    for key in [k for k in st.session_state if str(k).startswith(FORM) or k == LABEL_TARGET]:
        del st.session_state[key]


def _versions(store: Store, name: str) -> None:
    detail = templates.template_detail(store, name)
    st.subheader(f"Versions of {escape_markdown(name)}", anchor=False)
    if detail.template.description:
        st.caption(escape_markdown(detail.template.description))
    st.dataframe(pd.DataFrame([{
        "version": v.version, "commit message": v.commit_message, "created": v.created_at[:16].replace("T", " "),
        "by": v.created_by or "", "labels": ", ".join(v.labels), "model": v.settings.model,
    } for v in reversed(detail.versions)]), hide_index=True, width="stretch")
    if detail.moves:
        with st.expander(f"Label history ({len(detail.moves)} moves)", icon=":material/history:"):
            st.dataframe(pd.DataFrame([{
                "label": m.label, "from": m.from_version, "to": m.to_version, "moved": m.moved_at[:16].replace("T", " "),
                "by": m.moved_by or "",
            } for m in detail.moves]), hide_index=True, width="stretch")


def _content(version: TemplateVersion) -> None:
    st.subheader(f"Version {version.version}", anchor=False)
    left, right = st.columns([3, 2])
    with left:
        st.caption("System template")
        exact_text(version.system_template)
        st.caption("User template")
        exact_text(version.user_template)
        if version.cot_instruction:
            st.caption("Chain-of-thought instruction (appended to the system prompt)")
            exact_text(version.cot_instruction)
    with right:
        st.caption("Variables")
        st.markdown(", ".join(f"`{v}`" for v in version.variables) or "none")  # names are letters, digits and '_'
        st.caption("Model settings")
        settings = version.settings.model_dump()
        st.dataframe(pd.DataFrame([{"setting": k, "value": "" if v is None else str(v)} for k, v in settings.items()]),
                     hide_index=True, width="stretch")
        st.caption(f"Few-shot pairs: {len(version.few_shot)}")
        for i, shot in enumerate(version.few_shot):
            with st.expander(f"Pair {i + 1}" + (f" · from {escape_markdown(shot.source)}" if shot.source else "")):
                st.caption("user")
                exact_text(shot.input)
                st.caption("assistant")
                exact_text(shot.output)


def _labels(store: Store, name: str, version: TemplateVersion) -> None:
    st.subheader("Move a label", anchor=False)
    detail = templates.template_detail(store, name)
    numbers = sorted((v.version for v in detail.versions), reverse=True)
    if st.session_state.get(LABEL_TARGET) not in numbers:
        st.session_state[LABEL_TARGET] = version.version
    custom = sorted(set(detail.labels) - {*SUGGESTED_LABELS, "latest"})
    cols = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
    label = cols[0].selectbox("Label", [*SUGGESTED_LABELS, *custom, CUSTOM], key=LABEL)
    if label == CUSTOM:
        cols[1].text_input("New label", key=CUSTOM_LABEL, placeholder="e.g. experiment-b")
    cols[2].selectbox("To version", numbers, key=LABEL_TARGET)
    cols[3].button("Move label", key=MOVE, icon=":material/label:", on_click=_move, args=(store, name), width="stretch")
    show_flash(MOVE)
    st.caption("`latest` always points at the newest version and moves by itself.")


def _move(store: Store, name: str) -> None:
    label = st.session_state.get(LABEL)
    if label == CUSTOM:
        label = str(st.session_state.get(CUSTOM_LABEL) or "")
    number = int(st.session_state[LABEL_TARGET])
    run_action(MOVE, templates.set_label, store, name, number, str(label),
               moved_by=templates.current_user(),
               success=lambda move: f"{escape_markdown(str(label))} now points at version {number}." if move else
               f"{escape_markdown(str(label))} already pointed at version {number}.")


def _defaults(version: TemplateVersion | None) -> dict[str, Any]:
    settings = version.settings if version else ModelSettings(model=DEFAULT_MODEL)
    return {
        "name": version.template if version else "", "task": DEFAULT_TASK, "system": version.system_template if version else "",
        "user": version.user_template if version else "{{ input }}", "model": settings.model,
        "temperature": float(settings.temperature), "max_tokens": int(settings.max_tokens), "message": "",
    }


def _create_form(store: Store, version: TemplateVersion | None) -> None:
    st.subheader("New version" if version else "New template", anchor=False)
    st.caption("Saving under the current name adds a version (few-shot pairs and other settings carry over); a new name "
               "starts a new template. Templates are Jinja2, rendered in a sandbox: `{{ input }}`, `{% if ... %}`, filters.")
    defaults = _defaults(version)
    if version is not None:
        defaults["task"] = templates.template_detail(store, version.template).template.task_type
    for field, value in defaults.items():
        st.session_state.setdefault(FORM + field, value)
    with st.form("templates.create_form", border=True):
        cols = st.columns(2)
        cols[0].text_input("Name", key=FORM + "name", help="Letters, digits, '.', '_' or '-'; a new name makes a new template.")
        cols[1].text_input("Task type", key=FORM + "task", help="e.g. summarisation, qa, geo-compliance")
        st.text_area("System template", key=FORM + "system", height=120)
        st.text_area("User template", key=FORM + "user", height=160)
        cols = st.columns(3)
        cols[0].text_input("Model", key=FORM + "model", help=field_help(ModelSettings, "model"))
        cols[1].number_input("Temperature", min_value=0.0, max_value=2.0, step=0.1, key=FORM + "temperature",
                             help=field_help(ModelSettings, "temperature"))
        cols[2].number_input("Max tokens", min_value=1, max_value=200_000, step=64, key=FORM + "max_tokens",
                             help=field_help(ModelSettings, "max_tokens"))
        st.text_input("Commit message", key=FORM + "message", placeholder="What changed and why")
        st.form_submit_button("Save version", key=CREATE, icon=":material/save:", type="primary", on_click=_create,
                              args=(store,))
    show_flash(CREATE)


def _create(store: Store) -> None:
    values = {field: st.session_state.get(FORM + field) for field in FIELDS}
    created = run_action(
        CREATE, templates.create_version, store, str(values["name"] or ""), user_template=str(values["user"] or ""),
        system_template=str(values["system"] or ""), task_type=str(values["task"] or DEFAULT_TASK),
        settings={"model": str(values["model"] or "").strip() or None, "temperature": values["temperature"],
                  "max_tokens": values["max_tokens"]},
        commit_message=str(values["message"] or ""), created_by=templates.current_user(), success=_created_words,
    )
    if created is None:
        return
    version = created.version
    st.session_state[TEMPLATE] = version.template
    st.query_params["template"] = version.template
    st.query_params["version"] = str(version.version)
    for key in [k for k in st.session_state if str(k).startswith((FORM, VERSION)) or k == LABEL_TARGET]:
        del st.session_state[key]
    st.session_state[VERSION] = version.version
    if not created.created:
        flash(CREATE, f"Nothing changed: version {version.version} already holds exactly this, so no version was made.",
              "warning")


def _created_words(created: templates.CreatedVersion) -> str:
    ref = escape_markdown(created.version.ref)
    if created.new_template:
        return f"Created template {escape_markdown(created.version.template)} with version 1 ({ref})."
    return f"Saved {ref}." if created.created else f"No change: {ref} is the same."
