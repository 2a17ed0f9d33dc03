"""Scrub PII to placeholders and split text into highlighted segments, from findings or a fresh scan."""

from __future__ import annotations

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


def scrub_example(example: Example) -> Example:
    """Return a copy with PII replaced by placeholders in every part, so nothing personal is exported.

    Roles, weights and every curation field are kept as they are; `pii` is emptied because nothing
    is left to report. `content_hash` and `token_count` are left for the caller to refresh. Exports
    scrub every example, so a clean one is recognised in one pass and copied as it is.
    """
    if not _might_hold_pii("\n".join(text for _, text in example.parts())):
        return example.model_copy(update={"messages": list(example.messages), "pii": []})
    system = scrub_text(example.system) if example.system else example.system
    messages = [m.model_copy(update={"content": scrub_text(m.content)}) for m in example.messages]
    return example.model_copy(update={"system": system, "messages": messages, "pii": []})


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

