"""Import tab: upload a file into a new or existing dataset, with progress, then what was kept and why not."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.domain.formats import FORMAT_LABELS, Format
from workbench.errors import WorkbenchError
from workbench.services import datasets
from workbench.services.import_process import import_upload
from workbench.services.importing import ImportResult, name_from_file
from workbench.ui.widgets import escape_markdown, field_help, plural

if TYPE_CHECKING:
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    from workbench.store import Store

UPLOAD, NAME, FORMAT = "datasets.upload", "datasets.import_name", "datasets.import_format"
RESULT = "datasets.import_result"
SWITCH_TO = "datasets.switch_to"
FORMATS = ["auto", *(f.value for f in Format)]


def render(store: Store, dataset: str | None) -> None:
    """Draw the import form; after an import, its report."""
    existing = [d.name for d in datasets.list_datasets(store)]
    with st.form("datasets.import_form", clear_on_submit=True):
        upload = st.file_uploader(
            "Training file", type=["jsonl", "gz", "json", "csv"], key=UPLOAD,
            help="JSON Lines (optionally .jsonl.gz), a JSON array, or CSV. Lines that cannot be read are "
            "reported and skipped; the rest are imported.",
        )
        cols = st.columns(2)
        name = cols[0].text_input(
            "Dataset", key=NAME, placeholder="blank: named after the file (tickets.jsonl → tickets)",
            help="A new name creates a dataset; an existing one adds to it, skipping examples it already holds. "
            "Left blank, the file's name is used: a blank name never adds to the dataset shown.",
        )
        fmt = cols[1].selectbox(
            "Format", FORMATS, key=FORMAT, format_func=lambda f: "Detect per line" if f == "auto" else FORMAT_LABELS[Format(f)],
            help="Leave on detect unless lines are ambiguous; a forced format reports lines that do not fit it.",
        )
        if existing:
            st.caption("Existing datasets: " + ", ".join(escape_markdown(n) for n in existing))
        submitted = st.form_submit_button("Import", icon=":material/upload:", type="primary", key="datasets.import_submit")
    if submitted:
        target = name.strip() or (name_from_file(upload.name) if upload else "")
        if upload is None:
            st.error("Choose a file to import.")
        else:
            _import(store, upload, target, fmt)
    report = st.session_state.get(RESULT)
    if isinstance(report, ImportResult):
        _report(report)
    if dataset:
        _history(store, dataset)


def _import(store: Store, upload: UploadedFile, name: str, fmt: str) -> None:
    size = max(upload.size, 1)
    bar = st.progress(0.0, text=f"Reading {upload.name}…")

    def progress(bytes_read: int) -> None:
        # Compressed uploads report bytes after decompression, which can pass the upload's size.
        bar.progress(min(bytes_read / size, 1.0), text=f"Read {bytes_read / 1e6:,.1f} MB of {upload.name}")

    try:
        # A large upload is imported in a child process, so this server's own settings never change.
        result = import_upload(store, upload, upload.name, name, fmt, progress=progress, size=upload.size)
    except WorkbenchError as exc:
        bar.empty()
        st.error(str(exc))
        return
    st.cache_data.clear()
    st.session_state[RESULT] = result
    if result.dataset_id is not None:
        # Show the dataset just written; the page applies this before drawing its picker.
        st.session_state[SWITCH_TO] = result.dataset
    if result.fault is None and not result.added_nothing:
        st.toast(f"Imported {plural(result.imported, 'example')} into {escape_markdown(result.dataset)}.", icon=":material/check:")
    st.rerun()


def _report(result: ImportResult) -> None:
    st.subheader(f"Last import: {escape_markdown(result.dataset)}", anchor=False)
    cols = st.columns([1, 1, 1, 2])
    cols[0].metric("Imported", f"{result.imported:,}")
    cols[1].metric("Duplicates skipped", f"{result.duplicates:,}", help=field_help(ImportResult, "duplicates"))
    cols[2].metric("Lines not imported", f"{result.error_count:,}", help=field_help(ImportResult, "errors"))
    cols[3].metric("Format", result.format or "-", help=field_help(ImportResult, "format"))
    if len(result.formats) > 1:
        st.caption("Lines per format: " + ", ".join(f"{k} {v:,}" for k, v in result.formats.items()))
    if result.fault is not None:
        st.warning(
            f"The file could not be read to its end: line {result.fault.line:,}: {escape_markdown(result.fault.message)}. "
            f"The {plural(result.imported, 'example')} before it were imported; fix or re-export the file and import it "
            "again to add the rest (examples already imported are skipped).",
            icon=":material/warning:",
        )
    elif result.added_nothing:
        st.error(
            f"Nothing was imported: none of the {result.lines_read:,} lines read could be imported. "
            "The reasons are listed below, line by line.",
            icon=":material/error:",
        )
    elif not result.error_count:
        st.success(f"Every one of the {result.lines_read:,} lines read was imported or already there.")
    if result.errors:
        st.markdown(f"**Lines not imported** ({result.error_count:,}" + (", first 1,000 shown)" if result.error_count > len(result.errors) else ")"))
        st.dataframe(pd.DataFrame([e.model_dump() for e in result.errors]), hide_index=True, width="stretch")
    if result.warnings:
        st.markdown(f"**Warnings** ({max(result.warning_count, len(result.warnings)):,})")
        st.dataframe(pd.DataFrame([w.model_dump() for w in result.warnings]), hide_index=True, width="stretch")


def _history(store: Store, dataset: str) -> None:
    history = datasets.import_history(store, dataset)
    if not history:
        return
    with st.expander(f"Earlier imports into {escape_markdown(dataset)} ({len(history)})", icon=":material/history:"):
        st.dataframe(
            pd.DataFrame([h.model_dump(include={"created_at", "filename", "format", "imported", "duplicates", "error_count"}) for h in history]),
            hide_index=True, width="stretch", column_order=["created_at", "filename", "format", "imported", "duplicates", "error_count"],
        )
