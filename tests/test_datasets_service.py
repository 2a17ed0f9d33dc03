"""Browse, search, filter, label, edit and bulk-act on examples through the service layer."""

from __future__ import annotations

import pytest

from tests.helpers import WriteJsonl, chat
from workbench.domain.example import Message, ReviewState, Role, Split
from workbench.domain.filters import ExampleFilter
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.services import datasets
from workbench.services.importing import import_path
from workbench.store import Store


@pytest.fixture
def loaded(store: Store, write_jsonl: WriteJsonl, sample_records: list) -> Store:
    import_path(store, write_jsonl(sample_records), "support")
    return store


def _ids(store: Store, flt: ExampleFilter) -> list[int]:
    return [e.id for e in datasets.browse(store, "support", flt, page_size=500).examples]  # type: ignore[misc]


def test_browse_pages_newest_first(loaded: Store) -> None:
    page = datasets.browse(loaded, "support", ExampleFilter(), page=2, page_size=8)
    assert (page.total, page.pages, page.page, len(page.examples)) == (20, 3, 2, 8)
    ids = [e.id for e in page.examples]
    assert ids == sorted(ids, reverse=True)
    assert datasets.browse(loaded, "support", ExampleFilter(), page=99, page_size=8).page == 3


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (ExampleFilter(search="refund"), 4),
        (ExampleFilter(search="REFUND answer"), 4),
        (ExampleFilter(search='"about the refund"'), 4),
        (ExampleFilter(search="nonexistentword"), 0),
        (ExampleFilter(search='AND OR NOT " ( *'), 0),
        (ExampleFilter(has_pii=True), 1),
        (ExampleFilter(has_pii=False), 19),
        (ExampleFilter(metadata_field="topic", metadata_value="invoice"), 4),
        (ExampleFilter(min_tokens=1, max_tokens=3), 0),
        (ExampleFilter(min_tokens=1), 20),
        (ExampleFilter(review_state=ReviewState.PENDING), 20),
        (ExampleFilter(unrated=True), 20),
        (ExampleFilter(split=Split.UNASSIGNED), 20),
        (ExampleFilter(split=Split.TRAIN), 0),
    ],
)
def test_filters(loaded: Store, flt: ExampleFilter, expected: int) -> None:
    assert datasets.browse(loaded, "support", flt).total == expected


def test_label_rating_review_tags_notes(loaded: Store) -> None:
    target = _ids(loaded, ExampleFilter())[0]
    example = datasets.label(loaded, target, rating=4, review_state="accepted", tags=[" billing ", "billing", "vip"], notes="good")
    assert (example.rating, example.review_state, example.tags, example.notes) == (4, ReviewState.ACCEPTED, ["billing", "vip"], "good")
    assert _ids(loaded, ExampleFilter(tags=["vip"])) == [target]
    assert _ids(loaded, ExampleFilter(min_rating=4)) == [target]
    assert datasets.label(loaded, target, rating=None).rating is None
    assert datasets.facets(loaded, "support").tags == {"billing": 1, "vip": 1}


@pytest.mark.parametrize(("kwargs", "match"), [({"rating": 6}, "rating must be 1 to 5"), ({"tags": ["a\x00b"]}, "control characters")])
def test_label_refuses_bad_values(loaded: Store, kwargs: dict, match: str) -> None:
    target = _ids(loaded, ExampleFilter())[0]
    with pytest.raises(InvalidInput, match=match):
        datasets.label(loaded, target, **kwargs)


def test_label_unknown_example(loaded: Store) -> None:
    with pytest.raises(NotFound):
        datasets.label(loaded, 99999, notes="x")


def test_edit_turns_keeps_the_old_revision_and_reindexes(loaded: Store) -> None:
    target = _ids(loaded, ExampleFilter(search="jane"))[0]
    edited = datasets.edit_turns(
        loaded,
        target,
        "You are a support agent.",
        [
            Message(role=Role.USER, content="Please email me at [EMAIL]"),
            Message(role=Role.ASSISTANT, content="Sure."),
            Message(role=Role.USER, content="Thanks, zebra"),
            Message(role=Role.ASSISTANT, content="Any time."),
        ],
    )
    assert edited.revision == 2 and edited.pii == [] and len(edited.messages) == 4
    history = datasets.revisions(loaded, target)
    assert history[0]["revision"] == 1 and "jane.doe@example.com" in history[0]["messages"][0].content
    assert _ids(loaded, ExampleFilter(search="zebra")) == [target]
    assert _ids(loaded, ExampleFilter(search="jane")) == []


