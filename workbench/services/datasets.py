"""Browse, search and label examples; edit turns with revisions; bulk actions with a one-step undo.

Who may do what: reading needs `datasets.read`; labels, tags, notes and ratings on one example need
`labels.write` (what a reviewer fixes while reading); everything else that changes a dataset (edits
of the turns, bulk actions and their undo, delete, rename) needs `datasets.write`. Each change is
recorded in the audit trail in its own transaction, and sets the example's `updated_by` and moves its
`revision` on, so a save made on a copy opened before another person's change is refused by name
(`expected_revision`).
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import orjson
import pandas as pd
from pydantic import BaseModel, Field

from workbench.domain.access import Permission
from workbench.domain.checks import prepare
from workbench.domain.example import Example, Message, ReviewState, Split, keep_turn_fields
from workbench.domain.filters import ExampleFilter
from workbench.domain.formats import Format, Rendered, render
from workbench.domain.locations import field_label, part_label, record_part_label
from workbench.domain.progress import Progress
from workbench.errors import Conflict, InvalidInput, NotFound, QueryTooSlow
from workbench.services import access
from workbench.store import Store
from workbench.store import bulk as bulk_rows
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows
from workbench.store.datasets import Dataset, ImportRecord
from workbench.store.timelimit import time_limit

MAX_TAG_LENGTH = 64
MAX_DESCRIPTION_LENGTH = 2_000


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
    left_alone: int = Field(
        0, description="Examples an undo left as they are because they changed after the action (or came back another way)."
    )


# ------------------------------------------------------------------------------------------ datasets


def list_datasets(store: Store) -> list[Dataset]:
    """Return every dataset, newest first."""
    access.require(store, Permission.DATASETS_READ, action="datasets.list")
    with store.connect() as db:
        return dataset_rows.list_datasets(db)


def get_dataset(store: Store, name: str) -> Dataset:
    """Return a dataset by name, or raise NotFound."""
    access.require(store, Permission.DATASETS_READ, action="dataset.show", target=f"dataset:{name}")
    with store.connect() as db:
        return dataset_rows.get_dataset(db, name)


class DatasetContents(BaseModel):
    """What a dataset holds beyond its name, so a confirmation can say what deleting it removes."""

    examples: int
    revisions: int = Field(description="Earlier revisions of its examples (kept when a turn is edited).")
    versions: int = Field(description="Frozen versions of the dataset.")
    imports: int = Field(description="Entries in its import history.")

    def summary(self) -> str:
        """Say it in words: '21 examples (with 3 earlier revisions), 2 versions and 1 import record'."""
        examples = _count(self.examples, "example")
        if self.revisions:
            examples += f" (with {_count(self.revisions, 'earlier revision')})"
        return f"{examples}, {_count(self.versions, 'version')} and {_count(self.imports, 'import record')}"


def dataset_contents(store: Store, name: str) -> DatasetContents:
    """Count a dataset's examples, revisions, versions and import records."""
    with store.connect() as db:
        return DatasetContents(**dataset_rows.dataset_contents(db, dataset_rows.dataset_id(db, name)))


def delete_dataset(store: Store, name: str) -> DatasetContents:
    """Delete a dataset and everything in it; return what was removed, counted under the write lock."""
    access.require(store, Permission.DATASETS_WRITE, action="dataset.delete", target=dataset_target(store, name))
    with store.write() as db:
        dataset_id = dataset_rows.dataset_id(db, name)
        removed = DatasetContents(**dataset_rows.dataset_contents(db, dataset_id))
        dataset_rows.delete_dataset(db, dataset_id)
        access.audit(db, "dataset.delete", f"dataset:{dataset_id}", name=name, **removed.model_dump())
    return removed


def dataset_target(store: Store, name: str) -> str:
    """Name a dataset in the audit trail by its id (`dataset:3`), which a rename does not change.

    Read before `access.require`, so a refusal names the same target as the change would have;
    a name with no dataset behind it is kept as given (`dataset:typo`).
    """
    with store.connect() as db:
        found = dataset_rows.find_dataset(db, name)
    return f"dataset:{found.id}" if found is not None else f"dataset:{name}"


