"""The "sector" benchmark: Starhold against Colyseus 0.18, in one run on this machine.

Scenario (issue 4): rooms of 100 players; each ship flies toward its target at 50 world
units/s in a 1000 × 1000 sector; every client sends ``move_to`` with a sequence number 10 times
a second; the server sends 10 frames a second with every ship's position and the client's
ack. For each N in ``--clients`` (default 100, 500, 1000, 2000), N/100 rooms:

- **Starhold**: a fresh ``starhold serve`` (local Ray, SQLite in a temporary directory, its
  default layout: one gateway process, ``--gateways G`` for more, that hands each socket of an
  awake room to the room's host process, 10 rooms per host; ``--serve-args "--no-colocate"``
  keeps every socket in the gateway) with N/100 game sessions;
- **Colyseus 0.18**: ``benchmarks/colyseus`` (a ``sector`` room with
  ``setSimulationInterval(100)``, ``patchRate = 100``, @colyseus/schema ships ``{x, y, ack}``,
  ``benchmarks/colyseus_peer.py``).

Both are driven by the same lean load generator (``benchmarks/loadgen``, run by
``benchmarks/lean_loadgen.py``): Node, raw ``ws`` sockets, K processes of many clients, each
client sending its input 10 times a second, one client in ten decoding frames (Starhold with
@msgpack/msgpack, Colyseus with the official SDK) and measuring latency and jitter, the others
discarding them, so that the load generators cost little next to the servers. ``--old-loadgens``
runs the previous ones instead (``starhold loadtest``'s Python workers and the SDK on every
Colyseus client).

Latency is input -> ack: from sending input ``s`` to the first frame whose ack >= ``s``
(it includes waiting for the next 10 Hz frame, so the floor is near 50 ms mean and 100 ms p99).
A second table gives the share of inputs by latency (under 10 ms, 10-20, 20-90, 90-100, 100-105,
... 120 and over): the wait for the tick is uniform over the period, so the shape shows the
frame's delay (the low buckets) and inputs that waited an extra tick (the high ones).
A third table splits each server's CPU by group of processes (the server's own: Starhold's
gateways or the Colyseus process; Starhold's room hosts; Ray's daemons and other actors) into
user and system time: the system part is the kernel's work (the players' sockets, which both
servers pay alike, and Starhold's hops between processes, wake-ups and SQLite writes); the user
part is each server's own code. Its last columns count each group's wake-ups a second
(voluntary context switches of all its threads: a thread blocked and was woken again), which
cost a process cache-cold work each time; a Ray actor's own threads account for ~150 a second
each, whatever it serves (docs/operating.md, ninth session: one input batch per room per tick
instead of three took the room hosts' event loops from ~480 to ~340 wake-ups a second at 1,000
players, and their CPU down by about a fifth).
Jitter is the p99 of |frame inter-arrival - 100 ms|. "held" = p99 <= 150 ms with no
disconnects, no errors and every client connected.

Both load generators run on the same 2 cores as their server: the table shows their CPU, the
whole machine's CPU over the window (``mach%``: what is left is other work) and the 1-minute
load average. The summary gives, for each N run on both sides, the ratio of server CPU per
player Starhold/Colyseus (same N, so the ratio of their server CPU).

    python benchmarks/realtime.py [--clients 100 500 1000 2000] [--duration 20] [--gateways 1] [--procs 2]
        [--only starhold|colyseus] [--old-loadgens] [--serve-args "..."] [--repeat R] [--input-hz 10]
        [--json results.json]

``--repeat R`` runs R rounds per N, each a run of both servers, Starhold first in the odd
rounds (1st, 3rd...) and Colyseus first in the even ones, so that a machine getting faster or
slower during a series does not favour the same side in every round; the summary gives each
round's ratio and their median: on this machine one run's CPU moves by up to +-10 % from one
minute to the next, on both sides.

``--input-hz H`` has every client send H inputs a second instead of 10 (0 < H <= 20, the lean
load generators only; the frames stay at 10 a second): runs at two rates split a server's CPU
into what its inputs cost and the rest (the frames, the ticks and what a server costs idle), as
``(cpu(10) - cpu(5)) / 5`` per input a second per player.

``--serve-args`` adds options to ``starhold serve`` (one string, split as a shell would), e.g.
``--serve-args "--host-mode local"`` (the gateway and the rooms in one process,
no Ray) or ``--serve-args "--rooms-per-host 5"``.

Needs ``npm --prefix benchmarks/colyseus ci`` and ``npm --prefix benchmarks/loadgen ci`` once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from colyseus_peer import LATENCY_EDGES  # noqa: E402
from lean_loadgen import MAX_INPUT_HZ  # noqa: E402

TARGET_P99_MS = 150.0
ROOM_SIZE = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StarholdServer:
    """``starhold serve`` in its own process group on a free loopback port."""

    def __init__(self, gateways: int, serve_args: list[str] | None = None):
        self.gateways = gateways
        self.serve_args = list(serve_args or [])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tempfile.mkdtemp(prefix="starhold-bench-")
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "StarholdServer":
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "starhold.cli", "--log-level", "WARNING", "serve", "--port", str(self.port),
             "--data-dir", self.data, "--no-dashboard", "--gateways", str(self.gateways), *self.serve_args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        deadline = time.time() + 120
        for line in self.proc.stdout:
            if "is up" in line:
                break
            if time.time() > deadline:
                raise RuntimeError("starhold serve did not start")
        else:
            raise RuntimeError("starhold serve exited")
        # drain its output so it never blocks on a full pipe
        import threading

        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        asyncio.run(self._wait_healthy())
        return self

    async def _wait_healthy(self) -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("gateway not healthy")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            import psutil

            try:  # Ray workers the raylet started late may outlive it: end them too
                family = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.Error:
                family = []
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
            _, alive = psutil.wait_procs(family, timeout=5)
            for proc in alive:
                try:
                    proc.kill()
                except psutil.Error:
                    pass


def run_starhold(clients: int, duration: float, warmup: float, gateways: int, procs: int, lean: bool = True,
                 serve_args: list[str] | None = None, input_hz: float = 10.0) -> dict:
    from starhold.client.loadtest import _room_paths, run_loadtest

    rooms = max(1, clients // ROOM_SIZE)
    server = start_starhold(gateways, serve_args=serve_args)
    try:
        if not lean:
            return asyncio.run(run_loadtest(server.url, clients, rooms, duration, warmup=warmup, procs=procs,
                                            server_pids=[server.proc.pid]))
        from lean_loadgen import check_installed, run_lean

        check_installed()

        async def games() -> list[str]:
            async with aiohttp.ClientSession() as session:
                return await _room_paths(session, server.url, clients, rooms, False)

        paths = asyncio.run(games())
        result = run_lean("starhold", "starhold.mjs", ["--url", server.url, "--paths", ",".join(paths)],
                          clients, procs, [server.proc.pid], duration, warmup, input_hz)
        result["rooms"] = rooms
        return result
    finally:
        server.__exit__(None, None, None)


def start_starhold(gateways: int, attempts: int = 2, serve_args: list[str] | None = None) -> StarholdServer:
    """A started ``StarholdServer``, trying again on another port if it does not come up (the
    free port is picked before Ray starts, and Ray may take it first)."""
    for attempt in range(1, attempts + 1):
        server = StarholdServer(gateways, serve_args)
        try:
            return server.__enter__()
        except RuntimeError as exc:
            server.__exit__(None, None, None)
            if attempt == attempts:
                raise
            print(f"starhold serve did not come up ({exc}); trying again", file=sys.stderr, flush=True)
    raise AssertionError("unreachable")


def run_colyseus_side(clients: int, duration: float, warmup: float, procs: int, lean: bool = True,
                      input_hz: float = 10.0) -> dict:
    from colyseus_peer import run_colyseus

    return run_colyseus(clients, duration=duration, warmup=warmup, procs=procs, lean=lean, input_hz=input_hz)


def failed(target: str, clients: int, exc: Exception) -> dict:
    """The row of a run that could not complete (not held)."""
    nan = float("nan")
    return {"target": target, "clients": clients, "rooms": max(1, clients // ROOM_SIZE), "connected": 0,
            "latency_ms": {"p50": nan, "p99": nan, "max": nan, "count": 0}, "jitter_p99_ms": nan,
            "messages_per_s": {"in": nan, "out": nan}, "server_cpu_percent": nan, "server_rss_mb": nan,
            "loadgen_cpu_percent": nan, "errors": -1, "disconnects": -1, "failed": f"{type(exc).__name__}: {exc}"}


def held(result: dict) -> bool:
    return (result["latency_ms"]["p99"] <= TARGET_P99_MS and result["disconnects"] == 0 and result["errors"] == 0
            and result["connected"] == result["clients"])


def table(results: list[dict]) -> str:
    head = (f"{'server':<9} {'N':>5} {'rooms':>5} {'conn':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
            f"{'jit99':>6} {'in/s':>7} {'out/s':>7} {'srv CPU%':>8} {'srv MB':>7} {'gen CPU%':>8} "
            f"{'mach%':>6} {'load':>5} {'err':>4} {'disc':>4} {'held':>4}")
    lines = [head, "-" * len(head)]
    for r in results:
        lat = r["latency_ms"]
        lines.append(
            f"{r['target']:<9} {r['clients']:>5} {r['rooms']:>5} {r['connected']:>5} {lat['p50']:>7.1f} "
            f"{lat['p99']:>7.1f} {lat['max']:>7.1f} {r['jitter_p99_ms']:>6.1f} {r['messages_per_s']['in']:>7.0f} "
            f"{r['messages_per_s']['out']:>7.0f} {r['server_cpu_percent']:>8.1f} {r['server_rss_mb']:>7.0f} "
            f"{r.get('loadgen_cpu_percent', float('nan')):>8.1f} {r.get('machine_cpu_percent', float('nan')):>6.0f} "
            f"{r.get('loadavg', float('nan')):>5.2f} {r['errors']:>4} {r['disconnects']:>4} "
            f"{'yes' if held(r) else 'no':>4}")
    return "\n".join(lines)


def distribution(results: list[dict]) -> str:
    """Share of the sampled inputs by input -> ack latency (ms), per run (lean load generators)."""
    labels = [f"<{LATENCY_EDGES[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(LATENCY_EDGES, LATENCY_EDGES[1:])] \
        + [f">={LATENCY_EDGES[-1]:g}"]
    head = f"{'latency':<9} {'N':>5} " + " ".join(f"{label:>7}" for label in labels)
    lines = [head, "-" * len(head)]
    for r in results:
        shares = r["latency_ms"].get("shares")
        if shares:
            lines.append(f"{r['target']:<9} {r['clients']:>5} " + " ".join(f"{s:>6.1f}%" for s in shares))
    return "\n".join(lines) if len(lines) > 2 else ""


def breakdown(results: list[dict]) -> str:
    """The server's CPU per run by group of processes (``client.loadstats.process_role``: the
    server's own processes, i.e. Starhold's gateways or the Colyseus process; Starhold's room
    hosts; Ray's daemons and other actors), user + system, % of a core, and each group's
    wake-ups a second (voluntary context switches; see the module docstring)."""
    head = (f"{'CPU':<9} {'N':>5} {'server usr':>10} {'sys':>5} {'hosts usr':>9} {'sys':>5} {'ray usr':>7} {'sys':>5} "
            f"{'all usr':>7} {'sys':>5}  {'wake-ups/s: server':>18} {'hosts':>6} {'ray':>6}")
    lines = [head, "-" * len(head)]
    for r in results:
        parts = r.get("server_cpu_breakdown")
        if not parts:
            continue
        roles = ("server", "room hosts", "ray")
        cells = [(parts[role]["user"], parts[role]["system"]) for role in roles]
        user, system = sum(u for u, _ in cells), sum(s for _, s in cells)
        wakes = [(r.get("server_wakeups") or {}).get(role, 0.0) for role in roles]
        lines.append(f"{r['target']:<9} {r['clients']:>5} {cells[0][0]:>10.1f} {cells[0][1]:>5.1f} "
                     f"{cells[1][0]:>9.1f} {cells[1][1]:>5.1f} {cells[2][0]:>7.1f} {cells[2][1]:>5.1f} "
                     f"{user:>7.1f} {system:>5.1f}  {wakes[0]:>18,.0f} {wakes[1]:>6,.0f} {wakes[2]:>6,.0f}")
    return "\n".join(lines) if len(lines) > 2 else ""


def summary(results: list[dict]) -> str:
    out = []
    best = {}
    for r in results:
        if held(r):
            best[r["target"]] = max(best.get(r["target"], 0), r["clients"])
    for target in ("starhold", "colyseus"):
        out.append(f"largest N held (p99 <= {TARGET_P99_MS:.0f} ms, 0 errors, 0 disconnects): "
                   f"{target} {best.get(target, 0)}")
    if best.get("colyseus"):
        out.append(f"ratio starhold/colyseus: {best.get('starhold', 0) / best['colyseus']:.2f}")
    pairs: dict[int, list[tuple[dict, dict]]] = {}  # N -> (starhold, colyseus) of each round
    rounds: dict[tuple[int, int], dict[str, dict]] = {}
    for r in results:
        rounds.setdefault((r["clients"], r.get("round", 0)), {})[r["target"]] = r
    for (n, _), pair in sorted(rounds.items()):
        s, c = pair.get("starhold"), pair.get("colyseus")
        if s and c and c["server_cpu_percent"] > 0:
            pairs.setdefault(n, []).append((s, c))
    for n, runs in sorted(pairs.items()):
        for s, c in runs:
            out.append(f"N={n}: server CPU per player starhold/colyseus {s['server_cpu_percent'] / c['server_cpu_percent']:.2f}"
                       f" ({s['server_cpu_percent']:.0f} % vs {c['server_cpu_percent']:.0f} % of a core); "
                       f"load generators {s['loadgen_cpu_percent']:.0f} % vs {c['loadgen_cpu_percent']:.0f} %")
        if len(runs) > 1:
            ratios = sorted(s["server_cpu_percent"] / c["server_cpu_percent"] for s, c in runs)
            out.append(f"N={n}: median ratio of {len(runs)} rounds {statistics.median(ratios):.2f} "
                       f"(range {ratios[0]:.2f}-{ratios[-1]:.2f})")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 500, 1000, 2000])
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--gateways", type=int, default=1,
                        help="Starhold gateway processes (default 1, as `starhold serve`)")
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes (both servers)")
    parser.add_argument("--only", choices=["starhold", "colyseus"])
    parser.add_argument("--old-loadgens", action="store_true",
                        help="starhold loadtest (Python) and the SDK on every Colyseus client, not the lean ones")
    parser.add_argument("--serve-args", default="",
                        help='more options for `starhold serve`, one string (e.g. "--host-mode local")')
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds per N, each running both servers, Starhold first in odd rounds and "
                             "Colyseus first in even ones (the summary gives each "
                             "round's ratio and their median: a run alone moves by +-10 %%)")
    parser.add_argument("--input-hz", type=float, default=10.0,
                        help="inputs each client sends a second (default 10, at most 20; lean load generators)")
    parser.add_argument("--json", help="write every result to this file")
    args = parser.parse_args()
    serve_args = shlex.split(args.serve_args)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not 0 < args.input_hz <= MAX_INPUT_HZ or (args.old_loadgens and args.input_hz != 10):
        parser.error(f"--input-hz must be in (0, {MAX_INPUT_HZ:g}] (and 10 with --old-loadgens)")
    results = []
    for n in args.clients:
        for round_ in range(args.repeat):
            for target in ("starhold", "colyseus") if round_ % 2 == 0 else ("colyseus", "starhold"):
                if args.only and target != args.only:
                    continue
                print(f"running {target} with {n} clients...", file=sys.stderr, flush=True)
                try:
                    if target == "starhold":
                        result = run_starhold(n, args.duration, args.warmup, args.gateways, args.procs,
                                              lean=not args.old_loadgens, serve_args=serve_args,
                                              input_hz=args.input_hz)
                    else:
                        result = run_colyseus_side(n, args.duration, args.warmup, args.procs,
                                                   lean=not args.old_loadgens, input_hz=args.input_hz)
                except Exception as exc:  # a run that collapses (e.g. clients never all join) is a result too
                    print(f"{target} with {n} clients failed: {exc}", file=sys.stderr, flush=True)
                    result = failed(target, n, exc)
                result["round"] = round_
                results.append(result)
                print(table([result]).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"sector scenario, {args.duration:g} s measured after {args.warmup:g} s warm-up, "
          f"{os.cpu_count()} cores, Starhold with {args.gateways} gateway process(es)"
          f"{' and ' + args.serve_args if args.serve_args else ''}, "
          f"{args.procs} {'old' if args.old_loadgens else 'lean'} load-generator process(es) per run, "
          f"{args.input_hz:g} inputs a second per client")
    print(table(results))
    shares = distribution(results)
    if shares:
        print(shares)
    cpu = breakdown(results)
    if cpu:
        print(cpu)
    print(summary(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
