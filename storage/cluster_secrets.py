"""Cluster-wide objects in the snapshot bucket: the secrets every gateway must share, without
a shared disk (issue 15, "Cluster-wide state").

``S3Objects`` reads, writes, lists and deletes small objects under one key prefix of the
bucket of an S3 snapshot spec (``storage.factory``); ``create_once(key, make)`` creates an
object exactly once across the cluster: ``PutObject`` with ``If-None-Match: *``, and the loser
of a race (412, or 409 ``ConditionalRequestConflict``) reads the winner's object, so every
process ends up with the same bytes. ``ClusterSecrets`` uses it for named secrets under
``<prefix>_cluster/<name>`` (``jwt-keys.json``, ``session-key.json``).

The objects are only as private as the bucket: give the bucket's policy to the servers alone.
Every method is blocking (boto3): call it off the event loop, or before it runs. Errors are
``storage.s3_client.S3StorageError`` and its subclasses (access denied, bucket missing,
endpoint unreachable), whose messages name the object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from .s3_client import CONFLICT_CODES, MISSING_CODES, S3StorageError, error_code, s3_client, translate

__all__ = ["CLUSTER_PREFIX", "ClusterSecrets", "S3Objects"]

CLUSTER_PREFIX = "_cluster/"
"""Folder of the cluster's secrets below the snapshot prefix."""

_CREDENTIALS = ("aws_access_key_id", "aws_secret_access_key")


class S3Objects:
    """Small objects under ``<spec prefix><folder>`` in the bucket of the S3 snapshot spec
    ``spec`` (``{"kind": "s3", "bucket", "prefix", "endpoint_url", "region",
    "aws_access_key_id", "aws_secret_access_key"}``, all but ``bucket`` optional; without
    keys, credentials come from the AWS environment as boto3 reads them). Keys given to the
    methods are relative to that folder. Thread-safe."""

    def __init__(self, spec: dict, folder: str):
        if not spec or spec.get("kind") != "s3" or not spec.get("bucket"):
            raise ValueError(f"not an S3 snapshot spec: {spec!r}")
        self.bucket = spec["bucket"]
        self.prefix = f"{spec.get('prefix') or ''}{folder}"
        self.endpoint_url = spec.get("endpoint_url")
        self.region = spec.get("region") or "us-east-1"
        self._kwargs = {k: spec[k] for k in _CREDENTIALS if spec.get(k)}
        self._client = None
        self._lock = threading.Lock()

    def where(self, key: str = "") -> str:
        """``s3://bucket/<prefix><key>`` (and the endpoint), for messages."""
        where = f"s3://{self.bucket}/{self.prefix}{key}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def client(self):
        """The boto3 client (``storage.s3_client.s3_client``), created on first use."""
        with self._lock:
            if self._client is None:
                self._client = s3_client(self.endpoint_url, self.region, **self._kwargs)
            return self._client

    def _call(self, op: str, key: str | None, **kwargs):
        if key is not None:
            kwargs["Key"] = self.prefix + key
        try:
            return getattr(self.client(), op)(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, op, self.where(key or ""), self.bucket) from exc

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        try:
            response = self._call("get_object", key)
        except S3StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and error_code(cause) in MISSING_CODES:
                return None
            raise
        return response["Body"].read()

    def put(self, key: str, body: bytes) -> None:
        """Write the object (replacing it)."""
        self._call("put_object", key, Body=body)

    def create_once(self, key: str, make: Callable[[], bytes]) -> bytes:
        """The object's bytes, creating it with ``make()`` if it does not exist. Creation is
        ``If-None-Match: *``: of processes racing, one writes, and the others read its bytes.
        Raises ``S3StorageError`` (after 5 rounds of losing a race and finding nothing, which
        only a server that deletes the object meanwhile can cause)."""
        for _ in range(5):
            body = self.get(key)
            if body is not None:
                return body
            body = make()
            try:
                self._call("put_object", key, Body=body, IfNoneMatch="*")
            except S3StorageError as exc:
                cause = exc.__cause__
                if isinstance(cause, ClientError) and error_code(cause) in CONFLICT_CODES:
                    continue  # another process created it first: read theirs
                raise
            return body
        raise S3StorageError(f"could not create or read {self.where(key)}")

    def delete(self, key: str) -> None:
        """Delete the object (a missing object is no error)."""
        self._call("delete_object", key)

    def keys(self) -> Iterator[str]:
        """Every key under the folder (relative), in S3's order (lexicographic)."""
        token = None
        while True:
            kwargs = {"Prefix": self.prefix}
            if token:
                kwargs["ContinuationToken"] = token
            response = self._call("list_objects_v2", None, **kwargs)
            for item in response.get("Contents", ()):
                yield item["Key"][len(self.prefix):]
            if not response.get("IsTruncated"):
                return
            token = response.get("NextContinuationToken")

    def close(self) -> None:
        """Close the boto3 client."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class ClusterSecrets:
    """Named secrets shared by every process of a cluster, in the snapshot bucket under
    ``<prefix>_cluster/<name>``, each created once (``S3Objects.create_once``) and cached
    in this object after the first read (a secret never changes once created; rotate JWT keys
    with ``STARHOLD_JWT_KEYS``)."""

    def __init__(self, spec: dict):
        self.objects = S3Objects(spec, CLUSTER_PREFIX)
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get_or_create(self, name: str, make: Callable[[], bytes]) -> bytes:
        """The bytes of secret ``name`` (``[A-Za-z0-9_.-]``), created with ``make()`` by the
        first process that asks. Blocking. Raises ``S3StorageError``, ``ValueError`` for a bad
        name."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid secret name {name!r}")
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None:
            return cached
        body = self.objects.create_once(name, make)
        with self._lock:
            return self._cache.setdefault(name, body)

    def where(self, name: str) -> str:
        """Where secret ``name`` is kept, for messages."""
        return self.objects.where(name)
