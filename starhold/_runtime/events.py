"""The events a gateway (or the test harness) sends a room: typed, and their wire codec.

An event is one of four ``msgspec.Struct`` classes, a tagged union (``Event``), applied by
``RoomRuntime.dispatch`` in order (``match`` on the class). They are frozen and not tracked by
the cyclic garbage collector (``gc=False``: a gateway makes one per input, and a frozen event
cannot be part of a reference cycle unless a value it holds is made to refer back to it):

- ``Connect(conn, payload, seq, identity)``: a client joined: ``payload`` is its validated
  ``join`` payload (dict), ``seq`` the join's sequence number, ``identity`` the verified
  ``{"player", "name", "kind"}`` (see ``ConnectRequest``);
- ``Message(conn, message)``: a validated ``protocol.ClientMessage``; its payload is the
  declared Struct on the gateway side and a map on the wire (the room converts it back);
- ``Close(conn, code, reason)``: the socket closed (WebSocket close code and reason);
- ``Check(conn)``: is ``conn`` still connected to this activation? (after a crash it is not:
  the room closes it with 4503).

On the data channel a batch is the msgpack array ``[batch_no, events]`` where ``events`` is a
msgpack ``bin``: the msgpack bytes of the array ``[event, ...]``, each event an array whose
first element is its tag: ``["connect", conn, payload, seq, identity]``,
``["message", conn, [type, seq, payload]]``, ``["close", conn, code, reason]``,
``["check", conn]`` (``encode_batch``, ``decode_events``). The nesting lets the room's stream
decoder cut the batch out as one bytes object and msgspec decode its events in one typed pass;
a message's payload stays in its msgpack bytes (``WireMessage``, a ``msgspec.Raw``) until the
room validates it against the declared Struct (``starhold.messages.decode_payload``), which
builds the Struct straight from those bytes, with no intermediate map. ``decode_events``
also reads a batch whose events are a plain array (the format before this one), and a gateway
sends that format to a room that does not announce the nested one (``"events": "bin"`` in its
``channel_info``), so gateways and rooms of both versions work together during an upgrade.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

from ..protocol import ClientMessage

__all__ = ["Check", "Close", "Connect", "Event", "Message", "WireClientMessage", "WireMessage", "decode_events",
           "encode_batch"]


class Connect(msgspec.Struct, tag="connect", array_like=True, frozen=True, gc=False):
    """A client joined through a gateway (see the module docstring)."""

    conn: str
    payload: dict = {}
    seq: int = 0
    identity: dict = {}


class Message(msgspec.Struct, tag="message", array_like=True, frozen=True, gc=False):
    """A client message for ``on_message``."""

    conn: str
    message: ClientMessage


class Close(msgspec.Struct, tag="close", array_like=True, frozen=True, gc=False):
    """A client's socket closed."""

    conn: str
    code: int = 1000
    reason: str = ""


class Check(msgspec.Struct, tag="check", array_like=True, frozen=True, gc=False):
    """Whether ``conn`` is known to this activation (else it is closed with 4503)."""

    conn: str


class WireClientMessage(ClientMessage, frozen=True, gc=False):
    """A ``ClientMessage`` as it comes off the data channel: ``payload`` is still the msgpack
    bytes of its map (``msgspec.Raw``), validated by the room (``RoomRuntime.dispatch``)."""

    payload: msgspec.Raw


class WireMessage(Message, tag="message", frozen=True, gc=False):
    """A ``Message`` as it comes off the data channel (a subclass: ``isinstance(e, Message)``
    holds), its ``message`` a ``WireClientMessage``. Nothing but the room's runtime sees one:
    hooks get the validated ``ClientMessage``."""

    message: WireClientMessage


Event = Union[Connect, Message, Close, Check]

_encoder = msgspec.msgpack.Encoder()
_events_type = list[Event]
_wire_decoder = msgspec.msgpack.Decoder(list[Union[Connect, WireMessage, Close, Check]])


def encode_batch(batch_no: int, events: list[Any], nested: bool = True) -> bytes:
    """One batch as channel bytes: msgpack ``[batch_no, bin]``, the ``bin`` holding the msgpack
    array of ``events`` (see the module docstring); with ``nested`` False, ``[batch_no,
    [event, ...]]``, the format a room of an earlier version reads (its ``channel_info`` has
    no ``"events": "bin"``)."""
    return _encoder.encode((batch_no, _encoder.encode(events) if nested else events))


def decode_events(events: Any) -> list[Event]:
    """The typed events of a batch as the channel's stream decoder gave them: the ``bin`` of
    ``encode_batch`` (bytes; messages come out as ``WireMessage``), or an array already decoded
    to plain lists (payloads as maps). Raises ``msgspec.ValidationError`` (a ``ValueError``)
    or ``msgspec.DecodeError`` (a ``ValueError`` too) on a malformed batch."""
    if type(events) is bytes:
        return _wire_decoder.decode(events)
    return msgspec.convert(events, _events_type)
