"""How a room's stored values and keys are encoded: msgpack values with a size limit, ``str``
keys with a byte limit, and the key-range arithmetic of ``list(prefix=)``."""

from __future__ import annotations

from typing import Any

import msgpack

from .base import MAX_KEY_BYTES, MAX_VALUE_BYTES

__all__ = ["check_key", "pack", "prefix_successor", "unpack"]


def check_key(key: str) -> str:
    """``key`` if it is a ``str`` of at most ``MAX_KEY_BYTES`` UTF-8 bytes. Raises ``TypeError``
    for a non-str and ``ValueError`` for a longer one."""
    if not isinstance(key, str):
        raise TypeError(f"keys must be str, not {type(key).__name__}")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"key longer than {MAX_KEY_BYTES} bytes")
    return key


def pack(value: Any) -> bytes:
    """``value`` as msgpack bytes. Raises ``TypeError`` for a type msgpack cannot encode and
    ``ValueError`` for an integer outside ``[-2**63, 2**64)`` or a result over
    ``MAX_VALUE_BYTES``."""
    try:
        data = msgpack.packb(value, use_bin_type=True)
    except OverflowError as exc:  # msgpack's ints are 64-bit
        raise ValueError(f"integer out of msgpack's range [-2**63, 2**64): {exc}") from None
    if len(data) > MAX_VALUE_BYTES:
        raise ValueError(f"value is {len(data)} bytes serialised; the limit is {MAX_VALUE_BYTES}")
    return data


def unpack(data: bytes) -> Any:
    """The value of ``pack``'s bytes ``data``."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def prefix_successor(prefix: str) -> str | None:
    """The least ``str`` greater than every string that starts with ``prefix``, or None when
    there is none (``prefix`` is only U+10FFFF characters).

    Keys are compared by code point, which is how SQLite's BINARY collation orders their UTF-8
    bytes: drop the trailing U+10FFFF characters and increment the last remaining one (past the
    surrogates, which no key can hold). ``list(prefix=p)`` is then ``p <= key < successor``,
    which the primary key index answers."""
    head = prefix.rstrip("\U0010ffff")
    if not head:
        return None
    last = ord(head[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:
        last = 0xE000
    return head[:-1] + chr(last)
