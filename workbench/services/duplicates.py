"""Find exact and near-duplicate examples in a dataset, keep one of each group, and find split leakage.

Near-duplicates are found from the band keys the store keeps per example (`workbench.store.near_state`,
written at import), never from an index of the whole dataset built in memory: a dedup first brings
that state up to date for the examples that changed since (`refresh_near_state`), then reads the
examples that share a band key, and recomputes full signatures for those candidates only. Memory
and work grow with the candidates (the duplicates and their look-alikes), not with the dataset.
"""

from __future__ import annotations

import fcntl
import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
from sqlite_utils import Database

from workbench.domain.access import Permission
from workbench.domain.dedup import (
    BANDS,
    NUM_PERM,
    DuplicateGroup,
    LeakagePair,
    Pair,
    Signatures,
    candidate_pairs,
    check_threshold,
    choose_keep,
    duplicate_groups,
    keep_score,
    leakage_pairs,
    near_keys,
    normalize,
    resolve,
    signatures,
    verified_pairs,
)
from workbench.domain.example import Split
from workbench.domain.progress import Progress
from workbench.services import access
from workbench.store import Store, near_state
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows

REFRESH_BATCH = 1000
"""Examples whose state is recomputed and written per transaction: a few milliseconds of lock each."""


def refresh_near_state(store: Store, dataset: str, progress: Progress | None = None) -> int:
    """Bring the dataset's near-duplicate state up to date; return how many examples were recomputed.

    Recomputes only examples whose state is missing or was computed from other content (an edit,
    a scrub, an undo, a copy, rows written outside an import), after removing the band keys of
    deleted examples. Each batch is written in its own short transaction and lands whole; a cancel
    keeps the batches already written, which is safe because the state is a cache that the next
    refresh completes.
    """
    progress = progress or Progress()
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
    with _one_refresh_at_a_time(store, dataset_id, progress), store.connect() as db:
        _drop_if_scheme_changed(db, dataset_id)
        dead = near_state.count_dead(db)
        stale = near_state.count_stale(db, dataset_id)
        progress.stage("updating near-duplicate index", stale + dead, "examples")
        while dead and (purged := near_state.purge_dead(db)):
            progress.advance(purged)
        written = 0
        for batch in near_state.stale_examples(db, dataset_id, batch=REFRESH_BATCH):
            keys = near_keys([example.plain_text() for example in batch])
            rows = [
                (int(example.id or 0), example.content_hash, text_hash, bands)
                for example, (text_hash, bands) in zip(batch, keys, strict=True)
            ]
            written += near_state.write_state(db, dataset_id, rows)
            progress.advance(len(batch))
        _merge_pending(db, dataset_id, progress)
    progress.finish()
    return written


@contextmanager
def _one_refresh_at_a_time(store: Store, dataset_id: int, progress: Progress) -> Iterator[None]:
    """Hold a lock on the dataset's near-duplicate state for a refresh; a second refresh waits for the first.

    Two refreshes at once could lose keys: one marks merged every pending row up to an id it read,
    including a row the other recomputed meanwhile, whose new keys it never read. The lock is an
    advisory lock on a file beside the store, which the system releases when its process ends,
    however it ends (a kill leaves no lock behind). Waiting can be cancelled.
    """
    path = store.path.resolve().parent / f".{store.path.name}.near-{dataset_id}.lock"
    with path.open("a+b") as handle:
        waited = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    progress.stage("waiting for another near-duplicate check to finish", 0)
                    waited = True
                progress.check()
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


MERGE_KEYS = 1_000_000
"""Band keys sorted in memory at a time while merging (16 MB of keys and ids); more pending keys take more passes."""


