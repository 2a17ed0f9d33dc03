"""The dataset-wide actions a task can run: one entry per kind, each calling the service that does it.

Each action takes the store, the dataset's name, the task's params (plain JSON, as the page or the
CLI gave them) and a `Progress`, and returns a JSON-able result (a pydantic model dumped in JSON
mode), which the task keeps. The result holds what the service returned, which is bounded by the
services themselves (counts and samples, not every finding).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from workbench.domain.access import Permission
from workbench.domain.example import Split
from workbench.domain.progress import Progress
from workbench.errors import InvalidInput
from workbench.store import Store, utcnow

GROUPS_KEPT, PAIRS_KEPT = 200, 1000
"""Duplicate groups and leaking pairs a kept result lists (with the counts of all): a result stays small to keep and show."""
Params = dict[str, Any]
ActionFn = Callable[[Store, str, Params, Progress], Any]


@dataclass(frozen=True)
class Action:
    """A kind of task: what runs, what a person calls it, and whether it changes the dataset."""

    run: ActionFn
    label: str
    writes: bool = False
    """An action that writes describes the data after its own writes (its kept result is not stale
    because of them)."""
    needs_dataset: bool = True
    """False for an import: it may create its dataset, named in its params, and is attached to it when done."""
    holds_lock: bool = False
    """Holds the store's write lock for its whole run (one transaction, so a stop rolls it back): while it runs,
    nothing else in the store can write, so no other task is started."""
    permission: Permission = Permission.DATASETS_READ
    """What the person starting it needs (checked by `tasks.start`; the service checks again as it runs)."""


def plain(value: Any) -> Any:
    """Turn a service's answer into JSON-able data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------------------ actions


