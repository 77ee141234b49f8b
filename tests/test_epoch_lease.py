"""The epoch fence across nodes (issue 12 §1): the same room activated on two nodes (two data
directories) that share one snapshot store, a local directory or S3 (SeaweedFS). An activation
claims its epoch and lease in the store's manifest before it serves; two activations never hold
the same epoch; a superseded one can neither publish a snapshot nor acknowledge a write once the
newer one serves; the next activation anywhere sees the newer one's acknowledged data.

Each node has a clock of its own (a paused or partitioned process sees time only when it runs
again); they start equal."""

from __future__ import annotations

import asyncio
import collections
import logging

import msgpack
import pytest

from starhold.clock import ManualClock
from starhold.protocol import ClientMessage
from starhold.rooms.examples import CounterRoom
from starhold._runtime.events import Connect, Message
from starhold._runtime.handle import RoomGone
from starhold._runtime.lease import LEASE_SECONDS, RENEW_INTERVAL
from starhold._runtime.runtime import RoomRuntime
from starhold.storage.base import StaleEpochError
from starhold.storage.snapshots import CLOCK_SKEW, LocalDirSnapshotStore

GW = "gw-lease"
KEY = "counter/c"
START = 1_800_000_000.0


def watch_claims(store):
    """Wrap ``store.claim`` so that ``store.claimed[epoch]`` (an ``asyncio.Event``) is set when
    the claim of ``epoch`` has landed: tests wait for that event, not for a time."""
    store.claimed = collections.defaultdict(asyncio.Event)
    real = store.claim

    async def claim(*args, **kwargs):
        result = await real(*args, **kwargs)
        store.claimed[result.manifest.epoch].set()
        return result

    store.claim = claim
    return store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    """The shared snapshot store: a local directory, or a fresh bucket on SeaweedFS."""
    if request.param == "local":
        return watch_claims(LocalDirSnapshotStore(tmp_path / "shared"))
    return watch_claims(request.getfixturevalue("s3_store"))


class Node:
    """One activation of the counter room on a node of its own (data dir, clock)."""

    def __init__(self, tmp_path, store, name: str):
        self.clock = ManualClock(START)
        self.runtime = RoomRuntime(CounterRoom, "c", {}, db_path=tmp_path / name / "c.sqlite", clock=self.clock,
                                   snapshots=store, snapshot_interval=None, idle_timeout=3600.0)
        self.acked: list[int] = []

    async def start(self) -> "Node":
        await self.runtime.start()
        await self.runtime.dispatch(GW, [Connect("p", {}, 1, {"player": "p"})])
        return self

    async def send(self, count: int = 1) -> None:
        """Send ``count`` messages; the counts released to the gateway are the acknowledged ones."""
        for _ in range(count):
            await self.runtime.dispatch(GW, [Message("p", ClientMessage("inc", 1, {}))])
            # With S3 the commit is acknowledged once replicated to the room's log.
            await self.runtime._until_durable(self.runtime.storage.log_seq)
        for item in self.runtime.take_output(GW):
            if item[0] == "send":
                self.acked.append(msgpack.unpackb(item[2])["count"])

    async def catch_up(self, other: "Node") -> None:
        """This node's process runs again: its clock shows the time ``other`` shows."""
        await self.clock.advance(max(0.0, other.clock.now() - self.clock.now()))


async def manifest_epoch(store, epoch: int) -> None:
    """Wait until the claim of ``epoch`` has landed in the manifest."""
    await store.claimed[epoch].wait()
    assert (await store.latest(KEY)).epoch == epoch


async def serve(node: Node, store, starting: asyncio.Task) -> None:
    """Let ``node``'s clock reach the time its claim may serve at (the previous holder's lease
    end plus ``CLOCK_SKEW``) and wait for its start to finish."""
    claimed = await store.latest(KEY)
    await node.clock.advance(max(0.0, claimed.lease_until - LEASE_SECONDS - node.clock.now()))
    await starting


async def count_on_a_new_node(tmp_path, store, name: str = "third") -> int:
    third = await Node(tmp_path, store, name).start()
    count = third.runtime.room.count
    await third.runtime.hibernate()
    return count


async def superseded(node: Node) -> None:
    """``node`` acknowledges nothing more and cannot publish."""
    with pytest.raises(RoomGone):
        await node.send()
    with pytest.raises(StaleEpochError):
        await node.runtime.snapshots.save(KEY, node.runtime.db_path, node.runtime.epoch)


