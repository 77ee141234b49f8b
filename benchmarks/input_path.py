"""The gateway's half of an input, in process: CPU per ``move_to`` from the bytes a socket read
to the event queued for the room (issue 17).

Each path is fed the same masked client frames (``move_to`` with a sequence number and two
floats, ~30 bytes) as the connection's HTTP protocol feeds them after the upgrade, into a
``ClientSocket`` joined to a room link stub that queues the event:

- **python**: aiohttp's compiled ``WebSocketReader`` -> ``starhold.wsdirect.DirectQueue`` ->
  ``ClientSocket.receive`` (the token bucket, ``parse_client_message``, the events): the path
  before the compiled one;
- **compiled**: ``starhold.kernels.wsinput.FrameReader`` in front of aiohttp's reader, handing the
  frame's payload to the socket's compiled ``InputGate`` (``starhold serve``'s path).

Hot caches (one socket, back to back): what the code costs, not what a frame costs in a server
where thousands of sockets take turns (``benchmarks/realtime.py`` measures that). Prints µs per
input for each path (median of ``--repeat`` runs of ``--inputs`` inputs) and their ratio.

    python benchmarks/input_path.py [--inputs 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import types

import msgspec
from aiohttp.base_protocol import BaseProtocol

from starhold import wsdirect
from starhold.kernels import wsinput
from starhold.rooms import protocol
from starhold.rooms.ships.room import ShipRoom


def masked(payload: bytes) -> bytes:
    key = os.urandom(4)
    return bytes((0x82, 0x80 | len(payload))) + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


class Link:
    """A room link that queues events (cleared every 1,000, as a flush would)."""

    def __init__(self):
        self.events: list = []

    def attach(self, sock) -> None:
        pass

    def submit(self, event, control: bool = False) -> bool:
        events = self.events
        events.append(event)
        if len(events) >= 1000:
            events.clear()
        return True


async def _send(*args, **kwargs) -> None:
    pass


def make_socket():
    """A joined ``ClientSocket``, its bucket unlimited."""
    from starhold.gateway.sockets import ClientSocket

    directory = types.SimpleNamespace(room_class=lambda kind: ShipRoom)
    gateway = types.SimpleNamespace(gateway_id="bench", directory=directory, link=lambda kind, room: Link(),
                                    refusal=lambda kind, room: None)
    ws = types.SimpleNamespace(_writer=None, closed=False, send_bytes=_send, close=_send)
    identity = types.SimpleNamespace(player="p-1", name="Ada", kind="guest")
    sock = ClientSocket(gateway, ws, "sector", "r-1", identity)
    sock.receive(protocol.encode(protocol.JOIN, 1, {}))
    sock.bucket = wsinput.TokenBucket(1e12, 1e12)
    return sock


def build(path: str):
    """``(feed(data), socket)`` for one path (see the module docstring)."""
    loop = asyncio.get_running_loop()
    queue = wsdirect.DirectQueue(BaseProtocol(loop), wsdirect.DEFAULT_LIMIT, loop=loop)
    inner = wsdirect.WebSocketReader(queue, 1 << 16, compress=False, decode_text=True)
    sock = make_socket()
    if path == "python":
        queue.attach(sock.receive)
        return inner.feed_data, sock
    parser = queue.reader = wsinput.FrameReader(inner, queue, 1 << 16)
    queue.attach(sock)
    return parser.feed_data, sock


async def run(inputs: int, repeat: int) -> dict[str, float]:
    frames = [masked(msgspec.msgpack.encode([protocol.MOVE_TO, seq, {"x": 0.5 * seq, "y": -2.0}]))
              for seq in range(2, 1002)]
    paths = ["python", "compiled"]
    results: dict[str, list[float]] = {p: [] for p in paths}
    for _ in range(repeat):
        for path in paths:
            feed, sock = build(path)
            t0 = time.process_time()
            for i in range(inputs):
                feed(frames[i % 1000])
            results[path].append((time.process_time() - t0) / inputs * 1e6)
            assert sock.link.events and sock.link.events[-1].message.type == protocol.MOVE_TO
            assert sock.close_code is None and not sock._queue.qsize()  # no error frame: all valid
    return {p: statistics.median(v) for p, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not wsinput.COMPILED:
        sys.exit("the wsinput extension is not built (make setup)")
    res = asyncio.run(run(args.inputs, args.repeat))
    print(f"gateway's half of an input, in process, hot caches (median of {args.repeat} runs):")
    for path, us in res.items():
        print(f"  {path:9s} {us:6.3f} µs per input")
    print(f"python / compiled: {res['python'] / res['compiled']:.2f}x")


if __name__ == "__main__":
    main()
