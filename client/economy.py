"""The Python client's side of the economy (docs/economy.md): ``scan``, ``mine`` and ``loot``
sent to the system, and the ``cargo``, ``wrecks`` and ``scan`` messages it answers with.

``Economy`` is a mixin of ``StarholdClient`` (``client.connection``): it uses its ``command``
(orders are numbered, queued while offline and resent like ``move_to``), ``token``,
``base_url`` and HTTP session. State:

- ``cargo``: the last ``cargo`` payload ``{"credits", "cargo": {good: units}, "capacity",
  "reserved"}`` (None before the first); shortcuts ``credits`` and ``hold``;
- ``wrecks``: the system's wrecks from the last ``wrecks`` message, ``{id: {"id", "x", "y",
  "goods", "expires"}}``;
- ``scans``: every ``scan`` payload received (``started``, then ``done`` or ``cancelled``, in
  order); ``scan_results``: target -> the last result (a payload with
  ``kind``/``resources``/``lore``); ``last_scan``: the last result;
- ``mining``: the target the system says we mine (a ``mine`` message ``started`` sets it,
  ``stopped`` clears it), ``mined``: ``{good: units}`` of the ``mined`` messages, ``mine_events``:
  every ``mine`` payload;
- ``loots``: every ``loot`` answer ``{"wreck", "goods"}``.

The message types and flags are the contract's (docs/economy.md); they move to
``rooms/protocol.py`` with the server side, and these names then re-export them.
"""

from __future__ import annotations

import re
from typing import Any

from .market import MarketClient

__all__ = ["Economy", "SCAN", "MINE", "LOOT", "CARGO", "WRECKS", "SHIP_SCANNING", "SHIP_MINING", "GOODS",
           "ERR_TOO_FAR", "ERR_UNKNOWN_OBJECT", "ERR_HOLD_FULL", "ERR_EMPTY", "target"]

SCAN = "scan"
"""Client -> system ``{"target": "planet:<id>" | "field:<index>" | "anomaly:<index>"}``; also
the system's answer (started, progress, the result)."""
MINE = "mine"
"""Client -> system ``{"target": ... | None}`` (None stops mining)."""
LOOT = "loot"
"""Client -> system ``{"wreck": int}``."""
CARGO = "cargo"
"""System -> client: ``{"credits", "cargo", "capacity", "reserved"}`` (the pilot's ledger)."""
WRECKS = "wrecks"
"""System -> client: the system's wrecks ``[{"id", "x", "y", "goods", "expires"}]``."""
ERR_TOO_FAR = 22
"""``scan``/``mine``/``loot`` beyond range (also seq 0 when mining stops out of range)."""
ERR_UNKNOWN_OBJECT = 23
"""No such target or wreck; ``mine`` of an anomaly or an unscanned planet."""
ERR_HOLD_FULL = 24
"""``mine``/``loot`` with no free hold space (also seq 0 when mining stops for it)."""
ERR_EMPTY = 25
"""``mine`` of an empty field (also seq 0), ``loot`` of an empty wreck."""
SHIP_SCANNING = 64
"""Ship row flag: the ship is scanning."""
SHIP_MINING = 128
"""Ship row flag: the ship is mining."""
GOODS = ("ferrite", "silicates", "ice", "platinum", "helium3", "exotics")

_TARGET = re.compile(r"^(planet|field|anomaly):[A-Za-z0-9_.-]{1,64}$")


def target(kind: str, ident: Any) -> str:
    """The target string of a ``kind`` (``planet``, ``field``, ``anomaly``) and its id or index:
    ``target("field", 2) == "field:2"``. Raises ValueError for another kind."""
    text = f"{kind}:{ident}"
    if not _TARGET.match(text):
        raise ValueError(f"not a scan target: {text!r}")
    return text


def _result(payload: Any) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get("target"), str) and (
        "kind" in payload or "resources" in payload or "lore" in payload)


class Economy:
    """Scanning, mining, looting and the cargo view (see the module docstring)."""

    def _economy_init(self) -> None:
        self.cargo: dict | None = None
        self.wrecks: dict[int, dict] = {}
        self.scans: list[dict] = []
        self.scan_results: dict[str, dict] = {}
        self.last_scan: dict | None = None
        self.mining: str | None = None
        self.mined: dict[str, int] = {}
        self.mine_events: list[dict] = []
        self.loots: list[dict] = []

    def _on_economy_message(self, type_: str, payload: Any) -> bool:
        """Keep a ``cargo``/``wrecks``/``scan``/``mine``/``loot`` message; True when it was one."""
        if type_ == CARGO and isinstance(payload, dict):
            self.cargo = payload
        elif type_ == WRECKS:
            items = payload.get("wrecks") if isinstance(payload, dict) else payload
            if not isinstance(items, list):
                return True
            self.wrecks = {w["id"]: w for w in items if isinstance(w, dict) and isinstance(w.get("id"), int)}
        elif type_ == MINE and isinstance(payload, dict):
            self.mine_events.append(payload)
            state = payload.get("state")
            if state == "started":
                self.mining = payload.get("target")
            elif state == "mined":
                for good, units in (payload.get("goods") or {}).items():
                    self.mined[good] = self.mined.get(good, 0) + units
            elif state == "stopped" and payload.get("target") in (self.mining, None):
                self.mining = None
        elif type_ == LOOT and isinstance(payload, dict):
            self.loots.append(payload)
        elif type_ == SCAN and isinstance(payload, dict):
            self.scans.append(payload)
            if _result(payload):
                self.scan_results[payload["target"]] = payload
                self.last_scan = payload
        else:
            return False
        return True

    @property
    def credits(self) -> int | None:
        """Credits from the last ``cargo`` message (None before it)."""
        return self.cargo.get("credits") if self.cargo else None

    @property
    def hold(self) -> dict[str, int]:
        """Goods in the hold from the last ``cargo`` message, ``{good: units}``."""
        return dict(self.cargo.get("cargo") or {}) if self.cargo else {}

    async def scan(self, target: str) -> int:
        """Scan ``target`` (``"planet:<id>"``, ``"field:<index>"``, ``"anomaly:<index>"``; see
        ``target()``): it takes a few seconds within range, and the result arrives as a ``scan``
        message (``last_scan``). Returns the input's seq; queued while offline. A refusal is an
        error frame in ``errors`` with this seq."""
        return await self.command(SCAN, {"target": target})

    async def mine(self, target: str | None) -> int:
        """Mine ``target`` (a field, or a scanned planet) until the hold is full or the ship
        moves; None stops. Returns the input's seq; queued while offline."""
        return await self.command(MINE, {"target": target})

    async def loot(self, wreck: int) -> int:
        """Take what fits from wreck ``wreck`` (an id from ``wrecks``) within range. Returns the
        input's seq; queued while offline."""
        return await self.command(LOOT, {"wreck": int(wreck)})

    def market_api(self) -> MarketClient:
        """A ``MarketClient`` for this player (our token), sharing our HTTP session (call after
        ``connect()``, which takes the token)."""
        if self.token is None:
            raise RuntimeError("no token yet: connect() first")
        return MarketClient(self.base_url, self.token, session=self._http())
