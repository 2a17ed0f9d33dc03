"""The price table, budgets, and the sums the Costs page reads. SQL only.

Spend over time reads `prediction_daily` (a few thousand rows for 90 days). Two questions the rollups
cannot answer read raw rows of one window through the `ts` index: spend by tag (tags are JSON, summed with
`json_each`) and spend on documents (a tag or a task type). The what-if router reads a bounded sample of
raw rows by id, never the whole window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlite_utils import Database

from workbench.store import utcnow

PRICE_FIELDS = ("model", "provider", "match_pattern", "input_per_1m", "output_per_1m", "cached_input_per_1m",
                "training_per_1m", "pt_hourly", "effective_from", "effective_to", "source_url", "note")
"""The columns of `price_table` a user may set (id, created_by and created_at are the store's)."""
BUDGET_FIELDS = ("name", "scope", "scope_value", "monthly_usd", "alert_pct")

# A tag is its string in a list of tags, or `key=value` in an object of tags.
_TAG = "CASE WHEN json_type(p.tags) = 'object' THEN t.key || '=' || t.value ELSE t.value END"
_DOCUMENT = (
    "(p.task_type LIKE 'doc\\_%' ESCAPE '\\' OR (p.tags LIKE '%document%' AND EXISTS ("
    "SELECT 1 FROM json_each(p.tags) d WHERE (json_type(p.tags) = 'array' AND d.value = 'document') "
    "OR (json_type(p.tags) = 'object' AND d.key = 'document'))))"
)


# ------------------------------------------------------------------------------------------ prices


def price_rows(db: Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM price_table ORDER BY model, COALESCE(effective_from, ''), id"))


def price_count(db: Database) -> int:
    return int(db.execute("SELECT COUNT(*) FROM price_table").fetchone()[0])


def insert_price(db: Database, values: dict[str, Any], *, created_by: str) -> int:
    """Add a price row (inside `store.write()`); returns its id."""
    row = {k: values.get(k) for k in PRICE_FIELDS}
    row["note"] = row["note"] or ""
    row |= {"created_by": created_by, "created_at": utcnow()}
    cursor = db.execute(f"INSERT INTO price_table ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    return int(cursor.lastrowid or 0)


def update_price(db: Database, price_id: int, values: dict[str, Any]) -> None:
    row = {k: values[k] for k in PRICE_FIELDS if k in values}
    if "note" in row:
        row["note"] = row["note"] or ""
    if row:
        db.execute(f"UPDATE price_table SET {', '.join(f'{k} = ?' for k in row)} WHERE id = ?", [*row.values(), price_id])


def set_created_by(db: Database, price_id: int, created_by: str) -> None:
    """Mark a corrected row as the corrector's, so the source of a correction is kept."""
    db.execute("UPDATE price_table SET created_by = ? WHERE id = ?", [created_by, price_id])


def close_open_rows(db: Database, model: str, effective_from: str, keep_id: int) -> None:
    """End the rows of `model` a new row starting `effective_from` replaces: still open and starting before it."""
    db.execute(
        "UPDATE price_table SET effective_to = ? WHERE model = ? AND id <> ? AND effective_to IS NULL "
        "AND COALESCE(effective_from, '') < ?",
        [effective_from, model, keep_id, effective_from],
    )


def delete_price(db: Database, price_id: int) -> int:
    return db.execute("DELETE FROM price_table WHERE id = ?", [price_id]).rowcount


# ------------------------------------------------------------------------------------------ budgets


def budget_rows(db: Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM budgets ORDER BY name"))


def insert_budget(db: Database, values: dict[str, Any]) -> int:
    row = {k: values.get(k) for k in BUDGET_FIELDS} | {"created_at": utcnow()}
    cursor = db.execute(f"INSERT INTO budgets ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    return int(cursor.lastrowid or 0)


def update_budget(db: Database, budget_id: int, values: dict[str, Any]) -> int:
    row = {k: values[k] for k in BUDGET_FIELDS if k in values}
    sets = ", ".join(f"{k} = ?" for k in row)
    return db.execute(f"UPDATE budgets SET {sets} WHERE id = ?", [*row.values(), budget_id]).rowcount


def budget_named(db: Database, name: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM budgets WHERE name = ?", [name]))
    return rows[0] if rows else None


def delete_budget(db: Database, name: str) -> int:
    return db.execute("DELETE FROM budgets WHERE name = ?", [name]).rowcount


# ------------------------------------------------------------------------------------------ spend


def daily_spend(db: Database, since_day: str, until_day: str) -> list[dict[str, Any]]:
    """Sums per day x model x task from the rollups, days inclusive: what every spend chart starts from."""
    return list(db.query(
        """
        SELECT day, model_version, task_type, SUM(n) AS n, SUM(n_costed) AS n_costed, SUM(n_cache_hit) AS n_cache_hit,
            SUM(n_labelled) AS n_labelled, SUM(n_correct) AS n_correct, SUM(sum_cost) AS cost,
            SUM(sum_tokens_in) AS tokens_in, SUM(sum_tokens_out) AS tokens_out, SUM(sum_tokens_cached) AS tokens_cached
        FROM prediction_daily WHERE day >= ? AND day <= ?
        GROUP BY day, model_version, task_type ORDER BY day
        """,
        [since_day, until_day],
    ))


def tag_spend(db: Database, since_ts: str, until_ts: str) -> list[dict[str, Any]]:
    """Spend and requests per day x tag over the window's raw rows (a request with two tags counts in both)."""
    return list(db.query(
        f"""
        SELECT substr(p.ts, 1, 10) AS day, {_TAG} AS tag, COUNT(*) AS n, COALESCE(SUM(p.cost_usd), 0.0) AS cost
        FROM predictions p, json_each(p.tags) t
        WHERE p.ts >= ? AND p.ts < ? AND p.tags NOT IN ('[]', '{{}}')
        GROUP BY day, tag ORDER BY day
        """,
        [since_ts, until_ts],
    ))


def document_spend(db: Database, since_ts: str, until_ts: str) -> list[dict[str, Any]]:
    """Spend and count per day of documents: predictions of a `doc_*` task type or tagged `document`."""
    return list(db.query(
        f"""
        SELECT substr(p.ts, 1, 10) AS day, COUNT(*) AS n, COALESCE(SUM(p.cost_usd), 0.0) AS cost
        FROM predictions p WHERE p.ts >= ? AND p.ts < ? AND {_DOCUMENT}
        GROUP BY day ORDER BY day
        """,
        [since_ts, until_ts],
    ))


def window_id_range(db: Database, since_ts: str, until_ts: str) -> tuple[int, int, int]:
    """(lowest id, highest id, rows) of the window, read from the ts index alone."""
    lo, hi, n = db.execute(
        "SELECT MIN(id), MAX(id), COUNT(*) FROM predictions WHERE ts >= ? AND ts < ?", [since_ts, until_ts]
    ).fetchone()
    return int(lo or 0), int(hi or 0), int(n or 0)


def rows_by_id(db: Database, ids: Sequence[int], since_ts: str, until_ts: str) -> list[dict[str, Any]]:
    """The what-if router's view of some rows (no text), those inside the window only."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        chunk = list(ids[start:start + 500])
        found += db.query(
            f"""
            SELECT id, ts, model_version, task_type, input_chars, tokens_in, tokens_out, tokens_cached, cost_usd, cache_hit,
                correct
            FROM predictions WHERE id IN ({', '.join('?' * len(chunk))}) AND ts >= ? AND ts < ?
            """,
            [*chunk, since_ts, until_ts],
        )
    return found


def window_rows(db: Database, since_ts: str, until_ts: str) -> list[dict[str, Any]]:
    """Every row of a small window, as `rows_by_id` reads them (when the window holds no more than the sample)."""
    return list(db.query(
        """
        SELECT id, ts, model_version, task_type, input_chars, tokens_in, tokens_out, tokens_cached, cost_usd, cache_hit,
            correct
        FROM predictions WHERE ts >= ? AND ts < ?
        """,
        [since_ts, until_ts],
    ))


def newest_source(db: Database) -> str | None:
    """The `source` of the newest prediction: 'demo' marks a workspace showing generated traffic."""
    row = db.execute("SELECT source FROM predictions ORDER BY id DESC LIMIT 1").fetchone()
    return row[0] if row else None
