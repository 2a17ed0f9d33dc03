"""The reviewers' queue against a real SQLite file: enqueueing, queue order and filters, double review,
kappa, corrections landing as training examples, and the retraining threshold."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.helpers import WriteJsonl, chat
from workbench.domain import eval_stats
from workbench.domain.example import Message, Role
from workbench.domain.filters import ExampleFilter
from workbench.errors import InvalidInput, NotFound
from workbench.services import datasets, demo_review, importing, review, splits
from workbench.services.review import NewItem, QueueFilter, SourceKind, Verdict
from workbench.store import Store


def item(n: int, **fields: Any) -> NewItem:
    values: dict[str, Any] = {
        "source_kind": SourceKind.COMPARISON,
        "source_id": f"cell-{n}",
        "system": "Answer briefly.",
        "messages": [Message(role=Role.USER, content=f"question {n}")],
        "output": f"answer {n}",
        "reference": f"reference {n}",
        "model_id": "model-a",
        "task_type": "support",
    }
    return NewItem(**(values | fields))


@pytest.fixture
def queue(store: Store) -> list[int]:
    """Six comparison outputs, no double review (share 0): the queue in its plainest form."""
    review.set_settings(store, double_review_share=0.0)
    return review.enqueue(store, [item(n) for n in range(6)])


def served(store: Store, reviewer: str, flt: QueueFilter | None = None) -> list[int]:
    """Skip through a reviewer's queue and return the item ids in the order it offered them."""
    order = []
    while (next_one := review.next_item(store, reviewer, flt)) is not None:
        order.append(next_one.id)
        review.skip(store, next_one.id, reviewer)
    return order


# ---------------------------------------------------------------------------------------------- enqueue


def test_enqueue_returns_ids_and_does_not_queue_a_source_twice(store: Store) -> None:
    first = review.enqueue(store, [item(1), item(2)])
    again = review.enqueue(store, [item(2, output="a different answer"), item(3)])

    assert again[0] == first[1]
    assert len(set(first + again)) == 3
    assert review.queue_view(store, "ann").total == 3


