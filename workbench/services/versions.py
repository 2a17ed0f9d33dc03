"""Freeze datasets into immutable named versions and show what changed between two of them."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from workbench.domain.access import Permission
from workbench.domain.example import Split
from workbench.domain.progress import Progress
from workbench.errors import InvalidInput
from workbench.services import access
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import versions as version_rows
from workbench.store.versions import Version

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


DIFF_SAMPLE = 500
"""Example ids a diff lists per kind of change (the first ones, by id); the counts cover them all."""


class VersionDiff(BaseModel):
    old: str
    new: str
    added: list[int] = Field(default_factory=list, description="Example ids only in the newer version (the first `sample_limit`; `added_count` counts them all).")
    removed: list[int] = Field(default_factory=list, description="Example ids only in the older version (the first `sample_limit`; `removed_count` counts them all).")
    changed: list[int] = Field(default_factory=list, description="Example ids whose content was edited in between (the first `sample_limit`; `changed_count` counts them all).")
    moved: list[int] = Field(default_factory=list, description="Example ids that changed split (the first `sample_limit`; `moved_count` counts them all).")
    added_count: int = Field(default=0, description="Examples only in the newer version.")
    removed_count: int = Field(default=0, description="Examples only in the older version.")
    changed_count: int = Field(default=0, description="Examples whose content was edited in between.")
    moved_count: int = Field(default=0, description="Examples that changed split (content unchanged).")
    unchanged: int = 0
    sample_limit: int = Field(default=DIFF_SAMPLE, description="Most example ids listed per kind of change.")

    def note(self, kind: str, example_id: int) -> None:
        """Count one example under `kind` (added, removed, changed, moved), listing its id while the sample has room."""
        setattr(self, f"{kind}_count", getattr(self, f"{kind}_count") + 1)
        ids: list[int] = getattr(self, kind)
        if len(ids) < self.sample_limit:
            ids.append(example_id)


def freeze(
    store: Store,
    dataset: str,
    name: str,
    *,
    split: Split | str | None = None,
    note: str = "",
    progress: Progress | None = None,
) -> Version:
    """Freeze the dataset (or one split of it) as it is now into version `name`.

    One transaction: a version is a snapshot, so it is copied whole while nothing else writes, and
    a `Cancelled` (or any failure) leaves no version behind. Needs `datasets.write`.
    """
    from workbench.services.datasets import dataset_target

    access.require(store, Permission.DATASETS_WRITE, action="dataset.freeze", target=dataset_target(store, dataset))
    progress = progress or Progress()
    if not _NAME.match(name):
        raise InvalidInput(
            f"version name {name!r} must start with a letter or digit and use only letters, digits, '.', '_' or '-' (max 64)"
        )
    chosen = Split(split) if split else None
    with store.write() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        counts = version_rows.split_counts(db, dataset_id)
        progress.stage("freezing version", counts.get(chosen.value, 0) if chosen else sum(counts.values()))
        version = version_rows.create_version(db, dataset_id, name, chosen, note, on_copied=progress.advance)
        if version is not None:
            access.audit(db, "dataset.freeze", f"dataset:{dataset_id}", version=name,
                         split=chosen.value if chosen else None, examples=version.example_count)
    if version is None:
        where = f"split {chosen.value!r} of " if chosen else ""
        raise InvalidInput(f"{where}dataset {dataset!r} has no examples to freeze")
    progress.finish()
    return version


def list_versions(store: Store, dataset: str) -> list[Version]:
    """Return a dataset's versions, newest first."""
    access.require(store, Permission.DATASETS_READ, action="dataset.show", target=f"dataset:{dataset}")
    with store.connect() as db:
        return version_rows.list_versions(db, dataset_rows.dataset_id(db, dataset))


def diff(store: Store, dataset: str, old: str, new: str, *, progress: Progress | None = None) -> VersionDiff:
    """Compare two versions example by example: added, removed, edited, moved between splits.

    Both versions are read side by side in example id order (a merge), so memory holds two rows,
    the counts and the first `DIFF_SAMPLE` ids of each kind, however large the versions are.
    """
    progress = progress or Progress()
    result = VersionDiff(old=old, new=new, sample_limit=DIFF_SAMPLE)
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        a = version_rows.get_version(db, dataset_id, old)
        b = version_rows.get_version(db, dataset_id, new)
        progress.stage("comparing versions", a.example_count + b.example_count, "rows")
        older, newer = version_rows.iter_version_keys(db, a.id), version_rows.iter_version_keys(db, b.id)
        left, right = next(older, None), next(newer, None)
        while left is not None or right is not None:
            if right is None or (left is not None and left[0] < right[0]):
                result.note("removed", left[0])  # type: ignore[index]
                left = next(older, None)
                progress.advance()
            elif left is None or right[0] < left[0]:
                result.note("added", right[0])
                right = next(newer, None)
                progress.advance()
            else:
                _compare(result, left, right)
                left, right = next(older, None), next(newer, None)
                progress.advance(2)
    progress.finish()
    return result


def _compare(result: VersionDiff, left: tuple[int, str, str], right: tuple[int, str, str]) -> None:
    """Sort one example found in both versions into edited, moved or unchanged."""
    if left[1] != right[1]:
        result.note("changed", left[0])
    elif left[2] != right[2]:
        result.note("moved", left[0])
    else:
        result.unchanged += 1
