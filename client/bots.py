"""Bots that fly around a system: ``starhold bots --system Sol --count 20``.

Each bot takes a guest token with its own name, joins, picks a random point, flies there
(``move_to``), waits until its ship has arrived (the frame's moving flag clears), pauses briefly
and picks another. A bot whose socket drops reconnects and resumes its seat (``StarholdClient``).
For measuring a server under load use ``starhold loadtest`` (``client/loadtest.py``) instead.
"""

from __future__ import annotations

import asyncio
import logging
import random

import aiohttp

from ..rooms import protocol
from .connection import ClientClosed, StarholdClient

log = logging.getLogger("starhold.bots")

ROAM_RADIUS = 600.0
"""Bots pick targets in the square [-ROAM_RADIUS, ROAM_RADIUS]^2, world units."""


async def run_bot(session: aiohttp.ClientSession, url: str, system: str, name: str, stop: asyncio.Event,
                  rng: random.Random) -> int:
    """Fly one bot until ``stop`` is set; returns how many trips it completed."""
    trips = 0
    async with StarholdClient(url, system, name=name, session=session) as client:
        await client.join()
        while not stop.is_set():
            seq = await client.move_to(rng.uniform(-ROAM_RADIUS, ROAM_RADIUS), rng.uniform(-ROAM_RADIUS, ROAM_RADIUS))

            def arrived(c: StarholdClient) -> bool:
                row = c.ships.get(c.ship_id)
                return c.ack >= seq and row is not None and not row[2] & protocol.SHIP_MOVING

            try:
                await client.wait_for(lambda c: arrived(c) or stop.is_set(), timeout=60)
            except asyncio.TimeoutError:
                pass
            trips += 1
            try:  # a short pause between trips, cut short by stop
                await asyncio.wait_for(stop.wait(), rng.uniform(0.0, 2.0))
            except asyncio.TimeoutError:
                pass
    return trips


async def run_bots(url: str, system: str, count: int, duration: float | None = None, seed: int | None = None) -> int:
    """Run ``count`` bots in ``system`` for ``duration`` seconds (forever if None)."""
    stop = asyncio.Event()
    rng = random.Random(seed)
    async with aiohttp.ClientSession() as session:
        tasks = [
            asyncio.create_task(run_bot(session, url, system, f"bot-{i + 1}", stop, random.Random(rng.random())))
            for i in range(count)
        ]
        if duration is not None:
            asyncio.get_running_loop().call_later(duration, stop.set)
        results = await asyncio.gather(*tasks, return_exceptions=True)
    trips = 0
    for result in results:
        if isinstance(result, BaseException):
            log.warning("bot failed: %r", result)
        else:
            trips += result
    return trips


__all__ = ["run_bot", "run_bots", "ClientClosed"]
