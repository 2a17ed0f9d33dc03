"""Cleaning through the service: PII scrub, duplicates with keep-one, leakage, guardrail rules; and splits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.helpers import WriteJsonl, chat
from workbench.domain.example import Message, ReviewState, Role, Split
from workbench.domain.filters import ExampleFilter
from workbench.domain.tokens import count_tokens
from workbench.errors import Conflict, InvalidInput
from workbench.services import cleaning, datasets, duplicates, splits, validating, versions
from workbench.services.importing import import_path
from workbench.store import Store

BASE = "The quarterly report shows revenue growth across all regions and product lines this year"


@pytest.fixture
def loaded(store: Store, write_jsonl: WriteJsonl) -> Store:
    records = [chat(f"Summarise item {i}: {BASE} with detail {i * 7919}", f"Summary {i}", metadata={"label": "ab"[i % 2]}) for i in range(30)]
    records += [
        chat("Contact: ann@corp.example, card 4111 1111 1111 1111", "Noted."),
        chat("Summarise item 3: " + BASE.upper() + " with detail 23757", "Summary 3"),  # exact after normalising
        chat("Summarise item 4:   " + BASE + " with detail 31676!!", "Summary 4"),  # exact after normalising
        chat("As an AI language model I cannot", "As an AI language model, I cannot help with that."),
        chat("Is this a damn good deal?", "Damn right, guaranteed returns!"),
    ]
    import_path(store, write_jsonl(records), "d")
    return store


def test_pii_summary_and_scrub(loaded: Store) -> None:
    summary = cleaning.pii_summary(loaded, "d")
    assert summary.examples_with_pii == 1 and summary.by_kind == {"email": 1, "credit_card": 1}
    target = datasets.browse(loaded, "d", ExampleFilter(has_pii=True)).examples[0]
    scrubbed = cleaning.scrub(loaded, target.id)  # type: ignore[arg-type]
    assert scrubbed.messages[0].content == "Contact: [EMAIL], card [CREDIT_CARD]" and scrubbed.pii == []
    assert datasets.browse(loaded, "d", ExampleFilter(search="ann")).total == 0
    assert cleaning.pii_summary(loaded, "d").examples_with_pii == 0


def test_scrub_dataset(loaded: Store) -> None:
    assert cleaning.scrub_dataset(loaded, "d") == 1
    assert cleaning.scrub_dataset(loaded, "d") == 0


ORIGINALS = ("ann@corp.example", "020 7946 0958", "4111 1111 1111 1111")


def stored_text(path: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Read every text and blob value of every table straight from the SQLite file, one string per table."""
    conn = sqlite3.connect(path)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out: dict[str, str] = {}
        for table in tables:
            if table in skip:
                continue
            values = [v for row in conn.execute(f'SELECT * FROM "{table}"') for v in row]
            out[table] = "\n".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values)
        return out
    finally:
        conn.close()


def test_scrub_reaches_every_revision_the_search_index_and_undo(store: Store, write_jsonl: WriteJsonl) -> None:
    import_path(store, write_jsonl([chat("Contact ann@corp.example or 020 7946 0958", "Noted."), chat("hello", "hi")]), "d")
    target = datasets.browse(store, "d", ExampleFilter(has_pii=True)).examples[0]
    assert target.id is not None
    # Two edits keep the PII in both earlier revisions; a frozen version and an undoable bulk
    # action each keep a copy of the row as well.
    edited = datasets.edit_turns(store, target.id, None, [Message(role=Role.USER, content="Contact ann@corp.example or 020 7946 0958, card 4111 1111 1111 1111"), Message(role=Role.ASSISTANT, content="Noted.")])
    edited = datasets.edit_turns(store, target.id, None, [edited.messages[0], Message(role=Role.ASSISTANT, content="Noted, thanks.")])
    assert [r["revision"] for r in datasets.revisions(store, target.id)] == [2, 1]
    versions.freeze(store, "d", "v1")
    datasets.bulk(store, "d", ExampleFilter(), "tag", "checked")
    tokens_before = edited.token_count

    scrubbed = cleaning.scrub(store, target.id)

    assert scrubbed.messages[0].content == "Contact [EMAIL] or [PHONE], card [CREDIT_CARD]"
    # The bulk tag and the scrub each move the revision on (so a stale save is refused), but keep no revision row.
    assert scrubbed.pii == [] and scrubbed.revision == edited.revision + 2
    assert scrubbed.token_count == count_tokens(scrubbed.plain_text()) != tokens_before
    history = datasets.revisions(store, target.id)
    assert [r["messages"][0].content for r in history] == ["Contact [EMAIL] or [PHONE], card [CREDIT_CARD]", "Contact [EMAIL] or [PHONE]"]
    for original in ORIGINALS:
        assert datasets.browse(store, "d", ExampleFilter(search=original.split("@")[0].split()[0])).total == 0
    # Straight from the file: no table but the frozen version's holds the original text anywhere.
    tables = stored_text(store.path, skip=("version_examples",))
    assert {"examples", "example_revisions", "examples_fts", "bulk_actions"} <= set(tables)
    leaks = [(table, original) for table, text in tables.items() for original in ORIGINALS if original in text]
    assert leaks == []
    # An undo of the bulk tag puts the labels back, not the text the scrub removed.
    datasets.undo_last_bulk(store, "d")
    restored = datasets.get_example(store, target.id)
    assert restored.tags == [] and restored.messages[0].content.startswith("Contact [EMAIL]")
    assert cleaning.pii_summary(store, "d").examples_with_pii == 0
    # The frozen version is training data a job may have used: left as it was, and reported.
    assert "ann@corp.example" in stored_text(store.path)["version_examples"]
    assert cleaning.versions_with_pii(store, "d") == {"v1": 1}


