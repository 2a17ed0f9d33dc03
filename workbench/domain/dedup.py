"""Find exact and near-duplicate examples, and duplicates that leak across splits.

Callers pass `(example_id, text)` pairs, with text from `Example.plain_text()`. Texts are normalized
first, identical normalized texts are collapsed to one representative (the lowest id), and only the
representatives are compared, so a dataset full of exact copies costs no more than its distinct texts.

How near-duplicates are found, here and in the store (which keeps the same keys per example, computed
at import, so a dataset is never indexed again in memory; see `workbench.store.near_state`):

- each normalized text becomes a set of 5-word shingles and a 128-permutation MinHash signature
  (seed 1, the same values as datasketch's affine32 `MinHash`);
- the first 125 values form 25 bands of 5 rows; each band gives one signed 63-bit key (`band_keys`),
  and `text_hash` is a 63-bit hash of the normalized text, which finds exact copies;
- texts that share any band key are candidates (`candidate_pairs`); a candidate pair is kept when the
  estimated Jaccard similarity over all 128 values reaches the threshold (`verified_pairs`).

The bands do not depend on the threshold, so keys computed once serve every threshold. The chance
that a pair of similarity s shares a band is 1 - (1 - s^5)^25, which sets the recall per threshold:

    similarity   0.5   0.6   0.7   0.8   0.9
    found        55%   87%   99%   ~100% ~100%

Below 0.7 some near-duplicates are missed (at 0.5 nearly half); above, almost none.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from workbench.domain.example import Example, ReviewState, Split
from workbench.errors import InvalidInput

Item = tuple[int, str]
"""(example_id, text), text being `Example.plain_text()`."""
KeepScore = tuple[float, ...]
"""Compared element by element, higher is better; see `keep_score`."""

Pair = tuple[int, int, float]
"""(a, b, estimated similarity) of two representatives, a < b."""

# MinHash permutations are seeded; a fixed seed keeps results identical from run to run.
_MINHASH_SEED = 1
NUM_PERM = 128
SHINGLE = 5
BANDS = 25
ROWS = 5
"""The banding the store keeps: 25 bands of 5 rows from the first 125 of 128 values (see the module docstring)."""
_EMPTY = np.uint32(0xFFFFFFFF)
_BATCH_SHINGLES = 16_384
"""Shingles permuted in one numpy operation: 16,384 x 128 x 4 bytes = 8 MB at a time."""
_VERIFY_CHUNK = 65_536
_WORD_BASE = np.uint64(0x100000001B3)  # odd, so invertible mod 2^64
_WORD_BASE_INVERSE = np.uint64(pow(0x100000001B3, -1, 1 << 64))
_MIX_A = np.uint64(0x9E3779B97F4A7C15)
_MIX_B = np.uint64(0xBF58476D1CE4E5B9)
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
    num_perm: int = NUM_PERM,
    shingle: int = SHINGLE,
    scores: Mapping[int, KeepScore] | None = None,
) -> list[DuplicateGroup]:
    """Group examples that are the same or nearly the same, so a reviewer can keep one of each.

    Texts are compared as sets of `shingle`-word shingles (a text shorter than that is one shingle).
    Texts sharing a band key (see the module docstring) are candidates; a candidate pair counts when
    its estimated Jaccard similarity (over `num_perm` permutations) is at least `threshold`, which
    must lie in [0.5, 1]. Recall depends on the threshold (about 99% of pairs at 0.7, nearly all at
    0.8, 87% at 0.6, 55% at 0.5). Pairs are joined transitively (A~B and B~C puts A, B and C in one
    group), so a group's `similarity` can fall below the threshold; it is reported so the reviewer
    can see it. Groups whose members all share one normalized text come back with kind 'exact'.
    `scores` picks each group's `keep` (see `choose_keep`).

    The store keeps the same band keys per example and feeds the same `duplicate_groups`, so this
    and `workbench.services.duplicates.find_duplicates` give identical groups for identical texts.
    """
    _check_params(threshold, num_perm, shingle)
    copies, signatures, pairs = _in_memory_candidates(items, num_perm, shingle)
    return duplicate_groups(verified_pairs(pairs, signatures, threshold), copies, signatures, scores)


def duplicate_groups(
    verified: Iterable[Pair],
    copies: Mapping[int, Sequence[int]],
    signatures: Signatures,
    scores: Mapping[int, KeepScore] | None = None,
) -> list[DuplicateGroup]:
    """Join verified pairs of distinct texts into groups and add the exact-copy groups, sorted by members.

    `verified` holds (a, b, similarity) between representatives (the lowest id of each distinct
    normalized text); `copies` maps a representative to every id with its text, for texts held by
    two or more examples; `signatures` holds every representative named in `verified`.
    """
    parent: dict[int, int] = {}
    for a, b, _ in verified:
        root_a, root_b = _find(parent, a), _find(parent, b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    components: dict[int, list[int]] = defaultdict(list)
    for rep in list(parent):
        components[_find(parent, rep)].append(rep)
    groups = []
    for reps in components.values():
        ids = [i for rep in reps for i in copies.get(rep, (rep,))]
        groups.append(_group(DuplicateKind.NEAR, ids, _min_pairwise(signatures.rows(sorted(reps))), scores))
    for rep, ids in copies.items():
        if rep not in parent and len(ids) > 1:
            groups.append(_group(DuplicateKind.EXACT, list(ids), 1.0, scores))
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
    num_perm: int = NUM_PERM,
    shingle: int = SHINGLE,
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
    copies, signatures, pairs = _in_memory_candidates(
        (item for items in split_items.values() for item in items), num_perm, shingle
    )
    return leakage_pairs(verified_pairs(pairs, signatures, threshold), copies, split_of)


def leakage_pairs(
    verified: Iterable[Pair], copies: Mapping[int, Sequence[int]], split_of: Mapping[int, str]
) -> list[LeakagePair]:
    """Turn verified pairs and exact copies into cross-split pairs, sorted; ids absent from `split_of` are left out.

    Arguments as for `duplicate_groups`; `split_of` maps the ids in an assigned split to it.
    """
    pairs: list[LeakagePair] = []
    for ids in copies.values():
        assigned = [i for i in ids if i in split_of]
        pairs.extend(_cross_split_pairs(DuplicateKind.EXACT, assigned, assigned, 1.0, split_of))
    for a, b, similarity in verified:
        ids_a = [i for i in copies.get(a, (a,)) if i in split_of]
        ids_b = [i for i in copies.get(b, (b,)) if i in split_of]
        pairs.extend(_cross_split_pairs(DuplicateKind.NEAR, ids_a, ids_b, similarity, split_of))
    return sorted(pairs, key=lambda p: (p.example_id, p.other_id))


# ------------------------------------------------------------------------- signatures and band keys


class Signatures:
    """Full MinHash signatures of some examples, one row each, looked up by example id."""

    def __init__(self, ids: Sequence[int] | np.ndarray, matrix: np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        # Only equality of values is ever asked, so the low 16 bits of each do: two different values
        # agree there once in 65,536, raising an estimate by under 0.00002, for half the memory (the
        # candidates of a million examples with 4% duplicates: 20 MB instead of 40).
        self.matrix = matrix if matrix.dtype == np.uint16 else matrix.astype(np.uint16)
        if len(self.ids) > 1 and not bool(np.all(self.ids[1:] > self.ids[:-1])):
            # Copied only when out of order: at a million examples the candidates' matrix is tens of MB.
            order = np.argsort(self.ids, kind="stable")
            self.ids, self.matrix = self.ids[order], matrix[order]

    def positions(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        return np.searchsorted(self.ids, np.asarray(ids, dtype=np.int64))

    def rows(self, ids: Sequence[int]) -> np.ndarray:
        return self.matrix[self.positions(ids)]

    def __contains__(self, example_id: object) -> bool:
        if not isinstance(example_id, int) or not len(self.ids):
            return False
        at = int(np.searchsorted(self.ids, example_id))
        return at < len(self.ids) and int(self.ids[at]) == example_id


def text_hash(normalized: str) -> int:
    """Return a 63-bit hash of normalized text: equal for exact copies, so the store groups them by index."""
    digest = hashlib.blake2b(normalized.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def signatures(texts: Sequence[str], num_perm: int = NUM_PERM, shingle: int = SHINGLE) -> np.ndarray:
    """Return the MinHash signature of each normalized text as a row of uint32, all ones for an empty text.

    The same values as datasketch's `MinHash(num_perm, seed=1, hashfunc=int)` (affine32 scheme) fed
    the text's shingle hashes, computed for many texts in a few numpy operations: per text in Python
    it cost 10 times as much.
    """
    a, b = _permutations(num_perm)
    matrix = np.full((len(texts), num_perm), _EMPTY, dtype=np.uint32)
    start = 0
    while start < len(texts):
        end, budget = start, 0
        while end < len(texts) and (end == start or budget < _BATCH_SHINGLES):
            budget += len(texts[end]) // 2 + 1  # words, at most; a cheap bound that keeps each step small
            end += 1
        hashes, counts = _shingle_batch(texts[start:end], shingle)
        rows = np.flatnonzero(counts) + start
        if len(rows):
            _min_hash_into(matrix, rows, _fmix32(hashes), counts[counts > 0], a, b)
        start = end
    return matrix


def band_keys(matrix: np.ndarray) -> np.ndarray:
    """Return each signature's band keys, an int64 row of up to `BANDS`; a row of an empty text has none (-1).

    Key `i` hashes band index `i` with the signature's values `ROWS * i` to `ROWS * (i + 1) - 1`, so
    equal keys mean (up to a 2^-63 collision) that two texts agree on one whole band.
    """
    bands = min(BANDS, matrix.shape[1] // ROWS)
    values = matrix[:, : bands * ROWS].astype(np.uint64).reshape(len(matrix), bands, ROWS)
    with np.errstate(over="ignore"):
        key = np.broadcast_to(np.arange(1, bands + 1, dtype=np.uint64) * _MIX_A, values.shape[:2]).copy()
        for r in range(ROWS):
            key = (key ^ values[:, :, r]) * _MIX_B
            key ^= key >> np.uint64(29)
        key = _fmix64(key) >> np.uint64(1)
    keys = key.astype(np.int64)
    keys[(matrix == _EMPTY).all(axis=1)] = -1
    return keys


def near_keys(texts: Sequence[str]) -> list[tuple[int, bytes]]:
    """Return (text_hash, band keys as little-endian int64 bytes) per plain text, what the store keeps per example.

    An empty text (nothing left after normalizing) has no band keys: it resembles nothing.
    """
    normalized = [normalize(text) for text in texts]
    keys = band_keys(signatures(normalized))
    return [
        (text_hash(text), b"" if row[0] < 0 else row.astype("<i8").tobytes())
        for text, row in zip(normalized, keys, strict=True)
    ]


def decode_bands(blob: bytes) -> np.ndarray:
    """Return the band keys `near_keys` encoded."""
    return np.frombuffer(blob, dtype="<i8").astype(np.int64)


def candidate_pairs(band_groups: Iterable[Sequence[int]]) -> set[tuple[int, int]]:
    """Return every (a, b), a < b, of representatives that share a band key; `band_groups` lists each key's members."""
    pairs: set[tuple[int, int]] = set()
    for members in band_groups:
        ids = sorted(members)
        for i, a in enumerate(ids):
            pairs.update((a, b) for b in ids[i + 1 :])
    return pairs