def rename_dataset(store: Store, name: str, new_name: str) -> Dataset:
    """Give a dataset a new name (the same rules as a name given at import: not blank, no control characters)."""
    from workbench.services.importing import check_dataset_name

    access.require(store, Permission.DATASETS_WRITE, action="dataset.rename", target=dataset_target(store, name))
    new_name = check_dataset_name(new_name)
    with store.write() as db:
        dataset_id = dataset_rows.dataset_id(db, name)
        if new_name != name:
            dataset_rows.rename_dataset(db, dataset_id, new_name)
            access.audit(db, "dataset.rename", f"dataset:{dataset_id}", old=name, new=new_name)
        return dataset_rows.get_dataset(db, dataset_id)


def describe_dataset(store: Store, name: str, description: str) -> Dataset:
    """Set a dataset's description: what it is for, where it came from (plain text, line breaks allowed)."""
    access.require(store, Permission.DATASETS_WRITE, action="dataset.describe", target=dataset_target(store, name))
    description = description.replace("\r\n", "\n").strip()
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"a description may be at most {MAX_DESCRIPTION_LENGTH:,} characters, not {len(description):,}")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in description):
        raise InvalidInput("a description may not contain control characters other than line breaks and tabs")
    with store.write() as db:
        dataset_id = dataset_rows.dataset_id(db, name)
        dataset_rows.touch_dataset(db, dataset_id, description=description)
        access.audit(db, "dataset.describe", f"dataset:{dataset_id}", chars=len(description))
        return dataset_rows.get_dataset(db, dataset_id)


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def import_history(store: Store, name: str) -> list[ImportRecord]:
    """Return a dataset's imports, newest first."""
    access.require(store, Permission.DATASETS_READ, action="dataset.show", target=f"dataset:{name}")
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


def browse(
    store: Store, name: str, flt: ExampleFilter, *, page: int = 1, page_size: int = 50, time_limit_s: float | None = None
) -> Page:
    """Return one page of a dataset's examples matching a filter, newest first.

    The count and the page together run under a time limit (`time_limit_s`, else
    `WORKBENCH_QUERY_TIME_LIMIT` seconds, default 2): a filter that would read too much of a large
    dataset (a one-letter search word over a million examples, say) stops with `QueryTooSlow`,
    which asks the user to narrow it, instead of hanging the page.
    """
    access.require(store, Permission.DATASETS_READ, action="examples.browse", target=f"dataset:{name}")
    page_size = max(1, min(page_size, 500))
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, name)
        try:
            with time_limit(db, time_limit_s):
                total = example_rows.count_examples(db, dataset_id, flt)
                pages = max(1, -(-total // page_size))
                page = max(1, min(page, pages))
                examples = example_rows.page_examples(db, dataset_id, flt, limit=page_size, offset=(page - 1) * page_size)
        except QueryTooSlow as exc:
            size = dataset_rows.get_dataset(db, dataset_id).example_count
            raise QueryTooSlow(
                f"This filter would take too long on {size:,} examples; narrow it ({_narrowing_hint(flt)})."
            ) from exc
    return Page(examples=examples, total=total, page=page, page_size=page_size, pages=pages)


def _narrowing_hint(flt: ExampleFilter) -> str:
    """Say which filters would make a stopped query cheaper, starting with those not set yet."""
    hints = ["add a longer or rarer search word" if flt.search.strip() else "add a search term"]
    if flt.split is None:
        hints.append("a split")
    return " or ".join(hints)


class Neighbours(BaseModel):
    """The examples either side of one in a filtered listing, for previous/next without the table."""

    previous: int | None = Field(default=None, description="The example listed just before (newer), if any.")
    previous_page: int | None = Field(default=None, description="The listing page `previous` is on.")
    next: int | None = Field(default=None, description="The example listed just after (older), if any.")
    next_page: int | None = Field(default=None, description="The listing page `next` is on.")
    listed: bool = Field(default=False, description="Whether the example is on the listing page asked about.")


def neighbours(store: Store, name: str, flt: ExampleFilter, example_id: int, *, page: int = 1, page_size: int = 50) -> Neighbours:
    """Return the examples before and after `example_id` on listing page `page`, crossing into the pages around it.

    An example that is not on that page (opened by its id, or changed so the filter no longer
    matches it) has no neighbours: the listing it would step through is not the one shown.
    """
    page_size = max(1, min(page_size, 500))
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, name)

        def ids(number: int) -> list[int]:
            if number < 1:
                return []
            found = example_rows.page_examples(db, dataset_id, flt, limit=page_size, offset=(number - 1) * page_size)
            return [e.id for e in found if e.id is not None]

        here = ids(page)
        if example_id not in here:
            return Neighbours()
        at = here.index(example_id)
        out = Neighbours(listed=True)
        if at > 0:
            out.previous, out.previous_page = here[at - 1], page
        elif before := ids(page - 1):
            out.previous, out.previous_page = before[-1], page - 1
        if at < len(here) - 1:
            out.next, out.next_page = here[at + 1], page
        elif len(here) == page_size and (after := ids(page + 1)):
            out.next, out.next_page = after[0], page + 1
    return out


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
                "rating": f"{e.rating} ★" if e.rating else "",  # blank, not "None", for unrated
                "tags": ", ".join(e.tags),
                "pii": len(e.pii),
                "checks": e.validation_status.value,
            }
        )
    columns = ["id", "preview", "turns", "tokens", "split", "review", "rating", "tags", "pii", "checks"]
    return pd.DataFrame(rows, columns=columns)


