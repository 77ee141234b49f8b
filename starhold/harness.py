"""The room test harness: run one room on either host and drive it from a test.

::

    async with RoomHarness(MyRoom) as h:                 # in-process, ManualClock
        alice = await h.connect({"name": "Alice"})
        await alice.send("hello", {"n": 1})              # MyRoom.messages["hello"] validates it
        assert await alice.next_message() == {"ok": True}  # waits for it if need be
        await h.run_in_room(lambda room: room.storage.get("k"))  # inside, under the gates
        await h.advance(60)                              # timers and alarms fire on the way
        await h.evict()                                  # hibernate now
        await h.wake()                                   # next activation, state from storage

    async with RoomHarness(MyRoom, host="ray") as h:     # the same on a real Ray actor
        ...

Hosts: ``"inprocess"`` (no Ray; a ``ManualClock``: ``advance``, ``advance_to_next``,
``wait_for_next_tick`` move time instantly) and ``"ray"`` (a real actor; system clock:
``advance`` is refused, ``wait_for_next_tick`` waits in real time; needs ``ray.init``).
Fault injection (in-process): ``h.faults.fail(...)``, ``h.faults.delay(...)``,
``h.faults.kill(...)`` act on chosen storage operations. Every call collects the room's
output into ``conn.received`` before it returns or raises. Errors: ``starhold.errors``.

One transport for tests and production: a harness client's message is encoded as a client
envelope, validated by the gateway's function (``starhold.messages.parse_client_message``
against the kind's ``Room.messages``), and its events cross the data channel's codec
(``starhold._runtime.events``) into the same ``RoomRuntime.dispatch``, so ``on_message`` gets
what it would get from a real client, and an invalid message gets the gateway's error frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable

import msgpack

from .errors import ActivationKilled, ConnectionClosed
from .clock import ManualClock
from ._runtime.events import Connect, decode_events, encode_batch
from ._runtime.handle import RoomDirectory, RoomGone, RoomHandle
from .room import HttpRequest, HttpResponse, Room
from .storage.snapshots import SnapshotStore
from .fake_connection import NEXT_MESSAGE_TIMEOUT, FakeConnection  # noqa: F401  (public here too)
from .faults import FaultPlan, faulty_storage_factory

__all__ = ["ActivationKilled", "ConnectionClosed", "FakeConnection", "FaultPlan", "RoomHarness",
           "faulty_storage_factory"]

HARNESS_GATEWAY = "harness"
"""The gateway id under which the harness's fake connections live."""