def verified_pairs(
    pairs: Iterable[tuple[int, int]], signatures: Signatures, threshold: float
) -> list[Pair]:
    """Return the candidate pairs whose estimated Jaccard similarity is at least `threshold`, with it, sorted."""
    ordered = sorted(pairs)
    out: list[Pair] = []
    for start in range(0, len(ordered), _VERIFY_CHUNK):
        chunk = np.array(ordered[start : start + _VERIFY_CHUNK], dtype=np.int64).reshape(-1, 2)
        rows_a, rows_b = signatures.positions(chunk[:, 0]), signatures.positions(chunk[:, 1])
        similarity = (signatures.matrix[rows_a] == signatures.matrix[rows_b]).mean(axis=1)
        for (a, b), value in zip(chunk.tolist(), similarity.tolist(), strict=True):
            if value >= threshold:
                out.append((a, b, value))
    return out


def _in_memory_candidates(
    items: Iterable[Item], num_perm: int, shingle: int
) -> tuple[dict[int, list[int]], Signatures, set[tuple[int, int]]]:
    """Do in memory what the store keeps: copies by text, band keys per representative, and candidate pairs."""
    by_text = _by_normalized_text(items)
    texts = list(by_text)
    reps = [ids[0] for ids in by_text.values()]
    matrix = signatures(texts, num_perm, shingle)
    buckets: dict[int, list[int]] = defaultdict(list)
    for rep, keys in zip(reps, band_keys(matrix).tolist(), strict=True):
        for key in keys:
            if key >= 0:
                buckets[key].append(rep)
    pairs = candidate_pairs(ids for ids in buckets.values() if len(ids) > 1)
    copies = {ids[0]: ids for ids in by_text.values() if len(ids) > 1}
    return copies, Signatures(reps, matrix), pairs


