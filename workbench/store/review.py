"""Rows of the reviewers' queue: `review_items` (outputs to check), `reviews` (one per item and reviewer)
and `review_settings` (the queue's knobs, set from the Review page).

An item wants one review, or two while its `sample_key` is below the double-review share: the
second opinion is what agreement is measured on. A skip is a row too (`skipped = 1`), so the
skipper is not offered the item again while everyone else still is.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.domain.example import Message
from workbench.domain.rows import encode_messages
from workbench.errors import NotFound
from workbench.store import utcnow


class SourceKind(StrEnum):
    """Where a queued output came from."""

    COMPARISON = "comparison"
    EVALUATION = "evaluation"
    PREDICTION = "prediction"
    DISTILLATION = "distillation"
    DEMO = "demo"


class Verdict(StrEnum):
    GOOD = "good"
    BAD = "bad"


class ReviewItem(BaseModel):
    """One output waiting for (or having had) a reviewer's look, with what produced it."""

    id: int
    source_kind: SourceKind
    source_id: str = Field(description="The output's id in its source (a comparison cell, an evaluation row...).")
    task_type: str = ""
    model_id: str = ""
    template_version_id: int | None = None
    dataset_id: int | None = None
    dataset: str | None = Field(None, description="The dataset the input came from (its name now), if any.")
    example_id: int | None = Field(None, description="The dataset example the input came from, if any.")
    system: str | None = None
    messages: list[Message] = Field(default_factory=list, description="The input turns the model answered.")
    prompt: str | None = Field(None, description="The rendered prompt, for an output made from one string.")
    output: str
    reference: str | None = None
    sample_key: float = Field(description="Stable in [0, 1): the item is double-reviewed while below the share.")
    created_at: str
    reviews: int = Field(0, description="Reviews it has had (skips not counted).")


class Review(BaseModel):
    """One reviewer's judgement of one item (or their skip)."""

    id: int
    item_id: int
    reviewer: str
    skipped: bool = False
    verdict: Verdict | None = None
    rating: int | None = None
    categories: list[str] = Field(default_factory=list)
    correction: str | None = None
    comment: str = ""
    dataset_id: int | None = Field(None, description="Where the correction landed as a training example.")
    dataset: str | None = None
    example_id: int | None = None
    created_at: str
    updated_at: str


class QueueFilter(BaseModel):
    """Which items a reviewer works through; empty fields match everything."""

    source_kind: SourceKind | None = None
    task_type: str | None = None
    model_id: str | None = None
    with_reference: bool = Field(False, description="Only items that have a reference answer to compare with.")


class ItemRow(BaseModel):
    """An item as `insert_items` writes it."""

    source_kind: SourceKind
    source_id: str
    task_type: str = ""
    model_id: str = ""
    template_version_id: int | None = None
    dataset_id: int | None = None
    example_id: int | None = None
    system: str | None = None
    messages: list[Message] = Field(default_factory=list)
    prompt: str | None = None
    output: str
    reference: str | None = None
    sample_key: float


# ---------------------------------------------------------------------------------------------- items

_ITEM = """
    SELECT i.*, d.name AS dataset,
        (SELECT count(*) FROM reviews r WHERE r.item_id = i.id AND r.skipped = 0) AS reviews
    FROM review_items i LEFT JOIN datasets d ON d.id = i.dataset_id
"""


def _item(row: dict[str, Any]) -> ReviewItem:
    return ReviewItem.model_validate({**row, "messages": orjson.loads(row["messages"])})


def insert_items(db: Database, rows: Sequence[ItemRow]) -> tuple[list[int], int]:
    """Queue items new to the queue; return every row's id (the existing one for a source already queued) and how many were new."""
    ids: list[int] = []
    added = 0
    now = utcnow()
    for row in rows:
        found = db.execute(
            "SELECT id FROM review_items WHERE source_kind = ? AND source_id = ?", [row.source_kind.value, row.source_id]
        ).fetchone()
        if found is not None:
            ids.append(int(found[0]))
            continue
        cursor = db.execute(
            "INSERT INTO review_items (source_kind, source_id, task_type, model_id, template_version_id, dataset_id, "
            "example_id, system, messages, prompt, output, reference, sample_key, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row.source_kind.value, row.source_id, row.task_type, row.model_id, row.template_version_id,
                row.dataset_id, row.example_id, row.system, encode_messages(row.messages), row.prompt, row.output,
                row.reference, row.sample_key, now,
            ],
        )
        ids.append(int(cursor.lastrowid or 0))
        added += 1
    return ids, added


