"""Filters against a real store: metadata values, tags, word-prefix search, and the query time limit.

Every filter path (`examples._plan` picks which filter drives a read) is checked against a plain
Python filter over the same examples, with the planner's thresholds forced low and high so each
driver runs: the search term, a tag, a metadata value, a range, a tag or value with the term read
once or probed per row.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.domain.example import Example, Message, Role, Split
from workbench.domain.filters import ExampleFilter, fts_query
from workbench.errors import InvalidInput, QueryTooSlow
from workbench.services import datasets
from workbench.store import Store, timelimit
from workbench.store import datasets as dataset_rows
from workbench.store import examples as example_rows

WORDS = ["refund", "refunds", "refundable", "shipping", "invoice", "chargeback", "warranty", "delivery"]
CHANNELS = ["fax"] + ["email"] * 6 + ["chat"] * 5 + ["phone"] * 3  # fax is rare, email common
LONG_VALUE = "x" * 300  # longer than METADATA_VALUE_MAX: filtered by reading the JSON


def _example(i: int) -> Example:
    words = [WORDS[i % len(WORDS)], WORDS[(i * 3 + 1) % len(WORDS)]]
    metadata: dict[str, Any] = {
        "channel": CHANNELS[i % len(CHANNELS)],
        "n": i % 4,
        "flag": i % 5 == 0,
        "ratio": 0.5 if i % 2 else 1.25,
        "nested": ["fax"],
        "dotted.key": "yes" if i % 9 == 0 else "no",
    }
    if i % 11 == 0:
        metadata["note"] = LONG_VALUE
    tags = [tag for tag, every in (("escalated", 13), ("billing", 2), ("vip", 7)) if i % every == 0]
    split = (Split.TRAIN, Split.VALIDATION, Split.TEST)[i % 3]
    return Example(
        messages=[
            Message(role=Role.USER, content=f"Question {i} about {words[0]}"),
            Message(role=Role.ASSISTANT, content=f"Answer about {words[1]} (case {i})"),
        ],
        metadata=metadata,
        tags=tags,
        split=split,
    ).with_hash()


@pytest.fixture
def filled(store: Store) -> tuple[Store, int, list[Example]]:
    """A dataset of 240 varied examples, beside a second dataset sharing its tags and metadata."""
    with store.connect() as db:
        dataset_id = dataset_rows.create_dataset(db, "main").id
        other_id = dataset_rows.create_dataset(db, "other").id
        # Two imports, so ids of the dataset are not one block, and the other dataset sits between.
        example_rows.insert_examples(db, dataset_id, [_example(i) for i in range(120)])
        example_rows.insert_examples(db, other_id, [_example(i) for i in range(60)])
        example_rows.insert_examples(db, dataset_id, [_example(i) for i in range(120, 240)])
        everything = example_rows.page_examples(db, dataset_id, ExampleFilter(), limit=10_000)
    assert len(everything) == 240
    return store, dataset_id, everything


def _text_of_value(value: Any) -> str | None:
    """The text a metadata value is compared as (None: a value the filter never matches)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _tokens(text: str) -> list[str]:
    """Split text as FTS5's unicode61 tokenizer does (letters and digits; the rest separates)."""
    return re.findall(r"[^\W_]+", text.lower())


def _matches_search(text: str, search: str) -> bool:
    """Say whether text holds every word of a search: bare words as prefixes, "quoted" phrases exactly."""
    tokens = _tokens(text)

    def has(phrase: list[str], prefix: bool) -> bool:
        n = len(phrase)
        return any(
            tokens[i : i + n - 1] == phrase[:-1] and (tokens[i + n - 1].startswith(phrase[-1]) if prefix else tokens[i + n - 1] == phrase[-1])
            for i in range(len(tokens) - n + 1)
        )

    for i, part in enumerate(search.split('"')):
        pieces = [part] if i % 2 == 1 else part.split()
        for piece in pieces:
            phrase = _tokens(piece)
            if phrase and not has(phrase, prefix=i % 2 == 0 and len(phrase[-1]) > 1):
                return False
    return True


