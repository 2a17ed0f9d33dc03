"""Example rows: insert, filter, page, update with revisions, and the full-text index beside them."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import orjson
from sqlite_utils import Database

from workbench.domain.example import Example, Message, PiiFinding, ToolDef
from workbench.domain.filters import ExampleFilter, fts_query, prefix_words
from workbench.domain.rows import (
    EncodedExample,
    decode_tools,
    encode_example,
    encode_messages,
    encode_pii,
    encode_tools,
)
from workbench.errors import Conflict, NotFound
from workbench.store import near_state, utcnow, write_transaction

_COLUMNS = (
    "id, dataset_id, content_hash, source_line, system, messages, metadata, split, quality_score, rating, "
    "review_state, notes, tags, pii, pii_count, validation_status, validation_messages, token_count, "
    "turn_count, revision, created_at, updated_at, tools, updated_by"
)


# ------------------------------------------------------------------------------------------ encoding


def row_to_example(row: dict[str, Any]) -> Example:
    """Build an Example from a row of `examples` (trusting what the store wrote).

    Rows written before tool use was stored have no `tools` value (NULL, or no key in an old undo
    snapshot) and plain turns; they read as examples without tools.
    """
    return Example.model_validate(
        {
            **row,
            "tools": [],
            **decode_tools(row.get("tools")),
            "messages": orjson.loads(row["messages"]),
            "metadata": orjson.loads(row["metadata"]),
            "tags": orjson.loads(row["tags"]),
            "pii": orjson.loads(row["pii"]),
            "validation_messages": orjson.loads(row["validation_messages"]),
        }
    )


def _changed(by: str | None) -> str:
    """What a change to an example sets besides its own columns; its parameters are the time and `by`.

    Named (`by`: who made it, as the services pass it), the change sets `updated_by` and moves the
    revision on, labels and bulk actions included, not only edits of the turns: a save made on a
    copy opened before it (`stamp`) can then be refused by name. One SQL expression per statement,
    so a bulk action over a million examples pays nothing per row for it. Unnamed (callers that
    predate attribution), only `updated_at` changes, as it always did.
    """
    return "updated_at = ?, updated_by = coalesce(?, updated_by)" + (", revision = revision + 1" if by is not None else "")


class Stamp(NamedTuple):
    """Where an example stands: its revision, and who changed it last and when (None: before m021, or unknown)."""

    revision: int
    updated_by: str | None
    updated_at: str


def stamp(db: Database, example_id: int) -> Stamp:
    """Return an example's revision and its last change, or raise NotFound."""
    row = db.execute("SELECT revision, updated_by, updated_at FROM examples WHERE id = ?", [example_id]).fetchone()
    if row is None:
        raise NotFound(f"no example with id {example_id}")
    return Stamp(int(row[0]), row[1], row[2])


