"""Import tab: upload a file into a new or existing dataset, watch it import, then what was kept and why not.

The import runs as a background task (`services.uploads`): the panel shows MB read with the time
left and a Cancel button while the rest of the page stays usable, and the finished report is kept,
so a reload, a new session or a colleague sees the last import into the dataset without re-running it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.domain.formats import FORMAT_LABELS, Format
from workbench.errors import WorkbenchError
from workbench.services import datasets, tasks
from workbench.services.importing import ImportResult, name_from_file
from workbench.services.uploads import start_upload_import
from workbench.store.tasks import Task, TaskState
from workbench.ui.task_panel import show_task, when_text
from workbench.ui.widgets import escape_markdown, field_help, plural

if TYPE_CHECKING:
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    from workbench.store import Store

UPLOAD, NAME, FORMAT = "datasets.upload", "datasets.import_name", "datasets.import_format"
STARTED = "datasets.import_task"
"""The id of the import this session started last: its report is shown (and its dataset opened) when it ends."""
OPENED = "datasets.import_opened"
"""The id of the import whose dataset was already opened, so a finished import switches the picker once."""
KEPT_KEYS = {STARTED, OPENED}
"""Session keys that outlive a change of dataset (the import may have been what changed it)."""
SWITCH_TO = "datasets.switch_to"
FORMATS = ["auto", *(f.value for f in Format)]


def render(store: Store, dataset: str | None) -> None:
    """Draw the import form, every import still running, then the last import's report."""
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
            _start(store, upload, target, fmt)
    _running(store)
    _last(store, dataset)
    if dataset:
        _history(store, dataset)


def _start(store: Store, upload: UploadedFile, name: str, fmt: str) -> None:
    with st.spinner(f"Saving {upload.name} for importing…"):
        try:
            task = start_upload_import(store, upload, upload.name, name, fmt)
        except WorkbenchError as exc:
            st.error(str(exc))
            return
    st.session_state[STARTED] = task.id
    if not task.state.active:
        st.rerun()  # it ended already (a small file): the page opens its dataset before drawing the picker


def _running(store: Store) -> None:
    """Every import still going, whoever started it: what it reads, into which dataset, how far, and Cancel."""
    for task in tasks.list_tasks(store, active_only=True):
        if task.kind != "import":
            continue
        st.markdown(f"**Importing {escape_markdown(str(task.params.get('filename', 'a file')))}** into "
                    f"{escape_markdown(str(task.params.get('name', '')))}")
        show_task(store, "", task, key=f"datasets.import.{task.id}", render=lambda result, task: None)


def _last(store: Store, dataset: str | None) -> None:
    """The report of this session's last import once it ends (opening its dataset), else the last into the dataset shown."""
    task = _started(store)
    if task is not None and task.state.active:
        return  # drawn live by `_running`
    if task is None or (task.dataset is not None and task.dataset != dataset):
        task = tasks.latest(store, dataset, "import") if dataset else None
    if task is None:
        return
    if task.state is TaskState.DONE:
        result = ImportResult.model_validate(task.result)
        st.subheader(f"Last import: {escape_markdown(str(task.params.get('filename', '')))} into {escape_markdown(result.dataset)}", anchor=False)
        st.caption(f"Finished {when_text(task.finished_at or task.updated_at)}.")
        _report(result)
    elif task.state is TaskState.CANCELLED:
        st.info(f"The import of {escape_markdown(str(task.params.get('filename', 'the file')))} was stopped before "
                "anything was written.", icon=":material/stop_circle:")
    else:
        st.error(f"The import of {escape_markdown(str(task.params.get('filename', 'the file')))} failed: "
                 f"{escape_markdown(task.error or 'no reason given')}", icon=":material/error:")


def _started(store: Store) -> Task | None:
    task_id = st.session_state.get(STARTED)
    if task_id is None:
        return None
    try:
        task = tasks.get(store, task_id)
    except WorkbenchError:
        task = None
    if task is None or task.kind != "import":  # pruned, its dataset deleted, or the id reused by another task since
        st.session_state.pop(STARTED, None)
        return None
    return task


def settle(store: Store) -> None:
    """Once per finished import of this session: open the dataset it wrote on the Import tab, and say so.

    Called by the page before it picks the dataset and tab, whichever tab is showing when the import
    ends (the live panel reruns the whole page then), so the report is what the person sees next.
    """
    task = _started(store)
    if task is None or task.state is not TaskState.DONE or st.session_state.get(OPENED) == task.id:
        return
    st.session_state[OPENED] = task.id
    result = ImportResult.model_validate(task.result)
    st.cache_data.clear()
    if result.dataset_id is not None:
        # The page applies this before drawing its picker.
        st.session_state[SWITCH_TO] = task.dataset or result.dataset
    if result.fault is None and not result.added_nothing and not result.stopped:
        st.toast(f"Imported {plural(result.imported, 'example')} into {escape_markdown(result.dataset)}.", icon=":material/check:")


def _report(result: ImportResult) -> None:
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
    elif result.stopped:
        st.warning(
            f"Stopped on request after line {result.lines_read:,}: what was read by then was imported, the rest of "
            "the file was not read. Import the file again to add the rest (examples already imported are skipped).",
            icon=":material/stop_circle:",
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
