"""The load tool's measurements (``client.loadtest``): decoding a frame only up to its ack,
percentiles, merging the workers' results, and sampling CPU and memory of process trees."""

from __future__ import annotations

import os
import random
import time
import timeit
from typing import Iterable, Sequence

import msgpack

from ..rooms import protocol

__all__ = ["cpu_percent_sum", "cpu_times_by_role", "decode_cost", "frame_ack", "full_ack", "merge", "percentile",
           "process_role", "ROLES", "sample_frame", "SAMPLE_PERIOD", "sample_usage", "split",
           "voluntary_switches", "wakeups_by_role"]

SAMPLE_PERIOD = 0.5
"""Seconds between psutil samples of CPU and RSS."""


_FRAME_START = b"\x93" + msgpack.packb(protocol.FRAME)
_Unpacker = msgpack.Unpacker


def frame_ack(data: bytes) -> int | None:
    """The ``ack`` of a ``frame`` message, reading only the envelope header, type, seq, map
    header and the first two key/value pairs (``tick``, ``ack``); None if ``data`` is not a
    frame. Falls back to a full decode if the keys are not in the documented order."""
    if not data.startswith(_FRAME_START):
        return None
    unpacker = _Unpacker(raw=False)
    unpacker.feed(data)
    unpacker.read_array_header()
    unpacker.skip()  # type
    unpacker.skip()  # seq (the tick)
    unpacker.read_map_header()
    if unpacker.unpack() == "tick":
        unpacker.skip()
        if unpacker.unpack() == "ack":
            return unpacker.unpack()
    return protocol.decode_server(data)[2].get("ack", 0)


def full_ack(data: bytes) -> int | None:
    """``frame_ack`` by a full decode (the reference, and the cost it saves)."""
    type_, _, payload = protocol.decode_server(data)
    return payload["ack"] if type_ == protocol.FRAME else None


def sample_frame(ships: int, keyframe: bool = False, tick: int = 51234, ack: int = 4242) -> bytes:
    """A frame with ``ships`` moving ships, built like the rooms build them."""
    rng = random.Random(ships)
    rows = [[i, rng.uniform(-500, 500), rng.uniform(-500, 500), 3] for i in range(1, ships + 1)]
    names = [[i, f"lt-{i}"] for i in range(1, ships + 1)] if keyframe else []
    tail = protocol.pack_frame_tail(None if keyframe else tick - 1, tick / protocol.TICK_RATE, rows, [], names)
    return protocol.encode_frame(tick, ack, tail, protocol.FRAME_KEYS)


def decode_cost(ships: int = 100, keyframe: bool = False, number: int = 5000, repeat: int = 5) -> dict:
    """Microseconds per frame of ``full_ack`` and ``frame_ack`` on a ``sample_frame``
    (best of ``repeat``), and the frame's size in bytes."""
    data = sample_frame(ships, keyframe)
    full = min(timeit.repeat(lambda: full_ack(data), number=number, repeat=repeat)) / number * 1e6
    prefix = min(timeit.repeat(lambda: frame_ack(data), number=number, repeat=repeat)) / number * 1e6
    return {"ships": ships, "keyframe": keyframe, "bytes": len(data), "full_us": full, "prefix_us": prefix}