def _merge_pending(db: Database, dataset_id: int, progress: Progress) -> None:
    """Merge the band keys of signatures written since the last merge into the index, in key order.

    One pass per range of the key space, each range inserted in key order in short transactions, so
    the merge walks the index once instead of touching every page per batch; memory is one range.
    """
    pending, upto = near_state.count_pending(db, dataset_id)
    if not pending:
        return
    parts = max(1, math.ceil(pending * BANDS / MERGE_KEYS))
    progress.stage("indexing new examples", pending, "examples")
    step = (1 << 63) // parts
    merged = 0.0
    for part in range(parts):
        low = part * step
        high = (1 << 63) - 1 if part == parts - 1 else low + step - 1
        keys, ids = near_state.pending_bands(db, dataset_id, upto, low, high)
        for count in near_state.add_bands(db, dataset_id, keys, ids):
            merged += count / BANDS
            progress.advance(int(merged))
            merged -= int(merged)
        progress.check()
    near_state.mark_indexed(db, dataset_id, upto)


def _drop_if_scheme_changed(db: Database, dataset_id: int) -> None:
    """Forget state computed by another version of the banding, which would match nothing computed now.

    One example is recomputed to tell: any change to the shingles, the hashing or the bands changes
    every key. (Stale detection by content hash cannot see it: the content is the same.)
    """
    found = near_state.sample(db, dataset_id)
    if found is not None and near_keys([found[0].plain_text()])[0] != (found[1], found[2]):
        near_state.drop_state(db, dataset_id)


def find_duplicates(
    store: Store, dataset: str, *, threshold: float = 0.8, progress: Progress | None = None
) -> list[DuplicateGroup]:
    """Group exact and near-duplicate examples, each group with the member worth keeping chosen.

    The keeper is the accepted, best-rated, highest-quality member, the oldest on a tie. Reading
    only; the one write is the state refresh (see `refresh_near_state`). Gives the same groups as
    `workbench.domain.dedup.near_duplicate_groups` over the same texts.
    """
    check_threshold(threshold)
    progress = progress or Progress()
    refresh_near_state(store, dataset, progress)
    with store.connect() as db, near_state.snapshot(db):
        dataset_id = dataset_rows.dataset_id(db, dataset)
        copies, verified, sigs = _verified(db, dataset_id, threshold, progress)
        groups = duplicate_groups(verified, copies, sigs)
        members = sorted({i for group in groups for i in group.example_ids})
        scores = {int(e.id or 0): keep_score(e) for e in near_state.examples_by_id(db, members)}
    return [choose_keep(group, scores) for group in groups]


def resolve_duplicates(
    store: Store, dataset: str, groups: list[DuplicateGroup], *, progress: Progress | None = None
) -> int:
    """Delete every member but the keeper of each group, as one undoable bulk action.

    One write transaction, a batch at a time with progress per batch ("deleting duplicates"):
    `Cancelled` rolls it back and nothing is deleted. Needs `datasets.write` (checked before any work);
    the trail records it as `duplicates.resolve`.
    """
    from workbench.services.datasets import dataset_target, delete_examples

    access.require(store, Permission.DATASETS_WRITE, action="duplicates.resolve", target=dataset_target(store, dataset))
    progress = progress or Progress()
    doomed = resolve(groups)
    progress.stage("deleting duplicates", len(doomed), "examples")
    if not doomed:
        return 0
    progress.check()
    detail = f"duplicates of {len(groups)} groups"
    deleted = delete_examples(store, dataset, doomed, detail=detail, progress=progress,
                              audit_action="duplicates.resolve").affected
    progress.finish()
    return deleted


def find_leakage(
    store: Store, dataset: str, *, threshold: float = 0.8, progress: Progress | None = None
) -> list[LeakagePair]:
    """Find examples in one split that (nearly) repeat an example in another split.

    Same candidates and checks as `find_duplicates`, so the same as `workbench.domain.dedup.leakage`.
    """
    check_threshold(threshold)
    progress = progress or Progress()
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        assigned = [s for s, n in example_rows.split_counts(db, dataset_id).items() if n and s != Split.UNASSIGNED.value]
    if len(assigned) < 2:
        return []
    refresh_near_state(store, dataset, progress)
    with store.connect() as db, near_state.snapshot(db):
        copies, verified, _ = _verified(db, dataset_id, threshold, progress)
        involved = sorted({i for ids in copies.values() for i in ids} | {i for a, b, _ in verified for i in (a, b)})
        split_of = {
            int(e.id or 0): e.split.value
            for e in near_state.examples_by_id(db, involved)
            if e.split is not Split.UNASSIGNED
        }
    return leakage_pairs(verified, copies, split_of)


