"""``Room.batched`` / ``Room.on_messages``: the messages of the batched types arrive in runs (the
consecutive ones of a gateway's batch), everything else one by one to ``on_message``, in the
batch's order; a run's hook that raises costs each of its connections an error frame and the
room carries on. The game's ship rooms apply ``move_to`` that way."""

from __future__ import annotations

import msgspec
import pytest

from starhold import Room, define_room, protocol as P
from starhold._runtime.events import Close, Connect, Message
from starhold.harness import HARNESS_GATEWAY, RoomHarness


class Tap(msgspec.Struct, frozen=True):
    n: int


class Note(msgspec.Struct, frozen=True):
    text: str


@define_room
class RunsRoom(Room):
    """Logs how each message arrived: ``("run", [(conn, type, seq, n)...])`` or ``("one", ...)``;
    a ``tap`` with ``n == 13`` makes its run raise (after writing ``count``)."""

    kind = "test-runs"
    messages = {"tap": Tap, "note": Note}
    batched = frozenset({"tap"})

    async def on_start(self) -> None:
        self.log: list = []
        self.errors: list = []
        self.count = await self.storage.get("count") or 0

    async def on_messages(self, batch):
        assert all(type(m.payload) is Tap for _, m in batch)  # validated into the declared Struct
        self.log.append(("run", [(c.id, m.type, m.seq, m.payload.n) for c, m in batch]))
        self.count += len(batch)
        await self.storage.put("count", self.count)
        for conn, message in batch:
            conn.send(P.encode("got", message.seq, {}))
        if any(m.payload.n == 13 for _, m in batch):
            raise RuntimeError("unlucky")

    async def on_message(self, conn, message):
        self.log.append(("one", (conn.id, message.type, message.seq)))
        conn.send(P.encode("got", message.seq, {}))

    async def on_error(self, conn, exc):
        self.errors.append((conn, type(exc).__name__))


@define_room
class DefaultRunsRoom(Room):
    """``batched`` without ``on_messages``: the default delivers each to ``on_message``."""

    kind = "test-runs-default"
    messages = {"tap": Tap}
    batched = frozenset({"tap"})

    async def on_start(self) -> None:
        self.log: list = []

    async def on_message(self, conn, message):
        self.log.append((conn.id, message.seq, message.payload.n))


def tap(conn: str, seq: int, n: int | None = None) -> Message:
    return Message(conn, P.ClientMessage("tap", seq, {"n": seq if n is None else n}))  # a map, as off the channel


def note(conn: str, seq: int) -> Message:
    return Message(conn, P.ClientMessage("note", seq, {"text": "hi"}))


async def send_batch(h: RoomHarness, events: list) -> None:
    await (await h.handle()).send_batch(HARNESS_GATEWAY, events)
    await h.collect()


async def test_batched_types_arrive_in_runs_and_everything_keeps_its_order():
    async with RoomHarness(RunsRoom) as h:
        a, b = await h.connect(conn_id="a"), await h.connect(conn_id="b")
        await send_batch(h, [tap("a", 1), tap("b", 2), note("a", 3), tap("a", 4), tap("b", 5),
                             Connect("c", {}, 0, {"player": "pc", "name": "", "kind": "guest"}), tap("a", 6),
                             Close("b", 1000, ""), tap("a", 7)])
        room = h.room
        assert room.log == [
            ("run", [("a", "tap", 1, 1), ("b", "tap", 2, 2)]),
            ("one", ("a", "note", 3)),
            ("run", [("a", "tap", 4, 4), ("b", "tap", 5, 5)]),
            ("run", [("a", "tap", 6, 6)]),  # the connect ended the run before it
            ("run", [("a", "tap", 7, 7)]),  # and so did the close
        ]
        assert [m[1] for m in a.received] == [1, 3, 4, 6, 7] and [m[1] for m in b.received] == [2, 5]
        assert await h.run_in_room(lambda r: r.storage.get("count")) == 6


async def test_an_invalid_message_ends_the_run_so_its_error_comes_in_order():
    async with RoomHarness(RunsRoom) as h:
        a = await h.connect(conn_id="a")
        await send_batch(h, [tap("a", 1), Message("a", P.ClientMessage("tap", 2, {"n": "two"})), tap("a", 3)])
        assert h.room.log == [("run", [("a", "tap", 1, 1)]), ("run", [("a", "tap", 3, 3)])]
        assert [(m[0], m[1]) for m in a.received] == [("got", 1), (P.ERROR, 2), ("got", 3)]
        assert a.received[1][2]["code"] == P.ERR_INVALID_FIELD


async def test_a_run_that_raises_errors_each_of_its_connections_and_the_room_carries_on():
    async with RoomHarness(RunsRoom) as h:
        a, b = await h.connect(conn_id="a"), await h.connect(conn_id="b")
        await send_batch(h, [tap("a", 1), tap("b", 2, n=13), tap("a", 3), note("b", 4)])
        room = h.room
        assert room.errors == [(None, "RuntimeError")]
        errors = {c.id: [(m[1], m[2]["code"]) for m in c.received if m[0] == P.ERROR] for c in (a, b)}
        assert errors == {"a": [(3, P.ERR_ROOM_ERROR)], "b": [(2, P.ERR_ROOM_ERROR)]}  # each conn's last seq in the run
        assert room.log[-1] == ("one", ("b", "note", 4))  # the batch went on
        assert await h.run_in_room(lambda r: r.storage.get("count")) == 3  # written before it raised: committed
        await send_batch(h, [tap("a", 5)])
        assert room.log[-1] == ("run", [("a", "tap", 5, 5)])


async def test_without_on_messages_the_default_delivers_each_to_on_message():
    async with RoomHarness(DefaultRunsRoom) as h:
        await h.connect(conn_id="a")
        await h.connect(conn_id="b")
        await send_batch(h, [tap("a", 1), tap("b", 2), tap("a", 3)])
        assert h.room.log == [("a", 1, 1), ("b", 2, 2), ("a", 3, 3)]


def test_define_room_refuses_a_batched_type_the_kind_does_not_declare():
    class Typo(Room):
        kind = "test-runs-typo"
        messages = {"tap": Tap}
        batched = frozenset({"tapp"})

    with pytest.raises(TypeError, match="batched"):
        define_room(Typo)

    class NotASet(Room):
        kind = "test-runs-list"
        messages = {"tap": Tap}
        batched = "tap"

    with pytest.raises(TypeError, match="batched"):
        define_room(NotASet)


def test_coalescing_keeps_the_latest_of_a_connection_s_coalesced_type_and_everything_else():
    from starhold._runtime.runtime import _coalesce

    def msg(conn, type_, seq):
        return Message(conn, P.ClientMessage(type_, seq, {}))

    types = frozenset({"tap"})
    one_each = [msg("a", "tap", 1), msg("b", "tap", 2), Close("c", 1000, "")]
    assert _coalesce(one_each, types) is one_each  # one event per connection: nothing superseded
    events = [Connect("a", {}, 1, {}), msg("a", "tap", 2), msg("b", "tap", 3), msg("a", "note", 4),
              msg("a", "tap", 5), Close("b", 1000, ""), msg("b", "tap", 6)]
    assert _coalesce(events, types) == [events[0], events[3], events[4], events[5], events[6]]
    same_conn_other_types = [msg("a", "note", 1), msg("a", "note", 2), Close("a", 1000, "")]
    assert _coalesce(same_conn_other_types, types) == same_conn_other_types
    assert _coalesce(events, frozenset()) is events