def get_example(store: Store, example_id: int) -> Example:
    """Return one example by id."""
    access.require(store, Permission.DATASETS_READ, action="example.show", target=f"example:{example_id}")
    with store.connect() as db:
        return example_rows.get_example(db, example_id)


def record_json(store: Store, example_id: int, fmt: Format | str) -> Rendered:
    """Return an example as one record of `fmt`, exactly what an export in that format writes, with its losses."""
    try:
        fmt = Format(fmt)
    except ValueError as exc:
        raise InvalidInput(f"unknown format {fmt!r}; choose one of {', '.join(f.value for f in Format)}") from exc
    return render(get_example(store, example_id), fmt)


def part_labels(store: Store, refs: list[tuple[int | None, str]]) -> list[str]:
    """Label (example id, canonical part) pairs the way every tab does: 'system', 'turn 2 (assistant)'.

    For PII findings and guardrail matches; each example's roles are read once.
    """
    roles = _roles(store, [i for i, _ in refs])
    return [part_label(where, roles.get(i, []) if i is not None else []) for i, where in refs]


def field_labels(store: Store, refs: list[tuple[int | None, str]]) -> list[str]:
    """Label (example id, canonical field) pairs a conversion lost: 'turn 2 (assistant), tool_calls', 'tools'."""
    roles = _roles(store, [i for i, _ in refs])
    return [field_label(field, roles.get(i, []) if i is not None else []) for i, field in refs]


def _roles(store: Store, example_ids: list[int | None]) -> dict[int, list[str]]:
    """Return each example's turn roles, read in batches: an export may label thousands of losses."""
    wanted = sorted({i for i in example_ids if i is not None})
    roles: dict[int, list[str]] = dict.fromkeys(wanted, [])
    with store.connect() as db:
        for row in example_rows.raw_rows(db, wanted):
            roles[row["id"]] = [m["role"] for m in orjson.loads(row["messages"])]
    return roles


def record_part_labels(store: Store, fmt: Format | str, refs: list[tuple[int | None, str | None]]) -> list[str]:
    """Label (example id, path in the `fmt` record) pairs, as validation findings carry them, like `part_labels`.

    The example is rendered in `fmt` again so the path is read against the record the check saw;
    a finding without an example or a path gets ''.
    """
    records: dict[int, Any] = {}
    with store.connect() as db:
        for example_id in {i for i, path in refs if i is not None and path}:
            try:
                records[example_id] = render(example_rows.get_example(db, example_id), Format(fmt)).record
            except NotFound:
                records[example_id] = {}
    return [record_part_label(records.get(i, {}), path) if i is not None else "" for i, path in refs]


