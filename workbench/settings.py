"""Settings read from the environment: one function per setting, with its default and its check.

Every setting the workbench reads from the environment lives here, so a user looking for what can
be configured reads one file, and a bad value fails with a message naming the variable rather than
somewhere deep in the code that uses it. To add one: a `NAME` constant, a default, and a function
that reads, checks and returns the parsed value (raising `SettingError`).

Values are read on every call, not once at import: tests and long-running processes see the
environment as it is now. Parsing that costs more than a dictionary lookup is cached per raw value.
"""

from __future__ import annotations

import os
from functools import lru_cache

from workbench.errors import InvalidInput


class SettingError(InvalidInput):
    """An environment variable holds a value the workbench cannot use; the message names it."""


PHONE_REGIONS = "WORKBENCH_PHONE_REGIONS"
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE")


def phone_regions() -> tuple[str, ...]:
    """Return the regions whose national phone formats PII detection looks for, in order.

    `WORKBENCH_PHONE_REGIONS` is a comma-separated list of ISO 3166 two-letter codes (`US,GB,DE`,
    the default). A number written with a `+` country code is found whatever the list says; the
    list decides which national formats (`020 7946 0958` in GB, `030 12345678` in DE) are read.
    """
    return _parse_phone_regions(os.environ.get(PHONE_REGIONS, ""))


@lru_cache(maxsize=16)
def _parse_phone_regions(raw: str) -> tuple[str, ...]:
    import phonenumbers  # here: a process that reads other settings need not load its metadata

    if not raw.strip():
        return DEFAULT_PHONE_REGIONS
    regions: list[str] = []
    for part in raw.split(","):
        code = part.strip().upper()
        if not code:
            continue
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingError(
                f"{PHONE_REGIONS}={raw!r}: {part.strip()!r} is not a region code phonenumbers knows; "
                f"give two-letter ISO 3166 codes separated by commas, such as {','.join(DEFAULT_PHONE_REGIONS)}"
            )
        if code not in regions:
            regions.append(code)
    if not regions:
        raise SettingError(f"{PHONE_REGIONS}={raw!r} names no region; give codes such as {','.join(DEFAULT_PHONE_REGIONS)}")
    return tuple(regions)
