"""Room affinity across the gateway processes of one node: each room's sockets in one process.

``starhold serve --gateways N`` (and ``starhold gateway --gateways N``) runs N gateway
processes sharing the port: the kernel gives each new connection to any of them
(``SO_REUSEPORT``). Without affinity the players of one room end up spread over the N
processes, and the room keeps a data channel to each (``gateway/room_link.py``): N batches of
inputs per flush point, N pushes of every frame, N links to keep. With affinity, the process
that accepts a room's WebSocket upgrade hands the connection, before answering it, to the
room's **home process** (``home_process``: blake2s of ``"kind/room_id"`` modulo N), which
serves it as if it had accepted it. Each room then has one data channel per node, as with one
gateway process, while the N processes still share the node's sockets.

The hand-off is file-descriptor passing (``SCM_RIGHTS``, ``socket.send_fds``) over a Unix
socket per process in a directory only this user can read (``handoff_dir``): the sender
passes the accepted TCP socket and the request's head (its request line and headers, as
received, plus ``X-Starhold-Room: <kind>/<room_id>``), then drops its own copy of the socket
without closing the connection; the home process adopts the socket
(``loop.connect_accepted_socket``) into an aiohttp server of its own that serves only
handed-off upgrades (``gateway.serve_socket`` for the room named by that header, which the
sender sets; a client's own ``X-Starhold-Room`` header is dropped). The client sees one
ordinary upgrade: the 101 comes from the home process. The token, admission and every limit
are checked there, once.

When the home process cannot be reached (not listening yet, stopping, gone), the accepting
process serves the socket itself: affinity saves CPU, it never refuses a player. A hand-off
that fails once the socket was sent (rare: the home process died receiving it) drops that
connection, whose client reconnects: a socket is never served by two processes. Only
WebSocket upgrades move; HTTP calls are answered where they land.

Measured (``benchmarks/realtime.py --only starhold --clients 1000``, two gateway processes,
this 2-core machine saturated by the server and the load generators, three alternating pairs
with ``STARHOLD_ROOM_AFFINITY=0``): 122.6 / 125.4 / 116.2 % of a core without affinity,
116.3 / 115.3 / 110.2 % with it (5-8 % less); input->ack p99 474 / 874 / 311 ms without,
349 / 213 / 285 ms with. One gateway process took 107 / 104 % in two runs the same hour.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import stat
import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ..ratelog import RateLimitedLog
from . import metrics

if TYPE_CHECKING:
    from .app import Gateway

log = logging.getLogger("starhold.gateway")

ROOM_HEADER = "X-Starhold-Room"
"""The header the sender adds to a handed-off upgrade: ``<kind>/<room_id>``."""
HANDOFF_TIMEOUT = 2.0
"""Seconds a hand-off may take (connect, send; receive on the other side) before it is abandoned."""
MAX_HEAD_BYTES = 64 * 1024
"""Bytes of a handed-off request head at most (aiohttp's own limit on a request's headers is
below this); a larger one is served where it landed."""

_LENGTH = struct.Struct("!I")
FAILURES = RateLimitedLog(log)


def home_process(key: str, count: int) -> int:
    """Index (``0 <= index < count``) of the gateway process that serves room ``key``
    (``"<kind>/<room_id>"``): the first 4 bytes of its blake2s digest, big-endian, modulo
    ``count``. Stable across processes, restarts and machines."""
    if count <= 1:
        return 0
    return int.from_bytes(hashlib.blake2s(key.encode(), digest_size=4).digest(), "big") % count


def handoff_dir(leader_pid: int) -> Path:
    """The directory of the hand-off sockets of the gateway processes led by process
    ``leader_pid`` (gateway 0, the parent of the others): ``<tmp>/starhold-gw-<pid>``."""
    return Path(tempfile.gettempdir()) / f"starhold-gw-{leader_pid}"


def request_head(request: web.BaseRequest, room: str) -> bytes:
    """``request``'s request line and headers as received, without any ``X-Starhold-Room``,
    plus ``X-Starhold-Room: room``, and the blank line that ends the head."""
    version = request.version
    lines = [f"{request.method} {request.raw_path} HTTP/{version.major}.{version.minor}\r\n".encode("latin-1")]
    lines += [name + b": " + value + b"\r\n" for name, value in request.raw_headers
              if name.lower() != ROOM_HEADER.lower().encode()]
    lines.append(f"{ROOM_HEADER}: {room}\r\n\r\n".encode("latin-1"))
    return b"".join(lines)


class Handoff:
    """The hand-offs of gateway process ``index`` of ``count``, through Unix sockets in
    ``directory`` (``<directory>/g<index>.sock``). ``start(gateway)`` listens (and serves what
    arrives with ``gateway.serve_socket``); ``hand_off(request, kind, room_id)`` passes an
    upgrade to the room's home process; ``close()`` stops listening."""

    def __init__(self, index: int, count: int, directory: Path):
        self.index = index
        self.count = count
        self.directory = Path(directory)
        self.handed_off = 0
        """Upgrades passed to another process."""
        self.taken = 0
        """Upgrades adopted from another process."""
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        self._gateway: "Gateway | None" = None

    def path(self, index: int) -> Path:
        return self.directory / f"g{index}.sock"

    def elsewhere(self, kind: str, room_id: str) -> bool:
        """Whether room ``kind/room_id`` is served by another process of the node."""
        return home_process(f"{kind}/{room_id}", self.count) != self.index

    # ---- receiving -------------------------------------------------------------------------
    async def start(self, gateway: "Gateway") -> None:
        """Create the directory (mode 0700; refused if another user owns it) and listen."""
        self._gateway = gateway
        self.directory.mkdir(mode=0o700, exist_ok=True)
        info = self.directory.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise PermissionError(f"{self.directory} must belong to this user with mode 0700")
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, handle_signals=False)  # its access log lines: the handed-off upgrades
        await self._runner.setup()
        path = self.path(self.index)
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self._accepting = asyncio.ensure_future(self._accept())

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self._listener)
            asyncio.ensure_future(self._adopt(conn))

    async def _adopt(self, conn: socket.socket) -> None:
        """Receive one hand-off (length-prefixed head, the socket) and serve it."""
        loop = asyncio.get_running_loop()
        try:
            conn.settimeout(HANDOFF_TIMEOUT)
            head, fds = await loop.run_in_executor(None, _receive, conn)
        except Exception as exc:  # noqa: BLE001 - a broken hand-off: the connection is lost (its client reconnects)
            FAILURES.log(logging.WARNING, "receive", "gateway %d: a hand-off failed on arrival: %s", self.index, exc)
            return
        finally:
            conn.close()
        sock = socket.socket(fileno=fds[0])
        try:
            _, protocol = await loop.connect_accepted_socket(self._runner.server, sock)
        except Exception as exc:  # noqa: BLE001
            sock.close()
            FAILURES.log(logging.WARNING, "adopt", "gateway %d: could not adopt a handed-off socket: %s",
                         self.index, exc)
            return
        self.taken += 1
        metrics.HANDOFFS.labels("in").inc()
        protocol.data_received(head)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        kind, _, room_id = request.headers.get(ROOM_HEADER, "").partition("/")
        return await self._gateway.serve_socket(request, kind, room_id or None, here=True)

    # ---- sending ---------------------------------------------------------------------------
    async def hand_off(self, request: web.Request, kind: str, room_id: str) -> bool:
        """Pass ``request`` (an upgrade not yet answered) to room ``kind/room_id``'s home
        process. Returns True when that process took it (the caller must then drop the
        request without answering: ``abandon``), False when the caller serves it itself."""
        sent = await send_upgrade(request, kind, room_id, self.path(home_process(f"{kind}/{room_id}", self.count)))
        if sent:
            self.handed_off += 1
        return sent

    @staticmethod
    def abandon(request: web.Request) -> None:
        """Drop a handed-off request's connection here without a byte more: the other
        process holds the socket (closing our descriptor does not end the connection)."""
        request.transport.abort()

    def stop_listening(self) -> None:
        """Take no more hand-offs (a gateway shutting down: the others then serve its rooms'
        new sockets where they land). The sockets adopted so far stay with ``gateway``."""
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            self.path(self.index).unlink(missing_ok=True)
            try:
                self.directory.rmdir()  # the last process to stop removes it
            except OSError:
                pass

    async def close(self) -> None:
        """``stop_listening``, then end the server of the adopted sockets (after the
        gateway's shutdown closed them)."""
        self.stop_listening()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def send_upgrade(request: web.Request, kind: str, room_id: str, target: Path) -> bool:
    """Pass ``request`` (an upgrade not yet answered) for room ``kind/room_id`` to the
    process listening on the Unix socket ``target`` (``Handoff.start``: another gateway
    process, or a room host's gateway, ``gateway/colocate.py``). Returns True when the
    socket was sent (the caller must then drop the request without answering:
    ``Handoff.abandon``), False when the caller serves it itself: a TLS connection, a head
    over ``MAX_HEAD_BYTES``, or ``target`` not listening."""
    head = request_head(request, f"{kind}/{room_id}")
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or len(head) > MAX_HEAD_BYTES or transport.is_closing() \
            or transport.get_extra_info("sslcontext") is not None:  # TLS state cannot move with the socket
        return False
    transport.pause_reading()
    fd = os.dup(sock.fileno())
    try:
        await asyncio.get_running_loop().run_in_executor(None, _send, target, head, fd)
    except _NotSent as exc:  # not listening, stopping, gone: serve it here
        transport.resume_reading()
        metrics.HANDOFFS.labels("failed").inc()
        FAILURES.log(logging.INFO, ("send", str(target)), "cannot hand sockets to %s (%s); serving them here",
                     target, exc.__cause__ or exc)
        return False
    except OSError as exc:  # sent, or maybe sent: it must not be served twice
        FAILURES.log(logging.WARNING, ("sent", str(target)), "a hand-off to %s may have failed (%s); the "
                     "connection is dropped here (the client reconnects)", target, exc)
    finally:
        os.close(fd)
    metrics.HANDOFFS.labels("out").inc()
    return True


