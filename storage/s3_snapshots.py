"""``S3SnapshotStore``: room snapshots in an S3 bucket (AWS S3, SeaweedFS, MinIO, moto...).

Layout, per room key (``system/sol``)::

    <prefix><room>/snapshot-<version:08d>.sqlite   one object per version (the last
                                                   ``KEEP_SNAPSHOTS`` are kept)
    <prefix><room>/manifest.json                   the ``Manifest`` as JSON: room, version,
                                                   epoch, created, size

The manifest object also carries the user metadata ``snapshot-etag`` (the ETag of the version
object it names) and ``epoch``; ``restore`` downloads the version object with
``If-Match: <snapshot-etag>``, so it never hands out bytes other than the ones the manifest was
written for (AWS, SeaweedFS and moto honour ``If-Match`` on GET), and checks their size against
the manifest. Version objects carry the metadata ``epoch`` of the activation that wrote them.

boto3 is blocking: every S3 call runs in ``asyncio.to_thread``, never on the event loop (the
boto3 client itself is created lazily, in a worker thread, on first use).

Epoch fencing and concurrent writers
------------------------------------
``save(room, source, epoch)``:

1. reads the manifest (and its ETag); if its epoch is greater than ``epoch`` it raises
   ``StaleEpochError`` and writes nothing;
2. uploads the version object ``snapshot-<N>`` with ``If-None-Match: *``, where ``N`` is one
   more than the highest of the manifest's version and every version object present (so an
   orphan left by a failed save is never overwritten, and two racing writers never write the
   same version object: the loser gets 412 and picks the next number);
3. writes the manifest conditionally: ``If-Match: <ETag read in 1>``, or ``If-None-Match: *``
   when there was none. A 412 (or, from moto and AWS, 404 ``NoSuchKey`` for an ``If-Match`` on
   a manifest that disappeared) means another writer committed in between: the version object
   of step 2 is deleted (``If-Match`` its ETag) and the save starts again from 1, which then
   raises ``StaleEpochError`` if the winner's epoch is greater, or retries (at most
   ``max_attempts`` rounds, then ``SnapshotConflictError``);
4. reads the manifest's ETag back (read-after-write verification). If it is not the one just
   written, some writer replaced the manifest after us: if that writer's epoch is greater,
   ``StaleEpochError``; if it is the same epoch with a higher version (a later save of the same
   activation built on ours), ours did land and is returned; if it is an older epoch (possible
   only on a server that ignores the conditional headers), the save is redone on top of it;
5. deletes the version objects older than the last ``KEEP_SNAPSHOTS`` (failures there are
   logged, not raised: the snapshot has landed).

``claim`` and ``renew`` (the activation lease, ``starhold._runtime.lease``) rewrite the manifest alone, with
the same compare-and-swap: read it and its ETag, build the new manifest (a claim raises the
epoch; a renewal keeps the epoch and fails with ``StaleEpochError`` if it moved on), write it
``If-Match`` the ETag (``If-None-Match: *`` when there was none), and on 412 read again and
retry. The version object and its recorded ETag are kept; a claim of a room with no snapshot
writes a manifest of version 0, which ``restore`` treats as no snapshot.

If a request's response is lost and botocore retries a conditional PUT that had in fact landed,
the retry gets 412: ``save`` recognises its own manifest (same bytes) and succeeds.

What is guaranteed
~~~~~~~~~~~~~~~~~~
* On a server that honours ``If-Match`` / ``If-None-Match`` on ``PutObject`` atomically: a
  manifest is only ever replaced by a writer that read the manifest it replaces and whose epoch
  is not lower; so the manifest's epoch never decreases, two racing writers cannot both win,
  and a zombie activation can never overwrite a newer activation's manifest. The manifest
  always names a version object that was fully uploaded before it (upload first, manifest
  second), whose ETag it records.
  - **AWS S3**: honoured and atomic (documented; a concurrent conflict may also answer 409
    ``ConditionalRequestConflict``, handled like 412).
  - **SeaweedFS** (checked against ``weed mini`` 4.48): both headers answer 412 as AWS does
    (``If-Match`` on a missing key too); 30 rounds of 16 concurrent conditional PUTs of one key,
    for each header, had exactly one winner every round; ``tests/test_s3_snapshots.py`` races 2
    and 4 whole saves. In SeaweedFS's source the S3 gateway evaluates the condition of a
    single-part ``PutObject`` under a per-object write lock (or on the filer owning the key);
    its multipart completion does not, which is why this store only uses single-part
    ``PutObject`` (objects up to 5 GiB).
  - **moto 5.x**: both headers are honoured (412; ``If-Match`` on a missing key answers 404
    ``NoSuchKey``), but the check and the write are not under one lock, so truly simultaneous
    requests can in theory both pass: fine for fault-injection tests, not a fencing authority.
* On a server that silently ignores the conditional headers (some older S3 clones) fencing is
  best effort only. The epoch check of step 1 and the read-after-write check of step 4 catch a
  conflicting writer whose manifest lands before our verification read (tested with moto and
  the headers stripped). They miss (a) a lower-epoch writer that read the manifest before a
  newer writer committed and writes its manifest after the newer writer's verification read:
  the manifest goes back to the older epoch until the newer activation saves again; (b) two
  writers that picked the same version number overwrite each other's version object: the
  manifest's recorded ETag then makes ``restore`` fail (``S3StorageError``) rather than hand
  out bytes the manifest was not written for, if the server honours ``If-Match`` on GET.
  ``conditional_writes_supported()`` tells whether a server honours the headers.
* Not guaranteed anywhere: that a ``save`` which raised did not land. A network error after
  the request was sent (``S3ConnectionError``) leaves the outcome unknown; the previous
  manifest stays valid in either case, and the next ``save`` picks a fresh version number.

Errors are ``S3StorageError`` (a ``StorageError``) subclasses: ``S3BucketNotFoundError``,
``S3AccessDeniedError`` (also bad or missing credentials), ``S3ConnectionError`` (endpoint
unreachable, timeouts), ``SnapshotConflictError`` (too many lost races); plus
``StaleEpochError`` from ``storage.base``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .base import StorageError
from .s3_client import (  # noqa: F401  (the errors are importable from here too)
    CONFLICT, CONFLICT_CODES, MISSING, MISSING_CODES, S3AccessDeniedError, S3BucketNotFoundError, S3ConnectionError, S3StorageError,
    SnapshotConflictError, error_code, s3_client, translate)
from .s3_log import S3Log
from .snapshots import (KEEP_SNAPSHOTS, Claim, Manifest, SnapshotStore, check_epoch, claimed,
                        manifest_from, renewed, saved_manifest, with_log)

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_VERSION_RE = re.compile(r"snapshot-(\d{8,})\.sqlite$")
_CONFLICT = CONFLICT
_MISSING = MISSING


@dataclass(frozen=True)
class _Current:
    manifest: Manifest
    etag: str
    raw: bytes
    snapshot_etag: str | None


def _unquote(etag: str | None) -> str:
    return (etag or "").strip().removeprefix("W/").strip('"')


def _quote(etag: str) -> str:
    return f'"{_unquote(etag)}"'


def _encode(manifest: Manifest) -> bytes:
    return json.dumps(asdict(manifest), sort_keys=True).encode()


class S3SnapshotStore(S3Log, SnapshotStore):
    """Snapshots of room databases in the S3 bucket ``bucket`` (see the module docstring for
    the layout, the fencing protocol and what it guarantees on which server).

    ``prefix`` is prepended to every key as is (give it a trailing ``/`` for a folder).
    ``endpoint_url`` selects an S3-compatible server (path-style addressing is then used);
    ``client`` is a ready boto3 S3 client (``endpoint_url``, ``region`` and ``client_kwargs``
    are then ignored); other keyword arguments go to ``boto3.client("s3", ...)``
    (``aws_access_key_id``, ``aws_secret_access_key``, ``config``...) through ``s3_client()``
    (its defaults: 5 s connect timeout, 60 s read timeout, 3 attempts in "standard" retry
    mode). ``max_attempts`` bounds the rounds of a ``save`` that keeps losing races.
    ``replicate`` (default True): rooms append each commit to the statement log here before
    acknowledging it (``storage.replication_log``).
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        client: Any = None,
        max_attempts: int = 8,
        replicate: bool = True,
        **client_kwargs: Any,
    ):
        if not bucket:
            raise ValueError("bucket is required")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url if client is None else client.meta.endpoint_url
        self.region = region
        self.max_attempts = max_attempts
        self.replicates = bool(replicate)
        self._client_kwargs = client_kwargs
        self._s3 = client
        self._owns_client = client is None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3SnapshotStore(s3://{self.bucket}/{self.prefix}{where})"

    # ---- the SnapshotStore interface ---------------------------------------------------------
    async def save(self, room: str, source: Path, epoch: int, *, lease_until: float | None = None,
                   position: tuple | None = None, log: tuple | None = None) -> Manifest:
        return await asyncio.to_thread(self._save, room, Path(source), int(epoch), lease_until, position, log)

    async def claim(self, room: str, *, at_least: int, holder: str, now: float, lease: float,
                    open_log: bool = False) -> Claim:
        def build(current: Manifest | None) -> tuple[Manifest, Claim]:
            claim = claimed(current, room, at_least, holder, now, lease, open_log)
            return claim.manifest, claim
        return await asyncio.to_thread(self._swap_manifest, room, build)

    async def set_log(self, room: str, epoch: int, holder: str, log: tuple) -> Manifest:
        """Replace the manifest's log ranges (see ``Manifest``) for activation ``epoch``.
        Raises ``StaleEpochError`` when a newer activation claimed the room."""
        def build(current: Manifest | None) -> tuple[Manifest, Manifest]:
            manifest = with_log(current, room, int(epoch), holder, log)
            return manifest, manifest
        return await asyncio.to_thread(self._swap_manifest, room, build)

    async def renew(self, room: str, epoch: int, holder: str, lease_until: float) -> Manifest:
        def build(current: Manifest | None) -> tuple[Manifest, Manifest]:
            manifest = renewed(current, room, int(epoch), holder, lease_until)
            return manifest, manifest
        return await asyncio.to_thread(self._swap_manifest, room, build)

    async def latest(self, room: str) -> Manifest | None:
        current = await asyncio.to_thread(self._get_manifest, room)
        return current.manifest if current is not None else None

    async def restore(self, room: str, dest: Path) -> Manifest | None:
        return await asyncio.to_thread(self._restore, room, Path(dest))

    # ---- helpers -------------------------------------------------------------------------------
    async def ensure_bucket(self) -> bool:
        """Create the bucket if it does not exist; returns True if it was created."""
        return await asyncio.to_thread(self._ensure_bucket)

    async def conditional_writes_supported(self) -> bool:
        """Probe the server: True if ``PutObject`` refuses ``If-None-Match: *`` on an existing
        key and ``If-Match`` with a wrong ETag (412), as the fencing protocol expects. Writes and
        deletes one object under ``<prefix>.starhold-probe/``. (It cannot tell whether the check
        is atomic under concurrency: see the module docstring.)"""
        return await asyncio.to_thread(self._probe_conditional_writes)

    def close(self) -> None:
        """Close the boto3 client this store created (not one that was passed in)."""
        if self._owns_client and self._s3 is not None:
            self._s3.close()
            self._s3 = None

    # ---- blocking internals (worker threads only) ----------------------------------------------
    def _client(self):
        if self._s3 is None:
            with self._client_lock:
                if self._s3 is None:
                    self._s3 = s3_client(self.endpoint_url, self.region, **self._client_kwargs)
        return self._s3

    def _key(self, room: str, name: str) -> str:
        if not room or room.startswith("/") or "//" in room:
            raise ValueError(f"invalid room key {room!r}")
        return f"{self.prefix}{room}/{name}"

    def _version_key(self, room: str, version: int) -> str:
        return self._key(room, f"snapshot-{version:08d}.sqlite")

    def _where(self, key: str | None) -> str:
        where = f"s3://{self.bucket}/{key or ''}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def _translate(self, exc: Exception, op: str, key: str | None) -> S3StorageError:
        return translate(exc, op, self._where(key), self.bucket)

    def _call(self, op: str, key: str | None, *, conflict: bool = False, missing: bool = False, **kwargs):
        """Run one client method; returns ``_CONFLICT`` (412 and kin) / ``_MISSING`` (404) when
        asked to, and raises a translated ``S3StorageError`` for anything else."""
        if key is not None:
            kwargs["Key"] = key
        try:
            return getattr(self._client(), op)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if conflict and code in CONFLICT_CODES:
                return _CONFLICT
            if missing and code in MISSING_CODES:
                return _MISSING
            raise self._translate(exc, op, key) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, op, key) from exc

    def _get_manifest(self, room: str) -> _Current | None:
        key = self._key(room, MANIFEST_NAME)
        response = self._call("get_object", key, missing=True)
        if response is _MISSING:
            return None
        try:
            raw = response["Body"].read()
        except BotoCoreError as exc:
            raise self._translate(exc, "get_object", key) from exc
        try:
            data = json.loads(raw)
            manifest = manifest_from(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise S3StorageError(f"corrupt manifest {self._where(key)}: {raw[:200]!r}") from exc
        metadata = {k.lower(): v for k, v in (response.get("Metadata") or {}).items()}
        return _Current(manifest, response["ETag"], raw, metadata.get("snapshot-etag"))

    def _list_versions(self, room: str) -> dict[int, str]:
        prefix = self._key(room, "snapshot-")
        versions: dict[int, str] = {}
        token = None
        while True:
            kwargs = {"Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", None, **kwargs)
            for item in page.get("Contents", []):
                match = _VERSION_RE.search(item["Key"])
                if match and item["Key"] == self._version_key(room, int(match.group(1))):
                    versions[int(match.group(1))] = item["Key"]
            if not page.get("IsTruncated"):
                return versions
            token = page.get("NextContinuationToken")

    def _check_epoch(self, room: str, epoch: int, current: _Current | None) -> None:
        check_epoch(room, epoch, current.manifest if current else None,
                    f" in {self._where(self._key(room, MANIFEST_NAME))}")

    def _swap_manifest(self, room: str, build):
        """Compare-and-swap the manifest: ``build(current manifest or None)`` returns (the new
        manifest, the result); it is written ``If-Match`` the ETag read (``If-None-Match: *``
        when there was none) and the round starts again when another writer got in first
        (``StaleEpochError`` from ``build`` ends it). The version object it names is kept."""
        key = self._key(room, MANIFEST_NAME)
        for _ in range(self.max_attempts):
            current = self._get_manifest(room)
            manifest, result = build(current.manifest if current else None)
            body = _encode(manifest)
            condition = {"IfMatch": current.etag} if current else {"IfNoneMatch": "*"}
            metadata = {"epoch": str(manifest.epoch)}
            if current is not None and current.snapshot_etag:
                metadata["snapshot-etag"] = current.snapshot_etag
            response = self._call("put_object", key, conflict=True, missing=current is not None, Body=body,
                                  ContentType="application/json", Metadata=metadata, **condition)
            if response is _CONFLICT or response is _MISSING:
                now = self._get_manifest(room)
                if now is not None and now.raw == body:
                    return result  # ours landed; a retry of the same request was refused
                continue
            head = self._call("head_object", key, missing=True)  # read-after-write verification
            if head is not _MISSING and _unquote(head["ETag"]) == _unquote(response["ETag"]):
                return result
        raise SnapshotConflictError(f"lost the race for {self._where(key)} {self.max_attempts} times")

    def _put_snapshot(self, room: str, version: int, source: Path, epoch: int) -> tuple[str | None, int]:
        with open(source, "rb") as body:
            size = os.fstat(body.fileno()).st_size
            response = self._call(
                "put_object",
                self._version_key(room, version),
                conflict=True,
                Body=body,
                IfNoneMatch="*",
                ContentType="application/vnd.sqlite3",
                Metadata={"epoch": str(epoch)},
            )
        if response is _CONFLICT:
            return None, size
        return response["ETag"], size

    def _delete_orphan(self, room: str, version: int, etag: str) -> None:
        key = self._version_key(room, version)
        try:
            self._call("delete_object", key, conflict=True, missing=True, IfMatch=_quote(etag))
        except StorageError as exc:
            log.warning("could not delete the orphan snapshot %s: %s", self._where(key), exc)

    def _save(self, room: str, source: Path, epoch: int, lease_until: float | None, position=None,
              log=None) -> Manifest:
        manifest_key = self._key(room, MANIFEST_NAME)
        for _ in range(self.max_attempts):
            current = self._get_manifest(room)
            self._check_epoch(room, epoch, current)
            versions = self._list_versions(room)
            version = max([current.manifest.version if current else 0, *versions]) + 1
            data_etag, size = self._put_snapshot(room, version, source, epoch)
            if data_etag is None:  # that version number was taken meanwhile: choose again
                continue
            manifest = saved_manifest(current.manifest if current else None, room, version, epoch, size,
                                      lease_until, position, log)
            body = _encode(manifest)
            condition = {"IfMatch": current.etag} if current else {"IfNoneMatch": "*"}
            response = self._call(
                "put_object",
                manifest_key,
                conflict=True,
                missing=current is not None,  # If-Match on a vanished manifest: 404 (AWS, moto)
                Body=body,
                ContentType="application/json",
                Metadata={"snapshot-etag": _unquote(data_etag), "epoch": str(epoch)},
                **condition,
            )
            if response is _CONFLICT or response is _MISSING:
                now = self._get_manifest(room)
                if now is not None and now.raw == body:
                    break  # our own write landed; a retry of the same request was refused
                self._delete_orphan(room, version, data_etag)
                self._check_epoch(room, epoch, now)
                continue
            # Read-after-write verification (also covers servers that ignore the conditions).
            head = self._call("head_object", manifest_key, missing=True)
            if head is not _MISSING and _unquote(head["ETag"]) == _unquote(response["ETag"]):
                break
            now = self._get_manifest(room)
            if now is not None and now.raw == body:
                break
            self._check_epoch(room, epoch, now)
            if now is not None and now.manifest.epoch == epoch and now.manifest.version >= version:
                return manifest  # landed; a later save or lease renewal of ours is on top of it
            continue  # replaced by an older epoch (conditions ignored): write again on top
        else:
            raise SnapshotConflictError(
                f"snapshot of room {room!r} lost the race for {self._where(manifest_key)} "
                f"{self.max_attempts} times"
            )
        self._prune(room, version)
        return manifest

    def _prune(self, room: str, version: int) -> None:
        try:
            versions = self._list_versions(room)
            kept = sorted(v for v in versions if v <= version)[-KEEP_SNAPSHOTS:]
            for old in sorted(v for v in versions if v < kept[0]):
                self._call("delete_object", versions[old], missing=True)
        except StorageError as exc:
            log.warning("pruning old snapshots of room %r failed: %s", room, exc)

    def _restore(self, room: str, dest: Path) -> Manifest | None:
        for _ in range(self.max_attempts):
            current = self._get_manifest(room)
            if current is None or current.manifest.version == 0:
                return None
            key = self._version_key(room, current.manifest.version)
            condition = {"IfMatch": _quote(current.snapshot_etag)} if current.snapshot_etag else {}
            response = self._call("get_object", key, conflict=True, missing=True, **condition)
            if response is _CONFLICT or response is _MISSING:
                continue  # pruned or replaced under us: read the manifest again
            self._download(response, key, current.manifest, dest)
            return current.manifest
        raise S3StorageError(
            f"cannot restore room {room!r}: the snapshot named by "
            f"{self._where(self._key(room, MANIFEST_NAME))} is missing or does not match it"
        )

    def _download(self, response: dict, key: str, manifest: Manifest, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".restoring")
        tmp = Path(tmp_name)
        try:
            written = 0
            with os.fdopen(fd, "wb") as out:
                try:
                    for chunk in response["Body"].iter_chunks(1 << 20):
                        out.write(chunk)
                        written += len(chunk)
                except BotoCoreError as exc:  # the stream broke (local OSErrors propagate)
                    raise self._translate(exc, "get_object", key) from exc
                out.flush()
                os.fsync(out.fileno())
            if written != manifest.size:
                raise S3StorageError(
                    f"snapshot {self._where(key)} is {written} bytes, the manifest says {manifest.size}"
                )
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _ensure_bucket(self) -> bool:
        kwargs = {}
        if self.region and self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client().create_bucket(Bucket=self.bucket, **kwargs)
            return True
        except ClientError as exc:
            if error_code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                self._call("head_bucket", None)  # BucketAlreadyExists: is it ours to use?
                return False
            raise self._translate(exc, "create_bucket", None) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "create_bucket", None) from exc

    def _probe_conditional_writes(self) -> bool:
        key = f"{self.prefix}.starhold-probe/{uuid.uuid4().hex}"
        try:
            first = self._call("put_object", key, conflict=True, Body=b"1", IfNoneMatch="*")
            if first is _CONFLICT:
                return False
            again = self._call("put_object", key, conflict=True, Body=b"2", IfNoneMatch="*")
            wrong = self._call(
                "put_object", key, conflict=True, missing=True, Body=b"3", IfMatch='"0000"'
            )
            right = self._call("put_object", key, conflict=True, Body=b"4", IfMatch=first["ETag"])
            return again is _CONFLICT and wrong is _CONFLICT and right is not _CONFLICT
        finally:
            self._call("delete_object", key, missing=True)