def revisions(store: Store, example_id: int) -> list[dict[str, Any]]:
    """Return an example's earlier revisions, newest first."""
    access.require(store, Permission.DATASETS_READ, action="example.show", target=f"example:{example_id}")
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
    expected_revision: int | None = None,
) -> Example:
    """Set any of rating (1-5, or None to clear), review state, tags and notes on one example.

    Given `expected_revision` (the revision the caller's copy showed), a save over a change made
    since is refused with `Conflict`, naming who made it, and nothing is written.
    """
    actor = access.require(store, Permission.LABELS_WRITE, action="example.label", target=f"example:{example_id}")
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
        if len(notes) > MAX_NOTES_CHARS:
            raise InvalidInput(f"notes on example #{example_id} are {len(notes):,} characters; at most "
                               f"{MAX_NOTES_CHARS:,} are kept (put long material in a file and link it)")
        fields["notes"] = notes
    if not fields:
        return get_example(store, example_id)
    with _stale_edits_recorded(store, "example.label", example_id), store.write() as db:
        check_revision(db, example_id, expected_revision)
        example_rows.update_labels(db, example_id, by=actor.email, **fields)
        access.audit(db, "example.label", f"example:{example_id}", **_label_detail(fields))
        return example_rows.get_example(db, example_id)


MAX_NOTES_CHARS = 20_000
"""Notes are a reviewer's remarks, shown beside the example: a bound keeps one save from storing megabytes."""


class StaleEdit(Conflict):
    """A save over a newer revision of the example than the one the person opened."""


@contextlib.contextmanager
def _stale_edits_recorded(store: Store, action: str, example_id: int) -> Iterator[None]:
    """Put a refused stale save on the audit trail, after its transaction has rolled back (nothing else was written)."""
    try:
        yield
    except StaleEdit as exc:
        access.refuse(store, action, f"example:{example_id}", reason=f"conflict: {exc}")
        raise


def _label_detail(fields: dict[str, Any]) -> dict[str, Any]:
    """What the trail keeps of a label: the values, except notes (their length: notes can be long)."""
    detail = {k: getattr(v, "value", v) for k, v in fields.items() if k != "notes"}
    if "notes" in fields:
        detail["notes_chars"] = len(fields["notes"])
    return detail


def check_revision(db: Any, example_id: int, expected_revision: int | None) -> None:
    """Refuse a save made on a copy of an example older than the stored one (inside the write lock).

    Called inside the writer's transaction (BEGIN IMMEDIATE), so no other save can land between
    this check and the write. None skips the check (a caller with no copy: the CLI without
    `--revision`, a script). Raises NotFound when the example is gone.
    """
    now = example_rows.stamp(db, example_id)
    if expected_revision is None or now.revision == expected_revision:
        return
    who = now.updated_by or "someone (not recorded)"
    when = now.updated_at[:16].replace("T", " ") + " UTC" if now.updated_at else "an unknown time"
    raise StaleEdit(
        f"example #{example_id} was changed by {who} at {when} after you opened it "
        f"(revision {expected_revision} → {now.revision}), so your edit was not saved: look at their change, "
        "then save yours again"
    )


def edit_turns(
    store: Store, example_id: int, system: str | None, messages: list[Message], *, expected_revision: int | None = None
) -> Example:
    """Replace an example's system prompt and turns, keeping the previous content as a revision.

    `expected_revision` as for `label`: a save over someone else's newer change is refused by name.
    """
    actor = access.require(store, Permission.DATASETS_WRITE, action="example.edit", target=f"example:{example_id}")
    if not messages:
        raise InvalidInput("an example needs at least one turn")
    if not any(m.role.value == "assistant" for m in messages):
        raise InvalidInput("an example needs at least one assistant turn for the model to learn from")
    with _stale_edits_recorded(store, "example.edit", example_id), store.write() as db:
        check_revision(db, example_id, expected_revision)
        old = example_rows.get_example(db, example_id)
        turns = keep_turn_fields(old.messages, messages)
        new = prepare(old.model_copy(update={"system": system or None, "messages": turns}))
        if new.content_hash == old.content_hash:
            return old
        saved = example_rows.save_revision(db, old, new, by=actor.email)
        access.audit(db, "example.edit", f"example:{example_id}", revision=f"{old.revision} -> {saved.revision}",
                     turns=f"{len(old.messages)} -> {len(saved.messages)}", system_changed=old.system != saved.system)
        return saved


# ---------------------------------------------------------------------------------------------- bulk


BULK_BATCH = 1000
"""Examples a bulk action or its undo snapshots, changes and reports progress on at a time."""