class _NotSent(Exception):
    """The hand-off did not reach the other process (the socket is still only ours)."""


def _send(target: Path, head: bytes, fd: int) -> None:
    """Blocking (run in a thread): connect to ``target`` and send the head and the socket.
    Raises ``_NotSent`` when nothing was sent, ``OSError`` when sending failed part-way."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(HANDOFF_TIMEOUT)
        try:
            conn.connect(str(target))
        except OSError as exc:
            raise _NotSent(str(exc)) from exc
        socket.send_fds(conn, [_LENGTH.pack(len(head)) + head], [fd])
    finally:
        conn.close()


def _receive(conn: socket.socket) -> tuple[bytes, list[int]]:
    """Blocking (run in a thread): the head and the descriptor of one hand-off."""
    data, fds, _, _ = socket.recv_fds(conn, MAX_HEAD_BYTES + _LENGTH.size, 1)
    try:
        if len(fds) != 1 or len(data) < _LENGTH.size:
            raise ConnectionError("a hand-off without its socket")
        length = _LENGTH.unpack_from(data)[0]
        if length > MAX_HEAD_BYTES:
            raise ConnectionError("a hand-off head too long")
        while len(data) < _LENGTH.size + length:
            more = conn.recv(_LENGTH.size + length - len(data))
            if not more:
                raise ConnectionError("a hand-off cut short")
            data += more
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return data[_LENGTH.size:_LENGTH.size + length], fds
