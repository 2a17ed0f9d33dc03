"""Browse, search and label examples; edit turns with revisions; bulk actions with a one-step undo."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from workbench.domain.checks import prepare
from workbench.domain.example import Example, Message, ReviewState, Split
from workbench.domain.filters import ExampleFilter
from workbench.errors import InvalidInput, NotFound
from workbench.store import Store
from workbench.store import bulk as bulk_rows
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows
from workbench.store.datasets import Dataset, ImportRecord

MAX_TAG_LENGTH = 64


class Page(BaseModel):
    examples: list[Example]
    total: int = Field(description="Examples matching the filter, across all pages.")
    page: int = Field(description="1-based page number shown.")
    page_size: int
    pages: int


class BulkAction(StrEnum):
    TAG = "tag"
    ACCEPT = "accept"
    REJECT = "reject"
    MOVE_TO_SPLIT = "move-to-split"
    DELETE = "delete"


class BulkResult(BaseModel):
    action: BulkAction
    affected: int
    detail: str = ""
    undo_available: bool = True


# ------------------------------------------------------------------------------------------ datasets


def list_datasets(store: Store) -> list[Dataset]:
    """Return every dataset, newest first."""
    with store.connect() as db:
        return dataset_rows.list_datasets(db)


def get_dataset(store: Store, name: str) -> Dataset:
    """Return a dataset by name, or raise NotFound."""
    with store.connect() as db:
        return dataset_rows.get_dataset(db, name)


def delete_dataset(store: Store, name: str) -> None:
    """Delete a dataset and everything in it."""
    with store.connect() as db:
        dataset_rows.delete_dataset(db, dataset_rows.dataset_id(db, name))


def import_history(store: Store, name: str) -> list[ImportRecord]:
    """Return a dataset's imports, newest first."""
    with store.connect() as db:
        return dataset_rows.list_imports(db, dataset_rows.dataset_id(db, name))


class Facets(BaseModel):
    """What the filter widgets offer for one dataset."""

    splits: dict[str, int]
    tags: dict[str, int]
    metadata_keys: list[str]


def facets(store: Store, name: str) -> Facets:
    """Return split counts, tags in use and metadata keys, to populate the filters."""
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, name)
        return Facets(
            splits=example_rows.split_counts(db, dataset_id),
            tags=example_rows.tag_counts(db, dataset_id),
            metadata_keys=example_rows.metadata_keys(db, dataset_id),
        )


# -------------------------------------------------------------------------------------------- browse