_STAGES = {
    BulkAction.TAG: "tagging examples",
    BulkAction.ACCEPT: "accepting examples",
    BulkAction.REJECT: "rejecting examples",
    BulkAction.MOVE_TO_SPLIT: "moving examples",
    BulkAction.DELETE: "deleting examples",
}


def bulk(
    store: Store,
    name: str,
    flt: ExampleFilter,
    action: BulkAction | str,
    value: str = "",
    *,
    progress: Progress | None = None,
) -> BulkResult:
    """Apply one action to every example the filter selects, remembering the before-state for undo.

    One write transaction, a batch of examples at a time (see `_apply`): `Cancelled` rolls it all
    back, so the dataset is either changed whole or not at all.
    """
    try:
        action = BulkAction(action)
    except ValueError as exc:
        raise InvalidInput(f"unknown bulk action {action!r}; choose one of {', '.join(a.value for a in BulkAction)}") from exc
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
    progress = progress or Progress()
    audit_action = "examples.bulk_" + action.value.replace("-", "_")
    access.require(store, Permission.DATASETS_WRITE, action=audit_action, target=dataset_target(store, name))
    with store.write() as db:
        dataset_id = dataset_rows.dataset_id(db, name)
        count = bulk_rows.select_targets(db, dataset_id, flt)
        progress.stage(_STAGES[action], count, "examples")
        if not count:
            bulk_rows.drop_targets(db)
            return BulkResult(action=action, affected=0, detail="nothing matched the filter", undo_available=False)
        _apply(db, dataset_id, count, action, value, progress)
        access.audit(db, audit_action, f"dataset:{dataset_id}", count=count, value=value, filter=filter_summary(flt))
    progress.finish()
    return BulkResult(action=action, affected=count, detail=value)


def delete_examples(
    store: Store, name: str, ids: list[int], detail: str = "", *, progress: Progress | None = None,
    audit_action: str = "examples.bulk_delete",
) -> BulkResult:
    """Delete chosen examples of a dataset as an undoable bulk action (duplicate resolution uses this).

    Ids of other datasets' examples, or of none, are left out. One write transaction, a batch at a
    time, advancing `progress` per batch (the caller names the stage): `Cancelled` rolls it back.
    `audit_action` is what the trail calls it (`duplicates.resolve` for a resolve).
    """
    progress = progress or Progress()
    access.require(store, Permission.DATASETS_WRITE, action=audit_action, target=dataset_target(store, name))
    with store.write() as db:
        dataset_id = dataset_rows.dataset_id(db, name)
        owned = bulk_rows.add_targets(db, dataset_id, ids)
        if owned:
            _apply(db, dataset_id, owned, BulkAction.DELETE, detail, progress)
            access.audit(db, audit_action, f"dataset:{dataset_id}", count=owned, detail=detail)
        else:
            bulk_rows.drop_targets(db)
    return BulkResult(action=BulkAction.DELETE, affected=owned, detail=detail, undo_available=bool(owned))


def _sets(action: BulkAction, value: str) -> tuple[str, str]:
    """Return the column a bulk action writes and the value it writes there."""
    if action is BulkAction.TAG:
        return "tags", value
    if action is BulkAction.MOVE_TO_SPLIT:
        return "split", value
    return "review_state", (ReviewState.ACCEPTED if action is BulkAction.ACCEPT else ReviewState.REJECTED).value


def filter_summary(flt: ExampleFilter) -> dict[str, Any]:
    """The filter a bulk action ran with, for the trail: only the fields set (an empty one selects everything)."""
    return flt.model_dump(mode="json", exclude_defaults=True)


def _apply(db: Any, dataset_id: int, count: int, action: BulkAction, value: str, progress: Progress) -> None:
    """Run a bulk action on the listed targets inside the caller's transaction, snapshotting first what its undo needs.

    A batch at a time (`BULK_BATCH`): each batch's snapshot is written, then the batch changed,
    so memory holds one batch of ids whatever the selection. A delete keeps whole rows (copied in
    SQL; the undo inserts them again); any other action keeps only the value it overwrites, of the
    examples it changes, so its undo can put back that value and nothing else: a label or note
    saved on the example after the action survives the undo.
    """
    bulk_id = bulk_rows.begin(db, dataset_id, action.value, value, count)
    column, new = _sets(action, value)
    by = access.current().email
    for ids in bulk_rows.target_batches(db, BULK_BATCH):
        if action is BulkAction.DELETE:
            bulk_rows.snapshot_rows(db, bulk_id, ids)
            example_rows.delete_examples(db, ids)
        else:
            bulk_rows.snapshot_column(db, bulk_id, ids, column, new)
            if action is BulkAction.TAG:
                example_rows.add_tag(db, ids, value, by=by)
            else:
                example_rows.set_column(db, ids, column, new, by=by)
        progress.advance(len(ids))
    bulk_rows.drop_targets(db)