async def test_without_a_manifest_two_nodes_never_share_an_epoch(tmp_path, store):
    a = await Node(tmp_path, store, "a").start()
    assert a.runtime.epoch == 1 and (await store.latest(KEY)).epoch == 1
    await a.send(3)
    assert a.acked == [1, 2, 3]

    b = Node(tmp_path, store, "b")
    starting = asyncio.create_task(b.start())
    await manifest_epoch(store, 2)  # b claimed epoch 2 at once...
    assert not starting.done()  # ...but serves only after a's lease ran out
    await a.clock.advance(RENEW_INTERVAL)  # a's renewal finds epoch 2: a stops
    assert a.runtime.state == "fenced"
    await superseded(a)
    await b.clock.advance(LEASE_SECONDS + CLOCK_SKEW)
    await starting
    # a never published a snapshot: with a local directory its acknowledged writes stay in its
    # own file; S3 replicates: every write a acknowledged is in its log, which b replays.
    before = 3 if store.replicates else 0
    assert b.runtime.epoch == 2 and b.runtime.room.count == before
    await b.send(5)
    assert b.acked == list(range(before + 1, before + 6))
    await b.runtime.hibernate()
    assert await count_on_a_new_node(tmp_path, store) == before + 5


async def test_with_a_manifest_the_node_waking_from_its_own_file_is_fenced(tmp_path, store):
    first = await Node(tmp_path, store, "a").start()
    await first.send(2)
    await first.runtime.hibernate()  # manifest: epoch 1, version 1, lease released
    again = await Node(tmp_path, store, "a").start()  # node a wakes from its own file
    assert again.runtime.epoch == 2 and (await store.latest(KEY)).epoch == 2
    other = Node(tmp_path, store, "b")  # node b restores from the store
    starting = asyncio.create_task(other.start())
    await manifest_epoch(store, 3)
    await again.send(2)  # a still holds its lease: acknowledged, kept in a's own file
    await again.clock.advance(RENEW_INTERVAL)
    await superseded(again)
    await other.clock.advance(LEASE_SECONDS + CLOCK_SKEW)
    await starting
    # The published snapshot, plus (S3) the writes a acknowledged before its lease ended.
    assert other.runtime.epoch == 3 and other.runtime.room.count == (4 if store.replicates else 2)
    await other.send(2)
    await other.runtime.hibernate()
    assert await count_on_a_new_node(tmp_path, store) == (6 if store.replicates else 4)


async def test_a_paused_zombie_wakes_after_the_newer_one_hibernated(tmp_path, store):
    """The zombie saw no time pass (a paused process): when it runs again, after the newer
    activation served and hibernated, its lease has run out and cannot be renewed."""
    zombie = await Node(tmp_path, store, "a").start()
    await zombie.send(1)
    await zombie.runtime.snapshot()  # a periodic snapshot: manifest version 1
    heir = Node(tmp_path, store, "b")
    starting = asyncio.create_task(heir.start())
    await manifest_epoch(store, 2)
    await heir.clock.advance(LEASE_SECONDS + CLOCK_SKEW)
    await starting
    await heir.send(3)
    assert heir.acked == [2, 3, 4]
    await heir.runtime.hibernate()
    zombie.clock._now = heir.clock.now()  # resumes; no timer ran while it was paused
    await superseded(zombie)
    assert zombie.runtime.state == "fenced"
    assert await count_on_a_new_node(tmp_path, store) == 4


async def test_a_zombie_cannot_snapshot_periodically_or_on_hibernation(tmp_path, store):
    zombie = await Node(tmp_path, store, "a").start()
    await zombie.send(1)
    heir = Node(tmp_path, store, "b")
    starting = asyncio.create_task(heir.start())
    await manifest_epoch(store, 2)
    await zombie.runtime.snapshot()  # periodic: refused, the zombie stops
    assert zombie.runtime.state == "fenced"
    assert (await store.latest(KEY)).version == 0
    await heir.clock.advance(LEASE_SECONDS + CLOCK_SKEW)
    await starting
    await heir.send(1)

    late = Node(tmp_path, store, "d")  # a third activation claims while the heir serves
    starting = asyncio.create_task(late.start())
    await manifest_epoch(store, 3)
    assert await heir.runtime.hibernate() is False  # its snapshot is refused: it stops instead
    assert heir.runtime.state == "fenced"
    await serve(late, store, starting)
    # Neither superseded activation published a snapshot; with S3 their acknowledged writes are
    # in their logs (the zombie's one, then the heir's), which the late one replays.
    assert late.runtime.room.count == (2 if store.replicates else 0)
    await late.runtime.hibernate()