_INSERT = (
    "INSERT INTO examples (id, dataset_id, content_hash, source_line, system, messages, metadata, split, "
    "quality_score, rating, review_state, notes, tags, pii, pii_count, validation_status, validation_messages, "
    "token_count, turn_count, revision, tools, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


# ------------------------------------------------------------------------------------------- writes


def insert_examples(db: Database, dataset_id: int, examples: Iterable[Example]) -> tuple[list[int], int]:
    """Insert examples that are new to the dataset; return their ids and how many were duplicates."""
    return insert_encoded(db, dataset_id, (encode_example(e) for e in examples))


def insert_encoded(db: Database, dataset_id: int, encoded: Iterable[EncodedExample]) -> tuple[list[int], int]:
    """Insert encoded examples that are new to the dataset; return their ids and how many were duplicates.

    Ids are handed out here (one past the largest, as SQLite would) and duplicates found with one
    query, so each table gets a single `executemany`: about 15% faster than a statement per row for
    a 10,000-row import transaction. Runs inside the caller's transaction if there is one (which
    must hold the write lock: see `write_transaction`), so a batch lands whole or not at all.
    """
    rows = list(encoded)
    now = utcnow()
    conn = db.conn
    example_rows: list[tuple[Any, ...]] = []
    fts_rows: list[tuple[int, str]] = []
    tag_rows: list[tuple[int, str]] = []
    near_rows: list[near_state.NearRow] = []
    with write_transaction(db):
        seen = {
            row[0]
            for row in conn.execute(
                "SELECT content_hash FROM examples WHERE dataset_id = ? AND content_hash IN (SELECT value FROM json_each(?))",
                [dataset_id, orjson.dumps([row[0][0] for row in rows]).decode()],
            )
        }
        next_id = _last_id(conn)
        for values, text, tags, near in rows:
            if values[0] in seen:
                continue
            seen.add(values[0])
            next_id += 1
            example_rows.append((next_id, dataset_id, *values, now, now))
            fts_rows.append((next_id, text))
            tag_rows.extend((next_id, tag) for tag in tags)
            if near is not None:
                near_rows.append((next_id, values[0], *near))
        conn.executemany(_INSERT, example_rows)
        conn.execute("UPDATE id_counters SET last_id = ? WHERE name = 'examples'", [next_id])
        conn.executemany("INSERT INTO examples_fts (rowid, text) VALUES (?, ?)", fts_rows)
        if tag_rows:
            conn.executemany("INSERT OR IGNORE INTO example_tags (example_id, tag) VALUES (?, ?)", tag_rows)
        if example_rows:
            index_metadata(db, example_rows[0][0], next_id)
        # Near-duplicate state computed by the caller lands with its examples; rows without it are
        # computed by the next dedup (see `store.near_state`).
        near_state.insert_state(db, dataset_id, near_rows)
    return [row[0] for row in example_rows], len(rows) - len(example_rows)


def _last_id(conn: sqlite3.Connection) -> int:
    """Return the largest example id ever handed out (see migration m003: ids are never reused)."""
    row = conn.execute(
        "SELECT max(coalesce((SELECT last_id FROM id_counters WHERE name = 'examples'), 0), "
        "coalesce((SELECT max(id) FROM examples), 0))"
    ).fetchone()
    return int(row[0])


def restore_rows(db: Database, rows: list[dict[str, Any]]) -> None:
    """Put back example rows exactly as they were (same ids), with their tags and search text.

    Whole rows, over whatever the examples hold now: only for an undo snapshot that lacks the
    column its action changed (see `services.datasets.undo_last_bulk`); a delete is undone with
    `reinsert_rows`, any other bulk action column by column.
    """
    names = [c.strip() for c in _COLUMNS.split(",")]
    # An upsert, not INSERT OR REPLACE: REPLACE deletes the row first, and the cascade would take the
    # example's revisions and tags with it.
    updates = ", ".join(f"{c} = excluded.{c}" for c in names if c != "id")
    sql = f"INSERT INTO examples ({_COLUMNS}) VALUES ({', '.join('?' * len(names))}) ON CONFLICT(id) DO UPDATE SET {updates}"
    with write_transaction(db):
        for row in rows:
            # .get: an undo snapshot taken before a column was added lacks it (see m004's `tools`).
            db.execute(sql, [row.get(c) for c in names])
            _reindex(db, row_to_example(row))


def reinsert_rows(db: Database, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert deleted example rows back exactly as they were (same ids); return how many went back.

    For the undo of a delete. A row whose id or content is in the dataset again (imported since)
    stays out: putting it back would overwrite that example or make a duplicate of it.
    """
    names = [c.strip() for c in _COLUMNS.split(",")]
    sql = f"INSERT INTO examples ({_COLUMNS}) VALUES ({', '.join('?' * len(names))}) ON CONFLICT DO NOTHING"
    restored = 0
    with write_transaction(db):
        for row in rows:
            # .get: a snapshot taken before a column was added lacks it (see m004's `tools`).
            if db.execute(sql, [row.get(c) for c in names]).rowcount:
                _reindex(db, row_to_example(dict(row)))
                restored += 1
    return restored


def restore_column(db: Database, column: str, previous: Mapping[int, Any], expected: Any, *, by: str | None = None) -> int:
    """Put back each example's previous value of one curation column where it still holds `expected`.

    For the undo of a bulk accept, reject or move to split: an example someone set to another value
    since keeps theirs. Returns how many examples were put back.
    """
    if column not in {"review_state", "split"}:
        raise ValueError(f"not a bulk column: {column}")
    now = utcnow()
    with write_transaction(db):
        cursor = db.conn.executemany(
            f"UPDATE examples SET {column} = ?, {_changed(by)} WHERE id = ? AND {column} = ?",
            [(old, now, by, example_id, expected) for example_id, old in previous.items()],
        )
    return max(cursor.rowcount, 0)


def remove_tag(db: Database, ids: Sequence[int], tag: str, *, by: str | None = None) -> int:
    """Take one tag off many examples, leaving their other tags alone; return how many still had it."""
    now = utcnow()
    removed = 0
    with write_transaction(db):
        for chunk in _chunks(ids):
            stored = db.execute(f"SELECT id, tags FROM examples WHERE id IN ({','.join('?' * len(chunk))})", list(chunk))
            updates = [
                (orjson.dumps([t for t in tags if t != tag]).decode(), now, by, example_id)
                for example_id, raw in stored.fetchall()
                if tag in (tags := orjson.loads(raw))
            ]
            db.conn.executemany(f"UPDATE examples SET tags = ?, {_changed(by)} WHERE id = ?", updates)
            db.conn.executemany("DELETE FROM example_tags WHERE example_id = ? AND tag = ?", [(u[-1], tag) for u in updates])
            removed += len(updates)
    return removed


def _reindex(db: Database, example: Example) -> None:
    assert example.id is not None
    db.execute("DELETE FROM examples_fts WHERE rowid = ?", [example.id])
    db.execute("INSERT INTO examples_fts (rowid, text) VALUES (?, ?)", [example.id, example.plain_text()])
    db.execute("DELETE FROM example_tags WHERE example_id = ?", [example.id])
    for tag in example.tags:
        db.execute("INSERT OR IGNORE INTO example_tags (example_id, tag) VALUES (?, ?)", [example.id, tag])
    index_metadata(db, example.id, example.id)


def update_labels(db: Database, example_id: int, *, by: str | None = None, **fields: Any) -> None:
    """Set curation fields (rating, review_state, notes, tags, split, quality_score) on one example, as `by`."""
    allowed = {"rating", "review_state", "notes", "tags", "split", "quality_score"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not a label field: {', '.join(sorted(unknown))}")
    values = {k: (orjson.dumps(v).decode() if k == "tags" else getattr(v, "value", v)) for k, v in fields.items()}
    with write_transaction(db):
        cursor = db.execute(
            f"UPDATE examples SET {', '.join(f'{k} = ?' for k in values)}, {_changed(by)} WHERE id = ?",
            [*values.values(), utcnow(), by, example_id],
        )
        if cursor.rowcount == 0:
            raise NotFound(f"no example with id {example_id}")
        if "tags" in fields:
            db.execute("DELETE FROM example_tags WHERE example_id = ?", [example_id])
            for tag in fields["tags"]:
                db.execute("INSERT OR IGNORE INTO example_tags (example_id, tag) VALUES (?, ?)", [example_id, tag])


def find_clash(db: Database, example: Example, content_hash: str) -> int | None:
    """Return another example of the same dataset that already has this content hash, if one does."""
    row = db.execute(
        "SELECT id FROM examples WHERE dataset_id = ? AND content_hash = ? AND id != ?",
        [example.dataset_id, content_hash, example.id],
    ).fetchone()
    return None if row is None else int(row[0])


def save_revision(db: Database, old: Example, new: Example, *, by: str | None = None) -> Example:
    """Replace an example's content with `new`, keeping `old` as a numbered revision.

    The hash must stay unique in the dataset: an edit that turns an example into a copy of another
    is refused rather than silently merged. `by` is who made the edit (`updated_by`); None records
nobody rather than leaving the previous person's name on a change they did not make.
    """
    assert old.id is not None
    now = utcnow()
    with write_transaction(db):
        clash = find_clash(db, old, new.content_hash)
        if clash is not None:
            raise Conflict(f"this edit makes example {old.id} identical to example {clash}")
        db.execute(
            "INSERT INTO example_revisions (example_id, revision, system, messages, content_hash, created_at, tools) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [old.id, old.revision, old.system, encode_messages(old.messages), old.content_hash, now, encode_tools(old)],
        )
        db.execute(
            "UPDATE examples SET system = ?, messages = ?, content_hash = ?, revision = ?, pii = ?, pii_count = ?, "
            "validation_status = ?, validation_messages = ?, token_count = ?, turn_count = ?, metadata = ?, updated_at = ?, "
            "tools = ?, updated_by = ? WHERE id = ?",
            [
                new.system,
                encode_messages(new.messages),
                new.content_hash,
                old.revision + 1,
                encode_pii(new.pii),
                len(new.pii),
                new.validation_status.value,
                orjson.dumps(new.validation_messages).decode(),
                new.token_count,
                len(new.messages),
                orjson.dumps(new.metadata, default=str).decode(),
                now,
                encode_tools(new),
                by,
                old.id,
            ],
        )
        updated = get_example(db, old.id)
        _reindex(db, updated)
    return updated


def list_revisions(db: Database, example_id: int) -> list[dict[str, Any]]:
    """Return an example's earlier revisions, newest first, as plain dicts with parsed messages and tools."""
    return [
        {
            **row,
            "messages": [Message.model_validate(m) for m in orjson.loads(row["messages"])],
            "tools": [ToolDef.model_validate(t) for t in decode_tools(row["tools"]).get("tools", [])],
        }
        for row in db.query(
            "SELECT revision, system, messages, content_hash, created_at, tools FROM example_revisions "
            "WHERE example_id = ? ORDER BY revision DESC",
            [example_id],
        )
    ]


def delete_examples(db: Database, ids: Sequence[int]) -> int:
    """Delete examples and their search rows; return how many went."""
    deleted = 0
    with write_transaction(db):
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            db.execute(f"DELETE FROM examples_fts WHERE rowid IN ({marks})", list(chunk))
            deleted += db.execute(f"DELETE FROM examples WHERE id IN ({marks})", list(chunk)).rowcount
    return deleted


def set_column(db: Database, ids: Sequence[int], column: str, value: Any, *, by: str | None = None) -> None:
    """Set one curation column to one value on many examples (bulk accept, move to split...)."""
    if column not in {"review_state", "split", "rating"}:
        raise ValueError(f"not a bulk column: {column}")
    now = utcnow()
    with write_transaction(db):
        for chunk in _chunks(ids):
            db.execute(
                f"UPDATE examples SET {column} = ?, {_changed(by)} WHERE id IN ({','.join('?' * len(chunk))})",
                [value, now, by, *chunk],
            )


def set_splits(db: Database, assignments: Mapping[int, str], *, by: str | None = None) -> None:
    """Write a split per example in one transaction: the caller's, when one is open.

    A split writes batch by batch inside its own transaction; a savepoint per batch would only add
    work (and a statement per savepoint name to the connection's statement cache).
    """
    now = utcnow()
    rows = [(s, now, by, i) for i, s in assignments.items()]
    sql = f"UPDATE examples SET split = ?, {_changed(by)} WHERE id = ?"
    if db.conn.in_transaction:
        db.conn.executemany(sql, rows)
        return
    with write_transaction(db):
        db.conn.executemany(sql, rows)


def add_tag(db: Database, ids: Sequence[int], tag: str, *, by: str | None = None) -> None:
    """Add one tag to many examples, leaving their other tags alone."""
    now = utcnow()
    with write_transaction(db):
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            db.execute(
                f"UPDATE examples SET tags = json_insert(tags, '$[#]', ?), {_changed(by)} "
                f"WHERE id IN ({marks}) AND NOT EXISTS (SELECT 1 FROM json_each(examples.tags) WHERE value = ?)",
                [tag, now, by, *chunk, tag],
            )
            db.conn.executemany("INSERT OR IGNORE INTO example_tags (example_id, tag) VALUES (?, ?)", [(i, tag) for i in chunk])


def replace_content(db: Database, example: Example, *, by: str | None = None) -> None:
    """Overwrite an example's content, findings and token count in place (used by scrub, which keeps no revision)."""
    assert example.id is not None
    with write_transaction(db):
        db.execute(
            "UPDATE examples SET system = ?, messages = ?, content_hash = ?, pii = ?, pii_count = ?, token_count = ?, "
            f"{_changed(by)} WHERE id = ?",
            [
                example.system,
                encode_messages(example.messages),
                example.content_hash,
                encode_pii(example.pii),
                len(example.pii),
                example.token_count,
                utcnow(),
                by,
                example.id,
            ],
        )
        _reindex(db, example)


# -------------------------------------------------------------------------------------------- reads


def get_example(db: Database, example_id: int) -> Example:
    """Return one example, or raise NotFound."""
    row = next(db.query(f"SELECT {_COLUMNS} FROM examples WHERE id = ?", [example_id]), None)
    if row is None:
        raise NotFound(f"no example with id {example_id}")
    return row_to_example(row)


def raw_rows(db: Database, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Return example rows as stored (for undo snapshots)."""
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(ids):
        rows += db.query(f"SELECT {_COLUMNS} FROM examples WHERE id IN ({','.join('?' * len(chunk))})", list(chunk))
    return rows


METADATA_VALUE_MAX = 256
"""Metadata values longer than this are kept as NULL in `example_metadata`, and keys longer than
this not at all (see migration m005); a filter naming one reads the examples' JSON instead."""

# The text a metadata value is compared as, from a `json_each` row `j` of an example's metadata:
# booleans as 'true'/'false', numbers as SQLite prints them, text as it is; NULL for a null, a
# list, an object or a long value (the key is still listed). Kept beside m005's copy.
_METADATA_INDEX = (
    "INSERT INTO example_metadata (example_id, key, value, dataset_id) "
    "SELECT e.id, j.key, CASE WHEN j.type = 'true' THEN 'true' WHEN j.type = 'false' THEN 'false' "
    f"WHEN j.type IN ('text', 'integer', 'real') AND length(CAST(j.atom AS TEXT)) <= {METADATA_VALUE_MAX} "
    "THEN CAST(j.atom AS TEXT) END, e.dataset_id FROM examples e, json_each(e.metadata) j "
    f"WHERE e.id BETWEEN ? AND ? AND length(j.key) <= {METADATA_VALUE_MAX}"
)


def index_metadata(db: Database, first_id: int, last_id: int) -> None:
    """Refresh the metadata filter's rows for examples with ids in [first_id, last_id].

    Called by every write that sets an example's metadata (insert, revision, undo), inside its
    transaction. One statement per batch: SQLite's json_each reads the JSON the row already holds,
    so an import pays no second parse in Python.
    """
    db.execute("DELETE FROM example_metadata WHERE example_id BETWEEN ? AND ?", [first_id, last_id])
    db.execute(_METADATA_INDEX, [first_id, last_id])


def _metadata_indexed(flt: ExampleFilter) -> bool:
    return bool(flt.metadata_field) and max(len(flt.metadata_field), len(flt.metadata_value)) <= METADATA_VALUE_MAX


class _Plan(NamedTuple):
    """What drives a filtered read and how the search term, if any, is checked (see `_plan`)."""

    driver: str = ""
    """'fts', 'meta', 'tag<i>' (the i-th tag), an index of `examples`, or '' for SQLite's own choice."""
    search: str = ""
    """How a search term is checked when it does not drive: 'probe' per row, or 'in' (its hits, read once)."""
    query: str = ""
    """The FTS5 query of the search (see `_search_query`), '' without one."""
    common: bool = False
    """The search term has `FEW_HITS` hits or more and a tag or metadata value is also set: a count
    merges their id lists (see `_intersected`) instead of probing every hit."""


_DEFAULT_PLAN = _Plan()


def _where(dataset_id: int, flt: ExampleFilter, alias: str = "e", *, plan: _Plan = _DEFAULT_PLAN) -> tuple[str, list[Any]]:
    """Return the conditions of a filter on `examples` (as `alias`), leaving out the one the plan's driver reads.

    Tags, metadata values and the search term are probed by the driver's own id column, not
    `examples`' (the same id): SQLite checks a condition in the outermost loop that has its
    columns, so a row a probe rejects is never looked up in `examples`. Counting a common term
    with a rare tag looks up 3,000 rows instead of 300,000.
    """
    ident = _order(plan) if alias == "e" else f"{alias}.id"
    clauses = [f"{alias}.dataset_id = ?"]
    params: list[Any] = [dataset_id]
    if flt.split is not None:
        clauses.append(f"{alias}.split = ?")
        params.append(flt.split.value)
    if flt.review_state is not None:
        clauses.append(f"{alias}.review_state = ?")
        params.append(flt.review_state.value)
    if flt.unrated:
        clauses.append(f"{alias}.rating IS NULL")
    if flt.min_rating is not None:
        clauses.append(f"{alias}.rating >= ?")
        params.append(flt.min_rating)
    if flt.max_rating is not None:
        clauses.append(f"{alias}.rating <= ?")
        params.append(flt.max_rating)
    if flt.has_pii is not None:
        clauses.append(f"{alias}.pii_count {'>' if flt.has_pii else '='} 0")
    if flt.validation_status is not None:
        clauses.append(f"{alias}.validation_status = ?")
        params.append(flt.validation_status.value)
    if flt.min_tokens is not None:
        clauses.append(f"{alias}.token_count >= ?")
        params.append(flt.min_tokens)
    if flt.max_tokens is not None:
        clauses.append(f"{alias}.token_count <= ?")
        params.append(flt.max_tokens)
    for i, tag in enumerate(flt.tags):
        if plan.driver != f"tag{i}":
            # A primary-key probe of (example_id, tag).
            clauses.append(f"EXISTS (SELECT 1 FROM example_tags t WHERE t.example_id = {ident} AND t.tag = ?)")
            params.append(tag)
    if flt.metadata_field and plan.driver != "meta":
        if _metadata_indexed(flt):
            clauses.append(
                f"EXISTS (SELECT 1 FROM example_metadata m WHERE m.example_id = {ident} AND m.key = ? AND m.value = ?)"
            )
            params += [flt.metadata_field, flt.metadata_value]
        else:
            # Too long to be in example_metadata: read the JSON, in the same text form. json_extract takes
            # a path; quoting the key keeps dots and spaces in it literal.
            path = '$."' + flt.metadata_field.replace('"', '""') + '"'
            clauses.append(
                f"(CASE json_type({alias}.metadata, ?) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
                f"WHEN 'text' THEN json_extract({alias}.metadata, ?) WHEN 'integer' THEN CAST(json_extract({alias}.metadata, ?) AS TEXT) "
                f"WHEN 'real' THEN CAST(json_extract({alias}.metadata, ?) AS TEXT) END) = ?"
            )
            params += [path, path, path, path, flt.metadata_value]
    if plan.search == "probe":
        # FTS5 answers MATCH with `rowid = ?` by seeking the term's doclist: tens of microseconds a row.
        clauses.append(f"EXISTS (SELECT 1 FROM examples_fts p WHERE p.rowid = {ident} AND examples_fts MATCH ?)")
        params.append(plan.query)
    elif plan.search == "in":
        # The term's hits, read once into a temporary index (few, see `_plan`), then one lookup a row.
        clauses.append(f"{ident} IN (SELECT rowid FROM examples_fts WHERE examples_fts MATCH ?)")
        params.append(plan.query)
    return " AND ".join(clauses), params


SELECTIVE_RANGE = 2_000
"""A range filter matching fewer rows than this is read through its own index and sorted; one
matching more is checked row by row, newest first, until a page is full (see `_page_plan`). Tags and
metadata values are counted up to the same number to choose the filter that drives (see `_plan`)."""

FEW_ROWS = 300
"""A tag or metadata value with fewer matches than this drives a read that also has a search term,
each of its rows probing the search index, whatever the term's number of hits."""

FEW_HITS = 20_000
"""A search term with fewer hits than this, and more than a tag or metadata value it is combined
with, is read once into a temporary index while the tag or value drives: a rare term and a rare
value (10k rows each at 1M) page in 25-50 ms this way, against 95-160 ms walking the term's hits."""


_RANGE_FIELDS = ("min_tokens", "max_tokens", "min_rating", "max_rating", "has_pii")


def _ranges(dataset_id: int, flt: ExampleFilter) -> list[tuple[str, str, list[Any]]]:
    """Return (index, condition, params) for each range filter: the ones that make a plan sort."""
    out: list[tuple[str, str, list[Any]]] = []
    for index, column, low, high in (
        ("examples_dataset_tokens", "token_count", flt.min_tokens, flt.max_tokens),
        ("examples_dataset_rating", "rating", flt.min_rating, flt.max_rating),
    ):
        bounds = [(op, v) for op, v in ((">=", low), ("<=", high)) if v is not None]
        if bounds:
            out.append((index, " AND ".join(f"{column} {op} ?" for op, _ in bounds), [dataset_id, *(v for _, v in bounds)]))
    if flt.has_pii:
        out.append(("examples_dataset_pii", "pii_count > 0", [dataset_id]))
    return out


def _page_plan(db: Database, dataset_id: int, flt: ExampleFilter) -> str:
    """Choose the index a filtered page (without a search term) is read through.

    A range (tokens, rating, has PII) gives SQLite two plans, and without statistics on how many
    rows a range holds it always takes the range's index, then sorts every match by id. With half
    of a million-row dataset in range that sort read 500,000 wide rows: 0.2 s warm, 23 s from a cold
    disk. So the ranges are counted first, up to `SELECTIVE_RANGE` rows each, through their
    covering indexes (about a millisecond): the narrowest one drives the page if it is that
    selective; otherwise the page walks the narrow `examples_filter` index newest first and stops at
    the page's last row, reading wide rows only for the matches it returns.
    """
    best = _narrowest_range(db, dataset_id, flt)
    return best[1] if best else "examples_filter"


def _narrowest_range(db: Database, dataset_id: int, flt: ExampleFilter) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for index, condition, params in _ranges(dataset_id, flt):
        n = db.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM examples INDEXED BY {index} WHERE dataset_id = ? AND {condition} LIMIT ?)",
            [*params, SELECTIVE_RANGE],
        ).fetchone()[0]
        if n < SELECTIVE_RANGE and (best is None or n < best[0]):
            best = (n, index)
    return best


def _search_query(db: Database, search: str) -> str:
    """Return the FTS5 query for a search, matching whole a bare word the index has no longer word for.

    Bare words match as prefixes (see `fts_query`), but FTS5 merges the hits of every word a prefix
    matches before it yields the first, so a page searching `onboarding*` read all 300k hits where
    `onboarding` reads 50 (12 ms against 76 ms at a million examples). Asking the index's vocabulary
    for one longer word that starts with it takes under a millisecond (`examples_fts_terms`, an
    fts5vocab 'instance' table, stops at the first).
    """
    whole = [
        word
        for word in prefix_words(search)
        if db.execute(
            "SELECT 1 FROM examples_fts_terms WHERE term >= ? AND term < ? LIMIT 1",
            # Every longer word sorts at or after word + '0' (the smallest letter or digit) and before
            # the word with its last letter raised by one.
            [word + "0", word[:-1] + chr(ord(word[-1]) + 1)],
        ).fetchone()
        is None
    ]
    return fts_query(search, whole)


def _capped_count(db: Database, sql: str, params: list[Any], cap: int) -> int:
    return int(db.execute(f"SELECT count(*) FROM ({sql} LIMIT ?)", [*params, cap]).fetchone()[0])


def _labels(dataset_id: int, flt: ExampleFilter) -> list[tuple[str, str, list[Any]]]:
    """Return (driver, rows query, params) for each tag and indexed metadata value of a filter."""
    out: list[tuple[str, str, list[Any]]] = []
    if _metadata_indexed(flt):
        sql = "SELECT example_id FROM example_metadata WHERE dataset_id = ? AND key = ? AND value = ?"
        out.append(("meta", sql, [dataset_id, flt.metadata_field, flt.metadata_value]))
    for i, tag in enumerate(flt.tags):
        out.append((f"tag{i}", "SELECT example_id FROM example_tags WHERE dataset_id = ? AND tag = ?", [dataset_id, tag]))
    return out


def _plan(db: Database, dataset_id: int, flt: ExampleFilter) -> _Plan:
    """Choose what drives a filtered read: the search term, a tag, a metadata value, a range, or none.

    Every driver yields ids in order, so a page stops at its last row, and the other filters probe
    each row through a primary key or the narrow `examples_filter` index. Tags and metadata values
    are counted in their own indexes up to `SELECTIVE_RANGE` (a millisecond or less) and the
    narrowest drives. A search term drives (FTS5 yields its hits in rowid order natively) unless a
    tag or value has fewer than `FEW_ROWS` rows, or fewer rows than a term with under `FEW_HITS`
    hits; reading a common term's hits into a temporary index was slower than walking them
    (1.2 s against 0.5 s for 300k hits, benchmarks/search_bench.py).
    """
    query = _search_query(db, flt.search)
    sized = sorted(
        (_capped_count(db, sql, params, SELECTIVE_RANGE), i, driver) for i, (driver, sql, params) in enumerate(_labels(dataset_id, flt))
    )
    if query:
        if not sized:
            return _Plan("fts", query=query)
        n, _, driver = sized[0]
        if n < FEW_ROWS:
            return _Plan(driver, "probe", query)
        hits = _capped_count(db, "SELECT rowid FROM examples_fts WHERE examples_fts MATCH ?", [query], FEW_HITS)
        return _Plan(driver, "in", query) if n < hits < FEW_HITS else _Plan("fts", query=query, common=hits >= FEW_HITS)
    narrowest = _narrowest_range(db, dataset_id, flt)
    if sized and (narrowest is None or sized[0][0] <= narrowest[0]):
        return _Plan(sized[0][2])
    if narrowest:
        return _Plan(narrowest[1])
    # A wide range: walk the narrow index newest first rather than sort the range (see `_page_plan`).
    return _Plan("examples_filter" if _ranges(dataset_id, flt) else "")


def _matching(
    dataset_id: int, flt: ExampleFilter, select: str, *, index: str | None = None, plan: _Plan | None = None
) -> tuple[str, list[Any]]:
    """Build the query for a filter read as `plan` says (see `_plan`; `_order` names its id column).

    With a search term the FTS table drives the loop, newest rowid first (FTS5 walks its index in
    rowid order natively), and each hit is looked up by id; CROSS JOIN stops the planner from
    scanning `examples` first and probing FTS per row, which is what makes a rare term slow. The
    lookup goes to the narrow `examples_filter` index, which holds every column `_where` compares
    directly, so the wide row is read only for a hit that passes and only when `select` needs it:
    counting a term with 300k hits, or paging past many hits a filter rejects, costs a third of
    reading the rows. A tag or a metadata value drives the same way from its index on (dataset,
    tag or key and value, example id). The planner would take the rowid for `e.id = f.rowid`
    every time, hence INDEXED BY.
    """
    if plan is None:
        query = fts_query(flt.search)
        plan = _Plan("fts" if query else (index or ""), query=query)
    where, params = _where(dataset_id, flt, plan=plan)
    join = "CROSS JOIN examples e INDEXED BY examples_filter ON e.id = d.example_id"
    if plan.driver == "fts":
        sql = (
            f"SELECT {select} FROM examples_fts f CROSS JOIN examples e INDEXED BY examples_filter ON e.id = f.rowid "
            f"WHERE examples_fts MATCH ? AND {where}"
        )
        return sql, [plan.query, *params]
    if plan.driver == "meta":
        sql = f"SELECT {select} FROM example_metadata d {join} WHERE d.dataset_id = ? AND d.key = ? AND d.value = ? AND {where}"
        return sql, [dataset_id, flt.metadata_field, flt.metadata_value, *params]
    if plan.driver.startswith("tag"):
        sql = f"SELECT {select} FROM example_tags d {join} WHERE d.dataset_id = ? AND d.tag = ? AND {where}"
        return sql, [dataset_id, flt.tags[int(plan.driver[3:])], *params]
    hint = f" INDEXED BY {plan.driver}" if plan.driver else ""
    return f"SELECT {select} FROM examples e{hint} WHERE {where}", params


def _order(plan: _Plan) -> str:
    """Return the id column a plan's driver yields rows in, for ORDER BY (the same id as `e.id`)."""
    if plan.driver == "fts":
        return "f.rowid"
    return "d.example_id" if plan.driver == "meta" or plan.driver.startswith("tag") else "e.id"


def page_examples(db: Database, dataset_id: int, flt: ExampleFilter, *, limit: int = 50, offset: int = 0) -> list[Example]:
    """Return one page of matching examples, newest first."""
    plan = _plan(db, dataset_id, flt)
    sql, params = _matching(dataset_id, flt, ", ".join(f"e.{c.strip()}" for c in _COLUMNS.split(",")), plan=plan)
    rows = db.query(f"{sql} ORDER BY {_order(plan)} DESC LIMIT ? OFFSET ?", [*params, limit, offset])
    return [row_to_example(row) for row in rows]


def count_examples(db: Database, dataset_id: int, flt: ExampleFilter) -> int:
    """Return how many examples match a filter.

    A range, a tag or a metadata value alone is counted inside its own index, which holds
    everything the count needs; any other filter is counted through the driver a page would take.
    """
    ranges = _ranges(dataset_id, flt)
    if len(ranges) == 1 and flt.model_copy(update=dict.fromkeys(_RANGE_FIELDS)).is_empty():
        sql, params = _matching(dataset_id, flt, "count(*)")
        return int(db.execute(sql, params).fetchone()[0])
    labels = _labels(dataset_id, flt)
    alone = flt.model_copy(update={"tags": [], "metadata_field": "", "metadata_value": ""}).is_empty()
    if len(labels) == 1 and alone and (flt.tags or _metadata_indexed(flt)):
        _, sql, params = labels[0]
        return int(db.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0])
    plan = _plan(db, dataset_id, flt)
    if labels and plan.common:
        sql, params = _intersected(dataset_id, flt, plan.query, labels)
    else:
        sql, params = _matching(dataset_id, flt, "count(*)", plan=plan)
    return int(db.execute(sql, params).fetchone()[0])


