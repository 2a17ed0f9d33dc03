from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.domain.dedup import (
    DuplicateGroup,
    DuplicateKind,
    choose_keep,
    exact_groups,
    keep_score,
    leakage,
    near_duplicate_groups,
    normalize,
    resolve,
    signatures,
)
from workbench.domain.example import Example, Message, ReviewState, Role, Split
from workbench.errors import InvalidInput

VOCAB = [f"word{i}" for i in range(2000)]


def _text(seed: int, words: int = 200) -> str:
    return " ".join(random.Random(seed).choices(VOCAB, k=words))


def _edit(text: str, changes: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = text.split()
    for _ in range(changes):
        words[rng.randrange(len(words))] = rng.choice(VOCAB)
    return " ".join(words)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello   World", "hello world"),
        ("  leading and trailing \n\t ", "leading and trailing"),
        ("Hello, world!!!", "hello world"),
        ("**bold** and _italic_ and `code`", "bold and italic and code"),
        ("<p>Hello <b>there</b></p>", "hello there"),
        ("Fish &amp; chips", "fish chips"),
        ("ﬁne ＦＵＬＬ", "fine full"),
        ("Straße", "strasse"),
        ("- item one\n- item two", "item one item two"),
        ("हिन्दी भाषा", "हिन्दी भाषा"),
        ("", ""),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_normalize_ascii_fast_path_matches_unicode_path(text: str) -> None:
    # A non-ASCII word sends the whole text down the regex path; the ASCII part must come out the same.
    assert normalize(text + " é") == f"{normalize(text)} é".strip()


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)


def test_exact_groups_collects_copies_that_differ_only_in_formatting() -> None:
    items = [
        (1, "What is the capital of France?\nParis."),
        (2, "unrelated"),
        (3, "what is the capital of france paris"),
        (4, "WHAT IS THE CAPITAL OF FRANCE?   Paris!"),
        (5, "also unrelated"),
        (6, "also unrelated."),
    ]
    assert exact_groups(items) == [
        DuplicateGroup(kind=DuplicateKind.EXACT, example_ids=[1, 3, 4], similarity=1.0, keep=1),
        DuplicateGroup(kind=DuplicateKind.EXACT, example_ids=[5, 6], similarity=1.0, keep=5),
    ]


def test_exact_groups_empty_when_all_distinct() -> None:
    assert exact_groups([(1, "a"), (2, "b")]) == []
    assert exact_groups([]) == []


def test_near_duplicates_are_grouped_and_unrelated_texts_are_not() -> None:
    base = _text(1)
    items = [(1, base), (2, _edit(base, 2)), (3, _text(2)), (4, _text(3)), (5, _edit(base, 3, seed=9))]
    groups = near_duplicate_groups(items)
    assert len(groups) == 1
    group = groups[0]
    assert group.kind is DuplicateKind.NEAR
    assert group.example_ids == [1, 2, 5]
    assert group.keep == 1
    assert 0.5 < group.similarity < 1.0


def test_near_duplicate_groups_mark_identical_texts_as_exact() -> None:
    base = _text(1)
    groups = near_duplicate_groups([(7, base), (3, base.upper()), (5, _text(2))])
    assert groups == [DuplicateGroup(kind=DuplicateKind.EXACT, example_ids=[3, 7], similarity=1.0, keep=3)]


def test_near_duplicate_group_with_exact_copies_inside_is_near() -> None:
    base = _text(1)
    groups = near_duplicate_groups([(1, base), (2, base), (3, _edit(base, 2))])
    assert [(g.kind, g.example_ids) for g in groups] == [(DuplicateKind.NEAR, [1, 2, 3])]


def test_near_duplicates_join_transitively() -> None:
    # a ~ b and b ~ c, but a and c are further apart: one group, whose similarity shows the spread.
    words = _text(1, words=200).split()
    a = " ".join(words)
    b = " ".join(words[10:] + _text(2, words=10).split())
    c = " ".join(words[20:] + _text(2, words=10).split() + _text(3, words=10).split())
    threshold = _between(a, b, c)
    groups = near_duplicate_groups([(1, a), (2, b), (3, c)], threshold=threshold)
    assert [g.example_ids for g in groups] == [[1, 2, 3]]
    assert groups[0].similarity < threshold


