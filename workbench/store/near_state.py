"""The near-duplicate state the store keeps per example: MinHash band keys and a hash of the normalized text.

`near_signatures` holds one row per example whose keys were computed, with the `content_hash` they
were computed from; `near_bands` holds one row per (band key, example), so examples sharing a key
are found by reading the index in key order (see `workbench.domain.dedup` for the scheme).

An import writes signature rows only (`insert_state`), marked not yet `indexed`. The next dedup
merges every pending signature's band keys into `near_bands` in key order, one range of the key
space at a time (`pending_bands`, `add_bands`, `mark_indexed`): band keys are random, so inserting
them a batch at a time, as the import commits, would touch most pages of a large index per batch
(measured by the first version: an import's cost grew with the dataset already stored). Any other
change to an example's content (edit, scrub, undo, restore, copy) leaves its row stale or missing,
and the next dedup recomputes it (`stale_rows`, `write_state`). The state is a cache: deleting it
loses nothing, and a merge cut short (a cancel, a kill) is finished by the next one.

A deleted signature row (its example deleted, or its dataset) leaves its band keys in `near_dead`
through a trigger (migration m008), because SQL alone cannot decode the blob to find its band rows;
`purge_dead` removes them. Band rows left behind all the same (a merge cut short, then a delete)
only add candidates, which are checked against the examples' current text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from sqlite_utils import Database

from workbench.domain.dedup import decode_bands
from workbench.domain.example import Example
from workbench.store import examples as example_rows
from workbench.store import write_transaction

NearRow = tuple[int, str, int, bytes]
"""(example_id, content_hash the keys come from, text_hash, band keys as `near_keys` encodes them)."""

_STALE = (
    "FROM examples e LEFT JOIN near_signatures s ON s.example_id = e.id "
    "WHERE e.dataset_id = ? AND (s.example_id IS NULL OR s.content_hash != e.content_hash OR s.dataset_id != e.dataset_id)"
)


def count_stale(db: Database, dataset_id: int) -> int:
    """Count the dataset's examples whose state is missing or was computed from other content."""
    return int(db.execute(f"SELECT count(*) {_STALE}", [dataset_id]).fetchone()[0])


def stale_examples(db: Database, dataset_id: int, *, batch: int = 1000) -> Iterator[list[Example]]:
    """Yield the stale examples of a dataset in batches, by id, reading one batch at a time.

    Paged by id, so a batch written back meanwhile is not read again and memory stays one batch.
    """
    after = 0
    while True:
        ids = [r[0] for r in db.execute(f"SELECT e.id {_STALE} AND e.id > ? ORDER BY e.id LIMIT ?", [dataset_id, after, batch])]
        if not ids:
            return
        yield sorted((example_rows.row_to_example(row) for row in example_rows.raw_rows(db, ids)), key=_id)
        after = ids[-1]


def _id(example: Example) -> int:
    return example.id or 0


def write_state(db: Database, dataset_id: int, rows: Sequence[NearRow]) -> int:
    """Replace the state of these examples (one transaction: a chunk lands whole); return how many were written.

    An example deleted since its text was read is skipped. One whose content changed since keeps the
    old `content_hash` and is simply stale again at the next refresh.
    """
    if not rows:
        return 0
    conn = db.conn
    with write_transaction(db):
        ids = [row[0] for row in rows]
        marks = ",".join("?" * len(ids))
        live = {r[0] for r in conn.execute(f"SELECT id FROM examples WHERE id IN ({marks})", ids)}
        old = conn.execute(f"SELECT example_id, dataset_id, bands FROM near_signatures WHERE example_id IN ({marks})", ids)
        conn.executemany(
            "DELETE FROM near_bands WHERE dataset_id = ? AND band_key = ? AND example_id = ?",
            [(old_dataset, key, example_id) for example_id, old_dataset, blob in old.fetchall() for key in decode_bands(blob).tolist()],
        )
        kept = [row for row in rows if row[0] in live]
        # An upsert, not a delete and insert: the delete trigger would queue the old keys in near_dead,
        # whose purge could then remove band rows this very write puts back.
        conn.executemany(
            "INSERT INTO near_signatures (example_id, dataset_id, content_hash, text_hash, bands) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (example_id) DO UPDATE SET dataset_id = excluded.dataset_id, content_hash = excluded.content_hash, "
            "text_hash = excluded.text_hash, bands = excluded.bands, indexed = 0",
            [(example_id, dataset_id, content_hash, text_hash, bands) for example_id, content_hash, text_hash, bands in kept],
        )
    return len(kept)