class RoomHarness:
    """One room (``room``: a ``Room`` subclass or a registered kind) on a host, for tests.

    ``name``: the room id (default: unique); ``params``: creation params; ``data_dir``: where
    SQLite files and snapshots go (default: a temporary directory); ``idle_timeout``: seconds;
    ``snapshots``: a snapshot store spec (``{"kind": "s3", "bucket": ..., "endpoint_url": ...,
    "aws_access_key_id": ..., "aws_secret_access_key": ...}``, see ``storage.factory``) or an
    ``S3SnapshotStore`` such as the ``s3_store`` fixture (in-process it is used as is; on Ray its
    ``snapshot_spec`` travels to the actor; the harness does not close it); default: local
    snapshots under ``data_dir``. Two harnesses with the same ``name`` and S3 spec but
    different ``data_dir`` are the same room on two nodes.
    """

    def __init__(self, room: type[Room] | str, *, host: str = "inprocess", name: str | None = None,
                 params: dict | None = None, data_dir: str | Path | None = None, idle_timeout: float = 10.0,
                 clock: ManualClock | None = None, snapshots: "dict | SnapshotStore | None" = None):
        if host not in ("inprocess", "ray"):
            raise ValueError("host must be 'inprocess' or 'ray'")
        self.host = host
        self.kind = room if isinstance(room, str) else room.kind
        self.room_classes = {} if isinstance(room, str) else {room.kind: room}
        self.name = name or f"room-{uuid.uuid4().hex[:8]}"
        self.params = dict(params or {})
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="starhold-harness-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self.idle_timeout = idle_timeout
        self.snapshots = snapshots
        self.clock = clock or (ManualClock() if host == "inprocess" else None)
        self.faults = FaultPlan()
        self.connections: dict[str, FakeConnection] = {}
        self.directory: RoomDirectory | None = None
        self._ids = itertools.count(1)
        self._collect_lock = asyncio.Lock()

    async def __aenter__(self) -> "RoomHarness":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def start(self) -> None:
        """Create the directory and activate the room."""
        if self.host == "inprocess":
            from ._runtime.local_host import InProcessDirectory
            from .storage.factory import snapshot_store_from_config

            store = self.snapshots if isinstance(self.snapshots, SnapshotStore) else \
                snapshot_store_from_config(self.snapshots, self.data_dir)
            self.directory = InProcessDirectory(self.data_dir, clock=self.clock, idle_timeout=self.idle_timeout,
                                                room_classes=self.room_classes,
                                                storage_factory=faulty_storage_factory(self.faults),
                                                snapshots=store)
        else:
            from ._runtime.ray_host import RayDirectory
            from .storage.factory import snapshot_spec

            spec = snapshot_spec(self.snapshots) if isinstance(self.snapshots, SnapshotStore) else self.snapshots

            self.directory = RayDirectory(
                {"data_dir": str(self.data_dir.resolve()), "idle_timeout": self.idle_timeout, "log_level": "WARNING",
                 "snapshots": spec},
                namespace=f"harness-{uuid.uuid4().hex[:8]}", room_classes=self.room_classes)
        await self.directory.start()
        await self.wake()

    async def close(self) -> None:
        """Stop the room (no snapshot) and clean up."""
        if self.host == "ray" and self.directory is not None:
            from ._runtime.host_pool import kill_namespace

            kill_namespace(self.directory.namespace)
        elif self.directory is not None:
            runtime = self.runtime
            if runtime is not None and runtime.state == "active":
                await runtime.crash()
            await self.directory.scheduler.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # ---- the room --------------------------------------------------------------------------
    async def handle(self) -> RoomHandle:
        """A handle on the live activation, waking the room if it sleeps."""
        return await self.directory.get(self.kind, self.name, self.params)

    @property
    def runtime(self):
        """The in-process ``RoomRuntime`` (None on Ray or while asleep)."""
        if self.host != "inprocess" or self.directory is None:
            return None
        return self.directory.runtime(self.kind, self.name)

    @property
    def room(self) -> Room:
        """The live ``Room`` instance (in-process host only)."""
        runtime = self.runtime
        if runtime is None or runtime.room is None:
            raise RuntimeError("no live in-process activation (asleep, or on Ray)")
        return runtime.room

    async def is_active(self) -> bool:
        return await self.directory.is_active(self.kind, self.name)

    @contextlib.asynccontextmanager
    async def _collecting(self):
        """Collect the room's output after the block, also when it raises: what the room sent
        past the output gate (``allow_unconfirmed=True``) before a failed commit or a kill
        reaches the connections before the exception reaches the test. On
        ``ActivationKilled`` the activation is then crashed."""
        try:
            yield
        except ActivationKilled:
            await self.collect()
            await self._crashed()
            raise
        finally:
            await self.collect()

    @property
    def room_class(self) -> type[Room]:
        """The ``Room`` subclass of the harnessed kind."""
        if self.room_classes:
            return self.room_classes[self.kind]
        from .kinds import room_class

        return room_class(self.kind)

    async def _dispatch(self, events: list) -> None:
        """Deliver ``events`` through the data channel's codec (as a gateway's batch)."""
        if events:
            events = decode_events(msgpack.unpackb(encode_batch(0, events), raw=False)[1])
        async with self._collecting():
            for attempt in range(3):  # the activation may end (hibernate) just as we call it
                handle = await self.handle()
                try:
                    await handle.send_batch(HARNESS_GATEWAY, events)
                    return
                except RoomGone:
                    if attempt == 2:
                        raise

    async def _crashed(self) -> None:
        runtime = self.runtime
        if runtime is not None:
            await runtime.crash()

    async def collect(self, wait: float = 0.0) -> bool:
        """Route everything the room has sent so far to the fake connections, waiting up to
        ``wait`` seconds (real time) for the first item if there is none yet. Returns False if
        the room has no live activation (nothing to collect; it is not woken). Every harness
        call does this before it returns."""
        async with self._collect_lock:  # one collector at a time: messages keep their order
            handle = await self.directory.get_if_active(self.kind, self.name)
            if handle is None:
                return False
            try:
                items = await handle.pull(HARNESS_GATEWAY, wait)
            except RoomGone:
                return False
            self._route(items)
        return True

    def _route(self, items: list[tuple]) -> None:
        for item in items:
            if item[0] == "splice":
                for conn_id, head in item[2]:
                    if conn_id in self.connections:
                        self.connections[conn_id].received.append(
                            msgpack.unpackb(head + item[1], raw=False, strict_map_key=False))
            elif item[0] == "send":
                try:
                    message = msgpack.unpackb(item[2], raw=False, strict_map_key=False)
                except Exception:
                    message = item[2]
                for conn_id in item[1]:
                    if conn_id in self.connections:
                        self.connections[conn_id].received.append(message)
            elif item[0] == "close" and item[1] in self.connections:
                conn = self.connections[item[1]]
                conn.close_code, conn.close_reason = item[2], item[3]

    async def connect(self, payload: dict | None = None, seq: int = 0, conn_id: str | None = None,
                      player: str | None = None, name: str = "", account: str = "guest") -> FakeConnection:
        """A new client: ``on_connect(conn, ConnectRequest(payload, seq, player, name, account))``
        has run on return. ``player`` is the verified identity a gateway would pass (default:
        a new one per connection)."""
        conn = FakeConnection(self, conn_id or f"conn-{next(self._ids)}", seq=seq)
        self.connections[conn.id] = conn
        identity = {"player": player or f"player-{conn.id}", "name": name, "kind": account}
        await self._dispatch([Connect(conn.id, dict(payload or {}), seq, identity)])
        return conn

    async def request(self, method: str = "GET", path: str = "", query: dict | None = None,
                      body: bytes = b"") -> HttpResponse:
        """An HTTP request to ``on_request``; returns its ``HttpResponse``."""
        async with self._collecting():
            for attempt in range(3):  # the activation may end (hibernate) just as we call it
                handle = await self.handle()
                try:
                    return await handle.request(HttpRequest(method, path, dict(query or {}), body))
                except RoomGone:
                    if attempt == 2:
                        raise

    async def run_in_room(self, fn: Callable[[Room], Any]) -> Any:
        """Run ``fn(room)`` inside the room, as one more event (like ``runInDurableObject`` of
        ``@cloudflare/vitest-pool-workers``): the room is woken if it sleeps, ``fn`` gets the
        live ``Room`` instance and runs under the input gate (no other event runs meanwhile)
        and the output gate (its storage writes commit when it returns, then what it sent is
        released and collected). ``fn`` may be a plain or an async function (an awaitable it
        returns is awaited). Returns what ``fn`` returned.

        If ``fn`` raises, its writes are rolled back, its held output is dropped and the
        exception reaches the test (``on_error`` is not called). A failed commit raises
        ``StorageError`` (the room is reset), a kill ``ActivationKilled``. ``fn`` must not await
        harness calls (they would wait for the gate it holds). In-process host only: raises
        ``RuntimeError`` on Ray (the room lives in another process)."""
        if self.host != "inprocess":
            raise RuntimeError("run_in_room needs the in-process host (on Ray the room is in another process)")

        async with self._collecting():
            for attempt in range(3):  # the activation may end (hibernate) just as we call it
                await self.handle()
                runtime = self.runtime
                async with runtime._gate:  # as RoomRuntime.request does for on_request
                    if runtime.state != "active":
                        if attempt == 2:
                            raise RoomGone(runtime.key)
                        continue
                    room = runtime.room

                    async def call():
                        result = fn(room)
                        return await result if inspect.isawaitable(result) else result

                    result = await runtime._invoke(None, call, reraise=True)
                runtime._touch()
                return result

    async def stats(self) -> dict:
        """The activation's runtime figures (epoch, connections, commits...)."""
        return await (await self.handle()).stats()

    # ---- time and lifecycle ------------------------------------------------------------------
    def _manual(self) -> ManualClock:
        if not isinstance(self.clock, ManualClock):
            raise RuntimeError("time can only be advanced on the in-process host (ManualClock)")
        return self.clock

    async def advance(self, seconds: float) -> None:
        """Move the manual clock forward, firing due timers and alarms on the way."""
        clock = self._manual()
        async with self._collecting():
            await clock.advance(seconds)

    async def advance_to_next(self) -> float | None:
        """Jump to the next timer deadline (auto-advance); returns the new time or None."""
        clock = self._manual()
        async with self._collecting():
            return await clock.advance_to_next()

    async def wait_for_next_tick(self) -> None:
        """Let the room's pending alarm fire: instantly on the manual clock, in real time on
        Ray. Raises ``RuntimeError`` if the room has no alarm."""
        alarm = (await self.stats())["alarm"]
        if alarm is None:
            raise RuntimeError("the room has no pending alarm")
        async with self._collecting():
            if isinstance(self.clock, ManualClock):
                await self.clock.advance(max(0.0, alarm - self.clock.now()))
            else:
                import time

                await asyncio.sleep(max(0.0, alarm - time.time()) + 0.05)

    async def fire_alarm(self) -> bool:
        """Deliver the pending alarm now, whatever its time: ``on_alarm`` runs under the gates
        with ``info.scheduled_time`` = the time the alarm was set for (seconds on the room's
        clock; the clock does not move). Returns False, and runs nothing, if there is none."""
        handle = await self.handle()
        async with self._collecting():
            return await handle.fire_alarm()

    async def evict(self) -> bool:
        """Hibernate now (snapshot, connections held); returns whether it hibernated."""
        handle = await self.directory.get_if_active(self.kind, self.name)
        if handle is None:
            return False
        await self.collect()
        done = await handle.hibernate()
        if self.host == "ray":  # the actor exits just after answering
            while await self.is_active():
                await asyncio.sleep(0.02)
        return done

    async def wake(self) -> None:
        """Activate the room (a no-op if it is awake); connections held through hibernation
        come back with their attachments."""
        await self._dispatch([])

    async def kill(self) -> None:
        """Kill the live activation now, as a crash: uncommitted writes and held output are
        lost, no ``on_hibernate``, no snapshot. The next call starts a new activation."""
        if self.host == "inprocess":
            await self._crashed()
            return
        import os
        import signal

        handle = await self.directory.get_if_active(self.kind, self.name)
        if handle is not None:
            os.kill((await handle.stats())["pid"], signal.SIGKILL)
