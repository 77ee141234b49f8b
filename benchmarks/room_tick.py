"""CPU of one game session's tick, in-process (issue 17: the room's share of CPU per player).

A ``session`` room of ``--players`` seated players on the in-process host (manual clock, SQLite
in a temporary directory): each tick every player sends a ``move_to`` (payloads as maps, as
they arrive off a gateway's channel, in ``--batches`` batches: a gateway sends a ticked room's
inputs as one batch per tick, so 2 gateways make 2; until the ninth session at up to 3 flush
points per tick), the clock advances one
tick (100 ms), the room applies the inputs, commits them (the tick journal,
``rooms.ships.journal``) and sends every player its frame. The inputs are built before the
measurement. Prints the process CPU per tick (the SQLite thread included), the room's SQLite
commits and database round trips per tick, and the room's CPU per 1,000 players at 10 Hz.

By default the batches go in by ``send_batch`` (no sockets). ``--channel`` sends them over a
real data channel instead (``gateway.room_channel.RoomChannel`` to the room's
``starhold._runtime.channel``: loopback TCP, msgpack both ways, both ends in this process) and
waits for each tick's frame to come back over it; ``--compare`` alternates the two (3 runs
each) and prints what the channel adds: the CPU of the hop between a gateway and a room
(codec, TCP and bookkeeping, both ends), without the gateway's sockets and Ray's processes
(``benchmarks/realtime.py`` measures the whole server beside Colyseus).

Figures (this 2-core machine, 100 players):

- the tick journal and one commit per tick (300 ticks, one batch, alternating with the code
  before, 4 pairs): 1.34-2.06 ms -> 0.89-1.01 ms per tick; 2 -> 1 commits and round trips per tick;
- the hop (``--ticks 200 --batches 6 --compare``, on a day the machine ran ~3x slower than the
  figures above): +0.17 ms per tick (3.31 against 3.14 ms, best of 3; 1.05x), up to +0.55 ms
  in single pairs: about 2-5 % of a core per 1,000 players, a few percent of the server's
  CPU, against the ~2.3-2.8x of Colyseus's CPU per player that ``realtime.py`` measures.
  Handing sockets to the room's process (file-descriptor passing) would save about that.
- where a tick's CPU goes (``--ticks 800 --batches 3``, 2.0-2.9 ms per tick as the machine's
  speed varied; instrumented runs): the 100 inputs ~0.95 ms (~9.5 µs each: dispatch ~4.5,
  ``on_message`` ~5), the tick ~1.75 ms: the commit ~0.6 ms (0.33 ms of it on the database
  thread: the journal entry's ~18.5 KB through SQLite's WAL, a fold every second, the epoch
  check), the journal write 0.2 ms (msgpack; 0.05 ms since entries are encoded by msgspec),
  the frame 0.45 ms (positions 0.2, delta 0.1, 100 heads 0.15). Since seats whose ack alone
  changed are journaled as their ack: 10.8 KB per entry, 0.28 ms on the database thread.
- inline commits (``storage/sqlite_store.py``: the tick's commit runs on the event loop's
  thread when the database thread is idle; ``--ticks 600 --batches 3 --channel``, 7
  alternating pairs): lower in 6 of 7, median -4 %; SQLite round trips 1.05 -> 0.07 per tick
  and the database thread 0.21-0.29 -> 0.06-0.07 ms per tick (what remains: a WAL checkpoint
  every 100 commits). With ``--channel``, the acknowledgement of a batch of inputs riding on the
  tick's frame instead of a push of its own (``ACK_LINGER``), 3 pairs: 2.54/2.10/2.64 ->
  2.38/2.03/2.58 ms per tick.
- ``move_to`` in runs (``Room.batched``: one ``ShipRoom.on_messages`` call per run of a batch's
  moves instead of an ``on_message`` coroutine per input; ``--ticks 800 --batches 3 --channel``,
  5 alternating pairs): lower in 4 of 5, median 2.24 -> 2.12 ms per tick; ``RoomRuntime.dispatch``
  alone, batches of 33 moves timed with ``time.thread_time`` (best of 7 rounds): 7.4-7.6 ->
  3.9 µs per input.
- the frame's rows and the moves through compiled kernels (``starhold.kernels.motion``:
  ``ship_rows`` computes, quantizes and flags every ship in one pass; ``set_legs`` writes the
  moved ships' legs into the fleet's array; ``ship_position`` reads a ship's leg from its dict),
  sections timed with ``time.thread_time``: ``rows_at`` 183 -> 65-76 µs per tick (of it the
  array update 99 -> 31-36), the moves of a tick (``on_messages``, 100 inputs) 331 -> 247 µs;
  ``--ticks 400 --batches 3``, 10 alternating runs: median 1.77 -> 1.60 ms per tick (min
  1.35 -> 1.31; this machine's speed varies by ±20 % from run to run).
- the data channel in-process (a gateway on the room's loop joins it with objects: the
  in-process host, ``--host-mode local``): ``--channel`` keeps the hop over loopback TCP, as
  between a gateway process and a room host.
- a batch's events as msgpack bytes decoded in one typed pass, payloads built into their
  Structs from their bytes (``starhold.messages.decode_payload``), pushes encoded by msgspec
  (``--ticks 400 --batches 3 --channel``, 10 alternating runs): median 1.80 -> 1.69 ms per
  tick (min 1.59 -> 1.47).
- cold ticks (``--idle S``: the process sleeps S seconds of real time after each tick, as a
  room host sleeps between its rooms' bursts of work; ``--ticks 100 --batches 3 --channel``):
  0.90 ms per tick after 1 ms of idle, 0.96 after 5 ms, 1.20 after 20 ms, 1.78-1.97 after
  90 ms, against 0.73-0.79 back to back: the 1.8-1.9 ms a tick of 100 players costs in a
  server's room host. Caches and branch predictors go cold while the process sleeps; judge
  the rooms' CPU with ``--idle 0.09``.
- moves written into the fleet's arrays (``kernels.motion.steer_rows``: no ship dict per move,
  the seat's ack raised in the same pass; the dicts follow when read, the journal packs the
  legs from the rows, ``take_rows``) and the seats' flags kept until ``Seats.version`` changes
  (fifteenth session; alternating runs against the code before, both with compiled kernels):
  ``--ticks 300`` 0.587-0.680 -> 0.477-0.585 ms per tick (median of five 0.621 -> 0.544),
  ``--ticks 100 --idle 0.09`` 1.646-1.788 -> 1.432-1.650 (median of four 1.746 -> 1.571); the
  tick's 100 moves (``ShipRoom.on_messages``) 72 -> 23 µs hot.

    .venv/bin/python benchmarks/room_tick.py [--players 100] [--ticks 300] [--batches 1]
        [--channel | --compare] [--idle 0.09]
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
from starhold.gateway.room_channel import RoomChannel
from starhold.room import HttpRequest
from starhold.rooms import protocol as P
from starhold.testing import ManualClock

GATEWAY = "gw-bench"


class _Pushes:
    """The gateway end of a data channel (``--channel``): counts the frames pushed."""

    def __init__(self) -> None:
        self.frames = 0
        self.got = asyncio.Event()

    def on_push(self, ack: int, items: list) -> None:
        self.frames += sum(1 for item in items if item[0] == "splice")
        self.got.set()

    def on_lost(self, channel) -> None:
        self.got.set()


async def run(players: int, ticks: int, batches: int = 1, channel: bool = False, warmup: int = 30,
              idle: float = 0.0) -> dict:
    """Play ``warmup`` then ``ticks`` ticks, each tick's inputs in ``batches`` batches, sent
    with ``send_batch`` or, with ``channel``, over a real data channel (loopback TCP, both
    ends in this process), the process sleeping ``idle`` seconds of real time after each tick;
    returns the figures (see the module docstring)."""
    round_trips = 0
    sqlite_cpu = 0.0  # CPU seconds spent on the database thread (SQLite and the statements' Python)
    execute = aiosqlite.core.Connection._execute

    async def counted(self, fn, *args, **kwargs):
        nonlocal round_trips
        round_trips += 1

        def timed(*a, **k):
            nonlocal sqlite_cpu
            started = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                sqlite_cpu += time.thread_time() - started

        return await execute(self, timed, *args, **kwargs)

    aiosqlite.core.Connection._execute = counted
    clock = ManualClock()
    rng = random.Random(17)
    size = -(-players // batches)
    inputs = [[[Message(f"c{i}", P.ClientMessage(P.MOVE_TO, seq, {"x": rng.uniform(-500, 500), "y": rng.uniform(-500, 500)}))
                for i in range(first, min(first + size, players))] for first in range(0, players, size)]
              for seq in range(2, 2 + warmup + ticks)]  # built before the measurement
    with tempfile.TemporaryDirectory(prefix="room-tick-") as tmp:
        directory = InProcessDirectory(f"{tmp}/data", clock=clock, idle_timeout=3600.0)
        link = None
        try:
            handle = await directory.get("session", "bench", {})
            body = json.dumps({"seed": 1, "max_players": players}).encode()
            await handle.request(HttpRequest("POST", "create", body=body))
            for i in range(players):
                await handle.connect(GATEWAY, f"c{i}", {}, 1,
                                     identity={"player": f"p{i}", "name": f"n{i}", "kind": "guest"})
            await handle.pull(GATEWAY, 0)
            runtime = directory.runtime("session", "bench")
            pushes = _Pushes()
            if channel:
                link = await RoomChannel.open(await handle.open_channel(GATEWAY), GATEWAY, pushes.on_push,
                                              pushes.on_lost, in_process=False)  # the hop as between processes
            batch_no = 0

            async def tick(n: int) -> None:
                nonlocal batch_no
                if link is None:
                    for batch in inputs[n]:
                        await handle.send_batch(GATEWAY, batch)
                    await clock.advance(0.1)
                    await handle.pull(GATEWAY, 0)
                    return
                expected = runtime.events_handled + players
                for batch in inputs[n]:
                    batch_no += 1
                    link.send(batch_no, batch)
                while runtime.events_handled < expected:  # the room reads the channel as the loop turns
                    await asyncio.sleep(0)
                frames = pushes.frames
                await clock.advance(0.1)
                while pushes.frames == frames:  # this tick's frame came back over the channel
                    pushes.got.clear()
                    await pushes.got.wait()

            async def tick_then_idle(n: int) -> None:
                await tick(n)
                if idle:
                    await asyncio.sleep(idle)

            for n in range(warmup):
                await tick(n)
            commits, trips, cpu, db_cpu = runtime.storage.commits, round_trips, time.process_time(), sqlite_cpu
            for n in range(warmup, warmup + ticks):
                await tick_then_idle(n)
            cpu = time.process_time() - cpu
            return {"players": players, "ticks": ticks, "cpu_ms_per_tick": 1e3 * cpu / ticks,
                    "sqlite_ms_per_tick": 1e3 * (sqlite_cpu - db_cpu) / ticks,
                    "commits_per_tick": (runtime.storage.commits - commits) / ticks,
                    "round_trips_per_tick": (round_trips - trips) / ticks}
        finally:
            if link is not None:
                link.close()
            await directory.close()
            aiosqlite.core.Connection._execute = execute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--batches", type=int, default=1, help="batches the tick's inputs arrive in")
    parser.add_argument("--channel", action="store_true",
                        help="send the inputs over a real data channel (loopback TCP, both ends in this process)")
    parser.add_argument("--idle", type=float, default=0.0,
                        help="seconds the process sleeps after each tick (0.09: as a room host between ticks)")
    parser.add_argument("--compare", action="store_true",
                        help="alternate send_batch and the channel, 3 runs each, and print the channel's cost")
    args = parser.parse_args()
    modes = [False, True] * 3 if args.compare else [args.channel]
    results: dict[bool, list[float]] = {False: [], True: []}
    for channel in modes:
        r = asyncio.run(run(args.players, args.ticks, args.batches, channel, idle=args.idle))
        results[channel].append(r["cpu_ms_per_tick"])
        per_player = r["cpu_ms_per_tick"] * 10 / r["players"]  # ms of CPU per player per second at 10 Hz
        print(f"{r['players']} players, {r['ticks']} ticks, inputs in {args.batches} batch(es) "
              f"{'over a data channel' if channel else 'by send_batch'}"
              f"{f', {args.idle:g} s idle after each' if args.idle else ''}: {r['cpu_ms_per_tick']:.3f} ms CPU per tick, "
              f"{r['commits_per_tick']:.2f} commits and {r['round_trips_per_tick']:.2f} SQLite round trips per tick "
              f"({r['sqlite_ms_per_tick']:.3f} ms of the CPU on the database thread)")
        print(f"  room CPU per player: {per_player:.3f} ms/s -> {per_player * 1000 / 10:.1f} % of a core per "
              f"1,000 players")
    if args.compare:
        direct, hop = min(results[False]), min(results[True])
        print(f"data channel: +{hop - direct:.3f} ms per tick of {args.players} players (best of 3 each: "
              f"{hop:.3f} against {direct:.3f}; {hop / direct:.2f}x)")


if __name__ == "__main__":
    main()
