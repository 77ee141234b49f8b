"""A system's views of its pilots' ledgers (docs/economy.md §2, §5 ``ledger``).

The pilot room is the only ledger of a pilot's goods and credits; the system holding the ship
keeps a **view** of it to check the hold's free space before mining or looting and to show
the pilot its cargo (the ``cargo`` message):

- the checkout's ``ledger`` and every ``ledger`` post give a view; per player the one with
  the highest ``version`` is kept (``eco:view:<player>``), older ones are ignored;
- after a ``stow`` post (mined or looted goods) the system adds those goods to the view's
  cargo, until a newer view comes (the pilot room counts them, or gives back what did not
  fit with ``unstow``);
- without a view a hold of ``DEFAULT_CAPACITY`` empty units is assumed;
- a view is dropped when the player's ship leaves the system (and, at a start, the views of
  players without a seat).

Each change sends ``cargo`` (``{"credits", "cargo", "capacity", "reserved", "free"}``) to the
player's socket, if connected here.
"""

from __future__ import annotations

from .. import protocol
from ..economy.resources import RESOURCES

DEFAULT_CAPACITY = 100
"""The hold assumed without a ledger view: the corvette's (docs/economy.md §2)."""
PREFIX = "eco:view:"


def goods_of(raw) -> dict[str, int]:
    """The valid goods of a post body's ``{good: units}``: known resources (``RESOURCES``
    order) with positive whole units; anything else is dropped."""
    out = {}
    for name in RESOURCES:
        try:
            units = int((raw or {}).get(name, 0))
        except (TypeError, ValueError, AttributeError):
            continue
        if units > 0:
            out[name] = units
    return out


class LedgerViews:
    """The ledger views of one system, kept with its ``economy`` (``SystemEconomy``: its
    ``put``/``delete`` write behind in the hook's commit, its ``send`` reaches a player)."""

    def __init__(self, economy):
        self.economy = economy
        self.views: dict[str, dict] = {}

    async def load(self, seated: set[str]) -> None:
        """Load the stored views of the ``seated`` players; delete the others."""
        stored = await self.economy.room.storage.list(prefix=PREFIX)
        for key, view in stored.items():
            player = key[len(PREFIX):]
            if player in seated:
                self.views[player] = view
            else:
                self.economy.delete(key)

    def get(self, player: str) -> dict | None:
        """``player``'s view ``{"version", "credits", "cargo", "capacity", "reserved"}``, or None."""
        return self.views.get(player)

    def set(self, player: str, view, send: bool = True) -> bool:
        """Keep ``view`` (a ``ledger`` body, or the checkout's ``ledger``) for ``player`` if its
        ``version`` is above the held one's, and send ``cargo`` (if ``send``). Returns whether it
        was kept (False too for a malformed view)."""
        if not isinstance(view, dict):
            return False
        try:
            clean = {"version": int(view.get("version", 0)), "credits": int(view.get("credits", 0)),
                     "cargo": goods_of(view.get("cargo")), "capacity": int(view.get("capacity", DEFAULT_CAPACITY)),
                     "reserved": int(view.get("reserved", 0))}
        except (TypeError, ValueError):
            return False
        held = self.views.get(player)
        if held is not None and held["version"] >= clean["version"]:
            return False
        self._keep(player, clean)
        if send:
            self.send_cargo(player)
        return True

    def _keep(self, player: str, view: dict) -> None:
        self.views[player] = view
        self.economy.put(PREFIX + player, view)

    def forget(self, player: str) -> None:
        """``player``'s ship left the system: drop its view."""
        if self.views.pop(player, None) is not None:
            self.economy.delete(PREFIX + player)

    def free_space(self, player: str | None) -> int:
        """Free hold units of ``player`` in its view: capacity - cargo - reserved (units)."""
        view = self.views.get(player) or {"cargo": {}, "capacity": DEFAULT_CAPACITY, "reserved": 0}
        return view["capacity"] - sum(view["cargo"].values()) - view["reserved"]

    def stowed(self, player: str, goods: dict[str, int]) -> None:
        """``goods`` were posted to ``player``'s hold: add them to the view until a newer one."""
        view = self.views.get(player)
        if view is not None:
            cargo = dict(view["cargo"])
            for name, units in goods.items():
                cargo[name] = cargo.get(name, 0) + units
            self._keep(player, {**view, "cargo": cargo})
            self.send_cargo(player)

    def send_cargo(self, player: str) -> None:
        """Send ``player`` its view as ``cargo`` (nothing without a view or a socket)."""
        view = self.views.get(player)
        if view is not None:
            self.economy.send(player, protocol.CARGO, {"credits": view["credits"], "cargo": view["cargo"],
                                                       "capacity": view["capacity"], "reserved": view["reserved"],
                                                       "free": self.free_space(player)})
