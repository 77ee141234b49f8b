"""``protocol.decode``'s typed fast path gives what its msgpack path gives, errors included."""

import msgpack
import pytest

from starhold import protocol

CASES = [
    ["move_to", 5, {"x": 12.5, "y": -300.25}],
    ["move_to", 2**53 - 1, {"x": 1, "y": 2}],
    ["move_to", 2**53, {"x": 1, "y": 2}],
    ["move_to", -1, {"x": 1, "y": 2}],
    ["ping", 0, {}],
    ["join", 1, {"name": "Ada", "resume": None}],
    ["say", 3, {"text": "héllo"}],
    ["move_to", 4, {"x": True, "y": False}],
    ["move_to", 4, {"x": float("nan"), "y": float("inf")}],
    ["attack", 4, {"target": [1, 2]}],
    ["attack", 4, {"target": {"a": 1}}],
    ["attack", 4, {1: 2}],
    ["attack", 4, {f"k{i}": i for i in range(64)}],
    ["attack", 4, {f"k{i}": i for i in range(65)}],
    ["attack", 4, {"x": [0] * 257}],
    ["attack", 4, {"x": b"bytes"}],
    ["move_to", 4],
    ["move_to", 4, {}, 5],
    [1, 4, {}],
    ["move_to", "4", {}],
    ["move_to", 4, []],
    {"type": "move_to"},
    "move_to",
]


def _outcome(decode, data):
    """What ``decode`` makes of ``data``, as a string (so that NaN equals NaN); types count."""
    try:
        type_, seq, payload = decode(data)
    except protocol.ProtocolError as exc:
        return repr(("error", exc.code, exc.seq))
    return repr((type_, seq, {k: (type(v).__name__, v) for k, v in payload.items()}))


@pytest.mark.parametrize("obj", CASES, ids=range(len(CASES)))
def test_fast_path_agrees_with_msgpack(obj):
    data = msgpack.packb(obj)
    assert _outcome(protocol.decode, data) == _outcome(protocol._decode_msgpack, data)


@pytest.mark.parametrize("data", [
    msgpack.packb(["move_to", 1, {}]) + b"\x01",  # trailing bytes
    msgpack.packb(["move_to", 1, {"x": 1.0}])[:-3],  # truncated
    b"\x93\xa1a\x01\x82\xa1x\x01\xa1x\x02",  # duplicate key: the last wins
    b"\x93\xa1a\x01\x81\xa1x\xa2\xff\xfe",  # invalid UTF-8 string
    b"\x93\xa1a\x01\x81\xa1x\xc1",  # never-used byte
    msgpack.packb(["say", 1, {"text": "x" * 5000}]),  # over MAX_MESSAGE_BYTES
])
def test_fast_path_agrees_on_odd_bytes(data):
    assert _outcome(protocol.decode, data) == _outcome(protocol._decode_msgpack, data)