def _between(a: str, b: str, c: str) -> float:
    """A threshold that a~b and b~c pass and a~c fails, by the estimates themselves (not luck in the hashing)."""
    sig = signatures([normalize(t) for t in (a, b, c)])
    ab, bc, ac = ((sig[i] == sig[j]).mean() for i, j in ((0, 1), (1, 2), (0, 2)))
    assert ac < min(ab, bc) and min(ab, bc) > 0.8
    return float(ac + min(ab, bc)) / 2


@pytest.mark.parametrize(("changes", "grouped"), [(0, True), (1, True), (30, False)])
def test_threshold_decides_what_counts_as_near(changes: int, grouped: bool) -> None:
    base = _text(5, words=300)
    groups = near_duplicate_groups([(1, base), (2, _edit(base, changes))], threshold=0.9)
    assert bool(groups) is grouped


def test_near_duplicates_found_at_threshold_with_high_recall() -> None:
    # 40 pairs whose estimated similarity is comfortably above 0.8 (about 6% of words changed).
    items = []
    for pair in range(40):
        base = _text(100 + pair, words=200)
        items += [(2 * pair, base), (2 * pair + 1, _edit(base, 2, seed=pair))]
    groups = near_duplicate_groups(items, threshold=0.8)
    assert [g.example_ids for g in groups] == [[2 * p, 2 * p + 1] for p in range(40)]


def test_short_texts_only_match_when_identical() -> None:
    items = [(1, "What is 2+2?"), (2, "What is 3+3?"), (3, "what is 2 + 2")]
    assert [g.example_ids for g in near_duplicate_groups(items)] == [[1, 3]]


def test_empty_texts_group_with_each_other_only() -> None:
    groups = near_duplicate_groups([(1, ""), (2, "  "), (3, _text(1)), (4, "!!!")])
    assert [(g.kind, g.example_ids) for g in groups] == [(DuplicateKind.EXACT, [1, 2, 4])]