def browse(store: Store, name: str, flt: ExampleFilter, *, page: int = 1, page_size: int = 50) -> Page:
    """Return one page of a dataset's examples matching a filter, newest first."""
    page_size = max(1, min(page_size, 500))
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, name)
        total = example_rows.count_examples(db, dataset_id, flt)
        pages = max(1, -(-total // page_size))
        page = max(1, min(page, pages))
        examples = example_rows.page_examples(db, dataset_id, flt, limit=page_size, offset=(page - 1) * page_size)
    return Page(examples=examples, total=total, page=page, page_size=page_size, pages=pages)


def count_matching(store: Store, filters: dict[str, list[ExampleFilter]]) -> dict[str, list[int]]:
    """Count, per dataset name, the examples each of its filters matches, on one connection.

    For summaries that need many counts and no rows (Home's 'needs attention'); a name that no
    longer exists (deleted in another tab) is left out rather than failing the whole summary.
    """
    counts: dict[str, list[int]] = {}
    with store.connect() as db:
        for name, flts in filters.items():
            dataset = dataset_rows.find_dataset(db, name)
            if dataset is not None:
                counts[name] = [example_rows.count_examples(db, dataset.id, flt) for flt in flts]
    return counts


def examples_frame(examples: list[Example]) -> pd.DataFrame:
    """Return a display table of examples: one row each, the first user turn as a preview."""
    rows = []
    for e in examples:
        first_user = next((m.content for m in e.messages if m.role.value == "user"), "")
        rows.append(
            {
                "id": e.id,
                "preview": first_user[:160],
                "turns": len(e.messages),
                "tokens": e.token_count,
                "split": e.split.value,
                "review": e.review_state.value,
                "rating": e.rating,
                "tags": ", ".join(e.tags),
                "pii": len(e.pii),
                "checks": e.validation_status.value,
            }
        )
    columns = ["id", "preview", "turns", "tokens", "split", "review", "rating", "tags", "pii", "checks"]
    return pd.DataFrame(rows, columns=columns)


def get_example(store: Store, example_id: int) -> Example:
    """Return one example by id."""
    with store.connect() as db:
        return example_rows.get_example(db, example_id)


def revisions(store: Store, example_id: int) -> list[dict[str, Any]]:
    """Return an example's earlier revisions, newest first."""
    with store.connect() as db:
        return example_rows.list_revisions(db, example_id)


# --------------------------------------------------------------------------------------------- label


def clean_tags(tags: list[str]) -> list[str]:
    """Return tags trimmed, de-duplicated and checked, in the order given."""
    out: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise InvalidInput(f"tag {tag[:20]!r}... is longer than {MAX_TAG_LENGTH} characters")
        if any(ord(ch) < 32 for ch in tag):
            raise InvalidInput(f"tag {tag!r} contains control characters")
        if tag not in out:
            out.append(tag)
    return out


def label(
    store: Store,
    example_id: int,
    *,
    rating: int | None | Any = ...,
    review_state: ReviewState | str | None = None,
    tags: list[str] | None = None,
    notes: str | None = None,
) -> Example:
    """Set any of rating (1-5, or None to clear), review state, tags and notes on one example."""
    fields: dict[str, Any] = {}
    if rating is not ...:
        if rating is not None and (not isinstance(rating, int) or not 1 <= rating <= 5):
            raise InvalidInput(f"rating must be 1 to 5, not {rating!r}")
        fields["rating"] = rating
    if review_state is not None:
        fields["review_state"] = ReviewState(review_state)
    if tags is not None:
        fields["tags"] = clean_tags(tags)
    if notes is not None:
        fields["notes"] = notes
    if not fields:
        return get_example(store, example_id)
    with store.connect() as db:
        example_rows.update_labels(db, example_id, **fields)
        return example_rows.get_example(db, example_id)


def edit_turns(store: Store, example_id: int, system: str | None, messages: list[Message]) -> Example:
    """Replace an example's system prompt and turns, keeping the previous content as a revision."""
    if not messages:
        raise InvalidInput("an example needs at least one turn")
    if not any(m.role.value == "assistant" for m in messages):
        raise InvalidInput("an example needs at least one assistant turn for the model to learn from")
    with store.connect() as db:
        old = example_rows.get_example(db, example_id)
        new = prepare(old.model_copy(update={"system": system or None, "messages": messages}))
        if new.content_hash == old.content_hash:
            return old
        return example_rows.save_revision(db, old, new)


# ---------------------------------------------------------------------------------------------- bulk


def bulk(store: Store, name: str, flt: ExampleFilter, action: BulkAction | str, value: str = "") -> BulkResult:
    """Apply one action to every example the filter selects, remembering the before-state for undo."""
    action = BulkAction(action)
    if action is BulkAction.TAG:
        tags = clean_tags([value])
        if not tags:
            raise InvalidInput("give the tag to add")
        value = tags[0]
    if action is BulkAction.MOVE_TO_SPLIT:
        try:
            value = Split(value).value
        except ValueError as exc:
            raise InvalidInput(f"unknown split {value!r}; choose one of {', '.join(s.value for s in Split)}") from exc
    with store.connect() as db, db.atomic():
        dataset_id = dataset_rows.dataset_id(db, name)
        ids = example_rows.matching_ids(db, dataset_id, flt)
        if not ids:
            return BulkResult(action=action, affected=0, detail="nothing matched the filter", undo_available=False)
        _apply(db, dataset_id, ids, action, value)
    return BulkResult(action=action, affected=len(ids), detail=value)


def delete_examples(store: Store, name: str, ids: list[int], detail: str = "") -> BulkResult:
    """Delete chosen examples of a dataset as an undoable bulk action (duplicate resolution uses this)."""
    with store.connect() as db, db.atomic():
        dataset_id = dataset_rows.dataset_id(db, name)
        owned = [row["id"] for row in example_rows.raw_rows(db, ids) if row["dataset_id"] == dataset_id]
        if owned:
            _apply(db, dataset_id, owned, BulkAction.DELETE, detail)
    return BulkResult(action=BulkAction.DELETE, affected=len(owned), detail=detail, undo_available=bool(owned))


def _apply(db: Any, dataset_id: int, ids: list[int], action: BulkAction, value: str) -> None:
    """Run a bulk action inside the caller's transaction, snapshotting the rows first for undo."""
    before = example_rows.raw_rows(db, ids)
    if action is BulkAction.DELETE:
        example_rows.delete_examples(db, ids)
    elif action is BulkAction.TAG:
        example_rows.add_tag(db, ids, value)
    elif action is BulkAction.MOVE_TO_SPLIT:
        example_rows.set_column(db, ids, "split", value)
    else:
        state = ReviewState.ACCEPTED if action is BulkAction.ACCEPT else ReviewState.REJECTED
        example_rows.set_column(db, ids, "review_state", state.value)
    bulk_rows.record(db, dataset_id, action.value, value, before)


class LastBulk(BaseModel):
    action: BulkAction
    detail: str
    example_count: int
    created_at: str


def last_bulk(store: Store, name: str) -> LastBulk | None:
    """Return the dataset's last bulk action that can still be undone, if any."""
    with store.connect() as db:
        last = bulk_rows.last(db, dataset_rows.dataset_id(db, name))
    if last is None or last.undone:
        return None
    return LastBulk(action=BulkAction(last.action), detail=last.detail, example_count=last.example_count, created_at=last.created_at)


def undo_last_bulk(store: Store, name: str) -> BulkResult:
    """Put every example touched by the last bulk action back as it was before it."""
    with store.connect() as db, db.atomic():
        last = bulk_rows.last(db, dataset_rows.dataset_id(db, name))
        if last is None or last.undone:
            raise NotFound("there is no bulk action to undo")
        rows = bulk_rows.take_snapshot(db, last.id)
        example_rows.restore_rows(db, rows)
    detail = f"undid {last.action} {last.detail}".strip()
    return BulkResult(action=BulkAction(last.action), affected=len(rows), detail=detail, undo_available=False)
