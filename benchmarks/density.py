"""Awake rooms per node: memory and idle CPU of room actors on local Ray (issue 17).

One run, side by side:

1. **The floor**: a bare Ray actor (an async actor with one method, as a room actor is, and
   nothing imported): its USS and idle CPU are what Ray itself costs per actor process.
2. **Idle CPU** of awake room actors, ``--cpu-rooms`` of each: a system room (``system``) and a
   game session (``session``), each with one idle connected player (joined through the
   gateway, then silent), and each with nobody (woken, then left alone). Rooms are created
   with an idle timeout of an hour, so a room with nobody stays awake as it does while it
   awaits hibernation. CPU % of one core of each actor process over ``--cpu-seconds``
   (``psutil`` user + system time deltas), after ``--settle`` seconds for the loops to rest.
   (A system's player also wakes that player's pilot room: not counted.)
   **The peer of several rooms per process**: ``--shared`` system rooms (nobody in them)
   started by ``RoomRuntime`` in one async Ray actor (``SharedHost``, a measurement, not a
   host Starhold has): its CPU and USS divided by the rooms it holds.
3. **Density**: more system rooms (distinct stars, nobody connected, awake) are woken one by
   one until ``--max-rooms`` rooms are awake or the memory they take (the growth of the PSS
   of the run's processes) reaches ``--budget-gb``. Printed: each room's
   wake time (the first call until the room has started), the USS of every room actor
   process (p50, p99), their sum, their PSS sum (USS plus each process's share of the
   shared pages), the growth of the PSS of every process of the run (this one, with the
   gateway, and Ray's: GCS, raylet, workers) per awake room, and the awake rooms that fit in
   the budget and in the machine's total memory at that rate (PSS rather than the machine's
   available memory, so that other work on the machine does not count).

Usage: python benchmarks/density.py [--max-rooms 40] [--budget-gb GB] [--margin-gb 2]
                                    [--cpu-rooms 2] [--cpu-seconds 20] [--settle 4] [--shared 8]
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
    """The floor: an async Ray actor that imports nothing (a room actor is an async actor)."""

    async def pid(self) -> int:
        return os.getpid()


class SharedHost:
    """A peer, not Starhold's host: ``RoomRuntime``s of several system rooms (nobody in them)
    in one async actor process, each as a room actor runs it (its own SQLite file, local
    snapshots, the activation lease, the system clock), to show what Ray's per-process cost
    becomes per room when a process hosts several rooms."""

    async def start(self, data_dir: str, rooms: list[tuple[str, dict]]) -> int:
        """Start the system rooms ``(id, params)``; returns this process's pid."""
        from starhold._runtime.paths import room_db_path
        from starhold._runtime.runtime import RoomRuntime
        from starhold.clock import SystemClock
        from starhold.kinds import room_class
        from starhold.storage.factory import snapshot_store_from_config

        self.runtimes = []
        for room_id, params in rooms:
            runtime = RoomRuntime(room_class("system"), room_id, params,
                                  db_path=room_db_path(data_dir, "system", room_id), clock=SystemClock(),
                                  snapshots=snapshot_store_from_config(None, data_dir), idle_timeout=3600)
            await runtime.start()
            self.runtimes.append(runtime)
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
SHARED = "system, nobody, {k} per process"
GROUPS = ("system, one idle player", "system, nobody", "session, one idle player", "session, nobody")


