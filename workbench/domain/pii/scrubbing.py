"""Scrub PII to placeholders and split text into highlighted segments, from findings or a fresh scan."""

from __future__ import annotations

import re
from collections.abc import Sequence

from workbench.domain.example import Example, PiiFinding
from workbench.domain.pii.detectors import _might_hold_pii
from workbench.domain.pii.kinds import PLACEHOLDERS, _Span
from workbench.domain.pii.scanning import find_pii_in_text

# scrub_text rescans its own output. Placeholders match no detector, so every pass shrinks the text
# left to scrub and the second pass almost always comes back empty; the cap is only a backstop.
_MAX_SCRUB_PASSES = 5


def scrub_text(text: str, findings: list[PiiFinding] | None = None) -> str:
    """Replace each finding with its placeholder, so the text can be shared or trained on safely.

    Given findings, exactly those are replaced (the caller may have dismissed false positives);
    overlapping ones become one placeholder. Without findings - or when any no longer matches the
    text at its offsets, as after an edit - the text is scanned instead, and scanned again after
    each replacement: a placeholder changes what surrounds its neighbours, and a number or address
    that was glued to a key can stand on its own once the key is gone.
    """
    if findings is not None:
        spans, stale = _spans_of(text, findings)
        if not stale:
            return _replace(text, spans)
    for _ in range(_MAX_SCRUB_PASSES):
        found = find_pii_in_text(text)
        if not found:
            break
        text = _replace(text, _spans_of(text, found)[0])
    return text


def scrub_example(example: Example, also: Sequence[PiiFinding] = ()) -> Example:
    """Return a copy with PII replaced by placeholders in every part, so nothing personal is exported.

    Every text the model trains on is scrubbed: turns (each text block), tool-call arguments and
    the system prompt. Roles, weights and every curation field are kept as they are; `pii` is
    emptied because nothing is left to report. `content_hash` and `token_count` are left for the
    caller to refresh. Exports scrub every example, so a clean one is recognised in one pass and
    copied as it is.

    `also` names PII known from another copy of the same example (the current text, when an
    earlier revision is scrubbed, or findings made under other settings): each one's text is
    replaced wherever it stands on its own, even where a fresh scan would not flag it.
    """
    known = _known_pattern(also)
    if known is None and not _might_hold_pii("\n".join(text for _, text in example.parts())):
        return example.model_copy(update={"messages": list(example.messages), "pii": []})

    def scrub(text: str) -> str:
        text = scrub_text(text)
        if known is None:
            return text
        return known.sub(lambda m: PLACEHOLDERS[_kind_of(also, m.group())], text)

    system = scrub(example.system) if example.system else example.system
    messages = [m.map_text(scrub) for m in example.messages]
    return example.model_copy(update={"system": system, "messages": messages, "pii": []})


def _known_pattern(findings: Sequence[PiiFinding]) -> re.Pattern[str] | None:
    """Match any finding's text not glued to a letter or digit, the longest first."""
    texts = sorted({f.text for f in findings if f.text and f.kind in PLACEHOLDERS}, key=len, reverse=True)
    if not texts:
        return None
    return re.compile(r"(?<![0-9A-Za-z])(?:" + "|".join(re.escape(t) for t in texts) + r")(?![0-9A-Za-z])")


def _kind_of(findings: Sequence[PiiFinding], text: str) -> str:
    return next(f.kind for f in findings if f.text == text and f.kind in PLACEHOLDERS)


def highlight_segments(text: str, findings: list[PiiFinding]) -> list[tuple[str, str | None]]:
    """Split text into consecutive (segment, kind or None) pieces, so the UI can mark each finding.

    The segments join back to exactly `text` and none is empty. Findings that do not match the text
    at their offsets are ignored rather than highlighting the wrong characters; overlapping ones
    are drawn as one segment with the first one's kind.
    """
    spans, _ = _spans_of(text, findings)
    segments: list[tuple[str, str | None]] = []
    cursor = 0
    for kind, start, end in spans:
        if start > cursor:
            segments.append((text[cursor:start], None))
        segments.append((text[start:end], kind))
        cursor = end
    if cursor < len(text):
        segments.append((text[cursor:], None))
    return segments


def _replace(text: str, spans: list[_Span]) -> str:
    pieces: list[str] = []
    cursor = 0
    for kind, start, end in spans:
        pieces.append(text[cursor:start])
        pieces.append(PLACEHOLDERS.get(kind, f"[{kind.upper()}]"))
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _spans_of(text: str, findings: list[PiiFinding]) -> tuple[list[_Span], bool]:
    """Turn findings into sorted, merged spans of `text`, and say whether any did not match it."""
    spans: list[_Span] = []
    stale = False
    for finding in sorted(findings, key=lambda f: (f.start, -f.end)):
        start, end = finding.start, finding.end
        if not 0 <= start < end <= len(text) or text[start:end] != finding.text:
            stale = True
        elif spans and start < spans[-1][2]:
            kind, first, last = spans[-1]
            spans[-1] = (kind, first, max(last, end))
        else:
            spans.append((finding.kind, start, end))
    return spans, stale

