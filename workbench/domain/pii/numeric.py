"""Card, SSN, IPv4 and phone detectors: they look only at short windows around promising digit runs.

One regex pass over the text finds the runs worth a closer look; `phonenumbers`, by far the slowest
check, sees only a little context around each phone-shaped run inside them (see `phones`).

A dotted quad is an IPv4 address unless its context says it is a software version. The rules, in
order (the first that applies decides):

1. Glued to a version suffix or a product name: `v2.3.4.5`, `1.2.3.4rc1`, `1.2.3.4-beta`,
   `1.2.3.4+build7`, `nginx/1.18.0.1` (a User-Agent product token; `http://1.2.3.4` is not one).
2. The nearest keyword before it on the same line, within 40 characters, is a version word
   (`version`, `ver`, `release`, `build`, `firmware`, `kernel`, `patch`, `upgrade`, `update`,
   `install`, `bump`, `pin`, `==`, `>=`...) or a numbering word (`section`, `clause`, `figure`,
   `step`, `§`...) rather than an address word (`ip`, `address`, `host`,
   `server`, `ping`, `ssh`, `gateway`, `subnet`, `dns`, `proxy`, `connect`, `on`, `at`, `via`).
   So `upgrade nginx from 1.18.0.1 to 1.20.0.1` and `version 10.0.0.1` are versions, and
   `upgrade the firmware on 192.168.1.1` is an address.
3. A version word right after it: `1.18.0.1 release notes`.
4. Otherwise it is an address: a privacy scrubber should err on the side of removing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from workbench.domain.pii.kinds import PiiKind, _Span
from workbench.domain.pii.phones import _phones

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
# The lookarounds repeat what `_isolated` checks (a subset of it, so it stays the rule), in C: on a
# run like "1.1.1.1.1..." every position would otherwise be a match for Python to reject, at about
# 1 s per MB (a 10 MB record of dots and digits took 11 s to scan).
_IPV4 = re.compile(
    r"(?<!\w)(?<!\d[.,\-])"
    r"[0-9][0-9]?[0-9]?\.[0-9][0-9]?[0-9]?\.[0-9][0-9]?[0-9]?\.[0-9][0-9]?[0-9]?"
    r"(?!\w)(?![.,\-]\d)"
)
# Words that say what a dotted quad is (rule 2 of the module docstring): the nearest one decides.
_CONTEXT_REACH = 40
_CONTEXT_TOKEN = re.compile(r"[A-Za-z]+|[=<>~]=|\u00a7")
# Version words, then numbering words; both matched whole and case-blind.
_VERSION_WORDS = frozenset(
    {
        "v", "ver", "version", "versions", "release", "released", "releases", "rel", "build", "firmware", "fw",
        "kernel", "patch", "patched", "patches", "upgrade", "upgraded", "upgrades", "upgrading", "downgrade",
        "downgraded", "downgrades", "downgrading", "update", "updated", "updates", "updating", "install",
        "installed", "installs", "installing", "bump", "bumped", "bumps", "pin", "pinned", "pins", "sdk",
        "package", "pkg", "changelog", "section", "sec", "clause", "chapter", "article", "appendix",
        "paragraph", "figure", "fig", "table", "step", "rule", "item", "oid", "==", ">=", "<=", "~=", "\u00a7"
    }
)
_ADDRESS_WORDS = frozenset(
    {
        "ip", "ipv4", "ips", "address", "addresses", "addr", "host", "hosts", "hostname", "hostnames", "server",
        "servers", "ping", "ssh", "gateway", "subnet", "dns", "proxy", "route", "router", "routers", "connect",
        "connected", "connecting", "connects", "on", "at", "via"
    }
)
_VERSION_AFTER = re.compile(r" ?(?:release|version|build|changelog)\b", re.IGNORECASE)


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


def _numeric(text: str, regions: tuple[str, ...]) -> Iterator[_Span]:
    """Run the card, SSN, IPv4 and phone detectors on windows around promising digit runs only.

    `regions` are the phone regions whose national formats count (see `workbench.settings`).
    """
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
            yield from _phones(text, lo, hi, regions)


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
        if _isolated(text, match.start(), match.end()) and not _is_version(text, match.start(), match.end()):
            yield PiiKind.IP_ADDRESS, match.start(), match.end()


def _is_version(text: str, start: int, end: int) -> bool:
    """Say whether the dotted quad text[start:end] reads as a software version (rules in the module docstring)."""
    after = text[end : end + 2]
    if len(after) == 2 and after[0] in "-+" and after[1].isalnum():
        return True
    if start > 1 and text[start - 1] == "/" and (text[start - 2].isalnum() or text[start - 2] in "_-"):
        return True
    reach = max(0, start - _CONTEXT_REACH)
    before = text[reach:start]
    if reach > 0 and text[reach - 1].isalpha():
        before = before.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")  # the tail of a cut word
    before = before[before.rfind("\n") + 1 :]
    # One regex over the words and a set lookup each: an alternation of every keyword, matched at
    # every position, cost 100 us per address.
    for token in reversed(_CONTEXT_TOKEN.findall(before)):
        word = token.lower()
        if word in _VERSION_WORDS:
            return True
        if word in _ADDRESS_WORDS:
            return False
    return _VERSION_AFTER.match(text, end) is not None