def test_scrub_dataset_cleans_revisions_of_examples_already_clean(store: Store, write_jsonl: WriteJsonl) -> None:
    # The user removed the email by hand: the current text is clean, the revision it replaced is not.
    import_path(store, write_jsonl([chat("mail me at bob@example.org", "ok")]), "d")
    example = datasets.browse(store, "d", ExampleFilter()).examples[0]
    assert example.id is not None
    datasets.bulk(store, "d", ExampleFilter(), "tag", "seen")  # its undo snapshot holds the address too
    datasets.edit_turns(store, example.id, None, [Message(role=Role.USER, content="mail me"), Message(role=Role.ASSISTANT, content="ok")])
    assert cleaning.pii_summary(store, "d").examples_with_pii == 0
    assert cleaning.scrub_dataset(store, "d") == 1
    assert [r["messages"][0].content for r in datasets.revisions(store, example.id)] == ["mail me at [EMAIL]"]
    tables = stored_text(store.path)
    assert "bob@example.org" not in tables["example_revisions"] and "bob@example.org" not in tables["bulk_actions"]
    # Nor anywhere in the file's bytes, free space included, once the WAL is folded back in.
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    finally:
        conn.close()
    assert b"bob@example.org" not in store.path.read_bytes()
    assert datasets.get_example(store, example.id).messages[0].content == "mail me"
    assert cleaning.scrub_dataset(store, "d") == 0


