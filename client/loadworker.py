"""One load-generator process of ``starhold loadtest`` (``client.loadtest``): its bots, each a
raw WebSocket that joins a room and sends ``move_to`` 10 times a second, and the measurements
it returns (input -> ack latency, frame jitter, loop delay).

Bots read what aiohttp's parser hands ``starhold.wsdirect`` (no task wake-up per frame; the
public receive loop when wsdirect falls back), and decode a frame only up to its ack
(``loadstats.frame_ack``). ``_worker_main`` is the body of a worker process; the parent sends
it a spec and gets the result back over a pipe.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import traceback
from array import array
from typing import Awaitable, Callable

import aiohttp

from .. import heap
from ..rooms import protocol
from ..wsdirect import make_direct
from .connection import StarholdHTTPError, guest_token, ws_base
from .loadstats import frame_ack, percentile

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
GRACE = 1.0
"""Seconds after the window for late acks."""
MAX_GAME_PLAYERS = 500
"""Largest ``max_players`` of a game session (docs/protocol.md §7)."""


class _JoinRefused(ConnectionError):
    """An error frame answered the join (already counted as an error)."""


class _Bot:
    __slots__ = ("index", "path", "ws", "queue", "seq", "first_seq", "sent", "acked", "last_frame", "connected",
                 "welcome", "sending")

    def __init__(self, index: int, path: str):
        self.index = index
        self.path = path
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.queue = None  # its starhold.wsdirect.DirectQueue (None on the public path)
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
        """Wait for ``bot``'s socket to end (its data messages go to ``_on_data``, from
        aiohttp's parser, or from here when ``starhold.wsdirect`` runs on the public path)."""
        ws = bot.ws
        ended = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                 aiohttp.WSMsgType.ERROR)
        try:
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.BINARY or msg.type is aiohttp.WSMsgType.TEXT:
                    self._on_data(bot, msg.data)  # make_direct() returned None
                elif msg.type in ended:
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