def _brute(examples: list[Example], flt: ExampleFilter) -> list[int]:
    """Return the ids a filter should select, newest first, by reading every example in Python."""
    out = []
    for e in examples:
        if not _matches_search(e.plain_text(), flt.search):
            continue
        if flt.split is not None and e.split != flt.split:
            continue
        if any(tag not in e.tags for tag in flt.tags):
            continue
        if flt.metadata_field and _text_of_value(e.metadata.get(flt.metadata_field)) != flt.metadata_value:
            continue
        if flt.min_tokens is not None and e.token_count < flt.min_tokens:
            continue
        out.append(e.id)
    return sorted(out, reverse=True)  # type: ignore[arg-type]


FILTERS = [
    ExampleFilter(metadata_field="channel", metadata_value="fax"),
    ExampleFilter(metadata_field="channel", metadata_value="email"),
    ExampleFilter(metadata_field="channel", metadata_value="email", split=Split.TEST),
    ExampleFilter(metadata_field="channel", metadata_value="fax", search="refun"),
    ExampleFilter(metadata_field="channel", metadata_value="email", search="shipping"),
    ExampleFilter(metadata_field="channel", metadata_value="email", search="refund", split=Split.TRAIN),
    ExampleFilter(metadata_field="n", metadata_value="3"),
    ExampleFilter(metadata_field="flag", metadata_value="true"),
    ExampleFilter(metadata_field="ratio", metadata_value="1.25"),
    ExampleFilter(metadata_field="dotted.key", metadata_value="yes"),
    ExampleFilter(metadata_field="note", metadata_value=LONG_VALUE),
    ExampleFilter(metadata_field="nested", metadata_value="fax"),
    ExampleFilter(metadata_field="missing", metadata_value="fax"),
    ExampleFilter(metadata_field="k" * 300, metadata_value="fax"),
    ExampleFilter(tags=["escalated"]),
    ExampleFilter(tags=["billing"]),
    ExampleFilter(tags=["billing", "vip"]),
    ExampleFilter(tags=["escalated"], search="refun"),
    ExampleFilter(tags=["billing"], search="invoice", split=Split.VALIDATION),
    ExampleFilter(tags=["escalated"], metadata_field="channel", metadata_value="email"),
    ExampleFilter(tags=["vip"], metadata_field="channel", metadata_value="chat", search="case", split=Split.TRAIN),
    ExampleFilter(tags=["billing"], min_tokens=3),
    ExampleFilter(metadata_field="channel", metadata_value="email", min_tokens=3, split=Split.TRAIN),
    ExampleFilter(tags=["nobody-has-this"]),
    # A common term with labels is counted by merging id lists, other filters checked after the merge.
    ExampleFilter(tags=["billing", "escalated"], search="case"),
    ExampleFilter(tags=["billing"], metadata_field="channel", metadata_value="email", search="case", min_tokens=3, split=Split.TRAIN),
    ExampleFilter(tags=["escalated"], metadata_field="note", metadata_value=LONG_VALUE, search="case"),
    ExampleFilter(tags=["billing"], metadata_field="k" * 300, metadata_value="fax", search="case"),
    ExampleFilter(search="refun"),
    ExampleFilter(search="refunds"),
    ExampleFilter(search='"refund"'),
]

# (SELECTIVE_RANGE, FEW_ROWS, FEW_HITS): every label drives / none does; the term read once / probed.
THRESHOLDS = [(1, 0, 0), (10_000, 0, 10_000), (10_000, 10_000, 10_000), (10_000, 0, 0), (5, 2, 60)]


@pytest.mark.parametrize("thresholds", THRESHOLDS, ids=lambda t: f"select={t[0]} few={t[1]} hits={t[2]}")
def test_every_filter_path_returns_what_a_python_filter_does(filled, monkeypatch, thresholds) -> None:  # type: ignore[no-untyped-def]
    store, dataset_id, everything = filled
    selective, few, hits = thresholds
    monkeypatch.setattr(example_rows, "SELECTIVE_RANGE", selective)
    monkeypatch.setattr(example_rows, "FEW_ROWS", few)
    monkeypatch.setattr(example_rows, "FEW_HITS", hits)
    with store.connect() as db:
        for flt in FILTERS:
            want = _brute(everything, flt)
            assert example_rows.count_examples(db, dataset_id, flt) == len(want), flt
            assert [e.id for e in example_rows.page_examples(db, dataset_id, flt, limit=7, offset=2)] == want[2:9], flt
            assert example_rows.matching_ids(db, dataset_id, flt) == sorted(want), flt