def insert_state(db: Database, dataset_id: int, rows: Sequence[NearRow]) -> None:
    """Write the signatures of examples just inserted (new ids), in the caller's transaction; their band keys wait for the next merge."""
    if not rows:
        return
    db.conn.executemany(
        "INSERT INTO near_signatures (example_id, dataset_id, content_hash, text_hash, bands) VALUES (?, ?, ?, ?, ?)",
        [(example_id, dataset_id, content_hash, text_hash, bands) for example_id, content_hash, text_hash, bands in rows],
    )


def count_pending(db: Database, dataset_id: int) -> tuple[int, int]:
    """Return how many of the dataset's signatures wait for their band keys to be merged, and the highest such id."""
    count, top = db.execute(
        "SELECT count(*), max(example_id) FROM near_signatures WHERE dataset_id = ? AND indexed = 0", [dataset_id]
    ).fetchone()
    return int(count), int(top or 0)


def pending_bands(db: Database, dataset_id: int, upto: int, low: int, high: int, *, batch: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Return (band keys, example ids) of the pending signatures up to id `upto` whose keys fall in [low, high], sorted.

    Reads the pending rows a batch at a time, so memory is the keys of one range, not of the dataset.
    """
    keys: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    after = 0
    while True:
        rows = db.execute(
            "SELECT example_id, bands FROM near_signatures WHERE dataset_id = ? AND indexed = 0 AND example_id > ? "
            "AND example_id <= ? ORDER BY example_id LIMIT ?",
            [dataset_id, after, upto, batch],
        ).fetchall()
        if not rows:
            break
        after = rows[-1][0]
        for example_ids, matrix in _decoded(rows):
            inside = (matrix >= low) & (matrix <= high)
            keys.append(matrix[inside])
            ids.append(np.broadcast_to(example_ids[:, None], matrix.shape)[inside])
    if not keys:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    all_keys, all_ids = np.concatenate(keys), np.concatenate(ids)
    order = np.lexsort((all_ids, all_keys))
    return all_keys[order], all_ids[order]


def _decoded(rows: Sequence[tuple[int, bytes]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (ids, band key matrix) for rows grouped by key count, decoding each group in one numpy call."""
    by_width: dict[int, list[tuple[int, bytes]]] = {}
    for example_id, blob in rows:
        by_width.setdefault(len(blob), []).append((example_id, blob))
    for width, group in by_width.items():
        if width == 0:
            continue
        matrix = np.frombuffer(b"".join(blob for _, blob in group), dtype="<i8").reshape(len(group), width // 8)
        yield np.fromiter((i for i, _ in group), dtype=np.int64, count=len(group)), matrix.astype(np.int64)


def add_bands(db: Database, dataset_id: int, keys: np.ndarray, ids: np.ndarray, *, batch: int = 100_000) -> Iterator[int]:
    """Insert band rows (sorted by key) in short transactions, yielding how many went in per transaction."""
    sql = f"INSERT OR IGNORE INTO near_bands (dataset_id, band_key, example_id) VALUES ({int(dataset_id)}, ?, ?)"
    for start in range(0, len(keys), batch):
        part = zip(keys[start : start + batch].tolist(), ids[start : start + batch].tolist(), strict=True)
        with write_transaction(db):
            db.conn.executemany(sql, part)
        yield min(batch, len(keys) - start)


def mark_indexed(db: Database, dataset_id: int, upto: int) -> None:
    """Mark the pending signatures up to id `upto` as merged (their band rows are all in)."""
    with write_transaction(db):
        db.execute("UPDATE near_signatures SET indexed = 1 WHERE dataset_id = ? AND indexed = 0 AND example_id <= ?", [dataset_id, upto])


def count_dead(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM near_dead").fetchone()[0])


def purge_dead(db: Database, *, limit: int = 2000) -> int:
    """Remove the band rows of up to `limit` deleted signatures, in one short transaction; return how many.

    A key the example holds again (deleted, put back by an undo, recomputed since) is spared.
    """
    conn = db.conn
    with write_transaction(db):
        dead = conn.execute("SELECT rowid, dataset_id, example_id, bands FROM near_dead ORDER BY rowid LIMIT ?", [limit]).fetchall()
        if not dead:
            return 0
        ids = sorted({row[2] for row in dead})
        current = {
            example_id: set(decode_bands(blob).tolist())
            for example_id, blob in conn.execute(
                f"SELECT example_id, bands FROM near_signatures WHERE example_id IN ({','.join('?' * len(ids))})", ids
            )
        }
        conn.executemany(
            "DELETE FROM near_bands WHERE dataset_id = ? AND band_key = ? AND example_id = ?",
            [
                (dataset_id, key, example_id)
                for _, dataset_id, example_id, blob in dead
                for key in decode_bands(blob).tolist()
                if key not in current.get(example_id, ())
            ],
        )
        conn.execute("DELETE FROM near_dead WHERE rowid <= ?", [dead[-1][0]])
    return len(dead)


def sample(db: Database, dataset_id: int) -> tuple[Example, int, bytes] | None:
    """Return the newest example whose state is current, with its stored text hash and band keys, or None."""
    row = db.execute(
        "SELECT s.example_id, s.text_hash, s.bands FROM near_signatures s JOIN examples e ON e.id = s.example_id "
        "WHERE s.dataset_id = ? AND e.content_hash = s.content_hash ORDER BY s.example_id DESC LIMIT 1",
        [dataset_id],
    ).fetchone()
    if row is None:
        return None
    (example,) = (example_rows.row_to_example(r) for r in example_rows.raw_rows(db, [row[0]]))
    return example, int(row[1]), bytes(row[2])


def drop_state(db: Database, dataset_id: int) -> None:
    """Forget a dataset's state (the next dedup rebuilds it); for tests and repairs."""
    with write_transaction(db):
        db.execute("DELETE FROM near_bands WHERE dataset_id = ?", [dataset_id])
        db.execute("DELETE FROM near_signatures WHERE dataset_id = ?", [dataset_id])
        db.execute("DELETE FROM near_dead WHERE dataset_id = ?", [dataset_id])


def count_signatures(db: Database, dataset_id: int) -> int:
    return int(db.execute("SELECT count(*) FROM near_signatures WHERE dataset_id = ?", [dataset_id]).fetchone()[0])


def text_groups(db: Database, dataset_id: int) -> Iterator[list[int]]:
    """Yield the ids sharing each normalized text held by two or more examples, ascending, from the index."""
    for (ids,) in db.execute(
        "SELECT group_concat(example_id) FROM (SELECT text_hash, example_id FROM near_signatures "
        "WHERE dataset_id = ? ORDER BY text_hash, example_id) GROUP BY text_hash HAVING count(*) > 1",
        [dataset_id],
    ):
        yield sorted(int(i) for i in ids.split(","))


KEY_PARTS = 64
"""The band keys are read in this many ranges of the key space, so progress moves and a cancel is prompt."""


def band_groups(db: Database, dataset_id: int, part: int) -> Iterator[list[int]]:
    """Yield the ids sharing each band key held by two or more examples, for one of `KEY_PARTS` key ranges.

    Keys are uniform over [0, 2^63), so each range holds about as many as the next.
    """
    step = (1 << 63) // KEY_PARTS
    low = part * step
    high = (1 << 63) - 1 if part == KEY_PARTS - 1 else low + step - 1
    for (ids,) in db.execute(
        "SELECT group_concat(example_id) FROM near_bands WHERE dataset_id = ? AND band_key BETWEEN ? AND ? "
        "GROUP BY band_key HAVING count(*) > 1",
        [dataset_id, low, high],
    ):
        yield [int(i) for i in ids.split(",")]


def examples_by_id(db: Database, ids: Sequence[int], *, batch: int = 500) -> Iterator[Example]:
    """Yield the examples with these ids that still exist, a batch of rows read at a time."""
    for start in range(0, len(ids), batch):
        for row in example_rows.raw_rows(db, ids[start : start + batch]):
            yield example_rows.row_to_example(row)


@contextmanager
def snapshot(db: Database) -> Iterator[Database]:
    """Read several queries from one consistent state of the store (a read transaction; writers carry on under WAL)."""
    db.conn.execute("BEGIN")
    try:
        yield db
    finally:
        db.conn.rollback()