def test_an_item_keeps_where_it_came_from(store: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(store, write_jsonl([chat("q", "a")]), "inputs")
    [item_id] = review.enqueue(store, [item(1, source_kind="evaluation", template_version_id=7, dataset="inputs",
                                            example_id=1, prompt=None)])

    got = review.queue_view(store, "ann", item_id=item_id).item
    assert got is not None
    assert (got.source_kind, got.source_id, got.template_version_id, got.dataset) == (SourceKind.EVALUATION, "cell-1", 7, "inputs")
    assert (got.model_id, got.task_type, got.reference, got.system) == ("model-a", "support", "reference 1", "Answer briefly.")


def test_a_rendered_prompt_is_an_input_too(store: Store) -> None:
    [item_id] = review.enqueue(store, [item(1, messages=[], prompt="Summarise: the text")])

    got = review.queue_view(store, "ann", item_id=item_id).item
    assert got is not None
    assert review.input_turns(got) == [Message(role=Role.USER, content="Summarise: the text")]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"source_id": " "}, "source_id is empty"),
        ({"messages": [], "prompt": None}, "no input"),
        ({"messages": [Message(role=Role.ASSISTANT, content="hi")]}, "must end with a user turn"),
    ],
)
def test_enqueue_refuses_an_item_without_what_a_reviewer_needs(store: Store, fields: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        review.enqueue(store, [item(1), item(2, **fields)])
    assert review.queue_view(store, "ann").total == 0  # nothing half-queued


def test_enqueue_names_an_unknown_dataset(store: Store) -> None:
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        review.enqueue(store, [item(1, dataset="nope")])


# ------------------------------------------------------------------------------------------------ queue


def test_queue_serves_oldest_first_and_a_skip_hides_the_item_from_the_skipper_only(store: Store, queue: list[int]) -> None:
    assert served(store, "ann") == queue
    assert review.next_item(store, "bob") is not None
    assert review.next_item(store, "bob").id == queue[0]  # type: ignore[union-attr]


def test_a_reviewed_item_leaves_everyone_s_queue_unless_it_is_double_reviewed(store: Store, queue: list[int]) -> None:
    review.save_review(store, queue[0], "ann", verdict="good")

    assert review.next_item(store, "bob").id == queue[1]  # type: ignore[union-attr]
    assert review.next_item(store, "ann").id == queue[1]  # type: ignore[union-attr]


def test_progress_counts_done_of_total_for_the_reviewer_and_filter(store: Store, queue: list[int]) -> None:
    review.save_review(store, queue[0], "ann", verdict="good")
    review.skip(store, queue[1], "ann")
    review.save_review(store, queue[2], "bob", verdict="bad")

    view = review.queue_view(store, "ann")
    assert (view.done, view.total) == (2, 5)  # bob's item is gone for ann: 2 done, 3 open
    view = review.queue_view(store, "bob")
    assert (view.done, view.total) == (1, 5)  # ann's skip leaves item 2 open for bob: 4 open


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (QueueFilter(source_kind=SourceKind.EVALUATION), [1]),
        (QueueFilter(task_type="summaries"), [2]),
        (QueueFilter(model_id="model-b"), [3]),
        (QueueFilter(with_reference=True), [0, 1, 2, 3]),
        (QueueFilter(task_type="support", with_reference=True), [0, 1, 3]),
    ],
)
def test_filters(store: Store, flt: QueueFilter, expected: list[int]) -> None:
    ids = review.enqueue(store, [
        item(0),
        item(1, source_kind="evaluation"),
        item(2, task_type="summaries"),
        item(3, model_id="model-b"),
        item(4, reference=None),
        item(5, reference=""),
    ])

    assert served(store, "ann", flt) == [ids[i] for i in expected]
    assert review.queue_view(store, "ann", flt).total == len(expected)


def test_facets_list_what_is_queued(store: Store) -> None:
    review.enqueue(store, [item(0), item(1, source_kind="prediction", model_id="model-b", task_type="")])

    assert review.queue_facets(store) == {
        "source_kind": ["comparison", "prediction"], "task_type": ["", "support"], "model_id": ["model-a", "model-b"],
    }


# ---------------------------------------------------------------------------------------------- double review


def test_sample_keys_are_stable_and_pick_about_the_share_asked_for() -> None:
    keys = [review.sample_key("comparison", f"cell-{n}") for n in range(4000)]

    assert keys == [review.sample_key(SourceKind.COMPARISON, f"cell-{n}") for n in range(4000)]
    assert all(0 <= k < 1 for k in keys)
    assert 0.08 < sum(k < 0.1 for k in keys) / len(keys) < 0.12


def test_a_double_review_item_goes_to_a_second_reviewer_first(store: Store) -> None:
    review.set_settings(store, double_review_share=1.0)
    ids = review.enqueue(store, [item(n) for n in range(3)])
    review.save_review(store, ids[1], "ann", verdict="good")

    view = review.queue_view(store, "bob")
    assert view.item is not None and view.item.id == ids[1]  # the half-done pair before the untouched items
    assert view.double
    review.save_review(store, ids[1], "bob", verdict="bad")
    assert review.next_item(store, "cat").id == ids[0]  # type: ignore[union-attr]  # two reviews: done
    assert ids[1] not in served(store, "cat")


def test_changing_the_share_applies_to_items_already_queued(store: Store) -> None:
    review.set_settings(store, double_review_share=0.0)
    ids = review.enqueue(store, [item(n) for n in range(20)])
    for item_id in ids:
        review.save_review(store, item_id, "ann", verdict="good")
    assert review.next_item(store, "bob") is None

    review.set_settings(store, double_review_share=1.0)
    assert len(served(store, "bob")) == 20


