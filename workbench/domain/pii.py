"""Find personal data and secrets in training text, scrub them to placeholders, split text for highlighting.

Every imported example goes through `find_pii`, so the clean case (no PII at all) must cost a few
microseconds per kilobyte. Each detector family sits behind a cheap guard - a substring test, or one
regex pass that starts with a character class so `re` can skip ahead in C - and the numeric
detectors, `phonenumbers` above all, only look at short windows around promising digit runs.

When two detectors claim overlapping text the more specific kind wins (a Luhn-valid card number
beats the phone number hiding inside it), then the longer match.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from collections.abc import Iterator
from enum import StrEnum
from functools import lru_cache

import phonenumbers

from workbench.domain.example import Example, PiiFinding


class PiiKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CREDIT_CARD = "credit_card"
    SSN = "ssn"
    IP_ADDRESS = "ip_address"
    AWS_KEY = "aws_key"
    API_KEY = "api_key"


PLACEHOLDERS: dict[str, str] = {
    PiiKind.EMAIL.value: "[EMAIL]",
    PiiKind.PHONE.value: "[PHONE]",
    PiiKind.CREDIT_CARD.value: "[CREDIT_CARD]",
    PiiKind.SSN.value: "[SSN]",
    PiiKind.IP_ADDRESS.value: "[IP_ADDRESS]",
    PiiKind.AWS_KEY.value: "[AWS_KEY]",
    PiiKind.API_KEY.value: "[API_KEY]",
}

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

_Span = tuple[str, int, int]

# Patterns start with a literal or a character class and leave boundary checks to Python: a leading
# lookbehind or repeat stops `re` from skipping ahead to candidate characters, which is most of the
# cost on clean text. Digits are spelled [0-9] because \d also matches other scripts' digits, which
# the Luhn and octet arithmetic would misread.

_EMAIL_DOMAIN = re.compile(
    r"@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}"
)
# The character just before a local part: searching for it (a negated class) lets `re` skip ahead,
# where searching for the local part itself would retry at every character of a long word.
_EMAIL_LOCAL_START = re.compile(r"[^A-Za-z0-9._%+\-][A-Za-z0-9._%+\-]*\Z")
_EMAIL_LOCAL_MAX = 64

# A digit run worth a closer look: seven or more digits with light punctuation between them (phone,
# card, SSN; group 1 is set) or an IPv4 dotted quad. Years, prices and section numbers fail here,
# in the one pass that every text with a digit pays for. The lookbehind skips attempts from the
# middle of a number (they can only find less than the attempt from its first digit), and the
# possessive quantifiers spare backtracking over separators that can never be digits.
_NUMERIC_HINT = re.compile(
    r"[0-9](?<![0-9][0-9])"
    r"(?:((?:[ ()./\-]{0,2}+[0-9]){6,})|[0-9]{0,2}+\.[0-9]{1,3}+\.[0-9]{1,3}+\.[0-9])"
)
_NUMERIC_WINDOW = 32
# Groups of digits joined by single spaces or dashes: the shape every written card number takes.
_DIGIT_GROUPS = re.compile(r"[0-9]+(?:[ \-][0-9]+)*")
_DIGITS = re.compile(r"[0-9]+")
_SSN = re.compile(r"[0-9][0-9][0-9]([\- ])[0-9][0-9]\1[0-9][0-9][0-9][0-9]")
_IPV4 = re.compile(r"[0-9][0-9]?[0-9]?\.[0-9][0-9]?[0-9]?\.[0-9][0-9]?[0-9]?\.[0-9][0-9]?[0-9]?")
# Two colons within five characters: every IPv6 address has this, little prose does.
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6 = re.compile(r"[0-9A-Fa-f:][0-9A-Fa-f:]{1,38}")
# What a phone number looks like before phonenumbers is asked: '+', a country code and six or more
# digits, or a North American number (optional leading 1; area code and exchange start with 2-9).
# Dates, decimals and timestamps have long digit runs but not these shapes.
_PHONE_SHAPE = re.compile(
    r"\+[1-9](?:[ ().\-]{0,2}+[0-9]){6,}"
    r"|(?:1[ .\-]?)?\(?[2-9][0-9][0-9]\)?[ .\-]?[2-9][0-9][0-9][ .\-]?[0-9][0-9][0-9][0-9]"
)
_PHONE_MARGIN = 16
_PHONE_CACHED_WINDOW = 256
_DIGIT_RUN = re.compile(r"[0-9]*")
# A number right after one of these labels is an identifier, not someone's phone.
_NOT_A_PHONE_BEFORE = re.compile(
    r"(?:#|\b(?:order|invoice|ref|reference|tracking|confirmation|ticket|sku|serial|po|acct|account|"
    r"customer|id)(?:\s*(?:no\.?|num\.?|number|#))?)\s*[:#]?\s*\Z",
    re.IGNORECASE,
)
_LABEL_REACH = 30

_AWS_KEY_ID = re.compile(r"A(?:KI|SI)A[A-Z0-9]{16}")
_AWS_SECRET = re.compile(r"[A-Za-z0-9/+][A-Za-z0-9/+]{39}")
_AWS_SECRET_CONTEXT = re.compile(r"aws|secret", re.IGNORECASE)
_AWS_CONTEXT_REACH = 80

_API_KEY = re.compile(
    r"sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"
    r"|sk_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|rk_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|xox[abpr]-[A-Za-z0-9\-]{10,}"
    r"|AIza[A-Za-z0-9_\-]{35}"
)
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

# scrub_text rescans its own output. Placeholders match no detector, so every pass shrinks the text
# left to scrub and the second pass almost always comes back empty; the cap is only a backstop.
_MAX_SCRUB_PASSES = 5


def find_pii_in_text(text: str, where: str = "text") -> list[PiiFinding]:
    """Find every piece of PII in one text, so it can be flagged, highlighted and scrubbed.

    Findings come back sorted by start and never overlap; `where` is copied onto each one.
    """
    spans: list[_Span] = []
    if "@" in text:
        spans.extend(_emails(text))
    spans.extend(_numeric(text))
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
    for where, text in parts:
        findings.extend(find_pii_in_text(text, where))
    return findings


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


def _might_hold_pii(text: str) -> bool:
    """Say whether any detector could fire: the guards in find_pii_in_text, any one of them.

    No guard pattern can match across a newline, so on parts joined with newlines this is true
    exactly when it is true for some part.
    """
    return (
        "@" in text
        or _NUMERIC_HINT.search(text) is not None
        or (":" in text and _IPV6_HINT.search(text) is not None)
        or _AWS_KEY_ID.search(text) is not None
        or _has_aws_context(text)
        or _has_api_key_prefix(text)
    )


def _has_aws_context(text: str) -> bool:
    lowered = text.lower()
    return "aws" in lowered or "secret" in lowered


def _has_api_key_prefix(text: str) -> bool:
    # Single-character tests are nearly free (memchr); three-character ones cost more, so '-' goes first.
    return "_" in text or ("-" in text and ("sk-" in text or "xox" in text)) or "AIza" in text


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


def _isolated(text: str, start: int, end: int) -> bool:
    """Say whether a match stands on its own rather than being a slice of a longer word or number.

    A neighbouring letter or digit disqualifies it, and so does '.', ',' or '-' with a digit beyond
    it: 1.2.3.4 inside 1.2.3.4.5 is a version number, not an address.
    """
    if start > 0:
        before = text[start - 1]
        if before.isalnum() or before == "_":
            return False
        if before in ".,-" and start > 1 and text[start - 2].isdigit():
            return False
    if end < len(text):
        after = text[end]
        if after.isalnum() or after == "_":
            return False
        if after in ".,-" and end + 1 < len(text) and text[end + 1].isdigit():
            return False
    return True


def _emails(text: str) -> Iterator[_Span]:
    """Find emails by working outwards from each '@', which is far cheaper than scanning for local parts."""
    at = text.find("@")
    while at != -1:
        domain = _EMAIL_DOMAIN.match(text, at)
        start = _email_start(text, at) if domain else None
        if domain and start is not None:
            end = domain.end()
            if end == len(text) or not (text[end].isalnum() or text[end] in "-_"):
                yield PiiKind.EMAIL, start, end
        at = text.find("@", at + 1)


def _email_start(text: str, at: int) -> int | None:
    """Return where the local part before '@' starts, or None when there is no valid one."""
    lo = max(0, at - _EMAIL_LOCAL_MAX - 1)
    boundary = _EMAIL_LOCAL_START.search(text, lo, at)
    if boundary:
        start = boundary.start() + 1
    elif lo == 0:
        start = 0
    else:
        return None  # longer than a local part may be
    # An address never starts with a dot or holds two in a row, but an ellipsis may run into one
    # ("wait...me@x.org"): the address starts after the last of the dots.
    double_dot = text.rfind("..", start, at)
    if double_dot != -1:
        start = double_dot + 2
    while start < at and text[start] == ".":
        start += 1
    return start if start < at and text[at - 1] != "." else None


def _numeric(text: str) -> Iterator[_Span]:
    """Run the card, SSN, IPv4 and phone detectors on windows around promising digit runs only."""
    windows: list[list[int]] = []
    for hint in _NUMERIC_HINT.finditer(text):
        lo = max(0, hint.start() - _NUMERIC_WINDOW)
        hi = min(len(text), hint.end() + _NUMERIC_WINDOW)
        long_run = int(hint.group(1) is not None)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = hi
            windows[-1][2] |= long_run
        else:
            windows.append([lo, hi, long_run])
    for lo, hi, long_run in windows:
        yield from _cards(text, lo, hi)
        yield from _ssns(text, lo, hi)
        yield from _ipv4s(text, lo, hi)
        if long_run:
            yield from _phones(text, lo, hi)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    # Issuers' numbers start with 2-6 (Mastercard, Visa, Amex, Discover, JCB, UnionPay, Diners);
    # requiring that drops most order numbers and millisecond timestamps that happen to pass Luhn.
    return (
        13 <= len(digits) <= 19
        and digits[0] in "23456"
        and digits.count(digits[0]) != len(digits)
        and _luhn_ok(digits)
    )


def _cards(text: str, lo: int, hi: int) -> Iterator[_Span]:
    for match in _DIGIT_GROUPS.finditer(text, lo, hi):
        if match.end() - match.start() < 13 or not _isolated(text, match.start(), match.end()):
            continue
        groups: list[str] = []
        starts: list[int] = []
        for group in _DIGITS.finditer(match.group()):
            groups.append(group.group())
            starts.append(match.start() + group.start())
        yield from _cards_in_groups(groups, starts)


def _cards_in_groups(groups: list[str], starts: list[int]) -> Iterator[_Span]:
    """Find card numbers among separated digit groups, leftmost and then longest first.

    A card written with separators uses groups of 3 to 6 digits (4-4-4-4, Amex 4-6-5); a run of
    one-digit groups is a list of small numbers, whatever its checksum says.
    """
    i = 0
    while i < len(groups):
        best: int | None = None
        digits = ""
        for j in range(i, len(groups)):
            if j > i and not (3 <= len(groups[i]) <= 6 and 3 <= len(groups[j]) <= 6):
                break
            digits += groups[j]
            if len(digits) > 19:
                break
            if _is_card(digits):
                best = j
        if best is None:
            i += 1
            continue
        yield PiiKind.CREDIT_CARD, starts[i], starts[best] + len(groups[best])
        i = best + 1


def _ssns(text: str, lo: int, hi: int) -> Iterator[_Span]:
    for match in _SSN.finditer(text, lo, hi):
        value = match.group()
        area, group, serial = value[0:3], value[4:6], value[7:11]
        # The SSA never issues area 000, 666 or 900-999, group 00 or serial 0000.
        if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
            continue
        if _isolated(text, match.start(), match.end()):
            yield PiiKind.SSN, match.start(), match.end()


def _ipv4s(text: str, lo: int, hi: int) -> Iterator[_Span]:
    for match in _IPV4.finditer(text, lo, hi):
        octets = match.group().split(".")
        # A leading zero makes the octet ambiguous (octal to some parsers); real addresses omit it.
        if any(int(o) > 255 or (len(o) > 1 and o[0] == "0") for o in octets):
            continue
        if _isolated(text, match.start(), match.end()):
            yield PiiKind.IP_ADDRESS, match.start(), match.end()


def _phones(text: str, lo: int, hi: int) -> Iterator[_Span]:
    """Ask the phonenumbers matcher about each phone-shaped run in a window; +CC numbers count too.

    The matcher is slow (tens of microseconds a call, hundreds on a date it has to rule out), so it
    only sees a little context around each shape: enough for its own checks (a letter glued to the
    number, an extension after it) and for ours (an order number's label).
    """
    for start, end in _phone_windows(text, lo, hi):
        window = text[start:end]
        matcher = _cached_phone_matches if len(window) <= _PHONE_CACHED_WINDOW else _phone_matches
        for match_start, match_end in matcher(window):
            found_at = start + match_start
            if not _NOT_A_PHONE_BEFORE.search(text, max(0, found_at - _LABEL_REACH), found_at):
                yield PiiKind.PHONE, found_at, start + match_end


def _phone_windows(text: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """Yield a window around each phone shape in text[lo:hi] that is not part of a longer number.

    Windows are not merged: the matcher slows down on long texts, and the duplicates that
    neighbouring windows report are dropped with the other overlaps. No window ends inside a
    number, where the matcher would take the visible part for the whole.
    """
    for shape in _PHONE_SHAPE.finditer(text, lo, hi):
        if (shape.start() > 0 and text[shape.start() - 1].isdigit()) or (
            shape.end() < len(text) and text[shape.end()].isdigit()
        ):
            continue
        start = max(0, shape.start() - _PHONE_MARGIN)
        while start > 0 and text[start].isdigit() and text[start - 1].isdigit():
            start -= 1
        yield start, _DIGIT_RUN.match(text, min(len(text), shape.end() + _PHONE_MARGIN)).end()


def _phone_matches(window: str) -> tuple[tuple[int, int], ...]:
    return tuple((m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(window, "US"))


# Templated datasets repeat the same support line in thousands of examples; the matcher costs tens
# of microseconds a call, a cache hit well under one. Only short windows are cached, so a text made
# of back-to-back numbers cannot pin megabytes in the cache.
_cached_phone_matches = lru_cache(maxsize=4096)(_phone_matches)


def _ipv6s(text: str) -> Iterator[_Span]:
    for match in _IPV6.finditer(text):
        start, end = match.span()
        value = match.group()
        # A colon ending a sentence ("reach it at 2001:db8::1:") belongs to the prose.
        if value.endswith(":") and not value.endswith("::"):
            value = value[:-1]
            end -= 1
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_."):
            continue
        if end < len(text) and (text[end].isalnum() or text[end] == "_"):
            continue
        # ::ffff:192.0.2.1 stops matching at the dot; the IPv4 detector takes the address instead.
        if text[end : end + 1] == "." and text[end + 1 : end + 2].isdigit():
            continue
        # Three non-empty groups keep slices (a[1::2]) and C++ scopes out, at the cost of missing
        # the shortest forms such as ::1 and fe80::1.
        if sum(1 for g in value.split(":") if g) < 3:
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        yield PiiKind.IP_ADDRESS, start, end


def _aws_key_ids(text: str) -> Iterator[_Span]:
    for match in _AWS_KEY_ID.finditer(text):
        start, end = match.span()
        if (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
            yield PiiKind.AWS_KEY, start, end


def _aws_secrets(text: str) -> Iterator[_Span]:
    """Find 40-character secret access keys, but only shortly after the words 'aws' or 'secret'.

    Without that context a 40-character base64 string is as likely a hash or an encoded blob.
    """
    scanned_to = 0
    for context in _AWS_SECRET_CONTEXT.finditer(text):
        lo = max(scanned_to, context.end())
        hi = min(len(text), context.end() + _AWS_CONTEXT_REACH + 40)
        if lo >= hi:
            continue
        scanned_to = hi
        for match in _AWS_SECRET.finditer(text, lo, hi):
            start, end = match.span()
            value = match.group()
            if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "/+"):
                continue
            if end < len(text) and (text[end].isalnum() or text[end] in "/+="):
                continue
            # A secret key mixes cases and digits; a SHA-1 in hex or a long word does not.
            if (
                any(c.isupper() for c in value)
                and any(c.islower() for c in value)
                and any(c.isdigit() for c in value)
            ):
                yield PiiKind.AWS_KEY, start, end


def _api_keys(text: str) -> Iterator[_Span]:
    for match in _API_KEY.finditer(text):
        start, end = match.span()
        if (start > 0 and text[start - 1] in _KEY_CHARS) or (end < len(text) and text[end].isalnum()):
            continue
        # "sk-" also starts ordinary hyphenated names; a real key body always has digits in it.
        if match.group().startswith("sk-") and not any(c.isdigit() for c in match.group()):
            continue
        yield PiiKind.API_KEY, start, end
