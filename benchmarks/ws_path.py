"""The gateway's WebSocket path: CPU per 10,000 messages each way, ``starhold.wsdirect`` against
plain aiohttp (issue 13).

A server process (a minimal aiohttp app on 127.0.0.1, on uvloop as ``starhold serve``) holds
``--sockets`` WebSockets the way the gateway does, on one of two paths:

- **direct**: ``starhold.wsdirect.DirectWebSocketResponse``: each data message goes from aiohttp's
  parser to a callback (no reader task wake-up), a swept heartbeat (``sweep()`` every 2.5 s),
  and frames written at once through aiohttp's frame writer (``ClientSocket._write_now``);
- **public**: ``web.WebSocketResponse`` with aiohttp's own heartbeat, a ``receive()`` loop per
  socket, and frames through a per-socket queue and writer task awaiting ``send_bytes``
  (``ClientSocket._write_loop``): what the gateway falls back to.

Both paths call the same per-message handler (a counter), so the difference is the path
itself. This process is the load: ``--sockets`` aiohttp clients. Two phases per run, each
``--seconds`` long, at ``--rate`` messages per socket per second spread over 10 ms slots (as
``starhold loadtest``): **in** (clients send 24-byte messages, the server counts them) and
**out** (a 10 Hz tick on the server sends a 200-byte frame to every socket). The server's CPU
(``time.process_time()``, all threads) over a phase, divided by the messages it handled, gives
ms of CPU per 10,000 messages; an idle phase (sockets open, no traffic) is reported too.
The load shares the machine: figures are noisy, so ``--repeat`` alternates the paths and the
summary gives each one's range (min-max) and the median ratio.

    python benchmarks/ws_path.py [--sockets 1000] [--rate 10] [--seconds 5] [--repeat 3]
        [--paths direct public] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import aiohttp
from aiohttp import WSMsgType, web

from starhold.wsdirect import write_binary_now

SLOTS = 10
FRAME = b"\x00" * 200
INPUT = b"\x01" * 24


# ---- the server -------------------------------------------------------------------------------
class _Server:
    def __init__(self, path: str):
        self.path = path
        self.sockets: list = []
        self.messages_in = 0
        self.messages_out = 0

    def on_data(self, data) -> None:  # the gateway's ClientSocket.receive, minus its validation
        self.messages_in += 1

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        if self.path == "direct":
            from starhold.wsdirect import DirectWebSocketResponse

            ws = DirectWebSocketResponse(swept_heartbeat=20.0, heartbeat=None, receive_timeout=None,
                                         autoping=True, compress=False)
        else:
            ws = web.WebSocketResponse(heartbeat=20.0, receive_timeout=None, autoping=True, compress=False)
        await ws.prepare(request)
        sock = _Socket(self, ws)
        self.sockets.append(sock)
        try:
            if self.path == "direct":
                ws.direct.attach(self.on_data)
                async for _ in ws:  # control messages and the end only
                    pass
            else:
                on_data = self.on_data
                while True:
                    msg = await ws.receive()
                    if msg.type is WSMsgType.BINARY or msg.type is WSMsgType.TEXT:
                        on_data(msg.data)
                    else:
                        break
        finally:
            sock.writer.cancel()
            self.sockets.remove(sock)
        return ws

    async def mark(self, request: web.Request) -> web.Response:
        return web.json_response({"cpu": time.process_time(), "in": self.messages_in, "out": self.messages_out,
                                  "sockets": len(self.sockets)})

    async def send(self, request: web.Request) -> web.Response:
        """A tick every 1/rate s for ``seconds``: one frame to every socket; answers with the
        CPU and the frames of the phase."""
        rate, seconds = float(request.query["rate"]), float(request.query["seconds"])
        loop = asyncio.get_running_loop()
        cpu0, out0 = time.process_time(), self.messages_out
        t0 = loop.time()
        ticks = int(seconds * rate)
        for tick in range(ticks):
            await asyncio.sleep(max(0.0, t0 + tick / rate - loop.time()))
            for sock in self.sockets:
                sock.deliver(FRAME)
        await asyncio.sleep(max(0.0, t0 + ticks / rate - loop.time()))
        return web.json_response({"cpu": time.process_time() - cpu0, "out": self.messages_out - out0})

    async def sweep(self) -> None:
        if self.path != "direct":
            return
        while True:
            await asyncio.sleep(2.5)
            now = asyncio.get_running_loop().time()
            for sock in self.sockets:
                sock.ws.sweep(now)


class _Socket:
    """The outgoing half of the gateway's ClientSocket: ``_write_now`` on the direct path, the
    queue and its writer task otherwise."""

    def __init__(self, server: _Server, ws):
        self.server, self.ws = server, ws
        self.direct = server.path == "direct"
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=256)
        self.writing = False
        self.writer = asyncio.ensure_future(self._write_loop())

    def deliver(self, data: bytes) -> None:
        if self.direct and self._write_now(data):
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            pass

    def _write_now(self, data: bytes) -> bool:  # gateway/sockets.py ClientSocket._write_now
        if self.writing or self.queue.qsize() or not write_binary_now(self.ws, data):
            return False
        self.server.messages_out += 1
        return True

    async def _write_loop(self) -> None:  # gateway/sockets.py ClientSocket._write_loop
        send = self.ws.send_bytes
        try:
            while True:
                item = await self.queue.get()
                self.server.messages_out += 1
                self.writing = True
                try:
                    await send(item)
                finally:
                    self.writing = False
        except (ConnectionError, RuntimeError):
            pass


def _loop_factory():
    try:  # uvloop, as `starhold serve` and `starhold loadtest`
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def serve(path: str, port: int) -> None:
    server = _Server(path)
    app = web.Application()
    app.router.add_get("/ws", server.handle)
    app.router.add_get("/mark", server.mark)
    app.router.add_get("/send", server.send)

    async def start(app):
        app["sweeper"] = asyncio.create_task(server.sweep())

    app.on_startup.append(start)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(web._run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                                backlog=4096))


# ---- the load ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _mark(session, base) -> dict:
    async with session.get(f"{base}/mark") as r:
        return await r.json()


async def _wait_for(session, base, predicate, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        mark = await _mark(session, base)
        if predicate(mark) or time.monotonic() > deadline:
            return mark
        await asyncio.sleep(0.05)


async def _reader(ws, counts: list) -> None:
    while True:
        msg = await ws.receive()
        if msg.type is WSMsgType.BINARY:
            counts[0] += 1
        elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return


async def run_once(path: str, sockets: int, rate: float, seconds: float) -> dict:
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, __file__, "--serve", path, "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(200):
                try:
                    await _mark(session, base)
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            wss = []
            for i in range(0, sockets, 100):
                wss += await asyncio.gather(*(session.ws_connect(f"{base}/ws", autoping=True, compress=0)
                                              for _ in range(i, min(sockets, i + 100))))
            counts = [0]
            readers = [asyncio.create_task(_reader(ws, counts)) for ws in wss]
            await _wait_for(session, base, lambda m: m["sockets"] == sockets, 10)
            await asyncio.sleep(1.0)
            # idle
            m0 = await _mark(session, base)
            await asyncio.sleep(seconds / 2)
            m1 = await _mark(session, base)
            idle = (m1["cpu"] - m0["cpu"]) / (seconds / 2)
            # in: each socket sends `rate` messages a second, in one of SLOTS phase slots
            loop = asyncio.get_running_loop()
            slots = [wss[i::SLOTS] for i in range(SLOTS)]
            period = 1.0 / rate
            m0 = await _mark(session, base)
            t0 = loop.time()
            sent = 0
            steps = int(seconds * rate * SLOTS)
            for step in range(steps):
                await asyncio.sleep(max(0.0, t0 + step * period / SLOTS - loop.time()))
                for ws in slots[step % SLOTS]:
                    await ws.send_bytes(INPUT)
                sent += len(slots[step % SLOTS])
            m1 = await _wait_for(session, base, lambda m: m["in"] - m0["in"] >= sent, 10)
            cpu_in = m1["cpu"] - m0["cpu"]
            got_in = m1["in"] - m0["in"]
            # out: the server's 10 Hz tick fans a frame out to every socket
            async with session.get(f"{base}/send", params={"rate": str(rate), "seconds": str(seconds)}) as r:
                out = await r.json()
            for ws in wss:
                await ws.close()
            for t in readers:
                t.cancel()
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "path": path, "sockets": sockets, "rate": rate, "seconds": seconds,
        "idle_cpu_percent": 100 * idle,
        "in_messages": got_in, "in_sent": sent, "in_ms_per_10k": 1e3 * cpu_in / got_in * 1e4,
        "in_cpu_percent": 100 * cpu_in / seconds,
        "out_messages": out["out"], "out_ms_per_10k": 1e3 * out["cpu"] / max(1, out["out"]) * 1e4,
        "out_cpu_percent": 100 * out["cpu"] / seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sockets", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=10.0, help="messages per socket per second, each way")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--paths", nargs="+", default=["direct", "public"], choices=["direct", "public"])
    ap.add_argument("--json", help="write the runs and the summary here")
    ap.add_argument("--serve", choices=["direct", "public"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, args.port)
    print(f"aiohttp {aiohttp.__version__}, {os.cpu_count()} cores, {args.sockets} sockets, "
          f"{args.rate:g} msg/s each way per socket, {args.seconds:g} s phases", flush=True)
    runs = []
    for r in range(args.repeat):
        for path in args.paths:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                res = runner.run(run_once(path, args.sockets, args.rate, args.seconds))
            runs.append(res)
            print(f"  {path:6s} run {r + 1}: in {res['in_ms_per_10k']:6.1f} ms/10k ({res['in_messages']}/{res['in_sent']})"
                  f"  out {res['out_ms_per_10k']:6.1f} ms/10k ({res['out_messages']})  idle {res['idle_cpu_percent']:.1f}% "
                  f"  in {res['in_cpu_percent']:.0f}% out {res['out_cpu_percent']:.0f}% of a core", flush=True)
    summary = {}
    for path in args.paths:
        mine = [x for x in runs if x["path"] == path]
        summary[path] = {k: (min(x[k] for x in mine), statistics.median(x[k] for x in mine), max(x[k] for x in mine))
                         for k in ("in_ms_per_10k", "out_ms_per_10k", "idle_cpu_percent")}
    print("CPU per 10,000 messages, ms (min / median / max):")
    for path, s in summary.items():
        print(f"  {path:6s} in {s['in_ms_per_10k'][0]:.1f} / {s['in_ms_per_10k'][1]:.1f} / {s['in_ms_per_10k'][2]:.1f}"
              f"   out {s['out_ms_per_10k'][0]:.1f} / {s['out_ms_per_10k'][1]:.1f} / {s['out_ms_per_10k'][2]:.1f}")
    if {"direct", "public"} <= summary.keys():
        for way in ("in", "out"):
            ratio = summary["public"][f"{way}_ms_per_10k"][1] / summary["direct"][f"{way}_ms_per_10k"][1]
            print(f"  {way}: public / direct = {ratio:.2f} (medians)")
            summary[f"{way}_ratio_public_over_direct"] = ratio
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
