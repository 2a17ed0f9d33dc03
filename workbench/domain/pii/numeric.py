"""Card, SSN, IPv4 and phone detectors: they look only at short windows around promising digit runs.

One regex pass over the text finds the runs worth a closer look; `phonenumbers`, by far the slowest
check, sees only a little context around each phone-shaped run inside them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import phonenumbers

from workbench.domain.pii.kinds import PiiKind, _Span

# Patterns start with a literal or a character class and leave boundary checks to Python: a leading
# lookbehind or repeat stops `re` from skipping ahead to candidate characters, which is most of the
# cost on clean text. Digits are spelled [0-9] because \d also matches other scripts' digits, which
# the Luhn and octet arithmetic would misread.

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
