"""A small galaxy for tests of pilots and jumps: system rooms A-B-C-D on a line of lanes (plus
the pilot rooms they call) in one ``InProcessDirectory`` on a ``ManualClock``, and ``Player``,
a client that talks to whichever system its ship is in, as a gateway would (the events cross
the data channel's codec into ``RoomRuntime.dispatch``).

``invariant(galaxy, players)`` checks the one rule of the pilot record: each player's ship is
in exactly one place, the place its pilot room says."""

from __future__ import annotations

import asyncio
import itertools

import msgpack

from starhold import HttpRequest
from starhold._runtime.events import Close, Connect, Message, decode_events, encode_batch
from starhold._runtime.handle import RoomGone
from starhold._runtime.local_host import InProcessDirectory
from starhold.clock import ManualClock
from starhold.protocol import ClientMessage
from starhold.rooms import protocol

GATEWAY = "test-gateway"
LINE = ("A", "B", "C", "D")
"""Systems on a line: A -1.5 pc- B -2 pc- C -1 pc- D (transits 4, 4, 4 s)."""
PARSECS = {("A", "B"): 1.5, ("B", "C"): 2.0, ("C", "D"): 1.0}


def system_params(system_id: str) -> dict:
    lanes = []
    for (a, b), pc in PARSECS.items():
        if system_id in (a, b):
            other = b if system_id == a else a
            sign = 1.0 if LINE.index(other) > LINE.index(system_id) else -1.0
            lanes.append({"id": other, "name": f"System {other}", "parsecs": pc, "dx": sign * pc, "dy": 0.0})
    return {"system": {"id": system_id, "name": f"System {system_id}", "star_radius": 40.0, "planets": []},
            "lanes": lanes, "pirates": False}


