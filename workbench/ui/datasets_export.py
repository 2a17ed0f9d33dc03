"""Export tab: write the live dataset or a frozen version in any format, PII scrubbed unless asked not to."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.domain.catalogue import format_label
from workbench.domain.example import Split
from workbench.domain.formats import Format
from workbench.domain.locations import field_label
from workbench.services import datasets, versions
from workbench.services.exporting import ExportResult
from workbench.ui.datasets_browse import example_table
from workbench.ui.task_panel import task_panel
from workbench.ui.widgets import escape_markdown, field_help, human_bytes, plural

if TYPE_CHECKING:
    from workbench.store import Store

SOURCE, SPLIT, FORMAT, KEEP_PII = "datasets.export_source", "datasets.export_split", "datasets.export_format", "datasets.export_keep_pii"
DOWNLOAD_MAX_BYTES = 200 * 1024 * 1024
LIVE, ALL = "", "all"


def render(store: Store, dataset: str) -> None:
    """Draw the Export tab for one dataset."""
    info = datasets.get_dataset(store, dataset)
    names = [v.name for v in versions.list_versions(store, dataset)]
    formats = [f.value for f in Format]
    cols = st.columns(4, vertical_alignment="bottom")
    source = cols[0].selectbox("Source", [LIVE, *names], key=SOURCE, format_func=lambda v: f"version {v}" if v else "live dataset",
                               help="A frozen version exports exactly what it held when frozen.")
    split = cols[1].selectbox("Split", [ALL, *(s.value for s in Split if s is not Split.UNASSIGNED)], key=SPLIT)
    default = formats.index(info.source_format) if info.source_format in formats else 0
    fmt = cols[2].selectbox("Format", formats, index=default, key=FORMAT, format_func=format_label,
                         help="Each format names the fine-tuning targets that train on it.")
    keep_pii = cols[3].checkbox("Keep PII", key=KEEP_PII, help="Off: emails, phone numbers, keys... become placeholders such as [EMAIL].")
    if keep_pii:
        st.warning("The file will hold personal data exactly as found. Share it only where that is allowed.", icon=":material/warning:")

    params = {"format": fmt, "version": source or None, "split": None if split == ALL else split, "scrub_pii": not keep_pii}
    task = task_panel(
        store, dataset, "export", params, key="datasets.export_prepare", label="Prepare file", icon=":material/draft:",
        primary=True, follows_data=not source,
        render=lambda result, _task: _result(store, dataset, source, split, fmt, ExportResult.model_validate(result)),
    )
    if task is None:
        st.caption("Prepare the file, check what the conversion changes, then download it.")


def _result(store: Store, dataset: str, source: str, split: str, fmt: str, result: ExportResult) -> None:
    cols = st.columns([1, 1, 1, 2], vertical_alignment="center")
    cols[0].metric("Examples written", f"{result.written:,}")
    cols[1].metric("Scrubbed", f"{result.scrubbed:,}", help=field_help(ExportResult, "scrubbed"))
    lossy = max(result.lossy_count, len(result.lossy))
    cols[2].metric("Lossy", f"{lossy:,}", help=field_help(ExportResult, "lossy_count"))
    stem = "-".join(p for p in (dataset, source, "" if split == ALL else split, fmt) if p)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", stem) + ".jsonl"
    path = Path(result.path or "")
    size = path.stat().st_size if result.path and path.is_file() else None
    if size is None:
        cols[3].warning("The prepared file is gone from the server; prepare it again.", icon=":material/warning:")
    elif size > DOWNLOAD_MAX_BYTES:
        # A browser download passes through the server's memory: a file this large is fetched from disk instead.
        cols[3].info(f"Written to {escape_markdown(str(path))} ({human_bytes(size)}): too large to download through the browser.")
    else:
        cols[3].download_button(
            f"Download ({human_bytes(size)})", path.read_bytes(), file_name=name, mime="application/jsonl",
            key="datasets.download", icon=":material/download:", type="primary", on_click="ignore", width="stretch",
        )
        cols[3].caption(name)
    if result.lossy:
        st.warning(
            f"{plural(lossy, 'example')} cannot be carried whole into {format_label(fmt)}; "
            "the file holds what the format can express.", icon=":material/warning:",
        )
        if result.lost_fields:
            st.dataframe(
                pd.DataFrame([{"field": field_label(field), "examples": count} for field, count in result.lost_fields.items()]),
                key="datasets.lost_fields", hide_index=True, width="stretch",
                column_config={"field": st.column_config.TextColumn("lost field", help=field_help(ExportResult, "lost_fields")),
                               "examples": st.column_config.NumberColumn("examples", format="localized")},
            )
        st.markdown("**Per example**")
        refs = [(lossy.example_id, loss.field) for lossy in result.lossy for loss in lossy.lost]
        labels = iter(datasets.field_labels(store, refs))
        # One row per example and field, turns named as in Browse ('turn 2 (assistant)'), not by list index.
        example_table(
            pd.DataFrame(
                [{"example_id": lossy.example_id, "line": lossy.source_line, "field": next(labels), "why": loss.reason}
                 for lossy in result.lossy for loss in lossy.lost]
            ),
            key="datasets.lossy_table",
        )