# ---- statistics ----------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linearly interpolated percentile (numpy's default, like loadgen.mjs) of sorted values,
    ``q`` in [0, 1]; 0.0 if empty."""
    n = len(sorted_values)
    if n == 0:
        return 0.0
    pos = (n - 1) * q
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` near-equal shares (the first ones one larger)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def merge(workers: Sequence[dict], *, clients: int, rooms: int, duration: float) -> dict:
    """Merge worker results (raw samples and counters) into the JSON result (without the
    psutil figures, which the caller adds): percentiles over all samples together."""
    latency = sorted(v for w in workers for v in w["latency"])
    jitter = sorted(v for w in workers for v in w["jitter"])
    total = lambda key: sum(int(w[key]) for w in workers)  # noqa: E731
    inputs, frames = total("inputs_sent"), total("frames_received")
    return {
        "target": "starhold",
        "clients": clients,
        "rooms": rooms,
        "duration_s": duration,
        "connected": total("connected"),
        "inputs_sent": inputs,
        "frames_received": frames,
        "latency_ms": {"p50": percentile(latency, 0.5), "p99": percentile(latency, 0.99),
                       "max": float(latency[-1]) if latency else 0.0, "count": len(latency)},
        "jitter_p99_ms": percentile(jitter, 0.99),
        "messages_per_s": {"in": inputs / duration if duration > 0 else 0.0,
                           "out": frames / duration if duration > 0 else 0.0},
        "errors": total("errors"),
        "disconnects": total("disconnects"),
        "unacked": total("unacked"),
        "server_cpu_percent": 0.0,
        "server_rss_mb": 0.0,
        "loadgen_cpu_percent": 0.0,
    }


# ---- one worker ----------------------------------------------------------------------------


def _tree(pids: Iterable[int], cache: dict) -> list:
    """psutil processes of ``pids`` and all their descendants (cached so that cpu_percent
    measures between calls); the first sample of a process new to the cache counts 0."""
    import psutil

    found = []
    for pid in pids:
        try:
            root = cache.get(pid) or cache.setdefault(pid, psutil.Process(pid))
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            proc = cache.setdefault(proc.pid, proc)
            if proc not in found:
                found.append(proc)
    return found


def cpu_percent_sum(procs: Iterable) -> float:
    """The sum of ``proc.cpu_percent(None)`` over ``psutil.Process`` objects (percent of one
    core each, since that process's previous call); processes gone meanwhile count 0."""
    import psutil

    total = 0.0
    for proc in procs:
        try:
            total += proc.cpu_percent(None)
        except psutil.Error:
            pass
    return total


ROLES = ("server", "room hosts", "ray")
"""The groups of a server's processes in ``sample_usage``'s CPU breakdown (``process_role``)."""
_RAY_DAEMONS = ("raylet", "gcs_server", "log_monitor", "dashboard", "runtime_env", "monitor.py")


def process_role(proc) -> str:
    """The group of a server process (a ``psutil.Process``) in the CPU breakdown: ``"room
    hosts"`` for Ray actors of class ``RoomHost`` (process title ``ray::RoomHost``), ``"ray"``
    for Ray's other actors and daemons (raylet, GCS, log monitor, dashboard agent...),
    ``"server"`` for the rest (Starhold's gateway processes, a Colyseus server). Daemons are
    recognized by their program or script (the first three arguments: ``starhold serve
    --no-dashboard`` is a server). A process that is gone counts as ``"server"``."""
    import psutil

    try:
        name = proc.name()
        args = proc.cmdline()
    except psutil.Error:
        return "server"
    title = " ".join(args[:1]) if args else name
    if title.startswith("ray::") or name.startswith("ray::"):
        return "room hosts" if "RoomHost" in title or "RoomHost" in name else "ray"
    if any(daemon in part for part in args[:3] for daemon in _RAY_DAEMONS):  # the program or its script
        return "ray"
    return "server"


def cpu_times_by_role(before: dict, after: dict, seconds: float) -> dict[str, dict[str, float]]:
    """The CPU of each role (``ROLES``) between two snapshots ``{pid: (role, user s, system
    s)}`` taken ``seconds`` apart, as ``{role: {"user": %, "system": %}}`` (100 = one core); a
    process missing from ``before`` (first seen in between: started then) counts from 0."""
    out = {role: {"user": 0.0, "system": 0.0} for role in ROLES}
    for pid, (role, user, system) in after.items():
        _, user0, system0 = before.get(pid, (role, 0.0, 0.0))
        out[role]["user"] += 100.0 * max(0.0, user - user0) / seconds
        out[role]["system"] += 100.0 * max(0.0, system - system0) / seconds
    return out


def wakeups_by_role(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """Voluntary context switches per second of each role (``ROLES``) between two snapshots
    ``{pid: (role, count)}`` (``voluntary_switches``) taken ``seconds`` apart: how often the
    role's threads blocked and were woken again (each wake-up finds a process's caches colder;
    a Ray actor's own threads wake ~150 times a second, most of them its main thread's 10 ms
    timer); a process missing from ``before`` counts from 0."""
    out = {role: 0.0 for role in ROLES}
    for pid, (role, count) in after.items():
        out[role] += max(0, count - before.get(pid, (role, 0))[1]) / seconds
    return out


def voluntary_switches(proc) -> int:
    """Voluntary context switches of all of a process's threads (a ``psutil.Process``): the
    sum over ``/proc/<pid>/task/*/status`` on Linux, where psutil's ``num_ctx_switches`` counts
    the main thread only (in a Ray actor that is Ray's own timer thread, not the event loop);
    psutil's count elsewhere. Threads that ended are not counted. Raises ``psutil.Error`` for a
    process that is gone."""
    task = f"/proc/{proc.pid}/task"
    try:
        tids = os.listdir(task)
    except OSError:
        return proc.num_ctx_switches().voluntary
    total = 0
    for tid in tids:
        try:
            with open(f"{task}/{tid}/status") as status:
                for line in status:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
                        break
        except OSError:  # the thread ended meanwhile
            continue
    return total


def _times(procs: Iterable, roles: dict, into: dict, switches: dict | None = None) -> None:
    """Record ``(role, user s, system s)`` of each process in ``into`` (by pid), and with
    ``switches`` its ``(role, voluntary context switches)`` there; ``roles`` caches each pid's
    role. Processes gone keep their last record."""
    import psutil

    for proc in procs:
        try:
            times = proc.cpu_times()
            voluntary = voluntary_switches(proc) if switches is not None else 0
        except psutil.Error:
            continue
        role = roles.get(proc.pid)
        if role is None:
            role = roles[proc.pid] = process_role(proc)
        into[proc.pid] = (role, times.user, times.system)
        if switches is not None:
            switches[proc.pid] = (role, voluntary)


def sample_usage(server_pids: Sequence[int], loadgen_pids: Sequence[int], start: float, end: float,
                 period: float = SAMPLE_PERIOD) -> dict:
    """Sample CPU % and RSS every ``period`` seconds between Unix times ``start`` and ``end``
    (blocking: run it in a thread). Returns ``server_cpu_percent`` (mean of the samples of the
    summed CPU of ``server_pids`` and their descendants, 100 = one core), ``server_rss_mb``
    (largest summed RSS), ``loadgen_cpu_percent`` (mean summed CPU of ``loadgen_pids``) and
    ``server_cpu_breakdown``: the server's CPU over the window by role and mode,
    ``{role: {"user": %, "system": %}}`` (``cpu_times_by_role``; from the processes' CPU times
    at the first and last sample, so it sums to about ``server_cpu_percent``), and
    ``server_wakeups``: ``{role: voluntary context switches per second}`` over the same window
    (``wakeups_by_role``)."""
    import psutil

    server_cache: dict = {}
    loadgen_cache: dict = {}
    roles: dict[int, str] = {}
    time.sleep(max(0.0, start - time.time()))

    procs = _tree(server_pids, server_cache)
    cpu_percent_sum(procs)  # prime: cpu_percent(None) measures since the last call
    first: dict = {}
    first_switches: dict = {}
    _times(procs, roles, first, first_switches)
    first_at = time.monotonic()
    last = dict(first)
    last_switches = dict(first_switches)
    last_at = first_at
    cpu_percent_sum(_tree(loadgen_pids, loadgen_cache))
    server_cpu: list[float] = []
    loadgen_cpu: list[float] = []
    max_rss = 0
    next_at = time.time() + period
    while next_at <= end + 1e-3:
        time.sleep(max(0.0, next_at - time.time()))
        procs = _tree(server_pids, server_cache)
        server_cpu.append(cpu_percent_sum(procs))
        _times(procs, roles, last, last_switches)
        last_at = time.monotonic()
        rss = 0
        for proc in procs:
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                pass
        max_rss = max(max_rss, rss)
        loadgen_cpu.append(cpu_percent_sum(_tree(loadgen_pids, loadgen_cache)))
        next_at += period
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    return {"server_cpu_percent": mean(server_cpu), "server_rss_mb": max_rss / (1024 * 1024),
            "loadgen_cpu_percent": mean(loadgen_cpu),
            "server_cpu_breakdown": cpu_times_by_role(first, last, max(1e-9, last_at - first_at)),
            "server_wakeups": wakeups_by_role(first_switches, last_switches, max(1e-9, last_at - first_at))}


# ---- the run -------------------------------------------------------------------------------
