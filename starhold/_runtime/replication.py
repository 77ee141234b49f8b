"""Replication of a room's commits off its node before they are acknowledged (DESIGN §5).

With a snapshot store that ``replicates`` (S3 by default), every commit that changed the room's
database is recorded as statements (``storage.sqlite_store``, the statement log) and appended to
the store as a log segment (``storage.replication_log``) **before** the output that
acknowledges it is released: the held messages of its hooks, the posts it queued, the answer
to the HTTP request or room call it served, the data channel's acknowledgement of the batch it
applied (the gateway resends unacknowledged batches to the next activation), and the ``ack``
of the ship rooms' frames (``Room.durable_mark``). So the recovery point is every acknowledged
write: a room that loses its node wakes elsewhere from its snapshot plus its log.

- The local commit happens under the input gate as before; shipping happens outside it, on
  one task per activation, in order; commits that pile up while a segment is in flight (or the
  store is down) go together in the next segment. The room keeps serving meanwhile (frames
  sent with ``allow_unconfirmed`` keep flowing): during a store outage nothing is
  acknowledged, nothing is lost, and everything is released in order when the store is back.
- Before releasing, the activation's lease must be live at the moment the segment landed
  (``starhold._runtime.lease``): a lapsed lease is renewed first, and one lost to a newer
  activation ends this one without releasing anything (the newer one seals this epoch's log
  at what it found once the lease had run out, so nothing released is missed).
- Recovery (``starhold._runtime.recovery``): a new activation that claimed the room waits out the previous
  holder's lease, then reads the manifest's log ranges; an open range (the previous holder's
  log) is sealed at its last contiguous segment. If the local file is exactly at the end of
  that chain it is used as it is; otherwise the snapshot is restored and the segments are
  replayed. The manifest then names the sealed ranges plus this activation's open log. A
  restart on the same node and file (a crashed actor, whose commits may not all be shipped)
  fences the old activation in SQLite first and then publishes a snapshot of the file, which
  supersedes the old log.
- A snapshot (periodic, every ``LOG_SNAPSHOT_SEGMENTS`` segments, and at hibernation) records
  its log position; the segments it holds are then deleted.

The model: Durable Objects release output only once a write is confirmed by replicas off the
machine (the output gate); this is the same gate with the object store as the replica.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from ..storage.base import StaleEpochError
from ..storage.replication_log import encode_segment
from .lease import sleep_until

if TYPE_CHECKING:
    from .runtime import RoomRuntime

log = logging.getLogger("starhold.room")

RETRY_FIRST = 0.05
"""Seconds before the first retry of a failed segment upload (doubling up to ``RETRY_MAX``)."""
RETRY_MAX = 2.0
"""Longest wait between retries of a segment upload, seconds."""
LOG_SNAPSHOT_SEGMENTS = 200
"""Segments shipped since the last snapshot that make the room snapshot soon (so that a
recovery replays at most about this many)."""
WARN_INTERVAL = 30.0
"""Seconds between two warnings about failing uploads of one room (one line per outage and
interval, not one per attempt)."""


class Replicator:
    """Ships the commits of ``runtime``'s activation to its store's log and releases their
    held output in order once they are durable (see the module docstring)."""

    def __init__(self, runtime: "RoomRuntime"):
        self.rt = runtime
        self.durable = runtime.storage.log_seq
        """Log position (seq) through which every commit is durable off the node."""
        self.segments_since_snapshot = 0
        self.segments_shipped = 0
        self._held: deque[tuple[int, list]] = deque()
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self._stopped = False
        self._failures = 0
        self._warned_at = -WARN_INTERVAL

    # ---- the output side --------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """Whether commits or output wait for replication."""
        return bool(self._held) or bool(self.rt.storage.unshipped)

    def after_commit(self, pending: list) -> None:
        """The hooks' held output ``pending`` was committed: release it once durable."""
        seq = self.rt.storage.log_seq
        if seq <= self.durable and not self._held:
            self.rt._release(pending)
            return
        self._held.append((seq, pending))
        self.kick()

    async def wait(self, seq: int) -> None:
        """Wait until commit ``seq`` is durable. Raises ``RoomGone``-like ``StaleEpochError``
        when the activation ended first."""
        if seq <= self.durable:
            return
        if self._stopped:
            raise StaleEpochError(f"room {self.rt.key}: the activation ended before commit {seq} was durable")
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        self.kick()
        await future

    def covered(self, seq: int) -> None:
        """A snapshot holding every commit through ``seq`` was published: they are durable."""
        unshipped = self.rt.storage.unshipped
        while unshipped and unshipped[0][0] <= seq:
            unshipped.pop(0)
        self.segments_since_snapshot = 0
        self._advance(seq)

    def _advance(self, seq: int) -> None:
        if seq <= self.durable:
            return
        self.durable = seq
        while self._held and self._held[0][0] <= seq:
            _, pending = self._held.popleft()
            self.rt._release(pending)
        if self._waiters:
            ready = [(s, f) for s, f in self._waiters if s <= seq]
            self._waiters = [(s, f) for s, f in self._waiters if s > seq]
            for _, future in ready:
                if not future.done():
                    future.set_result(None)
        self.rt.channels.notify_all()

    def stop(self) -> None:
        """The activation ended: ship nothing more; held output is dropped."""
        self._stopped = True
        self._held.clear()
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(StaleEpochError(f"room {self.rt.key}: the activation ended"))
        self._waiters = []
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    # ---- shipping ---------------------------------------------------------------------------
    def kick(self) -> None:
        """Start the shipping task if commits wait and it is not running."""
        if self._stopped or not self.rt.storage.unshipped:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._ship())

    async def _ship(self) -> None:
        rt = self.rt
        delay = RETRY_FIRST
        while not self._stopped and rt.storage.unshipped:
            commits = list(rt.storage.unshipped)
            last = commits[-1][0]
            try:
                await self._lease_live()
                await rt.snapshots.append_log(rt.key, rt.epoch, last, encode_segment(rt.epoch, commits))
                await self._lease_live()  # the segment landed while the lease was ours
            except StaleEpochError:
                log.warning("room %s: epoch %d superseded while replicating; this activation stops",
                            rt.key, rt.epoch)
                await rt._lease_lost()
                return
            except Exception as exc:
                self._failed(exc)
                await sleep_until(rt.clock, rt.clock.now() + delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if self._failures:
                log.warning("room %s: log replication resumed after %d failed attempts", rt.key, self._failures)
                self._failures = 0
            delay = RETRY_FIRST
            unshipped = rt.storage.unshipped
            while unshipped and unshipped[0][0] <= last:
                unshipped.pop(0)
            self.segments_shipped += 1
            self.segments_since_snapshot += 1
            self._advance(last)
            if self.segments_since_snapshot >= LOG_SNAPSHOT_SEGMENTS:
                rt.snapshot_soon()

    async def _lease_live(self) -> None:
        """Renew the lease if it has run out. Raises ``StaleEpochError`` when it was lost,
        ``StorageError`` when the store cannot be reached."""
        lease = self.rt.lease
        if lease is not None and self.rt.clock.now() >= lease.deadline:
            await lease.renew()

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        now = time.monotonic()
        if now - self._warned_at >= WARN_INTERVAL:
            self._warned_at = now
            log.warning("room %s: log replication failing (%d attempts so far; output waits): %s",
                        self.rt.key, self._failures, exc)
        else:
            log.debug("room %s: log replication failed again: %s", self.rt.key, exc)
