"""``starhold loadtest``: many lean bots against a gateway, latency and cost measured.

::

    starhold loadtest --url http://127.0.0.1:8000 --clients 1000 --rooms 10 --duration 30 \\
        [--warmup 5] [--procs 2] [--json result.json] [--server-pid PID ...] [--systems]

Modeled on ``@colyseus/loadtest`` and on ``benchmarks/colyseus/loadgen.mjs`` (same timeline and
the same definitions, so the two JSON results compare):

1. **Rooms.** M game sessions (``POST /api/game/new`` with a guest token, ``max_players =
   ceil(N/M)``), or with ``--systems`` the first M solar systems of ``/api/galaxy``. Bot ``i``
   goes to room ``i mod M``.
2. **Ramp.** Each of the K worker processes (``multiprocessing``, spawn) joins its N/K bots in
   batches of ``JOIN_BATCH`` spread over the ramp (default ``clamp(N/250, 2, 5)`` s): guest
   token (``POST /api/auth/guest``), WebSocket with ``?token=``, ``join``, ``welcome``. A bot
   sends ``move_to`` with increasing seq every ``INPUT_PERIOD`` (10 per second) toward a new
   random target within +-``AREA``, from a random phase on.
3. **Warmup** (W s, not measured), then the **measurement window** (S s), the same wall-clock
   window in every worker. Inputs *sent* in the window are counted and timed; frames
   *received* in the window are counted.
4. **Grace** (``GRACE`` s): sending stops, late acks still count for inputs sent in the
   window; the ones never acknowledged are ``unacked``. Then every bot leaves (close 1000).

Definitions: latency of input ``s`` = arrival of the first frame whose ``ack >= s`` minus the
send time of ``s``; jitter of a frame = ``|inter-arrival interval - 100 ms|`` per bot;
percentiles are linearly interpolated (numpy's default) over the samples of every worker;
``errors`` = error frames + joins that failed without one; ``disconnects`` = sockets closed other than by our
final leave; ``messages_per_s`` = inputs sent (in) and frames received (out) per second of the
window. ``server_cpu_percent``: mean over psutil samples every ``SAMPLE_PERIOD`` s of the CPU
of the ``--server-pid`` processes and all their descendants (100 = one core);
``server_rss_mb``: the largest sum of their RSS seen; ``loadgen_cpu_percent``: the same CPU
mean over the worker processes.

**Lean.** The load generator shares the machine with the server, so a bot is a raw ``aiohttp``
WebSocket and a few counters, not a ``StarholdClient``: aiohttp's parser hands each message to
the worker as it is parsed (``starhold.wsdirect``, no task wake-up per frame; a task per bot
waits only for its close, or reads every frame when wsdirect falls back to plain aiohttp), one scheduler task per process sends for every bot (10 phase slots
of 10 ms), and an incoming frame is decoded only up to its ``ack`` (``frame_ack``: the frame's
keys come in the order ``tick, ack, ...``, so a ``msgpack.Unpacker`` reads the envelope header,
the type, the seq, the map header and the first two key/value pairs and stops). That costs
about 1.1 us whatever the frame's size, against 9 us for a full decode of a delta with 100
ships, 15 us for a 100-ship keyframe and 46 us for a 500-ship delta (``decode_cost()``; no gain
below ~10 ships).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import multiprocessing
import os
import random
import sys
import time
from typing import Sequence

import aiohttp

from .loadworker import GRACE, MAX_GAME_PLAYERS, _raise_fd_limit, _Worker, _worker_main
from .loadstats import (decode_cost, frame_ack, full_ack, merge, percentile,  # noqa: F401  (public here too)
                        sample_frame, sample_usage, split)
from .connection import StarholdHTTPError, create_game, game_path, guest_token, http_base, system_path

log = logging.getLogger("starhold.loadtest")

RESULT_KEYS = ("target", "clients", "rooms", "duration_s", "connected", "inputs_sent", "frames_received",
               "latency_ms", "jitter_p99_ms", "messages_per_s", "errors", "disconnects", "unacked",
               "server_cpu_percent", "server_rss_mb", "loadgen_cpu_percent")
"""The keys of the JSON result, in order (shared with ``benchmarks/colyseus_peer.py``)."""


# ---- resource usage ------------------------------------------------------------------------
async def _room_paths(session: aiohttp.ClientSession, url: str, clients: int, rooms: int, systems: bool) -> list[str]:
    if systems:
        async with session.get(http_base(url) + "/api/galaxy") as resp:
            if resp.status != 200:
                raise StarholdHTTPError(resp.status, await resp.text())
            galaxy = await resp.json()
        ids = [s["id"] for s in galaxy["systems"]][:rooms]
        if len(ids) < rooms:
            raise ValueError(f"the galaxy has {len(ids)} systems, fewer than --rooms {rooms}")
        return [system_path(i) for i in ids]
    per_room = math.ceil(clients / rooms)
    if per_room > MAX_GAME_PLAYERS:
        raise ValueError(f"{per_room} clients per game exceed {MAX_GAME_PLAYERS}: use more --rooms")
    async def one_game(i: int) -> dict:  # a guest each: the gateway limits live games per player
        token = (await guest_token(url, f"loadtest-{i}", session=session))["token"]
        return await create_game(url, token, seed=i, max_players=per_room, session=session)

    games = await asyncio.gather(*(one_game(i) for i in range(rooms)))
    return [game_path(g["id"]) for g in games]


def _plan(paths: list[str], clients: int, procs: int) -> list[list[tuple[int, str]]]:
    """Bot ``i`` joins room ``i mod M``; worker ``w`` runs the bots ``i`` with ``i mod K == w``
    (so every worker spreads its bots over the rooms too)."""
    bots = [(i, paths[i % len(paths)]) for i in range(clients)]
    return [bots[w::procs] for w in range(procs)]


async def run_loadtest(url: str, clients: int, rooms: int, duration: float, warmup: float = 5.0, procs: int = 1,
                       server_pids: Sequence[int] = (), systems: bool = False, *, ramp: float | None = None,
                       grace: float = GRACE, seed: int | None = None, details: dict | None = None) -> dict:
    """Run a load test (see the module docstring) and return the JSON result dict
    (``RESULT_KEYS``).

    ``procs`` worker processes (spawned; 0 runs the bots in this event loop, for debugging);
    ``server_pids``: processes whose CPU and RSS (with descendants) are reported; ``systems``:
    use solar systems instead of new game sessions; ``ramp``: seconds to join everyone
    (default ``clamp(clients / 250, 2, 5)``); ``details``: a dict to fill with diagnostics
    (``joined``, ``join_failures``, ``error_codes`` and ``close_codes`` (code -> count: error
    frames, unexpected closes), ``loop_delay_p99_ms`` and ``loop_delay_max_ms`` of the worst
    worker, ``room_paths``). Never blocks the calling event loop."""
    if clients < 1 or rooms < 1 or duration <= 0 or warmup < 0 or procs < 0:
        raise ValueError("need clients >= 1, rooms >= 1, duration > 0, warmup >= 0, procs >= 0")
    ramp = min(5.0, max(2.0, clients / 250)) if ramp is None else ramp
    async with aiohttp.ClientSession() as session:
        paths = await _room_paths(session, url, clients, rooms, systems)
    workers_n = max(1, min(procs, clients))
    seed = random.randrange(2**32) if seed is None else seed
    specs = [{"url": http_base(url), "bots": bots, "ramp": ramp, "duration": duration, "grace": grace,
              "seed": seed + w, "log_level": logging.getLevelName(log.getEffectiveLevel())}
             for w, bots in enumerate(_plan(paths, clients, workers_n))]
    if procs == 0:
        results, usage = await _run_inprocess(specs[0], warmup, duration, server_pids)
    else:
        results, usage = await _run_processes(specs, warmup, duration, server_pids)
    merged = merge(results, clients=clients, rooms=rooms, duration=duration)
    merged.update(usage)
    if details is not None:
        error_codes: dict[int, int] = {}
        close_codes: dict[int, int] = {}
        for r in results:
            for mine, theirs in ((error_codes, r["error_codes"]), (close_codes, r["close_codes"])):
                for code, n in theirs.items():
                    mine[code] = mine.get(code, 0) + n
        details.update({
            "error_codes": error_codes, "close_codes": close_codes,
            "joined": sum(r["clients"] - r["join_failures"] for r in results),
            "join_failures": sum(r["join_failures"] for r in results),
            "loop_delay_p99_ms": max(r["loop_delay_p99_ms"] for r in results),
            "loop_delay_max_ms": max(r["loop_delay_max_ms"] for r in results),
            "room_paths": paths, "procs": 0 if procs == 0 else workers_n, "ramp_s": ramp,
        })
    return {key: merged[key] for key in RESULT_KEYS}


async def _run_inprocess(spec: dict, warmup: float, duration: float, server_pids: Sequence[int]):
    usage_task: list[asyncio.Future] = []

    async def ready(joined: int) -> float:
        start = time.time() + warmup
        usage_task.append(asyncio.ensure_future(
            asyncio.to_thread(sample_usage, server_pids, [os.getpid()], start, start + duration)))
        return start

    result = await _Worker(spec).run(ready)
    usage = await usage_task[0] if usage_task else {}
    return [result], usage


async def _run_processes(specs: list[dict], warmup: float, duration: float, server_pids: Sequence[int]):
    ctx = multiprocessing.get_context("spawn")
    children = []
    try:
        for spec in specs:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(spec, child), daemon=True, name="starhold-loadtest")
            await asyncio.to_thread(proc.start)
            child.close()
            children.append((proc, parent))
        clients = sum(len(s["bots"]) for s in specs)
        ramp = max(s["ramp"] for s in specs)
        for proc, conn in children:
            message = await _receive(proc, conn, timeout=60.0 + ramp + clients * 0.05)
            if message[0] != "ready":
                raise RuntimeError(f"load worker failed during the ramp:\n{message[1]}")
        start = time.time() + warmup
        for _, conn in children:
            conn.send(("go", start))
        usage = await asyncio.to_thread(sample_usage, server_pids, [p.pid for p, _ in children],
                                        start, start + duration)
        results = []
        for proc, conn in children:
            # An overloaded machine may take a while to let every bot leave (5 s at most) and
            # the worker to report: generous, so that a saturated run still gives its figures.
            message = await _receive(proc, conn, timeout=max(60.0, start + duration + 60.0 - time.time()))
            if message[0] != "result":
                raise RuntimeError(f"load worker failed:\n{message[1]}")
            results.append(message[1])
        for proc, _ in children:
            await asyncio.to_thread(proc.join, 10)
        return results, usage
    finally:
        for proc, conn in children:
            conn.close()
            if proc.is_alive():
                proc.terminate()
                await asyncio.to_thread(proc.join, 5)


async def _receive(proc, conn, timeout: float):
    """The next message of a worker's pipe, waiting in a thread; RuntimeError if the worker
    dies or stays silent ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if await asyncio.to_thread(conn.poll, 0.2):
            try:
                return conn.recv()
            except EOFError:
                raise RuntimeError(f"load worker {proc.pid} exited (code {proc.exitcode})") from None
        if not proc.is_alive() and not conn.poll():
            raise RuntimeError(f"load worker {proc.pid} exited (code {proc.exitcode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"load worker {proc.pid} silent for {timeout:.0f} s")


# ---- output --------------------------------------------------------------------------------
def format_table(result: dict, details: dict | None = None) -> str:
    """A human-readable summary of a result."""
    d = details or {}
    lat = result["latency_ms"]
    server = (f"{result['server_cpu_percent']:.1f} % CPU, {result['server_rss_mb']:.1f} MB RSS"
              if result["server_rss_mb"] else "n/a (pass --server-pid)")
    loop = (f"  (event loop delay p99 {d['loop_delay_p99_ms']:.1f} ms, max {d['loop_delay_max_ms']:.1f} ms)"
            if "loop_delay_p99_ms" in d else "")
    rows = [
        ("target", f"{result['target']}: {result['clients']} clients in {result['rooms']} rooms, "
                   f"{result['duration_s']:g} s measured"),
        ("connected at end", f"{result['connected']} / {result['clients']}"),
        ("inputs sent", f"{result['inputs_sent']}  ({result['messages_per_s']['in']:.1f}/s)"),
        ("frames received", f"{result['frames_received']}  ({result['messages_per_s']['out']:.1f}/s)"),
        ("input -> ack", f"p50 {lat['p50']:.1f} ms   p99 {lat['p99']:.1f} ms   max {lat['max']:.1f} ms   "
                         f"(n={lat['count']})"),
        ("frame jitter p99", f"{result['jitter_p99_ms']:.1f} ms"),
        ("errors / disconnects", f"{result['errors']} / {result['disconnects']}" + "".join(
            f"  ({label} {', '.join(f'{c}: {n}' for c, n in sorted(d[key].items()))})"
            for label, key in (("error codes", "error_codes"), ("close codes", "close_codes")) if d.get(key))),
        ("unacked inputs", str(result["unacked"])),
        ("server", server),
        ("load generator", f"{result['loadgen_cpu_percent']:.1f} % CPU{loop}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``starhold loadtest``."""
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the gateway's URL")
    parser.add_argument("--clients", type=int, default=100, help="bots (N)")
    parser.add_argument("--rooms", type=int, default=1, help="game sessions to create (M), or systems with --systems")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds (S)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after the ramp before measuring (W)")
    parser.add_argument("--procs", type=int, default=1, help="load-generator processes (K; 0: in this process)")
    parser.add_argument("--ramp", type=float, default=None, help="seconds to join every bot (default N/250, 2-5)")
    parser.add_argument("--systems", action="store_true", help="use the first M solar systems, not new games")
    parser.add_argument("--server-pid", type=int, action="extend", nargs="+", default=[], dest="server_pids",
                        metavar="PID", help="server processes to sample (with their descendants)")
    parser.add_argument("--json", dest="json_path", metavar="PATH", help="write the result as JSON")
    parser.add_argument("--seed", type=int, default=None)


def main(args: argparse.Namespace) -> int:
    """Run ``starhold loadtest`` with parsed ``args``; prints the table, writes ``--json``."""
    _raise_fd_limit()
    details: dict = {}
    result = asyncio.run(run_loadtest(args.url, args.clients, args.rooms, args.duration, args.warmup, args.procs,
                                      args.server_pids, args.systems, ramp=args.ramp, seed=args.seed,
                                      details=details))
    print(format_table(result, details))
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


__all__ = ["run_loadtest", "frame_ack", "full_ack", "decode_cost", "sample_frame", "percentile", "merge", "split",
           "sample_usage", "format_table", "add_arguments", "main", "RESULT_KEYS"]


if __name__ == "__main__":  # python -m starhold.client.loadtest ...
    _parser = argparse.ArgumentParser(prog="starhold loadtest", description=__doc__.split("\n\n")[0])
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