def _verified(
    db: Database, dataset_id: int, threshold: float, progress: Progress
) -> tuple[dict[int, list[int]], list[Pair], Signatures]:
    """Return exact copies by representative, the verified candidate pairs, and the candidates' signatures."""
    copies, pairs = _candidates(db, dataset_id, progress)
    reps = sorted({i for pair in pairs for i in pair})
    sigs = _signatures_of(db, reps, progress)
    # A candidate deleted since the refresh has no signature; its pairs are dropped.
    present = [pair for pair in pairs if pair[0] in sigs and pair[1] in sigs]
    return copies, verified_pairs(present, sigs, threshold), sigs


def _candidates(db: Database, dataset_id: int, progress: Progress) -> tuple[dict[int, list[int]], set[tuple[int, int]]]:
    """Read exact copies (by text hash) and the pairs of representatives that share a band key."""
    total = near_state.count_signatures(db, dataset_id)
    progress.stage("finding candidates", total, "examples")
    copies: dict[int, list[int]] = {}
    shadowed: list[int] = []
    for ids in near_state.text_groups(db, dataset_id):
        copies[ids[0]] = ids
        shadowed.extend(ids[1:])
    # Only a text's representative (its lowest id) takes part in band groups: a thousand copies of
    # one text would otherwise make half a million candidate pairs that say nothing new.
    hidden = set(shadowed)  # as many as the exact copies, not the examples
    pairs: set[tuple[int, int]] = set()
    step = total // near_state.KEY_PARTS
    for part in range(near_state.KEY_PARTS):
        pairs |= candidate_pairs(_representatives(near_state.band_groups(db, dataset_id, part), hidden))
        progress.advance(step if part < near_state.KEY_PARTS - 1 else total - step * part)
    return copies, pairs


def _representatives(groups: Iterable[list[int]], hidden: set[int]) -> Iterable[list[int]]:
    for ids in groups:
        if hidden:
            ids = [i for i in ids if i not in hidden]
        if len(ids) > 1:
            yield ids


def _signatures_of(db: Database, ids: list[int], progress: Progress) -> Signatures:
    """Recompute the full signatures of the candidate examples from their text (the store keeps only band keys).

    Written into one matrix allocated up front, in id order: collecting blocks and joining them
    held the candidates' signatures two and three times over (measured: 130 MB more at a million
    examples with 4% duplicates).
    """
    progress.stage("comparing candidates", len(ids), "examples")
    wanted = np.asarray(sorted(ids), dtype=np.int64)
    matrix = np.empty((len(wanted), NUM_PERM), dtype=np.uint16)  # see `Signatures`: equality of the low 16 bits
    found = np.zeros(len(wanted), dtype=bool)
    batch: list[tuple[int, str]] = []
    for example in near_state.examples_by_id(db, wanted.tolist()):
        batch.append((int(example.id or 0), normalize(example.plain_text())))
        if len(batch) >= REFRESH_BATCH:
            _sign(batch, wanted, matrix, found, progress)
            batch = []
    _sign(batch, wanted, matrix, found, progress)
    if not found.all():  # deleted since the candidates were read
        return Signatures(wanted[found], matrix[found])
    return Signatures(wanted, matrix)


def _sign(
    batch: list[tuple[int, str]], wanted: np.ndarray, matrix: np.ndarray, found: np.ndarray, progress: Progress
) -> None:
    if not batch:
        return
    at = np.searchsorted(wanted, np.fromiter((i for i, _ in batch), dtype=np.int64, count=len(batch)))
    matrix[at] = signatures([text for _, text in batch]).astype(np.uint16)
    found[at] = True
    progress.advance(len(batch))