def _intersected(dataset_id: int, flt: ExampleFilter, query: str, labels: list[tuple[str, str, list[Any]]]) -> tuple[str, list[Any]]:
    """Build the count of a search term with tags or metadata values as a merge of their id lists.

    The term's hits (FTS5 yields them in rowid order when asked to) and each tag's or value's ids
    (its index holds them in id order) are read once, side by side: an INTERSECT with ORDER BY is a
    merge in SQLite, with no temporary index. Probing each of a common term's 300k hits for a tag or
    a value took 210-340 ms at a million examples; the merge takes 25-110 ms of CPU (a tag or value
    on 1% or 30% of them, benchmarks/search_bench.py). Only for a term with `FEW_HITS` hits or more:
    with fewer, probing its hits costs less than reading a common tag's whole id list. A page keeps `_plan`'s driver, which stops at its last row. The
    labels' rows belong to the dataset; any other filter is checked on the ids the merge keeps,
    through the narrow `examples_filter` index.
    """
    arms = ["SELECT rowid AS id FROM examples_fts WHERE examples_fts MATCH ?"] + [sql for _, sql, _ in labels]
    # LIMIT -1 (none) keeps the ORDER BY that makes it a merge: SQLite 3.41+ drops a subquery's
    # ORDER BY inside a join unless a LIMIT depends on it, and would then build a temporary index.
    merged = f"SELECT count(*) FROM ({' INTERSECT '.join(arms)} ORDER BY 1 LIMIT -1) x"
    params: list[Any] = [query, *(p for _, _, label_params in labels for p in label_params)]
    indexed = {"tags": [], "search": ""} | ({"metadata_field": "", "metadata_value": ""} if _metadata_indexed(flt) else {})
    rest = flt.model_copy(update=indexed)
    if rest.is_empty():
        return merged, params
    where, rest_params = _where(dataset_id, rest)
    return f"{merged} CROSS JOIN examples e INDEXED BY examples_filter ON e.id = x.id WHERE {where}", [*params, *rest_params]


