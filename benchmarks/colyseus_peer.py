"""Colyseus 0.18 peer for the realtime "sector" benchmark.

Runs the Node side living in ``benchmarks/colyseus`` (``server.mjs`` and
``loadgen.mjs``, see its README) and returns one result dict in the schema shared
with the Starhold side of ``benchmarks/realtime.py``::

    {"target": "colyseus", "clients", "rooms", "duration_s", "connected",
     "inputs_sent", "frames_received",
     "latency_ms": {"p50", "p99", "max", "count"}, "jitter_p99_ms",
     "messages_per_s": {"in", "out"}, "errors", "disconnects", "unacked",
     "server_cpu_percent", "server_rss_mb",
     "loadgen_cpu_percent", "loadgen_loop_delay_p99_ms"}

``server_cpu_percent`` is the mean of psutil samples taken every 0.5 s during the
measurement window (100 = one core) and ``server_rss_mb`` the largest RSS seen.
The two ``loadgen_*`` keys are diagnostics: the load generators' total CPU over
the window and the worst event-loop delay p99 among them (if that delay is large,
the measured latency includes the load generator's own queueing).

With ``procs > 1`` the clients are split over several load-generator processes
whose measurement windows are aligned (each joins its clients, reports ready,
then all start measuring at the same wall-clock time); latency and jitter
percentiles are computed from their merged raw samples.

Usage: python benchmarks/colyseus_peer.py --clients 200 --duration 10 [--warmup 5] [--procs 2]
Requires ``npm --prefix benchmarks/colyseus ci`` once.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path

import psutil

from starhold.client.loadstats import cpu_percent_sum

COLYSEUS_DIR = Path(__file__).resolve().parent / "colyseus"
SAMPLE_PERIOD_S = 0.5
SERVER_START_TIMEOUT_S = 30.0
LOOP_DELAY_WARN_MS = 25.0


class _NodeProcess:
    """A ``node`` child in its own process group, with its output drained by threads.

    stdout lines go to ``lines`` (a queue); stderr lines that are JSON objects with
    an ``event`` key go to ``events``, every stderr line is kept in a short tail
    for error messages.
    """

    def __init__(self, args: list[str], *, stdin: bool = False, cwd: Path = COLYSEUS_DIR) -> None:
        self.popen = subprocess.Popen(
            ["node", *args],
            cwd=cwd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # own process group: killpg() reaches everything it spawns
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.events: queue.Queue[dict] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self.diagnostics: dict = {}
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_stdout(self) -> None:
        for line in self.popen.stdout:
            self.lines.put(line.rstrip("\n"))

    def _read_stderr(self) -> None:
        for line in self.popen.stderr:
            line = line.rstrip("\n")
            self.stderr_tail.append(line)
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and "event" in event:
                    if event["event"] == "diagnostics":
                        self.diagnostics = event
                    self.events.put(event)

    def join_readers(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def describe_failure(self) -> str:
        code = self.popen.poll()
        tail = "\n".join(self.stderr_tail)
        return f"exit code {code}; stderr tail:\n{tail}"

    def kill(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it does not exit within 3 s."""
        if self.popen.poll() is None:
            for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default, same as loadgen.mjs); 0 if empty."""
    if not sorted_values:
        return 0.0
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _read_samples(path: Path) -> tuple[array, array, list[str]]:
    """Read a loadgen ``--samples`` file: (latency_ms, jitter_ms, room_ids)."""
    data = path.read_bytes()
    (header_len,) = struct.unpack_from("<I", data, 0)
    header = json.loads(data[4 : 4 + header_len].decode("utf-8"))
    offset = -(-(4 + header_len) // 8) * 8  # header is zero-padded to 8 bytes
    values = array("d")
    values.frombytes(data[offset:])
    if sys.byteorder != "little":
        values.byteswap()
    n_lat, n_jit = header["latency"], header["jitter"]
    if len(values) != n_lat + n_jit:
        raise RuntimeError(f"{path}: expected {n_lat + n_jit} samples, found {len(values)}")
    return values[:n_lat], values[n_lat:], list(header["room_ids"])


def _split(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` near-equal positive shares."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _wait_for_listening(server: _NodeProcess) -> int:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            line = server.lines.get(timeout=0.2)
        except queue.Empty:
            if server.popen.poll() is not None:
                break
            continue
        if line.startswith("listening "):
            return int(line.split()[1])
    raise RuntimeError(f"Colyseus server did not start: {server.describe_failure()}")


def _wait_for_event(procs: list[_NodeProcess], name: str, timeout: float) -> None:
    """Wait until every process has emitted event ``name`` on stderr."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"loadgen did not report {name!r} in {timeout:.0f} s: {proc.describe_failure()}")
            try:
                event = proc.events.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"loadgen exited before {name!r}: {proc.describe_failure()}") from None
                continue
            if event.get("event") == name:
                break


