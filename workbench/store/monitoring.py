"""Reads behind the Monitoring page: sums from the daily rollups, and bounded samples of raw rows.

Charts and headline numbers group `prediction_daily` / `prediction_latency_daily` (a few thousand rows
for 90 days), never the raw table. Drift of lengths and text needs raw rows: `sample` reads a bounded,
pseudo-random share of one window through the (model_version, ts) or (task_type, ts) index, choosing
the share from the window's size in the rollups so about `limit` rows come back however large it is.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

SUMMED = ("n", "n_error", "n_labelled", "n_correct", "n_rated", "sum_rating", "n_confidence", "sum_confidence",
          "n_costed", "sum_cost", "n_cache_hit", "sum_tokens_in", "sum_tokens_out", "n_latency", "sum_latency",
          "sum_input_chars", "sum_output_chars")
GROUPS = frozenset({"day", "model_version", "task_type"})
HASH_MULTIPLIER = 2654435761
"""Knuth's multiplicative hash: spreads consecutive ids over 0..2^32 so `% step` picks a scattered share."""


def _where(*, since_day: str | None, until_day: str | None, model_version: str | None,
           task_type: str | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for clause, value in (("day >= ?", since_day), ("day <= ?", until_day), ("model_version = ?", model_version),
                          ("task_type = ?", task_type)):
        if value is not None:
            clauses.append(clause)
            args.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def totals(db: Database, *, group_by: tuple[str, ...] = ("day",), since_day: str | None = None,
           until_day: str | None = None, model_version: str | None = None,
           task_type: str | None = None) -> list[dict[str, Any]]:
    """Sum the daily rollup's measures per `group_by` (day, model_version, task_type; () for one row).

    `task_type` '' means predictions sent without one (the rollup stores NULL as '').
    """
    if not set(group_by) <= GROUPS:
        raise ValueError(f"group_by {group_by} names a column outside {sorted(GROUPS)}")
    where, args = _where(since_day=since_day, until_day=until_day, model_version=model_version, task_type=task_type)
    keys = ", ".join(group_by)
    select = (keys + ", " if keys else "") + ", ".join(f"SUM({m}) AS {m}" for m in SUMMED)
    sql = f"SELECT {select} FROM prediction_daily{where}" + (f" GROUP BY {keys} ORDER BY {keys}" if keys else "")
    return [row for row in db.query(sql, args) if row["n"] is not None]


def latency(db: Database, *, group_by: tuple[str, ...] = ("day",), since_day: str | None = None,
            until_day: str | None = None, model_version: str | None = None,
            task_type: str | None = None) -> dict[tuple[Any, ...], dict[int, int]]:
    """Latency bucket counts per `group_by` key (a tuple; () for everything)."""
    if not set(group_by) <= GROUPS:
        raise ValueError(f"group_by {group_by} names a column outside {sorted(GROUPS)}")
    where, args = _where(since_day=since_day, until_day=until_day, model_version=model_version, task_type=task_type)
    keys = ", ".join([*group_by, "bucket"])
    found: dict[tuple[Any, ...], dict[int, int]] = {}
    for row in db.execute(f"SELECT {keys}, SUM(n) FROM prediction_latency_daily{where} GROUP BY {keys}", args):
        *key, bucket, n = row
        found.setdefault(tuple(key), {})[int(bucket)] = int(n)
    return found


def scopes(db: Database) -> list[dict[str, Any]]:
    """Every (model_version, task_type) with data, its count and first and last day: the page's filter choices."""
    return list(db.query(
        "SELECT model_version, task_type, SUM(n) AS n, MIN(day) AS first_day, MAX(day) AS last_day "
        "FROM prediction_daily GROUP BY model_version, task_type ORDER BY SUM(n) DESC"
    ))


def newest_source(db: Database, model_version: str | None = None) -> str | None:
    """The `source` (demo, api, track, import) of the newest prediction, of one model when named: one index probe."""
    if model_version is None:
        row = db.execute("SELECT source FROM predictions ORDER BY id DESC LIMIT 1").fetchone()
    else:
        row = db.execute("SELECT source FROM predictions WHERE model_version = ? ORDER BY ts DESC LIMIT 1",
                         [model_version]).fetchone()
    return None if row is None else str(row[0])


def _raw_where(model_version: str | None, task_type: str | None, since: str, until: str) -> tuple[str, list[Any]]:
    clauses, args = ["ts >= ?", "ts < ?"], [since, until]
    if model_version is not None:
        clauses.insert(0, "model_version = ?")
        args.insert(0, model_version)
    if task_type is not None:
        # '' is the rollup's spelling of "no task type"
        clauses.append("task_type IS NULL" if task_type == "" else "task_type = ?")
        if task_type != "":
            args.append(task_type)
    return "WHERE " + " AND ".join(clauses), args


SAMPLE_COLUMNS = (
    "input_chars", "output_chars", "ground_truth", "tags", "rating", "correct",
    f"substr(output, 1, {500}) AS output_head",
    "CASE WHEN output IS NULL THEN NULL ELSE json_valid(output) END AS output_json_valid",
    "CASE WHEN output IS NULL THEN NULL ELSE substr(ltrim(output), 1, 1) IN ('{', '[') END AS output_looks_json",
)


def sample(db: Database, *, since: str, until: str, expected: int, limit: int, model_version: str | None = None,
           task_type: str | None = None, rated_only: bool = False) -> list[dict[str, Any]]:
    """About `limit` pseudo-random rows of the window [since, until) (ts text), at most 2 x `limit`.

    `expected` is the window's size from the rollups: one row in `expected / limit` is kept, chosen by
    a hash of its id (so the same window gives the same sample, and consecutive rows are not favoured).
    """
    if expected <= 0:
        return []
    step = max(1, expected // max(1, limit))
    where, args = _raw_where(model_version, task_type, since, until)
    if rated_only:
        where += " AND rating IS NOT NULL"
    if step > 1:
        where += f" AND ((id * {HASH_MULTIPLIER}) % 4294967296) % {step} = 0"
    sql = f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM predictions {where} LIMIT ?"
    return list(db.query(sql, [*args, 2 * limit]))