def get_item(db: Database, item_id: int) -> ReviewItem:
    """Return one queued item, or raise NotFound."""
    rows = list(db.query(_ITEM + " WHERE i.id = ?", [item_id]))
    if not rows:
        raise NotFound(f"no review item with id {item_id}")
    return _item(rows[0])


def _filter(flt: QueueFilter) -> tuple[str, list[Any]]:
    where, args = ["1"], []
    if flt.source_kind is not None:
        where.append("i.source_kind = ?")
        args.append(flt.source_kind.value)
    if flt.task_type is not None:
        where.append("i.task_type = ?")
        args.append(flt.task_type)
    if flt.model_id is not None:
        where.append("i.model_id = ?")
        args.append(flt.model_id)
    if flt.with_reference:
        where.append("i.reference IS NOT NULL AND i.reference != ''")
    return " AND ".join(where), args


# An item is open to a reviewer who has not touched it while it has fewer reviews than it wants.
_OPEN = """
    NOT EXISTS (SELECT 1 FROM reviews r WHERE r.item_id = i.id AND r.reviewer = ?)
    AND (SELECT count(*) FROM reviews r WHERE r.item_id = i.id AND r.skipped = 0) < (CASE WHEN i.sample_key < ? THEN 2 ELSE 1 END)
"""


def next_item(db: Database, reviewer: str, flt: QueueFilter, share: float) -> ReviewItem | None:
    """Return the item to show a reviewer next: one waiting for its second opinion, else the oldest open one.

    Second opinions go first so a pair completes while the first review is fresh, and agreement
    has pairs to count as soon as two people have worked the queue.
    """
    where, args = _filter(flt)
    second = list(
        db.query(
            _ITEM + f" WHERE i.sample_key < ? AND {where} AND {_OPEN}"
            " AND EXISTS (SELECT 1 FROM reviews r WHERE r.item_id = i.id AND r.skipped = 0) ORDER BY i.id LIMIT 1",
            [share, *args, reviewer, share],
        )
    )
    if second:
        return _item(second[0])
    rows = list(db.query(_ITEM + f" WHERE {where} AND {_OPEN} ORDER BY i.id LIMIT 1", [*args, reviewer, share]))
    return _item(rows[0]) if rows else None


def queue_counts(db: Database, reviewer: str, flt: QueueFilter, share: float) -> tuple[int, int]:
    """Return (items this reviewer reviewed or skipped, items still open to them) under a filter."""
    where, args = _filter(flt)
    done = db.execute(
        f"SELECT count(*) FROM reviews r JOIN review_items i ON i.id = r.item_id WHERE r.reviewer = ? AND {where}",
        [reviewer, *args],
    ).fetchone()[0]
    left = db.execute(f"SELECT count(*) FROM review_items i WHERE {where} AND {_OPEN}", [*args, reviewer, share]).fetchone()[0]
    return int(done), int(left)


def facets(db: Database) -> dict[str, list[str]]:
    """Return the source kinds, task types and models present in the queue, for the filters."""
    return {
        column: [row[0] for row in db.execute(f"SELECT DISTINCT {column} FROM review_items ORDER BY 1")]
        for column in ("source_kind", "task_type", "model_id")
    }


def count_items(db: Database) -> int:
    """Return how many items the queue holds in all."""
    return int(db.execute("SELECT count(*) FROM review_items").fetchone()[0])


# -------------------------------------------------------------------------------------------- reviews

_REVIEW = "SELECT r.*, d.name AS dataset FROM reviews r LEFT JOIN datasets d ON d.id = r.dataset_id"


def _review(row: dict[str, Any]) -> Review:
    return Review.model_validate({**row, "skipped": bool(row["skipped"]), "categories": orjson.loads(row["categories"])})


def get_review(db: Database, item_id: int, reviewer: str) -> Review | None:
    """Return a reviewer's review (or skip) of an item, if they made one."""
    rows = list(db.query(_REVIEW + " WHERE r.item_id = ? AND r.reviewer = ?", [item_id, reviewer]))
    return _review(rows[0]) if rows else None


