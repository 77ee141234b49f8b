"""CPU of one game session's tick, in-process (issue 17: the room's share of CPU per player).

A ``session`` room of ``--players`` seated players on the in-process host (manual clock, SQLite
in a temporary directory): each tick every player sends a ``move_to`` (one batch, payloads as
maps, as they arrive off a gateway's channel), the clock advances one tick (100 ms), the room
applies the inputs, commits them (the tick journal, ``rooms.ships.journal``) and sends every
player its frame. Prints the process CPU per tick (the SQLite thread included), the room's
SQLite commits and database round trips per tick, and the room's CPU per 1,000 players at
10 Hz. No Ray, no sockets: the gateway, the data
channel and Ray's own processes come on top (``benchmarks/realtime.py`` measures the whole
server beside Colyseus).

First figures (this 2-core machine, 100 players, 300 ticks, alternating with the code before
the tick journal and one commit per tick, 4 pairs): 1.34-2.06 ms -> 0.89-1.01 ms per tick;
2 -> 1 commits and round trips per tick.

    .venv/bin/python benchmarks/room_tick.py [--players 100] [--ticks 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time

import aiosqlite.core

from starhold._runtime.events import Message
from starhold._runtime.local_host import InProcessDirectory
from starhold.room import HttpRequest
from starhold.rooms import protocol as P
from starhold.testing import ManualClock

GATEWAY = "gw-bench"


async def run(players: int, ticks: int, warmup: int = 30) -> dict:
    """Play ``warmup`` then ``ticks`` ticks; returns the figures (see the module docstring)."""
    round_trips = 0
    execute = aiosqlite.core.Connection._execute

    async def counted(self, fn, *args, **kwargs):
        nonlocal round_trips
        round_trips += 1
        return await execute(self, fn, *args, **kwargs)

    aiosqlite.core.Connection._execute = counted
    clock = ManualClock()
    with tempfile.TemporaryDirectory(prefix="room-tick-") as tmp:
        directory = InProcessDirectory(f"{tmp}/data", clock=clock, idle_timeout=3600.0)
        try:
            handle = await directory.get("session", "bench", {})
            body = json.dumps({"seed": 1, "max_players": players}).encode()
            await handle.request(HttpRequest("POST", "create", body=body))
            for i in range(players):
                await handle.connect(GATEWAY, f"c{i}", {}, 1,
                                     identity={"player": f"p{i}", "name": f"n{i}", "kind": "guest"})
            await handle.pull(GATEWAY, 0)
            runtime = directory.runtime("session", "bench")
            rng = random.Random(17)

            async def tick(seq: int) -> None:
                await handle.send_batch(GATEWAY, [
                    Message(f"c{i}", P.ClientMessage(P.MOVE_TO, seq, {"x": rng.uniform(-500, 500),
                                                                       "y": rng.uniform(-500, 500)}))
                    for i in range(players)])
                await clock.advance(0.1)
                await handle.pull(GATEWAY, 0)

            for seq in range(2, 2 + warmup):
                await tick(seq)
            commits, trips, cpu = runtime.storage.commits, round_trips, time.process_time()
            for seq in range(2 + warmup, 2 + warmup + ticks):
                await tick(seq)
            cpu = time.process_time() - cpu
            return {"players": players, "ticks": ticks, "cpu_ms_per_tick": 1e3 * cpu / ticks,
                    "commits_per_tick": (runtime.storage.commits - commits) / ticks,
                    "round_trips_per_tick": (round_trips - trips) / ticks}
        finally:
            await directory.close()
            aiosqlite.core.Connection._execute = execute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=300)
    args = parser.parse_args()
    r = asyncio.run(run(args.players, args.ticks))
    per_player = r["cpu_ms_per_tick"] * 10 / r["players"]  # ms of CPU per player per second at 10 Hz
    print(f"{r['players']} players, {r['ticks']} ticks: {r['cpu_ms_per_tick']:.3f} ms CPU per tick, "
          f"{r['commits_per_tick']:.2f} commits and {r['round_trips_per_tick']:.2f} SQLite round trips per tick")
    print(f"room CPU per player: {per_player:.3f} ms/s -> {per_player * 1000 / 10:.1f} % of a core per 1,000 players "
          f"(the room only; gateways, channel and Ray come on top)")


if __name__ == "__main__":
    main()
