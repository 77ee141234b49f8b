"""The framework's room services on their own: the fixed-rate loop (``starhold.Ticker``) and
seat holds (``starhold.Seats``), through the harness with the manual clock (no sleeps)."""

import math

import msgspec
import pytest

from starhold import Room, Seats, protocol
from starhold.harness import RoomHarness
from starhold.ticker import STATE_KEY
from starhold.ticking import tick_offset


class Input(msgspec.Struct):
    """An input with nothing but its envelope's seq (the seat acknowledges it)."""


class Clockwork(Room):
    """Ticks at 10 Hz (unless ``params["loop"]`` is False) and seats players with holds."""

    kind = "clockwork"
    tick_rate = 10
    seat_hold = 5.0
    max_players = 2
    messages = {"input": Input}

    async def on_start(self):
        self.ticks: list[tuple[int, int, float]] = []  # (tick, missed, clock time)
        self.released: list[str] = []
        self.seats = Seats(self, on_release=lambda seat: self.released.append(seat["player"]),
                           on_expired=lambda released: self.seats.flush())
        await self.seats.load()
        if self.params.get("loop", True):
            await self.ticker.start()

    async def on_tick(self, tick, missed):
        self.ticks.append((tick, missed, self.clock.now()))
        if len(self.ticks) >= self.params.get("stop_after", math.inf):
            await self.ticker.stop()

    async def on_connect(self, conn, request):
        admitted = self.seats.admit(conn, request, request.player)
        if admitted is None:
            return
        seat = await self.seats.occupy(conn, request.player, request.seq, admitted[1], color="red")
        await self.seats.flush()
        conn.send({"seat": seat["token"], "ack": seat["ack"], "resumed": admitted[1]})

    async def on_message(self, conn, message):
        ack = self.seats.ack(self.seats.player_of(conn.id), message.seq)
        await self.seats.flush()
        conn.send({"ack": ack})

    async def on_close(self, conn, code, reason):
        await self.seats.leave(conn, code)
        await self.seats.flush()


def ticks(h):
    return h.run_in_room(lambda room: list(room.ticks))


# ---- the loop -------------------------------------------------------------------------------------
async def test_ticks_come_at_the_declared_rate_on_the_rooms_phase_numbered_by_the_clock():
    async with RoomHarness(Clockwork, name="c1") as h:
        await h.wake()
        start = h.clock.now()
        await h.advance(1.0)
        seen = await ticks(h)
        ticker = h.room.ticker
        offset = tick_offset("clockwork/c1", 10)
        assert ticker.offset == offset and 0 <= offset < 0.1 and ticker.period == 0.1 and ticker.epoch == 0.0
        assert len(seen) == 10
        first = math.floor((start - offset) * 10 + 1e-6) + 1  # the first boundary after the start
        assert [t for t, _, _ in seen] == list(range(first, first + 10))
        assert all(missed == 0 for _, missed, _ in seen)
        for tick, _, at in seen:  # each delivered exactly at its boundary: epoch + offset + tick / rate
            assert at == ticker.tick_time(tick) == offset + tick / 10
            assert ticker.tick_at(at) == tick
        assert await h.room.storage.get(STATE_KEY) == {"running": True}
        assert await h.room.storage.get_alarm() == ticker.tick_time(first + 10)


async def test_a_stopped_loop_leaves_no_alarm_and_a_started_one_resumes_on_the_next_boundary():
    async with RoomHarness(Clockwork, name="c2", params={"stop_after": 3}) as h:
        await h.wake()
        await h.advance(1.0)
        seen = await ticks(h)
        assert len(seen) == 3 and not h.room.ticker.running
        assert await h.room.storage.get_alarm() is None and await h.room.storage.get(STATE_KEY) is None

        async def restart(room):
            room.params = {}
            await room.ticker.start()
        await h.run_in_room(restart)
        await h.advance(0.3)
        later = (await ticks(h))[3:]
        assert [t for t, _, _ in later] == [h.room.ticker.current_tick() - 2 + k for k in range(3)]
        assert all(missed == 0 for _, missed, _ in later)


