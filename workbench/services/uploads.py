"""Imports started from the app: the upload is saved beside the store, then imported by a task.

An import from the browser runs like every other dataset-wide action (`services.tasks`): in a
process of its own, so the server's process-wide settings never change (a large import pauses the
garbage collector and starts a worker), the page stays usable meanwhile, the panel shows MB read of
the file with the time left, Cancel stops it between two batches (the lines read by then are kept
and reported), and its report is kept with the task for whoever opens the tab next.

The task's process cannot read the browser's upload, so the upload is first copied into
`.<store file>.uploads/` beside the store; the task removes its copy when it ends. A copy left by
a process that died (kill -9, a reboot) is removed by a later upload once it is a day old.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO

from workbench.domain.access import Permission
from workbench.errors import WorkbenchError
from workbench.services import access, tasks
from workbench.services.importing import check_dataset_name
from workbench.store import Store
from workbench.store.tasks import Task

STALE_UPLOAD_S = 24 * 3600
"""An upload copy this old belongs to no running import (imports do not take a day): it is removed."""
COPY_CHUNK = 1024 * 1024


def uploads_folder(store: Store) -> Path:
    """Where uploads wait for their import: hidden beside the store, on the same disk."""
    return store.path.resolve().parent / f".{store.path.name}.uploads"


def start_upload_import(store: Store, stream: IO[bytes], filename: str, name: str, fmt: str | None = None) -> Task:
    """Save an upload and start the task that imports it into dataset `name`; return the task.

    Bad names fail here, before a large file is copied. If the task cannot be started, the copy
    is removed again. Needs `datasets.write`, checked before the file is copied (the task checks again).
    """
    from workbench.services.datasets import dataset_target

    access.require(store, Permission.DATASETS_WRITE, action="dataset.import", target=dataset_target(store, name))
    name = check_dataset_name(name)
    folder = uploads_folder(store)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"{filename}: could not make a folder for the upload beside the store ({exc.strerror or exc})") from exc
    _remove_stale(folder)
    path = _save(stream, folder, filename)
    params = {"path": str(path), "filename": filename, "name": name, "format": fmt or "auto", "remove_file": True}
    try:
        return tasks.start(store, "import", None, params)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _save(stream: IO[bytes], folder: Path, filename: str) -> Path:
    # Keep the upload's name at the end of the copy's: a `.gz` suffix is how the import knows to decompress.
    suffix = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).name)[-80:] or "upload"
    handle, temp = tempfile.mkstemp(prefix="upload-", suffix="-" + suffix, dir=folder)
    path = Path(temp)
    try:
        with os.fdopen(handle, "wb") as out:
            shutil.copyfileobj(stream, out, COPY_CHUNK)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise WorkbenchError(f"{filename}: could not save the upload for importing ({exc.strerror or exc})") from exc
    return path


def _remove_stale(folder: Path) -> None:
    cutoff = time.time() - STALE_UPLOAD_S
    for leftover in folder.glob("upload-*"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