async def main(args) -> None:
    import ray
    from aiohttp.test_utils import TestServer

    from starhold._runtime.ray_host import RayDirectory, init_ray
    from starhold.client import StarholdClient, create_game, guest_token
    from starhold.gateway.app import create_app
    from starhold.rooms.galaxy.catalogue import load_galaxy
    from starhold.rooms.system.params import system_params

    next_star = iter([s.id for s in load_galaxy()])
    namespace = f"density-{uuid.uuid4().hex[:6]}"
    init_ray(namespace=namespace, logging_level="WARNING")
    clients: list = []
    tmp = tempfile.mkdtemp(prefix="density-")
    try:
        directory = RayDirectory({"data_dir": str(Path(tmp) / "data"), "idle_timeout": 3600,
                                  "log_level": "WARNING"}, namespace=namespace)
        server = TestServer(create_app(directory, web_dist=None), host="127.0.0.1", port=0)
        await server.start_server()
        url = str(server.make_url("")).rstrip("/")
        bare = ray.remote(num_cpus=0, max_concurrency=1000)(Bare).options(namespace=namespace).remote()
        floor_pid = await bare.pid.remote()
        shared_label = SHARED.format(k=args.shared)
        if args.shared > 1:  # the peer: several rooms in one process
            shared = ray.remote(num_cpus=0, max_concurrency=1000)(SharedHost).options(namespace=namespace).remote()
            batch = [next(next_star) for _ in range(args.shared)]
            shared_pid = await shared.start.remote(str(Path(tmp) / "shared"), [(s, system_params(s)) for s in batch])
        await asyncio.sleep(2)
        pss0 = tree_pss()  # the floor and the peer are not counted in the growth per room
        budget = args.budget_gb * GB if args.budget_gb else max(
            GB, psutil.virtual_memory().available - args.margin_gb * GB)

        wake_times: list[float] = []
        rooms: dict[str, list[tuple[str, str, int]]] = {label: [] for label in GROUPS}  # kind, id, pid
        for _ in range(args.cpu_rooms):  # systems with one idle player, woken by the join
            star = next(next_star)
            client = StarholdClient(url, star, name="idle", heartbeat=None, follow=False)
            started = time.perf_counter()
            await client.__aenter__()
            clients.append(client)
            await client.join()
            wake_times.append(time.perf_counter() - started)
            rooms[GROUPS[0]].append(("system", star, await room_pid(directory, "system", star)))
        for _ in range(args.cpu_rooms):
            star = next(next_star)
            wake_times.append(await wake_system(directory, star))
            rooms[GROUPS[1]].append(("system", star, await room_pid(directory, "system", star)))
        for label, join in ((GROUPS[2], True), (GROUPS[3], False)):
            for i in range(args.cpu_rooms):
                token = (await guest_token(url, f"density-{int(join)}-{i}"))["token"]
                started = time.perf_counter()
                game = await create_game(url, token, seed=i)
                if join:
                    client = StarholdClient.for_game(url, game["id"], token=token, heartbeat=None)
                    await client.__aenter__()
                    clients.append(client)
                    await client.join()
                wake_times.append(time.perf_counter() - started)
                rooms[label].append(("session", game["id"], await room_pid(directory, "session", game["id"])))
        await asyncio.sleep(args.settle)  # joins done: the loops come to rest
        load_cpu = os.getloadavg()[0]
        groups = {FLOOR: [floor_pid], **{label: [pid for _, _, pid in members] for label, members in rooms.items()}}
        if args.shared > 1:
            groups[shared_label] = [shared_pid]
        cpu = await idle_cpu(groups, args.cpu_seconds)
        if args.shared > 1:  # per room
            cpu[shared_label] = [v / args.shared for v in cpu[shared_label]]
            shared_uss = memory(shared_pid)[0] / args.shared
        loops = {label: await ticking(directory, [(k, i) for k, i, _ in members]) for label, members in rooms.items()}

        # Density: more systems, nobody in them, until the budget or --max-rooms.
        room_pids = [pid for members in rooms.values() for _, _, pid in members]
        stopped = "--max-rooms"
        while len(room_pids) < args.max_rooms:
            if tree_pss() - pss0 >= budget:
                stopped = "the budget"
                break
            star = next(next_star, None)
            if star is None:
                stopped = "the catalogue's last star"
                break
            wake_times.append(await wake_system(directory, star))
            room_pids.append(await room_pid(directory, "system", star))
        await asyncio.sleep(2)
        used = tree_pss() - pss0
        mems = [memory(pid) for pid in room_pids]
        floor_uss, _, floor_rss = memory(floor_pid)
        load_mem = os.getloadavg()[0]

        n = len(room_pids)
        uss = [m[0] / MB for m in mems]
        per_room = used / n
        total = psutil.virtual_memory().total
        print(f"\nidle CPU, % of one core per actor process, over {args.cpu_seconds:.0f} s "
              f"(load average {load_cpu:.2f})")
        print(f"{'':44} {'mean':>7} {'max':>7} {'ticking':>8}  per process")
        for label, values in cpu.items():
            if label == shared_label:
                label += " (per room)"
            loop = f"{loops[label]}/{len(rooms[label])}" if label in loops else "-"
            print(f"{label:44} {statistics.mean(values):7.3f} {max(values):7.3f} {loop:>8}  "
                  + " ".join(f"{v:.3f}" for v in values))
        print(f"\nmemory: {n} awake rooms (stopped at {stopped}; budget {budget / GB:.1f} GiB; "
              f"load average {load_mem:.2f})")
        print(f"  USS per room actor   p50 {pct(uss, .5):6.1f} MB  p99 {pct(uss, .99):6.1f} MB  "
              f"(bare Ray actor {floor_uss / MB:.1f} MB: the room's own p50 {pct(uss, .5) - floor_uss / MB:.1f} MB)")
        print(f"  RSS per room actor   p50 {pct([m[2] / MB for m in mems], .5):6.1f} MB  "
              f"(bare Ray actor {floor_rss / MB:.1f} MB)")
        if args.shared > 1:
            print(f"  USS per room with {args.shared} system rooms in one process (the peer): {shared_uss / MB:.1f} MB")
        print(f"  room actors: total USS {sum(uss) / 1024:.2f} GiB, total PSS (USS + their shares of "
              f"shared pages) {sum(m[1] for m in mems) / GB:.2f} GiB")
        print(f"  Ray and the gateway grew by {used / GB:.2f} GiB of PSS (every process of this run): "
              f"{per_room / MB:.1f} MB per awake room (its actor, Ray's bookkeeping of it, the gateway's "
              f"link; the {len(rooms[GROUPS[0]])} system players' pilot rooms too)")
        print(f"  awake rooms: {n} reached; {budget / per_room:.0f} in the budget, "
              f"{total / per_room:.0f} in this machine's {total / GB:.1f} GiB at that rate")
        print(f"  wake time per room: p50 {pct(wake_times, .5) * 1000:.0f} ms, "
              f"p99 {pct(wake_times, .99) * 1000:.0f} ms, max {max(wake_times) * 1000:.0f} ms "
              f"(first call until started; the first rooms also pay for Ray's worker pool)")
        for client in clients:
            await client.__aexit__(None, None, None)
        clients.clear()
        await server.close()
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-rooms", type=int, default=400, help="stop after this many awake rooms")
    parser.add_argument("--budget-gb", type=float, default=None,
                        help="stop when the rooms took this much memory (default: available minus --margin-gb)")
    parser.add_argument("--margin-gb", type=float, default=2.0)
    parser.add_argument("--cpu-rooms", type=int, default=2, help="rooms of each kind measured for idle CPU")
    parser.add_argument("--cpu-seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=4.0, help="seconds after the joins before measuring CPU")
    parser.add_argument("--shared", type=int, default=8,
                        help="system rooms hosted together in one actor process by the peer (1: no peer)")
    asyncio.run(main(parser.parse_args()))