# ----------------------------------------------------------------------------------------------------- kappa


def test_the_kappa_the_queue_uses_on_a_textbook_table() -> None:
    # 50 items, two raters: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: po = 0.7, pe = 0.5, kappa = 0.4
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15

    assert eval_stats.cohens_kappa(dict(enumerate(first)), dict(enumerate(second))).kappa == pytest.approx(0.4)


def test_the_quadratic_weighted_kappa_the_queue_uses_on_ratings() -> None:
    first, second = [1, 2, 3, 4, 5, 2, 3], [1, 3, 3, 5, 5, 2, 4]

    kappa = eval_stats.cohens_kappa(dict(enumerate(first)), dict(enumerate(second)), categories=[1, 2, 3, 4, 5],
                                    weights="quadratic").kappa

    assert kappa == pytest.approx(158 / 179)
    # Quadratic-weighted kappa equals 2 cov / (var1 + var2 + (mean1 - mean2)^2) on an evenly spaced scale.
    n = len(first)
    m1, m2 = sum(first) / n, sum(second) / n
    cov = sum((a - m1) * (b - m2) for a, b in zip(first, second, strict=True)) / n
    v1, v2 = sum((a - m1) ** 2 for a in first) / n, sum((b - m2) ** 2 for b in second) / n
    assert kappa == pytest.approx(2 * cov / (v1 + v2 + (m1 - m2) ** 2))


def test_agreement_over_double_reviewed_items(store: Store) -> None:
    review.set_settings(store, double_review_share=1.0)
    ids = review.enqueue(store, [item(n) for n in range(4)])
    ann = [("good", 5), ("good", 4), ("bad", 2), ("bad", 1)]
    bob = [("good", 5), ("bad", 2), ("bad", 2), ("bad", 1)]
    for item_id, (v1, r1), (v2, r2) in zip(ids, ann, bob, strict=True):
        review.save_review(store, item_id, "ann", verdict=v1, rating=r1)
        review.save_review(store, item_id, "bob", verdict=v2, rating=r2)
    review.save_review(store, ids[0], "cat", verdict="bad")  # a third review is not part of the pair

    result = review.agreement(store)

    assert result.items == 4 and result.rating_pairs == 4
    assert result.verdict_agreement == pytest.approx(0.75)
    # verdicts: po = 3/4; ann half good, bob a quarter good: pe = 1/2 * 1/4 + 1/2 * 3/4 = 1/2; kappa = 1/2
    assert result.verdict_kappa == pytest.approx(0.5)
    # ratings 5,4,2,1 against 5,2,2,1: 2 cov / (var1 + var2 + (mean1 - mean2)^2) = 2 * 2 / (2.5 + 2.25 + 0.25)
    assert result.rating_kappa == pytest.approx(0.8)
    assert [(d.item_id, d.first_reviewer, d.second_verdict, d.second_rating) for d in result.disagreements] == [
        (ids[1], "ann", "bad", 2)
    ]
    assert review.agreement(store, task_type="other").items == 0


def test_agreement_says_why_a_kappa_is_missing(store: Store) -> None:
    review.set_settings(store, double_review_share=1.0)
    ids = review.enqueue(store, [item(n) for n in range(3)])
    for item_id in ids:
        review.save_review(store, item_id, "ann", verdict="good")
        review.save_review(store, item_id, "bob", verdict="good")

    result = review.agreement(store)

    assert (result.items, result.verdict_agreement, result.verdict_kappa, result.rating_kappa) == (3, 1.0, None, None)
    assert result.notes[0].startswith("verdicts: both raters gave every item the same label")
    assert review.agreement(Store(store.path), task_type="none").notes == []


# ------------------------------------------------------------------------------------------------ reviews


