"""The Review page, Home's "retraining recommended" notice and the launch form it opens, driven through AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import WriteJsonl, chat
from workbench.domain.example import Message, Role
from workbench.services import datasets, importing, review
from workbench.services.review import NewItem, SourceKind
from workbench.store import Store
from workbench.ui import jobs_launch
from workbench.ui import review_page as page

ROOT = Path(__file__).resolve().parents[1]
REVIEW = str(ROOT / "pages" / "4_Review.py")
HOME = str(ROOT / "Home.py")
JOBS = str(ROOT / "pages" / "2_Jobs.py")
HOSTILE = "<script>alert(1)</script> **bold** [link](http://x) <img src=x onerror=alert(1)>"

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    path = tmp_path / "review-ui.db"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    return Store(path)


@pytest.fixture
def queued(db: Store) -> list[int]:
    """Three outputs of one task, the second one hostile; nothing double-reviewed."""
    review.set_settings(db, double_review_share=0.0)
    outputs = ["Paris.", HOSTILE, "Blue."]
    return review.enqueue(db, [
        NewItem(source_kind=SourceKind.COMPARISON, source_id=f"cell-{n}", system="Answer briefly.",
                messages=[Message(role=Role.USER, content=f"Question {n}?")], output=output, reference=f"Reference {n}",
                model_id="model-a", task_type="quiz")
        for n, output in enumerate(outputs)
    ])


def run(script: str, reviewer: str | None = "ann", **params: str) -> AppTest:
    at = AppTest.from_file(script, default_timeout=60)
    at.query_params.update(params)
    if reviewer is not None:
        at.session_state[page.REVIEWER] = reviewer
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_item(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("item \\#"))


def codes(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


def test_empty_queue_says_there_is_nothing_to_review(db: Store) -> None:
    at = run(REVIEW)

    assert "Nothing left to review" in at.success[0].value
    assert at.get("progress")[0].proto.text == "0 of 0 done"


def test_the_reviewer_defaults_to_the_os_user(db: Store, queued: list[int]) -> None:
    at = run(REVIEW, reviewer=None)

    assert at.text_input(key=page.REVIEWER).value == review.default_reviewer()


def test_rate_an_item_and_move_to_the_next(db: Store, queued: list[int]) -> None:
    at = run(REVIEW)
    assert shown_item(at).startswith("item \\#1 ")
    assert "Paris." in "".join(codes(at)) and "Reference 0" in "".join(codes(at))

    at.radio(key=page.VERDICT).set_value("good")
    at.radio(key=page.RATING).set_value(4)
    at.multiselect(key=page.CATEGORIES).set_value(["tone"])
    at.text_input(key=page.CUSTOM).set_value("too formal")
    at.button(key=page.SAVE).click().run()

    assert not at.exception
    assert "Saved your review of item \\#1" in at.success[0].value
    [saved] = review.my_reviews(db, "ann")
    assert (saved.verdict, saved.rating, saved.categories, saved.correction) == ("good", 4, ["tone", "too formal"], None)
    assert shown_item(at).startswith("item \\#2 ")
    assert at.get("progress")[0].proto.text == "1 of 3 done"
    assert at.radio(key=page.VERDICT).value is None  # the form starts afresh for the next item


def test_saving_without_a_verdict_asks_for_one(db: Store, queued: list[int]) -> None:
    at = run(REVIEW)
    at.button(key=page.SAVE).click().run()

    assert "Pick a verdict" in at.warning[0].value
    assert review.my_reviews(db, "ann") == []
    assert shown_item(at).startswith("item \\#1 ")


def test_skip_moves_on_and_keeps_the_item_for_others(db: Store, queued: list[int]) -> None:
    at = run(REVIEW)
    at.button(key=page.SKIP).click().run()

    assert shown_item(at).startswith("item \\#2 ")
    assert review.my_reviews(db, "ann")[0].skipped
    assert review.next_item(db, "bob").id == queued[0]  # type: ignore[union-attr]


def test_hostile_output_is_shown_as_text(db: Store, queued: list[int]) -> None:
    at = run(REVIEW)
    at.button(key=page.SKIP).click().run()

    assert HOSTILE in codes(at)
    assert all("<script>" not in m.value for m in at.markdown)


def test_a_correction_lands_in_a_dataset_with_its_provenance(db: Store, queued: list[int], write_jsonl: WriteJsonl) -> None:
    importing.import_path(db, write_jsonl([chat("q", "a")]), "existing")
    at = run(REVIEW)
    assert at.text_area(key=page.CORRECTION).value == "Paris."  # pre-filled with the output
    assert at.selectbox(key=page.TARGET).value == "quiz-corrections"

    at.radio(key=page.VERDICT).set_value("bad")
    at.text_area(key=page.CORRECTION).set_value("Paris is the capital of France.")
    at.button(key=page.SAVE).click().run()

    assert "correction added to \\'quiz\\-corrections\\'" in at.success[0].value
    [saved] = review.my_reviews(db, "ann")
    example = datasets.get_example(db, saved.example_id or 0)
    assert saved.dataset == "quiz-corrections"
    assert example.messages[-1].content == "Paris is the capital of France."
    assert example.metadata["source"] == "review" and example.metadata["review_item_id"] == queued[0]
    assert example.metadata["original_output"] == "Paris." and example.metadata["reviewer"] == "ann"

    # Reopened, the item shows where its correction landed.
    at.selectbox(key=page.REOPEN).set_value(queued[0])
    at.button(key=page.P + "reopen_go").click().run()
    assert shown_item(at).startswith("item \\#1 ")
    assert f"landed in quiz\\-corrections as example #{saved.example_id}" in " ".join(c.value for c in at.caption)
    assert at.text_area(key=page.CORRECTION).value == "Paris is the capital of France."


def test_a_new_dataset_name_takes_the_correction(db: Store, queued: list[int]) -> None:
    at = run(REVIEW)
    at.radio(key=page.VERDICT).set_value("bad")
    at.text_area(key=page.CORRECTION).set_value("Better.")
    at.text_input(key=page.NEW_TARGET).set_value("my-fixes")
    at.button(key=page.SAVE).click().run()

    assert datasets.get_dataset(db, "my-fixes").example_count == 1


def test_filters_narrow_the_queue(db: Store, queued: list[int]) -> None:
    review.enqueue(db, [NewItem(source_kind=SourceKind.PREDICTION, source_id="p1", prompt="Say hi", output="hi",
                                task_type="greeting")])
    at = run(REVIEW)
    at.selectbox(key=page.SOURCE).set_value("prediction").run()

    assert shown_item(at).startswith("item \\#4 ")
    assert at.get("progress")[0].proto.text == "0 of 1 done"
    at.checkbox(key=page.WITH_REFERENCE).check().run()
    assert "Nothing left to review" in at.success[0].value


def test_agreement_shows_kappa_and_disagreements(db: Store, queued: list[int]) -> None:
    review.set_settings(db, double_review_share=1.0)
    for item_id, (first, second) in zip(queued, [("good", "good"), ("bad", "good"), ("bad", "bad")], strict=True):
        review.save_review(db, item_id, "ann", verdict=first, rating=4 if first == "good" else 2)
        review.save_review(db, item_id, "bob", verdict=second, rating=4 if second == "good" else 2)

    at = run(REVIEW)

    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Double-reviewed"] == "3"
    assert metrics["Verdict kappa"] == f"{review.agreement(db).verdict_kappa:.2f}"
    table = at.dataframe[-1].value
    assert table["item id"].tolist() == [queued[1]]


def test_queue_settings_are_saved_from_the_page(db: Store, queued: list[int]) -> None:
    at = run(REVIEW)
    at.number_input(key=page.P + "share").set_value(25)
    at.button(key=page.P + "settings_save").click().run()

    assert review.get_settings(db).double_review_share == 0.25


# ------------------------------------------------------------------------------------- home and the launch form


def test_home_recommends_retraining_with_a_link_to_the_launch_form(db: Store, queued: list[int], write_jsonl: WriteJsonl) -> None:
    importing.import_path(db, write_jsonl([chat("q", "a")]), "support")
    review.set_settings(db, retrain_corrections=2)
    for n, item_id in enumerate(queued[:2]):
        review.save_review(db, item_id, "ann", verdict="bad", correction=f"fixed {n}", dataset="quiz-fixes")

    at = run(HOME)

    assert "Retraining recommended" in at.warning[0].value and "quiz" in at.warning[0].value
    assert "2 corrections" in at.warning[0].value
    link = next(link for link in at.page_link if link.value.startswith("Launch a job"))
    assert link.proto.page == "Jobs"
    assert link.proto.query_string == "tab=launch&dataset=quiz-fixes"


def test_home_is_quiet_below_the_threshold(db: Store, queued: list[int], write_jsonl: WriteJsonl) -> None:
    importing.import_path(db, write_jsonl([chat("q", "a")]), "support")
    review.save_review(db, queued[0], "ann", verdict="bad", correction="fixed", dataset="quiz-fixes")

    at = run(HOME)

    assert not any("Retraining recommended" in w.value for w in at.warning)


def test_the_launch_form_opens_on_the_dataset_a_link_names(db: Store, write_jsonl: WriteJsonl) -> None:
    for name in ("alpha", "quiz-fixes"):
        importing.import_path(db, write_jsonl([chat(f"q {name}", "a")], f"{name}.jsonl"), name)

    at = run(JOBS, tab="launch", dataset="quiz-fixes")

    assert at.selectbox(key=jobs_launch.DATASET).value == "quiz-fixes"
    at.selectbox(key=jobs_launch.DATASET).set_value("alpha").run()
    assert at.selectbox(key=jobs_launch.DATASET).value == "alpha"  # the link sets it once, then the user decides