def matching_ids(db: Database, dataset_id: int, flt: ExampleFilter) -> list[int]:
    """Return the ids of every example matching a filter, oldest first (the target of a bulk action)."""
    sql, params = _matching(dataset_id, flt, "e.id", plan=_plan(db, dataset_id, flt))
    return [row[0] for row in db.execute(f"{sql} ORDER BY e.id", params)]


def iter_examples(db: Database, dataset_id: int, flt: ExampleFilter | None = None, *, batch: int = 2000) -> Iterator[Example]:
    """Yield every matching example in id order, a batch at a time, without holding them all."""
    flt = flt or ExampleFilter()
    sql, params = _matching(dataset_id, flt, ", ".join(f"e.{c.strip()}" for c in _COLUMNS.split(",")))
    last = 0
    while True:
        rows = list(db.query(f"{sql} AND e.id > ? ORDER BY e.id LIMIT ?", [*params, last, batch]))
        if not rows:
            return
        for row in rows:
            yield row_to_example(row)
        last = rows[-1]["id"]


def split_counts(db: Database, dataset_id: int) -> dict[str, int]:
    """Return the number of examples in each split."""
    return {
        row["split"]: row["n"]
        for row in db.query("SELECT split, count(*) AS n FROM examples WHERE dataset_id = ? GROUP BY split", [dataset_id])
    }