class LastBulk(BaseModel):
    action: BulkAction
    detail: str
    example_count: int
    created_at: str


def last_bulk(store: Store, name: str) -> LastBulk | None:
    """Return the dataset's last bulk action that can still be undone, if any."""
    access.require(store, Permission.DATASETS_READ, action="dataset.show", target=f"dataset:{name}")
    with store.connect() as db:
        last = bulk_rows.last(db, dataset_rows.dataset_id(db, name))
    if last is None or last.undone:
        return None
    return LastBulk(action=BulkAction(last.action), detail=last.detail, example_count=last.example_count, created_at=last.created_at)


def undo_last_bulk(store: Store, name: str, *, progress: Progress | None = None) -> BulkResult:
    """Take back what the last bulk action changed, and only that, on the examples it changed.

    A tag comes off the examples the action added it to; a review state or split goes back to its
    previous value where it still holds the one the action set; deleted examples come back as
    they were. An example changed since (a reviewer re-labelled it, removed the tag, or the
    deleted text was imported again) is left as it is and counted in `left_alone`. One write
    transaction, reading the snapshot a batch at a time: `Cancelled` rolls it back.
    """
    progress = progress or Progress()
    access.require(store, Permission.DATASETS_WRITE, action="examples.bulk_undo", target=dataset_target(store, name))
    with store.write() as db:
        dataset_id = dataset_rows.dataset_id(db, name)
        last = bulk_rows.last(db, dataset_id)
        if last is None or last.undone:
            raise NotFound("there is no bulk action to undo")
        action = BulkAction(last.action)
        progress.stage("undoing " + action.value, bulk_rows.snapshot_size(db, last.id), "examples")
        restored = left_alone = 0
        for rows in bulk_rows.snapshot_batches(db, last.id, batch=BULK_BATCH):
            back, kept = _undo(db, action, last.detail, rows)
            restored, left_alone = restored + back, left_alone + kept
            progress.advance(len(rows))
        bulk_rows.mark_undone(db, last.id)
        access.audit(db, "examples.bulk_undo", f"dataset:{dataset_id}", undid=action.value, value=last.detail,
                     restored=restored, left_alone=left_alone)
    progress.finish()
    detail = " ".join(filter(None, ("undid", action.value, last.detail, f"on {_count(restored, 'example')}")))
    if left_alone:
        detail += f"; {left_alone} changed since and {'was' if left_alone == 1 else 'were'} left as {'it is' if left_alone == 1 else 'they are'}"
    return BulkResult(action=action, affected=restored, detail=detail, undo_available=False, left_alone=left_alone)


def _undo(db: Any, action: BulkAction, value: str, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Undo one bulk action on one batch of its snapshot; return (examples restored, examples left as they are)."""
    if action is BulkAction.DELETE:
        restored = example_rows.reinsert_rows(db, rows)
        return restored, len(rows) - restored
    column, new = _sets(action, value)
    by = access.current().email
    # Snapshots hold whole rows (earlier versions) or id and column: both name the column. A row
    # without it cannot be undone column-wise, so it goes back whole, as earlier versions did.
    whole = [r for r in rows if column not in r]
    if whole:
        example_rows.restore_rows(db, whole)
    if action is BulkAction.TAG:
        ids = [r["id"] for r in rows if column in r and value not in orjson.loads(r["tags"])]
        restored = example_rows.remove_tag(db, ids, value, by=by)
        return restored + len(whole), len(ids) - restored
    previous = {r["id"]: r[column] for r in rows if column in r and r[column] != new}
    restored = example_rows.restore_column(db, column, previous, new, by=by)
    return restored + len(whole), len(previous) - restored
