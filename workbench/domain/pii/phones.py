"""Phone numbers, international and in the national formats of the configured regions.

`phonenumbers` decides what is a valid number, but it is slow (tens of microseconds a call, hundreds
on a date it has to rule out) and reads national formats for one region at a time. So a regex of
phone *shapes* first picks the runs worth asking about, and each shape says which regions to ask:

- `+44 20 7946 0958`: a country code is written, any one region reads it.
- `(415) 555-2671`, `1-212-555-1234`: the North American shape, asked of the NANP regions only.
- `020 7946 0958`, `030 12345678`, `0044 20 7946 0958`: a national (trunk) prefix, asked of the
  regions that dial with that prefix (0 for GB and DE). A bare run such as `94105 1234` is never
  offered to them, so a ZIP code is not read as a German local number.
- Regions with no trunk prefix (IT, ES, MX...) get every seven-plus digit run, which is slower and
  looser; they are only asked when configured.

A number the matcher accepts is still dropped after an identifier's label (`order #`, `invoice no.`)
and when it is exactly a US ZIP+4 (`94105-1234`), which no region in practice writes a phone as.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from workbench.domain.pii.kinds import PiiKind, _Span

_INTERNATIONAL = r"\+[1-9](?:[ ().\-]{0,2}+[0-9]){6,}"
_NANP = r"(?:1[ .\-]?)?\(?[2-9][0-9][0-9]\)?[ .\-]?[2-9][0-9][0-9][ .\-]?[0-9][0-9][0-9][0-9]"
# A national number with its trunk prefix: the prefix, then 6 to 14 digits with light punctuation
# (E.164 allows 15 in all). Bounded, so a long list of numbers cannot become one huge window; the
# lookbehind keeps it from starting inside a longer number.
_TRUNK = r"(?<![0-9])\(?{prefix}[ (]{{0,2}}[0-9](?:[ ()./\-]{{0,2}}+[0-9]){{5,13}}"
_BARE = r"(?<![0-9])[1-9](?:[ ()./\-]{0,2}+[0-9]){6,13}"

_MARGIN = 16
_CACHED_WINDOW = 256
_DIGIT_RUN = re.compile(r"[0-9]*")
_ZIP_PLUS_4 = re.compile(r"[0-9]{5}-[0-9]{4}")
# A number right after one of these labels is an identifier, not someone's phone.
_NOT_A_PHONE_BEFORE = re.compile(
    r"(?:#|\b(?:order|invoice|ref|reference|tracking|confirmation|ticket|sku|serial|po|acct|account|"
    r"customer|id|zip|zipcode|postcode|postal code)(?:\s*(?:no\.?|num\.?|number|#|code))?)\s*[:#]?\s*\Z",
    re.IGNORECASE,
)
_LABEL_REACH = 30


@dataclass(frozen=True)
class _Plan:
    """The shapes to look for under one region setting, each with the regions that read it.

    Each shape is searched on its own, so a loose one (a trunk prefix run) cannot swallow a
    stricter one that overlaps it (`20500-0003 (202) 456-1111`).
    """

    shapes: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]
    # Region -> the prefix a national-format match must start with (absent: no such rule).
    trunk_of: dict[str, str]


@lru_cache(maxsize=8)
def _plan(regions: tuple[str, ...]) -> _Plan:
    shapes = [(_INTERNATIONAL, regions[:1])]
    trunk_of: dict[str, str] = {}
    by_prefix: dict[str, list[str]] = {}
    bare: list[str] = []
    nanp: list[str] = []
    for region in regions:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        prefix = metadata.national_prefix if metadata else None
        if metadata and metadata.country_code == 1:
            nanp.append(region)  # written without the trunk 1 as often as with it
        elif prefix:
            by_prefix.setdefault(prefix, []).append(region)
            trunk_of[region] = prefix
        else:
            bare.append(region)
    if nanp:
        shapes.append((_NANP, tuple(nanp)))
    for prefix, members in by_prefix.items():
        shapes.append((_TRUNK.format(prefix=re.escape(prefix)), tuple(members)))
    if bare:
        shapes.append((_BARE, tuple(bare)))
    return _Plan(tuple((re.compile(shape), readers) for shape, readers in shapes), trunk_of)


def _phones(text: str, lo: int, hi: int, regions: tuple[str, ...]) -> Iterator[_Span]:
    """Ask the phonenumbers matcher about each phone-shaped run in a window, in the regions that shape suits.

    The matcher only sees a little context around each shape: enough for its own checks (a letter
    glued to the number, an extension after it) and for ours (an order number's label).
    """
    plan = _plan(regions)
    for start, end, readers in _windows(plan, text, lo, hi):
        window = text[start:end]
        matcher = _cached_matches if len(window) <= _CACHED_WINDOW else _matches
        for region in readers:
            trunk = plan.trunk_of.get(region)
            for match_start, match_end in matcher(window, region):
                found = window[match_start:match_end]
                if trunk and not (found[0] == "+" or found.lstrip("(").startswith(trunk)):
                    continue  # a national number in this region is always written with its prefix
                if _ZIP_PLUS_4.fullmatch(found):
                    continue
                found_at = start + match_start
                if not _NOT_A_PHONE_BEFORE.search(text, max(0, found_at - _LABEL_REACH), found_at):
                    yield PiiKind.PHONE, found_at, start + match_end


def _windows(plan: _Plan, text: str, lo: int, hi: int) -> Iterator[tuple[int, int, tuple[str, ...]]]:
    """Yield a window around each phone shape in text[lo:hi] not part of a longer number, with the regions to ask.

    Windows are not merged: the matcher slows down on long texts, and the duplicates that
    neighbouring windows report are dropped with the other overlaps. No window ends inside a
    number, where the matcher would take the visible part for the whole.
    """
    for pattern, readers in plan.shapes:
        for shape in pattern.finditer(text, lo, hi):
            if (shape.start() > 0 and text[shape.start() - 1].isdigit()) or (
                shape.end() < len(text) and text[shape.end()].isdigit()
            ):
                continue
            start = max(0, shape.start() - _MARGIN)
            while start > 0 and text[start].isdigit() and text[start - 1].isdigit():
                start -= 1
            end = _DIGIT_RUN.match(text, min(len(text), shape.end() + _MARGIN))
            assert end is not None
            yield start, end.end(), readers


def _matches(window: str, region: str) -> tuple[tuple[int, int], ...]:
    return tuple((m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(window, region))


# Templated datasets repeat the same support line in thousands of examples; the matcher costs tens
# of microseconds a call, a cache hit well under one. Only short windows are cached, so a text made
# of back-to-back numbers cannot pin megabytes in the cache.
_cached_matches = lru_cache(maxsize=4096)(_matches)