def test_scrub_replaces_stored_findings_a_fresh_scan_would_miss(store: Store, write_jsonl: WriteJsonl, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found under the default regions (GB reads 020...), scrubbed after the setting dropped GB:
    # what the stored finding names is still removed.
    import_path(store, write_jsonl([chat("ring 020 7946 0958", "ok")]), "d")
    monkeypatch.setenv("WORKBENCH_PHONE_REGIONS", "US")
    assert cleaning.scrub_dataset(store, "d") == 1
    assert datasets.browse(store, "d", ExampleFilter()).examples[0].messages[0].content == "ring [PHONE]"


def test_scrubbing_into_a_duplicate_is_refused_with_both_ids(store: Store, write_jsonl: WriteJsonl) -> None:
    import_path(store, write_jsonl([chat("mail a@x.com", "ok"), chat("mail b@y.com", "ok")]), "d")
    with pytest.raises(InvalidInput, match="would make it identical to example"):
        cleaning.scrub_dataset(store, "d")
    assert cleaning.pii_summary(store, "d").examples_with_pii == 2


def ids_matching(store: Store, term: str) -> list[int]:
    return sorted(e.id for e in datasets.browse(store, "d", ExampleFilter(search=term), page_size=50).examples)  # type: ignore[misc]


def test_duplicates_keep_the_accepted_member_and_resolution_is_undoable(loaded: Store) -> None:
    # The fixture holds two copies that differ only in case, spacing and punctuation: items 3 and 4.
    item3, item4 = ids_matching(loaded, "23757"), ids_matching(loaded, "31676")
    assert len(item3) == len(item4) == 2
    groups = duplicates.find_duplicates(loaded, "d", threshold=0.8)
    assert sorted((g.kind.value, sorted(g.example_ids)) for g in groups) == [("exact", item3), ("exact", item4)]
    assert {g.keep for g in groups} == {item3[0], item4[0]}  # the oldest, with nothing else to choose by
    preferred = item3[1]
    datasets.label(loaded, preferred, review_state=ReviewState.ACCEPTED)
    groups = duplicates.find_duplicates(loaded, "d", threshold=0.8)
    assert {g.keep for g in groups} == {preferred, item4[0]}
    before = datasets.get_dataset(loaded, "d").example_count
    deleted = duplicates.resolve_duplicates(loaded, "d", groups)
    assert deleted == 2
    assert datasets.get_dataset(loaded, "d").example_count == before - 2
    assert ids_matching(loaded, "23757") == [preferred] and ids_matching(loaded, "31676") == [item4[0]]
    assert duplicates.find_duplicates(loaded, "d") == []
    datasets.undo_last_bulk(loaded, "d")
    assert datasets.get_dataset(loaded, "d").example_count == before
    assert ids_matching(loaded, "23757") == item3 and ids_matching(loaded, "31676") == item4


def test_leakage_between_splits(loaded: Store) -> None:
    assert duplicates.find_leakage(loaded, "d") == []
    ids = [e.id for e in datasets.browse(loaded, "d", ExampleFilter(search="23757"), page_size=10).examples]
    assert len(ids) == 2
    datasets.bulk(loaded, "d", ExampleFilter(), "move-to-split", "train")
    datasets.label(loaded, ids[0], review_state="accepted")
    datasets.bulk(loaded, "d", ExampleFilter(review_state=ReviewState.ACCEPTED), "move-to-split", "test")
    pairs = duplicates.find_leakage(loaded, "d")
    assert [(p.split, p.other_split) for p in pairs] == [("train", "test")]
    assert {pairs[0].example_id, pairs[0].other_id} == set(ids)


def test_guardrail_rules_report_pass_rate_and_failures(loaded: Store) -> None:
    cleaning.add_rule(loaded, name="AI talk", regex=r"as an ai (language )?model", scope="assistant", action="block", message="no")
    cleaning.add_rule(loaded, name="Promises", words="guaranteed returns", action="block")
    cleaning.add_rule(loaded, name="Swearing", words="damn", scope="assistant", action="warn")
    report = cleaning.run_guardrails(loaded, "d")
    assert report.checked == 35 and report.passed == 33
    assert report.pass_rate == pytest.approx(33 / 35)
    assert len(report.failing) == 2
    counts = {c.rule_name: c.examples for c in report.rule_counts}
    assert counts == {"AI talk": 1, "Promises": 1, "Swearing": 1}
    rules = cleaning.list_rules(loaded)
    cleaning.set_rule_enabled(loaded, rules[0].id, False)  # type: ignore[arg-type]
    assert cleaning.run_guardrails(loaded, "d").passed == 34
    cleaning.delete_rule(loaded, rules[1].id)  # type: ignore[arg-type]
    assert cleaning.run_guardrails(loaded, "d").pass_rate == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "x", "regex": "(unclosed"}, InvalidInput, "pattern"),
        ({"name": "x"}, InvalidInput, "exactly one"),
        ({"name": "x", "regex": "a", "words": "b"}, InvalidInput, "exactly one"),
        ({"name": "  ", "regex": "a"}, InvalidInput, "name"),
    ],
)
def test_bad_rules_are_refused(store: Store, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        cleaning.add_rule(store, **kwargs)
    assert cleaning.list_rules(store) == []


def test_rule_names_are_unique(store: Store) -> None:
    cleaning.add_rule(store, name="r", regex="a")
    with pytest.raises(Conflict):
        cleaning.add_rule(store, name="r", regex="b")


def test_stratifying_by_a_field_no_example_has_is_refused_and_moves_nothing(loaded: Store) -> None:
    before = {e.id: e.split for e in datasets.browse(loaded, "d", ExampleFilter(), page_size=500).examples}
    with pytest.raises(InvalidInput, match="stratify by 'lable': no example of 'd' has this metadata field"):
        splits.split_dataset(loaded, "d", (0.6, 0.2, 0.2), seed=7, stratify_by="lable")
    assert {e.id: e.split for e in datasets.browse(loaded, "d", ExampleFilter(), page_size=500).examples} == before


def test_split_is_seeded_stratified_and_stable_for_new_examples(loaded: Store, write_jsonl: WriteJsonl) -> None:
    first = splits.split_dataset(loaded, "d", (0.6, 0.2, 0.2), seed=7, stratify_by="label")
    assert first.counts == {"test": 7, "train": 21, "validation": 7}
    assert set(first.by_stratum) == {"a", "b", "(none)"}
    snapshot = {e.id: e.split for e in datasets.browse(loaded, "d", ExampleFilter(), page_size=500).examples}
    again = splits.split_dataset(loaded, "d", (0.6, 0.2, 0.2), seed=7, stratify_by="label")
    assert again.counts == first.counts
    assert {e.id: e.split for e in datasets.browse(loaded, "d", ExampleFilter(), page_size=500).examples} == snapshot
    splits.split_dataset(loaded, "d", (0.6, 0.2, 0.2), seed=8, stratify_by="label")
    other_split = {e.id: e.split for e in datasets.browse(loaded, "d", ExampleFilter(), page_size=500).examples}
    splits.split_dataset(loaded, "d", (0.6, 0.2, 0.2), seed=7, stratify_by="label")
    import_path(loaded, write_jsonl([chat(f"new {i}", "x", metadata={"label": "a"}) for i in range(10)], "new.jsonl"), "d")
    after = {e.id: e.split for e in datasets.browse(loaded, "d", ExampleFilter(), page_size=500).examples}
    assert all(after[i] == s for i, s in snapshot.items())
    assert Split.UNASSIGNED not in after.values()
    # The seed decides the split: seed 8 again gives seed 8's split back, not seed 7's.
    splits.split_dataset(loaded, "d", (0.6, 0.2, 0.2), seed=8, stratify_by="label")
    seed_8 = {e.id: e.split for e in datasets.browse(loaded, "d", ExampleFilter(), page_size=500).examples}
    assert {i: seed_8[i] for i in snapshot} == other_split and other_split != snapshot
    assert datasets.get_dataset(loaded, "d").split_config == {
        "ratios": {"train": 0.6, "validation": 0.2, "test": 0.2},
        "seed": 8,
        "stratify_by": "label",
    }


def test_bad_ratios_are_refused(loaded: Store) -> None:
    with pytest.raises(InvalidInput, match="add up to 1"):
        splits.split_dataset(loaded, "d", (0.5, 0.2, 0.2))


def test_validate_and_describe(loaded: Store) -> None:
    report = validating.validate_dataset(loaded, "d", "bedrock-claude-haiku")
    assert report.ok and report.record_count == 35
    small = validating.validate_dataset(loaded, "d", "openai")
    assert small.ok
    stats = validating.describe(loaded, "d", class_field="label")
    assert stats.example_count == 35 and stats.class_counts["a"] == 15
    with pytest.raises(InvalidInput, match="unknown target"):
        validating.validate_dataset(loaded, "d", "gemini")
    with pytest.raises(InvalidInput, match="no examples to validate"):
        validating.validate_dataset(loaded, "d", "openai", split="test")


@pytest.mark.parametrize(
    ("source", "target"),
    [("bedrock-nova", "bedrock-nova"), ("bedrock-claude", "bedrock-claude-haiku"), ("prompt-completion", "bedrock-llama"), ("alpaca", "openai"), (None, "openai")],
)
def test_default_target_follows_the_source_format(source: str | None, target: str) -> None:
    assert validating.default_target(source) == target


def test_guardrails_refuse_an_unknown_rule_id_instead_of_passing_everything(loaded: Store) -> None:
    with pytest.raises(InvalidInput, match="no guardrail rule with id 999"):
        cleaning.run_guardrails(loaded, "d", [999])


def test_a_rule_edited_or_an_id_reused_changes_the_fingerprint_a_kept_result_is_keyed_by(loaded: Store) -> None:
    first = cleaning.add_rule(loaded, name="no-answer", words="Answer", action="block")
    before = cleaning.rules_fingerprint([first])
    cleaning.delete_rule(loaded, first.id)
    again = cleaning.add_rule(loaded, name="r-zzz", words="zzz", action="block")
    assert again.id == first.id  # SQLite hands the id out again
    assert cleaning.rules_fingerprint([again]) != before
    assert cleaning.rules_fingerprint([again]) == cleaning.rules_fingerprint(cleaning.list_rules(loaded))
