"""Find personal data and secrets in training text, scrub them to placeholders, split text for highlighting.

Every imported example goes through `find_pii`, so the clean case (no PII at all) must cost a few
microseconds per kilobyte. Each detector family sits behind a cheap guard - a substring test, or one
regex pass that starts with a character class so `re` can skip ahead in C - and the numeric
detectors, `phonenumbers` above all, only look at short windows around promising digit runs.

When two detectors claim overlapping text the more specific kind wins (a Luhn-valid card number
beats the phone number hiding inside it), then the longer match.
"""

from __future__ import annotations

from workbench.domain.pii.kinds import PLACEHOLDERS, PiiKind
from workbench.domain.pii.scanning import find_pii, find_pii_in_text
from workbench.domain.pii.scrubbing import highlight_segments, scrub_example, scrub_text

__all__ = [
    "PLACEHOLDERS",
    "PiiKind",
    "find_pii",
    "find_pii_in_text",
    "highlight_segments",
    "scrub_example",
    "scrub_text",
]
