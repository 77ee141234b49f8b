"""The statement log of rooms in S3 (``storage.replication_log`` describes it): a mixin of
``S3SnapshotStore`` that uses its client helpers (``_call``, ``_key``, ``_where``). Every S3
call runs in a worker thread (``asyncio.to_thread``): boto3 blocks.

Segments are written with ``If-None-Match: *``: an object, once there, never changes; a
retried write whose first attempt landed finds its own bytes there and succeeds.
"""

from __future__ import annotations

import asyncio

from botocore.exceptions import BotoCoreError

from .base import StorageError
from .s3_client import CONFLICT, MISSING
from .replication_log import parse_segment_name, segment_name

_DELETE_BATCH = 1000
"""Keys per ``DeleteObjects`` request (the S3 maximum)."""


class S3Log:
    """``append_log``, ``list_log``, ``read_log``, ``prune_log`` on S3 (see
    ``storage.replication_log.LocalLog`` for their contracts)."""

    def _segment_key(self, room: str, epoch: int, last: int) -> str:
        return self._key(room, "log/" + segment_name(epoch, last))

    async def append_log(self, room: str, epoch: int, last: int, body: bytes) -> None:
        """Store one segment. Raises ``StorageError`` (``S3StorageError``) when S3 fails, or
        when another body exists under the name."""
        await asyncio.to_thread(self._append_log, room, int(epoch), int(last), body)

    def _append_log(self, room: str, epoch: int, last: int, body: bytes) -> None:
        key = self._segment_key(room, epoch, last)
        response = self._call("put_object", key, conflict=True, Body=body, IfNoneMatch="*",
                              ContentType="application/msgpack")
        if response is CONFLICT:
            if self._read(key) != body:
                raise StorageError(f"log segment {self._where(key)} exists with other contents")

    async def list_log(self, room: str, epoch: int, after: int) -> list[int]:
        return await asyncio.to_thread(self._list_log, room, int(epoch), int(after))

    def _list_log(self, room: str, epoch: int, after: int) -> list[int]:
        prefix = self._key(room, f"log/{epoch:010d}/")
        lasts = []
        for key in self._list_keys(prefix, start_after=prefix + f"{after:012d}"):
            parsed = parse_segment_name(key[len(self._key(room, "log/")):])
            if parsed is not None and parsed[0] == epoch and parsed[1] > after:
                lasts.append(parsed[1])
        return sorted(lasts)

    def _list_keys(self, prefix: str, start_after: str | None = None) -> list[str]:
        keys, token = [], None
        while True:
            kwargs = {"Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            elif start_after:
                kwargs["StartAfter"] = start_after
            page = self._call("list_objects_v2", None, **kwargs)
            keys.extend(item["Key"] for item in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return keys
            token = page.get("NextContinuationToken")

    async def read_log(self, room: str, epoch: int, last: int) -> bytes:
        """The body of one segment. Raises ``FileNotFoundError`` when it does not exist,
        ``StorageError`` when S3 fails."""
        return await asyncio.to_thread(self._read_segment, room, int(epoch), int(last))

    def _read_segment(self, room: str, epoch: int, last: int) -> bytes:
        key = self._segment_key(room, epoch, last)
        body = self._read(key)
        if body is None:
            raise FileNotFoundError(self._where(key))
        return body

    def _read(self, key: str) -> bytes | None:
        response = self._call("get_object", key, missing=True)
        if response is MISSING:
            return None
        try:
            return response["Body"].read()
        except BotoCoreError as exc:
            raise self._translate(exc, "get_object", key) from exc

    async def prune_log(self, room: str, through: tuple[int, int]) -> int:
        return await asyncio.to_thread(self._prune_log, room, (int(through[0]), int(through[1])))

    def _prune_log(self, room: str, through: tuple[int, int]) -> int:
        base = self._key(room, "log/")
        doomed = [key for key in self._list_keys(base)
                  if (parsed := parse_segment_name(key[len(base):])) is not None and parsed <= through]
        for i in range(0, len(doomed), _DELETE_BATCH):
            batch = doomed[i:i + _DELETE_BATCH]
            self._call("delete_objects", None, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        return len(doomed)