def test_edit_refuses_turns_without_an_assistant_and_edits_into_duplicates(loaded: Store) -> None:
    first, second = _ids(loaded, ExampleFilter(search="invoice"))[:2]
    with pytest.raises(InvalidInput, match="assistant"):
        datasets.edit_turns(loaded, first, None, [Message(role=Role.USER, content="q")])
    other = datasets.get_example(loaded, second)
    with pytest.raises(Conflict, match=f"identical to example {second}"):
        datasets.edit_turns(loaded, first, other.system, other.messages)
    assert datasets.get_example(loaded, first).revision == 1


def test_bulk_actions_apply_to_the_filtered_selection_only(loaded: Store) -> None:
    refunds = ExampleFilter(search="refund")
    assert datasets.bulk(loaded, "support", refunds, "tag", "money").affected == 4
    assert datasets.bulk(loaded, "support", refunds, "accept").affected == 4
    assert datasets.bulk(loaded, "support", ExampleFilter(search="shipping"), "move-to-split", "test").affected == 4
    assert datasets.browse(loaded, "support", ExampleFilter(tags=["money"], review_state=ReviewState.ACCEPTED)).total == 4
    assert datasets.browse(loaded, "support", ExampleFilter(split=Split.TEST)).total == 4
    assert datasets.browse(loaded, "support", ExampleFilter(review_state=ReviewState.PENDING)).total == 16


def test_undo_restores_a_bulk_delete_exactly(loaded: Store) -> None:
    target = _ids(loaded, ExampleFilter(search="warranty"))[0]
    datasets.label(loaded, target, rating=5, tags=["keep"])
    before = datasets.get_example(loaded, target)
    assert datasets.bulk(loaded, "support", ExampleFilter(search="warranty"), "delete").affected == 3
    assert datasets.get_dataset(loaded, "support").example_count == 17
    last = datasets.last_bulk(loaded, "support")
    assert last is not None and last.action == "delete" and last.example_count == 3
    assert datasets.undo_last_bulk(loaded, "support").affected == 3
    assert datasets.get_example(loaded, target) == before
    assert _ids(loaded, ExampleFilter(tags=["keep"])) == [target]
    assert len(_ids(loaded, ExampleFilter(search="warranty"))) == 3
    assert datasets.last_bulk(loaded, "support") is None
    with pytest.raises(NotFound, match="no bulk action to undo"):
        datasets.undo_last_bulk(loaded, "support")


def test_ids_of_deleted_examples_are_never_handed_out_again(loaded: Store, write_jsonl: WriteJsonl) -> None:
    """Undo and version diffs name examples by id: a new import reusing a deleted id would let an
    undo overwrite the new example, or a diff call a new example an edit of the old one."""
    newest = _ids(loaded, ExampleFilter())[:2]
    assert datasets.delete_examples(loaded, "support", newest).affected == 2
    import_path(loaded, write_jsonl([chat("A brand new question", "A brand new answer")]), "support")
    fresh = _ids(loaded, ExampleFilter(search="brand new"))
    assert fresh and fresh[0] > max(newest)
    datasets.undo_last_bulk(loaded, "support")
    assert datasets.get_example(loaded, fresh[0]).messages[0].content == "A brand new question"
    assert set(newest) <= set(_ids(loaded, ExampleFilter())) and datasets.get_dataset(loaded, "support").example_count == 21


def test_undo_reverts_a_tag_without_touching_other_tags(loaded: Store) -> None:
    target = _ids(loaded, ExampleFilter(search="refund"))[0]
    datasets.label(loaded, target, tags=["mine"])
    datasets.bulk(loaded, "support", ExampleFilter(search="refund"), "tag", "bulk")
    datasets.undo_last_bulk(loaded, "support")
    assert datasets.get_example(loaded, target).tags == ["mine"]
    assert datasets.facets(loaded, "support").tags == {"mine": 1}


def test_undo_keeps_revisions_of_restored_examples(loaded: Store) -> None:
    target = _ids(loaded, ExampleFilter(search="password"))[0]
    datasets.edit_turns(loaded, target, None, [Message(role=Role.USER, content="new password q"), Message(role=Role.ASSISTANT, content="a")])
    datasets.bulk(loaded, "support", ExampleFilter(search="password"), "reject")
    datasets.undo_last_bulk(loaded, "support")
    assert len(datasets.revisions(loaded, target)) == 1


@pytest.mark.parametrize(
    ("action", "value", "match"),
    [("tag", " ", "give the tag"), ("move-to-split", "holdout", "unknown split"), ("explode", "", "unknown bulk action 'explode'; choose one of tag")],
)
def test_bulk_refuses_bad_values(loaded: Store, action: str, value: str, match: str) -> None:
    # InvalidInput, not a bare ValueError: the pages and the CLI show a WorkbenchError's message, anything else is a traceback.
    with pytest.raises(InvalidInput, match=match):
        datasets.bulk(loaded, "support", ExampleFilter(), action, value)
    assert datasets.last_bulk(loaded, "support") is None