def tag_counts(db: Database, dataset_id: int) -> dict[str, int]:
    """Return every tag used in a dataset with how many examples carry it.

    Read from the (dataset_id, tag, example_id) index alone (migration m005), not joined to
    `examples` row by row: the filter widgets ask for this on every Browse view.
    """
    return {
        row["tag"]: row["n"]
        for row in db.query(
            "SELECT tag, count(*) AS n FROM example_tags WHERE dataset_id = ? GROUP BY tag ORDER BY n DESC, tag",
            [dataset_id],
        )
    }


MAX_METADATA_KEYS = 200
"""The metadata filter offers at most this many keys (a dataset with more is not keyed by hand)."""


def metadata_keys(db: Database, dataset_id: int) -> list[str]:
    """Return the metadata keys used anywhere in a dataset, for the metadata filter's and the split's choices.

    Read from `example_metadata`'s index one seek per key (a skip scan: the next key after the last
    one found), so a key only older examples carry is offered too.
    """
    return [
        row[0]
        for row in db.execute(
            "WITH RECURSIVE k(key, n) AS ("
            " SELECT (SELECT min(key) FROM example_metadata WHERE dataset_id = ?), 1"
            " UNION ALL SELECT (SELECT min(key) FROM example_metadata WHERE dataset_id = ? AND key > k.key), n + 1"
            " FROM k WHERE k.key IS NOT NULL AND n < ?"
            ") SELECT key FROM k WHERE key IS NOT NULL",
            [dataset_id, dataset_id, MAX_METADATA_KEYS],
        )
    ]


