"""Tick phases: when a room that ticks at a fixed rate crosses its tick boundaries.

A room of a kind with ``Room.tick_rate`` ticks at the multiples of ``1/rate`` seconds of game
time (Unix seconds on the system clock) shifted by ``tick_offset(room_key, rate)``. The room's
loop and the gateway's input batching (``starhold.gateway.room_link``) both compute it from the
room's key, so they agree without asking each other.
"""

from __future__ import annotations

import hashlib

__all__ = ["tick_offset"]


def tick_offset(room_key: str, rate: float) -> float:
    """Seconds, in ``[0, 1/rate)``, by which the tick boundaries of the room ``room_key``
    (``"kind/id"``) follow the multiples of ``1/rate`` seconds of game time. Spread by a hash
    of the key, so that rooms do not all tick, and push their frames to the gateways, at the
    same instant: the work of many rooms spreads over the tick instead of arriving in one burst
    (which delayed the last frames of the burst by tens of ms at 10 rooms of 100 players).

    ``rate`` is in Hz and must be positive (``ValueError`` otherwise): the first 4 bytes of
    blake2s(``room_key``), big-endian, as a fraction of 2**32 of the period."""
    if not rate > 0:
        raise ValueError(f"tick rate must be positive, not {rate!r}")
    digest = hashlib.blake2s(room_key.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32 / rate
