"""Ordered schema migrations. Append new ones; never edit one that has shipped.

`PRAGMA user_version` mirrors the number of applied migrations, so tools outside the app (the
sqlite3 shell, a backup script) can tell which schema a file has.
"""

from __future__ import annotations

import sqlite3
import time

from sqlite_utils import Database, Migrations

from workbench.store import is_busy, write_transaction

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


@migrations()
def m004_example_tools(db: Database) -> None:
    # Tool definitions and tool settings of an example (JSON; NULL when it has none), beside the
    # turns, whose JSON now also carries tool calls, results, names and content blocks. Revisions
    # and frozen versions keep them too, so an undo, a revision or a version export loses no tools.
    for table in ("examples", "example_revisions", "version_examples"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN tools TEXT")


@migrations()
def m005_example_metadata_values(db: Database) -> None:
    # The metadata filter (key = value) read every row's JSON: a rare value cost a full read of a
    # million rows (1.4-1.9 s, benchmarks/search_bench.py). One row per scalar metadata value,
    # with the dataset beside it, makes it an index range read in id order: a page walks it newest
    # first and a count reads only that range. Values are kept as the text the filter compares
    # ('true'/'false' for booleans, numbers as SQLite prints them); a null, a list, an object or a
    # value over 256 characters is kept as NULL (its key still listed for the filter's choices),
    # and a filter on a value that long reads the JSON instead.
    # `examples.index_metadata` fills it on every write that sets metadata. (Statements one by
    # one: `executescript` would commit the transaction `apply` runs the migrations in.)
    db.execute(
        """
        CREATE TABLE example_metadata (
            example_id INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            value TEXT,
            dataset_id INTEGER NOT NULL,
            PRIMARY KEY (example_id, key)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX example_metadata_value ON example_metadata(dataset_id, key, value, example_id)")
    db.execute(
        """
        INSERT INTO example_metadata (example_id, key, value, dataset_id)
        SELECT e.id, j.key,
               CASE WHEN j.type = 'true' THEN 'true' WHEN j.type = 'false' THEN 'false'
                    WHEN j.type IN ('text', 'integer', 'real') AND length(CAST(j.atom AS TEXT)) <= 256
                    THEN CAST(j.atom AS TEXT) END,
               e.dataset_id
        FROM examples e, json_each(e.metadata) j
        WHERE length(j.key) <= 256
        """
    )
    # A tag filter joined every tagged row to `examples` only to check its dataset: counting a tag
    # on 30% of a million examples took 0.6-1.3 s, against 0.06-0.15 s inside an index that holds
    # the dataset. The trigger fills the column on every insert, whichever write path makes it.
    # The search index's vocabulary, one row per word occurrence, read lazily: whether any word
    # longer than a typed one starts with it is one short range read (`examples._search_query`).
    db.execute("CREATE VIRTUAL TABLE examples_fts_terms USING fts5vocab(examples_fts, instance)")
    db.execute("ALTER TABLE example_tags ADD COLUMN dataset_id INTEGER")
    db.execute("UPDATE example_tags SET dataset_id = (SELECT e.dataset_id FROM examples e WHERE e.id = example_tags.example_id)")
    db.execute("CREATE INDEX example_tags_dataset ON example_tags(dataset_id, tag, example_id)")
    db.execute(
        """
        CREATE TRIGGER example_tags_dataset AFTER INSERT ON example_tags WHEN NEW.dataset_id IS NULL BEGIN
            UPDATE example_tags SET dataset_id = (SELECT e.dataset_id FROM examples e WHERE e.id = NEW.example_id)
            WHERE example_id = NEW.example_id AND tag = NEW.tag;
        END
        """
    )


def latest_version() -> int:
    """Return the user_version of a file with every migration applied."""
    return len(migrations._migrations)


@migrations()
def m006_jobs(db: Database) -> None:
    # The job ledger, one across every backend. A job keeps the request it sent and its estimate, so
    # a retry or clone launches the same thing; `state` is the closed set in workbench.domain.jobs,
    # `provider_status` the provider's own word. The watcher claims a due job with a lease
    # (lease_owner, lease_until) in one write, so two watchers never poll the same job at once, and
    # backs off through next_poll_at. Events and metrics are keyed (job, event key) and (job, step):
    # a re-poll, or a second watcher, rewrites a row instead of adding one.
    for sql in (
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            backend TEXT NOT NULL,
            provider_job_id TEXT,
            base_model TEXT NOT NULL,
            target TEXT,
            dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            dataset_name TEXT,
            version TEXT,
            state TEXT NOT NULL,
            provider_status TEXT,
            hyperparameters TEXT NOT NULL DEFAULT '{}',
            request TEXT,
            files TEXT,
            train_records INTEGER,
            validation_records INTEGER,
            train_tokens INTEGER,
            estimate_usd REAL,
            estimate TEXT,
            output_model TEXT,
            failure_message TEXT,
            trained_tokens INTEGER,
            progress REAL,
            estimated_finish TEXT,
            cursor TEXT,
            created_at TEXT NOT NULL,
            submitted_at TEXT,
            started_at TEXT,
            finished_at TEXT,
            updated_at TEXT NOT NULL,
            next_poll_at TEXT,
            poll_failures INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_until TEXT,
            retry_of INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
            sweep_id INTEGER,
            note TEXT NOT NULL DEFAULT ''
        )
        """,
        "CREATE INDEX jobs_due ON jobs(state, next_poll_at)",
        "CREATE INDEX jobs_newest ON jobs(created_at DESC)",
        "CREATE INDEX jobs_sweep ON jobs(sweep_id)",
        """
        CREATE TABLE job_events (
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            at TEXT NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL,
            PRIMARY KEY (job_id, key)
        )
        """,
        "CREATE INDEX job_events_time ON job_events(job_id, at)",
        """
        CREATE TABLE job_metrics (
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            epoch REAL,
            train_loss REAL,
            val_loss REAL,
            PRIMARY KEY (job_id, step)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE sweeps (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            grid TEXT NOT NULL,
            max_concurrent INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            job_id INTEGER UNIQUE REFERENCES jobs(id) ON DELETE SET NULL,
            name TEXT NOT NULL,
            backend TEXT NOT NULL,
            model_id TEXT NOT NULL,
            base_model TEXT NOT NULL,
            dataset_name TEXT,
            version TEXT,
            hyperparameters TEXT NOT NULL DEFAULT '{}',
            metrics TEXT NOT NULL DEFAULT '{}',
            cost_usd REAL,
            task TEXT,
            active INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )
        """,
        "CREATE UNIQUE INDEX models_one_active_per_task ON models(task) WHERE active = 1",
        """
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY,
            model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            provider_id TEXT,
            status TEXT NOT NULL,
            units INTEGER,
            hourly_usd REAL,
            created_at TEXT NOT NULL,
            deleted_at TEXT
        )
        """,
    ):
        db.execute(sql)


@migrations()
def m007_deployment_details(db: Database) -> None:
    # What a deployment needs besides m006's columns: the name sent to Bedrock, the commitment bought, the
    # provider's own status word and failure message (the watcher's refresh writes them), and when it last changed.
    for column in ("name TEXT", "commitment TEXT", "provider_status TEXT", "failure_message TEXT", "updated_at TEXT"):
        db.execute(f"ALTER TABLE deployments ADD COLUMN {column}")



@migrations()
def m008_near_duplicate_state(db: Database) -> None:
    # MinHash band keys per example, kept up to date as examples come and change, so finding
    # near-duplicates costs work in proportion to the candidates instead of a fresh index of the
    # whole dataset. `content_hash` is what the keys were computed from: a row whose example now
    # has another hash is stale and recomputed before use.
    db.executescript(
        """
        CREATE TABLE near_signatures (
            example_id INTEGER PRIMARY KEY REFERENCES examples(id) ON DELETE CASCADE,
            dataset_id INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            text_hash INTEGER NOT NULL,
            bands BLOB NOT NULL,
            indexed INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX near_signatures_text ON near_signatures(dataset_id, text_hash, example_id);
        -- Signatures whose band rows are not in near_bands yet: an import writes signatures only, and the
        -- next dedup merges the new band keys into the index in key order (random keys inserted a batch
        -- at a time would touch most of the index's pages per batch).
        CREATE INDEX near_signatures_pending ON near_signatures(dataset_id, example_id) WHERE indexed = 0;
        CREATE TABLE near_bands (
            dataset_id INTEGER NOT NULL,
            band_key INTEGER NOT NULL,
            example_id INTEGER NOT NULL,
            PRIMARY KEY (dataset_id, band_key, example_id)
        ) WITHOUT ROWID;
        -- Band rows of a signature that went (its example deleted or recomputed) are removed by
        -- the next refresh, which decodes `bands`: SQL alone cannot.
        CREATE TABLE near_dead (
            dataset_id INTEGER NOT NULL,
            example_id INTEGER NOT NULL,
            bands BLOB NOT NULL
        );
        CREATE TRIGGER near_signatures_gone AFTER DELETE ON near_signatures BEGIN
            INSERT INTO near_dead (dataset_id, example_id, bands) VALUES (OLD.dataset_id, OLD.example_id, OLD.bands);
        END;
        """
    )


@migrations()
def m009_tasks_and_data_version(db: Database) -> None:
    # Dataset-wide actions run as tasks in their own process; the app polls their row for progress,
    # asks them to stop through it, and keeps their result. `data_version` counts changes to a
    # dataset's examples, so a kept result can say whether the data changed since it was computed.
    db.executescript(
        """
        CREATE TABLE tasks (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            dataset_id INTEGER REFERENCES datasets(id) ON DELETE CASCADE,
            params TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL DEFAULT 'queued',
            stage TEXT NOT NULL DEFAULT '',
            done INTEGER NOT NULL DEFAULT 0,
            total INTEGER NOT NULL DEFAULT 0,
            unit TEXT NOT NULL DEFAULT 'examples',
            eta_s REAL,
            pid INTEGER,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            data_version INTEGER,
            examples INTEGER,
            result TEXT,
            error TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX tasks_dataset_kind ON tasks(dataset_id, kind, id);
        CREATE INDEX tasks_state ON tasks(state, id);
        ALTER TABLE datasets ADD COLUMN data_version INTEGER NOT NULL DEFAULT 0;
        CREATE TRIGGER examples_data_version_insert AFTER INSERT ON examples BEGIN
            UPDATE datasets SET data_version = data_version + 1 WHERE id = NEW.dataset_id;
        END;
        CREATE TRIGGER examples_data_version_delete AFTER DELETE ON examples BEGIN
            UPDATE datasets SET data_version = data_version + 1 WHERE id = OLD.dataset_id;
        END;
        -- Only a real change counts: an UPDATE that writes the value already there (a split that
        -- keeps a row's split, a rescan that finds the same PII) leaves kept results current. The
        -- columns are what a result can depend on; validation_* and token_count are results
        -- themselves (a validate run writing them must not make its own result stale).
        CREATE TRIGGER examples_data_version_update
        AFTER UPDATE OF content_hash, system, messages, tools, metadata, split, tags, review_state, rating,
            quality_score, pii ON examples
        WHEN OLD.content_hash IS NOT NEW.content_hash OR OLD.system IS NOT NEW.system
            OR OLD.messages IS NOT NEW.messages OR OLD.tools IS NOT NEW.tools OR OLD.metadata IS NOT NEW.metadata
            OR OLD.split IS NOT NEW.split OR OLD.tags IS NOT NEW.tags OR OLD.review_state IS NOT NEW.review_state
            OR OLD.rating IS NOT NEW.rating OR OLD.quality_score IS NOT NEW.quality_score OR OLD.pii IS NOT NEW.pii
        BEGIN
            UPDATE datasets SET data_version = data_version + 1 WHERE id = NEW.dataset_id;
        END;
        """
    )

def is_current(db: Database) -> bool:
    """Say whether a file has every migration, with one read and no lock (the cost of every open)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0]) >= latest_version()


def apply(db: Database, *, timeout: float = 10.0) -> None:
    """Bring a database file up to the current schema, oldest migration first; safe to race.

    Several processes may open a new file at once (the app, the job watcher and the API started
    together, or a script run in parallel). WAL is switched on first, outside any transaction
    because SQLite requires that; the switch needs an exclusive lock and fails at once, without
    waiting, when another opener holds one, so it is retried until `timeout`. Then every pending
    migration runs in one `BEGIN IMMEDIATE` transaction with user_version re-read under the lock:
    one opener migrates, the others wait for it and find nothing left to do. Before this, 8
    openers of a new file failed 140 times in 160 ("database is locked", "table datasets already
    exists").
    """
    _enable_wal(db, timeout)
    with write_transaction(db):
        if is_current(db):
            return
        migrations.apply(db)
        db.execute(f"PRAGMA user_version = {len(migrations.applied(db))}")


def _enable_wal(db: Database, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.conn.execute("PRAGMA journal_mode = wal").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(0.005)


@migrations()
def m010_bulk_snapshot_rows(db: Database) -> None:
    # An undo snapshot kept one row per example beside its bulk action, instead of one JSON text in
    # `bulk_actions.before` that a bulk action over a million examples had to build, and its undo
    # and a PII scrub to parse and rewrite, whole in memory. The columns are those of `examples`
    # (`example_id` for `id`), untyped, so a value keeps the storage class it had there: a delete's
    # row holds every column (copied in SQL), any other action's only the one it overwrote (the rest
    # NULL). Snapshots already written move here as they are; `before` is left as '[]'.
    import orjson

    columns = (
        "dataset_id, content_hash, source_line, system, messages, metadata, split, quality_score, rating, "
        "review_state, notes, tags, pii, pii_count, validation_status, validation_messages, token_count, "
        "turn_count, revision, created_at, updated_at, tools"
    )
    names = [c.strip() for c in columns.split(",")]
    db.execute(
        f"""
        CREATE TABLE bulk_snapshot (
            bulk_id INTEGER NOT NULL REFERENCES bulk_actions(id) ON DELETE CASCADE,
            example_id INTEGER NOT NULL,
            {columns},
            PRIMARY KEY (bulk_id, example_id)
        )
        """
    )
    insert = f"INSERT OR IGNORE INTO bulk_snapshot (bulk_id, example_id, {columns}) VALUES ({', '.join('?' * (len(names) + 2))})"
    held = [row[0] for row in db.execute("SELECT id FROM bulk_actions WHERE before != '[]' ORDER BY id")]
    for bulk_id in held:  # one snapshot in memory at a time, as an undo read it before
        (before,) = db.execute("SELECT before FROM bulk_actions WHERE id = ?", [bulk_id]).fetchone()
        rows = [row for row in orjson.loads(before) if isinstance(row, dict) and row.get("id") is not None]
        db.conn.executemany(insert, [(bulk_id, row["id"], *(row.get(c) for c in names)) for row in rows])
        db.execute("UPDATE bulk_actions SET before = '[]' WHERE id = ?", [bulk_id])


@migrations()
def m011_prompt_templates(db: Database) -> None:
    # Prompt templates (workbench.domain.templates): a named template, its numbered versions, and
    # labels that point at a version. A version is immutable (the trigger refuses an UPDATE): an
    # edit is a new version, deduplicated against the newest by `content_hash`. Every label move is
    # also written to `prompt_label_moves`, so who moved `production` when stays visible. (Statements
    # one by one: `executescript` would commit the transaction `apply` runs the migrations in.)
    for sql in (
        """
        CREATE TABLE prompt_templates (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL DEFAULT '',
            task_type TEXT NOT NULL DEFAULT 'general',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE prompt_versions (
            id INTEGER PRIMARY KEY,
            template_id INTEGER NOT NULL REFERENCES prompt_templates(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            system_template TEXT NOT NULL DEFAULT '',
            user_template TEXT NOT NULL,
            variables TEXT NOT NULL DEFAULT '[]',
            few_shot TEXT NOT NULL DEFAULT '[]',
            cot_instruction TEXT,
            settings TEXT NOT NULL,
            commit_message TEXT NOT NULL DEFAULT '',
            content_hash TEXT NOT NULL,
            created_by TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (template_id, version)
        )
        """,
        """
        CREATE TRIGGER prompt_versions_immutable BEFORE UPDATE ON prompt_versions BEGIN
            SELECT RAISE(ABORT, 'template versions are immutable: make a new version instead');
        END
        """,
        """
        CREATE TABLE prompt_labels (
            template_id INTEGER NOT NULL REFERENCES prompt_templates(id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            version_id INTEGER NOT NULL REFERENCES prompt_versions(id) ON DELETE CASCADE,
            moved_at TEXT NOT NULL,
            moved_by TEXT,
            PRIMARY KEY (template_id, label)
        )
        """,
        "CREATE INDEX prompt_labels_version ON prompt_labels(version_id)",
        """
        CREATE TABLE prompt_label_moves (
            id INTEGER PRIMARY KEY,
            template_id INTEGER NOT NULL REFERENCES prompt_templates(id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            from_version INTEGER,
            to_version INTEGER NOT NULL,
            moved_at TEXT NOT NULL,
            moved_by TEXT
        )
        """,
        "CREATE INDEX prompt_label_moves_template ON prompt_label_moves(template_id, id)",
    ):
        db.execute(sql)


@migrations()
def m012_review_queue(db: Database) -> None:
    # The reviewers' queue: outputs to check (one row per source output, so a comparison re-run does
    # not queue its cells twice) and one review per item and reviewer. `sample_key` is a stable
    # number in [0, 1) drawn from the source: an item is double-reviewed while it is below the
    # share set in `review_settings`, so changing the share applies at once and keeps earlier picks.
    # `template_version_id` is a plain number, not a foreign key: versions are immutable and a
    # deleted template should not take the reviews of its outputs with it. (Statements one by one:
    # `executescript` would commit the transaction `apply` runs the migrations in.)
    for sql in (
        """
        CREATE TABLE review_items (
            id INTEGER PRIMARY KEY,
            source_kind TEXT NOT NULL,
            source_id TEXT NOT NULL,
            task_type TEXT NOT NULL DEFAULT '',
            model_id TEXT NOT NULL DEFAULT '',
            template_version_id INTEGER,
            dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            example_id INTEGER,
            system TEXT,
            messages TEXT NOT NULL DEFAULT '[]',
            prompt TEXT,
            output TEXT NOT NULL,
            reference TEXT,
            sample_key REAL NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (source_kind, source_id)
        )
        """,
        "CREATE INDEX review_items_task ON review_items(task_type, id)",
        "CREATE INDEX review_items_model ON review_items(model_id, id)",
        "CREATE INDEX review_items_dataset ON review_items(dataset_id)",
        """
        CREATE TABLE reviews (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES review_items(id) ON DELETE CASCADE,
            reviewer TEXT NOT NULL,
            skipped INTEGER NOT NULL DEFAULT 0,
            verdict TEXT,
            rating INTEGER,
            categories TEXT NOT NULL DEFAULT '[]',
            correction TEXT,
            comment TEXT NOT NULL DEFAULT '',
            dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            example_id INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (item_id, reviewer)
        )
        """,
        "CREATE INDEX reviews_reviewer ON reviews(reviewer, item_id)",
        "CREATE INDEX reviews_updated ON reviews(updated_at, id)",
        "CREATE INDEX reviews_dataset ON reviews(dataset_id)",
        "CREATE TABLE review_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ):
        db.execute(sql)


@migrations()
def m013_comparison_runs(db: Database) -> None:
    """Comparison and evaluation runs, their cells, and the cache of model answers they share.

    A cell is one input x one variant (template version x client x model), kept whole: the output, its
    assertion results, tokens, latency, cost and the price row used. The cache is keyed by a hash of
    the exact request (client, model, settings, rendered prompt), so re-running a comparison, or an
    evaluation that sends the same prompts, calls only what was never answered.
    """
    db.executescript(
        """
        CREATE TABLE comparison_runs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL DEFAULT 'compare',
            name TEXT NOT NULL DEFAULT '',
            dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            dataset_name TEXT,
            version_name TEXT,
            split TEXT,
            model_ref TEXT,
            variants TEXT NOT NULL,
            assertions TEXT NOT NULL DEFAULT '[]',
            judge TEXT,
            concurrency INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'running',
            error TEXT,
            cells_total INTEGER NOT NULL DEFAULT 0,
            created_by TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX comparison_runs_kind ON comparison_runs(kind, id);
        CREATE INDEX comparison_runs_model ON comparison_runs(model_ref, id);
        CREATE TABLE comparison_cells (
            run_id INTEGER NOT NULL REFERENCES comparison_runs(id) ON DELETE CASCADE,
            row INTEGER NOT NULL,
            variant INTEGER NOT NULL,
            example_id INTEGER,
            input TEXT NOT NULL DEFAULT '',
            reference TEXT,
            output TEXT,
            error TEXT,
            passed INTEGER,
            score REAL,
            results TEXT NOT NULL DEFAULT '[]',
            input_tokens INTEGER,
            output_tokens INTEGER,
            latency_ms REAL,
            cost_usd REAL,
            cost_saved_usd REAL NOT NULL DEFAULT 0,
            price_row TEXT,
            cache_hit INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, row, variant)
        ) WITHOUT ROWID;
        CREATE TABLE completion_cache (
            key TEXT PRIMARY KEY,
            client TEXT NOT NULL,
            model TEXT NOT NULL,
            text TEXT NOT NULL,
            input_tokens INTEGER,
            output_tokens INTEGER,
            latency_ms REAL NOT NULL,
            stop_reason TEXT,
            created_at TEXT NOT NULL,
            hits INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        """
    )


@migrations()
def m014_distillation_runs(db: Database) -> None:
    """Distillation runs (a teacher model writing training data) and the inputs each one answers.

    A run points at the comparison runs that called the teacher (seed mode: one that wrote inputs
    per topic, then one that answered them), so a stopped run resumes through them and the
    completion cache. Its inputs are kept as they were chosen, in row order, so a resumed run asks
    about the same rows even after the dataset changed (a fill-references run changes it itself).
    """
    db.executescript(
        """
        CREATE TABLE distill_runs (
            id INTEGER PRIMARY KEY,
            mode TEXT NOT NULL,
            target TEXT NOT NULL,
            teacher TEXT NOT NULL,
            template TEXT NOT NULL,
            template_version_id INTEGER,
            seed_template TEXT,
            source_dataset TEXT,
            split TEXT,
            version_name TEXT,
            input_limit INTEGER,
            seeds TEXT NOT NULL DEFAULT '[]',
            per_topic INTEGER,
            into_dataset TEXT,
            concurrency INTEGER NOT NULL,
            inputs_run_id INTEGER REFERENCES comparison_runs(id) ON DELETE SET NULL,
            answers_run_id INTEGER REFERENCES comparison_runs(id) ON DELETE SET NULL,
            state TEXT NOT NULL DEFAULT 'running',
            error TEXT,
            result TEXT,
            created_by TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX distill_runs_state ON distill_runs(state, id);
        CREATE TABLE distill_inputs (
            distill_id INTEGER NOT NULL REFERENCES distill_runs(id) ON DELETE CASCADE,
            row INTEGER NOT NULL,
            example_id INTEGER,
            topic TEXT,
            example TEXT NOT NULL,
            variables TEXT NOT NULL,
            input_cost_usd REAL,
            PRIMARY KEY (distill_id, row)
        ) WITHOUT ROWID;
        """
    )


# The measures `prediction_daily` keeps per key, as SQL over one `predictions` row (R): what the
# dashboards sum. Frozen with m015 (a later measure is a later migration); `store.predictions` sums
# the same expressions over each inserted batch.
DAILY_MEASURES = {
    "n": "1",
    "n_error": "(R.error IS NOT NULL)",
    "n_cache_hit": "R.cache_hit",
    "n_labelled": "(R.correct IS NOT NULL)",
    "n_correct": "COALESCE(R.correct, 0)",
    "n_rated": "(R.rating IS NOT NULL)",
    "sum_rating": "COALESCE(R.rating, 0)",
    "sum_rating_sq": "COALESCE(R.rating * R.rating, 0)",
    "n_costed": "(R.cost_usd IS NOT NULL)",
    "sum_cost": "COALESCE(R.cost_usd, 0.0)",
    "sum_cost_sq": "COALESCE(R.cost_usd * R.cost_usd, 0.0)",
    "sum_tokens_in": "COALESCE(R.tokens_in, 0)",
    "sum_tokens_out": "COALESCE(R.tokens_out, 0)",
    "sum_tokens_cached": "COALESCE(R.tokens_cached, 0)",
    "n_latency": "(R.latency_ms IS NOT NULL)",
    "sum_latency": "COALESCE(R.latency_ms, 0.0)",
    "sum_latency_sq": "COALESCE(R.latency_ms * R.latency_ms, 0.0)",
    "n_confidence": "(R.confidence IS NOT NULL)",
    "sum_confidence": "COALESCE(R.confidence, 0.0)",
    "sum_input_chars": "COALESCE(R.input_chars, 0)",
    "sum_output_chars": "COALESCE(R.output_chars, 0)",
}
DAILY_KEY = {
    "day": "substr(R.ts, 1, 10)",
    "model_version": "R.model_version",
    "task_type": "COALESCE(R.task_type, '')",
    "template_version": "COALESCE(R.template_version, '')",
    "experiment_id": "COALESCE(R.experiment_id, '')",
    "variant": "COALESCE(R.variant, '')",
}


def _rollup_add(row: str) -> list[str]:
    key_cols, key_vals = ", ".join(DAILY_KEY), ", ".join(DAILY_KEY.values()).replace("R.", f"{row}.")
    measures = ", ".join(DAILY_MEASURES)
    values = ", ".join(DAILY_MEASURES.values()).replace("R.", f"{row}.")
    updates = ", ".join(f"{m} = {m} + excluded.{m}" for m in DAILY_MEASURES)
    latency_values = f"{key_vals}, {row}.latency_bucket"
    return [
        f"INSERT INTO prediction_daily ({key_cols}, {measures}) VALUES ({key_vals}, {values}) "
        f"ON CONFLICT ({key_cols}) DO UPDATE SET {updates};",
        f"INSERT INTO prediction_latency_daily ({key_cols}, bucket, n) SELECT {latency_values}, 1 "
        f"WHERE {row}.latency_bucket IS NOT NULL ON CONFLICT ({key_cols}, bucket) DO UPDATE SET n = n + 1;",
    ]


def _rollup_remove(row: str) -> list[str]:
    match = " AND ".join(f"{col} = {expr}" for col, expr in DAILY_KEY.items()).replace("R.", f"{row}.")
    updates = ", ".join(f"{m} = {m} - ({expr})" for m, expr in DAILY_MEASURES.items()).replace("R.", f"{row}.")
    return [
        f"UPDATE prediction_daily SET {updates} WHERE {match};",
        f"DELETE FROM prediction_daily WHERE {match} AND n <= 0;",
        f"UPDATE prediction_latency_daily SET n = n - 1 WHERE {match} AND bucket = {row}.latency_bucket;",
        f"DELETE FROM prediction_latency_daily WHERE {match} AND bucket = {row}.latency_bucket AND n <= 0;",
    ]


@migrations()
def m015_predictions(db: Database) -> None:
    """Production predictions and feedback, their daily rollups, and the API's tokens.

    `predictions` is a wide, mostly immutable table: cost is priced once on arrival (with the price
    row recorded), so no read re-prices. Charts read `prediction_daily` and `prediction_latency_daily`
    (latency counts in fixed log-spaced buckets, additive across days and models, for p50/p95). New
    rows reach the rollups through `store.predictions.insert_predictions`, which adds each batch with
    one grouped upsert (a per-row trigger doubled the cost of an insert); deletes and updates are
    followed by triggers, whoever makes them. The raw table serves drill-down and drift samples
    through its (column, ts) indexes. Statements one by one: `executescript` would commit the
    transaction `apply` runs the migrations in.
    """
    key_cols = ", ".join(DAILY_KEY)
    tracked = ", ".join(["ts", "model_version", "task_type", "template_version", "experiment_id", "variant", "error",
                         "cache_hit", "correct", "rating", "cost_usd", "tokens_in", "tokens_out", "tokens_cached",
                         "latency_ms", "latency_bucket", "confidence", "input_chars", "output_chars"])
    for sql in (
        """
        CREATE TABLE predictions (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            model_version TEXT NOT NULL CHECK (model_version <> ''),
            template_version TEXT,
            task_type TEXT,
            input TEXT,
            output TEXT,
            input_hash TEXT,
            output_hash TEXT,
            input_chars INTEGER,
            output_chars INTEGER,
            tokens_in INTEGER CHECK (tokens_in >= 0),
            tokens_out INTEGER CHECK (tokens_out >= 0),
            tokens_cached INTEGER CHECK (tokens_cached >= 0),
            latency_ms REAL CHECK (latency_ms >= 0),
            latency_bucket INTEGER,
            cost_usd REAL CHECK (cost_usd >= 0),
            cost_source TEXT NOT NULL DEFAULT 'unpriced',
            price_row TEXT,
            cache_hit INTEGER NOT NULL DEFAULT 0,
            confidence REAL,
            ground_truth TEXT,
            correct INTEGER,
            rating INTEGER CHECK (rating BETWEEN 1 AND 5),
            error TEXT,
            unit_id TEXT,
            experiment_id TEXT,
            variant TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            source TEXT NOT NULL CHECK (source IN ('api', 'track', 'import', 'demo')),
            created_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX predictions_ts ON predictions(ts)",
        "CREATE INDEX predictions_model_ts ON predictions(model_version, ts)",
        "CREATE INDEX predictions_task_ts ON predictions(task_type, ts)",
        "CREATE INDEX predictions_experiment ON predictions(experiment_id, variant, ts) WHERE experiment_id IS NOT NULL",
        "CREATE INDEX predictions_unit ON predictions(unit_id) WHERE unit_id IS NOT NULL",
        f"""
        CREATE TABLE prediction_daily (
            day TEXT NOT NULL, model_version TEXT NOT NULL, task_type TEXT NOT NULL, template_version TEXT NOT NULL,
            experiment_id TEXT NOT NULL, variant TEXT NOT NULL,
            {", ".join(f"{m} {'INTEGER' if m.startswith('n') or 'tokens' in m or 'chars' in m or 'rating' in m else 'REAL'} NOT NULL DEFAULT 0" for m in DAILY_MEASURES)},
            PRIMARY KEY ({key_cols})
        ) WITHOUT ROWID
        """,
        "CREATE INDEX prediction_daily_model ON prediction_daily(model_version, day)",
        f"""
        CREATE TABLE prediction_latency_daily (
            day TEXT NOT NULL, model_version TEXT NOT NULL, task_type TEXT NOT NULL, template_version TEXT NOT NULL,
            experiment_id TEXT NOT NULL, variant TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY ({key_cols}, bucket)
        ) WITHOUT ROWID
        """,
        f"CREATE TRIGGER predictions_rollup_delete AFTER DELETE ON predictions BEGIN {' '.join(_rollup_remove('OLD'))} END",
        f"CREATE TRIGGER predictions_rollup_update AFTER UPDATE OF {tracked} ON predictions BEGIN "
        f"{' '.join(_rollup_remove('OLD') + _rollup_add('NEW'))} END",
        """
        CREATE TABLE prediction_feedback (
            id INTEGER PRIMARY KEY,
            prediction_id INTEGER REFERENCES predictions(id) ON DELETE CASCADE,
            unit_id TEXT,
            rating INTEGER CHECK (rating BETWEEN 1 AND 5),
            correction TEXT,
            categories TEXT NOT NULL DEFAULT '[]',
            comment TEXT NOT NULL DEFAULT '',
            reviewer TEXT,
            ts TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT 'api',
            created_at TEXT NOT NULL,
            CHECK (prediction_id IS NOT NULL OR unit_id IS NOT NULL)
        )
        """,
        "CREATE INDEX prediction_feedback_prediction ON prediction_feedback(prediction_id) WHERE prediction_id IS NOT NULL",
        "CREATE INDEX prediction_feedback_unit ON prediction_feedback(unit_id) WHERE unit_id IS NOT NULL",
        "CREATE INDEX prediction_feedback_ts ON prediction_feedback(ts)",
        """
        CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT,
            last_used_at TEXT
        )
        """,
        "CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens(name) WHERE revoked_at IS NULL",
        "CREATE INDEX api_tokens_prefix ON api_tokens(prefix)",
    ):
        db.execute(sql)


@migrations()
def m016_monitoring_alerts(db: Database) -> None:
    """Alert rules the watcher evaluates, and the events they fire and resolve.

    A rule has at most one open event (the partial unique index), so evaluating twice never fires twice.
    """
    for sql in (
        """
        CREATE TABLE alert_rules (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE CHECK (name <> ''),
            metric TEXT NOT NULL,
            model_version TEXT,
            task_type TEXT,
            window_days INTEGER NOT NULL DEFAULT 1 CHECK (window_days >= 1),
            reference_days INTEGER NOT NULL DEFAULT 7 CHECK (reference_days >= 1),
            comparison TEXT NOT NULL CHECK (comparison IN ('>', '>=', '<', '<=')),
            threshold REAL NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE alert_events (
            id INTEGER PRIMARY KEY,
            rule_id INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
            fired_at TEXT NOT NULL,
            value REAL,
            last_value REAL,
            checked_at TEXT NOT NULL,
            message TEXT NOT NULL DEFAULT '',
            resolved_at TEXT
        )
        """,
        "CREATE UNIQUE INDEX alert_events_open ON alert_events(rule_id) WHERE resolved_at IS NULL",
        "CREATE INDEX alert_events_rule ON alert_events(rule_id, fired_at)",
    ):
        db.execute(sql)


@migrations()
def m017_costs(db: Database) -> None:
    """The workspace's price table and budgets.

    `price_table` starts as a copy of the catalogue's prices (written on first use by `services.costs`,
    `created_by = 'catalogue'`); a user's row overrides it from its `effective_from` day, and closes the
    row it replaces by setting that row's `effective_to`. Prices are USD per 1M tokens, the Provisioned
    Throughput price per model unit per hour. A NULL `effective_from` means "since always".
    """
    for sql in (
        """
        CREATE TABLE price_table (
            id INTEGER PRIMARY KEY,
            model TEXT NOT NULL CHECK (model <> ''),
            provider TEXT,
            match_pattern TEXT,
            input_per_1m REAL CHECK (input_per_1m >= 0),
            output_per_1m REAL CHECK (output_per_1m >= 0),
            cached_input_per_1m REAL CHECK (cached_input_per_1m >= 0),
            training_per_1m REAL CHECK (training_per_1m >= 0),
            pt_hourly REAL CHECK (pt_hourly >= 0),
            effective_from TEXT,
            effective_to TEXT,
            source_url TEXT,
            note TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX price_table_model ON price_table(model, effective_from)",
        """
        CREATE TABLE budgets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE CHECK (name <> ''),
            scope TEXT NOT NULL CHECK (scope IN ('all', 'model', 'provider', 'task', 'tag')),
            scope_value TEXT,
            monthly_usd REAL NOT NULL CHECK (monthly_usd > 0),
            alert_pct REAL NOT NULL DEFAULT 80 CHECK (alert_pct > 0),
            created_at TEXT NOT NULL
        )
        """,
    ):
        db.execute(sql)


@migrations()
def m018_experiments(db: Database) -> None:
    """A/B tests: definitions, state and the decision; assignment itself is a pure hash and needs no table.

    `variants` is JSON, control first: [{"name", "target", "weight"}]. `experiment_units` keeps each
    unit's first exposure per experiment and variant, so the results count distinct units from one
    row a unit instead of GROUP BY over every prediction of the test (110 ms for 60,000 predictions,
    growing with traffic; a few ms this way). A trigger fills it, so every insert path does; its WHEN
    clause leaves traffic outside experiments untouched. Deleting predictions leaves a unit counted:
    it was exposed.
    """
    follow = (
        "INSERT INTO experiment_units (experiment_id, variant, unit_id, first_ts) "
        "VALUES (NEW.experiment_id, NEW.variant, NEW.unit_id, NEW.ts) "
        "ON CONFLICT (experiment_id, variant, unit_id) DO UPDATE SET first_ts = excluded.first_ts "
        "WHERE excluded.first_ts < first_ts;"
    )
    exposed = "NEW.experiment_id IS NOT NULL AND NEW.variant IS NOT NULL AND NEW.unit_id IS NOT NULL"
    for sql in (
        """
        CREATE TABLE experiments (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL DEFAULT '',
            seed TEXT NOT NULL CHECK (seed <> ''),
            unit TEXT NOT NULL CHECK (unit IN ('user', 'session', 'request')),
            variants TEXT NOT NULL,
            metric TEXT NOT NULL,
            guard_metrics TEXT NOT NULL DEFAULT '[]',
            task TEXT,
            state TEXT NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'running', 'stopped', 'shipped')),
            decision TEXT CHECK (decision IN ('ship', 'stop')),
            decided_variant TEXT,
            decision_note TEXT,
            decided_by TEXT,
            decided_at TEXT,
            demo INTEGER NOT NULL DEFAULT 0,
            started_at TEXT,
            stopped_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX experiments_state ON experiments(state, id)",
        """
        CREATE TABLE experiment_units (
            experiment_id TEXT NOT NULL, variant TEXT NOT NULL, unit_id TEXT NOT NULL, first_ts TEXT NOT NULL,
            PRIMARY KEY (experiment_id, variant, unit_id)
        ) WITHOUT ROWID
        """,
        "INSERT INTO experiment_units (experiment_id, variant, unit_id, first_ts) "
        "SELECT experiment_id, variant, unit_id, MIN(ts) FROM predictions "
        "WHERE experiment_id IS NOT NULL AND variant IS NOT NULL AND unit_id IS NOT NULL "
        "GROUP BY experiment_id, variant, unit_id",
        f"CREATE TRIGGER predictions_experiment_units_insert AFTER INSERT ON predictions WHEN {exposed} "
        f"BEGIN {follow} END",
        f"CREATE TRIGGER predictions_experiment_units_update AFTER UPDATE OF experiment_id, variant, unit_id, ts "
        f"ON predictions WHEN {exposed} BEGIN {follow} END",
    ):
        db.execute(sql)


@migrations()
def m019_distill_dataset(db: Database) -> None:
    """The dataset a distillation created (new-dataset mode): it lands only there, never in one of the same name made by another."""
    db.execute("ALTER TABLE distill_runs ADD COLUMN dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL")


@migrations()
def m020_prediction_imports(db: Database) -> None:
    """Log files already imported, by content, so a second import of the same file is refused, not duplicated."""
    db.execute("""
        CREATE TABLE prediction_imports (
            content_key TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            stored INTEGER NOT NULL,
            complete INTEGER NOT NULL
        )
    """)


@migrations()
def m021_team_use(db: Database) -> None:
    """Who may do what (roles by email or domain), what everyone did (the audit trail), and who last changed an example.

    `examples.updated_by` names who last changed an example, so a second person's save over a stale
    copy (an older `revision`) can be refused by name; adding a column with no default rewrites no
    row, so it is quick on millions of examples. Tokens gain an owner, a role and an expiry; existing ones keep ingesting
    as engineers, the only thing they could do before.
    """
    for sql in (
        """
        CREATE TABLE role_assignments (
            id INTEGER PRIMARY KEY,
            pattern TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE audit_events (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL,
            role TEXT,
            via TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX audit_events_ts ON audit_events(ts)",
        "CREATE INDEX audit_events_actor ON audit_events(actor, ts)",
        "CREATE INDEX audit_events_action ON audit_events(action, ts)",
        "CREATE INDEX audit_events_target ON audit_events(target, ts)",
        "ALTER TABLE examples ADD COLUMN updated_by TEXT",
        "ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'engineer'",
        "ALTER TABLE api_tokens ADD COLUMN owner TEXT",
        "ALTER TABLE api_tokens ADD COLUMN created_by TEXT",
        "ALTER TABLE api_tokens ADD COLUMN expires_at TEXT",
    ):
        db.execute(sql)


@migrations()
def m022_snapshot_updated_by(db: Database) -> None:
    """Undo snapshots keep who last changed an example (m021's `examples.updated_by`), so an undone delete puts it back too."""
    db.execute("ALTER TABLE bulk_snapshot ADD COLUMN updated_by")
