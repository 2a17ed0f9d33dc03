"""Email, IPv6, AWS key and API key detectors, and the cheap guards in front of every detector.

Each detector family sits behind a guard - a substring test, or one regex pass that starts with a
character class so `re` can skip ahead in C - so clean text costs a few microseconds per kilobyte.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from workbench.domain.pii.kinds import PiiKind, _Span
from workbench.domain.pii.numeric import _NUMERIC_HINT

# Patterns start with a literal or a character class and leave boundary checks to Python: a leading
# lookbehind or repeat stops `re` from skipping ahead to candidate characters, which is most of the
# cost on clean text.

_EMAIL_DOMAIN = re.compile(
    r"@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}"
)
# The character just before a local part: searching for it (a negated class) lets `re` skip ahead,
# where searching for the local part itself would retry at every character of a long word.
_EMAIL_LOCAL_START = re.compile(r"[^A-Za-z0-9._%+\-][A-Za-z0-9._%+\-]*\Z")
_EMAIL_LOCAL_MAX = 64

# Two colons within five characters: every IPv6 address has this, little prose does.
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6 = re.compile(r"[0-9A-Fa-f:][0-9A-Fa-f:]+")
_IPV6_MAX = 45  # the longest textual form: six groups and an embedded IPv4 address
_IPV4_TAIL = re.compile(r"(?:\.[0-9]{1,3}){3}")
_IPV6_ZONE = re.compile(r"%[0-9A-Za-z_.\-]{1,32}")

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


def _ipv6s(text: str) -> Iterator[_Span]:
    """Find IPv6 addresses in every form ipaddress accepts, compressed, with a zone or an embedded IPv4.

    The regex only gathers runs of hex digits and colons; `ipaddress.IPv6Address` decides, so a
    time (12:30:45) or a MAC address (00:1A:2B:3C:4D:5E, not flagged: a device, not a person's
    address) never parses. What parses but is usually something else is left out: forms with one
    or two groups need a digit and a group of three or more characters (fe80::1, 2001:db8:: pass;
    Python's a[1::2] and C++'s Add::Bad do not), so ::1 and :: (loopback and unspecified, which
    identify no one) are not flagged, and neither is anything indexed with [ right after a name.
    """
    for match in _IPV6.finditer(text):
        start, end = match.span()
        if match.group().count(":") < 2:
            continue  # a word or a number: every IPv6 address has two colons or more
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_."):
            continue
        # An IPv4-mapped or -embedded form (::ffff:192.0.2.1): the last group continues as a dotted quad.
        tail = _IPV4_TAIL.match(text, end) if text[end - 1] != ":" else None
        if tail:
            end = tail.end()
        # A colon ending a sentence ("reach it at 2001:db8::1:") belongs to the prose.
        elif text[end - 1] == ":" and text[end - 2 : end] != "::":
            end -= 1
        if end < len(text) and (text[end].isalnum() or text[end] == "_"):
            continue
        if text[end : end + 1] == "." and text[end + 1 : end + 2].isalnum():
            continue
        zone = _IPV6_ZONE.match(text, end)
        value = text[start:end]
        if len(value) > _IPV6_MAX or not _plausible_ipv6(text, start, value, tail is not None, zone is not None):
            continue
        if zone:
            value, end = text[start : zone.end()], zone.end()
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        yield PiiKind.IP_ADDRESS, start, end


def _plausible_ipv6(text: str, start: int, value: str, embedded_v4: bool, zone: bool) -> bool:
    groups = [g for g in value.split(":") if g]
    if start > 1 and text[start - 1] == "[" and (text[start - 2].isalnum() or text[start - 2] in "_)]"):
        return False  # x[1::2], a slice
    if len(groups) >= 3 or embedded_v4 or zone:
        return True
    return any(c.isdigit() for c in value) and any(len(g) >= 3 for g in groups)


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
