"""The activation lease: how a room activation owns its epoch in a shared snapshot store.

Why: the epoch in the room's SQLite file fences activations that share that file (a crashed
actor restarted on the same node), but two nodes each have a file of their own. So an
activation whose room has a ``SnapshotStore`` first *claims* the store's manifest
(``SnapshotStore.claim``, an atomic compare-and-swap: ``If-None-Match``/``If-Match`` on S3, a
``flock`` on a local directory): it takes epoch ``max(manifest epoch, local epoch) + 1`` and a
lease of ``LEASE_SECONDS`` recorded in the manifest, before it serves anything. Then:

- no two activations ever hold the same epoch, and a superseded one can never publish a
  snapshot (the store refuses a save whose epoch is older than the manifest's);
- the holder renews the lease every ``RENEW_INTERVAL`` seconds (outside the input gate)
  while it is in use, i.e. while events reach it (``touch``); a renewal that finds a newer
  epoch ends the activation at once (``on_lost``). An idle activation (no event for a renewal
  interval: a room with nobody awaiting hibernation, or players who send nothing) stops
  renewing and lets its lease lapse: renewals cost a manifest write each (an S3 PUT), and
  idle rooms are most rooms. Its next event renews it (``check``) before anything is
  released, so nothing is acknowledged without a live lease either way; while lapsed, a new
  activation elsewhere serves at once instead of waiting for the lease to end;
- the holder acknowledges nothing once its lease has run out: before each commit whose output
  would be released, ``check()`` renews a lapsed lease or raises ``StaleEpochError``;
- a claim that finds another holder's live lease takes the manifest at once (so the old
  holder's next renewal fails) but the new activation serves only after the old lease's end
  plus ``CLOCK_SKEW`` (``Claim.serve_at``): at no instant can two activations on different
  files acknowledge writes. The holder is identified by host, boot and database path, so a
  restart on the same node and file (already fenced by SQLite) never waits.

The leases are measured on the room's clock (wall-clock time in production, the manual clock
in tests) and assume the nodes' clocks differ by less than ``CLOCK_SKEW``. The model is
Orleans' single-activation directory with leases and Chubby-style lease fencing; Cloudflare
promises the same of a superseded Durable Object ("its writes fail").
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Awaitable, Callable

from ..storage.base import StaleEpochError
from ..storage.snapshots import Claim, SnapshotStore
from ..clock import Clock, Timer

log = logging.getLogger("starhold.room")

LEASE_SECONDS = 6.0
"""Length of an activation lease, seconds. A room that moves to another node after a crash
there serves again at most this long (plus ``CLOCK_SKEW``) after the old node's last renewal:
with Ray detecting a dead node in about 3 s (``ray_host.HEALTH_CHECK_CONFIG``) a room is back
within about 7 s of its node's loss. Each renewal is one conditional write of the manifest."""
RENEW_INTERVAL = 2.0
"""Seconds between lease renewals of an awake room (one manifest write each)."""
RETRY_INTERVAL = 1.0
"""Seconds before a renewal that failed (store unreachable) is tried again."""