async def test_after_sleeping_through_ticks_the_loop_resumes_at_the_current_tick_and_counts_the_missed():
    async with RoomHarness(Clockwork, name="c3") as h:
        await h.wake()
        await h.advance(0.35)
        before = await ticks(h)
        assert len(before) in (3, 4)
        await h.kill()  # crashed with its loop running: nothing wakes it until someone calls
        await h.clock.advance(2.0)  # 20 tick boundaries go by
        await h.wake()  # the loop's state and its (now overdue) alarm are durable
        await h.advance(0.0)
        after = await ticks(h)
        assert after, "the overdue alarm fired on wake"
        tick, missed, at = after[0]
        assert tick == h.room.ticker.tick_at(at) and tick - missed == before[-1][0] + 1
        assert missed >= 19
        await h.advance(0.2)
        assert [m for _, m, _ in (await ticks(h))[1:]] == [0, 0]


async def test_an_evicted_ticking_room_is_woken_by_its_alarm_and_ticks_on_without_gaps():
    async with RoomHarness(Clockwork, name="c4") as h:
        await h.wake()
        await h.advance(0.25)
        last = (await ticks(h))[-1][0]
        assert await h.evict()
        await h.clock.advance(0.5)  # the scheduler wakes it at its alarm, on time
        seen = await ticks(h)
        assert seen and seen[0][0] == last + 1 and [m for _, m, _ in seen] == [0] * len(seen)


async def test_deadlines_share_the_alarm_served_on_tick_boundaries_while_the_loop_runs():
    async with RoomHarness(Clockwork, name="c5", params={"loop": False}) as h:
        await h.wake()
        fired = []

        async def register(room):
            await room.ticker.wake_at("ping", room.clock.now() + 1.05, lambda: fired.append(room.clock.now()) or _done())
        await h.run_in_room(register)
        t0 = h.clock.now()
        assert await h.room.storage.get_alarm() == t0 + 1.05  # the loop rests: the deadline's own time
        await h.advance(2.0)
        assert fired == [t0 + 1.05]

        async def both(room):
            await room.ticker.start()
            await room.ticker.wake_at("ping", room.clock.now() + 0.05, lambda: fired.append(room.clock.now()) or _done())
        await h.run_in_room(both)
        await h.advance(0.5)
        ticker = h.room.ticker
        assert fired[1] == ticker.tick_time(ticker.tick_at(fired[1]))  # served on a boundary
        assert 0.05 <= fired[1] - (t0 + 2.0) < 0.05 + 0.1
        with pytest.raises(ValueError):
            await h.run_in_room(lambda room: room.ticker.wake_at("x", 1.0))


async def _done():
    return None


# ---- seats --------------------------------------------------------------------------------------
async def test_a_held_seat_is_resumed_with_its_token_and_ack_after_hibernation():
    async with RoomHarness(Clockwork, name="s1", params={"loop": False}) as h:
        ada = await h.connect(seq=1, player="ada")
        token = ada.received[0]["seat"]
        await ada.send("input", seq=7)
        await ada.close(1006, "dropped")  # not a leave: the seat is held for seat_hold (5 s)
        seat = await h.room.storage.get("seat:ada")
        assert seat["conn"] is None and seat["held_until"] == h.clock.now() + 5.0 and seat["ack"] == 7
        assert await h.room.storage.get_alarm() == seat["held_until"]
        assert await h.evict()
        await h.clock.advance(2.0)
        back = await h.connect({"resume": token}, seq=1, player="ada")  # wakes the room
        assert back.received[0] == {"seat": token, "ack": 7, "resumed": True}
        assert (await h.room.storage.get("seat:ada"))["color"] == "red"
        assert await h.room.storage.get_alarm() is None  # no hold left
        again = await h.connect({"resume": "wrong"}, seq=3, player="ada")  # same player, bad token
        assert again.received[0]["resumed"] is False and again.received[0]["ack"] == 3
        assert back.close_code == protocol.CLOSE_REPLACED


async def test_an_expired_hold_releases_the_seat_even_while_the_room_sleeps():
    async with RoomHarness(Clockwork, name="s2", params={"loop": False}) as h:
        ada = await h.connect(seq=1, player="ada")
        token = ada.received[0]["seat"]
        await ada.close(1006, "dropped")
        assert await h.evict()
        await h.clock.advance(5.5)  # the hold's deadline (the room's alarm) wakes the room
        assert await h.is_active()
        assert await h.room.storage.get("seat:ada") is None and h.room.released == ["ada"]
        back = await h.connect({"resume": token}, seq=2, player="ada")
        assert back.received[0]["resumed"] is False and back.received[0]["seat"] != token


