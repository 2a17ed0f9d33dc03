"""The review queue in a shared workbench: who may read, work and manage it, and whose name each review carries.

Signed in, a review is by the signed-in address and nobody else's; a refused call writes nothing but a
refused audit event; corrections that reach training data are attributed, and a revised correction goes
through the store's revision (and `updated_by`) like any other edit. Real SQLite files in tmp_path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.domain.access import NOBODY, Actor, Role
from workbench.domain.example import Message, Split
from workbench.domain.example import Role as Turn
from workbench.errors import Forbidden, InvalidInput
from workbench.services import access, audit, datasets, review, splits
from workbench.services.review import NewItem, SourceKind
from workbench.store import Store
from workbench.store import examples as example_rows

ROOT = Path(__file__).resolve().parents[1]
REVIEW_PAGE = str(ROOT / "pages" / "4_Review.py")
ANA, BEN = "ana@acme.com", "ben@acme.com"


def person(role: Role | None, email: str = ANA, via: str = "oidc") -> Actor:
    return Actor(email=email, name=email.split("@")[0], role=role, via=via)  # type: ignore[arg-type]


def item(n: int, output: str = "Paris.") -> NewItem:
    return NewItem(source_kind=SourceKind.COMPARISON, source_id=f"cell-{n}", messages=[
        Message(role=Turn.USER, content=f"Capital {n}?")], output=output, reference="Paris.", model_id="m",
        task_type="quiz")


@pytest.fixture
def queue(store: Store) -> list[int]:
    """Two items queued by the terminal operator, every item double-reviewed."""
    review.set_settings(store, double_review_share=1.0)
    return review.enqueue(store, [item(1), item(2)])


def table_counts(store: Store) -> dict[str, int]:
    with store.connect() as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("reviews", "review_items", "review_settings", "examples", "datasets")}


def last_event(store: Store) -> Any:
    return audit.events(store, limit=1)[0]


# ------------------------------------------------------------------------------------- permissions

CALLS: dict[str, tuple[Callable[[Store, list[int]], Any], str, bool]] = {
    # name: (call, action, writes)
    "queue view": (lambda s, q: review.queue_view(s, None), "review.read", False),
    "facets": (lambda s, q: review.queue_facets(s), "review.read", False),
    "my reviews": (lambda s, q: review.my_reviews(s, None), "review.read", False),
    "agreement": (lambda s, q: review.agreement(s), "review.read", False),
    "save": (lambda s, q: review.save_review(s, q[0], None, verdict="bad", correction="Lyon.", dataset="quiz-corrections"),
             "review.save", True),
    "skip": (lambda s, q: review.skip(s, q[0], None), "review.skip", True),
    "settings": (lambda s, q: review.set_settings(s, retrain_corrections=5), "review.settings", True),
    "enqueue": (lambda s, q: review.enqueue(s, [item(9)]), "review.enqueue", True),
}
ALLOWED = {
    Role.ADMIN: set(CALLS),
    Role.ENGINEER: set(CALLS),
    Role.REVIEWER: {"queue view", "facets", "my reviews", "agreement", "save", "skip"},
    Role.PM: {"queue view", "facets", "my reviews", "agreement"},
    None: set(),
}
CASES = [(role, name, name in allowed) for role, allowed in ALLOWED.items() for name in CALLS]


@pytest.mark.parametrize(("role", "call", "allowed"), CASES,
                         ids=[f"{r.value if r else 'no-role'}-{c.replace(' ', '_')}" for r, c, _ in CASES])
def test_each_role_may_use_only_its_part_of_the_queue(store: Store, queue: list[int], role: Role | None, call: str,
                                                      allowed: bool) -> None:
    fn, action, writes = CALLS[call]
    before = table_counts(store)
    with access.acting_as(person(role)):
        if not allowed:
            with pytest.raises(Forbidden, match=f"{ANA} \\({role.value if role else 'no role'}\\) may not"):
                fn(store, queue)
        else:
            fn(store, queue)

    if not allowed:
        assert table_counts(store) == before, "a refused call writes nothing"
        event = last_event(store)
        assert (event.actor, event.action, event.outcome) == (ANA, action, "refused")
    elif writes:
        event = audit.events(store, action=action, limit=1)[0]
        assert (event.actor, event.role, event.outcome) == (ANA, role.value if role else None, "ok")


def test_with_no_actor_set_the_operator_works_the_queue_under_any_name(store: Store, queue: list[int]) -> None:
    saved = review.save_review(store, queue[0], "ann", verdict="good")
    assert saved.review.reviewer == "ann"
    event = last_event(store)
    assert (event.action, event.actor, event.detail["reviewer"]) == ("review.save", access.operator().email, "ann")


def test_a_signed_out_caller_is_refused_the_queue(store: Store, queue: list[int]) -> None:
    with access.acting_as(NOBODY), pytest.raises(Forbidden, match="anonymous"):
        review.queue_view(store, "ann")


# ---------------------------------------------------------------------------------------- identity


@pytest.mark.parametrize("via", ["oidc", "token"])
def test_signed_in_reviews_carry_the_signed_in_address(store: Store, queue: list[int], via: str) -> None:
    with access.acting_as(person(Role.REVIEWER, via=via)):
        view = review.queue_view(store, None)
        saved = review.save_review(store, view.item.id if view.item else 0, None, verdict="good", rating=4)
        same_in_other_case = review.skip(store, queue[1], ANA.upper())
        mine = review.my_reviews(store, None)

    assert saved.review.reviewer == ANA and same_in_other_case.reviewer == ANA
    assert [r.reviewer for r in mine] == [ANA, ANA]


@pytest.mark.parametrize("call", ["save", "skip", "view", "mine"])
def test_a_signed_in_reviewer_may_not_review_as_someone_else(store: Store, queue: list[int], call: str) -> None:
    calls: dict[str, Callable[[], Any]] = {
        "save": lambda: review.save_review(store, queue[0], BEN, verdict="bad", correction="Lyon.", dataset="fixes"),
        "skip": lambda: review.skip(store, queue[0], BEN),
        "view": lambda: review.queue_view(store, BEN),
        "mine": lambda: review.my_reviews(store, BEN),
    }
    before = table_counts(store)
    with access.acting_as(person(Role.REVIEWER)), pytest.raises(Forbidden, match=f"may not review as '{BEN}'"):
        calls[call]()

    assert table_counts(store) == before
    event = last_event(store)
    assert (event.actor, event.outcome) == (ANA, "refused")
    assert BEN in event.detail["reason"]


def test_local_names_are_still_checked(store: Store, queue: list[int]) -> None:
    with pytest.raises(InvalidInput, match="reviewer name is required"):
        review.save_review(store, queue[0], None, verdict="good")


def test_agreement_is_measured_between_the_signed_in_people(store: Store, queue: list[int]) -> None:
    with access.acting_as(person(Role.REVIEWER, ANA)):
        review.save_review(store, queue[0], None, verdict="good", rating=5)
    with access.acting_as(person(Role.ENGINEER, BEN)):
        assert review.queue_view(store, None).item is not None  # the double-review item is offered to Ben too
        review.save_review(store, queue[0], None, verdict="bad", rating=1)
        result = review.agreement(store)

    assert result.items == 1
    assert [(d.first_reviewer, d.second_reviewer) for d in result.disagreements] == [(ANA, BEN)]


# ------------------------------------------------------------------------------------- corrections


def test_a_correction_is_attributed_and_its_revision_goes_through_the_store(store: Store, queue: list[int]) -> None:
    with access.acting_as(person(Role.REVIEWER)):
        first = review.save_review(store, queue[0], None, verdict="bad", correction="Lyon.", dataset="quiz-corrections")
    assert first.landing is not None and first.landing.new
    example_id = first.landing.example_id
    applied = audit.events(store, action="correction.apply")
    assert [(e.actor, e.target, e.detail["example_id"], e.detail["change"]) for e in applied] == [
        (ANA, f"example:{example_id}", example_id, "added")]

    with access.acting_as(person(Role.REVIEWER)):
        revised = review.save_review(store, queue[0], None, verdict="bad", correction="Marseille.", dataset="quiz-corrections")

    assert revised.landing is not None and revised.landing.revised and revised.landing.example_id == example_id
    with store.connect() as db:
        stamp = example_rows.stamp(db, example_id)
        assert example_rows.get_example(db, example_id).metadata["reviewer"] == ANA
    assert (stamp.revision, stamp.updated_by) == (2, ANA)
    latest = audit.events(store, action="correction.apply", limit=1)[0]
    assert (latest.actor, latest.detail["change"]) == (ANA, "revised")
    saves = audit.events(store, action="review.save")
    assert [(e.actor, e.detail["corrected"], e.detail["replaced"]) for e in saves] == [(ANA, True, True),
                                                                                       (ANA, True, False)]


def test_the_same_correction_again_records_no_change_to_the_example(store: Store, queue: list[int]) -> None:
    with access.acting_as(person(Role.REVIEWER)):
        review.save_review(store, queue[0], None, verdict="bad", correction="Lyon.", dataset="quiz-corrections")
        review.save_review(store, queue[0], None, verdict="bad", correction="Lyon.", dataset="quiz-corrections", rating=2)

    assert audit.count(store, action="correction.apply") == 1
    assert audit.count(store, action="review.save") == 2


@pytest.mark.parametrize("role", [Role.ENGINEER, Role.REVIEWER])
def test_a_correction_in_a_split_dataset_joins_a_split_whoever_saved_it(
        store: Store, queue: list[int], write_jsonl: Any, role: Role) -> None:
    """Placing a new arrival by the dataset's own split settings follows the save: a reviewer needs no split permission."""
    from tests.helpers import chat
    from workbench.services import importing

    importing.import_path(store, write_jsonl([chat(f"q{i}", f"a{i}") for i in range(10)]), "fixes")
    splits.split_dataset(store, "fixes", (0.8, 0.1, 0.1), seed=1)

    with access.acting_as(person(role)):
        saved = review.save_review(store, queue[0], None, verdict="bad", correction="Lyon.", dataset="fixes")

    assert saved.landing is not None and saved.landing.new
    assert datasets.get_example(store, saved.landing.example_id).split != Split.UNASSIGNED
    assert audit.count(store, outcome="refused") == 0


