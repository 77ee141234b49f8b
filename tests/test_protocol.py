"""The wire protocol: round trips, validation of bad input (the envelope's, and the game's
messages through ``starhold.messages``), the JS constants' drift check."""

import math
from pathlib import Path

import msgpack
import pytest

from starhold import protocol as envelope
from starhold.messages import kind_schemas, parse_client_message
from starhold.rooms import protocol as P
from starhold.rooms.ships.room import ShipRoom
from starhold.rooms.system.room import SolarSystemRoom

SCHEMAS = kind_schemas(SolarSystemRoom)


def parse(data):
    return parse_client_message(data, SCHEMAS)

JS_CONSTANTS = Path(__file__).resolve().parent.parent / "client" / "web" / "src" / "protocol.generated.js"


def test_client_messages_round_trip():
    move = parse(P.encode(P.MOVE_TO, 7, {"x": 12, "y": -3.5, "extra": {"ignored": 1}}))
    assert move == P.ClientMessage(P.MOVE_TO, 7, P.MoveTo(12.0, -3.5))
    assert isinstance(move.payload.x, float)
    attack = parse(P.encode(P.ATTACK, 8, {2: "a key that is not a string is ignored too", "target": 12}))
    assert attack == P.ClientMessage(P.ATTACK, 8, P.Attack(12))
    join = parse(P.encode(P.JOIN, 1, {"resume": "abc_DEF-1", "name": " Ada ", "extra": [1]}))
    assert join.payload == {"resume": "abc_DEF-1", "name": "Ada"}
    assert parse(P.encode(P.RESYNC, 3, {})) == P.ClientMessage(P.RESYNC, 3, P.Resync())
    assert parse(P.encode(P.PING, P.MAX_SEQ, {})).seq == P.MAX_SEQ


def test_frame_splice_is_byte_identical_to_plain_encoding():
    rows = [[1, 2.5, -3.0, P.SHIP_ONLINE | P.SHIP_MOVING], [2, 0.0, 0.0, 0]]
    tail = P.pack_frame_tail(11, 1.2, rows, [7], [[2, "Bob"]])
    spliced = P.encode_frame(12, 5, tail, P.FRAME_KEYS)
    payload = {"tick": 12, "ack": 5, "base": 11, "time": 1.2, "ships": rows, "removed": [7], "names": [[2, "Bob"]]}
    plain = msgpack.Packer(use_bin_type=True, use_single_float=True)
    # Coordinates are float32 on the wire; tick time stays float64.
    assert spliced == b"".join([b"\x93", plain.pack("frame"), plain.pack(12), b"\x87",
                                *(msgpack.packb(k) + (plain.pack(v) if k == "ships" else msgpack.packb(v))
                                  for k, v in payload.items())])
    assert P.decode_server(spliced) == ("frame", 12, payload)
    assert not P.tail_is_keyframe(tail)
    assert P.tail_is_keyframe(P.pack_frame_tail(None, 1.2, rows, [], []))


def test_quantize_is_float32():
    assert P.quantize(0.1) != 0.1
    assert P.quantize(P.quantize(0.1)) == P.quantize(0.1)
    assert abs(P.quantize(999.123456) - 999.123456) < 1e-4


