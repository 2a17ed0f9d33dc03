"""Cleaning through the service: PII scrub, duplicates with keep-one, leakage, guardrail rules; and splits."""

from __future__ import annotations

import pytest

from tests.helpers import WriteJsonl, chat
from workbench.domain.example import ReviewState, Split
from workbench.domain.filters import ExampleFilter
from workbench.errors import Conflict, InvalidInput
from workbench.services import cleaning, datasets, splits, validating
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


def test_scrubbing_into_a_duplicate_is_refused_with_both_ids(store: Store, write_jsonl: WriteJsonl) -> None:
    import_path(store, write_jsonl([chat("mail a@x.com", "ok"), chat("mail b@y.com", "ok")]), "d")
    with pytest.raises(InvalidInput, match="would make it identical to example"):
        cleaning.scrub_dataset(store, "d")
    assert cleaning.pii_summary(store, "d").examples_with_pii == 2


def test_duplicates_keep_the_accepted_member_and_resolution_is_undoable(loaded: Store) -> None:
    groups = cleaning.find_duplicates(loaded, "d", threshold=0.8)
    by_item = {g.example_ids[0]: g for g in groups}
    assert len(groups) >= 2
    assert all(len(g.example_ids) >= 2 for g in groups)
    first = groups[0]
    preferred = first.example_ids[-1]
    datasets.label(loaded, preferred, review_state=ReviewState.ACCEPTED)
    groups = cleaning.find_duplicates(loaded, "d", threshold=0.8)
    assert next(g for g in groups if preferred in g.example_ids).keep == preferred
    before = datasets.get_dataset(loaded, "d").example_count
    deleted = cleaning.resolve_duplicates(loaded, "d", groups)
    assert deleted == sum(len(g.example_ids) - 1 for g in groups)
    assert datasets.get_dataset(loaded, "d").example_count == before - deleted
    assert cleaning.find_duplicates(loaded, "d") == []
    datasets.undo_last_bulk(loaded, "d")
    assert datasets.get_dataset(loaded, "d").example_count == before
    assert by_item


def test_leakage_between_splits(loaded: Store) -> None:
    assert cleaning.find_leakage(loaded, "d") == []
    ids = [e.id for e in datasets.browse(loaded, "d", ExampleFilter(search="23757"), page_size=10).examples]
    assert len(ids) == 2
    datasets.bulk(loaded, "d", ExampleFilter(), "move-to-split", "train")
    datasets.label(loaded, ids[0], review_state="accepted")
    datasets.bulk(loaded, "d", ExampleFilter(review_state=ReviewState.ACCEPTED), "move-to-split", "test")
    pairs = cleaning.find_leakage(loaded, "d")
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


def test_split_is_seeded_stratified_and_stable_for_new_examples(loaded: Store, write_jsonl: WriteJsonl) -> None:
    first = splits.split_dataset(loaded, "d", (0.6, 0.2, 0.2), seed=7, stratify_by="label")
    assert first.counts == {"test": 7, "train": 21, "validation": 7}
    assert set(first.by_stratum) == {"a", "b", "(none)"}
    snapshot = {e.id: e.split for e in datasets.browse(loaded, "d", ExampleFilter(), page_size=500).examples}
    again = splits.split_dataset(loaded, "d", (0.6, 0.2, 0.2), seed=7, stratify_by="label")
    assert again.counts == first.counts
    assert {e.id: e.split for e in datasets.browse(loaded, "d", ExampleFilter(), page_size=500).examples} == snapshot
    other = splits.split_dataset(loaded, "d", (0.6, 0.2, 0.2), seed=8, stratify_by="label")
    assert {e.id: e.split for e in datasets.browse(loaded, "d", ExampleFilter(), page_size=500).examples} != snapshot
    splits.split_dataset(loaded, "d", (0.6, 0.2, 0.2), seed=7, stratify_by="label")
    import_path(loaded, write_jsonl([chat(f"new {i}", "x", metadata={"label": "a"}) for i in range(10)], "new.jsonl"), "d")
    after = {e.id: e.split for e in datasets.browse(loaded, "d", ExampleFilter(), page_size=500).examples}
    assert all(after[i] == s for i, s in snapshot.items())
    assert Split.UNASSIGNED not in after.values()
    assert other.seed == 8


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
