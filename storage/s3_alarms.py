"""The alarm scheduler's index in S3 (``starhold._runtime.scheduler.AlarmIndex``), so that a
scheduler restarted on any node finds the alarms of every sleeping room.

One empty object per entry: ``<prefix>_alarms/<kind>/<room_id>/<due>`` where ``<due>`` is
the due time in integer microseconds (seconds on the scheduler's clock, Unix time on Ray)
written as 20 digits. ``put`` writes the object, ``delete`` removes exactly one entry's object,
``open`` lists the folder. Putting the due time in the key makes every write and delete name
one entry, so no conditional request is needed: a new registration never loses to the delete
of an older one. Room kinds and ids never contain ``/`` (``starhold._runtime.paths``).
"""

from __future__ import annotations

import asyncio

from .cluster_secrets import S3Objects

__all__ = ["ALARMS_PREFIX", "S3AlarmIndex"]

ALARMS_PREFIX = "_alarms/"
"""Folder of the alarm index below the snapshot prefix."""


def _due_key(at: float) -> str:
    return f"{max(0, round(at * 1_000_000)):020d}"


class S3AlarmIndex:
    """``AlarmIndex`` on ``S3Objects`` (see the module docstring); boto3 runs in threads.
    Due times are kept to the microsecond. Raises ``storage.s3_client.S3StorageError``."""

    def __init__(self, objects: S3Objects):
        self.objects = objects

    @classmethod
    def from_spec(cls, spec: dict) -> "S3AlarmIndex":
        """The index in the bucket of the S3 snapshot spec ``spec``, under its prefix."""
        return cls(S3Objects(spec, ALARMS_PREFIX))

    @staticmethod
    def key(kind: str, room_id: str, at: float) -> str:
        """The object key of an entry, relative to the folder."""
        return f"{kind}/{room_id}/{_due_key(at)}"

    async def open(self) -> list[tuple[str, str, float]]:
        def read():
            entries = []
            for key in self.objects.keys():
                kind, _, rest = key.partition("/")
                room_id, _, due = rest.rpartition("/")
                if kind and room_id and due.isdigit():
                    entries.append((kind, room_id, int(due) / 1_000_000))
            return entries
        return await asyncio.to_thread(read)

    async def put(self, kind: str, room_id: str, at: float) -> None:
        await asyncio.to_thread(self.objects.put, self.key(kind, room_id, at), b"")

    async def delete(self, kind: str, room_id: str, at: float) -> None:
        await asyncio.to_thread(self.objects.delete, self.key(kind, room_id, at))

    async def close(self) -> None:
        await asyncio.to_thread(self.objects.close)
