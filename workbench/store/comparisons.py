"""Rows of comparison runs, their cells, and the completion cache they share.

A run is written once when it starts (its variants, assertions and inputs' source), its cells as
they finish (a batch per transaction, from the one thread that writes), and its end state last. A
run whose process died stays `running` with the cells it finished; `finish_run` marks it later.
The completion cache maps a request's hash to the answer, so a re-run calls only what is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.store import utcnow

CACHE_LOOKUP_CHUNK = 500
"""Keys looked up per query: SQLite allows 32,766 parameters, and short IN lists plan well."""


class RunRow(BaseModel):
    id: int
    kind: str = Field(description="compare (variants side by side) or evaluate (one model over a test split).")
    name: str
    dataset_id: int | None
    dataset_name: str | None
    version_name: str | None
    split: str | None
    model_ref: str | None = Field(description="For an evaluation: the model evaluated (a Models-page id, or client:model).")
    variants: list[dict[str, Any]]
    assertions: list[dict[str, Any]]
    judge: str | None
    concurrency: int
    state: str
    error: str | None
    cells_total: int
    created_by: str | None
    created_at: str
    finished_at: str | None


class CellRow(BaseModel):
    run_id: int
    row: int
    variant: int
    example_id: int | None
    input: str
    reference: str | None
    output: str | None
    error: str | None
    passed: bool | None
    score: float | None
    results: list[dict[str, Any]]
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: float | None
    cost_usd: float | None
    cost_saved_usd: float
    price_row: str | None
    cache_hit: bool
    attempts: int


class CachedAnswer(BaseModel):
    key: str
    text: str
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: float
    stop_reason: str | None


def create_run(db: Database, *, kind: str, name: str, dataset_id: int | None, dataset_name: str | None, version_name: str | None,
               split: str | None, model_ref: str | None, variants: list[dict[str, Any]], assertions: list[dict[str, Any]],
               judge: str | None, concurrency: int, cells_total: int, created_by: str | None) -> int:
    cursor = db.execute(
        """
        INSERT INTO comparison_runs (kind, name, dataset_id, dataset_name, version_name, split, model_ref, variants, assertions,
            judge, concurrency, cells_total, created_by, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [kind, name, dataset_id, dataset_name, version_name, split, model_ref, orjson.dumps(variants).decode(),
         orjson.dumps(assertions).decode(), judge, concurrency, cells_total, created_by, utcnow()],
    )
    return int(cursor.lastrowid or 0)


def add_cells(db: Database, cells: Sequence[CellRow]) -> None:
    """Write finished cells (a cell written again, by a resumed run, replaces the earlier one)."""
    now = utcnow()
    db.conn.executemany(
        """
        INSERT OR REPLACE INTO comparison_cells (run_id, row, variant, example_id, input, reference, output, error, passed, score,
            results, input_tokens, output_tokens, latency_ms, cost_usd, cost_saved_usd, price_row, cache_hit, attempts, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            [c.run_id, c.row, c.variant, c.example_id, c.input, c.reference, c.output, c.error,
             None if c.passed is None else int(c.passed), c.score, orjson.dumps(c.results).decode(), c.input_tokens,
             c.output_tokens, c.latency_ms, c.cost_usd, c.cost_saved_usd, c.price_row, int(c.cache_hit), c.attempts, now]
            for c in cells
        ],
    )


def finish_run(db: Database, run_id: int, state: str, error: str | None = None) -> None:
    db.execute(
        "UPDATE comparison_runs SET state = ?, error = ?, finished_at = ? WHERE id = ?", [state, error, utcnow(), run_id]
    )


def get_run(db: Database, run_id: int) -> RunRow | None:
    rows = list(db.query("SELECT * FROM comparison_runs WHERE id = ?", [run_id]))
    return _run(rows[0]) if rows else None


def list_runs(db: Database, *, kind: str | None = None, model_ref: str | None = None, limit: int = 50) -> list[RunRow]:
    where, args = [], []
    if kind is not None:
        where.append("kind = ?")
        args.append(kind)
    if model_ref is not None:
        where.append("model_ref = ?")
        args.append(model_ref)
    sql = "SELECT * FROM comparison_runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
    return [_run(row) for row in db.query(sql, [*args, limit])]


def cells(db: Database, run_id: int) -> list[CellRow]:
    return [_cell(row) for row in db.query("SELECT * FROM comparison_cells WHERE run_id = ? ORDER BY row, variant", [run_id])]


def done_cells(db: Database, run_id: int) -> set[tuple[int, int]]:
    """The (row, variant) pairs a run has finished, errors included: what a resumed run skips."""
    return {(r, v) for r, v in db.execute("SELECT row, variant FROM comparison_cells WHERE run_id = ?", [run_id])}


def failed_cells(db: Database, run_id: int) -> set[tuple[int, int]]:
    return {(r, v) for r, v in db.execute("SELECT row, variant FROM comparison_cells WHERE run_id = ? AND error IS NOT NULL", [run_id])}


def delete_failed_cells(db: Database, run_id: int) -> int:
    """Forget the cells that ended in an error, so a resumed run calls them again."""
    return db.execute("DELETE FROM comparison_cells WHERE run_id = ? AND error IS NOT NULL", [run_id]).rowcount


def delete_run(db: Database, run_id: int) -> bool:
    return db.execute("DELETE FROM comparison_runs WHERE id = ?", [run_id]).rowcount == 1


def cached(db: Database, keys: Iterable[str]) -> dict[str, CachedAnswer]:
    """The cached answers among `keys`."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, CachedAnswer] = {}
    for start in range(0, len(wanted), CACHE_LOOKUP_CHUNK):
        chunk = wanted[start:start + CACHE_LOOKUP_CHUNK]
        marks = ", ".join("?" * len(chunk))
        for row in db.query(
            f"SELECT key, text, input_tokens, output_tokens, latency_ms, stop_reason FROM completion_cache WHERE key IN ({marks})", chunk
        ):
            found[row["key"]] = CachedAnswer(**row)
    return found


def count_hits(db: Database, keys: Iterable[str]) -> None:
    db.conn.executemany("UPDATE completion_cache SET hits = hits + 1 WHERE key = ?", [[k] for k in keys])


def cache_answers(db: Database, answers: Sequence[tuple[CachedAnswer, str, str]]) -> None:
    """Keep answers (with the client and model that gave them) for the next run to reuse."""
    now = utcnow()
    db.conn.executemany(
        """
        INSERT OR REPLACE INTO completion_cache (key, client, model, text, input_tokens, output_tokens, latency_ms, stop_reason, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [[a.key, client, model, a.text, a.input_tokens, a.output_tokens, a.latency_ms, a.stop_reason, now] for a, client, model in answers],
    )


def _run(row: dict[str, Any]) -> RunRow:
    return RunRow(**{**row, "variants": orjson.loads(row["variants"]), "assertions": orjson.loads(row["assertions"])})


def _cell(row: dict[str, Any]) -> CellRow:
    return CellRow(**{
        **{k: v for k, v in row.items() if k != "created_at"},
        "results": orjson.loads(row["results"]),
        "passed": None if row["passed"] is None else bool(row["passed"]),
        "cache_hit": bool(row["cache_hit"]),
    })
