"""Scan text and examples for PII: run every detector, then settle overlapping matches.

When two detectors claim overlapping text the more specific kind wins (a Luhn-valid card number
beats the phone number hiding inside it), then the longer match.
"""

from __future__ import annotations

from bisect import bisect_left

from workbench.domain.example import Example, PiiFinding
from workbench.domain.pii.detectors import (
    _IPV6_HINT,
    _api_keys,
    _aws_key_ids,
    _aws_secrets,
    _emails,
    _has_api_key_prefix,
    _has_aws_context,
    _ipv6s,
    _might_hold_pii,
)
from workbench.domain.pii.kinds import PiiKind, _Span
from workbench.domain.pii.numeric import _numeric
from workbench.settings import phone_regions

# Higher wins an overlap. Secrets and checksummed numbers are near-certain; a phone number is the
# loosest shape (many digit strings parse as one), so it yields to everything.
_SPECIFICITY: dict[str, int] = {
    PiiKind.API_KEY: 7,
    PiiKind.AWS_KEY: 6,
    PiiKind.CREDIT_CARD: 5,
    PiiKind.SSN: 4,
    PiiKind.EMAIL: 3,
    PiiKind.IP_ADDRESS: 2,
    PiiKind.PHONE: 1,
}


def find_pii_in_text(text: str, where: str = "text", *, regions: tuple[str, ...] | None = None) -> list[PiiFinding]:
    """Find every piece of PII in one text, so it can be flagged, highlighted and scrubbed.

    Findings come back sorted by start and never overlap; `where` is copied onto each one.
    `regions` are the phone regions whose national formats count; by default the
    WORKBENCH_PHONE_REGIONS setting (US, GB and DE unless set).
    """
    spans: list[_Span] = []
    if "@" in text:
        spans.extend(_emails(text))
    spans.extend(_numeric(text, regions or phone_regions()))
    if ":" in text and _IPV6_HINT.search(text):
        spans.extend(_ipv6s(text))
    spans.extend(_aws_key_ids(text))
    if _has_aws_context(text):
        spans.extend(_aws_secrets(text))
    if _has_api_key_prefix(text):
        spans.extend(_api_keys(text))
    return [
        PiiFinding(kind=kind, where=where, start=start, end=end, text=text[start:end])
        for kind, start, end in _resolve(spans)
    ]


def find_pii(example: Example) -> list[PiiFinding]:
    """Find PII in the system prompt and every turn of an example, each finding tagged with its part.

    Most examples hold none, so the detectors' guards run once over all parts joined before any
    part is scanned on its own: one call per example instead of one per turn.
    """
    parts = example.parts()
    if not _might_hold_pii("\n".join(text for _, text in parts)):
        return []
    findings: list[PiiFinding] = []
    regions = phone_regions()
    for where, text in parts:
        findings.extend(find_pii_in_text(text, where, regions=regions))
    return findings


def _resolve(spans: list[_Span]) -> list[_Span]:
    """Drop overlapping spans, keeping the more specific kind and then the longer match."""
    if len(spans) < 2:
        return spans
    ranked = sorted(spans, key=lambda s: (-_SPECIFICITY[s[0]], s[1] - s[2], s[1]))
    starts: list[int] = []
    kept: list[_Span] = []
    for span in ranked:
        _, start, end = span
        i = bisect_left(starts, start)
        # Kept spans never overlap, so only the neighbours on either side can collide.
        if (i > 0 and kept[i - 1][2] > start) or (i < len(kept) and kept[i][1] < end):
            continue
        starts.insert(i, start)
        kept.insert(i, span)
    return kept