@functools.cache
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """Return datasketch's affine32 permutation parameters for `_MINHASH_SEED` (odd multipliers, offsets)."""
    gen = np.random.RandomState(_MINHASH_SEED)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix datasketch applies to every input hash."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint32(16))
        h = h * np.uint32(0x85EBCA6B)
        h = h ^ (h >> np.uint32(13))
        h = h * np.uint32(0xC2B2AE35)
        return h ^ (h >> np.uint32(16))


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _min_hash_into(
    matrix: np.ndarray, rows: np.ndarray, hashes: np.ndarray, counts: np.ndarray, a: np.ndarray, b: np.ndarray
) -> None:
    """Permute every text's shingle hashes at once and keep each text's minimum per permutation."""
    starts = np.concatenate(([0], np.cumsum(counts[:-1])))
    with np.errstate(over="ignore"):
        permuted = a[:, None] * hashes[None, :] + b[:, None]
    matrix[rows] = np.minimum.reduceat(permuted, starts, axis=1).T


def check_threshold(threshold: float) -> None:
    """Refuse a similarity threshold outside [0.5, 1], where candidates approach every pair."""
    _check_params(threshold, NUM_PERM, SHINGLE)


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


def _shingle_batch(texts: Sequence[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the 32-bit hashes of the `size`-word shingles of every text, text after text, and each text's count.

    Texts must be normalized (words separated by single spaces). A text shorter than `size` words is
    one shingle; an empty one has none. A shingle repeated in a text is hashed twice, which leaves its
    MinHash as it is.
    """
    flat, lengths = _word_hashes(texts)
    counts = np.where(lengths >= size, lengths - size + 1, np.minimum(lengths, 1))
    offsets = np.concatenate(([0], np.cumsum(lengths[:-1]))).astype(np.int64)
    # A polynomial in the word hashes keeps word order; uint64 arithmetic wraps, as intended.
    span = max(0, len(flat) - size + 1)
    combined = flat[:span] * _SHINGLE_POWERS[0]
    for offset in range(1, size):
        combined += flat[offset : offset + span] * _SHINGLE_POWERS[offset]
    long = lengths >= size
    starts = np.repeat(offsets[long], counts[long]) + _ranges(counts[long])
    parts = combined[starts] if len(starts) else np.empty(0, dtype=np.uint64)
    short = np.flatnonzero((lengths > 0) & ~long)
    if len(short):
        # Rare: a text of 1 to size-1 words is one shingle of all its words; spliced in at its place.
        values = []
        for i in short.tolist():
            piece = flat[offsets[i] : offsets[i] + lengths[i]]
            values.append(int((piece * _SHINGLE_POWERS[: len(piece)]).sum(dtype=np.uint64)))
        position = np.cumsum(counts) - counts
        before = position[short] - np.arange(len(short))
        parts = np.insert(parts, before, np.array(values, dtype=np.uint64))
    folded = (parts >> np.uint64(32)) ^ (parts & np.uint64(0xFFFFFFFF))
    return folded.astype(np.uint32), counts


def _word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return a 64-bit hash of every word of every normalized text, text after text, and each text's word count.

    A word's hash is the polynomial sum of its UTF-8 bytes, computed for the whole batch from one
    prefix sum: hashing word by word in Python (zlib.crc32 per word) cost half of a signature. The
    MinHash pre-mixes every shingle hash (murmur finalizer), so a simple word hash does not bias it.
    """
    lengths = np.fromiter((text.count(" ") + 1 if text else 0 for text in texts), dtype=np.int64, count=len(texts))
    joined = " ".join(text for text in texts if text).encode()
    if not joined:
        return np.empty(0, dtype=np.uint64), lengths
    # +1 so that no byte weighs nothing; a space becomes 33.
    data = np.frombuffer(joined, dtype=np.uint8).astype(np.uint64) + np.uint64(1)
    n = len(data)
    powers = np.cumprod(np.full(n, _WORD_BASE, dtype=np.uint64))  # B^1 .. B^n, wrapping mod 2^64
    prefix = np.concatenate(([np.uint64(0)], np.cumsum(data * powers, dtype=np.uint64)))
    spaces = np.flatnonzero(data == np.uint64(33))
    starts = np.concatenate(([0], spaces + 1))
    ends = np.concatenate((spaces, [n]))
    # Dividing by B^start (multiplying by its inverse mod 2^64) makes a word's hash the same wherever it stands.
    unshift = np.concatenate(([np.uint64(1)], np.cumprod(np.full(n, _WORD_BASE_INVERSE, dtype=np.uint64))))
    return (prefix[ends] - prefix[starts]) * unshift[starts], lengths


def _ranges(counts: np.ndarray) -> np.ndarray:
    """Return 0..c-1 for every c in `counts`, concatenated."""
    total = int(counts.sum())
    if not total:
        return np.empty(0, dtype=np.int64)
    ends = np.cumsum(counts)
    return np.arange(total, dtype=np.int64) - np.repeat(ends - counts, counts)


def _min_pairwise(matrix: np.ndarray) -> float:
    """Return the lowest estimated similarity between any two rows, one row against the rest at a time."""
    lowest = 1.0
    for row in range(len(matrix) - 1):
        lowest = min(lowest, float((matrix[row + 1 :] == matrix[row]).mean(axis=1).min()))
    return lowest


def _find(parent: dict[int, int], node: int) -> int:
    parent.setdefault(node, node)
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
