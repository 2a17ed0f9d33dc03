"""What a user narrows the example table down to; also what the URL carries so a link reproduces a view."""

from __future__ import annotations

from pydantic import BaseModel, Field

from workbench.domain.example import ReviewState, Split, ValidationStatus


class ExampleFilter(BaseModel):
    """Every filter the Datasets page offers; None or empty means 'any'."""

    search: str = Field(default="", description="Words to find (all must appear); \"quoted words\" match a phrase.")
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
    metadata_value: str = Field(default="", description="The value that key must have (compared as text).")

    def is_empty(self) -> bool:
        """Say whether this filter selects the whole dataset."""
        return self == ExampleFilter()


def fts_query(search: str) -> str:
    """Turn what a user typed into a safe FTS5 query: every word must match, quotes keep phrases.

    User text never reaches FTS5 syntax unquoted, so `AND`, `NEAR(`, `*` or a stray quote cannot
    produce a syntax error or a different query than the one typed.
    """
    terms: list[str] = []
    parts = search.split('"')
    for i, part in enumerate(parts):
        if i % 2 == 1 and part.strip():
            terms.append('"' + part.strip().replace('"', '""') + '"')
        else:
            terms.extend('"' + word.replace('"', '""') + '"' for word in part.split() if _has_token(word))
    return " ".join(terms)


def _has_token(word: str) -> bool:
    return any(ch.isalnum() for ch in word)