def test_bulk_with_an_empty_selection_does_nothing(loaded: Store) -> None:
    result = datasets.bulk(loaded, "support", ExampleFilter(search="nothingmatches"), "delete")
    assert result.affected == 0 and not result.undo_available
    assert datasets.get_dataset(loaded, "support").example_count == 20


def test_examples_frame_has_one_row_per_example(loaded: Store) -> None:
    frame = datasets.examples_frame(datasets.browse(loaded, "support", ExampleFilter(), page_size=5).examples)
    assert len(frame) == 5 and list(frame.columns)[:2] == ["id", "preview"]


def test_unknown_dataset(store: Store) -> None:
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        datasets.browse(store, "nope", ExampleFilter())


def test_delete_dataset_removes_its_search_rows(loaded: Store, write_jsonl: WriteJsonl) -> None:
    import_path(loaded, write_jsonl([chat("refund elsewhere", "a")], "other.jsonl"), "other")
    datasets.delete_dataset(loaded, "support")
    assert [d.name for d in datasets.list_datasets(loaded)] == ["other"]
    with loaded.connect() as db:
        assert db.execute("SELECT count(*) FROM examples_fts").fetchone()[0] == 1


def test_count_matching_counts_each_filter_and_skips_missing_datasets(loaded: Store) -> None:
    flts = [ExampleFilter(has_pii=True), ExampleFilter(search="refund"), ExampleFilter(split=Split.TEST)]
    assert datasets.count_matching(loaded, {"support": flts, "gone": flts}) == {"support": [1, 4, 0]}


# ---------------------------------------------------------------------------------- rename, describe, delete


def test_rename_keeps_the_examples_and_frees_the_old_name(loaded: Store) -> None:
    before = datasets.get_dataset(loaded, "support")
    renamed = datasets.rename_dataset(loaded, "support", "  support-v2 ")
    assert (renamed.id, renamed.name, renamed.example_count) == (before.id, "support-v2", 20)
    assert datasets.browse(loaded, "support-v2", ExampleFilter(search="refund")).total == 4
    with pytest.raises(NotFound, match="no dataset named 'support'"):
        datasets.get_dataset(loaded, "support")


def test_rename_onto_a_taken_name_is_a_conflict(loaded: Store, write_jsonl: WriteJsonl) -> None:
    import_path(loaded, write_jsonl([chat("q", "a")], "other.jsonl"), "other")
    with pytest.raises(Conflict, match="a dataset named 'other' already exists"):
        datasets.rename_dataset(loaded, "support", "other")
    assert datasets.get_dataset(loaded, "support").example_count == 20


CONTROL_NAMES = ["tab\there", "new\nline", "nul\x00", "del\x7f", "ne\x85l", "escape\x1b[31m", "line\u2028sep"]


@pytest.mark.parametrize("name", CONTROL_NAMES)
def test_names_with_control_characters_are_refused(loaded: Store, write_jsonl: WriteJsonl, name: str) -> None:
    """A name is shown in pages, printed by the CLI and written into file names: no escapes, no line breaks."""
    with pytest.raises(InvalidInput, match=r"may not contain control characters .*U\+[0-9A-F]{4}"):
        datasets.rename_dataset(loaded, "support", name)
    with pytest.raises(InvalidInput, match="may not contain control characters"):
        import_path(loaded, write_jsonl([chat("q", "a")], "x.jsonl"), name)
    assert [d.name for d in datasets.list_datasets(loaded)] == ["support"]


