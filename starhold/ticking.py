"""Tick phase of a room: where in the tick period its boundaries fall.

``tick_offset`` is shared by the room (``starhold.ticker.Ticker``) and the gateway (which
sends a ticked room's inputs just before its tick boundary): both must agree on it.
"""

from __future__ import annotations

import hashlib

__all__ = ["tick_offset"]


def tick_offset(room_key: str, rate: float) -> float:
    """Seconds, in ``[0, 1/rate)``, by which the tick boundaries of the room ``room_key``
    (``"kind/id"``) follow the multiples of ``1/rate`` of game time; ``rate`` in Hz (> 0).
    Spread by a hash of the key (blake2s, 4 bytes), so that rooms do not all tick, and push
    their frames to the gateways, at the same instant: the work of many rooms spreads over the
    tick instead of arriving in one burst (which delayed the last frames of the burst by tens
    of ms at 10 rooms of 100 players)."""
    digest = hashlib.blake2s(room_key.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32 / rate
