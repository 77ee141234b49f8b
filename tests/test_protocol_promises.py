"""What docs/protocol.md says about acks, ``seq``, errors before ``join``, the nesting limit and
``resume``, checked against a real gateway on 127.0.0.1 (rooms in-process) and the parser.
Each test names the docs passage it pins (issue 12 §5)."""

import aiohttp
import msgpack
import pytest

from starhold.messages import parse_client_message
from starhold.rooms import protocol as P
from starhold.rooms.system import room as solar_system  # noqa: F401  (imported now: a cold import on the event loop trips no_blocking)
from starhold._runtime.local_host import InProcessDirectory

from wire import Wire, guest_token

FRAME_WAIT = 15.0  # seconds to wait for an event (a frame, a close) on a loaded machine
MAX_NESTING = 1024  # msgpack's C unpacker stack depth: the documented limit (docs/protocol.md §2)


@pytest.fixture
async def url(gateway_factory, tmp_path):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    yield await gateway_factory(directory)
    await directory.close()


async def wire(session, url, name="Tester"):
    return await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url, name))


async def test_acks_cover_inputs_the_room_applied_and_never_gateway_rejections(url):
    """§3/§4: an input the room handles is acknowledged even when the room refuses it (13);
    one the gateway rejects (3, 4) never reaches the room and is never acknowledged; a seq
    that goes backwards is applied but the ack never decreases."""
    async with aiohttp.ClientSession() as session:
        w = await wire(session, url)
        welcome, _ = await w.join(seq=1)
        assert welcome["ack"] == 1
        await w.send(P.ATTACK, 2, {"target": 999_999})
        assert (await w.recv(P.ERROR, FRAME_WAIT))[1:] == (2, {"code": P.ERR_UNKNOWN_TARGET,
                                                               "message": "no ship 999999 in this system"})
        await w.recv(P.FRAME, FRAME_WAIT, where=lambda f: f["ack"] == 2)
        await w.send(P.MOVE_TO, 3, {"x": 0.0, "y": 5000.0})  # out of range: the gateway says 4
        await w.send(P.ATTACK, 4, {"target": "x"})  # wrong type: the gateway says 3
        errors = [(await w.recv(P.ERROR, FRAME_WAIT))[1:] for _ in range(2)]
        assert [(seq, e["code"]) for seq, e in errors] == [(3, P.ERR_OUT_OF_RANGE), (4, P.ERR_INVALID_FIELD)]
        # a seq lower than the ack: applied (the ship flies) while the ack stays at 2
        await w.send(P.MOVE_TO, 1, {"x": 400.0, "y": 0.0})
        frame = (await w.recv(P.FRAME, FRAME_WAIT, where=lambda f: any(
            r[0] == welcome["ship"] and r[3] & P.SHIP_MOVING for r in f["ships"])))[2]
        assert frame["ack"] == 2
        assert all(f[2]["ack"] <= 2 for f in w.seen if f[0] == P.FRAME)


async def test_errors_7_and_11_come_before_any_join(url):
    """§2: an unknown room or a missing/invalid token is answered right after the upgrade,
    before the client sends anything, with seq 0, then the close."""
    async with aiohttp.ClientSession() as session:
        for path, token, code, close in (("/api/systems/nowhere/ws", "x", P.ERR_UNKNOWN_ROOM, P.CLOSE_UNKNOWN_ROOM),
                                         ("/api/systems/sol/ws", "not-a-token", P.ERR_UNAUTHORIZED,
                                          P.CLOSE_UNAUTHORIZED),
                                         ("/api/systems/sol/ws", None, P.ERR_UNAUTHORIZED, P.CLOSE_UNAUTHORIZED)):
            w = await Wire.open(session, url, path, token)
            seq, payload = (await w.recv(P.ERROR, FRAME_WAIT))[1:]
            assert (seq, payload["code"]) == (0, code)
            assert await w.close_code(FRAME_WAIT) == close


async def test_an_invalid_resume_gives_a_fresh_seat(url):
    """§3 join: a resume token that does not match a held seat is no error: a fresh seat
    (``resumed`` false, a new seat token, ``ack`` = the join's seq), the same ship in a system;
    a resume that is not a token at all is error 3 and the socket is not joined."""
    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url, "Resumer")
        first = await Wire.open(session, url, "/api/systems/sol/ws", token)
        welcome, _ = await first.join(seq=1)
        await first.ws.close(code=4100)  # a drop: the seat is held
        second = await Wire.open(session, url, "/api/systems/sol/ws", token)
        again, _ = await second.join(seq=7, resume="A" * 32)
        assert again["resumed"] is False and again["seat"] != welcome["seat"] and again["ack"] == 7
        assert again["ship"] == welcome["ship"]
        third = await Wire.open(session, url, "/api/systems/sol/ws", token)
        await third.send(P.JOIN, 1, {"resume": "not a token!"})
        assert (await third.recv(P.ERROR, FRAME_WAIT))[2]["code"] == P.ERR_INVALID_FIELD
        await third.send(P.MOVE_TO, 2, {"x": 1.0, "y": 1.0})
        assert (await third.recv(P.ERROR, FRAME_WAIT))[1:] == (2, {"code": P.ERR_NOT_JOINED,
                                                                   "message": "send join first"})


def nested(levels: int) -> bytes:
    """A ``ping`` whose envelope array and payload map are levels 1 and 2, then arrays down to
    ``levels`` nested containers in all (the innermost one empty)."""
    return b"\x93" + msgpack.packb("ping") + b"\x01" + b"\x81" + msgpack.packb("z") + b"\x91" * (levels - 3) + b"\x90"


def test_the_nesting_limit_counts_every_array_and_map_from_the_envelope():
    """§2 limits: at most 1024 nested arrays and maps, the envelope being the first."""
    assert parse_client_message(nested(MAX_NESTING), {}).type == P.PING
    with pytest.raises(P.ProtocolError) as info:
        parse_client_message(nested(MAX_NESTING + 1), {})
    assert info.value.code == P.ERR_MALFORMED
    assert len(nested(MAX_NESTING + 1)) < P.MAX_MESSAGE_BYTES  # the size limit is not what refuses it
