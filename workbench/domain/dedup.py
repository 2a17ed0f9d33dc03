"""Find exact and near-duplicate examples, and duplicates that leak across splits.

Callers pass `(example_id, text)` pairs, with text from `Example.plain_text()`. Texts are normalized
first, identical normalized texts are collapsed to one representative, and only the representatives go
through MinHash + LSH, so a dataset full of exact copies costs no more than its distinct texts.
"""

from __future__ import annotations

import functools
import html
import re
import sys
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

import numpy as np
from datasketch import MinHash, MinHashLSH
from pydantic import BaseModel, ConfigDict, Field

from workbench.domain.example import Example, ReviewState, Split
from workbench.errors import InvalidInput

Item = tuple[int, str]
"""(example_id, text), text being `Example.plain_text()`."""
KeepScore = tuple[float, ...]
"""Compared element by element, higher is better; see `keep_score`."""

# MinHash permutations are seeded; a fixed seed keeps results identical from run to run.
_MINHASH_SEED = 1
_LSH_MAX_THRESHOLD = 0.9
# Below this, candidate lists approach every pair (quadratic), and the texts are not duplicates anyway.
MIN_THRESHOLD = 0.5
MAX_SHINGLE = 64
_TAG = re.compile(r"</?[A-Za-z][^<>\n]{0,200}>")
# Same result as the noise regex for ASCII text, which is most text, at a small fraction of the cost.
_ASCII_NOISE = bytes(c for c in range(128) if not (chr(c).isalnum() or chr(c).isspace()))
_ASCII_NOISE_TABLE = bytes.maketrans(_ASCII_NOISE, b" " * len(_ASCII_NOISE))
_SHINGLE_POWERS = np.array([pow(0x9E3779B97F4A7C15, i, 1 << 64) for i in range(MAX_SHINGLE)], dtype=np.uint64)


class DuplicateKind(StrEnum):
    EXACT = "exact"
    NEAR = "near"


class DuplicateGroup(BaseModel):
    """Examples that say the same thing; all but `keep` are candidates for deletion."""

    model_config = ConfigDict(frozen=True)

    kind: DuplicateKind = Field(
        description="'exact' when every member has the same normalized text, 'near' when some only look alike."
    )
    example_ids: list[int] = Field(description="Members, sorted ascending; always two or more.")
    similarity: float = Field(
        description="Lowest estimated Jaccard similarity between any two members (1.0 for exact groups)."
    )
    keep: int = Field(description="The member to keep when the group is resolved.")


class LeakagePair(BaseModel):
    """Two examples in different splits that are the same or nearly the same, inflating evaluation scores."""

    model_config = ConfigDict(frozen=True)

    kind: DuplicateKind = Field(description="'exact' for identical normalized text, 'near' otherwise.")
    example_id: int = Field(
        description="The example from the earlier split (train before validation before test)."
    )
    split: str = Field(description="Split holding `example_id`.")
    other_id: int = Field(description="The example from the later split.")
    other_split: str = Field(description="Split holding `other_id`.")
    similarity: float = Field(description="Estimated Jaccard similarity of the two texts (1.0 when exact).")


def normalize(text: str) -> str:
    """Reduce text to what matters for duplicate detection, so formatting differences do not hide copies.

    Applies Unicode NFKC, unescapes HTML entities, drops HTML/XML tags, casefolds, turns punctuation,
    symbols and markup characters into spaces, and collapses whitespace. Combining marks are kept, so
    scripts that need them (Devanagari, Thai, Arabic) keep their words whole.
    """
    text = unicodedata.normalize("NFKC", html.unescape(text))
    text = _TAG.sub(" ", text).casefold()
    if text.isascii():
        text = text.encode().translate(_ASCII_NOISE_TABLE).decode()
    else:
        text = _noise_pattern().sub(" ", text)
    return " ".join(text.split())


