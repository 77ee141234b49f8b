"""``parse_client_message``'s fast path (``kind_fast_decoders``: a payload decoded straight into
its Struct) gives what the plain path gives, results and errors alike, for every kind of input."""

import math

import msgpack
import msgspec
import pytest
from typing import Annotated, Literal

from starhold import protocol
from starhold.messages import kind_fast_decoders, kind_schemas, parse_client_message
from starhold.room import Room
from starhold.rooms.system.room import SolarSystemRoom


class Tagged(msgspec.Struct, tag=True):
    a: int


class Wide(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["ore", "ice"]
    amount: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    note: str | None = None


class Listy(msgspec.Struct):
    ids: list[int]


class Checked(msgspec.Struct):
    n: int

    def __post_init__(self):
        if self.n == 13:
            raise ValueError("unlucky")


class Kinds(Room):
    kind = "fastpath-test"
    messages = {"tagged": Tagged, "wide": Wide, "listy": Listy, "checked": Checked}


CASES = [
    ["move_to", 5, {"x": 12.5, "y": -300.25}],
    ["move_to", 5, {"y": -300.25, "x": 12}],
    ["move_to", 5, {"x": 1, "y": 2, "extra": {"ignored": 1}}],
    ["move_to", 5, {"x": 1, "y": 2, "z": [0] * 300}],  # an unknown key the shape limits refuse
    ["move_to", 5, {"x": 1}],
    ["move_to", 5, {"x": "1", "y": 2}],
    ["move_to", 5, {"x": True, "y": 2}],
    ["move_to", 5, {"x": math.nan, "y": 2}],
    ["move_to", 5, {"x": 2**63, "y": 0}],
    ["move_to", 5, {"x": 2**64 - 1, "y": 0}],
    ["move_to", 5, {"x": None, "y": 0}],
    ["move_to", 5, {"y": "far", "x": 5000}],
    ["move_to", 2**53 - 1, {"x": 1, "y": 2}],
    ["move_to", 2**53, {"x": 1, "y": 2}],
    ["move_to", -1, {"x": 1, "y": 2}],
    ["move_to", 5, []],
    ["move_to", 5, [1, 2]],
    ["move_to", 5],
    ["move_to", 5, {}, 1],
    ["attack", 1, {"target": 12}],
    ["attack", 1, {2: "a key that is not a string", "target": 12}],
    ["attack", 1, {"target": 1.0}],
    ["attack", 1, {"target": -1}],
    ["attack", 1, {f"k{i}": i for i in range(65)}],
    ["say", 1, {"text": "héllo"}],
    ["say", 1, {"text": b"bytes"}],
    ["mine", 1, {"target": None}],
    ["mine", 1, {"target": "a1"}],
    ["resync", 1, {}],
    ["join", 1, {"name": "Ada"}],
    ["ping", 1, {}],
    ["warp", 1, {}],
    [1, 1, {}],
    {"type": "move_to"},
]
KIND_CASES = [
    ["tagged", 1, {"type": "Tagged", "a": 1}],
    ["tagged", 1, {"a": 1}],
    ["wide", 1, {"kind": "ore"}],
    ["wide", 1, {"kind": "gas"}],
    ["wide", 1, {"kind": "ice", "amount": 0}],
    ["wide", 1, {"kind": "ice", "other": 1}],  # forbidden, yet ignored: unknown keys always are
    ["wide", 1, {"kind": "ice", "note": None, "amount": 100}],
    ["wide", 1, {"kind": "ice", "zzz": [0] * 300}],  # fewer keys than fields, one unknown: refused
    ["wide", 1, {"kind": "ice", "zzz": {"a": {"b": 1}}}],
    ["listy", 1, {"ids": [1, 2]}],
    ["listy", 1, {"ids": list(range(300))}],
    ["checked", 1, {"n": 12}],
    ["checked", 1, {"n": 13}],
]
ODD_BYTES = [
    msgpack.packb(["move_to", 1, {"x": 1, "y": 2}]) + b"\x01",  # trailing bytes
    msgpack.packb(["move_to", 1, {"x": 1.0, "y": 2.0}])[:-3],  # truncated
    b"\x93\xa7move_to\x01\x83\xa1x\x01\xa1x\x02\xa1y\x03",  # duplicate key: the last wins
    b"\x93\xa7move_to\x01\x82\xa1x\x01\xa1x\x02",  # duplicate key, y missing
    b"\x93\xa7move_to\x01\xde\x00\x02\xa1x\x01\xa1y\x02",  # a map16 header
    b"\x93\xa3say\x01\x81\xa4text\xa2\xff\xfe",  # invalid UTF-8
    b"\x93\xa7move_to\x01\x82\xa1x\xc1\xa1y\x02",  # never-used byte
    b"\x93\xa7move_to\x01\x82\xa1x\xd6\xff\x00\x00\x00\x00\xa1y\x02",  # a timestamp extension
    msgpack.packb(["say", 1, {"text": "x" * 5000}]),  # over MAX_MESSAGE_BYTES
]


def outcome(data, room_cls, fast):
    try:
        msg = parse_client_message(data, kind_schemas(room_cls), kind_fast_decoders(room_cls) if fast else None)
    except protocol.ProtocolError as exc:
        return ("error", exc.code, str(exc), exc.seq)
    return repr(msg)


@pytest.mark.parametrize("data, room_cls", [(msgpack.packb(c), SolarSystemRoom) for c in CASES]
                         + [(msgpack.packb(c), Kinds) for c in KIND_CASES]
                         + [(d, SolarSystemRoom) for d in ODD_BYTES])
def test_the_fast_path_agrees_with_the_plain_one(data, room_cls):
    assert outcome(data, room_cls, True) == outcome(data, room_cls, False)


def test_only_flat_scalar_structs_take_the_fast_path():
    fast = kind_fast_decoders(Kinds)
    assert sorted(fast) == ["checked", "resync", "tagged"]  # not listy (a container), nor wide (defaults)
    assert fast["checked"][1] == 0x81 and fast["resync"][1] == 0x80
    assert "join" not in kind_fast_decoders(SolarSystemRoom) and "ping" not in kind_fast_decoders(SolarSystemRoom)
    assert kind_fast_decoders(Kinds) is fast  # cached


def test_a_flat_message_does_not_take_the_plain_path(monkeypatch):
    import starhold.messages as messages

    def plain(data):
        raise AssertionError("the plain path ran")

    monkeypatch.setattr(messages, "decode", plain)
    data = msgpack.packb(["move_to", 7, {"x": 1.5, "y": -2}])
    msg = parse_client_message(data, kind_schemas(SolarSystemRoom), kind_fast_decoders(SolarSystemRoom))
    assert msg == protocol.ClientMessage("move_to", 7, msg.payload) and (msg.payload.x, msg.payload.y) == (1.5, -2.0)
    with pytest.raises(AssertionError):  # an unknown key: the plain path decides
        parse_client_message(msgpack.packb(["move_to", 7, {"x": 1, "y": 2, "z": 3}]),
                             kind_schemas(SolarSystemRoom), kind_fast_decoders(SolarSystemRoom))
