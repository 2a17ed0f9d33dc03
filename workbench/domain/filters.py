"""What a user narrows the example table down to; also what the URL carries so a link reproduces a view."""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel, Field

from workbench.domain.example import ReviewState, Split, ValidationStatus
from workbench.errors import InvalidInput


class ExampleFilter(BaseModel):
    """Every filter the Datasets page offers; None or empty means 'any'."""

    search: str = Field(
        default="",
        description="Words to find (all must appear; 'refun' also finds 'refund'); \"quoted words\" match that exact phrase.",
    )
    split: Split | None = None
    tags: list[str] = Field(default_factory=list, description="Examples carrying every one of these tags.")
    min_rating: int | None = Field(default=None, ge=1, le=5)
    max_rating: int | None = Field(default=None, ge=1, le=5)
    unrated: bool = Field(default=False, description="Only examples nobody has rated yet.")
    review_state: ReviewState | None = None
    has_pii: bool | None = None
    validation_status: ValidationStatus | None = None
    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    metadata_field: str = Field(default="", description="A metadata key, e.g. 'task_type'.")
    metadata_value: str = Field(
        default="",
        description="The value that key must have, compared as text: 'true' or 'false' for a yes/no value, "
        "numbers as written (3, 0.5). Lists and objects are not matched.",
    )

    def is_empty(self) -> bool:
        """Say whether this filter selects the whole dataset."""
        return self == ExampleFilter()


def fts_query(search: str, whole: Collection[str] = ()) -> str:
    """Turn what a user typed into a safe FTS5 query: every word must match, quotes keep phrases.

    A bare word matches as a word prefix (`refun` finds `refund` and `refunds`), as a search box is
    expected to while someone types; a "quoted phrase" matches exactly those words in order. A
    word of one character stays exact: as a prefix it would expand to a large share of the whole
    vocabulary (every term starting with `a`), the slowest query FTS5 can be asked.

    User text never reaches FTS5 syntax unquoted: each word or phrase is one FTS5 string with its
    quotes doubled, and the only operator added is the prefix `*` after it, so `AND`, `OR`,
    `NEAR(`, `*`, `--` or a stray quote cannot produce a syntax error or a different query than
    the one typed. A trailing `*` a user types means prefix, which bare words are already. A search
    with nothing to look for (`*`, `--`) raises InvalidInput rather than quietly matching everything.
    See https://www.sqlite.org/fts5.html#fts5_strings and #fts5_prefix_queries.

    `whole` names words (as `prefix_words` returns them) that the caller found no longer word for
    in the index: they are matched whole, which gives the same rows, and FTS5 streams a whole
    word's hits while it must merge every matching word's before a prefix query yields one.
    """
    terms: list[str] = []
    # SQLite reads the query as a C string: a NUL would end it inside a quote ("unterminated string").
    parts = search.replace("\x00", " ").split('"')
    for i, part in enumerate(parts):
        if i % 2 == 1 and part.strip():
            if _has_token(part):
                terms.append(_quoted(part.strip()))
            continue
        for word in part.split():
            word = word.rstrip("*")
            if _has_token(word):
                prefix = _prefix_worthy(word) and _last_token(word).lower() not in whole
                terms.append(_quoted(word) + ("*" if prefix else ""))
    if not terms and search.strip():
        raise InvalidInput(
            f"The search {search.strip()[:80]!r} has no letters or digits to look for; type a word, or the start of one."
        )
    return " ".join(terms)


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _has_token(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def prefix_words(search: str) -> list[str]:
    """Return the words of a search matched as prefixes, as the index holds them, when that is sure.

    Only ASCII words: the index folds case and diacritics (unicode61, remove_diacritics 2), and for
    ASCII that folding is `lower()`; any other word keeps its prefix match without a check.
    """
    out = []
    for i, part in enumerate(search.replace("\x00", " ").split('"')):
        if i % 2 == 0:
            for word in part.split():
                word = word.rstrip("*")
                last = _last_token(word)
                if _has_token(word) and _prefix_worthy(word) and last.isascii():
                    out.append(last.lower())
    return out


def _last_token(word: str) -> str:
    last = ""
    for ch in reversed(word):
        if ch.isalnum():
            last = ch + last
        elif last:
            break
    return last


def _prefix_worthy(word: str) -> bool:
    """Say whether a word's last token is long enough to match as a prefix (two characters or more).

    FTS5's unicode61 tokenizer splits on anything that is not a letter or digit, and the `*`
    applies to the last token of the string, so that token is what must not be a single character.
    """
    return len(_last_token(word)) >= 2
