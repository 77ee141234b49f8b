"""Room kinds declare their client messages (``Room.messages``, msgspec Structs): a kind defined
here, in a test module, gets its own message type validated by a real gateway and by the
harness with the same codes (2 undeclared type, 3 missing field or wrong type, 4 out of range)
and its messages reach ``on_message`` as the declared Struct."""

from __future__ import annotations

from typing import Annotated

import aiohttp
import msgspec
import pytest

from starhold import Room, define_room, protocol as P
from starhold._runtime.local_host import InProcessDirectory
from starhold.harness import RoomHarness
from starhold._runtime.events import Message, WireMessage, decode_events, encode_batch
from starhold.messages import decode_payload, kind_decoders, kind_schemas, parse_client_message, validate_payload
from wire import Wire, guest_token


class PlaceOrder(msgspec.Struct, frozen=True):
    """A market order: ``side`` "buy"/"sell" (3-4 letters), ``price`` > 0, ``qty`` 1-100."""

    side: Annotated[str, msgspec.Meta(min_length=3, max_length=4)]
    price: Annotated[float, msgspec.Meta(gt=0.0, le=1e6)]
    qty: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1


class Cancel(msgspec.Struct, frozen=True):
    order: int


@define_room
class BazaarRoom(Room):
    """Echoes each message it gets: its type, seq, the payload's class name and fields."""

    kind = "bazaar"
    messages = {"place_order": PlaceOrder, "cancel": Cancel}
    coalesce = frozenset({"cancel"})

    async def on_connect(self, conn, request):
        conn.send(P.encode(P.WELCOME, request.seq, {}))

    async def on_message(self, conn, message):
        conn.send(P.encode("got", message.seq, {
            "type": message.type, "struct": type(message.payload).__name__,
            "fields": msgspec.structs.asdict(message.payload)}))


BAD = [  # (type, payload, code)
    ("sell_everything", {}, P.ERR_UNKNOWN_TYPE),
    ("move_to", {"x": 1.0, "y": 2.0}, P.ERR_UNKNOWN_TYPE),  # the game's, not this kind's
    ("place_order", {"side": "buy"}, P.ERR_INVALID_FIELD),  # price missing
    ("place_order", {"side": "buy", "price": "cheap"}, P.ERR_INVALID_FIELD),
    ("place_order", {"side": "buy", "price": 2.0, "qty": True}, P.ERR_INVALID_FIELD),  # a bool is not an int
    ("place_order", {"side": "buy", "price": 2.0, "qty": 1.5}, P.ERR_INVALID_FIELD),
    ("place_order", {"side": "buy", "price": 0.0}, P.ERR_OUT_OF_RANGE),
    ("place_order", {"side": "buy", "price": float("nan")}, P.ERR_OUT_OF_RANGE),
    ("place_order", {"side": "buy", "price": float("inf")}, P.ERR_OUT_OF_RANGE),
    ("place_order", {"side": "buy", "price": 2.0, "qty": 101}, P.ERR_OUT_OF_RANGE),
    ("place_order", {"side": "b", "price": 2.0}, P.ERR_OUT_OF_RANGE),  # too short
    ("cancel", {"order": None}, P.ERR_INVALID_FIELD),
]
GOOD = [  # (type, payload, the fields on_message sees)
    ("place_order", {"side": "buy", "price": 3, "note": "unknown keys are ignored"},
     {"side": "buy", "price": 3.0, "qty": 1}),
    ("cancel", {"order": 42}, {"order": 42}),
]


def expected_errors():
    """The error each BAD message gets, as (seq, code), seq numbered from 2."""
    return [(seq, code) for seq, (_, _, code) in enumerate(BAD, 2)]


async def test_the_harness_validates_like_the_gateway_and_delivers_the_struct():
    async with RoomHarness(BazaarRoom) as h:
        conn = await h.connect(seq=1)
        assert (await conn.next_message())[0] == P.WELCOME
        for type_, payload, _ in BAD:
            await conn.send(type_, payload)
        errors = [(m[1], m[2]["code"]) for m in conn.received if m[0] == P.ERROR]
        assert errors == expected_errors()
        schemas = kind_schemas(BazaarRoom)
        for (type_, payload, _), seq in zip(BAD, range(2, 2 + len(BAD))):
            with pytest.raises(P.ProtocolError) as info:  # the gateway's function says the same
                parse_client_message(P.encode(type_, seq, payload), schemas)
            assert [m for m in conn.received if m[0] == P.ERROR and m[1] == seq] == \
                [[P.ERROR, seq, {"code": info.value.code, "message": str(info.value)}]]
        conn.received.clear()
        conn.read = 0
        for type_, payload, _ in GOOD:
            await conn.send(type_, payload)
        await conn.send(P.PING)
        assert conn.received == [
            ["got", conn.seq - 2, {"type": "place_order", "struct": "PlaceOrder", "fields": GOOD[0][2]}],
            ["got", conn.seq - 1, {"type": "cancel", "struct": "Cancel", "fields": GOOD[1][2]}],
            [P.PONG, conn.seq, {"time": 0.0}]]