def upsert_review(
    db: Database,
    item_id: int,
    reviewer: str,
    *,
    skipped: bool,
    verdict: Verdict | None = None,
    rating: int | None = None,
    categories: Sequence[str] = (),
    correction: str | None = None,
    comment: str = "",
) -> Review:
    """Write a reviewer's review of an item, replacing the one they made before (its landing kept)."""
    now = utcnow()
    db.execute(
        """
        INSERT INTO reviews (item_id, reviewer, skipped, verdict, rating, categories, correction, comment, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (item_id, reviewer) DO UPDATE SET skipped = excluded.skipped, verdict = excluded.verdict,
            rating = excluded.rating, categories = excluded.categories, correction = excluded.correction,
            comment = excluded.comment, updated_at = excluded.updated_at
        """,
        [
            item_id, reviewer, int(skipped), verdict.value if verdict else None, rating,
            orjson.dumps(list(categories)).decode(), correction, comment, now, now,
        ],
    )
    found = get_review(db, item_id, reviewer)
    assert found is not None
    return found


def set_landing(db: Database, review_id: int, dataset_id: int | None, example_id: int | None) -> None:
    """Record where a review's correction landed as a training example (None, None: nowhere)."""
    db.execute("UPDATE reviews SET dataset_id = ?, example_id = ? WHERE id = ?", [dataset_id, example_id, review_id])


def shares_landing(db: Database, review_id: int, example_id: int) -> bool:
    """Say whether another review points at the same example (the same correction, written twice)."""
    return db.execute("SELECT 1 FROM reviews WHERE example_id = ? AND id != ? LIMIT 1", [example_id, review_id]).fetchone() is not None


def reviewer_reviews(db: Database, reviewer: str, *, limit: int = 50) -> list[Review]:
    """Return a reviewer's reviews and skips, most recently changed first."""
    return [
        _review(row)
        for row in db.query(_REVIEW + " WHERE r.reviewer = ? ORDER BY r.updated_at DESC, r.id DESC LIMIT ?", [reviewer, limit])
    ]


def double_reviewed(db: Database) -> list[tuple[ReviewItem, list[Review]]]:
    """Return every item with two reviews or more (skips left out), with its reviews in the order they were made."""
    items = [_item(row) for row in db.query(_ITEM + " WHERE i.id IN (SELECT item_id FROM reviews WHERE skipped = 0"
                                            " GROUP BY item_id HAVING count(*) >= 2) ORDER BY i.id")]
    reviews: dict[int, list[Review]] = {item.id: [] for item in items}
    if items:
        for row in db.query(
            _REVIEW + " WHERE r.skipped = 0 AND r.item_id IN (SELECT value FROM json_each(?)) ORDER BY r.created_at, r.id",
            [orjson.dumps(list(reviews)).decode()],
        ):
            reviews[row["item_id"]].append(_review(row))
    return [(item, reviews[item.id]) for item in items]


def recent_by_task(db: Database, window: int) -> list[dict[str, Any]]:
    """Count, per task type, the bad verdicts and the corrections among its last `window` reviews (skips left out).

    Also returns the dataset its latest correction landed in and the dataset its items came from
    most often: where a retraining would pick up the corrections.
    """
    return list(
        db.query(
            """
            WITH ranked AS (
                SELECT i.task_type, r.verdict, r.correction, r.dataset_id AS landed, i.dataset_id AS source,
                    r.updated_at, r.id,
                    row_number() OVER (PARTITION BY i.task_type ORDER BY r.updated_at DESC, r.id DESC) AS n
                FROM reviews r JOIN review_items i ON i.id = r.item_id WHERE r.skipped = 0
            ), recent AS (SELECT * FROM ranked WHERE n <= ?)
            SELECT task_type, count(*) AS reviews,
                sum(verdict = 'bad') AS bad,
                sum(correction IS NOT NULL) AS corrections,
                (SELECT d.name FROM recent x JOIN datasets d ON d.id = x.landed WHERE x.task_type = recent.task_type
                    ORDER BY x.n LIMIT 1) AS landed_dataset,
                (SELECT d.name FROM recent x JOIN datasets d ON d.id = x.source WHERE x.task_type = recent.task_type
                    GROUP BY x.source ORDER BY count(*) DESC, x.source LIMIT 1) AS source_dataset
            FROM recent GROUP BY task_type ORDER BY task_type
            """,
            [window],
        )
    )


# ------------------------------------------------------------------------------------------- settings


def read_settings(db: Database) -> dict[str, str]:
    """Return the queue settings someone has set (the service fills in the defaults)."""
    return {row[0]: row[1] for row in db.execute("SELECT key, value FROM review_settings")}


def write_settings(db: Database, values: dict[str, str]) -> None:
    """Set queue settings, replacing earlier values."""
    db.conn.executemany(
        "INSERT INTO review_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        list(values.items()),
    )
