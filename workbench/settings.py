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
import re
from functools import lru_cache
from pathlib import Path

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


# --- fine-tuning jobs ----------------------------------------------------------------------------------

S3_URI = "WORKBENCH_S3_URI"
BEDROCK_ROLE_ARN = "WORKBENCH_BEDROCK_ROLE_ARN"
SAGEMAKER_ROLE_ARN = "WORKBENCH_SAGEMAKER_ROLE_ARN"
RUNS_DIR = "WORKBENCH_RUNS_DIR"
_S3_URI_RE = re.compile(r"s3://([a-z0-9][-.a-z0-9]{1,61}[a-z0-9])(/[-!_*'().a-zA-Z0-9/]*)?")
_ROLE_ARN_RE = re.compile(r"arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+")


def s3_uri() -> str | None:
    """Return the bucket and prefix jobs upload data to and write outputs under (`s3://bucket/prefix`), or None.

    The pattern is Bedrock's S3Uri pattern (botocore model): no spaces or '+' in keys, lower-case bucket names.
    """
    raw = os.environ.get(S3_URI, "").strip()
    if not raw:
        return None
    if not _S3_URI_RE.fullmatch(raw):
        raise SettingError(
            f"{S3_URI}={raw!r} is not an S3 URI Bedrock accepts; give s3://bucket/prefix with a lower-case bucket "
            "and a prefix of letters, digits and - _ . ! * ' ( ) /"
        )
    return raw.rstrip("/")


def _role_arn(name: str) -> str | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not _ROLE_ARN_RE.fullmatch(raw):
        raise SettingError(f"{name}={raw!r} is not an IAM role ARN; give arn:aws:iam::123456789012:role/NAME")
    return raw


def bedrock_role_arn() -> str | None:
    """Return the IAM role Bedrock assumes to read the training data and write outputs, or None."""
    return _role_arn(BEDROCK_ROLE_ARN)


def sagemaker_role_arn() -> str | None:
    """Return the IAM role SageMaker training jobs run as, or None."""
    return _role_arn(SAGEMAKER_ROLE_ARN)


def runs_dir() -> Path:
    """Return where local training runs keep their adapters, checkpoints, metrics and logs.

    Default: a `runs` folder beside the store (`WORKBENCH_DB`'s folder, `data/` by default), so a
    workspace's runs move with its database.
    """
    raw = os.environ.get(RUNS_DIR, "").strip()
    if raw:
        return Path(raw)
    db = os.environ.get("WORKBENCH_DB", "").strip()
    return (Path(db).parent if db else Path("data")) / "runs"
