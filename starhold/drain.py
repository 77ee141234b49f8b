"""``starhold drain NODE``: move every room off one Ray node, players keeping their sockets.

Steps (``drain_node``):

1. **Stop placement**: the node is marked draining with Ray's own drain request (GCS
   ``DrainNode``, reason ``PREEMPTION``, no deadline: what ``ray drain-node`` sends), so Ray
   places no new actor there, and the namespace's host pool places no room on the node's
   hosts and ends its empty ones (``HostPool.drain``); rooms already there keep running.
   Refused when no other alive node that is not draining would remain (e.g. the head node of
   a one-node cluster).
   Ray cannot undo a drain: to use the node again, restart its raylet (``ray stop`` then
   ``ray start`` on it).
2. **List its rooms**: the awake rooms of the namespace whose host runs on that node (from
   the host pool: ``HostPool.rooms_on``).
3. **Move each room**, ``parallel`` at a time, rooms with the most connections first
   (``move_room``): ``RoomHandle.migrate`` hibernates
   it (connections saved, final snapshot, lease released) telling each gateway holding its
   sockets ``("moved",)``, then the room is woken at once through a ``RayDirectory`` built from
   the config its host was created with, and the pool places it on a host on another node.
   The gateways reopen their channels as soon as they read ``("moved",)``: their sockets stay open, the
   inputs sent meanwhile wait in the gateway and go to the new activation, and players get
   frames again as soon as it runs.
4. Rooms that appeared on the node meanwhile (an activation scheduled there before the drain
   took effect) are moved in further rounds, until none is left or ``deadline`` passes.

The gap a player sees is the room's hibernation plus the new activation's start on a host
that is already running (the pool keeps spare hosts on the other nodes): opening its SQLite
file and restoring the snapshot, not a new process (tests/test_drain.py prints the figures).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from ._runtime.handle import RoomDirectory, RoomGone, RoomHandle

log = logging.getLogger("starhold.drain")

WAKER = "starhold-drain"
"""The gateway id the drain wakes rooms with (an empty batch, as the alarm scheduler does)."""
WAKE_RETRY = 0.02
"""Seconds between attempts to wake a room whose old activation still holds its name."""
ROUNDS = 3
"""Times the node's room list is read (and its rooms moved) before the drain ends."""
LEFT_CHECKS, LEFT_CHECK_INTERVAL = 10, 0.2
"""Checks (and seconds between them) that no room actor is left on the node at the end."""


class DrainError(Exception):
    """The drain cannot start: unknown or ambiguous node, nowhere to move its rooms, or Ray
    refused the drain request. The message says which."""


@dataclass
class RoomMove:
    """How moving one room went. Seconds are wall-clock: ``hibernate_seconds`` from the
    ``migrate`` call to its return (final snapshot included), ``wake_seconds`` from then until
    the new activation answered, ``seconds`` the sum (the gap its players see, less the
    gateway's reconnection, a few milliseconds)."""

    room: str
    ok: bool
    seconds: float = 0.0
    hibernate_seconds: float = 0.0
    wake_seconds: float = 0.0
    connections: int = 0
    node: str | None = None
    error: str | None = None

    def line(self) -> str:
        """One line for the operator: room, outcome, times, where it went."""
        if not self.ok:
            return f"{self.room}: FAILED after {self.seconds:.2f} s: {self.error}"
        where = f" -> node {self.node[:12]}" if self.node else ""
        return (f"{self.room}: moved in {self.seconds:.2f} s (hibernate {self.hibernate_seconds:.2f} s, "
                f"wake {self.wake_seconds:.2f} s), {self.connections} socket(s) held{where}")


@dataclass
class DrainReport:
    """The outcome of ``drain_node``: ``node`` (hex id), ``moves`` (one per room),
    ``seconds`` (the whole drain) and ``left`` (room actors still on the node at the end)."""

    node: str
    moves: list[RoomMove] = field(default_factory=list)
    seconds: float = 0.0
    left: list[str] = field(default_factory=list)

    def failed(self) -> list[RoomMove]:
        """The rooms whose last attempt failed."""
        last = {m.room: m for m in self.moves}
        return [m for m in last.values() if not m.ok]

    @property
    def ok(self) -> bool:
        """No room's last attempt failed and none is left on the node."""
        return not self.failed() and not self.left

    def summary(self) -> str:
        """One line: rooms moved and failed, gap figures, time taken, rooms left."""
        moved = [m for m in self.moves if m.ok]
        gaps = sorted(m.seconds for m in moved)
        figures = (f"; gap median {gaps[len(gaps) // 2]:.2f} s, max {gaps[-1]:.2f} s" if gaps else "")
        left = f"; {len(self.left)} room(s) still on the node: {', '.join(self.left)}" if self.left else ""
        return (f"node {self.node[:12]}: {len(moved)} room(s) moved, "
                f"{len(self.failed())} failed{figures}, in {self.seconds:.1f} s{left}")


