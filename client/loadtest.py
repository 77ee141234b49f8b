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
waits only for its close), one scheduler task per process sends for every bot (10 phase slots
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
import timeit
import traceback
from array import array
from typing import Awaitable, Callable, Iterable, Sequence

import aiohttp
import msgpack

from .. import heap
from ..rooms import protocol
from ..wsdirect import make_direct
from .connection import StarholdHTTPError, create_game, game_path, guest_token, http_base, system_path, ws_base

log = logging.getLogger("starhold.loadtest")

INPUT_PERIOD = 0.1
"""Seconds between two ``move_to`` of a bot (10 per second)."""
FRAME_PERIOD = 1.0 / protocol.TICK_RATE
"""Expected seconds between two frames (jitter is measured against it)."""
AREA = 500.0
"""Bots aim at random targets in ``[-AREA, AREA]^2`` world units (a game's sector)."""
SLOTS = 10
"""Phase slots of the send scheduler: a bot sends in one of them every INPUT_PERIOD."""
JOIN_BATCH = 10
"""Bots joining at once during the ramp."""
JOIN_TIMEOUT = 30.0
SAMPLE_PERIOD = 0.5
"""Seconds between psutil samples of CPU and RSS."""
GRACE = 1.0
"""Seconds after the window for late acks."""
MAX_GAME_PLAYERS = 500
"""Largest ``max_players`` of a game session (docs/protocol.md §7)."""

RESULT_KEYS = ("target", "clients", "rooms", "duration_s", "connected", "inputs_sent", "frames_received",
               "latency_ms", "jitter_p99_ms", "messages_per_s", "errors", "disconnects", "unacked",
               "server_cpu_percent", "server_rss_mb", "loadgen_cpu_percent")
"""The keys of the JSON result, in order (shared with ``benchmarks/colyseus_peer.py``)."""


# ---- decoding ------------------------------------------------------------------------------
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
class _JoinRefused(ConnectionError):
    """An error frame answered the join (already counted as an error)."""


class _Bot:
    __slots__ = ("index", "path", "ws", "queue", "seq", "first_seq", "sent", "acked", "last_frame", "connected",
                 "welcome", "sending")

    def __init__(self, index: int, path: str):
        self.index = index
        self.path = path
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.queue = None  # its starhold.wsdirect.DirectQueue
        self.seq = 1  # the join's
        self.first_seq = 2
        self.sent = array("d")  # sent[s - first_seq]: send time of input s (monotonic seconds)
        self.acked = 1
        self.last_frame = 0.0
        self.connected = False
        self.welcome: asyncio.Future | None = None
        self.sending = False


class _Worker:
    """The bots of one process and their counters (see the module docstring)."""

    def __init__(self, spec: dict):
        self.url = spec["url"]
        self.bots = [_Bot(i, path) for i, path in spec["bots"]]
        self.ramp = spec["ramp"]
        self.duration = spec["duration"]
        self.grace = spec.get("grace", GRACE)
        self.rng = random.Random(spec.get("seed"))
        self.start = math.inf  # measurement window, monotonic seconds
        self.end = math.inf
        self.inputs_sent = 0
        self.frames_received = 0
        self.errors = 0
        self.error_codes: dict[int, int] = {}
        self.join_failures = 0
        self.disconnects = 0
        self.close_codes: dict[int, int] = {}
        self.latency = array("d")
        self.jitter = array("d")
        self.lag = array("d")
        self.stopping = False
        self.shutting_down = False
        self.slots: list[list[_Bot]] = [[] for _ in range(SLOTS)]
        self._readers: list[asyncio.Task] = []

    # -- joining --
    async def _join(self, session: aiohttp.ClientSession, bot: _Bot) -> None:
        try:
            token = (await guest_token(self.url, f"lt-{bot.index}", session=session))["token"]
            ws = await asyncio.wait_for(
                session.ws_connect(f"{ws_base(self.url)}{bot.path}?token={token}", autoping=True, max_msg_size=0),
                JOIN_TIMEOUT)
            bot.ws = ws
            bot.welcome = asyncio.get_running_loop().create_future()
            bot.queue = make_direct(ws, lambda data, bot=bot: self._on_data(bot, data))
            self._readers.append(asyncio.create_task(self._read(bot)))
            await ws.send_bytes(protocol.encode(protocol.JOIN, 1, {}))
            await asyncio.wait_for(bot.welcome, JOIN_TIMEOUT)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, StarholdHTTPError, ConnectionError) as exc:
            self.join_failures += 1
            if not isinstance(exc, _JoinRefused):
                self.errors += 1  # an error frame, if any, was counted when it arrived
            log.warning("bot %d could not join: %r", bot.index, exc)
            if bot.ws is not None and not bot.ws.closed:
                await bot.ws.close()
            return
        bot.connected = True
        bot.sending = True
        self.slots[self.rng.randrange(SLOTS)].append(bot)

    async def ramp_up(self, session: aiohttp.ClientSession) -> int:
        """Join every bot, in batches spread over the ramp; returns how many joined."""
        loop = asyncio.get_running_loop()
        batches = [self.bots[i:i + JOIN_BATCH] for i in range(0, len(self.bots), JOIN_BATCH)]
        spacing = self.ramp / len(batches) if len(batches) > 1 else 0.0
        t0 = loop.time()
        for b, batch in enumerate(batches):
            await asyncio.sleep(max(0.0, t0 + b * spacing - loop.time()))
            await asyncio.gather(*(self._join(session, bot) for bot in batch))
        return sum(1 for bot in self.bots if bot.connected)

    # -- receiving --
    def _on_data(self, bot: _Bot, data: bytes | str) -> None:
        """A message for ``bot``, straight from aiohttp's parser (``starhold.wsdirect``)."""
        if type(data) is not bytes:
            self.errors += 1  # the protocol has no text frames
            return
        t = time.monotonic()
        try:
            ack = frame_ack(data)
            if ack is not None:
                self._on_frame(bot, ack, t)
            else:
                self._on_other(bot, data)
        except Exception:  # noqa: BLE001 - count it, never break the parser
            self.errors += 1
            log.exception("bot %d: bad message", bot.index)

    async def _read(self, bot: _Bot) -> None:
        """Wait for ``bot``'s socket to end (its data messages go to ``_on_data``)."""
        ws = bot.ws
        ended = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                 aiohttp.WSMsgType.ERROR)
        try:
            while True:
                msg = await ws.receive()
                if msg.type in ended:
                    break
        except Exception:  # noqa: BLE001 - count the drop, never kill the worker
            log.exception("bot %d reader failed", bot.index)
        finally:
            was = bot.connected
            bot.connected = False
            bot.sending = False
            if bot.welcome is not None and not bot.welcome.done():
                bot.welcome.set_exception(ConnectionError(f"closed before welcome ({ws.close_code})"))
            if was and not self.shutting_down:
                self.disconnects += 1
                code = ws.close_code or 0
                self.close_codes[code] = self.close_codes.get(code, 0) + 1
                log.info("bot %d disconnected (%s)", bot.index, ws.close_code)

    def _on_frame(self, bot: _Bot, ack: int, t: float) -> None:
        if self.start <= t < self.end:
            self.frames_received += 1
            if bot.last_frame:
                self.jitter.append(abs((t - bot.last_frame - FRAME_PERIOD) * 1000.0))
        bot.last_frame = t
        if ack > bot.acked:
            top = min(ack, bot.seq)
            sent, first, start, end = bot.sent, bot.first_seq, self.start, self.end
            for s in range(max(bot.acked + 1, first), top + 1):
                sent_at = sent[s - first]
                if start <= sent_at < end:
                    self.latency.append((t - sent_at) * 1000.0)
            bot.acked = ack

    def _on_other(self, bot: _Bot, data: bytes) -> None:
        try:
            type_, seq, payload = protocol.decode_server(data)
        except Exception:  # noqa: BLE001
            self.errors += 1
            return
        if type_ == protocol.WELCOME:
            bot.acked = payload.get("ack", 1)
            if bot.welcome is not None and not bot.welcome.done():
                bot.welcome.set_result(payload)
        elif type_ == protocol.ERROR:
            self.errors += 1
            code = payload.get("code", 0)
            self.error_codes[code] = self.error_codes.get(code, 0) + 1
            if self.error_codes[code] <= 3:  # a few per code: an overloaded server sends thousands
                log.info("bot %d error frame: %s", bot.index, payload)
            if bot.welcome is not None and not bot.welcome.done() and seq == 1:
                bot.welcome.set_exception(_JoinRefused(f"join refused: {payload}"))

    # -- sending --
    async def send_loop(self) -> None:
        """Every INPUT_PERIOD / SLOTS seconds, the bots of the next slot send a ``move_to``."""
        loop = asyncio.get_running_loop()
        now = time.monotonic
        encode, move_to = protocol.encode, protocol.MOVE_TO
        uniform = self.rng.uniform
        step = INPUT_PERIOD / SLOTS
        t0 = loop.time()
        k = 0
        while not self.stopping:
            delay = t0 + k * step - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            for bot in self.slots[k % SLOTS]:
                if not bot.sending:
                    continue
                seq = bot.seq + 1
                data = encode(move_to, seq, {"x": uniform(-AREA, AREA), "y": uniform(-AREA, AREA)})
                t = now()
                try:
                    await bot.ws.send_bytes(data)
                except (ConnectionError, RuntimeError):
                    bot.sending = False
                    continue
                bot.seq = seq
                bot.sent.append(t)
                if self.start <= t < self.end:
                    self.inputs_sent += 1
            k += 1

    async def lag_monitor(self, period: float = 0.05) -> None:
        """Event-loop delay samples (ms) during the window: is the load generator saturated?"""
        loop = asyncio.get_running_loop()
        while not self.stopping:
            expected = loop.time() + period
            await asyncio.sleep(period)
            t = time.monotonic()
            if self.start <= t < self.end:
                self.lag.append(max(0.0, (loop.time() - expected) * 1000.0))

    # -- the run --
    async def run(self, ready: Callable[[int], Awaitable[float]]) -> dict:
        """Ramp up, report ``ready(joined)`` which returns the window start (Unix seconds),
        measure, wait for the grace, leave; returns the raw result."""
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            sender = asyncio.create_task(self.send_loop())
            lagger = asyncio.create_task(self.lag_monitor())
            try:
                joined = await self.ramp_up(session)
                heap.settle()  # the bots live for the run: keep full collections short
                start_wall = await ready(joined)
                self.start = time.monotonic() + (start_wall - time.time())
                self.end = self.start + self.duration
                await asyncio.sleep(max(0.0, self.end - time.monotonic()))
                connected = sum(1 for bot in self.bots if bot.connected)
                self.stopping = True
                await asyncio.sleep(self.grace)
                unacked = 0
                for bot in self.bots:
                    first = bot.first_seq
                    for s in range(max(bot.acked + 1, first), bot.seq + 1):
                        if self.start <= bot.sent[s - first] < self.end:
                            unacked += 1
            finally:
                self.stopping = True
                self.shutting_down = True
                sender.cancel()
                lagger.cancel()
                for bot in self.bots:  # frames still coming are dropped unread while we leave
                    if bot.queue is not None:
                        bot.queue.detach()
                closing = [bot.ws.close() for bot in self.bots if bot.ws is not None and not bot.ws.closed]
                if closing:
                    await asyncio.wait([asyncio.ensure_future(c) for c in closing], timeout=5)
                for task in self._readers:
                    task.cancel()
        lag = sorted(self.lag)
        return {
            "clients": len(self.bots), "connected": connected, "inputs_sent": self.inputs_sent,
            "frames_received": self.frames_received, "errors": self.errors,
            "join_failures": self.join_failures, "error_codes": self.error_codes, "disconnects": self.disconnects,
            "close_codes": self.close_codes, "unacked": unacked,
            "latency": self.latency, "jitter": self.jitter,
            "loop_delay_p99_ms": percentile(lag, 0.99), "loop_delay_max_ms": lag[-1] if lag else 0.0,
        }


