"""The room runtime: one activation of one room, host-agnostic (DESIGN §3, §4).

It owns the room instance, its storage and its connections, and gives them Durable Object
semantics whichever host runs it (a Ray actor or the in-process host):

- **Input gate**: every event (connect, message, close, request, alarm) runs under one lock,
  one at a time, so hooks need no locks.
- **Output gate**: messages a hook sends are held until the hook's storage writes commit;
  a failed commit drops them and resets the room from its last committed state.
  ``allow_unconfirmed=True`` skips the gate.
- **Alarm** (``starhold._runtime.alarms``): one per room, persisted; fired through
  ``clock.call_at``; when ``on_alarm`` raises it is retried with exponential backoff from 2 s,
  up to 6 times.
- **Hibernation** (``starhold._runtime.hibernation``): with no event for ``idle_timeout`` seconds and no alarm due within
  ``idle_timeout``, the room saves its connections (ids, gateways, attachments, tags) in its
  database, hands a pending alarm to the ``AlarmService`` (which wakes it when the alarm falls
  due), snapshots its database to the ``SnapshotStore`` and the activation ends
  (``on_exit``). Gateways keep the sockets open; the next activation restores the
  connections before ``on_start``.
- **Data channels** (``starhold._runtime.channel``): gateways send their batches of events over a TCP
  channel to the activation and get its output pushed back as soon as the output gate
  releases it; a channel ends with its activation.
- **Epochs**: every activation takes ``max(local epoch, snapshot manifest epoch) + 1``; its
  commits are fenced on it (``StaleEpochError`` for a superseded activation). With a snapshot
  store, the activation first claims that epoch and a lease in the store's manifest
  (``starhold._runtime.lease``): two activations never hold the same epoch on any node, a superseded one
  cannot publish, and none acknowledges anything after its lease ran out.
- **Replication** (``starhold._runtime.replication``, ``starhold._runtime.recovery``): with a
  store that replicates (S3), each commit's statements are appended to the room's log in the
  store before its output is released, so an acknowledged write survives the loss of the
  node; a new activation recovers the snapshot plus the log.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Awaitable, Callable, Protocol

import msgspec

from .. import protocol
from ..clock import Clock, Timer
from ..connection import Connection
from ..room import ConnectRequest, HttpRequest, HttpResponse, Room
from ..messages import decode_payload, kind_decoders, kind_schemas, validate_payload
from ..storage.base import StaleEpochError, StorageError
from ..storage.snapshots import SnapshotStore
from ..storage.sqlite_store import SqliteRoomStorage
from .alarms import AlarmDelivery
from .channel import PROCESS as channel_process, ChannelServer
from .events import Check, Close, Connect, Message
from .handle import RoomGone
from .hibernation import SNAPSHOT_INTERVAL, Hibernation
from .outbox import Output, _Outbox
from .posts import Posts
from .lease import LEASE_SECONDS, ActivationLease, holder_id, sleep_until
from .recovery import open_log, recover
from .replication import Replicator
from .state import ActivationState
from .stats import DEFAULT_TICK, TickStats

log = logging.getLogger("starhold.room")


class AlarmService(Protocol):
    """Who wakes hibernated rooms whose alarm falls due (``starhold._runtime.scheduler``)."""

    async def register(self, kind: str, room_id: str, at: float) -> None: ...


class RoomRuntime(AlarmDelivery, Hibernation, Output, Posts):
    """One activation of a room of class ``room_cls`` named ``name``.

    ``db_path``: the room's SQLite file; ``snapshots``: where hibernation snapshots go (and
    where a missing ``db_path`` is restored from); ``idle_timeout``: seconds with no
    connection and no alarm before hibernating; ``on_exit``: awaited after hibernation;
    ``channel_host``: the address gateways reach this process at (``starhold._runtime.channel``);
    ``lease``: seconds of the activation lease in the snapshot store (``starhold._runtime.lease``);
    ``directory``: the ``RoomDirectory`` (or a function returning it, called on first use) that
    reaches other rooms for ``Room.rooms`` (``starhold._runtime.posts``).
    """

    def __init__(
        self,
        room_cls: type[Room],
        name: str,
        params: dict,
        *,
        db_path: str | Path,
        clock: Clock,
        snapshots: SnapshotStore | None,
        idle_timeout: float = 10.0,
        on_exit: Callable[[], Awaitable[None]] | None = None,
        alarm_service: AlarmService | None = None,
        storage_factory: Callable[[Path], SqliteRoomStorage] = SqliteRoomStorage,
        snapshot_interval: float | None = SNAPSHOT_INTERVAL,
        channel_host: str = "127.0.0.1",
        lease: float = LEASE_SECONDS,
        directory=None,
    ):
        self.room_cls = room_cls
        self.name = name
        self.params = params
        self.key = f"{room_cls.kind}/{name}"
        self.db_path = Path(db_path)
        self.clock = clock
        self.snapshots = snapshots
        self.idle_timeout = idle_timeout
        self.on_exit = on_exit
        self.alarm_service = alarm_service
        self.storage_factory = storage_factory
        self.snapshot_interval = snapshot_interval
        self._snapshot_timer: Timer | None = None
        self.state = ActivationState.NEW
        self.epoch = 0
        self.room: Room | None = None
        self.storage: SqliteRoomStorage | None = None
        self._gate = asyncio.Lock()
        self._conns: dict[str, Connection] = {}
        self._outboxes: dict[str, _Outbox] = {}
        self._pending: list[tuple] | None = None
        self._alarm_at: float | None = None
        self._alarm_timer: Timer | None = None
        self._idle_timer: Timer | None = None
        self._idle_deadline = 0.0  # clock time after which an activation without events hibernates
        self.events_handled = 0
        self._retries: int | None = None  # cached stored alarm retry count (None: read it)
        self.tick_stats = TickStats(1.0 / room_cls.tick_rate if room_cls.tick_rate else DEFAULT_TICK)
        self._stats_sent: dict[str, float] = {}
        self.channels = ChannelServer(self, channel_host)
        self._posts_init(directory)
        self.lease = (ActivationLease(snapshots, self.key, holder_id(self.db_path), clock, lease=lease)
                      if snapshots is not None else None)
        self.replicating = snapshots is not None and bool(getattr(snapshots, "replicates", False))
        """Whether commits are replicated to the store's log before they are acknowledged
        (``starhold._runtime.replication``)."""
        self.replicator: Replicator | None = None
        self._snapshotting: asyncio.Task | None = None

    # ---- activation ------------------------------------------------------------------------
    async def start(self) -> None:
        """Open storage, claim the room's next epoch and lease in the snapshot store (restoring
        the latest snapshot if the local file is missing or older), wait out a previous
        holder's lease, and run ``on_start``. Raises what ``on_start`` raised (the next call
        retries), ``StorageError`` when the snapshot store cannot be reached."""
        async with self._gate:
            if self.state != ActivationState.NEW:
                if self.state != ActivationState.ACTIVE:
                    raise RoomGone(self.key)
                return
            storage = await self.storage_factory(self.db_path).open()
            try:
                claim = None
                rebase, log_ranges = False, None
                if self.lease is not None:
                    claim = await self.lease.acquire(int(await storage.meta_get("epoch") or 0),
                                                     open_log=self.replicating)
                    if self.replicating:  # the old holder's log is complete once its lease ended
                        await sleep_until(self.clock, claim.serve_at)
                    else:
                        storage = await self._restore_if_newer(storage, claim.manifest)
                self.epoch = await storage.claim_epoch(claim.manifest.epoch - 1 if claim else 0)
                if claim is not None and self.epoch != claim.manifest.epoch:
                    raise StaleEpochError(f"room {self.key}: local epoch {self.epoch} is ahead of the claim")
                await storage.commit()  # the fence: an older activation on this file commits no more
                if self.replicating:
                    storage, rebase, log_ranges = await recover(self, storage, claim)
                self.storage = storage
                if self.replicating:
                    await storage.start_log(self.epoch)
                    self.replicator = Replicator(self)
                    await open_log(self, claim, rebase, log_ranges)
                if self.params:
                    await storage.meta_put("params", self.params)
                else:
                    self.params = await storage.meta_get("params") or {}
                await storage.commit()
                if claim is not None and not self.replicating:  # another node's activation may serve until its lease ends
                    await sleep_until(self.clock, claim.serve_at)
                for conn_id, gateway_id, attachment, tags in await storage.take_connections():
                    conn = self._conns[conn_id] = Connection(conn_id, gateway_id, self)
                    conn._attachment, conn.tags = attachment, set(tags)
                undelivered = await storage.outbox_load()
                self.room = self.room_cls(self, self.name, self.params, storage, self.clock)
                await self._invoke(None, self.room.on_start, reraise=True)
            except BaseException:
                self.storage = self.room = None
                if self.replicator is not None:
                    self.replicator.stop()
                    self.replicator = None
                self._conns.clear()
                await storage.close()
                raise
            self.state = ActivationState.ACTIVE
            if self.lease is not None:
                self.lease.start(self._lease_lost)
            self._post_seq = max([self._post_seq, *(seq for seq, _ in undelivered)])
            for seq, item in undelivered:  # posts the last activation committed but did not deliver
                self._enqueue_post(seq, item)
        self._touch()
        self._arm_snapshot()

    def commit_mark(self) -> int:
        """``Room.commit_mark``: the commit that will hold the writes made so far."""
        storage = self.storage
        if self.replicating:
            return storage.log_seq + (1 if storage.has_writes else 0)
        return storage.commits + (1 if storage.has_writes else 0)

    def durable_mark(self) -> int:
        """``Room.durable_mark``: every commit up to it is durable (replicated off the node
        when the store replicates, committed to the local file otherwise)."""
        if self.replicator is not None:
            return self.replicator.durable
        return self.storage.commits if self.storage is not None else 0

    async def commit_now(self, wait: float = 0.0) -> bool:
        """``Room.commit_now``: commit the writes so far (inside a hook), then wait up to
        ``wait`` seconds for them to be replicated; returns whether they are durable."""
        if self.lease is not None and self.replicator is None:
            await self.lease.check()
        await self.storage.commit()
        if self.replicator is None:
            return True
        seq = self.storage.log_seq
        self.replicator.kick()
        if seq > self.replicator.durable and wait > 0:
            try:
                await asyncio.wait_for(asyncio.shield(self.replicator.wait(seq)), wait)
            except (asyncio.TimeoutError, StaleEpochError):
                pass
        return self.replicator.durable >= seq

    def ack_mark(self) -> int:
        """The commit a batch just applied depends on: the channel acknowledges the batch
        once ``durable_mark()`` reaches it."""
        if self.replicating and self.storage is not None:
            return self.storage.log_seq
        return 0

    def _after_commit(self, pending: list) -> None:
        """Release committed output now, or once replicated."""
        if self.replicator is not None:
            self.replicator.after_commit(pending)
        else:
            self._release(pending)

    async def _lease_lost(self) -> None:
        """A newer activation claimed the room (a renewal found its epoch): stop serving."""
        async with self._gate:
            if self.state == ActivationState.ACTIVE:
                log.warning("room %s: epoch %d superseded; this activation stops", self.key, self.epoch)
                await self._abandon()

    async def _ensure_active(self) -> None:
        if self.state == ActivationState.NEW:
            await self.start()
        elif self.state != ActivationState.ACTIVE:
            raise RoomGone(self.key)

    # ---- hooks under the gates -------------------------------------------------------------
    async def _invoke(self, conn: Connection | None, fn, *args, reraise: bool = False):
        """Run one hook under the output gate: commit its writes, then release its output.
        The caller holds the input gate."""
        self._pending = []
        try:
            result = await self._run_hook(conn, fn, *args, reraise=reraise)
        except BaseException:
            self._pending = None
            await self.storage.rollback()
            raise
        await self._commit_and_release()
        return result

    async def _run_hook(self, conn: Connection | None, fn, *args, reraise: bool = False):
        """Run one hook, its output joining ``self._pending``. A hook that raises gets an error
        frame sent to ``conn`` and ``on_error`` called (unless ``reraise``); what it wrote
        before raising still commits. The caller holds the input gate."""
        try:
            return await fn(*args)
        except Exception as exc:
            if reraise:
                raise
            await self._hook_failed(conn, fn, args, exc)
        return None

    async def _hook_failed(self, conn: Connection | None, fn, args: tuple, exc: Exception) -> None:
        """A hook raised ``exc``: log it, send ``conn`` an error frame, call ``on_error``."""
        log.error("room %s: %s failed", self.key, getattr(fn, "__name__", fn), exc_info=exc)
        if conn is not None and not conn.closed:
            seq = getattr(args[-1], "seq", 0) if args else 0  # the offending message's
            conn.send(protocol.error_frame(protocol.ERR_ROOM_ERROR, f"room error: {type(exc).__name__}", seq))
        try:
            await self.room.on_error(conn, exc)
        except Exception:
            log.exception("room %s: on_error failed", self.key)

    async def _run_batch(self, run: list) -> None:
        """``on_messages(run)``; when it raises, each connection of the run gets error 8 with
        the ``seq`` of its last message there, and ``on_error(None, exc)`` runs."""
        try:
            await self.room.on_messages(run)
        except Exception as exc:
            log.error("room %s: on_messages failed", self.key, exc_info=exc)
            last = {conn.id: (conn, message.seq) for conn, message in run}
            for conn, seq in last.values():
                if not conn.closed:
                    conn.send(protocol.error_frame(protocol.ERR_ROOM_ERROR, f"room error: {type(exc).__name__}", seq))
            try:
                await self.room.on_error(None, exc)
            except Exception:
                log.exception("room %s: on_error failed", self.key)

    async def _commit_and_release(self) -> None:
        """Commit what the hooks since ``self._pending = []`` wrote, then release their held
        output (the output gate). Raises ``RoomGone`` when superseded (or the activation lease
        ran out and cannot be renewed), ``StorageError`` (after resetting the room) when the
        commit fails."""
        self._check_not_ended()
        try:
            if self.lease is not None and self.replicator is None:
                await self.lease.check()  # (a replicating room checks before releasing instead)
                self._check_not_ended()
            await self.storage.commit()
        except StaleEpochError as exc:
            log.warning("room %s: epoch %d superseded (%s); this activation stops", self.key, self.epoch, exc)
            self._pending = None
            await self._abandon()
            # Callers see an ended activation and resolve the room again, reaching the newer one.
            raise RoomGone(f"{self.key}: epoch {self.epoch} superseded") from exc
        except StorageError:
            self._check_not_ended()  # killed meanwhile (its store closed): nothing to reset
            log.exception("room %s: commit failed; output dropped, room reset", self.key)
            self._pending = None
            await self._reset()
            raise
        except BaseException:
            self._pending = None
            if self.state not in (ActivationState.CRASHED, ActivationState.FENCED):  # else closed
                await self.storage.rollback()
            raise
        pending, self._pending = self._pending, None
        if pending is None:  # killed while it committed: as if the process died just after
            raise RoomGone(f"{self.key}: the activation ended while a hook committed")
        self._after_commit(pending)
        await self._sync_alarm()

    def _check_not_ended(self) -> None:
        """Raise ``RoomGone`` if this activation was killed or superseded while a hook ran:
        none of the hook commits (``crash`` closes the store mid-hook, and committing what the
        hook queued after that would commit half a hook)."""
        if self.state in (ActivationState.CRASHED, ActivationState.FENCED):
            self._pending = None
            raise RoomGone(f"{self.key}: the activation ended while a hook ran")

    async def crash(self) -> None:
        """End this activation as a crash would: nothing more is committed (the open
        transaction is lost), held output is dropped, no snapshot, no ``on_hibernate``. For
        tests (the harness's kill) and fatal errors."""
        self._pending = None
        await self._abandon(state=ActivationState.CRASHED)

    def _stop_timers(self) -> None:
        """Stop renewing the lease and cancel the alarm, idle and snapshot timers (the
        activation is ending)."""
        if self.lease is not None:
            self.lease.stop()
        if self.replicator is not None:
            self.replicator.stop()
        self._stop_posts()
        for timer in (self._alarm_timer, self._idle_timer, self._snapshot_timer):
            if timer is not None:
                timer.cancel()
        self._alarm_timer = self._idle_timer = self._snapshot_timer = None

    async def _abandon(self, state: ActivationState = ActivationState.FENCED) -> None:
        """End a superseded (zombie or duplicate) activation without writing anything: its
        callers get ``RoomGone`` and resolve the room again, reaching the newer activation."""
        self.state = state
        self._stop_timers()
        for conn in self._conns.values():
            conn.closed = True
        self._conns.clear()
        for box in self._outboxes.values():
            box.ready.set()
        try:  # first: from now on a hook still running cannot touch the file (nor hold its lock)
            await self.storage.close(checkpoint=False)
        except Exception:
            log.exception("room %s: closing fenced storage failed", self.key)
        await self.channels.close(flush=False)
        if self.on_exit is not None:
            await self.on_exit()

    async def _reset(self) -> None:
        """Discard the room's in-memory state: roll back and rebuild it from committed storage."""
        await self.storage.rollback()
        self._retries = None
        self.room = self.room_cls(self, self.name, self.params, self.storage, self.clock)
        self._pending = []
        try:
            await self.room.on_start()
            await self.storage.commit()
        finally:
            self._pending = None

    async def dispatch(self, gateway_id: str, events: list) -> int:
        """Apply a batch of client events (``starhold._runtime.events``) in order; returns this
        activation's epoch. Raises ``RoomGone``.

        The batch is one group commit: the hooks run one at a time under the input gate, their
        writes commit together after the last one, and then their held output is released (a
        connect, which may reject its connection, commits on its own). Messages whose type is
        in ``Room.coalesce`` are superseded by a later one of the same type from the same
        connection in the batch (only the latest is delivered). A message's payload that is
        not yet its declared Struct is validated into it (its msgpack bytes off the channel by
        ``starhold.messages.decode_payload``, a map by ``validate_payload``); one that fails (a
        gateway that knows other schemas) gets the error frame the gateway would have sent and
        skips ``on_message``.
        Messages of the types in ``Room.batched`` go to ``on_messages`` in runs (consecutive
        ones; any other event ends a run, so everything keeps its order)."""
        await self._ensure_active()
        events = _coalesce(events, self.room_cls.coalesce)
        async with self._gate:
            if self.state != "active":
                raise RoomGone(self.key)
            self._pending = []
            on_message = self.room.on_message
            batched = self.room_cls.batched
            run: list = []  # consecutive messages of ``batched`` types, for on_messages
            schemas = kind_schemas(self.room_cls)
            decoders = kind_decoders(self.room_cls)
            conns = self._conns
            try:
                for event in events:
                    if isinstance(event, Message):  # nearly every event (a class pattern costs ~7x this)
                        message = event.message
                        type_ = message.type
                        in_run = type_ in batched
                        if run and not in_run:
                            await self._run_batch(run)
                            run = []
                        conn = conns.get(event.conn)
                        if conn is None:  # connected to an earlier activation (crash, restart): must rejoin
                            if run:  # (output in arrival order)
                                await self._run_batch(run)
                                run = []
                            self._pending.append(((gateway_id,), ("close", event.conn, protocol.CLOSE_ROOM_UNAVAILABLE,
                                                                  "unknown connection; rejoin")))
                            continue
                        payload = message.payload
                        if not isinstance(payload, msgspec.Struct):  # off the channel: bytes (or a map)
                            try:
                                if type(payload) is msgspec.Raw:
                                    try:  # decode_payload's first step, inlined: this runs for every input
                                        payload = decoders[type_].decode(payload)
                                    except (KeyError, msgspec.ValidationError, msgspec.DecodeError):
                                        payload = decode_payload(schemas, decoders, type_, message.seq, payload)
                                else:
                                    payload = validate_payload(schemas, type_, message.seq, payload)
                                message = protocol.ClientMessage(type_, message.seq, payload)
                            except protocol.ProtocolError as exc:
                                if run:
                                    await self._run_batch(run)
                                    run = []
                                conn.send(protocol.error_frame(exc.code, str(exc), exc.seq))
                                continue
                        if in_run:
                            run.append((conn, message))
                            continue
                        try:  # _run_hook, inlined: this runs for every input
                            await on_message(conn, message)
                        except Exception as exc:
                            await self._hook_failed(conn, on_message, (conn, message), exc)
                        continue
                    if run:  # any other event ends a run
                        await self._run_batch(run)
                        run = []
                    match event:
                        case Connect(conn=conn_id):
                            await self._commit_and_release()
                            await self._connect(gateway_id, event)
                            self._pending = []
                        case Check(conn=conn_id):  # is this socket still ours? (after a crash it is not)
                            if conn_id not in self._conns:
                                self._pending.append(((gateway_id,), ("close", conn_id, protocol.CLOSE_ROOM_UNAVAILABLE,
                                                                      "unknown connection; rejoin")))
                        case Close(conn=conn_id, code=code, reason=reason):
                            conn = self._conns.pop(conn_id, None)
                            if conn is not None:
                                conn.closed = True
                                await self._run_hook(None, self.room.on_close, conn, code, reason)
                        case _:
                            log.warning("room %s: unknown event %r", self.key, event)
                if run:
                    await self._run_batch(run)
                self.events_handled += len(events)
            except BaseException:
                if self._pending is not None:
                    self._pending = None
                    await self.storage.rollback()
                raise
            await self._commit_and_release()
        self._touch()
        return self.epoch

    async def channel_info(self, gateway_id: str) -> dict:
        """Where ``gateway_id`` connects for this activation's data channel (``starhold._runtime.channel``):
        ``{"host", "port", "secret", "epoch", "process", "events", "marks"}`` (``process``:
        ``starhold._runtime.channel.PROCESS``, for a gateway in this process to join in process;
        ``events``: ``"bin"``, this room reads batches whose events are nested msgpack bytes,
        ``starhold._runtime.events.encode_batch``; a gateway sends a room whose info lacks it
        the plain array; ``marks``: True, this room reads tick marks, the channel's input
        barrier, and a gateway sends none to a room whose info lacks it). Starts the room if
        needed. Raises ``RoomGone``."""
        await self._ensure_active()
        host, port = await self.channels.address()
        if self.state != ActivationState.ACTIVE:
            raise RoomGone(self.key)
        return {"host": host, "port": port, "secret": self.channels.secret, "epoch": self.epoch,
                "process": channel_process, "events": "bin", "marks": True}

    def gateways_with_connections(self) -> set[str]:
        """The ids of the gateways holding at least one of this activation's connections."""
        return {conn.gateway_id for conn in self._conns.values()}

    async def _connect(self, gateway_id: str, event: Connect) -> None:
        conn_id = event.conn
        old = self._conns.pop(conn_id, None)
        if old is not None:
            old.closed = True
        conn = Connection(conn_id, gateway_id, self)
        self._conns[conn_id] = conn
        identity = event.identity
        request = ConnectRequest(payload=dict(event.payload), seq=event.seq,
                                 player=str(identity.get("player") or ""), name=str(identity.get("name") or ""),
                                 account=str(identity.get("kind") or ""))
        try:
            await self._invoke(conn, self.room.on_connect, conn, request, reraise=True)
        except BaseException as exc:
            self._conns.pop(conn_id, None)
            if isinstance(exc, (StorageError, RoomGone)) or not isinstance(exc, Exception):
                raise
            log.exception("room %s: on_connect rejected %s", self.key, conn_id)
            self._deliver((gateway_id,), ("send", (conn_id,), protocol.error_frame(
                protocol.ERR_ROOM_ERROR, f"join failed: {type(exc).__name__}", request.seq)))
            self._deliver((gateway_id,), ("close", conn_id, protocol.CLOSE_ROOM_UNAVAILABLE, "join failed"))

    async def request(self, request: HttpRequest) -> HttpResponse:
        """Run ``on_request`` under the gates. Raises ``RoomGone``."""
        await self._ensure_active()
        async with self._gate:
            if self.state != ActivationState.ACTIVE:
                raise RoomGone(self.key)
            response = await self._invoke(None, self.room.on_request, request, reraise=True)
            seq = self.storage.log_seq
        self._touch()
        await self._until_durable(seq)
        return response

    async def _until_durable(self, seq: int) -> None:
        """Wait until the commit ``seq`` of the log is replicated (at once when not
        replicating). Raises ``RoomGone`` when the activation ended first."""
        if self.replicator is not None:
            try:
                await self.replicator.wait(seq)
            except StaleEpochError as exc:
                raise RoomGone(self.key) from exc

    def stats(self) -> dict:
        """Figures for metrics, benchmarks and tests."""
        return {
            "room": self.key,
            "state": self.state,
            "epoch": self.epoch,
            "connections": len(self._conns),
            "events": self.events_handled,
            "commits": self.storage.commits if self.storage else 0,
            "durable": self.durable_mark(),
            "segments": self.replicator.segments_shipped if self.replicator else 0,
            "alarm": self._alarm_at,
            "barrier_waits": self.tick_stats.barrier_waits,
            "barrier_timeouts": self.tick_stats.barrier_timeouts,
        }


def _coalesce(events: list, types: frozenset) -> list:
    """``events`` without the messages superseded by a later message of the same type (one of
    ``types``) from the same connection."""
    if not types or len(events) < 2 or len({event.conn for event in events}) == len(events):
        return events  # (one event per connection, the usual batch: nothing can be superseded)
    last: dict[tuple[str, str], int] = {}
    seen = 0
    for i, event in enumerate(events):
        if isinstance(event, Message) and event.message.type in types:
            last[(event.conn, event.message.type)] = i
            seen += 1
    if seen == len(last):  # nothing superseded (the usual batch: one input per connection)
        return events
    return [e for i, e in enumerate(events)
            if not (isinstance(e, Message) and e.message.type in types and last[(e.conn, e.message.type)] != i)]
