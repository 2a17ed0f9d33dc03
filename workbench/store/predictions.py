"""Rows of `predictions` and `prediction_feedback`, and the daily rollups the dashboards read.

Predictions arrive in batches and are written with one `executemany` inside the caller's
`store.write()`, then added to `prediction_daily` and `prediction_latency_daily` with one grouped
upsert each, in the same transaction, so a rollup never disagrees with the rows. Every insert must
come through `insert_predictions`, or `insert_predictions_bulk` for loads of millions (which rebuilds
the rollups after); deletes and updates may be made anywhere, since the m015 triggers follow them.
Charts read the rollups (a few thousand rows for 90 days) and never GROUP BY the raw table;
drill-down tables page the raw rows by `(ts, id)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.store import utcnow
from workbench.store.migrations import DAILY_KEY, DAILY_MEASURES

PREDICTION_COLUMNS = (
    "ts", "model_version", "template_version", "task_type", "input", "output", "input_hash", "output_hash",
    "input_chars", "output_chars", "tokens_in", "tokens_out", "tokens_cached", "latency_ms", "latency_bucket",
    "cost_usd", "cost_source", "price_row", "cache_hit", "confidence", "ground_truth", "correct", "rating", "error",
    "unit_id", "experiment_id", "variant", "tags", "source", "created_at",
)
"""The columns a new prediction row fills, in the order `insert_predictions` expects its tuples."""
_INSERT = f"INSERT INTO predictions ({', '.join(PREDICTION_COLUMNS)}) VALUES ({', '.join('?' * len(PREDICTION_COLUMNS))})"
LOOKUP_CHUNK = 500
BULK_CACHE_KIB = 256 * 1024
"""Page cache a bulk load may use (a ceiling, allocated as needed): the index pages and the rollup rebuild's
sort stay in memory instead of going back and forth to the OS for every few thousand rows."""

_KEY = ", ".join(DAILY_KEY)
_KEY_EXPRS = ", ".join(DAILY_KEY.values()).replace("R.", "")
_ROLLUP_DAILY = (
    f"INSERT INTO prediction_daily ({_KEY}, {', '.join(DAILY_MEASURES)}) "
    f"SELECT {_KEY_EXPRS}, {', '.join(f'SUM({e})' for e in DAILY_MEASURES.values()).replace('R.', '')} "
    f"FROM predictions WHERE id BETWEEN ? AND ? GROUP BY {_KEY_EXPRS} "
    f"ON CONFLICT ({_KEY}) DO UPDATE SET {', '.join(f'{m} = {m} + excluded.{m}' for m in DAILY_MEASURES)}"
)
"""Add a batch of new rows (an id range) to `prediction_daily`: one grouped upsert, not one per row."""
_ROLLUP_LATENCY = (
    f"INSERT INTO prediction_latency_daily ({_KEY}, bucket, n) "
    f"SELECT {_KEY_EXPRS}, latency_bucket, COUNT(*) FROM predictions "
    f"WHERE id BETWEEN ? AND ? AND latency_bucket IS NOT NULL GROUP BY {_KEY_EXPRS}, latency_bucket "
    f"ON CONFLICT ({_KEY}, bucket) DO UPDATE SET n = n + excluded.n"
)


class PredictionRow(BaseModel):
    """A stored prediction, as drill-down tables and tests read it."""

    id: int
    ts: str
    model_version: str
    template_version: str | None
    task_type: str | None
    input: str | None
    output: str | None
    input_hash: str | None
    output_hash: str | None
    input_chars: int | None
    output_chars: int | None
    tokens_in: int | None
    tokens_out: int | None
    tokens_cached: int | None
    latency_ms: float | None
    latency_bucket: int | None
    cost_usd: float | None
    cost_source: str = Field(description="ingested (the caller's), inferred (priced on arrival) or unpriced.")
    price_row: str | None = Field(description="The catalogue row that priced it, when inferred.")
    cache_hit: bool
    confidence: float | None
    ground_truth: str | None
    correct: bool | None
    rating: int | None
    error: str | None
    unit_id: str | None
    experiment_id: str | None
    variant: str | None
    tags: list[str] | dict[str, str]
    source: str
    created_at: str


class FeedbackRow(BaseModel):
    id: int
    prediction_id: int | None
    unit_id: str | None
    rating: int | None
    correction: str | None
    categories: list[str]
    comment: str
    reviewer: str | None
    ts: str
    source: str
    created_at: str


def insert_predictions(db: Database, rows: Sequence[Sequence[Any]]) -> list[int]:
    """Insert rows (tuples in `PREDICTION_COLUMNS` order) and return their ids, in order.

    Must run inside `store.write()`: the ids are read back as the rowids just assigned, which holds
    only while this connection has the write lock.
    """
    if not rows:
        return []
    (before,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM predictions").fetchone()
    db.conn.executemany(_INSERT, rows)
    (last,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM predictions").fetchone()
    if last - before != len(rows):  # a concurrent writer cannot get here under the lock; say so if it ever does
        raise RuntimeError(f"expected {len(rows)} new prediction ids after {before}, found {last - before}")
    db.execute(_ROLLUP_DAILY, [before + 1, last])
    db.execute(_ROLLUP_LATENCY, [before + 1, last])
    return list(range(before + 1, last + 1))


def insert_predictions_bulk(db: Database, rows: Iterable[Sequence[Any]]) -> range:
    """Insert many rows (tuples in `PREDICTION_COLUMNS` order, streamed) and return their id range.

    For loads of millions (the demo history, benchmarks): the rows go in with one `executemany` that
    consumes the iterable lazily, so memory stays bounded, and the rollups are then rebuilt from the
    raw table (`rebuild_rollups`, which reads every row once, old ones included) instead of being
    upserted batch by batch. Must run inside `store.write()`, like `insert_predictions`.
    """
    (before,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM predictions").fetchone()
    (cache,) = db.execute("PRAGMA cache_size").fetchone()
    db.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    try:
        db.conn.executemany(_INSERT, rows)
        (last,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM predictions").fetchone()
        rebuild_rollups(db)
    finally:
        db.execute(f"PRAGMA cache_size = {int(cache)}")
    return range(before + 1, last + 1)


REBUILD_CHUNK = 100_000
"""Rows summed per grouped upsert in a rebuild: one GROUP BY over millions spills its sort to disk, slices do not."""


def rebuild_rollups(db: Database) -> None:
    """Recompute `prediction_daily` and `prediction_latency_daily` from every raw row.

    The same grouped upserts `insert_predictions` runs for each batch, over id slices of the whole
    table, so the result equals the incrementally kept rollups; also a repair after a rollup drifted.
    """
    db.execute("DELETE FROM prediction_daily")
    db.execute("DELETE FROM prediction_latency_daily")
    first, last = db.execute("SELECT MIN(id), MAX(id) FROM predictions").fetchone()
    if first is None:
        return
    for start in range(first, last + 1, REBUILD_CHUNK):
        db.execute(_ROLLUP_DAILY, [start, start + REBUILD_CHUNK - 1])
        db.execute(_ROLLUP_LATENCY, [start, start + REBUILD_CHUNK - 1])


def existing_ids(db: Database, ids: Iterable[int]) -> set[int]:
    """The prediction ids among `ids` that exist."""
    wanted = list(dict.fromkeys(ids))
    found: set[int] = set()
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start:start + LOOKUP_CHUNK]
        found.update(r[0] for r in db.execute(f"SELECT id FROM predictions WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
    return found


def get(db: Database, prediction_id: int) -> PredictionRow | None:
    rows = list(db.query("SELECT * FROM predictions WHERE id = ?", [prediction_id]))
    return _prediction(rows[0]) if rows else None


def page(db: Database, *, model_version: str | None = None, since: str | None = None, until: str | None = None,
         after: tuple[str, int] | None = None, limit: int = 100) -> list[PredictionRow]:
    """Newest-first page of predictions; pass the last row's `(ts, id)` as `after` for the next page (keyset)."""
    where, args = [], []
    if model_version is not None:
        where.append("model_version = ?")
        args.append(model_version)
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    if until is not None:
        where.append("ts < ?")
        args.append(until)
    if after is not None:
        where.append("(ts, id) < (?, ?)")
        args += list(after)
    sql = "SELECT * FROM predictions" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY ts DESC, id DESC LIMIT ?"
    return [_prediction(r) for r in db.query(sql, [*args, limit])]


