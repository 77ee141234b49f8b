"""Driver of the lean load generators of the "sector" benchmark (``benchmarks/loadgen``).

The same Node design on both sides (``benchmarks/loadgen/common.mjs``: raw ``ws`` sockets,
many clients per process, 10 inputs a second each (``input_hz``), one client in ten decoding frames), run
as K processes whose measurement windows are aligned (each joins its clients, reports ready,
then all measure over the same wall-clock window). ``run_lean`` returns the result dict shared
with ``starhold.client.loadtest`` and ``benchmarks/colyseus_peer.py`` (``RESULT_KEYS``) plus:

- ``server_cpu_percent`` / ``server_rss_mb``: psutil samples every 0.5 s of the server's
  processes and all their descendants (Starhold: ``starhold serve``, its gateways, Ray and the
  room actors; Colyseus: its one Node process), 100 = one core;
- ``loadgen_cpu_percent``: the same for the load-generator processes;
- ``machine_cpu_percent``: the whole machine's CPU over the window (100 = one core), so what
  other work took is the rest; ``loadavg``: the 1-minute load average at the window's end;
- ``loadgen_loop_delay_p99_ms``: the worst event-loop delay p99 among the load generators;
- ``input_hz``: the inputs each client sent per second (``--input-hz`` of the load generators).

Usage: ``npm --prefix benchmarks/loadgen ci`` once.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from colyseus_peer import _loadgen_result, _merge, _NodeProcess, _read_samples, _split, _wait_for_event
from starhold.client.loadstats import sample_usage

LOADGEN_DIR = Path(__file__).resolve().parent / "loadgen"
MAX_INPUT_HZ = 20.0
"""Most inputs a client may send a second: Starhold's per-socket rate limit (``MAX_INPUT_HZ``
in ``loadgen/common.mjs``)."""


def check_installed() -> None:
    """Raise RuntimeError when ``node`` or ``benchmarks/loadgen/node_modules`` is missing."""
    if shutil.which("node") is None:
        raise RuntimeError("`node` (Node.js >= 20) is not on PATH")
    if not (LOADGEN_DIR / "node_modules").is_dir():
        raise RuntimeError(f"{LOADGEN_DIR / 'node_modules'} is missing: run `npm --prefix benchmarks/loadgen ci`")


def _machine_cpu(start: float, end: float, out: dict) -> None:
    time.sleep(max(0.0, start - time.time()))
    before = psutil.cpu_times()
    time.sleep(max(0.0, end - time.time()))
    after = psutil.cpu_times()
    busy = lambda t: t.user + t.nice + t.system + t.irq + t.softirq + t.steal  # noqa: E731
    out["machine_cpu_percent"] = 100.0 * (busy(after) - busy(before)) / max(1e-9, end - start)
    out["loadavg"] = os.getloadavg()[0]


def run_lean(target: str, script: str, args: list[str], clients: int, procs: int, server_pids: list[int],
             duration: float, warmup: float, input_hz: float = 10.0) -> dict:
    """Run ``node benchmarks/loadgen/<script> <args> --clients n_k --offset o_k`` in ``procs``
    processes (``clients`` split evenly; client indices are global, ``o_k`` the first of process
    k), each client sending ``input_hz`` inputs a second, sample the servers and load
    generators over the common window and return the merged result (see the module
    docstring). Every child is killed on return, errors included. Raises RuntimeError when a
    load generator fails, ValueError for ``input_hz`` outside (0, MAX_INPUT_HZ]."""
    if not 0 < input_hz <= MAX_INPUT_HZ:
        raise ValueError(f"input_hz must be in (0, {MAX_INPUT_HZ}], not {input_hz!r}")
    check_installed()
    procs = max(1, min(procs, clients))
    children: list[_NodeProcess] = []
    tmpdir = Path(tempfile.mkdtemp(prefix="lean-loadgen-"))
    try:
        paths = []
        offset = 0
        for i, share in enumerate(_split(clients, procs)):
            path = tmpdir / f"samples-{i}.bin"
            paths.append(path)
            children.append(_NodeProcess([script, *args, "--clients", str(share), "--offset", str(offset),
                                          "--duration", str(duration), "--warmup", str(warmup),
                                          "--samples", str(path), "--sync", "--input-hz", f"{input_hz:g}"],
                                         stdin=True, cwd=LOADGEN_DIR))
            offset += share
        _wait_for_event(children, "ready", timeout=60.0 + clients * 0.05)
        start = time.time() + warmup
        for child in children:
            child.popen.stdin.write(f"go {start * 1000:.0f}\n")
            child.popen.stdin.flush()
        machine: dict = {}
        sampler = threading.Thread(target=_machine_cpu, args=(start, start + duration, machine), daemon=True)
        sampler.start()
        usage = sample_usage(server_pids, [c.popen.pid for c in children], start, start + duration)
        sampler.join()
        results = [_loadgen_result(c, timeout=max(30.0, start + duration + 20.0 - time.time())) for c in children]
        merged = _merge(results, [_read_samples(p) for p in paths], duration, target=target)
        if merged["errors"] or merged["disconnects"]:  # say what they were (a few lines per process)
            for child in children:
                for line in list(child.stderr_tail)[-8:]:
                    if not line.startswith("{"):
                        print(f"{target} loadgen: {line}", file=sys.stderr)
        merged.update(usage)
        merged.update(machine)
        merged["loadgen_loop_delay_p99_ms"] = max(float(c.diagnostics.get("event_loop_delay_p99_ms", 0.0))
                                                  for c in children)
        merged["input_hz"] = input_hz
        return merged
    finally:
        for child in reversed(children):
            child.kill()
        shutil.rmtree(tmpdir, ignore_errors=True)
