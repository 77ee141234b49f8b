"""Garbage-collector settings for the long-running processes (gateways, room actors, load
workers).

CPython's cyclic collector scans every tracked object of the generations it collects; a full
(generation 2) collection in a process that imported Ray, aiohttp and NumPy walks hundreds of
thousands of objects and stalls the event loop for tens of milliseconds, which shows up as a
late tick or a late frame (the p99 of input -> ack). ``settle()``, called once the process has
loaded what it keeps for life, moves those objects to the permanent generation
(``gc.freeze()``, Python >= 3.7), so later collections only walk what was allocated since:
sockets, messages, frames. Instagram's recipe for its Django workers.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect once, then freeze everything alive now out of future collections."""
    gc.collect()
    gc.freeze()