def test_a_reviewer_creates_only_the_tasks_corrections_dataset_and_lands_in_existing_ones(
        store: Store, queue: list[int], write_jsonl: Any) -> None:
    """The form's "new dataset" box must not let a reviewer make datasets at will; existing ones take corrections."""
    from tests.helpers import chat
    from workbench.errors import Forbidden
    from workbench.services import importing

    importing.import_path(store, write_jsonl([chat("q", "a")]), "existing")
    rita = person(Role.REVIEWER)
    with access.acting_as(rita):
        suggested = review.correction_targets(store, review.queue_view(store, None, review.QueueFilter()).item)[0]
        with pytest.raises(Forbidden, match="datasets.write"):
            review.save_review(store, queue[0], None, verdict="bad", correction="Lyon.", dataset="made-up-by-rita")
        assert review.save_review(store, queue[0], None, verdict="bad", correction="Lyon.", dataset=suggested).landing
        assert review.save_review(store, queue[1], None, verdict="bad", correction="Nice.", dataset="existing").landing
    assert "made-up-by-rita" not in {d.name for d in datasets.list_datasets(store)}
    (refused,) = audit.events(store, outcome="refused", action="dataset.create")
    assert (refused.actor, refused.target) == (rita.email, "dataset:made-up-by-rita")
    assert audit.count(store, action="review.save", actor=rita.email) == 2