def _loadgen_result(proc: _NodeProcess, timeout: float) -> dict:
    """Wait for a loadgen to exit and return its JSON result line."""
    try:
        proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"loadgen did not finish in {timeout:.0f} s: {proc.describe_failure()}") from None
    proc.join_readers(5.0)
    result = None
    while not proc.lines.empty():
        line = proc.lines.get_nowait()
        if line.startswith("{"):
            result = json.loads(line)
    if proc.popen.returncode != 0 or result is None:
        raise RuntimeError(f"loadgen failed: {proc.describe_failure()}")
    return result


def _sample_window(server: _NodeProcess, loadgens: list[_NodeProcess], start: float, end: float) -> dict:
    """Sample CPU % and RSS every SAMPLE_PERIOD_S between wall-clock ``start`` and ``end``."""
    server_ps = psutil.Process(server.popen.pid)
    loadgen_ps = [psutil.Process(p.popen.pid) for p in loadgens]
    time.sleep(max(0.0, start - time.time()))
    # cpu_percent(None) measures since the previous call: prime it at the window start.
    for ps in (server_ps, *loadgen_ps):
        ps.cpu_percent(None)
    server_cpu: list[float] = []
    loadgen_cpu: list[float] = []
    max_rss = server_ps.memory_info().rss
    next_at = time.time() + SAMPLE_PERIOD_S
    while next_at <= end + 1e-3:
        time.sleep(max(0.0, next_at - time.time()))
        try:
            server_cpu.append(server_ps.cpu_percent(None))
            max_rss = max(max_rss, server_ps.memory_info().rss)
        except psutil.NoSuchProcess:
            raise RuntimeError(f"Colyseus server died during the run: {server.describe_failure()}") from None
        loadgen_cpu.append(cpu_percent_sum(loadgen_ps))
        next_at += SAMPLE_PERIOD_S
    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    return {
        "server_cpu_percent": mean(server_cpu),
        "server_rss_mb": max_rss / (1024 * 1024),
        "loadgen_cpu_percent": mean(loadgen_cpu),
    }


LATENCY_EDGES = (10.0, 20.0, 90.0, 100.0, 105.0, 110.0, 115.0, 120.0)
"""Milliseconds: the edges of ``latency_shares`` (under 10, 10-20, 20-90, ..., 120 and over)."""


def latency_shares(sorted_values: list[float]) -> list[float]:
    """Percent of ``sorted_values`` (ms, ascending) in each bucket of ``LATENCY_EDGES``: below
    the first edge, between consecutive edges, at or above the last (``len(edges) + 1`` values)."""
    import bisect

    if not sorted_values:
        return [0.0] * (len(LATENCY_EDGES) + 1)
    cuts = [0, *(bisect.bisect_left(sorted_values, edge) for edge in LATENCY_EDGES), len(sorted_values)]
    return [100.0 * (b - a) / len(sorted_values) for a, b in zip(cuts, cuts[1:])]


def _merge(results: list[dict], samples: list[tuple[array, array, list[str]]], duration: float,
           target: str = "colyseus") -> dict:
    """Merge per-process loadgen results; percentiles come from the raw samples."""
    latency = sorted(v for lat, _, _ in samples for v in lat)
    jitter = sorted(v for _, jit, _ in samples for v in jit)
    rooms = {room_id for _, _, ids in samples for room_id in ids}

    def total(key: str) -> int:
        return sum(int(r[key]) for r in results)

    inputs_sent, frames_received = total("inputs_sent"), total("frames_received")
    return {
        "target": target,
        "clients": total("clients"),
        "rooms": len(rooms),
        "duration_s": duration,
        "connected": total("connected"),
        "inputs_sent": inputs_sent,
        "frames_received": frames_received,
        "latency_ms": {
            "p50": _percentile(latency, 0.5),
            "p99": _percentile(latency, 0.99),
            "max": latency[-1] if latency else 0.0,
            "count": len(latency),
            "shares": latency_shares(latency),
        },
        "jitter_p99_ms": _percentile(jitter, 0.99),
        "messages_per_s": {
            "in": inputs_sent / duration if duration > 0 else 0.0,
            "out": frames_received / duration if duration > 0 else 0.0,
        },
        "errors": total("errors"),
        "disconnects": total("disconnects"),
        "unacked": total("unacked"),
    }


def _warn_if_loadgen_saturated(result: dict, procs: int) -> None:
    """Tell the user (stderr) when the numbers say more about the load generator than the server.

    Symptoms: the inputs did not go out at the nominal 10/s per client, or a load
    generator's event loop lagged (its clients then decode patches late, which
    inflates latency and jitter).
    """
    nominal = result["clients"] * 10.0
    rate = result["messages_per_s"]["in"]
    delay = result["loadgen_loop_delay_p99_ms"]
    if rate < 0.95 * nominal or delay > LOOP_DELAY_WARN_MS:
        print(
            f"colyseus_peer: warning: load generator saturated (inputs {rate:.0f}/s of {nominal:.0f}/s nominal, "
            f"event-loop delay p99 {delay:.0f} ms, loadgen CPU {result['loadgen_cpu_percent']:.0f}% over {procs} "
            f"process(es)); try more --procs or fewer clients",
            file=sys.stderr,
        )


