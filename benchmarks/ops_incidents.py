"""Two incidents an operator meets, measured on a real server with bots (issue 15):

- ``gateway``: ``starhold serve --gateways 2`` (two gateway processes on one port, as replicas
  behind a load balancer); one gateway process is SIGKILLed while bots play in Sol. Its
  players see their socket drop, reconnect (to the survivor: the port is shared) and resume
  their seats.
- ``s3``: ``starhold serve --snapshots s3://...`` on a real SeaweedFS; the S3 server is killed
  for ``--outage`` seconds while bots play in Sol, then restarted on the same ports and data.
  Awake rooms keep running; acks wait for S3; a join to a sleeping room and a registration
  fail fast meanwhile.

For each bot: detection (kill -> its socket closed), time to frames (kill -> first frame after
its resumed welcome), seat resumed, and acknowledged orders lost (a resumed seat whose ack is
below the last ack the bot saw before the drop). For the S3 outage: the longest gap between
frames, the acks frozen and caught up, the answers to a join and a registration during it.

    .venv/bin/python benchmarks/ops_incidents.py gateway [--bots 20]
    .venv/bin/python benchmarks/ops_incidents.py s3 [--bots 10] [--outage 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

from starhold.client.connection import StarholdClient

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_server(args: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """``starhold serve`` with ``args``; returns once it printed that it is up."""
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "starhold"), "serve", *args], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while b"Starhold is up" not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not start:\n{log_path.read_text()[-3000:]}")
        await asyncio.sleep(0.2)
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Bot:
    """A Python client in Sol that orders a move every ``period`` s and records what it sees."""

    def __init__(self, url: str, name: str, period: float = 0.3):
        self.client = StarholdClient.for_system(url, "Sol", name=name)
        self.period = period
        self.task: asyncio.Task | None = None
        self.ack_seen: list[tuple[float, int]] = []

    async def start(self) -> None:
        await self.client.connect()
        await self.client.join()
        self.task = asyncio.create_task(self._fly())

    async def _fly(self) -> None:
        i = 0
        while True:
            i += 1
            await self.client.move_to(200.0 + (i % 7) * 40, -150.0 + (i % 5) * 60)
            await asyncio.sleep(self.period)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.client.close()


class Watch:
    """Polls the bots every 10 ms from ``t0``: when each one's socket closed, when it had
    frames again after resuming, and its ack before the drop."""

    def __init__(self, bots: list[Bot]):
        self.bots = bots
        self.base = {id(b): (len(b.client.close_codes), b.client.reconnects, b.client.frames) for b in bots}
        self.closed_at: dict[int, float] = {}
        self.ack_at_close: dict[int, int] = {}
        self.framed_at: dict[int, float] = {}
        self.frame_gap = 0.0
        self.acks: list[tuple[float, int]] = []

    async def run(self, t0: float, until: float) -> None:
        last_frames = {id(b): (b.client.frames, time.monotonic()) for b in self.bots}
        while time.monotonic() < until:
            now = time.monotonic()
            for bot in self.bots:
                c, key = bot.client, id(bot)
                closes, reconnects, frames = self.base[key]
                if key not in self.closed_at and len(c.close_codes) > closes:
                    self.closed_at[key] = now - t0
                    self.ack_at_close[key] = c.ack
                if key in self.closed_at and key not in self.framed_at and c.reconnects > reconnects \
                        and c.frames > frames:
                    self.framed_at[key] = now - t0
                count, since = last_frames[key]
                if c.frames != count:
                    last_frames[key] = (c.frames, now)
                elif key not in self.closed_at:
                    self.frame_gap = max(self.frame_gap, now - since)
            self.acks.append((now - t0, sum(b.client.ack for b in self.bots)))
            await asyncio.sleep(0.01)


def pct(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {statistics.median(values):.2f} s, max {max(values):.2f} s"


async def gateway_loss(args) -> None:
    with tempfile.TemporaryDirectory(prefix="starhold-gwloss-") as tmp:
        tmp = Path(tmp)
        port = free_port()
        proc = await start_server(["--port", str(port), "--gateways", "2", "--data-dir", str(tmp / "data"),
                                   "--idle-timeout", "600", "--shed-lag", "0", "--no-dashboard"],
                                  dict(os.environ), tmp / "server.log")
        url = f"http://127.0.0.1:{port}"
        bots = [Bot(url, f"bot{i}") for i in range(args.bots)]
        try:
            for bot in bots:
                await bot.start()
            await asyncio.sleep(3)
            server = psutil.Process(proc.pid)
            children = [p for p in server.children(recursive=True)
                        if "multiprocessing" in " ".join(p.cmdline()) and "spawn_main" in " ".join(p.cmdline())]
            if not children:
                raise SystemExit("no second gateway process found")
            watch = Watch(bots)
            t0 = time.monotonic()
            children[0].kill()
            await watch.run(t0, t0 + args.window)
            victims = [id(b) for b in bots if id(b) in watch.closed_at]
            resumed = sum(1 for b in bots if id(b) in victims and b.client.welcome and b.client.welcome.get("resumed"))
            lost = sum(1 for b in bots if id(b) in victims and b.client.welcome
                       and b.client.welcome["ack"] < watch.ack_at_close[id(b)])
            print(f"gateway loss: {len(victims)} of {len(bots)} bots were on the killed gateway process")
            print(f"  detection (kill -> socket closed): {pct([watch.closed_at[v] for v in victims])}")
            print(f"  time to frames (kill -> frames after the resumed welcome): "
                  f"{pct([watch.framed_at[v] for v in victims if v in watch.framed_at])}")
            print(f"  seats resumed: {resumed} of {len(victims)}; acknowledged orders lost: {lost}")
            print(f"  the other bots' longest frame gap meanwhile: {watch.frame_gap:.2f} s")
        finally:
            for bot in bots:
                await bot.stop()
            stop_server(proc)


async def s3_outage(args) -> None:
    from starhold.testing_s3 import _start_weed, weed_binary

    with tempfile.TemporaryDirectory(prefix="starhold-s3out-") as tmp:
        tmp = Path(tmp)
        (tmp / "weed").mkdir()
        weed, why = _start_weed(weed_binary(), tmp / "weed", tmp / "weed.log")
        if weed is None:
            raise SystemExit(f"SeaweedFS did not start: {why}")
        bucket = weed.create_bucket()
        env = {**os.environ, "AWS_ACCESS_KEY_ID": weed.access_key, "AWS_SECRET_ACCESS_KEY": weed.secret_key}
        port = free_port()
        proc = await start_server(["--port", str(port), "--data-dir", str(tmp / "data"), "--idle-timeout", "600",
                                   "--snapshots", f"s3://{bucket}/rooms/", "--s3-endpoint", weed.endpoint_url,
                                   "--shed-lag", "0", "--no-dashboard"], env, tmp / "server.log")
        url = f"http://127.0.0.1:{port}"
        bots = [Bot(url, f"bot{i}") for i in range(args.bots)]
        weed_cmd = psutil.Process(weed.process.pid).cmdline()
        weed_env = {**os.environ, "AWS_ACCESS_KEY_ID": weed.access_key, "AWS_SECRET_ACCESS_KEY": weed.secret_key,
                    "TMPDIR": str(tmp / "weed")}
        try:
            for bot in bots:
                await bot.start()
            await asyncio.sleep(3)
            watch = Watch(bots)
            t0 = time.monotonic()
            weed.process.kill()
            weed.process.wait()
            watching = asyncio.create_task(watch.run(t0, t0 + args.outage + args.window))
            await asyncio.sleep(2)
            async with aiohttp.ClientSession() as http:
                started = time.monotonic()
                async with http.post(f"{url}/api/auth/register", json={"username": "outage1", "password": "pw-12345678"}) as r:
                    register = (r.status, r.headers.get("Retry-After"), time.monotonic() - started)
            joiner = StarholdClient.for_system(url, "Tau Ceti", name="late", reconnect=False)
            started = time.monotonic()
            try:
                await joiner.connect()
                await joiner.join(timeout=30)
                join = ("joined", time.monotonic() - started)
            except Exception as exc:
                codes = [e.get("code") for e in joiner.errors]
                join = (f"refused: error {codes}, close {joiner.close_code} ({type(exc).__name__})",
                        time.monotonic() - started)
            finally:
                await joiner.close()
            frozen_ack = sum(b.client.ack for b in bots)
            await asyncio.sleep(max(0.0, t0 + args.outage - time.monotonic()))
            ack_at_end = sum(b.client.ack for b in bots)
            restarted = subprocess.Popen(weed_cmd, env=weed_env, stdout=open(tmp / "weed2.log", "wb"),
                                         stderr=subprocess.STDOUT, start_new_session=True)
            t1 = time.monotonic()
            target = sum(b.client._seq - 1 for b in bots) - 3 * len(bots)  # all but the last orders in flight
            caught_up = None
            while time.monotonic() - t1 < args.window:
                if sum(b.client.ack for b in bots) >= target:
                    caught_up = time.monotonic() - t1
                    break
                await asyncio.sleep(0.05)
            await watching
            print(f"S3 outage of {args.outage:.0f} s with {len(bots)} bots playing in Sol:")
            print(f"  longest frame gap of a bot during it: {watch.frame_gap:.2f} s; sockets closed: "
                  f"{len(watch.closed_at)}")
            print(f"  acks: {frozen_ack} two seconds in, {ack_at_end} at its end (frozen: "
                  f"{'yes' if ack_at_end == frozen_ack else 'no'}); caught up "
                  f"{'after %.2f s' % caught_up if caught_up is not None else 'not within the window'} "
                  f"once S3 was back")
            print(f"  register during it: HTTP {register[0]} (Retry-After {register[1]}) in {register[2]:.2f} s")
            print(f"  join of a sleeping room during it: {join[0]} in {join[1]:.2f} s")
            restarted.terminate()
        finally:
            for bot in bots:
                await bot.stop()
            stop_server(proc)
            weed.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["gateway", "s3"])
    parser.add_argument("--bots", type=int, default=20)
    parser.add_argument("--outage", type=float, default=20.0, help="seconds S3 is down (s3)")
    parser.add_argument("--window", type=float, default=30.0, help="seconds to watch after the incident")
    args = parser.parse_args()
    asyncio.run(gateway_loss(args) if args.scenario == "gateway" else s3_outage(args))


if __name__ == "__main__":
    sys.exit(main())