def test_the_filter_that_drives_is_the_narrowest(filled, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store, dataset_id, _ = filled
    monkeypatch.setattr(example_rows, "FEW_ROWS", 20)
    with store.connect() as db:
        plan = example_rows._plan
        # 'escalated' is on 19 examples of the dataset, 'billing' on 120, fax on 16, email on 96.
        assert plan(db, dataset_id, ExampleFilter(tags=["billing", "escalated"])).driver == "tag1"
        assert plan(db, dataset_id, ExampleFilter(tags=["billing"], metadata_field="channel", metadata_value="fax")).driver == "meta"
        assert plan(db, dataset_id, ExampleFilter(search="case", tags=["escalated"]))[:2] == ("tag0", "probe")
        # 'chargeback' is in 60 examples: more than 'escalated', fewer than FEW_HITS: read once.
        monkeypatch.setattr(example_rows, "FEW_ROWS", 5)
        assert plan(db, dataset_id, ExampleFilter(search="chargeback", tags=["escalated"]))[:2] == ("tag0", "in")
        # 'case' is in every example: its hits drive, the tag is a probe per hit.
        monkeypatch.setattr(example_rows, "FEW_HITS", 100)
        assert plan(db, dataset_id, ExampleFilter(search="case", tags=["escalated"])).driver == "fts"


def test_a_common_term_with_a_tag_or_value_is_counted_by_merging_id_lists(filled, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store, dataset_id, everything = filled
    monkeypatch.setattr(example_rows, "FEW_HITS", 100)  # 'case' is in all 240 examples of 'main' and in 'other'
    monkeypatch.setattr(example_rows, "FEW_ROWS", 0)  # else a tag on 19 examples drives, probing the term
    with store.connect() as db:
        for flt in (
            ExampleFilter(search="case", tags=["escalated"]),
            ExampleFilter(search="case", metadata_field="channel", metadata_value="email"),
            ExampleFilter(search="case", tags=["billing"], split=Split.VALIDATION),
        ):
            plan = example_rows._plan(db, dataset_id, flt)
            assert plan.driver == "fts" and plan.common, flt
            # A merge of rowid-ordered lists, no temporary index: what keeps it fast at a million rows.
            sql, params = example_rows._intersected(dataset_id, flt, plan.query, example_rows._labels(dataset_id, flt))
            steps = " ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "MERGE (INTERSECT)" in steps and "TEMP B-TREE" not in steps, steps
            # 'other' has the same tags and terms: only this dataset's examples count.
            assert example_rows.count_examples(db, dataset_id, flt) == len(_brute(everything, flt)) > 0, flt


def test_a_tag_or_value_in_another_dataset_is_not_counted(filled) -> None:  # type: ignore[no-untyped-def]
    store, dataset_id, everything = filled
    other = datasets.browse(store, "other", ExampleFilter(tags=["escalated"]))
    assert other.total == len([i for i in range(60) if i % 13 == 0])
    assert {e.dataset_id for e in other.examples} == {other.examples[0].dataset_id} != {dataset_id}
    main = datasets.browse(store, "main", ExampleFilter(metadata_field="channel", metadata_value="fax"))
    assert main.total == len(_brute(everything, ExampleFilter(metadata_field="channel", metadata_value="fax")))


def test_metadata_and_tag_edits_are_seen_by_the_filters(filled) -> None:  # type: ignore[no-untyped-def]
    store, dataset_id, everything = filled
    fax = ExampleFilter(metadata_field="channel", metadata_value="fax")
    target = next(e for e in everything if e.metadata["channel"] == "email")
    with store.write() as db:
        edited = target.model_copy(update={"metadata": {**target.metadata, "channel": "fax"}})
        example_rows.save_revision(db, target, edited)
    assert target.id in [e.id for e in datasets.browse(store, "main", fax, page_size=500).examples]

    # Tags set by labelling and by a bulk action are found by the tag filter at once.
    datasets.label(store, target.id, tags=["fresh"])  # type: ignore[arg-type]
    datasets.bulk(store, "main", ExampleFilter(metadata_field="channel", metadata_value="fax"), "tag", "faxed")
    assert [e.id for e in datasets.browse(store, "main", ExampleFilter(tags=["fresh"])).examples] == [target.id]
    faxed = datasets.browse(store, "main", ExampleFilter(tags=["faxed"]))
    assert faxed.total == datasets.browse(store, "main", fax).total == len(_brute(everything, fax)) + 1

    # Deleting removes an example from both filters; undo brings it back to both.
    datasets.bulk(store, "main", ExampleFilter(tags=["faxed"]), "delete")
    assert datasets.browse(store, "main", fax).total == 0
    assert datasets.browse(store, "main", ExampleFilter(tags=["faxed"])).total == 0
    datasets.undo_last_bulk(store, "main")
    assert datasets.browse(store, "main", ExampleFilter(tags=["faxed"])).total == faxed.total
    assert datasets.browse(store, "main", fax).total == faxed.total


def test_an_older_store_gets_its_metadata_and_tag_indexes_filled(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = Store(path)
    with store.connect() as db:
        dataset_id = dataset_rows.create_dataset(db, "d").id
        example_rows.insert_examples(db, dataset_id, [_example(i) for i in range(40)])
        everything = example_rows.page_examples(db, dataset_id, ExampleFilter(), limit=100)
    # Take the file back to before migration m005.
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        DROP TABLE example_metadata;
        DROP TABLE examples_fts_terms;
        DROP TRIGGER example_tags_dataset;
        DROP INDEX example_tags_dataset;
        ALTER TABLE example_tags DROP COLUMN dataset_id;
        DELETE FROM _sqlite_migrations WHERE name LIKE 'm005%';
        PRAGMA user_version = 4;
        """
    )
    conn.close()
    store = Store(path)
    with store.connect() as db:
        for flt in (ExampleFilter(metadata_field="channel", metadata_value="email"), ExampleFilter(tags=["billing"])):
            assert example_rows.count_examples(db, dataset_id, flt) == len(_brute(everything, flt)) > 0


def test_tag_counts_and_metadata_keys_cover_the_whole_dataset(filled) -> None:  # type: ignore[no-untyped-def]
    store, dataset_id, everything = filled
    with store.connect() as db:
        counts = example_rows.tag_counts(db, dataset_id)
        keys = example_rows.metadata_keys(db, dataset_id)
    assert counts == {tag: sum(tag in e.tags for e in everything) for tag in ("billing", "vip", "escalated")}
    assert list(counts) == ["billing", "vip", "escalated"]  # most used first
    # 'note' (too long to be compared in the index) and 'nested' (always a list) are offered too.
    assert keys == sorted({"channel", "n", "flag", "ratio", "nested", "dotted.key", "note"})


# ------------------------------------------------------------------------------------ word prefixes


def test_a_word_prefix_finds_longer_words(filled) -> None:  # type: ignore[no-untyped-def]
    store, _, everything = filled
    found = datasets.browse(store, "main", ExampleFilter(search="refun"), page_size=500).examples
    texts = [e.plain_text() for e in found]
    assert any("refundable" in t for t in texts) and any("refunds" in t for t in texts)
    assert len(found) == len([e for e in everything if "refund" in e.plain_text()])
    # A quoted word is exact: "refund" does not find 'refunds' alone.
    exact = datasets.browse(store, "main", ExampleFilter(search='"refund"'), page_size=500).examples
    assert exact and all(re.search(r"\brefund\b", e.plain_text()) for e in exact)


@pytest.mark.parametrize(
    "search",
    ['" OR 1=1 --', "NEAR(", "refund NEAR( x", "refund AND", "OR", "col:refund", "^refund", "refund*", "re*fund",
     '"unclosed', "'; DROP TABLE examples;--", "(refund", "-refund", "+refund", "refund)", "NOT", "{x}"],
)
def test_hostile_search_text_is_only_ever_words(filled, search: str) -> None:  # type: ignore[no-untyped-def]
    store, _, everything = filled
    flt = ExampleFilter(search=search)
    page = datasets.browse(store, "main", flt, page_size=500)
    assert [e.id for e in page.examples] == _brute(everything, flt)


@pytest.mark.parametrize("search", ["*", "--", '"*"', '""', "- + ^", "()"])
def test_a_search_with_nothing_to_look_for_says_so(filled, search: str) -> None:  # type: ignore[no-untyped-def]
    store, _, _ = filled
    with pytest.raises(InvalidInput, match="no letters or digits to look for"):
        datasets.browse(store, "main", ExampleFilter(search=search))


def test_a_word_with_no_longer_word_in_the_index_is_searched_whole(filled) -> None:  # type: ignore[no-untyped-def]
    store, _, _ = filled
    with store.connect() as db:
        # 'refun' starts 'refund', 'refunds' and 'refundable'; nothing longer starts with 'refundable'
        # or 'chargeback', so those are read as whole words (streamed by FTS5, same rows).
        assert example_rows._search_query(db, "refun Refundable CHARGEBACK") == '"refun"* "Refundable" "CHARGEBACK"'
        assert example_rows._search_query(db, "refund") == '"refund"*'
        # A word outside ASCII keeps its prefix match: the index folds it in ways lower() does not.
        assert example_rows._search_query(db, "café") == '"café"*'


def test_one_letter_words_match_exactly_not_as_prefixes() -> None:
    assert fts_query("a refun") == '"a" "refun"*'
    assert fts_query("x-1 e-mail") == '"x-1" "e-mail"*'


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_no_search_text_reaches_fts5_as_syntax(tmp_path_factory, text: str) -> None:  # type: ignore[no-untyped-def]
    conn = _fts_conn(tmp_path_factory)
    try:
        query = fts_query(text)
    except InvalidInput:
        assert text.strip() and not any(ch.isalnum() for ch in text)
        return
    if query:
        conn.execute("SELECT count(*) FROM t WHERE t MATCH ?", [query]).fetchone()


_FTS: dict[str, sqlite3.Connection] = {}


def _fts_conn(tmp_path_factory) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    if "conn" not in _FTS:
        conn = sqlite3.connect(tmp_path_factory.mktemp("fts") / "fts.db")
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')")
        conn.executemany("INSERT INTO t (text) VALUES (?)", [(w,) for w in WORDS])
        _FTS["conn"] = conn
    return _FTS["conn"]


# -------------------------------------------------------------------------------------- time limit


def test_a_query_past_its_time_limit_stops_with_a_clear_message(filled) -> None:  # type: ignore[no-untyped-def]
    store, _, _ = filled
    flt = ExampleFilter(search="case", metadata_field="note", metadata_value=LONG_VALUE)
    with pytest.raises(QueryTooSlow, match=r"would take too long on 240 examples; narrow it \(add a longer or rarer search word or a split\)"):
        datasets.browse(store, "main", flt, time_limit_s=1e-9)
    with pytest.raises(QueryTooSlow, match=r"narrow it \(add a search term or a split\)"):
        datasets.browse(store, "main", ExampleFilter(tags=["billing"]), time_limit_s=1e-9)
    # The same filter with time to run answers, on a connection the stopped query left usable.
    assert datasets.browse(store, "main", flt, time_limit_s=30).total == len(range(0, 240, 11))


def test_the_time_limit_comes_from_the_environment(store: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WORKBENCH_QUERY_TIME_LIMIT", "0.25")
    assert timelimit.query_time_limit() == 0.25
    for bad in ("", "soon", "-1", "0"):
        monkeypatch.setenv("WORKBENCH_QUERY_TIME_LIMIT", bad)
        assert timelimit.query_time_limit() == timelimit.DEFAULT_LIMIT_S
    with store.connect() as db:
        dataset_rows.create_dataset(db, "d")
        example_rows.insert_examples(db, 1, [_example(i) for i in range(30)])
    monkeypatch.setenv("WORKBENCH_QUERY_TIME_LIMIT", "1e-9")
    with pytest.raises(QueryTooSlow, match="30 examples"):
        datasets.browse(store, "d", ExampleFilter(search="case"))