async def test_a_gateway_validates_the_kind_s_declared_messages(gateway_factory, tmp_path):
    # The kind is this module's (registered by define_room); the gateway's generic route serves it.
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60, room_classes={"bazaar": BazaarRoom})
    url = await gateway_factory(directory, rooms=[__name__])
    try:
        async with aiohttp.ClientSession() as session:
            wire = await Wire.open(session, url, "/rooms/bazaar/m-1/ws", await guest_token(session, url))
            await wire.send(P.JOIN, 1)
            await wire.recv(P.WELCOME)
            for seq, (type_, payload, _) in enumerate(BAD, 2):
                await wire.send(type_, seq, payload)
            seq = 2 + len(BAD)
            for type_, payload, _ in GOOD:
                await wire.send(type_, seq, payload)
                seq += 1
            errors = [(await wire.recv(P.ERROR))[1:] for _ in BAD]
            assert [(s, e["code"]) for s, e in errors] == expected_errors()
            got = [(await wire.recv("got"))[2] for _ in GOOD]
            assert got == [{"type": t, "struct": s.__name__, "fields": fields}
                           for (t, _, fields), s in zip(GOOD, (PlaceOrder, Cancel))]
            await wire.ws.close()
    finally:
        await directory.close()


class Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    n: int


@define_room
class StrictRoom(Room):
    kind = "strict"
    messages = {"strict": Strict}


def outcome(call):
    try:
        return ("ok", call())
    except P.ProtocolError as exc:
        return ("error", exc.code, str(exc), exc.seq)


@pytest.mark.parametrize("room_cls, type_, payload", [(BazaarRoom, t, p) for t, p, _ in BAD + GOOD] + [
    (StrictRoom, "strict", {"n": 1}),
    (StrictRoom, "strict", {"n": 1, "extra": 2}),  # unknown key: refused by the Struct, ignored by the protocol
    (StrictRoom, "strict", {1: 2, "n": 3}),  # a key that is not a string
    (StrictRoom, "strict", {"n": 2 ** 64 - 1}),
    (StrictRoom, "resync", {}),
])
def test_a_payload_decoded_from_its_bytes_is_validated_exactly_as_its_map(room_cls, type_, payload):
    # The data channel carries a payload as its msgpack bytes (msgspec.Raw) and the room builds the
    # Struct from them (decode_payload): same Struct, same error (code, text, seq) as validate_payload.
    schemas, decoders = kind_schemas(room_cls), kind_decoders(room_cls)
    raw = msgspec.msgpack.encode(payload)
    assert outcome(lambda: decode_payload(schemas, decoders, type_, 7, msgspec.Raw(raw))) == \
        outcome(lambda: validate_payload(schemas, type_, 7, msgspec.msgpack.decode(raw)))
    assert outcome(lambda: decode_payload(schemas, decoders, type_, 7, raw)) == \
        outcome(lambda: validate_payload(schemas, type_, 7, msgspec.msgpack.decode(raw)))


def test_a_channel_batch_carries_its_events_as_bytes_and_messages_keep_their_payload_bytes():
    events = [Message("gw:1", P.ClientMessage("place_order", 3, PlaceOrder("buy", 2.5)))]
    batch_no, data = msgspec.msgpack.decode(encode_batch(4, events))
    assert batch_no == 4 and type(data) is bytes
    [event] = decode_events(data)
    assert type(event) is WireMessage and isinstance(event, Message) and event.conn == "gw:1"
    assert (event.message.type, event.message.seq) == ("place_order", 3)
    assert msgspec.msgpack.decode(event.message.payload) == {"side": "buy", "price": 2.5, "qty": 1}
    # a batch whose events are a plain array (the format before) still decodes, payloads as maps
    [old] = decode_events(msgspec.msgpack.decode(msgspec.msgpack.encode(events)))
    assert type(old) is Message and old.message.payload == {"side": "buy", "price": 2.5, "qty": 1}
    with pytest.raises(ValueError):
        decode_events(b"\x91\xc1")  # not msgpack


def test_define_room_refuses_messages_that_are_not_structs():
    class Loose(Room):
        kind = "loose"
        messages = {"buy": dict}

    with pytest.raises(TypeError, match="msgspec.Struct"):
        define_room(Loose)

    class Clash(Room):
        kind = "clash"
        messages = {"ping": PlaceOrder}

    with pytest.raises(TypeError, match="not a message type name"):
        define_room(Clash)


def test_events_and_client_messages_are_not_tracked_by_the_cyclic_gc():
    # One of each per input on a gateway and in a room: untracked, they never trigger or lengthen
    # a collection (a gateway at 1,000 players ran ~90 young collections per 10 s, now none).
    import gc

    from starhold._runtime.events import Check, Close, Connect

    message = P.ClientMessage("place_order", 2, PlaceOrder("buy", 2.5))
    events = [Message("gw:1", message), Connect("gw:1", {"name": "x"}, 1, {"player": "p"}), Close("gw:1"),
              Check("gw:1"), decode_events(msgspec.msgpack.decode(encode_batch(1, [Message("gw:1", message)]))[1])[0]]
    assert not any(gc.is_tracked(x) for x in [message, *events])
