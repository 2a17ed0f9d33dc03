"""What the Bedrock and SageMaker backends share: boto3 clients, S3 paths and uploads, and error translation.

Clients come from boto3's own configuration chain, so `AWS_PROFILE`, `AWS_DEFAULT_REGION`/`AWS_REGION`,
`AWS_ENDPOINT_URL` (and its per-service forms), `AWS_MAX_ATTEMPTS` and the shared config files all work as
the AWS CLI documents them (https://docs.aws.amazon.com/sdkref/latest/guide/settings-reference.html).
Nothing here reads those variables itself: it only names them when something is missing.

botocore errors are translated at this boundary into the backend errors of `workbench.providers.base`, so
the jobs service never imports botocore: throttling becomes `Throttled` (retry later), a vanished job
`JobNotFound`, missing or rejected credentials `MissingCredentials` naming what to set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench.providers.base import BackendError, JobNotFound, MissingCredentials, Throttled

THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"}
)
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "AccessDeniedException",
    }
)
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NoSuchKey", "NotFound"})
CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary credentials), "
    "or AWS_PROFILE naming a profile in ~/.aws/config"
)
REGION_HINT = "set AWS_DEFAULT_REGION (or AWS_REGION, or a region in your AWS_PROFILE)"
_S3_URI_RE = re.compile(r"s3://([^/]+)/?(.*)")


def make_client(service: str, *, region: str | None = None, profile: str | None = None) -> Any:
    """Build a boto3 client from boto3's own chain, refusing early when no region or credentials are found.

    Checking here, rather than on the first call, lets `from_environment` name what is missing before
    any upload starts.
    """
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise MissingCredentials(f"AWS profile {exc.kwargs.get('profile')!r} is not in ~/.aws/config; {CREDENTIALS_HINT}") from exc
    if not session.region_name:
        raise MissingCredentials(f"No AWS region is configured for {service}; {REGION_HINT}")
    if session.get_credentials() is None:
        raise MissingCredentials(f"No AWS credentials were found for {service}; {CREDENTIALS_HINT}")
    return session.client(service)


def client_region(client: Any) -> str:
    """Return the region a client talks to (SageMaker needs it in the image URI and the job's settings)."""
    return str(client.meta.region_name)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split `s3://bucket/key/prefix` into the bucket and the key (without a leading slash)."""
    match = _S3_URI_RE.fullmatch(uri)
    if not match:
        raise BackendError(f"{uri!r} is not an S3 URI; give s3://bucket/prefix")
    return match.group(1), match.group(2)


def join_s3(base: str, *parts: str) -> str:
    """Join S3 path segments with single slashes; a trailing '' part keeps a trailing slash (a folder)."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def upload_file(s3: Any, local_path: str | Path, uri: str) -> str:
    """Upload one local file to `uri` and return the URI; a missing file is named before any call is made."""
    path = Path(local_path)
    if not path.is_file():
        raise BackendError(f"{path} does not exist or is not a file; export the dataset version again and relaunch")
    bucket, key = parse_s3_uri(uri)
    with translate_errors(f"uploading {path.name} to {uri}"):
        s3.upload_file(str(path), bucket, key)
    return uri


def upload_bytes(s3: Any, data: bytes, uri: str) -> str:
    """Upload bytes built in memory (a source archive) to `uri` and return the URI."""
    bucket, key = parse_s3_uri(uri)
    with translate_errors(f"uploading to {uri}"):
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    return uri


def list_keys(s3: Any, uri: str) -> list[str]:
    """Return every object key under the prefix `uri` (all pages)."""
    bucket, prefix = parse_s3_uri(uri)
    keys: list[str] = []
    with translate_errors(f"listing {uri}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def read_object(s3: Any, bucket: str, key: str) -> bytes | None:
    """Return an object's bytes, or None when it is not there (yet)."""
    from botocore.exceptions import ClientError

    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if _code(exc) in NOT_FOUND_CODES or _code(exc) == "404":
            return None
        raise translate(exc, f"reading s3://{bucket}/{key}") from exc


@contextmanager
def translate_errors(action: str, *, job: str | None = None) -> Iterator[None]:
    """Run AWS calls, turning botocore errors into backend errors whose message names `action`."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, action, job=job) from exc


def translate(exc: Exception, action: str, *, job: str | None = None) -> BackendError:
    """Return the backend error a botocore exception means, its message saying what failed and what to do."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
        PartialCredentialsError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return MissingCredentials(f"{action} failed: no usable AWS credentials; {CREDENTIALS_HINT}")
    if isinstance(exc, NoRegionError):
        return MissingCredentials(f"{action} failed: no AWS region; {REGION_HINT}")
    if isinstance(exc, EndpointConnectionError):
        return BackendError(f"{action} failed: cannot reach {exc.kwargs.get('endpoint_url')}; check AWS_ENDPOINT_URL and the network")
    if isinstance(exc, ParamValidationError):
        return BackendError(f"{action} was refused before sending: {exc}")
    if not isinstance(exc, ClientError):
        return BackendError(f"{action} failed: {exc}")
    code, message = _code(exc), _message(exc)
    if code in THROTTLING_CODES:
        return Throttled(f"{action} was throttled by AWS ({code}: {message}); it will be retried later, nothing is lost")
    if code in CREDENTIAL_CODES:
        return MissingCredentials(
            f"{action} failed: AWS rejected the credentials ({code}: {message}); {CREDENTIALS_HINT}, "
            "and check the role and its permissions"
        )
    if job is not None and (code in NOT_FOUND_CODES or (code == "ValidationException" and "Could not find" in message)):
        return JobNotFound(f"Job {job!r} no longer exists on AWS ({code}: {message}); it was deleted or belongs to another account")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if isinstance(status, int) and status >= 500:
        return BackendError(f"{action} failed on the AWS side (HTTP {status}, {code}: {message}); try again later")
    return BackendError(f"{action} was refused ({code}: {message})")


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")).strip() or "no message"