def test_a_reviewer_changes_their_review(store: Store, queue: list[int]) -> None:
    first = review.save_review(store, queue[0], "ann", verdict="bad", rating=2, categories=["format", "my own"]).review
    second = review.save_review(store, queue[0], "ann", verdict="good", rating=4, comment=" fine after all ").review

    assert second.id == first.id
    assert (second.verdict, second.rating, second.categories, second.comment) == (Verdict.GOOD, 4, [], "fine after all")
    assert second.updated_at >= first.updated_at and second.created_at == first.created_at
    assert review.my_reviews(store, "ann")[0].verdict is Verdict.GOOD


def test_categories_keep_the_fixed_spelling_and_custom_ones(store: Store, queue: list[int]) -> None:
    saved = review.save_review(store, queue[0], "ann", verdict="bad", categories=["pii", " wrong  answer", "PII", "", "Too chatty"])

    assert saved.review.categories == ["PII", "wrong answer", "Too chatty"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"verdict": "meh"}, "verdict must be 'good' or 'bad'"),
        ({"verdict": "good", "rating": 6}, "rating must be 1 to 5"),
        ({"verdict": "good", "rating": True}, "rating must be 1 to 5"),
        ({"verdict": "bad", "categories": ["x" * 41]}, "longer than 40"),
        ({"verdict": "bad", "correction": "better"}, "needs a dataset"),
        ({"verdict": "bad", "correction": "better", "dataset": "bad\nname"}, "control characters"),
    ],
)
def test_save_review_refuses_bad_input(store: Store, queue: list[int], kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        review.save_review(store, queue[0], "ann", **kwargs)
    assert review.my_reviews(store, "ann") == []


@pytest.mark.parametrize(("name", "error"), [("  ", "reviewer name is required"), ("a\tb", "control"), ("x" * 65, "at most 64")])
def test_reviewer_names_are_checked(store: Store, queue: list[int], name: str, error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        review.skip(store, queue[0], name)


def test_an_unknown_item_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="no review item with id 99"):
        review.save_review(store, 99, "ann", verdict="good")


# -------------------------------------------------------------------------------------------- corrections


def test_a_correction_lands_as_a_chat_example_with_its_provenance(store: Store) -> None:
    [item_id] = review.enqueue(store, [item(1, template_version_id=3)])

    saved = review.save_review(store, item_id, "ann", verdict="bad", correction="the right answer", dataset="fixes")

    assert saved.landing is not None and saved.landing.new and saved.landing.dataset == "fixes"
    assert (saved.review.dataset, saved.review.example_id) == ("fixes", saved.landing.example_id)
    example = datasets.get_example(store, saved.landing.example_id)
    assert example.system == "Answer briefly."
    assert [(m.role.value, m.content) for m in example.messages] == [("user", "question 1"), ("assistant", "the right answer")]
    assert example.metadata == {
        "source": "review", "review_item_id": item_id, "reviewer": "ann", "model_id": "model-a",
        "template_version_id": 3, "original_output": "answer 1", "review_source": "comparison:cell-1", "task_type": "support",
    }
    assert review.CORRECTION_TAG in example.tags
    assert "correction added to 'fixes'" in saved.summary()


def test_the_same_correction_twice_makes_one_example(store: Store) -> None:
    review.set_settings(store, double_review_share=1.0)
    [item_id] = review.enqueue(store, [item(1)])

    first = review.save_review(store, item_id, "ann", verdict="bad", correction="fixed", dataset="fixes")
    again = review.save_review(store, item_id, "ann", verdict="bad", correction="fixed", dataset="fixes")
    other = review.save_review(store, item_id, "bob", verdict="bad", correction="fixed", dataset="fixes")

    assert first.landing and again.landing and other.landing
    assert again.landing.example_id == other.landing.example_id == first.landing.example_id
    assert not again.landing.new and not other.landing.new
    assert datasets.get_dataset(store, "fixes").example_count == 1
    assert review.my_reviews(store, "bob")[0].example_id == first.landing.example_id


def test_a_changed_correction_revises_its_example(store: Store) -> None:
    [item_id] = review.enqueue(store, [item(1)])
    first = review.save_review(store, item_id, "ann", verdict="bad", correction="fixd", dataset="fixes")

    second = review.save_review(store, item_id, "ann", verdict="bad", correction="fixed", dataset="fixes")

    assert second.landing is not None and second.landing.revised
    assert second.landing.example_id == first.landing.example_id  # type: ignore[union-attr]
    example = datasets.get_example(store, second.landing.example_id)
    assert example.messages[-1].content == "fixed" and example.revision == 2
    assert datasets.get_dataset(store, "fixes").example_count == 1


def test_a_changed_correction_leaves_a_shared_example_alone(store: Store) -> None:
    review.set_settings(store, double_review_share=1.0)
    [item_id] = review.enqueue(store, [item(1)])
    shared = review.save_review(store, item_id, "ann", verdict="bad", correction="fixed", dataset="fixes").landing
    review.save_review(store, item_id, "bob", verdict="bad", correction="fixed", dataset="fixes")

    changed = review.save_review(store, item_id, "ann", verdict="bad", correction="fixed again", dataset="fixes").landing

    assert shared is not None and changed is not None and changed.new
    assert datasets.get_example(store, shared.example_id).messages[-1].content == "fixed"  # still bob's correction
    assert datasets.get_dataset(store, "fixes").example_count == 2


def test_an_untouched_correction_is_no_correction(store: Store) -> None:
    [item_id] = review.enqueue(store, [item(1)])

    saved = review.save_review(store, item_id, "ann", verdict="good", correction="answer 1", dataset="fixes")

    assert saved.landing is None and saved.review.correction is None
    assert "fixes" not in [d.name for d in datasets.list_datasets(store)]


def test_a_correction_into_a_split_dataset_gets_a_split(store: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(store, write_jsonl([chat(f"q{i}", f"a{i}") for i in range(10)]), "fixes")
    splits.split_dataset(store, "fixes", (0.8, 0.2, 0.0), seed=1)
    [item_id] = review.enqueue(store, [item(1)])

    saved = review.save_review(store, item_id, "ann", verdict="bad", correction="fixed", dataset="fixes")

    assert saved.landing is not None
    assert datasets.get_example(store, saved.landing.example_id).split.value in ("train", "validation")
    assert datasets.browse(store, "fixes", ExampleFilter(tags=[review.CORRECTION_TAG])).total == 1


def test_correction_targets_suggest_a_corrections_dataset_per_task(store: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(store, write_jsonl([chat("q", "a")]), "inputs")
    [with_task, without] = review.enqueue(store, [item(1), item(2, task_type="")])
    view = review.queue_view(store, "ann", item_id=with_task)

    assert review.correction_targets(store, view.item) == ["support-corrections", "inputs"]  # type: ignore[arg-type]
    other = review.queue_view(store, "ann", item_id=without).item
    assert review.correction_targets(store, other)[0] == "review-corrections"  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ retraining


def test_no_advice_below_the_thresholds(store: Store) -> None:
    ids = review.enqueue(store, [item(n) for n in range(30)])
    for n, item_id in enumerate(ids):
        review.save_review(store, item_id, "ann", verdict="bad" if n < 4 else "good")  # 4 of 30: 13%

    assert review.retraining_advice(store) == []


def test_advice_when_a_task_has_enough_corrections(store: Store) -> None:
    review.set_settings(store, retrain_corrections=3)
    ids = review.enqueue(store, [item(n) for n in range(5)] + [item(9, task_type="other")])
    for n, item_id in enumerate(ids[:3]):
        review.save_review(store, item_id, "ann", verdict="good", correction=f"better {n}", dataset="support-fixes")

    [advice] = review.retraining_advice(store)

    assert (advice.task_type, advice.corrections, advice.bad, advice.reviews) == ("support", 3, 0, 3)
    assert advice.dataset == "support-fixes"
    assert advice.reasons == ["3 corrections"]
    assert advice.launch_params() == {"tab": "launch", "dataset": "support-fixes"}


def test_advice_when_a_task_has_too_many_bad_verdicts_among_its_latest_reviews(store: Store, write_jsonl: WriteJsonl) -> None:
    importing.import_path(store, write_jsonl([chat("q", "a")]), "inputs")
    review.set_settings(store, retrain_window=20, retrain_min_reviews=10, retrain_bad_share=0.25)
    ids = review.enqueue(store, [item(n, dataset="inputs") for n in range(40)])
    for n, item_id in enumerate(ids):
        review.save_review(store, item_id, "ann", verdict="bad" if n < 15 else "good")  # old reviews bad, latest fine
    assert review.retraining_advice(store) == []  # only the latest 20 count: none of them bad

    for item_id in ids[-5:]:
        review.save_review(store, item_id, "ann", verdict="bad")  # a changed review is a recent one

    [advice] = review.retraining_advice(store)
    assert (advice.bad, advice.reviews, advice.corrections) == (5, 20, 0)
    assert advice.reasons == ["5 of 20 reviews bad (25%)"]
    assert advice.dataset == "inputs"  # no correction yet: the dataset its inputs came from


def test_the_bad_share_waits_for_enough_reviews(store: Store) -> None:
    ids = review.enqueue(store, [item(n) for n in range(5)])
    for item_id in ids:
        review.save_review(store, item_id, "ann", verdict="bad")

    assert review.retraining_advice(store) == []  # 5 of 5 bad, but under the 20 reviews the share needs


# ------------------------------------------------------------------------------------------------- settings


def test_settings_have_defaults_and_persist(store: Store) -> None:
    assert review.get_settings(store) == review.ReviewSettings()
    assert review.get_settings(store).double_review_share == 0.1

    review.set_settings(store, double_review_share=0.25, retrain_corrections=5)

    assert review.get_settings(store).double_review_share == 0.25
    assert review.get_settings(Store(store.path)).retrain_corrections == 5


@pytest.mark.parametrize(
    ("values", "error"),
    [({"double_review_share": 1.5}, "double_review_share"), ({"retrain_window": 0}, "retrain_window"),
     ({"sample": 1}, "unknown review setting 'sample'")],
)
def test_settings_refuse_bad_values(store: Store, values: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        review.set_settings(store, **values)
    assert review.get_settings(store) == review.ReviewSettings()


# ------------------------------------------------------------------------------------------------- demo, threads


def test_the_demo_queue_loads_once(store: Store, write_jsonl: WriteJsonl) -> None:
    records = [chat(f"Feedback {i}", '{"headline": "ok", "pinch_points": [], "sentiment": "positive"}') for i in range(30)]
    importing.import_path(store, write_jsonl(records), "demo-stylist-feedback")
    splits.split_dataset(store, "demo-stylist-feedback", (0.5, 0.0, 0.5), seed=1)

    added = demo_review.load_demo_queue(store)

    assert added == demo_review.DEMO_ITEMS_PER_DATASET
    assert demo_review.load_demo_queue(store) == 0
    queued = served(store, "ann", QueueFilter(source_kind=SourceKind.DEMO))
    outputs = [review.queue_view(store, "ann", item_id=i).item.output for i in queued]  # type: ignore[union-attr]
    assert sum('"negative"' in o for o in outputs) == demo_review.DEMO_ITEMS_PER_DATASET // 3


def test_the_queue_works_from_another_thread(store: Store, queue: list[int]) -> None:
    """Streamlit runs each rerun on a new thread: the store must not hold a connection across them."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            review.save_review(store, queue[0], "ann", verdict="good")
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()

    assert not errors
    assert review.queue_view(store, "ann").done == 1