def _raise_fd_limit() -> None:
    """Every bot is a socket: lift the soft limit on open files to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def _worker_main(spec: dict, conn) -> None:
    """Entry point of a worker process: run the bots, talk to the parent over ``conn``
    (sends ``("ready", joined)``, receives ``("go", start_unix_seconds)``, sends ``("result",
    dict)`` or ``("error", text)``)."""
    logging.basicConfig(level=spec.get("log_level", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _raise_fd_limit()

    async def ready(joined: int) -> float:
        conn.send(("ready", joined))
        loop = asyncio.get_running_loop()
        message = await loop.run_in_executor(None, conn.recv)
        if message[0] != "go":
            raise RuntimeError(f"unexpected message from the parent: {message!r}")
        return float(message[1])

    try:
        try:  # uvloop, as the gateways: the bots' own overhead stays small next to the server's
            import uvloop
        except ImportError:  # pragma: no cover - a dependency
            result = asyncio.run(_Worker(spec).run(ready))
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                result = runner.run(_Worker(spec).run(ready))
        conn.send(("result", result))
    except BaseException:  # noqa: BLE001 - report everything to the parent
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


# ---- resource usage ------------------------------------------------------------------------
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


def sample_usage(server_pids: Sequence[int], loadgen_pids: Sequence[int], start: float, end: float,
                 period: float = SAMPLE_PERIOD) -> dict:
    """Sample CPU % and RSS every ``period`` seconds between Unix times ``start`` and ``end``
    (blocking: run it in a thread). Returns ``server_cpu_percent`` (mean of the samples of the
    summed CPU of ``server_pids`` and their descendants, 100 = one core), ``server_rss_mb``
    (largest summed RSS) and ``loadgen_cpu_percent`` (mean summed CPU of ``loadgen_pids``)."""
    import psutil

    server_cache: dict = {}
    loadgen_cache: dict = {}
    time.sleep(max(0.0, start - time.time()))

    def cpu(procs: list) -> float:
        total = 0.0
        for proc in procs:
            try:
                total += proc.cpu_percent(None)
            except psutil.Error:
                pass
        return total

    cpu(_tree(server_pids, server_cache))  # prime: cpu_percent(None) measures since the last call
    cpu(_tree(loadgen_pids, loadgen_cache))
    server_cpu: list[float] = []
    loadgen_cpu: list[float] = []
    max_rss = 0
    next_at = time.time() + period
    while next_at <= end + 1e-3:
        time.sleep(max(0.0, next_at - time.time()))
        procs = _tree(server_pids, server_cache)
        server_cpu.append(cpu(procs))
        rss = 0
        for proc in procs:
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                pass
        max_rss = max(max_rss, rss)
        loadgen_cpu.append(cpu(_tree(loadgen_pids, loadgen_cache)))
        next_at += period
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    return {"server_cpu_percent": mean(server_cpu), "server_rss_mb": max_rss / (1024 * 1024),
            "loadgen_cpu_percent": mean(loadgen_cpu)}


# ---- the run -------------------------------------------------------------------------------
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