@pytest.mark.parametrize(("name", "match"), [("   ", "a dataset name is required"), ("x" * 101, "at most 100 characters")])
def test_rename_refuses_blank_and_long_names(loaded: Store, name: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        datasets.rename_dataset(loaded, "support", name)


def test_describe_sets_plain_text_with_line_breaks(loaded: Store) -> None:
    described = datasets.describe_dataset(loaded, "support", "  Support tickets, 2024.\r\nScrubbed by hand.\t(v2)  ")
    assert described.description == "Support tickets, 2024.\nScrubbed by hand.\t(v2)"
    assert datasets.get_dataset(loaded, "support").description == described.description
    with pytest.raises(InvalidInput, match="control characters"):
        datasets.describe_dataset(loaded, "support", "bell\x07")
    with pytest.raises(InvalidInput, match="at most 2,000 characters, not 2,001"):
        datasets.describe_dataset(loaded, "support", "x" * 2001)
    assert datasets.get_dataset(loaded, "support").description == described.description


def test_delete_reports_what_it_removed(loaded: Store, write_jsonl: WriteJsonl) -> None:
    from workbench.services.versions import freeze

    import_path(loaded, write_jsonl([chat("kept elsewhere", "yes")], "other.jsonl"), "other")
    target = _ids(loaded, ExampleFilter(search="invoice"))[0]
    datasets.edit_turns(loaded, target, None, [Message(role=Role.USER, content="q2"), Message(role=Role.ASSISTANT, content="a2")])
    freeze(loaded, "support", "v1")
    freeze(loaded, "support", "v2")
    contents = datasets.dataset_contents(loaded, "support")
    assert contents.summary() == "20 examples (with 1 earlier revision), 2 versions and 1 import record"

    removed = datasets.delete_dataset(loaded, "support")

    assert removed == contents
    assert [d.name for d in datasets.list_datasets(loaded)] == ["other"]
    assert datasets.dataset_contents(loaded, "other").summary() == "1 example, 0 versions and 1 import record"
    with pytest.raises(NotFound):
        datasets.delete_dataset(loaded, "support")


# -------------------------------------------------------------------------------- reading examples


def test_record_json_is_what_an_export_writes(loaded: Store) -> None:
    target = _ids(loaded, ExampleFilter(search="jane"))[0]
    assert datasets.record_json(loaded, target, "openai").record == {
        "messages": [
            {"role": "user", "content": "Please email me at jane.doe@example.com"},
            {"role": "assistant", "content": "Sure, I will email you."},
        ]
    }
    assert set(datasets.record_json(loaded, target, "bedrock-nova").record) == {"schemaVersion", "messages"}
    with pytest.raises(InvalidInput, match="unknown format 'yaml'"):
        datasets.record_json(loaded, target, "yaml")


def test_findings_from_every_source_name_a_turn_the_same_way(store: Store, write_jsonl: WriteJsonl) -> None:
    import_path(store, write_jsonl([chat("Mail jane.doe@example.com", "Noted.", system="Be brief.")]), "s")
    example = datasets.browse(store, "s", ExampleFilter()).examples[0]
    assert [f.where for f in example.pii] == ["messages[0]"]  # canonical: the system prompt is not a turn

    pii = datasets.part_labels(store, [(example.id, f.where) for f in example.pii])
    # OpenAI's record puts the system prompt first, so a validation finding on that turn says messages[1].
    validation = datasets.record_part_labels(store, "openai", [(example.id, "messages[1].content"), (example.id, "messages[0]")])

    assert pii == ["turn 1 (user)"]
    assert validation == ["turn 1 (user)", "system"]
    assert datasets.record_part_labels(store, "openai", [(None, "messages[1]"), (example.id, None)]) == ["", ""]


def test_neighbours_step_through_the_filtered_listing_across_pages(loaded: Store) -> None:
    ids = _ids(loaded, ExampleFilter())  # newest first, as the table lists them
    step = 8

    def around(example_id: int) -> tuple[int | None, int | None, int | None, int | None]:
        page = ids.index(example_id) // step + 1
        n = datasets.neighbours(loaded, "support", ExampleFilter(), example_id, page=page, page_size=step)
        return n.previous, n.previous_page, n.next, n.next_page

    assert around(ids[0]) == (None, None, ids[1], 1)
    assert around(ids[3]) == (ids[2], 1, ids[4], 1)
    assert around(ids[7]) == (ids[6], 1, ids[8], 2)
    assert around(ids[8]) == (ids[7], 1, ids[9], 2)
    assert around(ids[19]) == (ids[18], 3, None, None)
    # Filtered: only the refunds, in the same order.
    refunds = _ids(loaded, ExampleFilter(search="refund"))
    n = datasets.neighbours(loaded, "support", ExampleFilter(search="refund"), refunds[1], page=1)
    assert (n.previous, n.next) == (refunds[0], refunds[2])
    # Not on the page the reader is looking at: nothing to step through.
    assert datasets.neighbours(loaded, "support", ExampleFilter(), ids[19], page=1, page_size=step) == datasets.Neighbours(listed=False)
    assert datasets.neighbours(loaded, "support", ExampleFilter(), ids[0], page=1, page_size=step).listed


def test_examples_frame_shows_unrated_as_blank(loaded: Store) -> None:
    rated = _ids(loaded, ExampleFilter())[0]
    datasets.label(loaded, rated, rating=4)
    frame = datasets.examples_frame(datasets.browse(loaded, "support", ExampleFilter(), page_size=2).examples)
    assert frame["rating"].tolist() == ["4 ★", ""]