def holder_id(db_path: Path) -> str:
    """Who an activation is, for the lease: ``<hostname>:<boot id>:<absolute db path>``. Two
    activations with the same holder share one SQLite file (their epochs are fenced there)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "-"
    return f"{socket.gethostname()}:{boot}:{os.path.abspath(db_path)}"


async def sleep_until(clock: Clock, when: float) -> None:
    """Wait until ``clock.now() >= when`` (a timer on ``clock``: the manual clock in tests)."""
    if clock.now() >= when:
        return
    done = asyncio.get_running_loop().create_future()

    async def wake() -> None:
        if not done.done():
            done.set_result(None)

    timer = clock.call_at(when, wake)
    try:
        await done
    finally:
        timer.cancel()


class ActivationLease:
    """The lease of one activation of room ``key`` in ``store``, held by ``holder``.

    ``acquire(at_least)`` claims (returns the ``Claim``; its manifest's epoch is the
    activation's), ``start(on_lost)`` begins the renewals, ``check()`` guards each commit,
    ``stop()`` ends the renewals, ``until()`` is the lease end a snapshot save may record.
    """

    def __init__(self, store: SnapshotStore, key: str, holder: str, clock: Clock, *,
                 lease: float = LEASE_SECONDS, renew_interval: float = RENEW_INTERVAL):
        self.store = store
        self.key = key
        self.holder = holder
        self.clock = clock
        self.lease = lease
        self.renew_interval = renew_interval
        self.epoch = 0
        self.deadline = 0.0
        """When the lease runs out (seconds, ``clock``); nothing is acknowledged after it."""
        self._timer: Timer | None = None
        self._on_lost: Callable[[], Awaitable[None]] | None = None
        self._failures = 0  # renewals failed in a row (the store unreachable)
        self._used = False  # an event came since the last renewal

    async def acquire(self, at_least: int, open_log: bool = False) -> Claim:
        """Claim the room (see the module docstring; ``open_log``: see ``storage.snapshots.claimed``).
        Raises ``StorageError`` when the store cannot be reached (the activation must not start)."""
        claim = await self.store.claim(self.key, at_least=at_least, holder=self.holder,
                                       now=self.clock.now(), lease=self.lease, open_log=open_log)
        self.epoch = claim.manifest.epoch
        self.deadline = claim.manifest.lease_until
        return claim

    def until(self) -> float:
        """A lease end for a save made now (a save renews the lease)."""
        return self.clock.now() + self.lease

    def start(self, on_lost: Callable[[], Awaitable[None]]) -> None:
        """Renew every ``renew_interval`` seconds; ``on_lost`` is awaited when a newer
        activation took the room."""
        self._on_lost = on_lost
        self._arm(self.renew_interval)

    def touch(self) -> None:
        """An event reached the activation: keep renewing (re-arm renewals that stopped while
        it was idle)."""
        self._used = True
        if self._timer is None and self._on_lost is not None:
            self._arm(self.renew_interval)

    def stop(self) -> None:
        """No more renewals (the activation ended)."""
        self._on_lost = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, delay: float) -> None:
        if self._on_lost is not None:
            self._timer = self.clock.call_at(self.clock.now() + delay, self._tick)

    async def renew(self) -> None:
        """Extend the lease now. Raises ``StaleEpochError`` when it was lost to a newer
        activation, ``StorageError`` when the store cannot be reached."""
        until = self.until()
        await self.store.renew(self.key, self.epoch, self.holder, until)
        self.deadline = max(self.deadline, until)

    def extended(self, until: float) -> None:
        """A save recorded ``until`` as the lease end."""
        self.deadline = max(self.deadline, until)

    async def check(self) -> None:
        """Before acknowledging: renew a lease that has run out. Raises ``StaleEpochError``
        when it cannot be renewed (lost, or the store is unreachable)."""
        if self.clock.now() < self.deadline:
            return
        try:
            await self.renew()
        except StaleEpochError:
            raise
        except Exception as exc:
            raise StaleEpochError(f"room {self.key!r}: the lease of epoch {self.epoch} ran out and "
                                  f"cannot be renewed: {exc}") from exc

    async def _tick(self) -> None:
        self._timer = None
        if self._on_lost is None:
            return
        if not self._used and not self._failures:  # idle: let the lease lapse until the next event
            return
        self._used = False
        try:
            await self.renew()
        except StaleEpochError:
            on_lost, self._on_lost = self._on_lost, None
            if on_lost is None:
                return  # stopped meanwhile: the activation hibernated (its save released the lease)
            log.warning("room %s: lease of epoch %d lost to a newer activation", self.key, self.epoch)
            await on_lost()
            return
        except Exception as exc:
            self._failures += 1
            # One warning per outage (retries are logged at debug level): a store that is down
            # must not fill the log with a line a second from every awake room.
            log.log(logging.WARNING if self._failures == 1 else logging.DEBUG,
                    "room %s: lease renewal failed (%s); retrying every %g s until the lease ends at %.3f",
                    self.key, exc, RETRY_INTERVAL, self.deadline)
            self._arm(RETRY_INTERVAL)
            return
        if self._failures:
            log.warning("room %s: lease renewed after %d failed attempts", self.key, self._failures)
            self._failures = 0
        self._arm(self.renew_interval)
