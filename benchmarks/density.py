"""Awake rooms per node: memory and idle CPU per awake room on local Ray (issue 17).

One run, two setups side by side (``SETUPS``): a process per room (``rooms_per_host=1``, no
spare: how rooms ran before room hosts) and room hosts as ``starhold serve`` runs them
(``--rooms-per-host``'s default rooms per host process, two spare hosts). For each:

1. **Idle CPU** per awake room, ``--cpu-rooms`` rooms of each kind, each kind in a namespace
   (and gateway) of its own so that its rooms are alone in their hosts: a system room with
   one idle connected player (joined through the gateway, then silent), a system room with
   nobody (woken, then left alone), a game session with one idle player and one with nobody.
   Idle timeout an hour, so a room with nobody stays awake as it does while it awaits
   hibernation. CPU % of one core of each host process over ``--cpu-seconds`` (``psutil``
   user + system time deltas, after ``--settle`` seconds for the loops to rest), divided by
   the awake rooms it runs (a system player's pilot room counts as a room: it is one).
   **The floor**: a bare Ray actor (an async actor with one method, nothing imported): what
   Ray itself costs per actor process.
2. **Density**: system rooms (distinct stars, nobody connected, awake) are woken one by one
   until ``--max-rooms`` (``--max-rooms-before`` for a process per room) are awake or the
   memory they take (the growth of the PSS of every process of the run) reaches
   ``--budget-gb``. Printed: USS and PSS of the host processes per room, the PSS growth per
   awake room (its share of a host, Ray's bookkeeping, the gateway's link), the awake rooms
   that fit in the budget and in the machine's total memory at that rate (PSS rather than the
   machine's available memory, so that other work on the machine does not count), and each
   room's wake time (the first call until the room has started).

Usage: python benchmarks/density.py [--max-rooms 400] [--max-rooms-before 40] [--budget-gb GB]
                                    [--margin-gb 2] [--cpu-rooms 8] [--cpu-seconds 20] [--settle 4]
(needs only the package's dependencies; local Ray is started and shut down by the script)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psutil

MB = 2**20
GB = 2**30


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def memory(pid: int) -> tuple[int, int, int]:
    """``(uss, pss, rss)`` of process ``pid``, bytes (``/proc/<pid>/smaps``)."""
    info = psutil.Process(pid).memory_full_info()
    return info.uss, info.pss, info.rss


async def idle_cpu(pids: dict[str, list[int]], seconds: float) -> dict[str, list[float]]:
    """CPU % of one core of each process of each group over the same ``seconds`` window."""
    before = {group: [cpu_seconds(pid) for pid in group_pids] for group, group_pids in pids.items()}
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    return {group: [100 * (cpu_seconds(pid) - t0) / elapsed for pid, t0 in zip(group_pids, before[group])]
            for group, group_pids in pids.items()}


class Bare:
    """The floor: an async Ray actor that imports nothing (a room host is an async actor)."""

    async def pid(self) -> int:
        return os.getpid()


async def room_pid(directory, kind: str, room_id: str) -> int:
    handle = await directory.get_if_active(kind, room_id)
    return (await handle.stats())["pid"]


async def ticking(directory, rooms: list[tuple[str, str]]) -> int:
    """How many of ``rooms`` (kind, id) have their alarm within a second: their loop runs."""
    count = 0
    for kind, room_id in rooms:
        alarm = (await (await directory.get_if_active(kind, room_id)).stats())["alarm"]
        count += alarm is not None and alarm - time.time() < 1.0
    return count


async def wake_system(directory, star: str) -> float:
    """Wake the system room ``star`` with nobody in it; returns the seconds it took."""
    from starhold.rooms.system.params import system_params

    started = time.perf_counter()
    handle = await directory.get("system", star, system_params(star))
    await handle.send_batch("density", [])
    return time.perf_counter() - started


def tree_pss() -> int:
    """PSS of this process and all its descendants (Ray's GCS, raylet, workers and actors
    when this process started Ray), bytes: what they take of the machine's memory, shared
    pages split among their users."""
    total = 0
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            total += proc.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


FLOOR = "bare Ray actor (the floor)"
GROUPS = ("system, one idle player", "system, nobody", "session, one idle player", "session, nobody")
SETUPS = {"a process per room": {"rooms_per_host": 1, "spare_hosts": 0},
          "room hosts (default)": {}}
"""The two ways rooms run, side by side: as before room hosts (one actor process per room),
and with room hosts as ``starhold serve`` runs them (its default rooms per host process, a spare)."""


class Space:
    """One namespace: a ``RayDirectory`` with ``hosts`` settings and a gateway on it."""

    def __init__(self, tmp: str, hosts: dict):
        self.tmp, self.hosts = tmp, hosts
        self.clients: list = []

    async def __aenter__(self):
        from aiohttp.test_utils import TestServer

        from starhold._runtime.ray_host import RayDirectory
        from starhold.gateway.app import create_app

        self.namespace = f"density-{uuid.uuid4().hex[:6]}"
        self.directory = RayDirectory({"data_dir": str(Path(self.tmp) / self.namespace), "idle_timeout": 3600,
                                       "log_level": "WARNING", **self.hosts}, namespace=self.namespace)
        self.server = TestServer(create_app(self.directory, web_dist=None), host="127.0.0.1", port=0)
        await self.server.start_server()
        self.url = str(self.server.make_url("")).rstrip("/")
        return self

    async def __aexit__(self, *exc):
        from starhold._runtime.host_pool import kill_namespace

        for client in self.clients:
            await client.__aexit__(None, None, None)
        await self.server.close()
        kill_namespace(self.namespace)

    async def pids(self) -> dict[int, int]:
        """Host process id -> awake rooms in it (pilot rooms of players included)."""
        out: dict[int, int] = {}
        for key in await self.directory.list_rooms():
            kind, room_id = key.split("/", 1)
            out.setdefault(await room_pid(self.directory, kind, room_id), 0)
            out[await room_pid(self.directory, kind, room_id)] += 1
        return out

    async def fill(self, group: str, count: int, stars, wake_times: list[float]) -> list[tuple[str, str]]:
        """Wake ``count`` rooms of ``group``; returns their ``(kind, id)``."""
        from starhold.client import StarholdClient, create_game, guest_token

        rooms = []
        for i in range(count):
            started = time.perf_counter()
            if group.startswith("system"):
                star = next(stars)
                if group.endswith("player"):
                    client = StarholdClient(self.url, star, name="idle", heartbeat=None, follow=False)
                    await client.__aenter__()
                    self.clients.append(client)
                    await client.join()
                else:
                    await wake_system(self.directory, star)
                rooms.append(("system", star))
            else:
                token = (await guest_token(self.url, f"density-{uuid.uuid4().hex[:6]}"))["token"]
                game = await create_game(self.url, token, seed=i)
                if group.endswith("player"):
                    client = StarholdClient.for_game(self.url, game["id"], token=token, heartbeat=None)
                    await client.__aenter__()
                    self.clients.append(client)
                    await client.join()
                rooms.append(("session", game["id"]))
            wake_times.append(time.perf_counter() - started)
        return rooms


async def idle_cpu_per_room(tmp: str, hosts: dict, args, stars, wake_times, floor_pid: int):
    """Each group in a namespace of its own (its rooms alone in their hosts): CPU % of one core
    of each host process over the same ``--cpu-seconds`` window, divided by the awake rooms it
    runs, and the floor's CPU in the same window; plus, per group, ``(ticking, rooms)``: rooms
    whose loop runs."""
    spaces = {}
    ticks = {}
    try:
        for group in GROUPS:
            space = spaces[group] = await Space(tmp, hosts).__aenter__()
            await space.fill(group, args.cpu_rooms, stars, wake_times)
        await asyncio.sleep(args.settle)  # joins done: the loops come to rest
        pids = {group: await space.pids() for group, space in spaces.items()}
        cpu = await idle_cpu({FLOOR: [floor_pid], **{g: list(p) for g, p in pids.items()}}, args.cpu_seconds)
        for group, space in spaces.items():
            rooms = [tuple(k.split("/", 1)) for k in await space.directory.list_rooms()]
            ticks[group] = (await ticking(space.directory, rooms), len(rooms))
        per_room = {group: [v / n for v, n in zip(cpu[group], pids[group].values())] for group in GROUPS}
        return per_room, ticks, cpu[FLOOR][0]
    finally:
        for space in spaces.values():
            await space.__aexit__()


async def density(tmp: str, hosts: dict, max_rooms: int, budget: float, stars, wake_times) -> dict:
    """Wake systems (nobody in them) until ``max_rooms`` are awake or the PSS of every process
    of the run grew by ``budget`` bytes."""
    async with Space(tmp, hosts) as space:
        await asyncio.sleep(2)
        pss0 = tree_pss()
        n, stopped = 0, "--max-rooms"
        while n < max_rooms:
            if tree_pss() - pss0 >= budget:
                stopped = "the budget"
                break
            star = next(stars, None)
            if star is None:
                stopped = "the catalogue's last star"
                break
            wake_times.append(await wake_system(space.directory, star))
            n += 1
        await asyncio.sleep(2)
        used = tree_pss() - pss0
        pids = await space.pids()
        mems = {pid: memory(pid) for pid in pids}
    return {"n": n, "stopped": stopped, "used": used, "processes": len(pids),
            "uss": sum(m[0] for m in mems.values()) / n, "pss": sum(m[1] for m in mems.values()) / n,
            "uss_process": [m[0] / MB for m in mems.values()]}


async def main(args) -> None:
    import ray

    from starhold._runtime.ray_host import init_ray
    from starhold.rooms.galaxy.catalogue import load_galaxy

    stars = iter([s.id for s in load_galaxy()])
    init_ray(namespace="density", logging_level="WARNING")
    tmp = tempfile.mkdtemp(prefix="density-")
    try:
        bare = ray.remote(num_cpus=0, max_concurrency=1000)(Bare).options(namespace="density").remote()
        floor_pid = await bare.pid.remote()
        budget = args.budget_gb * GB if args.budget_gb else max(
            GB, psutil.virtual_memory().available - args.margin_gb * GB)
        results = {}
        for label, hosts in SETUPS.items():
            wake_times: list[float] = []
            cpu, ticks, floor = await idle_cpu_per_room(tmp, hosts, args, stars, wake_times, floor_pid)
            load_cpu = os.getloadavg()[0]
            max_rooms = args.max_rooms_before if hosts.get("rooms_per_host") == 1 else args.max_rooms
            mem = await density(tmp, hosts, max_rooms, budget, stars, wake_times)
            results[label] = (cpu, ticks, floor, load_cpu, mem, wake_times, os.getloadavg()[0])
        floor_uss, _, floor_rss = memory(floor_pid)
        total = psutil.virtual_memory().total
        labels = list(SETUPS)
        print(f"\nidle CPU per awake room, % of one core (host process CPU / rooms in it) over "
              f"{args.cpu_seconds:.0f} s; {args.cpu_rooms} rooms of each kind, each kind in its own hosts")
        print(f"{'':28} " + " ".join(f"{label:>26}" for label in labels) + f" {'ratio':>7}")
        for group in GROUPS:
            values = [statistics.mean(results[label][0][group]) for label in labels]
            ticking_ = " ".join(f"{results[label][1][group][0]}/{results[label][1][group][1]} ticking" for label in labels)
            print(f"{group:28} " + " ".join(f"{v:26.3f}" for v in values)
                  + f" {values[0] / max(values[1], 1e-9):6.1f}x  ({ticking_}; pilot rooms of players count as rooms)")
        print(f"{FLOOR:28} " + " ".join(f"{results[label][2]:26.3f}" for label in labels)
              + "  (one idle actor process)")
        print("load average: " + ", ".join(f"{label} {results[label][3]:.2f}" for label in labels))
        print(f"\nmemory of awake system rooms (nobody in them), woken until --max-rooms or the budget "
              f"({budget / GB:.1f} GiB of PSS growth)")
        for label in labels:
            mem, wakes = results[label][4], results[label][5]
            per_room = mem["used"] / mem["n"]
            print(f"  {label}: {mem['n']} rooms in {mem['processes']} processes (stopped at {mem['stopped']}; "
                  f"load average {results[label][6]:.2f})")
            print(f"    USS per room {mem['uss'] / MB:6.1f} MB (process USS p50 {pct(mem['uss_process'], .5):.1f} MB), "
                  f"PSS per room {mem['pss'] / MB:.1f} MB; bare Ray actor USS {floor_uss / MB:.1f} MB, "
                  f"RSS {floor_rss / MB:.1f} MB")
            print(f"    every process of the run grew by {mem['used'] / GB:.2f} GiB of PSS: {per_room / MB:.1f} MB "
                  f"per awake room -> {budget / per_room:.0f} rooms in the budget, "
                  f"{total / per_room:.0f} in this machine's {total / GB:.1f} GiB")
            print(f"    wake time per room: p50 {pct(wakes, .5) * 1000:.0f} ms, p99 {pct(wakes, .99) * 1000:.0f} ms, "
                  f"max {max(wakes) * 1000:.0f} ms (first call until started)")
        a, b = (results[label][4] for label in labels)
        print(f"  ratio (a process per room / room hosts): USS per room {a['uss'] / b['uss']:.1f}x, "
              f"PSS growth per room {(a['used'] / a['n']) / (b['used'] / b['n']):.1f}x")
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-rooms", type=int, default=400, help="stop after this many awake rooms (room hosts)")
    parser.add_argument("--max-rooms-before", type=int, default=40,
                        help="stop after this many awake rooms with a process per room")
    parser.add_argument("--budget-gb", type=float, default=None,
                        help="stop when the rooms took this much memory (default: available minus --margin-gb)")
    parser.add_argument("--margin-gb", type=float, default=2.0)
    parser.add_argument("--cpu-rooms", type=int, default=8, help="rooms of each kind measured for idle CPU")
    parser.add_argument("--cpu-seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=4.0, help="seconds after the joins before measuring CPU")
    asyncio.run(main(parser.parse_args()))