def count(db: Database) -> int:
    return int(db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])


def daily(db: Database, *, since_day: str | None = None, until_day: str | None = None,
          model_version: str | None = None) -> list[dict[str, Any]]:
    """Rows of `prediction_daily` (one per day x model x task x template x experiment x variant)."""
    where, args = [], []
    for clause, value in (("day >= ?", since_day), ("day <= ?", until_day), ("model_version = ?", model_version)):
        if value is not None:
            where.append(clause)
            args.append(value)
    sql = "SELECT * FROM prediction_daily" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY day"
    return list(db.query(sql, args))


def latency_counts(db: Database, *, since_day: str | None = None, model_version: str | None = None) -> dict[int, int]:
    """Latency bucket -> predictions, summed over the matching days and keys."""
    where, args = [], []
    if since_day is not None:
        where.append("day >= ?")
        args.append(since_day)
    if model_version is not None:
        where.append("model_version = ?")
        args.append(model_version)
    sql = ("SELECT bucket, SUM(n) FROM prediction_latency_daily" + (" WHERE " + " AND ".join(where) if where else "")
           + " GROUP BY bucket")
    return {int(b): int(n) for b, n in db.execute(sql, args)}


def insert_feedback(db: Database, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert feedback rows (dicts with the table's columns) inside `store.write()`; return their ids."""
    now = utcnow()
    ids: list[int] = []
    for row in rows:
        cursor = db.execute(
            """
            INSERT INTO prediction_feedback (prediction_id, unit_id, rating, correction, categories, comment, reviewer, ts,
                source, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [row["prediction_id"], row["unit_id"], row["rating"], row["correction"], orjson.dumps(row["categories"]).decode(),
             row["comment"], row["reviewer"], row["ts"], row["source"], now],
        )
        ids.append(int(cursor.lastrowid or 0))
    return ids


def feedback_for(db: Database, *, prediction_id: int | None = None, unit_id: str | None = None) -> list[FeedbackRow]:
    if prediction_id is not None:
        rows = db.query("SELECT * FROM prediction_feedback WHERE prediction_id = ? ORDER BY id", [prediction_id])
    else:
        rows = db.query("SELECT * FROM prediction_feedback WHERE unit_id = ? ORDER BY id", [unit_id])
    return [FeedbackRow(**{**r, "categories": orjson.loads(r["categories"])}) for r in rows]


def _prediction(row: dict[str, Any]) -> PredictionRow:
    return PredictionRow(**{
        **row,
        "tags": orjson.loads(row["tags"]),
        "cache_hit": bool(row["cache_hit"]),
        "correct": None if row["correct"] is None else bool(row["correct"]),
    })
