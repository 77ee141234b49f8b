"""Following the ship: the Python client's side of jumps, ``elsewhere`` and chat.

A system closes a pilot's socket with ``CLOSE_JUMPED`` after a ``jump`` message (the ship
left through a jump point) and refuses a join with an ``elsewhere`` message, error
``ERR_ELSEWHERE`` and ``CLOSE_ELSEWHERE`` (the ship is in another system, or in transit). The
client follows without being told: it waits out the transit (``wait`` seconds), points itself
at the system where the ship is and joins there (a fresh join: seats are per room). Orders
queued for the old system are dropped (they make no sense in another one).

``Travel`` is a mixin of ``StarholdClient`` (``client.connection``): it uses its ``path``,
``seat``, ``state``, ``outbox``, ``predictor``, ``_sleep`` and ``command``/``send``.
"""

from __future__ import annotations

from typing import Any

from starhold.rooms import protocol

from .state import WorldState

__all__ = ["Travel", "MAX_FOLLOWS"]

MAX_FOLLOWS = 20
"""Most consecutive ``elsewhere`` answers a join follows before giving up."""


class Travel:
    """Jumps, routes, chat and following the ship (see the module docstring). State:
    ``jumps`` (every ``jump`` payload received), ``elsewhere`` (the last ``elsewhere``
    payload), ``chat`` (``chat`` payloads), ``presence`` (the last ``presence`` payload),
    ``routes`` (``route`` answers), ``follow`` (default True: follow the ship)."""

    def _travel_init(self, follow: bool = True) -> None:
        self.follow = follow
        self.jumps: list[dict] = []
        self.elsewhere: dict | None = None
        self.chat: list[dict] = []
        self.presence: dict | None = None
        self.routes: list[dict] = []
        self.current_system: str | None = None

    def _on_travel_message(self, type_: str, payload: Any) -> None:
        if type_ == protocol.JUMP:
            self.jumps.append(payload)
        elif type_ == protocol.ELSEWHERE:
            self.elsewhere = payload
        elif type_ == protocol.CHAT:
            self.chat.append(payload)
        elif type_ == protocol.PRESENCE:
            self.presence = payload
        elif type_ == protocol.ROUTE:
            self.routes.append(payload)

    def _moves_on(self, code: int | None) -> bool:
        """Whether a close with ``code`` means: go where the ship is."""
        return self.follow and code in (protocol.CLOSE_JUMPED, protocol.CLOSE_ELSEWHERE)

    async def _go_where_the_ship_is(self, code: int | None) -> None:
        """Before a (re)join after ``code``: wait out a transit, then aim at the ship's system."""
        if code == protocol.CLOSE_JUMPED and self.jumps:
            target, wait = self.jumps[-1]["to"], float(self.jumps[-1]["wait"])
        elif self.elsewhere is not None:
            transit = self.elsewhere.get("transit")
            target = transit["to"] if transit else self.elsewhere.get("system")
            wait = float(transit["wait"]) if transit else 0.0
        else:
            return
        if wait > 0:
            await self._sleep(wait)
        from .connection import system_path

        self.path = system_path(target)
        self.current_system = target
        self.seat = None
        self.state = WorldState()
        self.outbox.clear()
        self.predictor.replace([])

    # ---- orders and chat -------------------------------------------------------------------
    async def jump(self, to: str) -> int:
        """Fly to the jump point toward lane neighbour ``to`` and jump; returns the seq."""
        return await self.command(protocol.JUMP, {"to": to})

    async def route(self, to: str) -> int:
        """Autopilot to system ``to`` along the lanes (the answer lands in ``routes``)."""
        return await self.command(protocol.ROUTE, {"to": to})

    async def say(self, text: str) -> int:
        """A line on the system channel (arrives in ``chat``)."""
        return await self.send(protocol.SAY, {"text": text})

    async def tell(self, to: str, text: str) -> int:
        """A direct message to player ``to`` (echoed back in ``chat``)."""
        return await self.send(protocol.TELL, {"to": to, "text": text})
