"""Ordered schema migrations. Append new ones; never edit one that has shipped.

`PRAGMA user_version` mirrors the number of applied migrations, so tools outside the app (the
sqlite3 shell, a backup script) can tell which schema a file has.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("workbench")


@migrations()
def m001_datasets_and_examples(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL DEFAULT '',
            source_format TEXT,
            split_config TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE examples (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            content_hash TEXT NOT NULL,
            source_line INTEGER,
            system TEXT,
            messages TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            split TEXT NOT NULL DEFAULT 'unassigned',
            quality_score REAL,
            rating INTEGER,
            review_state TEXT NOT NULL DEFAULT 'pending',
            notes TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',
            pii TEXT NOT NULL DEFAULT '[]',
            pii_count INTEGER NOT NULL DEFAULT 0,
            validation_status TEXT NOT NULL DEFAULT 'ok',
            validation_messages TEXT NOT NULL DEFAULT '[]',
            token_count INTEGER NOT NULL DEFAULT 0,
            turn_count INTEGER NOT NULL DEFAULT 0,
            revision INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX examples_dataset_hash ON examples(dataset_id, content_hash);
        CREATE INDEX examples_dataset_split ON examples(dataset_id, split, id);
        CREATE INDEX examples_dataset_review ON examples(dataset_id, review_state, id);
        CREATE INDEX examples_dataset_rating ON examples(dataset_id, rating, id);
        CREATE INDEX examples_dataset_pii ON examples(dataset_id, pii_count);
        CREATE INDEX examples_dataset_validation ON examples(dataset_id, validation_status);
        CREATE INDEX examples_dataset_tokens ON examples(dataset_id, token_count);

        -- Tags are also kept one row per tag so a tag filter is an index lookup, not a JSON scan.
        CREATE TABLE example_tags (
            example_id INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (example_id, tag)
        ) WITHOUT ROWID;
        CREATE INDEX example_tags_tag ON example_tags(tag, example_id);

        CREATE TABLE example_revisions (
            id INTEGER PRIMARY KEY,
            example_id INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
            revision INTEGER NOT NULL,
            system TEXT,
            messages TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (example_id, revision)
        );

        -- rowid = examples.id. A plain FTS5 table (not contentless) because SQLite < 3.43
        -- cannot delete from contentless tables.
        CREATE VIRTUAL TABLE examples_fts USING fts5(text, tokenize = 'unicode61 remove_diacritics 2');

        CREATE TABLE imports (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            filename TEXT NOT NULL,
            format TEXT,
            imported INTEGER NOT NULL,
            duplicates INTEGER NOT NULL,
            error_count INTEGER NOT NULL,
            errors TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL
        );
        CREATE INDEX imports_dataset ON imports(dataset_id, id);

        -- The last bulk action per dataset, with the rows as they were before it, for undo.
        CREATE TABLE bulk_actions (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            example_count INTEGER NOT NULL,
            before TEXT NOT NULL,
            undone INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE INDEX bulk_actions_dataset ON bulk_actions(dataset_id, id);

        CREATE TABLE dataset_versions (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            split TEXT,
            note TEXT NOT NULL DEFAULT '',
            example_count INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (dataset_id, name)
        );
        -- Frozen copies, not references: later edits to an example never change a version.
        CREATE TABLE version_examples (
            version_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            example_id INTEGER,
            content_hash TEXT NOT NULL,
            system TEXT,
            messages TEXT NOT NULL,
            metadata TEXT NOT NULL,
            split TEXT NOT NULL,
            pii TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (version_id, position)
        ) WITHOUT ROWID;
        CREATE INDEX version_examples_hash ON version_examples(version_id, content_hash);

        CREATE TABLE guardrail_rules (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            pattern TEXT NOT NULL,
            scope TEXT NOT NULL DEFAULT 'any',
            action TEXT NOT NULL DEFAULT 'warn',
            message TEXT NOT NULL DEFAULT '',
            case_sensitive INTEGER NOT NULL DEFAULT 0,
            enabled INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m002_search_and_newest_first_indexes(db: Database) -> None:
    # Two reads that were slow at a million examples (benchmarks/search_bench.py, fresh connection).
    # Counting a common search term checks every hit's filters: looked up by id in this narrow index
    # (`_matching` names it with INDEXED BY) rather than in the wide row, 300k hits take 90-125 ms
    # instead of 230-320 ms. It holds every column `_where` compares directly.
    db.execute(
        "CREATE INDEX examples_filter ON examples(id, dataset_id, split, review_state, rating, pii_count, "
        "validation_status, token_count)"
    )
    # The unfiltered page, newest first: (dataset_id, rowid) walks a dataset in id order instead of
    # sorting all of it, about 1 ms instead of 100 ms.
    db.execute("CREATE INDEX examples_dataset ON examples(dataset_id)")


@migrations()
def m003_example_id_high_water(db: Database) -> None:
    # Examples take ids from this counter, never from max(id) alone: an undo (which restores rows
    # under their old ids) and a version diff (which matches examples by id) would both mistake a
    # new example for a deleted one that had its id.
    db.execute("CREATE TABLE id_counters (name TEXT PRIMARY KEY, last_id INTEGER NOT NULL)")
    db.execute("INSERT INTO id_counters (name, last_id) SELECT 'examples', coalesce(max(id), 0) FROM examples")


def apply(db: Database) -> None:
    """Bring a database file up to the current schema, oldest migration first."""
    migrations.apply(db)
    db.execute(f"PRAGMA user_version = {len(migrations.applied(db))}")