async def test_a_restart_on_the_same_file_does_not_wait(tmp_path, store):
    """A crashed actor restarted on the same node and file is fenced by SQLite already: the
    new activation claims and serves at once, without waiting for the old lease."""
    old = await Node(tmp_path, store, "a").start()
    await old.send(2)
    await old.runtime.crash()
    new = await Node(tmp_path, store, "a").start()  # would block on the manual clock if it waited
    assert new.runtime.epoch == 2 and new.runtime.room.count == 2
    await new.runtime.hibernate()


async def test_a_lease_that_cannot_be_renewed_acknowledges_nothing(tmp_path, caplog):
    """The store is unreachable past the lease's end: the activation stops rather than
    acknowledge writes that a newer activation elsewhere could not see. The outage is logged
    once, not at every retry."""

    class Unreachable(LocalDirSnapshotStore):
        down = False

        async def renew(self, *args, **kwargs):
            if self.down:
                raise OSError("store unreachable")
            return await super().renew(*args, **kwargs)

    caplog.set_level(logging.DEBUG, logger="starhold.room")
    store = Unreachable(tmp_path / "shared")
    node = await Node(tmp_path, store, "a").start()
    store.down = True
    await node.clock.advance(LEASE_SECONDS - 1)  # renewals fail; the lease still holds
    await node.send(1)
    assert node.acked == [1]
    await node.clock.advance(2)
    with pytest.raises(RoomGone):
        await node.send(1)
    assert node.acked == [1] and node.runtime.state == "fenced"
    failures = [r for r in caplog.records if "lease renewal failed" in r.getMessage()]
    assert len(failures) > 5 and [r.levelname for r in failures].count("WARNING") == 1


async def test_a_renewal_racing_with_hibernation_does_not_hold_the_room(tmp_path, store):
    """Hibernation releases the lease; a renewal that lands after it is refused, so the next
    activation on another node serves at once."""
    node = await Node(tmp_path, store, "a").start()
    epoch, holder = node.runtime.epoch, node.runtime.lease.holder
    await node.runtime.hibernate()
    assert (await store.latest(KEY)).lease_until == 0
    with pytest.raises(StaleEpochError):
        await store.renew(KEY, epoch, holder, node.clock.now() + LEASE_SECONDS)
    other = await Node(tmp_path, store, "b").start()  # would block on the manual clock if it waited
    assert other.runtime.epoch == 2
    await other.runtime.hibernate()


async def test_an_idle_activation_lets_its_lease_lapse_and_its_next_event_renews_it(tmp_path, store):
    """Renewals cost a manifest write each (an S3 PUT): an activation that gets no event for a
    renewal interval stops renewing. Nothing is acknowledged on a lapsed lease: the next event
    renews it first, or, when a newer activation took the room meanwhile (at once: nobody
    holds the lease), finds it superseded."""
    a = await Node(tmp_path, store, "a").start()
    await a.send(1)
    await a.clock.advance(RENEW_INTERVAL)  # the renewal after the events
    renewed = (await store.latest(KEY)).lease_until
    await a.clock.advance(LEASE_SECONDS + 2 * RENEW_INTERVAL)  # idle: no renewal
    assert (await store.latest(KEY)).lease_until == renewed < a.clock.now()
    await a.send(1)  # renews before acknowledging
    assert a.acked == [1, 2] and (await store.latest(KEY)).lease_until > a.clock.now()

    await a.clock.advance(LEASE_SECONDS + 2 * RENEW_INTERVAL)  # idle again: lapsed
    b = Node(tmp_path, store, "b")
    await b.catch_up(a)
    await asyncio.wait_for(b.start(), 30)  # serves at once: the lease had lapsed
    assert b.runtime.epoch == a.runtime.epoch + 1
    with pytest.raises(RoomGone):
        await a.send(1)
    assert a.acked == [1, 2] and a.runtime.state == "fenced"
    await b.send(1)
    assert b.acked == ([3] if store.replicates else [1])
