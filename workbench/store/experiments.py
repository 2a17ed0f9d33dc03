"""Rows of `experiments`, and the per-variant unit counts the results read from the predictions index.

Metric sums come from `prediction_daily` (keyed by experiment id and variant); distinct units and
each unit's first exposure come from `experiment_units` (one row a unit, kept by an m018 trigger),
so the raw predictions are never read.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.store import utcnow


class VariantRow(BaseModel):
    name: str
    target: str = Field(description="`model:ID`, a model_version string, or a template version `NAME@V`.")
    weight: float


class ExperimentRow(BaseModel):
    id: int
    name: str
    description: str
    seed: str
    unit: str = Field(description="What is randomised: user, session or request.")
    variants: list[VariantRow] = Field(description="Control first.")
    metric: str
    guard_metrics: list[str]
    task: str | None = Field(description="The task a shipped model is activated for.")
    state: str
    decision: str | None
    decided_variant: str | None
    decision_note: str | None
    decided_by: str | None
    decided_at: str | None
    demo: bool
    started_at: str | None
    stopped_at: str | None
    created_at: str
    updated_at: str

    @property
    def weights(self) -> dict[str, float]:
        return {v.name: v.weight for v in self.variants}

    @property
    def control(self) -> str:
        return self.variants[0].name


def _row(row: dict[str, Any]) -> ExperimentRow:
    return ExperimentRow(**{**row, "variants": orjson.loads(row["variants"]),
                            "guard_metrics": orjson.loads(row["guard_metrics"]), "demo": bool(row["demo"])})


def insert(db: Database, *, name: str, description: str, seed: str, unit: str, variants: list[dict[str, Any]],
           metric: str, guard_metrics: list[str], task: str | None, demo: bool = False) -> int:
    now = utcnow()
    cursor = db.execute(
        """
        INSERT INTO experiments (name, description, seed, unit, variants, metric, guard_metrics, task, demo,
            created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [name, description, seed, unit, orjson.dumps(variants).decode(), metric, orjson.dumps(guard_metrics).decode(),
         task, int(demo), now, now],
    )
    return int(cursor.lastrowid or 0)


def get(db: Database, experiment_id: int) -> ExperimentRow | None:
    rows = list(db.query("SELECT * FROM experiments WHERE id = ?", [experiment_id]))
    return _row(rows[0]) if rows else None


def find(db: Database, name: str) -> ExperimentRow | None:
    rows = list(db.query("SELECT * FROM experiments WHERE name = ?", [name]))
    return _row(rows[0]) if rows else None


def list_all(db: Database, *, state: str | None = None) -> list[ExperimentRow]:
    if state is None:
        return [_row(r) for r in db.query("SELECT * FROM experiments ORDER BY id DESC")]
    return [_row(r) for r in db.query("SELECT * FROM experiments WHERE state = ? ORDER BY id DESC", [state])]


def set_state(db: Database, experiment_id: int, state: str) -> None:
    now = utcnow()
    started = "COALESCE(started_at, ?)" if state == "running" else "started_at"
    stopped = "?" if state in ("stopped", "shipped") else "stopped_at"
    args: list[Any] = [state]
    if state == "running":
        args.append(now)
    if state in ("stopped", "shipped"):
        args.append(now)
    db.execute(f"UPDATE experiments SET state = ?, started_at = {started}, stopped_at = {stopped}, updated_at = ? "
               "WHERE id = ?", [*args, now, experiment_id])


def record_decision(db: Database, experiment_id: int, *, decision: str, variant: str | None, note: str,
                    decided_by: str | None, state: str) -> None:
    now = utcnow()
    db.execute(
        """
        UPDATE experiments SET decision = ?, decided_variant = ?, decision_note = ?, decided_by = ?, decided_at = ?,
            state = ?, stopped_at = COALESCE(stopped_at, ?), updated_at = ?
        WHERE id = ?
        """,
        [decision, variant, note, decided_by, now, state, now, now, experiment_id],
    )


def daily_sums(db: Database, experiment_key: str) -> list[dict[str, Any]]:
    """The experiment's `prediction_daily` sums per day and variant (summed over models, tasks and templates)."""
    return list(db.query(
        """
        SELECT day, variant, SUM(n) AS n, SUM(n_error) AS n_error, SUM(n_labelled) AS n_labelled,
            SUM(n_correct) AS n_correct, SUM(n_rated) AS n_rated, SUM(sum_rating) AS sum_rating,
            SUM(sum_rating_sq) AS sum_rating_sq, SUM(n_costed) AS n_costed, SUM(sum_cost) AS sum_cost,
            SUM(sum_cost_sq) AS sum_cost_sq, SUM(n_latency) AS n_latency, SUM(sum_latency) AS sum_latency,
            SUM(sum_latency_sq) AS sum_latency_sq
        FROM prediction_daily WHERE experiment_id = ?
        GROUP BY day, variant ORDER BY day, variant
        """,
        [experiment_key],
    ))


def first_exposures(db: Database, experiment_key: str) -> list[tuple[str, str, int]]:
    """(variant, day, units first seen that day) for the experiment, from `experiment_units`.

    A unit seen under two variants (a logging bug, or weights changed mid-test) counts in each.
    """
    sql = """
        SELECT variant, substr(first_ts, 1, 10) AS day, COUNT(*) FROM experiment_units
        WHERE experiment_id = ? GROUP BY variant, day ORDER BY variant, day
    """
    return [(str(v), str(d), int(n)) for v, d, n in db.execute(sql, [experiment_key])]
