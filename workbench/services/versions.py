"""Freeze datasets into immutable named versions and show what changed between two of them."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from workbench.domain.example import Split
from workbench.errors import InvalidInput
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import versions as version_rows
from workbench.store.versions import Version

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class VersionDiff(BaseModel):
    old: str
    new: str
    added: list[int] = Field(default_factory=list, description="Example ids only in the newer version.")
    removed: list[int] = Field(default_factory=list, description="Example ids only in the older version.")
    changed: list[int] = Field(default_factory=list, description="Example ids whose content was edited in between.")
    moved: list[int] = Field(default_factory=list, description="Example ids that changed split.")
    unchanged: int = 0


def freeze(store: Store, dataset: str, name: str, *, split: Split | str | None = None, note: str = "") -> Version:
    """Freeze the dataset (or one split of it) as it is now into version `name`."""
    if not _NAME.match(name):
        raise InvalidInput(
            f"version name {name!r} must start with a letter or digit and use only letters, digits, '.', '_' or '-' (max 64)"
        )
    chosen = Split(split) if split else None
    with store.write() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        version = version_rows.create_version(db, dataset_id, name, chosen, note)
    if version is None:
        where = f"split {chosen.value!r} of " if chosen else ""
        raise InvalidInput(f"{where}dataset {dataset!r} has no examples to freeze")
    return version


def list_versions(store: Store, dataset: str) -> list[Version]:
    """Return a dataset's versions, newest first."""
    with store.connect() as db:
        return version_rows.list_versions(db, dataset_rows.dataset_id(db, dataset))


def diff(store: Store, dataset: str, old: str, new: str) -> VersionDiff:
    """Compare two versions example by example: added, removed, edited, moved between splits."""
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        a = version_rows.version_keys(db, version_rows.get_version(db, dataset_id, old).id)
        b = version_rows.version_keys(db, version_rows.get_version(db, dataset_id, new).id)
    result = VersionDiff(old=old, new=new)
    result.added = sorted(set(b) - set(a))
    result.removed = sorted(set(a) - set(b))
    for example_id in sorted(set(a) & set(b)):
        (hash_a, split_a), (hash_b, split_b) = a[example_id], b[example_id]
        if hash_a != hash_b:
            result.changed.append(example_id)
        elif split_a != split_b:
            result.moved.append(example_id)
        else:
            result.unchanged += 1
    return result