def exact_groups(
    items: Iterable[Item], scores: Mapping[int, KeepScore] | None = None
) -> list[DuplicateGroup]:
    """Group examples whose normalized text is identical, the cheap check worth running on every import."""
    groups = [
        _group(DuplicateKind.EXACT, ids, 1.0, scores)
        for ids in _by_normalized_text(items).values()
        if len(ids) > 1
    ]
    return sorted(groups, key=lambda g: g.example_ids)


def near_duplicate_groups(
    items: Iterable[Item],
    threshold: float = 0.8,
    num_perm: int = 128,
    shingle: int = 5,
    scores: Mapping[int, KeepScore] | None = None,
) -> list[DuplicateGroup]:
    """Group examples that are the same or nearly the same, so a reviewer can keep one of each.

    Texts are compared as sets of `shingle`-word shingles (a text shorter than that is one shingle).
    MinHash LSH proposes candidate pairs; a pair counts when its estimated Jaccard similarity (over
    `num_perm` permutations) is at least `threshold`, which must lie in [0.5, 1]. LSH is approximate:
    about 98% of pairs just above the threshold are found, nearly all of those well above it. Pairs are
    joined transitively (A~B and B~C puts A, B and C in one group), so a group's `similarity` can fall
    below the threshold; it is reported so the reviewer can see it. Groups whose members all share one
    normalized text come back with kind 'exact'. `scores` picks each group's `keep` (see `choose_keep`).
    """
    _check_params(threshold, num_perm, shingle)
    by_text = _by_normalized_text(items)
    texts = list(by_text)
    minhashes, matrix = _signatures(texts, num_perm, shingle)
    parent = list(range(len(texts)))
    for a, b, _ in _similar_pairs(minhashes, matrix, threshold, num_perm):
        root_a, root_b = _find(parent, a), _find(parent, b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    members: dict[int, list[int]] = defaultdict(list)
    for rep in range(len(texts)):
        members[_find(parent, rep)].append(rep)

    groups = []
    for reps in members.values():
        ids = [example_id for rep in reps for example_id in by_text[texts[rep]]]
        if len(ids) < 2:
            continue
        if len(reps) == 1:
            groups.append(_group(DuplicateKind.EXACT, ids, 1.0, scores))
        else:
            groups.append(_group(DuplicateKind.NEAR, ids, _min_pairwise(matrix[reps]), scores))
    return sorted(groups, key=lambda g: g.example_ids)


def keep_score(example: Example) -> KeepScore:
    """Rank an example for keeping: accepted over pending over rejected, then rating, then quality score.

    Ties go to the lowest id (the oldest example), which `choose_keep` applies on its own.
    """
    review = {ReviewState.ACCEPTED: 1.0, ReviewState.PENDING: 0.0, ReviewState.REJECTED: -1.0}
    return (review[example.review_state], float(example.rating or 0), example.quality_score or 0.0)


def choose_keep(group: DuplicateGroup, scores: Mapping[int, KeepScore] | None = None) -> DuplicateGroup:
    """Return the group with `keep` set to its best member, so resolving it deletes the weaker copies.

    `scores` maps example id to a tuple compared element by element, higher is better (see
    `keep_score`). Members without a score rank below members with one; ties go to the lowest id.
    """
    return group.model_copy(update={"keep": _best(group.example_ids, scores)})


def resolve(groups: Iterable[DuplicateGroup]) -> list[int]:
    """Return the ids to delete (every member but `keep`), sorted; an id kept by any group is spared."""
    groups = list(groups)
    kept = {g.keep for g in groups}
    return sorted({i for g in groups for i in g.example_ids} - kept)


def leakage(
    split_items: Mapping[str, Sequence[Item]],
    threshold: float = 0.8,
    num_perm: int = 128,
    shingle: int = 5,
) -> list[LeakagePair]:
    """List duplicate pairs that sit in different splits, since they let a model be tested on its training data.

    Unlike `near_duplicate_groups`, pairs are not joined transitively: each reported pair is itself
    at least `threshold` similar. Pairs within one split are left to the duplicate check.
    """
    _check_params(threshold, num_perm, shingle)
    split_of: dict[int, str] = {}
    for split, items in split_items.items():
        for example_id, _ in items:
            split_of[example_id] = str(split)
    by_text = _by_normalized_text(item for items in split_items.values() for item in items)
    texts = list(by_text)
    minhashes, matrix = _signatures(texts, num_perm, shingle)

    pairs: list[LeakagePair] = []
    for ids in by_text.values():
        pairs.extend(_cross_split_pairs(DuplicateKind.EXACT, ids, ids, 1.0, split_of))
    for a, b, similarity in _similar_pairs(minhashes, matrix, threshold, num_perm):
        pairs.extend(
            _cross_split_pairs(DuplicateKind.NEAR, by_text[texts[a]], by_text[texts[b]], similarity, split_of)
        )
    return sorted(pairs, key=lambda p: (p.example_id, p.other_id))


def _check_params(threshold: float, num_perm: int, shingle: int) -> None:
    if not MIN_THRESHOLD <= threshold <= 1.0:
        raise InvalidInput(f"Similarity threshold must be between {MIN_THRESHOLD} and 1, got {threshold}.")
    if num_perm < 16:
        raise InvalidInput(f"num_perm must be at least 16 for a usable estimate, got {num_perm}.")
    if not 1 <= shingle <= MAX_SHINGLE:
        raise InvalidInput(f"Shingle size must be 1 to {MAX_SHINGLE} words, got {shingle}.")


def _by_normalized_text(items: Iterable[Item]) -> dict[str, list[int]]:
    by_text: dict[str, list[int]] = defaultdict(list)
    for example_id, text in items:
        by_text[normalize(text)].append(example_id)
    return {text: sorted(ids) for text, ids in sorted(by_text.items(), key=lambda kv: min(kv[1]))}


def _signatures(texts: list[str], num_perm: int, shingle: int) -> tuple[list[MinHash], np.ndarray]:
    """Return one MinHash per text, plus their signatures as matrix rows for vectorized estimates."""
    # Shingles are hashed in numpy and handed over as ints (hashfunc=int); datasketch's own path
    # (sha1 per shingle) would make shingling the slowest step by far.
    minhashes = list(
        MinHash.generator(
            (_shingle_hashes(text, shingle).tolist() for text in texts),
            num_perm=num_perm,
            seed=_MINHASH_SEED,
            hashfunc=int,
        )
    )
    matrix = np.empty((len(texts), num_perm), dtype=minhashes[0].hashvalues.dtype if minhashes else np.uint64)
    for row, minhash in enumerate(minhashes):
        matrix[row] = minhash.hashvalues
    return minhashes, matrix


def _shingle_hashes(text: str, size: int) -> np.ndarray:
    """Return the distinct 32-bit hashes of a text's `size`-word shingles (one for a shorter text)."""
    words = text.split()
    if not words:
        return np.empty(0, dtype=np.uint64)
    # crc32 is a C call and the same in every process, unlike hash(); datasketch mixes each value
    # (murmur finalizer) before permuting, so crc32's weak spread does not bias the estimate.
    word_hashes = np.fromiter(map(zlib.crc32, map(str.encode, words)), dtype=np.uint64, count=len(words))
    width = min(size, len(words))
    count = len(words) - width + 1
    # A polynomial in the word hashes keeps word order; uint64 arithmetic wraps, as intended.
    combined = word_hashes[:count] * _SHINGLE_POWERS[0]
    for offset in range(1, width):
        combined += word_hashes[offset : offset + count] * _SHINGLE_POWERS[offset]
    folded = (combined >> np.uint64(32)) ^ (combined & np.uint64(0xFFFFFFFF))
    return np.unique(folded)


def _similar_pairs(
    minhashes: list[MinHash], matrix: np.ndarray, threshold: float, num_perm: int
) -> list[tuple[int, int, float]]:
    """Return (a, b, similarity) with a < b for every pair of rows at least `threshold` similar."""
    # An empty text has no shingles and a signature of all maxima that would match any other empty one;
    # after collapsing identical texts there is at most one, and it resembles nothing.
    rows = [row for row in range(len(minhashes)) if not minhashes[row].is_empty()]
    if len(rows) < 2:
        return []
    # Weighting false negatives 9:1 raises recall at the threshold from ~84% to ~98% (measured on pairs
    # just above it) for ~1.5x the candidates, which the vectorized check below confirms cheaply. Above
    # 0.9 datasketch cannot band 128 permutations; a lower index threshold only adds candidates.
    lsh = MinHashLSH(threshold=min(threshold, _LSH_MAX_THRESHOLD), num_perm=num_perm, weights=(0.1, 0.9))
    with lsh.insertion_session() as session:
        for row in rows:
            session.insert(row, minhashes[row], check_duplication=False)
    pairs = []
    for row in rows:
        candidates = np.array(sorted(c for c in lsh.query(minhashes[row]) if c > row), dtype=np.int64)
        if not len(candidates):
            continue
        similarity = (matrix[candidates] == matrix[row]).mean(axis=1)
        for other, value in zip(candidates.tolist(), similarity.tolist(), strict=True):
            if value >= threshold:
                pairs.append((row, other, value))
    return pairs


def _min_pairwise(matrix: np.ndarray) -> float:
    """Return the lowest estimated similarity between any two rows, one row against the rest at a time."""
    lowest = 1.0
    for row in range(len(matrix) - 1):
        lowest = min(lowest, float((matrix[row + 1 :] == matrix[row]).mean(axis=1).min()))
    return lowest


def _find(parent: list[int], node: int) -> int:
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


def _group(
    kind: DuplicateKind, ids: list[int], similarity: float, scores: Mapping[int, KeepScore] | None
) -> DuplicateGroup:
    ids = sorted(ids)
    return DuplicateGroup(kind=kind, example_ids=ids, similarity=similarity, keep=_best(ids, scores))


def _best(ids: Sequence[int], scores: Mapping[int, KeepScore] | None) -> int:
    if not scores:
        return min(ids)
    # Scored members beat unscored ones; the bool comes first so unscored members never compare tuples.
    return max(ids, key=lambda i: (i in scores, scores.get(i, ()), -i))


_SPLIT_ORDER = {Split.TRAIN.value: 0, Split.VALIDATION.value: 1, Split.TEST.value: 2}


def _cross_split_pairs(
    kind: DuplicateKind, ids: list[int], others: list[int], similarity: float, split_of: Mapping[int, str]
) -> list[LeakagePair]:
    pairs = []
    for a in ids:
        for b in others:
            if a >= b and ids is others:
                continue
            first, second = sorted((a, b), key=lambda i: (_SPLIT_ORDER.get(split_of[i], 3), split_of[i], i))
            if split_of[first] != split_of[second]:
                pairs.append(
                    LeakagePair(
                        kind=kind,
                        example_id=first,
                        split=split_of[first],
                        other_id=second,
                        other_split=split_of[second],
                        similarity=similarity,
                    )
                )
    return pairs


@functools.cache
def _noise_pattern() -> re.Pattern[str]:
    """Compile the "not a word character" pattern, sparing combining marks that `\\W` would split words on."""
    marks = []
    start = None
    for code in range(sys.maxunicode + 2):
        is_mark = code <= sys.maxunicode and unicodedata.category(chr(code)).startswith("M")
        if is_mark and start is None:
            start = code
        elif not is_mark and start is not None:
            marks.append(f"\\U{start:08x}-\\U{code - 1:08x}")
            start = None
    return re.compile(f"(?:[^\\w\\s{''.join(marks)}]|_)+")