def _validate(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import validating

    return plain(validating.validate_dataset(store, dataset, params["target"], split=params.get("split") or None, progress=progress))


def _describe(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import validating

    return plain(validating.describe(store, dataset, split=params.get("split") or None,
                                     class_field=params.get("class_field") or None, progress=progress))


def _pii_scan(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import cleaning

    return plain(cleaning.pii_summary(store, dataset, progress=progress))


def _pii_scrub(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import cleaning

    return {"changed": cleaning.scrub_dataset(store, dataset, progress=progress)}


def _duplicates(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import duplicates

    found = duplicates.find_duplicates(store, dataset, threshold=float(params.get("threshold", 0.8)), progress=progress)
    if isinstance(found, BaseModel):
        return plain(found)
    return {"groups": plain(found[:GROUPS_KEPT]), "group_count": len(found),
            "duplicate_count": sum(len(g.example_ids) - 1 for g in found)}


def _resolve(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import duplicates

    # The groups are found again rather than taken from a kept result: that one holds a sample, and the data may have moved on.
    found = duplicates.find_duplicates(store, dataset, threshold=float(params.get("threshold", 0.8)), progress=progress)
    groups = getattr(found, "groups", found)
    return {"deleted": duplicates.resolve_duplicates(store, dataset, list(groups), progress=progress)}


def _leakage(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import duplicates

    found = duplicates.find_leakage(store, dataset, threshold=float(params.get("threshold", 0.8)), progress=progress)
    if isinstance(found, BaseModel):
        return plain(found)
    return {"pairs": plain(found[:PAIRS_KEPT]), "pair_count": len(found)}


def _guardrails(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import cleaning

    return plain(cleaning.run_guardrails(store, dataset, params.get("rule_ids") or None, progress=progress))


def _split(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import splits

    ratios = tuple(float(r) for r in params["ratios"])
    return plain(splits.split_dataset(store, dataset, ratios, seed=int(params.get("seed", 42)), stratify_by=params.get("stratify_by") or None,
                                      only_new=bool(params.get("only_new")), progress=progress))


def _freeze(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import versions

    return plain(versions.freeze(store, dataset, str(params["name"]), split=params.get("split") or None, note=str(params.get("note", "")),
                                 progress=progress))


def _diff(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import versions

    return plain(versions.diff(store, dataset, str(params["old"]), str(params["new"]), progress=progress))


def export_folder(store: Store) -> Path:
    """Return where exports made by tasks are written: beside the store, so the app can offer them for download."""
    return store.path.resolve().parent / "exports"


EXPORT_GRACE_S = 3600
"""An export file younger than this is never removed: it may be one an export is writing right now."""


def prune_exports(store: Store) -> int:
    """Remove export files no kept task shows any more; return how many went.

    A file lives as long as the task that offers it for download (the last `KEPT_PER_KIND`
    exports of each dataset, see `services.tasks`); without this, every export ever made would
    stay on disk. Only files this app names (`*.jsonl` in the exports folder) are considered.
    """
    folder = export_folder(store)
    if not folder.is_dir():
        return 0
    with store.connect() as db:
        rows = db.execute("SELECT json_extract(result, '$.path') FROM tasks WHERE kind = 'export' AND result IS NOT NULL")
        shown = {str(Path(path).resolve()) for (path,) in rows if path}
    cutoff, removed = time.time() - EXPORT_GRACE_S, 0
    for path in folder.glob("*.jsonl"):
        try:
            if str(path.resolve()) not in shown and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to remove: left as it is
    return removed


def _export(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    from workbench.services import exporting

    prune_exports(store)
    stem = "-".join(str(p) for p in (dataset, params.get("version"), params.get("split"), params["format"]) if p)
    path = _claim_export_name(export_folder(store), re.sub(r"[^A-Za-z0-9._-]+", "_", stem))
    try:
        return plain(exporting.export_path(store, dataset, params["format"], path, progress=progress, version=params.get("version") or None,
                                           split=params.get("split") or None, scrub_pii=bool(params.get("scrub_pii", True))))
    except BaseException:
        path.unlink(missing_ok=True)  # the name was claimed empty: a failed export leaves no file
        raise


def _claim_export_name(folder: Path, stem: str) -> Path:
    """Create an empty file with a name no other export has, for this export to replace.

    The name carries the time to the second, so two exports of the same data in one second (two
    sessions, a retry) would otherwise write the same file and each download the other's.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"{folder}: cannot keep exports there ({exc.strerror or exc}); exports go in a folder of that name "
                           "beside the store") from exc
    stamp = utcnow().replace(":", "").replace("-", "")[:15]
    for n in range(1, 1000):
        path = folder / f"{stem}-{stamp}{'' if n == 1 else f'-{n}'}.jsonl"
        try:
            path.touch(exist_ok=False)
        except FileExistsError:
            continue
        return path
    raise InvalidInput(f"{folder}: a thousand exports named {stem} this second; try again in a moment")


def _import(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    """Import a file the app saved (an upload) or a path on this machine, then remove it if it was an upload."""
    from workbench.services import preparing
    from workbench.services.importing import import_stream

    path = Path(params["path"])
    if os.environ.get("WORKBENCH_TASKS_INLINE") != "1":
        preparing.own_process()  # this process runs this one import: it may use a worker and tune itself for it
    try:
        try:
            stream = path.open("rb")
        except OSError as exc:
            raise InvalidInput(f"{params.get('filename') or path.name}: could not open the file to import ({exc.strerror or exc})") from exc
        with stream:
            result = import_stream(store, stream, str(params.get("filename") or path.name), str(params["name"]),
                                   params.get("format") or None, progress, size_hint=path.stat().st_size)
    finally:
        if params.get("remove_file"):
            path.unlink(missing_ok=True)
    return plain(result)


def _compare(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    """Run a comparison matrix; the kept result is its summary, the cells stay in the run it names."""
    from workbench.services import comparisons

    return plain(comparisons.run_comparison(
        store, list(params["variants"]), dataset=dataset, split=params.get("split") or None, version=params.get("version") or None,
        limit=int(params["limit"]) if params.get("limit") else None, assertions=list(params.get("assertions") or []),
        judge=params.get("judge") or None, concurrency=int(params.get("concurrency") or 4), name=str(params.get("name") or ""),
        progress=progress,
    ))


def _evaluate(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    """Evaluate one model over the dataset's split; the kept result is the run's summary, filed under the model."""
    from workbench.services import evaluations

    return plain(evaluations.evaluate(
        store, str(params["model"]), template=str(params["template"]), dataset=dataset, version=params.get("version") or None,
        split=params.get("split") or None, limit=int(params["limit"]) if params.get("limit") else None,
        assertions=list(params.get("assertions") or []), judge=params.get("judge") or None,
        concurrency=int(params.get("concurrency") or 4), name=str(params.get("name") or ""), progress=progress,
    ))


def _distill(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    """Run (or resume) a distillation; a stopped one has landed what it answered and ends the task as cancelled."""
    from workbench.domain.progress import Cancelled
    from workbench.services import distill

    if params.get("resume"):
        report = distill.resume(store, int(params["resume"]), progress=progress)
    else:
        report = distill.distill(
            store, str(params.get("teacher") or ""), str(params.get("template") or ""), dataset=dataset or None,
            split=params.get("split") or None, version=params.get("version") or None,
            limit=int(params["limit"]) if params.get("limit") else None, seeds=list(params.get("seeds") or []),
            per_topic=int(params.get("per_topic") or 5), into=params.get("into") or None,
            fill_references=bool(params.get("fill_references")), concurrency=int(params.get("concurrency") or 4), progress=progress,
        )
    if report.state == "stopped":
        raise Cancelled()
    return plain(report)


def _sleep(store: Store, dataset: str, params: Params, progress: Progress) -> Any:
    """Count slowly (tests only: a task that is surely still running when a test cancels or kills it)."""
    total = int(params.get("total", 100))
    progress.stage("sleeping", total, "steps")
    for _ in range(total):
        time.sleep(float(params.get("step_s", 0.05)))
        progress.advance()
        progress.check()
    return {"slept": total}


ACTIONS: dict[str, Action] = {
    "validate": Action(_validate, "Validate"),
    "describe": Action(_describe, "Describe"),
    "pii_scan": Action(_pii_scan, "PII scan"),
    "pii_scrub": Action(_pii_scrub, "PII scrub", writes=True, holds_lock=True, permission=Permission.DATASETS_WRITE),
    "duplicates": Action(_duplicates, "Find duplicates"),
    "resolve_duplicates": Action(_resolve, "Resolve duplicates", writes=True, holds_lock=True,
                                 permission=Permission.DATASETS_WRITE),
    "leakage": Action(_leakage, "Leakage check"),
    "guardrails": Action(_guardrails, "Guardrail rules"),
    "split": Action(_split, "Split", writes=True, holds_lock=True, permission=Permission.DATASETS_WRITE),
    "freeze": Action(_freeze, "Freeze", writes=True, holds_lock=True, permission=Permission.DATASETS_WRITE),
    "diff": Action(_diff, "Compare versions"),
    "export": Action(_export, "Export"),
    "import": Action(_import, "Import", writes=True, needs_dataset=False, permission=Permission.DATASETS_WRITE),
    "compare": Action(_compare, "Comparison", permission=Permission.TEMPLATES_WRITE),
    "distill": Action(_distill, "Distillation", writes=True, needs_dataset=False, permission=Permission.TEMPLATES_WRITE),
    "evaluate": Action(_evaluate, "Evaluation", permission=Permission.MODELS_WRITE),
}
TEST_ACTIONS: dict[str, Action] = {
    "sleep": Action(_sleep, "Sleep (tests)"),
    "sleep_writing": Action(_sleep, "Sleep (tests, as a writer)", writes=True, permission=Permission.DATASETS_WRITE),
    "sleep_locking": Action(_sleep, "Sleep (tests, as a lock holder)", writes=True, holds_lock=True,
                            permission=Permission.DATASETS_WRITE),
}


_REQUIRED = {"compare": ("variants",), "evaluate": ("model", "template"), "import": ("path", "name"), "validate": ("target",), "split": ("ratios",), "freeze": ("name",), "diff": ("old", "new"), "export": ("format",)}
_NUMBERS = {"threshold": float, "seed": int, "total": int, "step_s": float, "limit": int, "concurrency": int, "per_topic": int,
            "resume": int}


def check_params(kind: str, params: Params) -> None:
    """Refuse params an action could not run with, naming the field, before a process is started for it.

    The services check the values themselves (a target's name, a split); this catches what would
    otherwise surface in the child as an internal error: a missing field or a number that is not one.
    """
    missing = [name for name in _REQUIRED.get(kind, ()) if params.get(name) in (None, "")]
    if missing:
        raise InvalidInput(f"a {kind} task needs {', '.join(missing)}")
    for name, kind_of in _NUMBERS.items():
        if name in params:
            try:
                kind_of(params[name])
            except (TypeError, ValueError):
                raise InvalidInput(f"{name} must be a number, got {params[name]!r}") from None
    if "ratios" in params:
        ratios = params["ratios"]
        try:
            values = [float(r) for r in ratios] if isinstance(ratios, list | tuple) else None
        except (TypeError, ValueError):
            values = None
        if values is None:
            raise InvalidInput(f"ratios must be a list of numbers, got {ratios!r}")
    if kind == "import":
        from workbench.services.importing import check_dataset_name

        check_dataset_name(str(params["name"]))
        if not Path(params["path"]).is_file():
            raise InvalidInput(f"{params['path']}: no such file to import")
    if "split" in params and params["split"] not in (None, "") and params["split"] not in [s.value for s in Split]:
        raise InvalidInput(f"split must be one of {', '.join(s.value for s in Split)}, got {params['split']!r}")


def action(kind: str) -> Action:
    """Return the action of a kind, or say which kinds there are."""
    known = ACTIONS | (TEST_ACTIONS if os.environ.get("WORKBENCH_TASKS_TEST") == "1" else {})
    try:
        return known[kind]
    except KeyError:
        raise InvalidInput(f"unknown task kind {kind!r}; choose one of {', '.join(sorted(ACTIONS))}") from None


def action_label(kind: str) -> str:
    """What a person calls a kind of task (its kind itself when unknown, as for a test kind)."""
    known = ACTIONS.get(kind) or TEST_ACTIONS.get(kind)
    return known.label if known else kind


def action_writes(kind: str) -> bool:
    known = ACTIONS.get(kind) or TEST_ACTIONS.get(kind)
    return known is not None and known.writes


def action_holds_lock(kind: str) -> bool:
    known = ACTIONS.get(kind) or TEST_ACTIONS.get(kind)
    return known is not None and known.holds_lock
