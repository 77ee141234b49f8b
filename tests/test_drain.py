"""``starhold drain``: rooms hibernated with ``("moved",)`` and woken elsewhere while the
gateways hold their players' sockets.

In-process (no Ray): a solar system with three players behind a real gateway is migrated
while they fly and send orders; their sockets stay open, frames come back, seats and orders
are intact. The gateway alone reopens a room it was told moved (nothing else wakes it).
On Ray (``test_drain_a_worker_node_under_play``): see its docstring."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import msgspec
import pytest

from starhold import Room, Seats, define_room, protocol
from starhold.client import StarholdClient
from starhold.rooms import protocol as P
from starhold._runtime.local_host import InProcessDirectory
from starhold.drain import DrainError, NodeInfo, RoomMove, move_room, resolve_node


class Press(msgspec.Struct):
    """``press {}``: one more press."""


@define_room
class LampRoom(Room):
    """A room with no loop and no alarm: it answers each press with the count of presses, and
    nothing but a connection or a message wakes it."""

    kind = "lamp"
    messages = {"press": Press}
    seat_hold = 30.0

    async def on_start(self):
        self.presses = await self.storage.get("presses") or 0
        self.seats = Seats(self)
        await self.seats.load()

    async def on_connect(self, conn, request):
        admitted = self.seats.admit(conn, request, request.player)
        if admitted is None:
            return
        seat = await self.seats.occupy(conn, request.player, request.seq, resumed=admitted[1])
        await self.seats.flush()
        conn.send(protocol.encode(protocol.WELCOME, request.seq,
                                  {"ack": seat["ack"], "seat": seat["token"], "resumed": admitted[1]}))

    async def on_message(self, conn, message):
        self.presses += 1
        await self.storage.put("presses", self.presses)
        self.seats.ack(self.seats.player_of(conn.id), message.seq)
        await self.seats.flush()
        conn.send(protocol.encode("lamp", message.seq, {"presses": self.presses}))

    async def on_close(self, conn, code, reason):
        await self.seats.leave(conn, code)
        await self.seats.flush()


def near(client: StarholdClient, ship: int, x: float, y: float) -> bool:
    pos = client.ships.get(ship)
    return pos is not None and abs(pos[0] - x) < 0.5 and abs(pos[1] - y) < 0.5 and not pos[2] & P.SHIP_MOVING


def largest_gap(arrivals: list[float], since: float) -> float:
    """The longest wait between frames received after ``since`` (seconds)."""
    times = [t for t in arrivals if t >= since]
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


async def room_state(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url + "/api/systems/sol/state") as resp:
        assert resp.status == 200
        return await resp.json()


@pytest.fixture
async def directory(tmp_path):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    yield directory
    await directory.close()


async def test_a_migrated_room_keeps_its_players_their_seats_and_every_order(gateway_factory, directory):
    url = await gateway_factory(directory)
    clients = [StarholdClient(url, "Sol", name=f"Mover{i}") for i in range(3)]
    for client in clients:
        await client.__aenter__()
    try:
        ships = [(await c.join())["ship"] for c in clients]
        # Acknowledged orders before the move: every ship flies 12 units east.
        starts = {}
        for client, ship in zip(clients, ships):
            await client.wait_for(lambda c, s=ship: s in c.ships)
            x, y, _ = client.ships[ship]
            starts[ship] = (x, y)
            seq = await client.move_to(x + 12.0, y)
            await client.wait_for(lambda c, s=seq: c.ack >= s)
        handle = await directory.get("system", "sol")
        old_epoch = (await handle.stats())["epoch"]
        before = {id(c): c.frames for c in clients}
        moved_at = time.perf_counter()

        # The move, with orders sent while it runs: each ship then turns north.
        move = asyncio.ensure_future(move_room(handle, "system", "sol", directory))
        last = {}
        for client, ship in zip(clients, ships):
            x, y = starts[ship]
            last[ship] = (x + 12.0, y + 15.0)
            last[id(client)] = await client.move_to(*last[ship])
        result = await move
        assert isinstance(result, RoomMove) and result.ok, result
        assert result.connections == 3

        new = directory.runtime("system", "sol")
        assert new is not None and new.state == "active" and new.epoch > old_epoch
        for client, ship in zip(clients, ships):
            # Every order is applied by the new activation (the one sent during the move too)...
            await client.wait_for(lambda c: c.ack >= last[id(c)], timeout=20)
            await client.wait_for(lambda c, s=ship: near(c, s, *last[s]), timeout=20)
            # ... over the same socket: no close, no reconnection, no new welcome.
            assert client.connected and client.reconnects == 0 and client.close_codes == []
            assert client.ship_id == ship and client.frames > before[id(client)]
        gap = max(largest_gap(c.frame_arrivals, client.clock() - (time.perf_counter() - moved_at)) for c in clients)
        print(f"in-process migration: {result.line()}; largest gap between frames {gap:.3f} s")
        state = await room_state(url)
        assert state["players"] == 3  # the seats were held over
        assert sorted(s["id"] for s in state["ships"] if s["name"].startswith("Mover")) == sorted(ships)
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)


async def test_the_gateway_reopens_a_moved_room_at_once(gateway_factory, tmp_path):
    """After ``("moved",)`` the gateway wakes the room by itself, with no input from its player
    (after a plain hibernation it waits for one: test_gateway.py); the room has no alarm, so
    nothing else wakes it."""
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60, room_classes={"lamp": LampRoom})
    url = await gateway_factory(directory, rooms=[__name__])
    try:
        async with StarholdClient(url, "/rooms/lamp/l-1/ws", name="Held") as client:
            await client.join()
            seq = await client.command("press", {})
            await client.next_message("lamp", after_seq=seq)
            handle = await directory.get("lamp", "l-1")
            epoch = (await handle.stats())["epoch"]
            info = await handle.migrate()
            assert info["migrated"] is True and info["connections"] == 1 and len(info["gateways"]) == 1
            for _ in range(250):  # woken by the gateway alone
                runtime = directory.runtime("lamp", "l-1")
                if runtime is not None and runtime.state == "active":
                    break
                await asyncio.sleep(0.02)
            assert runtime is not None and runtime.state == "active" and runtime.epoch == epoch + 1
            assert len(runtime._conns) == 1  # our socket, restored by the new activation
            seq = await client.command("press", {})
            _, _, answer = await client.next_message("lamp", after_seq=seq)
            assert answer == {"presses": 2}
            assert client.reconnects == 0 and client.close_codes == [] and client.connected
    finally:
        await directory.close()


async def test_migrating_an_ended_activation_raises_room_gone_and_the_drain_wakes_the_room(directory):
    from starhold._runtime.handle import RoomGone

    handle = await directory.get("system", "sol")
    assert (await handle.migrate()) == {"migrated": True, "connections": 0, "gateways": []}
    assert await directory.list_rooms() == []
    with pytest.raises(RoomGone):
        await handle.migrate()
    move = await move_room(handle, "system", "sol", directory)  # e.g. a reply lost as the actor ended
    assert move.ok and move.connections == 0 and "moved in" in move.line()
    assert await directory.list_rooms() == ["system/sol"]


def test_nodes_are_named_by_id_prefix_or_unique_ip():
    nodes = [NodeInfo("aa11", "10.0.0.1", True, False), NodeInfo("ab22", "10.0.0.2", False, False),
             NodeInfo("ab33", "10.0.0.2", False, False)]
    assert resolve_node(nodes, "aa").id == "aa11"
    assert resolve_node(nodes, "AB2").id == "ab22"
    assert resolve_node(nodes, "10.0.0.1").id == "aa11"
    with pytest.raises(DrainError, match="matches 2 nodes"):
        resolve_node(nodes, "10.0.0.2")
    with pytest.raises(DrainError, match="matches 2 nodes"):
        resolve_node(nodes, "ab")
    with pytest.raises(DrainError, match="no alive Ray node"):
        resolve_node(nodes, "ff")


# ---- on a Ray cluster of two nodes --------------------------------------------------------------
BOTS_PER_ROOM = 2
SYSTEMS = 3


@pytest.mark.ray
def test_drain_a_worker_node_under_play(tmp_path):
    """A head node and a worker node (``ray.cluster_utils.Cluster``); three solar systems (and
    their players' pilot rooms) live on the worker, two bots in each fly and send orders through
    a real gateway; ``starhold drain`` (the CLI, a Ray driver of its own) moves every room to
    the head while they play. Every room ends
    up on the head, no socket is closed, every order is acknowledged and applied, every seat
    is held; the gap (the longest wait between two frames a bot saw during the drain) is
    printed per room. Runs in a subprocess of its own: a second Ray in the test process would
    clash with the session's ``ray_cluster``."""
    out = tmp_path / "drain.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, __file__, str(tmp_path), str(out)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0 and out.exists(), proc.stdout[-3000:] + proc.stderr[-6000:]
    result = json.loads(out.read_text())
    print(proc.stdout)
    assert result["ok"], result
    assert result["rooms_before"] and set(result["rooms_before"]) <= set(result["moved"]), result
    assert result["left"] == [] and all(node == result["head"] for node in result["nodes_after"].values()), result
    for bot in result["bots"]:
        assert bot["closes"] == [] and bot["reconnects"] == 0, bot
        assert bot["acked"] == bot["sent"] and bot["arrived"], bot
    assert all(players == BOTS_PER_ROOM for players in result["players"].values()), result
    assert result["max_gap"] < 10.0, result  # the figures are printed; the hand-made drain took 7-14 s


async def _ray_scenario(tmp: Path, out: Path, parallel: int) -> None:
    import ray
    from aiohttp.test_utils import TestServer
    from ray.cluster_utils import Cluster

    from starhold.drain import rooms_on_node
    from starhold.gateway.app import create_app
    from starhold._runtime.ray_host import RayDirectory, init_ray

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    namespace = "drain-test"
    init_ray(cluster.address, namespace, logging_level="WARNING")
    head_id, worker_id = cluster.head_node.node_id, worker.node_id
    config = {"data_dir": str(tmp / "data"), "idle_timeout": 60, "log_level": "WARNING"}
    directory = RayDirectory(config, namespace)
    server = TestServer(create_app(directory, shed_lag=0, data_dir=tmp / "gateway"), host="127.0.0.1", port=0)
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    clients: list[tuple[str, StarholdClient]] = []
    try:
        async with StarholdClient(url, "Sol", name="Scout") as scout:
            lanes = (await scout.join())["system"]["lanes"]
        systems = ["sol", *sorted(lane["id"] for lane in lanes)[:SYSTEMS - 1]]
        for kind, room_id in [("system", s) for s in systems]:
            handle = await directory.get_if_active(kind, room_id)
            if handle is not None:
                await handle.hibernate()  # the scout woke Sol on the head: it goes to sleep there

        # The systems, placed by the host pool on a host of the worker.
        on_worker: set[str] = set()
        for name in systems:
            handle = await directory.place("system", name, worker_id)
            await handle.send_batch("test", [])
            if (await handle.stats())["node"] == worker_id:
                on_worker.add(name)
        assert on_worker == set(systems), "the systems could not be placed on the worker"
        for system in systems:
            for i in range(BOTS_PER_ROOM):
                client = StarholdClient(url, system, name=f"Bot-{system[:6]}-{i}")
                await client.__aenter__()
                await client.join()
                clients.append((system, client))
        rooms_before = await rooms_on_node(worker_id, namespace)

        stop = asyncio.Event()
        sent: dict[int, int] = {}
        final: dict[int, tuple[float, float]] = {}

        async def fly(n: int, client: StarholdClient) -> None:
            ship = client.ship_id
            await client.wait_for(lambda c: ship in c.ships)
            x0, y0, _ = client.ships[ship]
            k = 0
            while not stop.is_set():
                k += 1
                sent[n] = await client.move_to(x0 + (60.0 if k % 2 else -60.0), y0 + 3.0 * k)
                try:
                    await asyncio.wait_for(stop.wait(), 0.4)
                except asyncio.TimeoutError:
                    pass
            final[n] = (x0 + 10.0, y0)
            sent[n] = await client.move_to(*final[n])

        flying = [asyncio.ensure_future(fly(n, c)) for n, (_, c) in enumerate(clients)]
        await asyncio.sleep(2.0)
        drain_started = time.monotonic()
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "starhold.cli", "drain", worker_id[:10], "--ray-address", cluster.address,
            "--namespace", namespace, "--parallel", str(parallel), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        output = (await cli.communicate())[0].decode()
        drained = time.monotonic()
        print(output)
        lines = output.splitlines()
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*flying)
        bots, gaps = [], {}
        for n, (system, client) in enumerate(clients):
            ship = client.ship_id
            try:  # every order acknowledged, and the last one flown to its end
                await client.wait_for(lambda c: c.ack >= sent[n], timeout=30)
                await client.wait_for(lambda c: near(c, ship, *final[n]), timeout=30)
                arrived = True
            except TimeoutError:
                arrived = False
            times = [t for t in client.frame_arrivals if drain_started - 0.5 <= t <= drained + 1.0]
            gap = max((b - a for a, b in zip(times, times[1:])), default=None)
            gaps[system] = max(gaps.get(system) or 0.0, gap or 0.0)
            bots.append({"system": system, "sent": sent[n], "acked": client.ack, "arrived": arrived,
                         "closes": list(client.close_codes), "reconnects": client.reconnects, "gap": gap})
        nodes_after, players = {}, {}
        for kind, room_id in rooms_before:
            handle = await directory.get_if_active(kind, room_id)
            nodes_after[f"{kind}/{room_id}"] = (await handle.stats())["node"] if handle else None
        async with aiohttp.ClientSession() as http:
            for system in systems:
                async with http.get(f"{url}/api/systems/{system}/state") as resp:
                    players[system] = (await resp.json())["players"]
        result = {
            "ok": cli.returncode == 0, "head": head_id, "worker": worker_id,
            "rooms_before": [f"{k}/{r}" for k, r in rooms_before],
            "moved": [line.split(": ")[0] for line in lines if ": moved in " in line],
            "moves": [line for line in lines if ": moved in " in line], "summary": lines[-1],
            "left": [f"{k}/{r}" for k, r in await rooms_on_node(worker_id, namespace)],
            "nodes_after": nodes_after, "bots": bots, "gaps": gaps, "players": players,
            "max_gap": max(gaps.values()), "drain_seconds": drained - drain_started,
        }
        print(json.dumps({k: result[k] for k in ("moves", "summary", "gaps", "drain_seconds")}, indent=1))
        out.write_text(json.dumps(result))
    finally:
        for _, client in clients:
            await client.__aexit__(None, None, None)
        await server.close()
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    asyncio.run(_ray_scenario(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 2))