# -------------------------------------------------------------------------------------------- page


@pytest.fixture
def signed_in_page(store: Store, monkeypatch: pytest.MonkeyPatch, fresh_streamlit_caches: None) -> Iterator[None]:
    """Point the app at `store`, and put back who code acts as once the AppTest's gate has set it."""
    monkeypatch.setenv("WORKBENCH_DB", str(store.path))
    yield
    access.set_process_default(access.operator())
    access.set_resolver(None)


def signed_in(script: str, email: str) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(script, default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32}
    at.user = {"is_logged_in": True, "email": email, "name": email.split("@")[0]}
    return at.run()


def test_the_review_page_shows_the_signed_in_reviewer_instead_of_a_name_box(
        store: Store, queue: list[int], signed_in_page: None) -> None:
    from workbench.services import users
    from workbench.ui import review_page

    users.assign(store, ANA, "reviewer")
    at = signed_in(REVIEW_PAGE, ANA)
    assert not at.exception, [e.value for e in at.exception]
    assert not [t for t in at.sidebar.text_input if t.key == review_page.REVIEWER]
    assert any("ana\\@\u2060acme\\.com" in m.value for m in at.sidebar.markdown)

    at.radio(key=review_page.VERDICT).set_value("good")
    at.button(key=review_page.SAVE).click().run()
    assert not at.exception, [e.value for e in at.exception]
    with access.acting_as(person(Role.REVIEWER)):
        assert [r.reviewer for r in review.my_reviews(store, None)] == [ANA]
    assert "Queue settings: your role (reviewer) cannot change them." in [c.value for c in at.sidebar.caption]


def test_a_pm_reads_the_queue_without_the_review_form(store: Store, queue: list[int], signed_in_page: None) -> None:
    from workbench.services import users
    from workbench.ui import review_page

    users.assign(store, "pm@acme.com", "pm")
    at = signed_in(REVIEW_PAGE, "pm@acme.com")
    assert not at.exception, [e.value for e in at.exception]
    assert not [b for b in at.button if b.key == review_page.SAVE]
    assert any("Your role (pm) can read the queue but not review it" in c.value for c in at.caption)