def pii_of(row: dict[str, Any]) -> list[PiiFinding]:
    """Parse the pii column."""
    return [PiiFinding.model_validate(p) for p in orjson.loads(row["pii"])]


def _chunks(ids: Sequence[int], size: int = 500) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _stratum_sql(stratify_by: str | None) -> tuple[str, list[Any]]:
    """The SQL expression for an example's stratum (its metadata value as text, NULL without one)."""
    if not stratify_by:
        return "NULL", []
    return "CAST(json_extract(metadata, ?) AS TEXT)", ['$."' + stratify_by.replace('"', '""') + '"']


def split_strata(db: Database, dataset_id: int, stratify_by: str | None) -> dict[tuple[str | None, str], int]:
    """Count examples per (stratum, current split): what a split works out each stratum's counts from."""
    stratum, params = _stratum_sql(stratify_by)
    return {
        (row[0], row[1]): int(row[2])
        for row in db.execute(
            f"SELECT {stratum} AS stratum, split, count(*) FROM examples WHERE dataset_id = ? GROUP BY 1, 2",
            [*params, dataset_id],
        )
    }


SPLIT_FETCH = 2000
"""Rows `split_inputs` takes from SQLite's sorter at a time."""


def split_inputs(
    db: Database,
    dataset_id: int,
    stratify_by: str | None,
    rank: Callable[[str], int],
    *,
    only_unassigned: bool = False,
    on_ranked: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, str, str | None]]:
    """Yield (id, current split, stratum) per example, stratum by stratum, each in the order a split deals them.

    The order is `rank(content_hash)`, then content hash, then id. SQLite computes the ranks and
    sorts (spilling to temporary files past its page cache), so nothing here grows with the
    dataset. Ranking happens before the first row comes back; `on_ranked(n)` is told as it goes,
    and whatever it raises (a `Cancelled`) stops the query and is raised here.
    """
    stratum, params = _stratum_sql(stratify_by)
    raised: list[BaseException] = []
    ranked = 0

    def ranked_hash(content_hash: str) -> int:
        nonlocal ranked
        try:
            ranked += 1
            if on_ranked is not None and ranked % 1000 == 0:
                on_ranked(1000)
            return rank(content_hash)
        except BaseException as exc:
            raised.append(exc)
            raise

    name = f"workbench_split_rank_{id(ranked_hash)}"
    db.conn.create_function(name, 1, ranked_hash, deterministic=True)
    only = "AND split = 'unassigned'" if only_unassigned else ""
    rows = db.conn.cursor()
    try:
        rows.execute(
            f"SELECT id, split, {stratum} AS stratum FROM examples WHERE dataset_id = ? {only} "
            f"ORDER BY stratum, {name}(content_hash), content_hash, id",
            [*params, dataset_id],
        )
        while batch := rows.fetchmany(SPLIT_FETCH):
            yield from ((row[0], row[1], row[2]) for row in batch)
    except sqlite3.OperationalError:
        if raised:
            raise raised[0] from None
        raise
    finally:
        with contextlib.suppress(sqlite3.ProgrammingError):  # the connection was closed first
            rows.close()  # the statement first: SQLite keeps a function a live statement uses
            db.conn.create_function(name, 1, None)
