"""The S3 client of the snapshot stores and the errors they raise (``storage.s3_snapshots``).

``s3_client`` builds a boto3 client with the stores' timeouts and retries; ``translate`` maps
botocore's exceptions onto ``S3StorageError`` and its subclasses, whose messages name the
request, the object and what to check.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError, PartialCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from .base import StorageError

__all__ = ["CONFLICT_CODES", "MISSING_CODES", "S3AccessDeniedError", "S3BucketNotFoundError", "S3ConnectionError", "S3StorageError",
           "SnapshotConflictError", "error_code", "s3_client", "translate"]

CONFLICT_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
"""S3 error codes of a conditional write that lost (the object changed or appeared)."""
MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
"""S3 error codes of a missing object."""
_ACCESS_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidToken",
    "InvalidClientTokenId",
    "403",
}

_session_lock = threading.Lock()
_session = None


CONFLICT = object()
"""Returned by ``S3SnapshotStore._call(..., conflict=True)`` for a 412 (and kin)."""
MISSING = object()
"""Returned by ``S3SnapshotStore._call(..., missing=True)`` for a 404."""

def s3_client(endpoint_url: str | None = None, region: str = "us-east-1", **kwargs: Any):
    """A boto3 S3 client with the stores' defaults (5 s connect and 60 s read timeouts, 3
    attempts in "standard" retry mode, path-style addressing when ``endpoint_url`` is given;
    a ``config=`` is merged over them); other kwargs go to ``boto3.client``. Blocking: call it
    off the event loop. Clients come from one boto3 session per process, created under a lock
    (sessions are not thread-safe; clients are), so the S3 service model is loaded and parsed
    once per process rather than once per client: a fresh session's model load allocates
    enough objects to set off full garbage collections that pause every thread, the event
    loop's included, for a few hundred milliseconds."""
    global _session
    import boto3

    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 3},
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    user_config = kwargs.pop("config", None)
    if user_config is not None:
        config = config.merge(user_config)
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config, **kwargs)


class S3StorageError(StorageError):
    """An S3 request of a snapshot store failed."""


class S3BucketNotFoundError(S3StorageError):
    """The bucket does not exist (create it, or call ``ensure_bucket()``)."""


class S3AccessDeniedError(S3StorageError):
    """The credentials are missing, wrong, or not allowed to do this."""


class S3ConnectionError(S3StorageError):
    """The endpoint could not be reached or timed out (the request's outcome is unknown)."""


class SnapshotConflictError(S3StorageError):
    """``save`` lost the race for the manifest ``max_attempts`` times in a row."""


def error_code(exc: ClientError) -> str:
    """The S3 error code of ``exc`` (``"NoSuchKey"``, ``"PreconditionFailed"``...), or ""."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def translate(exc: Exception, op: str, where: str, bucket: str) -> S3StorageError:
    """The ``S3StorageError`` subclass for a botocore exception ``exc`` raised by the request
    ``op`` on ``where`` (an ``s3://bucket/key`` description) in ``bucket``."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc), _status(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if code == "NoSuchBucket":
            return S3BucketNotFoundError(
                f"S3 bucket {bucket!r} does not exist ({op} {where}); create it or "
                "call ensure_bucket()"
            )
        if code in _ACCESS_CODES or status == 403:
            return S3AccessDeniedError(
                f"S3 access denied: {op} {where}: {code} {message}".rstrip()
                + " (check the credentials and the bucket's policy)"
            )
        return S3StorageError(f"S3 {op} {where} failed: {code} {message}".rstrip())
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return S3AccessDeniedError(f"no usable S3 credentials for {op} {where}: {exc}")
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return S3ConnectionError(f"S3 endpoint unreachable during {op} {where}: {exc}")
    return S3StorageError(f"S3 {op} {where} failed: {exc}")
