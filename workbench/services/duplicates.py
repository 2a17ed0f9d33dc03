"""Find exact and near-duplicate examples in a dataset, keep one of each group, and find split leakage."""

from __future__ import annotations

from workbench.domain.dedup import (
    DuplicateGroup,
    LeakagePair,
    choose_keep,
    keep_score,
    leakage,
    near_duplicate_groups,
    resolve,
)
from workbench.domain.example import Split
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows


def find_duplicates(store: Store, dataset: str, *, threshold: float = 0.8) -> list[DuplicateGroup]:
    """Group exact and near-duplicate examples, each group with the member worth keeping chosen.

    The keeper is the accepted, best-rated, highest-quality member, the oldest on a tie.
    """
    items: list[tuple[int, str]] = []
    scores = {}
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        for example in example_rows.iter_examples(db, dataset_id):
            assert example.id is not None
            items.append((example.id, example.plain_text()))
            scores[example.id] = keep_score(example)
    return [choose_keep(g, scores) for g in near_duplicate_groups(items, threshold=threshold, scores=scores)]


def resolve_duplicates(store: Store, dataset: str, groups: list[DuplicateGroup]) -> int:
    """Delete every member but the keeper of each group, as one undoable bulk action."""
    from workbench.services.datasets import delete_examples

    doomed = resolve(groups)
    if not doomed:
        return 0
    return delete_examples(store, dataset, doomed, detail=f"duplicates of {len(groups)} groups").affected


def find_leakage(store: Store, dataset: str, *, threshold: float = 0.8) -> list[LeakagePair]:
    """Find examples in one split that (nearly) repeat an example in another split."""
    by_split: dict[str, list[tuple[int, str]]] = {}
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        for example in example_rows.iter_examples(db, dataset_id):
            if example.split is Split.UNASSIGNED:
                continue
            assert example.id is not None
            by_split.setdefault(example.split.value, []).append((example.id, example.plain_text()))
    if len(by_split) < 2:
        return []
    return leakage(by_split, threshold=threshold)
