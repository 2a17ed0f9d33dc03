"""Rows of distillation runs and the inputs each one answers.

A run is written when it starts (what it was asked: teacher, template, where its inputs come from
and where its outputs land), learns the ids of the comparison runs that call the teacher as they
start, and gets its end state and landing summary last. Its inputs are written whole, in row
order, before the teacher is asked about them: that is what a resumed run asks about again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.store import utcnow

HASH_CHUNK = 1000


class DistillRow(BaseModel):
    id: int
    mode: str = Field(description="dataset (a dataset's inputs) or seeds (the teacher writes inputs per topic first).")
    target: str = Field(description="new (a new dataset) or fill (reference answers on the examples that lack one).")
    teacher: str = Field(description="CLIENT:MODEL of the teacher.")
    template: str = Field(description="NAME@VERSION of the template the teacher answers with.")
    template_version_id: int | None
    seed_template: str | None = Field(description="NAME@VERSION that asked for inputs per topic (seed mode).")
    source_dataset: str | None
    split: str | None
    version_name: str | None
    input_limit: int | None
    seeds: list[str]
    per_topic: int | None
    into_dataset: str | None = Field(description="Where the outputs land: the new dataset, or the filled one.")
    concurrency: int
    inputs_run_id: int | None = Field(description="Seed mode: the comparison run that wrote the inputs.")
    answers_run_id: int | None = Field(description="The comparison run that answered the inputs.")
    dataset_id: int | None = Field(None, description="New-dataset mode: the dataset this run created, the only one it lands in.")
    state: str
    error: str | None
    result: dict[str, Any] | None = Field(description="The last landing's summary.")
    created_by: str | None
    created_at: str
    finished_at: str | None


class InputRow(BaseModel):
    """One input the teacher answers, as chosen when the run started."""

    row: int
    example_id: int | None = Field(description="The source example (dataset mode).")
    topic: str | None = Field(description="The seed topic it was written for (seed mode).")
    example: dict[str, Any] = Field(description="The input part of an example (system, turns up to the last user turn, tools, metadata).")
    variables: dict[str, Any] = Field(description="What the template is rendered with.")
    input_cost_usd: float | None = Field(None, description="Seed mode: its share of the call that wrote it.")


def create_run(db: Database, *, mode: str, target: str, teacher: str, template: str, template_version_id: int | None,
               seed_template: str | None, source_dataset: str | None, split: str | None, version_name: str | None,
               input_limit: int | None, seeds: Sequence[str], per_topic: int | None, into_dataset: str | None,
               concurrency: int, created_by: str | None) -> int:
    cursor = db.execute(
        """
        INSERT INTO distill_runs (mode, target, teacher, template, template_version_id, seed_template, source_dataset, split,
            version_name, input_limit, seeds, per_topic, into_dataset, concurrency, created_by, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [mode, target, teacher, template, template_version_id, seed_template, source_dataset, split, version_name, input_limit,
         orjson.dumps(list(seeds)).decode(), per_topic, into_dataset, concurrency, created_by, utcnow()],
    )
    return int(cursor.lastrowid or 0)


def set_stage_run(db: Database, distill_id: int, stage: str, run_id: int) -> None:
    """Record the comparison run of a stage (`inputs` or `answers`) as soon as it exists."""
    column = {"inputs": "inputs_run_id", "answers": "answers_run_id"}[stage]
    db.execute(f"UPDATE distill_runs SET {column} = ? WHERE id = ?", [run_id, distill_id])


def set_dataset(db: Database, distill_id: int, dataset_id: int) -> None:
    """Record the dataset a run created, in the transaction that creates it: what makes it the run's own."""
    db.execute("UPDATE distill_runs SET dataset_id = ? WHERE id = ?", [dataset_id, distill_id])


def dataset_owner(db: Database, dataset_id: int) -> int | None:
    """The distillation that created this dataset, if one did."""
    row = db.execute("SELECT id FROM distill_runs WHERE dataset_id = ? ORDER BY id LIMIT 1", [dataset_id]).fetchone()
    return int(row[0]) if row else None


def add_inputs(db: Database, distill_id: int, inputs: Sequence[InputRow]) -> None:
    db.conn.executemany(
        "INSERT OR REPLACE INTO distill_inputs (distill_id, row, example_id, topic, example, variables, input_cost_usd) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            [distill_id, i.row, i.example_id, i.topic, orjson.dumps(i.example, default=str).decode(),
             orjson.dumps(i.variables, default=str).decode(), i.input_cost_usd]
            for i in inputs
        ],
    )


def inputs(db: Database, distill_id: int) -> list[InputRow]:
    return [
        InputRow(**{**row, "example": orjson.loads(row["example"]), "variables": orjson.loads(row["variables"])})
        for row in db.query(
            "SELECT row, example_id, topic, example, variables, input_cost_usd FROM distill_inputs WHERE distill_id = ? ORDER BY row",
            [distill_id],
        )
    ]


def count_inputs(db: Database, distill_id: int) -> int:
    return int(db.execute("SELECT count(*) FROM distill_inputs WHERE distill_id = ?", [distill_id]).fetchone()[0])


def set_state(db: Database, distill_id: int, state: str, *, error: str | None = None, result: dict[str, Any] | None = None) -> None:
    """Record where a run stands; an ended state stamps the time, and a result (when given) replaces the last one."""
    ended = utcnow() if state != "running" else None
    if result is None:
        db.execute("UPDATE distill_runs SET state = ?, error = ?, finished_at = ? WHERE id = ?", [state, error, ended, distill_id])
        return
    db.execute(
        "UPDATE distill_runs SET state = ?, error = ?, finished_at = ?, result = ? WHERE id = ?",
        [state, error, ended, orjson.dumps(result, default=str).decode(), distill_id],
    )


def get_run(db: Database, distill_id: int) -> DistillRow | None:
    rows = list(db.query("SELECT * FROM distill_runs WHERE id = ?", [distill_id]))
    return _run(rows[0]) if rows else None


def list_runs(db: Database, *, limit: int = 50) -> list[DistillRow]:
    return [_run(row) for row in db.query("SELECT * FROM distill_runs ORDER BY id DESC LIMIT ?", [limit])]


def examples_by_hash(db: Database, dataset_id: int, hashes: Sequence[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    """Return the id and metadata of the dataset's examples with these content hashes (what a landing finds there)."""
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    wanted = list(dict.fromkeys(hashes))
    for start in range(0, len(wanted), HASH_CHUNK):
        chunk = orjson.dumps(wanted[start:start + HASH_CHUNK]).decode()
        for row in db.query(
            "SELECT id, content_hash, metadata FROM examples WHERE dataset_id = ? AND content_hash IN (SELECT value FROM json_each(?))",
            [dataset_id, chunk],
        ):
            found[row["content_hash"]] = (int(row["id"]), orjson.loads(row["metadata"]))
    return found


def _run(row: dict[str, Any]) -> DistillRow:
    return DistillRow(**{
        **row,
        "seeds": orjson.loads(row["seeds"]),
        "result": orjson.loads(row["result"]) if row["result"] else None,
    })
