"""Export tab: write the live dataset or a frozen version in any format, PII scrubbed unless asked not to."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from workbench.domain.catalogue import format_label
from workbench.domain.example import Split
from workbench.domain.formats import Format
from workbench.domain.locations import field_label
from workbench.errors import WorkbenchError
from workbench.services import datasets, exporting, versions
from workbench.services.exporting import ExportResult
from workbench.ui.datasets_browse import example_table
from workbench.ui.widgets import field_help, human_bytes, plural

if TYPE_CHECKING:
    from workbench.store import Store

SOURCE, SPLIT, FORMAT, KEEP_PII = "datasets.export_source", "datasets.export_split", "datasets.export_format", "datasets.export_keep_pii"
EXPORT = "datasets.export"
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

    wanted = (dataset, source, split, fmt, keep_pii)
    if st.button("Prepare file", icon=":material/draft:", key="datasets.export_prepare", type="primary"):
        try:
            with st.spinner("Writing…"):
                data, result = exporting.export_bytes(
                    store, dataset, fmt, version=source or None, split=None if split == ALL else split, scrub_pii=not keep_pii,
                )
        except WorkbenchError as exc:
            st.error(str(exc))
        else:
            st.session_state[EXPORT] = (wanted, data, result)
    kept = st.session_state.get(EXPORT)
    if not kept or kept[0] != wanted:
        st.caption("Prepare the file, check what the conversion changes, then download it.")
        return
    _, data, result = kept
    _result(store, dataset, source, split, fmt, data, result)


def _result(store: Store, dataset: str, source: str, split: str, fmt: str, data: bytes, result: ExportResult) -> None:
    cols = st.columns([1, 1, 1, 2], vertical_alignment="center")
    cols[0].metric("Examples written", f"{result.written:,}")
    cols[1].metric("Scrubbed", f"{result.scrubbed:,}", help=field_help(ExportResult, "scrubbed"))
    cols[2].metric("Lossy", f"{len(result.lossy):,}", help=field_help(ExportResult, "lossy"))
    stem = "-".join(p for p in (dataset, source, "" if split == ALL else split, fmt) if p)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", stem) + ".jsonl"
    cols[3].download_button(
        f"Download ({human_bytes(len(data))})", data, file_name=name, mime="application/jsonl",
        key="datasets.download", icon=":material/download:", type="primary", on_click="ignore", width="stretch",
    )
    cols[3].caption(name)
    if result.lossy:
        st.warning(
            f"{plural(len(result.lossy), 'example')} cannot be carried whole into {format_label(fmt)}; "
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