def test_quantize_many_is_quantize_bit_for_bit():
    import random
    import struct

    import numpy as np

    rnd = random.Random(3)
    values = [rnd.uniform(-1e4, 1e4) for _ in range(20000)] + [0.1, -0.0, 1e-40, 2**-149, 123.456789,
                                                               1.0000000596046448, 3.4e38]
    many = P.quantize_many(np.array(values))
    assert [struct.pack("<d", v) for v in many] == [struct.pack("<d", P.quantize(v)) for v in values]


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", P.ERR_MALFORMED),
        (b"\xc1", P.ERR_MALFORMED),  # never-used msgpack byte
        (b"\x93\xa4join", P.ERR_MALFORMED),  # truncated
        (msgpack.packb({"type": "join"}), P.ERR_MALFORMED),
        (msgpack.packb(["join", 1]), P.ERR_MALFORMED),
        (msgpack.packb(["join", -1, {}]), P.ERR_MALFORMED),
        (msgpack.packb(["join", 2**53, {}]), P.ERR_MALFORMED),
        (msgpack.packb(["join", True, {}]), P.ERR_MALFORMED),
        (msgpack.packb([1, 1, {}]), P.ERR_MALFORMED),
        (msgpack.packb(["join", 1, []]), P.ERR_MALFORMED),
        (msgpack.packb(["join", 1, {}]) + b"\x00", P.ERR_MALFORMED),  # trailing bytes
        (b"\x91" * 3000, P.ERR_MALFORMED),  # deeply nested
        (msgpack.packb(["fly", 1, {}]), P.ERR_UNKNOWN_TYPE),
        (msgpack.packb(["move_to", 1, {"x": 1}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["move_to", 1, {"x": "1", "y": 2}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["move_to", 1, {"x": True, "y": 2}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["move_to", 1, {"x": [1], "y": 2}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["move_to", 1, {"x": math.nan, "y": 2}]), P.ERR_OUT_OF_RANGE),
        (msgpack.packb(["move_to", 1, {"x": math.inf, "y": 2}]), P.ERR_OUT_OF_RANGE),
        (msgpack.packb(["move_to", 1, {"x": 0, "y": -1000.5}]), P.ERR_OUT_OF_RANGE),
        (msgpack.packb(["move_to", 1, {"x": 2**63, "y": 0}]), P.ERR_OUT_OF_RANGE),
        (msgpack.packb(["move_to", 1, {"x": None, "y": 0}]), P.ERR_INVALID_FIELD),
        # the first invalid field in declaration order decides, whatever the key order
        (msgpack.packb(["move_to", 1, {"y": "far", "x": 5000}]), P.ERR_OUT_OF_RANGE),
        (msgpack.packb(["move_to", 1, {"y": 5000, "x": "far"}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["attack", 1, {}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["attack", 1, {"target": 1.0}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["attack", 1, {"target": False}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["attack", 1, {"target": -1}]), P.ERR_OUT_OF_RANGE),
        (msgpack.packb(["attack", 1, {"target": 2**53}]), P.ERR_OUT_OF_RANGE),
        (msgpack.packb(["join", 1, {"resume": "has space"}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["join", 1, {"resume": "x" * 65}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["join", 1, {"resume": 12}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["join", 1, {"name": ""}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["join", 1, {"name": "a\x00b"}]), P.ERR_INVALID_FIELD),
        (msgpack.packb(["join", 1, {"name": 5}]), P.ERR_INVALID_FIELD),
        (P.encode(P.JOIN, 1, {"name": "x" * 5000}), P.ERR_MALFORMED),  # over MAX_MESSAGE_BYTES
        ("text", P.ERR_MALFORMED),
    ],
)
def test_bad_input_is_rejected_with_its_code(data, code):
    with pytest.raises(P.ProtocolError) as info:
        parse(data)
    assert info.value.code == code


def test_error_carries_the_offending_seq_when_readable():
    with pytest.raises(P.ProtocolError) as info:
        parse(msgpack.packb(["move_to", 41, {"x": math.nan, "y": 0}]))
    assert info.value.seq == 41
    assert P.decode_server(P.error_frame(info.value.code, "bad", 41)) == ("error", 41, {"code": 4, "message": "bad"})


def test_error_messages_name_the_field_and_the_reason():
    with pytest.raises(P.ProtocolError) as info:
        parse(msgpack.packb(["move_to", 3, {"x": 1}]))
    assert str(info.value) == "missing field 'y'"
    with pytest.raises(P.ProtocolError) as info:
        parse(msgpack.packb(["move_to", 3, {"x": "far", "y": 0}]))
    assert str(info.value) == "field 'x': expected `float`, got `str`"
    with pytest.raises(P.ProtocolError) as info:
        parse(msgpack.packb(["attack", 3, {"target": -1}]))
    assert str(info.value) == "field 'target': expected `int` >= 0"
    with pytest.raises(P.ProtocolError) as info:
        parse(msgpack.packb(["warp", 3, {}]))
    assert str(info.value) == "unknown message type 'warp'"


def test_the_envelope_names_no_game_message():
    """The framework's protocol holds the envelope only; the game's messages and constants
    live in starhold.rooms.protocol (which re-exports the envelope)."""
    for name in ("MOVE_TO", "ATTACK", "WORLD_LIMIT", "SHIP_SPEED", "SHIP_ONLINE", "RESPAWN_DELAY",
                 "ERR_NO_PATH", "COMBAT_FRAME_KEYS", "pack_frame_tail", "parse_client_message"):
        assert not hasattr(envelope, name), name
    assert set(envelope.__all__) <= set(P.__all__)
    assert ShipRoom.messages == {P.MOVE_TO: P.MoveTo, P.ATTACK: P.Attack}
    assert kind_schemas(ShipRoom) == {P.RESYNC: P.Resync, P.MOVE_TO: P.MoveTo, P.ATTACK: P.Attack}


def test_js_constants_match_the_python_modules():
    """client/web/src/protocol.generated.js must be regenerated when starhold/protocol.py or
    rooms/protocol.py changes:
    python -m starhold.rooms.protocol --js > client/web/src/protocol.generated.js"""
    assert JS_CONSTANTS.read_text() == P.js_constants()
    names = [line.split()[2] for line in P.js_constants().splitlines()[1:]]
    assert len(names) == len(set(names))
    assert {"ERR_MALFORMED", "JOIN", "MOVE_TO", "ATTACK", "SHIP_ONLINE", "WORLD_LIMIT"} <= set(names)


def test_codes_are_distinct():
    errors = [v for k, v in vars(P).items() if k.startswith("ERR_")]
    closes = [v for k, v in vars(P).items() if k.startswith("CLOSE_")]
    assert len(errors) == len(set(errors)) and len(closes) == len(set(closes))
    assert all(4000 <= c <= 4999 for k, c in vars(P).items() if k.startswith("CLOSE_") and c >= 4000)
