"""The canonical training example every format is parsed into and written back out from."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Split(StrEnum):
    UNASSIGNED = "unassigned"
    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


class ReviewState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ValidationStatus(StrEnum):
    """Outcome of the format checks run at import (target-specific checks run on demand)."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Role
    content: str
    weight: float | None = Field(
        default=None,
        description="Per-message training weight (OpenAI accepts 0 or 1 on assistant turns); None = default.",
    )


class PiiFinding(BaseModel):
    """One piece of personal data found in an example, located precisely enough to highlight and scrub."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="What was found: email, phone, credit_card, ssn, ip_address, aws_key, api_key.")
    where: str = Field(description="'system' or 'messages[i]' - the part of the example holding it.")
    start: int = Field(description="Character offset of the match within that part's text.")
    end: int = Field(description="Character offset one past the end of the match.")
    text: str = Field(description="The matched text itself.")


class Example(BaseModel):
    """A training example in canonical form plus the workbench's own curation fields."""

    system: str | None = Field(default=None, description="System prompt, if the example has one.")
    messages: list[Message] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Free-form: source, task type, document type, class label..."
    )

    id: int | None = None
    dataset_id: int | None = None
    source_line: int | None = Field(default=None, description="Line (or row) of the imported file it came from.")
    content_hash: str = ""
    split: Split = Split.UNASSIGNED
    quality_score: float | None = Field(default=None, description="0..1, higher is better; set by cleaning tools.")
    rating: int | None = Field(default=None, ge=1, le=5, description="Reviewer rating, 1 (bad) to 5 (excellent).")
    tags: list[str] = Field(default_factory=list)
    review_state: ReviewState = ReviewState.PENDING
    notes: str = ""
    pii: list[PiiFinding] = Field(default_factory=list)
    validation_status: ValidationStatus = ValidationStatus.OK
    validation_messages: list[str] = Field(default_factory=list)
    token_count: int = Field(default=0, description="cl100k_base tokens over the system prompt and every turn.")
    revision: int = 1
    created_at: str | None = None
    updated_at: str | None = None

    def parts(self) -> list[tuple[str, str]]:
        """Return (where, text) for the system prompt and each turn, the units PII and rules work on."""
        out: list[tuple[str, str]] = []
        if self.system:
            out.append(("system", self.system))
        out.extend((f"messages[{i}]", m.content) for i, m in enumerate(self.messages))
        return out

    def plain_text(self) -> str:
        """Return every part's text joined, the string that full-text search indexes."""
        return "\n".join(text for _, text in self.parts())

    def with_hash(self) -> Example:
        """Return a copy whose content_hash matches its training content."""
        return self.model_copy(update={"content_hash": content_hash(self.system, self.messages)})


def content_hash(system: str | None, messages: list[Message]) -> str:
    """Hash what the model trains on (system + turns), so re-imports and exact copies are recognised.

    Metadata and curation fields are left out on purpose: the same conversation tagged differently
    is still the same training signal.
    """
    payload = orjson.dumps(
        [system or "", [[m.role.value, m.content, m.weight] for m in messages]],
    )
    return hashlib.blake2b(payload, digest_size=16).hexdigest()