def test_near_duplicate_groups_ignore_input_order() -> None:
    base = _text(1)
    items = [(i, _edit(base, i % 3, seed=i)) for i in range(12)] + [
        (100 + i, _text(50 + i)) for i in range(12)
    ]
    shuffled = list(items)
    random.Random(4).shuffle(shuffled)
    assert near_duplicate_groups(shuffled) == near_duplicate_groups(items)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 0.3}, "threshold"),
        ({"threshold": 1.01}, "threshold"),
        ({"num_perm": 8}, "num_perm"),
        ({"shingle": 0}, "Shingle"),
        ({"shingle": 65}, "Shingle"),
    ],
)
def test_near_duplicate_groups_reject_bad_parameters(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        near_duplicate_groups([(1, "a")], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("threshold", "num_perm", "shingle"), [(1.0, 128, 5), (0.5, 16, 1), (0.95, 256, 3)])
def test_near_duplicate_groups_accept_edge_parameters(threshold: float, num_perm: int, shingle: int) -> None:
    base = _text(1)
    groups = near_duplicate_groups(
        [(1, base), (2, base + "!"), (3, _text(2))], threshold=threshold, num_perm=num_perm, shingle=shingle
    )
    assert [g.example_ids for g in groups] == [[1, 2]]


def test_scores_pick_the_member_to_keep() -> None:
    text = _text(1)
    scores = {1: (0.0, 3.0), 2: (1.0, 2.0), 3: (1.0, 2.0)}
    groups = near_duplicate_groups([(1, text), (2, text), (3, text)], scores=scores)
    assert groups[0].keep == 2  # best score; 2 and 3 tie, the lower id (older) wins


def test_unscored_members_rank_below_scored_ones() -> None:
    group = DuplicateGroup(kind=DuplicateKind.EXACT, example_ids=[1, 2, 3], similarity=1.0, keep=1)
    assert choose_keep(group, {3: (-1.0,)}).keep == 3
    assert choose_keep(group, {}).keep == 1
    assert choose_keep(group).keep == 1


def test_keep_score_prefers_accepted_then_rating_then_quality() -> None:
    def example(**fields: object) -> Example:
        return Example(messages=[Message(role=Role.USER, content="hi")], **fields)  # type: ignore[arg-type]

    ranked = [
        example(review_state=ReviewState.REJECTED, rating=5),
        example(review_state=ReviewState.PENDING),
        example(review_state=ReviewState.PENDING, rating=2),
        example(review_state=ReviewState.PENDING, rating=2, quality_score=0.9),
        example(review_state=ReviewState.ACCEPTED, rating=1),
    ]
    scores = [keep_score(e) for e in ranked]
    assert scores == sorted(scores)
    assert len(set(scores)) == len(scores)


def test_resolve_deletes_all_but_keep() -> None:
    groups = [
        DuplicateGroup(kind=DuplicateKind.EXACT, example_ids=[1, 4, 9], similarity=1.0, keep=4),
        DuplicateGroup(kind=DuplicateKind.NEAR, example_ids=[2, 3], similarity=0.9, keep=3),
    ]
    assert resolve(groups) == [1, 2, 9]
    assert resolve([]) == []


def test_resolve_spares_an_id_kept_by_another_group() -> None:
    groups = [
        DuplicateGroup(kind=DuplicateKind.EXACT, example_ids=[1, 2], similarity=1.0, keep=1),
        DuplicateGroup(kind=DuplicateKind.NEAR, example_ids=[2, 3], similarity=0.9, keep=2),
    ]
    assert resolve(groups) == [3]


def test_leakage_reports_pairs_across_splits_only() -> None:
    shared, near, own = _text(1), _text(2), _text(3)
    pairs = leakage(
        {
            Split.TEST: [(10, shared.upper()), (11, _edit(near, 2))],
            Split.TRAIN: [(1, shared), (2, near), (3, own), (4, own)],
            Split.VALIDATION: [(20, _text(4))],
        }
    )
    assert [(p.kind, p.example_id, p.split, p.other_id, p.other_split) for p in pairs] == [
        (DuplicateKind.EXACT, 1, "train", 10, "test"),
        (DuplicateKind.NEAR, 2, "train", 11, "test"),
    ]
    assert pairs[0].similarity == 1.0
    assert 0.8 <= pairs[1].similarity < 1.0


def test_leakage_orders_each_pair_train_first() -> None:
    text = _text(1)
    pairs = leakage({"test": [(1, text)], "validation": [(2, text)], "train": [(3, text)]})
    assert [(p.split, p.other_split) for p in pairs] == [
        ("validation", "test"),
        ("train", "test"),
        ("train", "validation"),
    ]
    assert [(p.example_id, p.other_id) for p in pairs] == [(2, 1), (3, 1), (3, 2)]


def test_leakage_pairs_are_not_transitive() -> None:
    # a ~ b and b ~ c, but a and c are further apart: only the two similar pairs are leaks.
    words = _text(1).split()
    a = " ".join(words)
    b = " ".join(words[10:] + _text(2, words=10).split())
    c = " ".join(words[20:] + _text(2, words=10).split() + _text(3, words=10).split())
    threshold = _between(a, b, c)
    pairs = leakage({"train": [(1, a)], "validation": [(2, b)], "test": [(3, c)]}, threshold=threshold)
    assert [(p.example_id, p.other_id) for p in pairs] == [(1, 2), (2, 3)]
    assert all(p.similarity >= threshold for p in pairs)


def test_leakage_empty_when_splits_are_clean() -> None:
    assert leakage({"train": [(1, _text(1))], "test": [(2, _text(2))]}) == []
    assert leakage({}) == []