# ---- one room ---------------------------------------------------------------------------
async def move_room(handle: RoomHandle, kind: str, room_id: str,
                    directory: RoomDirectory | Callable[[dict], RoomDirectory], *,
                    timeout: float = 30.0) -> RoomMove:
    """Move one room: ``handle.migrate()`` (hibernate, gateways told ``("moved",)``), then wake
    it through ``directory`` (or ``directory(migrate's result)``), retrying every
    ``WAKE_RETRY`` s while the old activation still answers ``RoomGone``, for up to ``timeout``
    seconds. A room whose activation was already ending (``RoomGone``, or ``migrated`` False)
    is woken too: on Ray, ``RoomGone`` may also be a migration whose reply was lost when the
    actor ended (``RoomMove.connections`` is then unknown: 0). Never raises for the room's
    errors: they are in the returned ``RoomMove``."""
    room = f"{kind}/{room_id}"
    started = time.perf_counter()
    try:
        info = await handle.migrate()
    except RoomGone:
        info = {}
    except Exception as exc:  # noqa: BLE001 - reported per room; the room goes on serving here
        return RoomMove(room, False, seconds=time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    hibernated = time.perf_counter()
    move = RoomMove(room, True, hibernate_seconds=hibernated - started, connections=info.get("connections", 0))
    try:
        target = directory if hasattr(directory, "get") else directory(info)
        new = await asyncio.wait_for(_wake(target, kind, room_id), timeout)
        stats = await new.stats()
    except Exception as exc:  # noqa: BLE001 - asleep with a snapshot: the next use wakes it
        move.ok, move.error = False, f"not woken: {type(exc).__name__}: {exc}"
    else:
        move.node = stats.get("node")
    move.wake_seconds = time.perf_counter() - hibernated
    move.seconds = time.perf_counter() - started
    return move


async def _wake(directory: RoomDirectory, kind: str, room_id: str) -> RoomHandle:
    """Get-or-create the room and run an empty batch through it (which starts it); retried
    while the directory still hands out the ending activation."""
    while True:
        handle = await directory.get(kind, room_id)
        try:
            await handle.send_batch(WAKER, [])
            return handle
        except RoomGone:
            await asyncio.sleep(WAKE_RETRY)


# ---- Ray ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeInfo:
    """An alive Ray node: ``id`` (hex), ``ip``, ``head`` and ``draining``."""

    id: str
    ip: str
    head: bool
    draining: bool


def resolve_node(nodes: list[NodeInfo], spec: str) -> NodeInfo:
    """The node ``spec`` names among the alive ``nodes``: a node id (hex; any unique prefix)
    or a node IP address shared by no other node. Raises ``DrainError`` when none or several
    match."""
    spec = spec.strip().lower()
    by_ip = [n for n in nodes if n.ip == spec]
    matches = by_ip or [n for n in nodes if spec and n.id.startswith(spec)]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(f"{n.id} ({n.ip}{', head' if n.head else ''})" for n in nodes)
    if not matches:
        raise DrainError(f"no alive Ray node matches {spec!r}; alive nodes: {listing}")
    raise DrainError(f"{spec!r} matches {len(matches)} nodes: give more of the node id; alive nodes: {listing}")


def _gcs_client():
    import ray

    return ray._private.worker.global_worker.gcs_client


def cluster_nodes() -> list[NodeInfo]:
    """The alive nodes of the connected Ray cluster (blocking: a GCS call)."""
    from ray.core.generated import gcs_pb2

    gcs = _gcs_client()
    draining = set(gcs.get_draining_nodes())
    return [NodeInfo(node_id.hex(), info.node_manager_address, info.is_head_node, node_id.hex() in draining)
            for node_id, info in gcs.get_all_node_info(timeout=30).items()
            if info.state == gcs_pb2.GcsNodeInfo.GcsNodeState.ALIVE]


def mark_draining(node: NodeInfo, reason: str = "starhold drain") -> None:
    """Ask Ray to place nothing new on ``node`` (GCS ``DrainNode``, reason ``PREEMPTION``, no
    deadline; what ``ray drain-node`` sends). Blocking. Raises ``DrainError`` when refused."""
    from ray.core.generated import autoscaler_pb2

    accepted, why = _gcs_client().drain_node(
        node.id, autoscaler_pb2.DrainNodeReason.Value("DRAIN_NODE_REASON_PREEMPTION"), reason, 0)
    if not accepted:
        raise DrainError(f"Ray refused to drain node {node.id}: {why}")


async def rooms_on_node(node_id: str, namespace: str) -> list[tuple[str, str]]:
    """``(kind, room_id)`` of the awake rooms of ``namespace`` whose host runs on node
    ``node_id`` (hex), from the namespace's host pool (none when it has no pool)."""
    pool = await asyncio.to_thread(_pool, namespace)
    return [] if pool is None else [tuple(key) for key in await pool.rooms_on.remote(node_id)]


def _pool(namespace: str):
    """The namespace's host pool actor, or None (blocking)."""
    import ray
    from ._runtime.host_pool import POOL_NAME

    try:
        return ray.get_actor(POOL_NAME, namespace=namespace)
    except ValueError:
        return None


async def drain_node(node: str, *, namespace: str = "starhold", deadline: float = 300.0, parallel: int = 2,
                     directory: RoomDirectory | None = None, out: Callable[[str], None] | None = print,
                     ) -> DrainReport:
    """Drain Ray node ``node`` (hex id, a unique prefix of it, or its IP) of the rooms of
    ``namespace``: see the module docstring. Needs ``ray.init()`` done (on the cluster).

    ``parallel``: rooms moved at once; ``deadline``: seconds after which no further room is
    started (those not moved stay on the node, listed in ``DrainReport.left``); ``directory``:
    wakes the moved rooms (default: a ``RayDirectory`` built from each room's own config);
    ``out``: gets a line per room as it is moved and the summary (None: quiet).
    Raises ``DrainError`` before anything is moved when the node is unknown or ambiguous, when
    no other alive node that is not draining exists, or when Ray refuses the drain."""
    from ._runtime.ray_host import RayDirectory, RayRoomHandle

    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    started = time.perf_counter()
    nodes = await asyncio.to_thread(cluster_nodes)
    target = resolve_node(nodes, node)
    if not any(n.id != target.id and not n.draining for n in nodes):
        what = "the head node and the only node" if target.head and len(nodes) == 1 else "its rooms"
        raise DrainError(f"cannot drain node {target.id} ({what}): no other alive node that is not draining "
                         "would take its rooms")
    await asyncio.to_thread(mark_draining, target)
    pool = await asyncio.to_thread(_pool, namespace)
    if pool is not None:  # no room is placed on the node's hosts any more; its spares end
        await pool.drain.remote(target.id)
    report = DrainReport(target.id)
    say = out or (lambda line: None)
    say(f"node {target.id} ({target.ip}{', head' if target.head else ''}) draining: Ray places nothing new there")

    directories: dict[str, RayDirectory] = {}

    def wake_directory(info: dict) -> RoomDirectory:
        if directory is not None:
            return directory
        config = info["config"]
        ns = config.get("namespace", namespace)
        if ns not in directories:
            directories[ns] = RayDirectory(config, ns)
        return directories[ns]

    slots = asyncio.Semaphore(parallel)
    give_up = time.monotonic() + deadline

    async def connections(kind: str, room_id: str) -> tuple[RayRoomHandle, int] | None:
        """The room's handle and its connection count; None once it is gone."""
        try:
            found = await pool.lookup.remote(kind, room_id)
            if found is None:
                return None
            handle = RayRoomHandle(found[1], kind, room_id, found[0])
            return handle, int((await handle.stats()).get("connections") or 0)
        except RoomGone:  # hibernated meanwhile
            return None

    async def move(handle: RayRoomHandle) -> None:
        async with slots:
            if time.monotonic() >= give_up:
                return
            result = await move_room(handle, handle.kind, handle.room_id, wake_directory,
                                     timeout=max(1.0, give_up - time.monotonic()))
            report.moves.append(result)
            say(result.line())

    for _ in range(ROUNDS):
        rooms = await rooms_on_node(target.id, namespace)
        if not rooms or time.monotonic() >= give_up:
            break
        # Rooms with players first (most first): they are the ones whose players wait.
        found = [r for r in await asyncio.gather(*(connections(k, i) for k, i in rooms)) if r is not None]
        found.sort(key=lambda r: -r[1])
        await asyncio.gather(*(move(handle) for handle, _ in found))
    for _ in range(LEFT_CHECKS):  # an ending activation lives on for a moment after it hibernated
        report.left = [f"{k}/{r}" for k, r in await rooms_on_node(target.id, namespace)]
        if not report.left:
            break
        await asyncio.sleep(LEFT_CHECK_INTERVAL)
    report.seconds = time.perf_counter() - started
    say(report.summary())
    return report