async def test_a_normal_close_releases_at_once_and_no_hold_means_no_holds():
    async with RoomHarness(Clockwork, name="s3", params={"loop": False}) as h:
        ada = await h.connect(player="ada")
        await ada.close(1000, "bye")
        assert await h.room.storage.get("seat:ada") is None and h.room.released == ["ada"]
    async with RoomHarness(Clockwork, name="s4", params={"loop": False, "seat_hold": None}) as h:
        h_seats = await h.run_in_room(lambda room: room.seats.hold)
        assert h_seats == 5.0  # None in params: the class attribute
    Clockwork.seat_hold = None
    try:
        async with RoomHarness(Clockwork, name="s5", params={"loop": False}) as h:
            bob = await h.connect(player="bob")
            await bob.close(1006, "dropped")
            assert await h.room.storage.get("seat:bob") is None and h.room.released == ["bob"]
    finally:
        Clockwork.seat_hold = 5.0


async def test_a_full_room_refuses_a_join_with_room_full_and_params_override_the_limit():
    async with RoomHarness(Clockwork, name="s6", params={"loop": False}) as h:
        await h.connect(player="a")
        b = await h.connect(player="b")
        await b.close(1006, "dropped")  # a held seat still counts
        c = await h.connect(seq=4, player="c")
        assert c.received == [["error", 4, {"code": protocol.ERR_ROOM_FULL, "message": "room is full (2 players)"}]]
        assert c.close_code == protocol.CLOSE_ROOM_FULL
        again = await h.connect(player="b")  # a seated player is never refused
        assert again.received[0]["resumed"] is False
    async with RoomHarness(Clockwork, name="s7", params={"loop": False, "max_players": 1}) as h:
        await h.connect(player="a")
        b = await h.connect(player="b")
        assert b.close_code == protocol.CLOSE_ROOM_FULL


def test_take_changes_keeps_the_seats_whose_ack_alone_changed_apart():
    class _Room:
        params: dict = {}
        seat_hold = 30.0
        max_players = None

    seats = Seats(_Room())
    seats.seats = {p: {"player": p, "token": "t", "ack": 1} for p in ("a", "b", "c")}
    seats.ack("a", 5)  # the ack alone
    seats.ack("b", 6)
    seats.update("b", color="blue")  # the ack and more: the whole seat
    seats.ack("c", 0)  # not newer: no change
    puts, deletes, acked = seats.take_changes()
    assert puts == {"seat:b": seats.seats["b"]} and deletes == [] and acked == {"seat:a": seats.seats["a"]}
    assert seats.take_changes() == ({}, [], {})  # taken
    seats.ack("a", 7)
    assert seats.take_writes() == ({"seat:a": seats.seats["a"]}, [])  # take_writes: every change whole


def test_ack_many_records_each_ack_as_ack_does_in_order():
    room = type("R", (), {"params": {}, "seat_hold": None, "max_players": None})()
    single, many = Seats(room), Seats(room)
    for seats in (single, many):
        seats.seats = {"ann": {"player": "ann", "ack": 4}, "bob": {"player": "bob", "ack": 9}}
    acks = [("ann", 5), ("bob", 3), ("ann", 2), ("ann", 7)]  # bob's is old: no change
    for player, seq in acks:
        single.ack(player, seq)
    many.ack_many(acks)
    assert many.seats == single.seats and many.seats["ann"]["ack"] == 7 and many.seats["bob"]["ack"] == 9
    assert many.take_changes() == single.take_changes() == ({}, [], {"seat:ann": many.seats["ann"]})
    with pytest.raises(KeyError):
        many.ack_many([("ann", 8), ("cat", 1)])
    assert many.seats["ann"]["ack"] == 8  # the acks before the unknown player are recorded


async def test_the_seats_version_counts_every_change_but_acks():
    async with RoomHarness(Clockwork, name="s4", params={"loop": False}) as h:
        async def version():
            return await h.run_in_room(lambda room: room.seats.version)

        ada = await h.connect(seq=1, player="ada")
        taken = await version()
        assert taken > 0
        await ada.send("input", seq=7)
        assert ada.received[-1] == {"ack": 7} and await version() == taken  # an ack is not a change of the seats
        await h.run_in_room(lambda room: room.seats.update("ada", color="blue"))
        updated = await version()
        assert updated > taken
        await ada.close(1006, "dropped")  # held
        held = await version()
        assert held > updated
        await h.clock.advance(5.5)  # the hold runs out: released
        assert await version() > held