def run_colyseus(clients: int, duration: float = 20.0, warmup: float = 5.0, procs: int = 1, port: int = 0,
                 lean: bool = True, input_hz: float = 10.0) -> dict:
    """Run the sector scenario against a local Colyseus 0.18 server and return the result dict.

    ``lean`` (default): the lean load generator (``benchmarks/loadgen/colyseus.mjs``, driven by
    ``benchmarks/lean_loadgen.py``: raw ``ws`` sockets, one client in ten on the SDK decoding
    patches); False: ``benchmarks/colyseus/loadgen.mjs``, every client on the SDK.

    ``clients`` players join rooms of 100 (so ``clients / 100`` rooms), the first
    ``warmup`` seconds after every client has joined are discarded and the next
    ``duration`` seconds are measured. ``procs`` load-generator processes share the
    clients; ``port`` 0 picks a free loopback port; each client sends ``input_hz`` inputs a
    second (the lean load generator only: the SDK one sends 10, and raises ``ValueError`` for
    another rate). All child processes are killed on return, including on errors.
    """
    if clients < 1 or duration <= 0 or warmup < 0 or procs < 1:
        raise ValueError("need clients >= 1, duration > 0, warmup >= 0, procs >= 1")
    if not lean and input_hz != 10.0:
        raise ValueError("the SDK load generator sends 10 inputs a second; input_hz needs the lean one")
    if not (COLYSEUS_DIR / "node_modules").is_dir():
        raise RuntimeError(
            f"{COLYSEUS_DIR / 'node_modules'} is missing: run `npm --prefix benchmarks/colyseus ci` first"
        )
    if shutil.which("node") is None:
        raise RuntimeError("`node` (Node.js >= 20) is not on PATH")
    procs = min(procs, clients)

    children: list[_NodeProcess] = []
    tmpdir = Path(tempfile.mkdtemp(prefix="colyseus-bench-"))
    try:
        server = _NodeProcess(["server.mjs", str(port)])
        children.append(server)
        url = f"ws://127.0.0.1:{_wait_for_listening(server)}"
        if lean:
            from lean_loadgen import run_lean

            return run_lean("colyseus", "colyseus.mjs", ["--url", url], clients, procs, [server.popen.pid],
                            duration, warmup, input_hz)

        loadgens: list[_NodeProcess] = []
        sample_paths: list[Path] = []
        for i, share in enumerate(_split(clients, procs)):
            path = tmpdir / f"samples-{i}.bin"
            sample_paths.append(path)
            args = ["loadgen.mjs", "--url", url, "--clients", str(share), "--duration", str(duration),
                    "--warmup", str(warmup), "--samples", str(path), "--sync"]
            loadgen = _NodeProcess(args, stdin=True)
            children.append(loadgen)
            loadgens.append(loadgen)

        # Every process joins its clients, then all measure over the same window.
        _wait_for_event(loadgens, "ready", timeout=60.0 + clients * 0.05)
        start = time.time() + warmup
        for loadgen in loadgens:
            loadgen.popen.stdin.write(f"go {start * 1000:.0f}\n")
            loadgen.popen.stdin.flush()
        usage = _sample_window(server, loadgens, start, start + duration)

        # Grace for late acks (1 s) + consented leaves (<= 5 s) + slack.
        results = [_loadgen_result(p, timeout=max(30.0, start + duration + 20.0 - time.time())) for p in loadgens]
        samples = [_read_samples(path) for path in sample_paths]
        merged = _merge(results, samples, duration)
        merged.update(usage)
        merged["loadgen_loop_delay_p99_ms"] = max(
            float(p.diagnostics.get("event_loop_delay_p99_ms", 0.0)) for p in loadgens
        )
        _warn_if_loadgen_saturated(merged, procs)
        return merged
    finally:
        for child in reversed(children):
            child.kill()
        shutil.rmtree(tmpdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds discarded after the ramp")
    parser.add_argument("--procs", type=int, default=1, help="load-generator processes")
    parser.add_argument("--port", type=int, default=0, help="server port (0 = any free port)")
    parser.add_argument("--sdk-loadgen", action="store_true",
                        help="the old load generator (every client on the SDK) instead of the lean one")
    args = parser.parse_args()
    # Turn SIGTERM into SystemExit so run_colyseus' cleanup (killing the node process groups) runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print(json.dumps(run_colyseus(args.clients, args.duration, args.warmup, args.procs, args.port,
                                  lean=not args.sdk_loadgen)))


if __name__ == "__main__":
    main()