class Galaxy:
    """The directory plus helpers. ``await Galaxy.start(tmp_path)``."""

    def __init__(self, directory: InProcessDirectory, clock: ManualClock):
        self.directory, self.clock = directory, clock

    @classmethod
    async def start(cls, path, **kwargs) -> "Galaxy":
        clock = ManualClock()
        directory = InProcessDirectory(path, clock=clock, idle_timeout=30.0, **kwargs)
        galaxy = cls(directory, clock)
        for system in LINE:
            await directory.get("system", system, system_params(system))
        return galaxy

    async def handle(self, kind: str, room_id: str):
        params = system_params(room_id) if kind == "system" else None
        return await self.directory.get(kind, room_id, params)

    async def profile(self, player: str) -> dict:
        handle = await self.handle("pilot", player)
        return (await handle.request(HttpRequest("GET", "profile"))).body

    async def ships_in(self, system: str) -> dict[str, int]:
        """player -> count of that player's ships in the system's fleet."""
        handle = await self.handle("system", system)
        runtime = handle.runtime
        counts: dict[str, int] = {}
        for ship in runtime.room.ships.values():
            if ship.get("player") and not ship.get("npc"):
                counts[ship["player"]] = counts.get(ship["player"], 0) + 1
        return counts

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until no room has posts left to deliver (the outboxes run in real time)."""
        async with asyncio.timeout(timeout):
            while self.directory.posts_pending():
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.directory.close()


class Player:
    """One player (a pilot id) with at most one socket, to the system its ship is in."""

    _ids = itertools.count(1)

    def __init__(self, galaxy: Galaxy, player: str, name: str = ""):
        self.galaxy, self.player, self.name = galaxy, player, name or player
        self.system: str | None = None
        self.conn: str | None = None
        self.seq = 0
        self.received: list = []
        self.closed: tuple[int, str] | None = None
        self.gateway = f"{GATEWAY}-{player}"  # one gateway per player: each pulls its own output

    async def _send(self, events: list) -> None:
        events = decode_events(msgpack.unpackb(encode_batch(0, events), raw=False)[1])
        for attempt in range(3):
            handle = await self.galaxy.handle("system", self.system)
            try:
                await handle.send_batch(self.gateway, events)
                break
            except RoomGone:
                if attempt == 2:
                    raise
        await self.pump()

    async def pump(self) -> None:
        """Collect the output of the current system for this socket."""
        if self.system is None:
            return
        handle = await self.galaxy.directory.get_if_active("system", self.system)
        if handle is None:
            return
        try:
            items = await handle.pull(self.gateway, 0)
        except RoomGone:
            return
        for item in items:
            if item[0] == "send" and self.conn in item[1]:
                self.received.append(msgpack.unpackb(item[2], raw=False, strict_map_key=False))
            elif item[0] == "splice":
                for conn_id, head in item[2]:
                    if conn_id == self.conn:
                        self.received.append(msgpack.unpackb(head + item[1], raw=False, strict_map_key=False))
            elif item[0] == "close" and item[1] == self.conn:
                self.closed = (item[2], item[3])

    async def join(self, system: str) -> None:
        self.system, self.closed, self.received = system, None, []
        self.conn = f"c{next(self._ids)}"
        self.seq += 1
        await self._send([Connect(self.conn, {}, self.seq, {"player": self.player, "name": self.name, "kind": "guest"})])

    async def send(self, type_: str, payload: dict) -> int:
        self.seq += 1
        await self._send([Message(self.conn, ClientMessage(type_, self.seq, payload))])
        return self.seq

    async def leave(self, code: int = 1000) -> None:
        if self.conn is not None and self.closed is None:
            await self._send([Close(self.conn, code, "")])
        self.conn = None

    def of_type(self, type_: str) -> list:
        return [m[2] for m in self.received if m[0] == type_]

    @property
    def welcome(self) -> dict | None:
        found = self.of_type(protocol.WELCOME)
        return found[-1] if found else None


async def invariant(galaxy: Galaxy, players: list[str]) -> dict:
    """Assert each player's ship is in exactly one place; returns player -> location
    (a system id, or ``"transit"``)."""
    where = {}
    counts = {s: await galaxy.ships_in(s) for s in LINE}
    for player in players:
        profile = await galaxy.profile(player)
        holders = [s for s in LINE if counts[s].get(player)]
        assert all(counts[s][player] == 1 for s in holders), (player, counts)
        if profile.get("transit"):
            assert holders == [], (player, profile, holders)
            where[player] = "transit"
        else:
            assert profile["system"] in LINE, profile
            assert holders in ([], [profile["system"]]), (player, profile, holders)
            where[player] = profile["system"]
    return where


STEPS = ("before_order", "in_flight", "after_departure", "in_transit", "at_arrival")
"""The points of a jump where ``Chaos`` may kill a participant."""
PARTICIPANTS = ("origin", "target", "pilot")


class Chaos:
    """Jumps with kills: each ``jump(player)`` flies one jump of ``player`` to a random
    neighbour, killing (``RoomRuntime.crash``: uncommitted writes and held output lost) a
    random participant at a random step with probability ``kill_rate``, then recovers the way a
    client does (ask the pilot where the ship is, join there, wait a transit out). Counts in
    ``jumps``, ``completed``, ``rolled_back`` and ``kills[(participant, step)]``."""

    def __init__(self, galaxy: Galaxy, players: list[Player], seed: int = 0, kill_rate: float = 0.5):
        import random

        self.galaxy, self.players, self.rng, self.kill_rate = galaxy, players, random.Random(seed), kill_rate
        self.jumps = self.completed = self.rolled_back = 0
        self.kills: dict[tuple[str, str], int] = {}

    async def _kill(self, step: str, at: dict[str, tuple[str, str]]) -> None:
        if self.plan != step:
            return
        who = self.victim
        kind, room_id = at[who]
        runtime = self.galaxy.directory.runtime(kind, room_id)
        if runtime is not None and runtime.state == "active":
            await runtime.crash()
            self.kills[(who, step)] = self.kills.get((who, step), 0) + 1

    async def recover(self, p: Player) -> str:
        """Join the system the pilot room says the ship is in; returns it."""
        for _ in range(50):
            profile = await self.galaxy.profile(p.player)
            if profile.get("transit"):
                await self.galaxy.clock.advance(profile["transit"]["wait"] + 0.1)
                continue
            await p.join(profile["system"])
            if p.welcome is not None:
                return profile["system"]
            await self.galaxy.settle()
        raise AssertionError(f"{p.player} cannot rejoin: {p.received[-3:]}")

    async def jump(self, p: Player) -> None:
        galaxy = self.galaxy
        origin = await self.recover(p)
        neighbours = [lane["id"] for lane in p.welcome["system"]["lanes"]]
        target = self.rng.choice(neighbours)
        at = {"origin": ("system", origin), "target": ("system", target), "pilot": ("pilot", p.player)}
        self.plan = self.rng.choice(STEPS) if self.rng.random() < self.kill_rate else None
        self.victim = self.rng.choice(PARTICIPANTS)
        self.jumps += 1
        await self._kill("before_order", at)
        if p.welcome is None or self.plan == "before_order":
            await self.recover(p)
        await p.send(protocol.JUMP, {"to": target})
        flown = 0.0
        kill_at = self.rng.uniform(1.0, 15.0)
        while p.closed is None and flown < 40.0:
            await galaxy.clock.advance(1.0)
            await p.pump()
            flown += 1.0
            if flown >= kill_at:
                await self._kill("in_flight", at)
                kill_at = float("inf")
        await self._kill("after_departure", at)
        await galaxy.settle()
        await self._kill("in_transit", at)
        await galaxy.settle()
        profile = await galaxy.profile(p.player)
        if profile.get("transit"):
            await galaxy.clock.advance(profile["transit"]["wait"] + 0.1)
        await self._kill("at_arrival", at)
        where = await self.recover(p)
        assert where in (origin, target), (p.player, origin, target, where)
        if where == target:
            self.completed += 1
        else:
            self.rolled_back += 1  # the jump did not happen (killed before its commit)
