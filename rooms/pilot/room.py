"""The pilot room: one per player (id = the player id), the owner of record of its one ship.

Durable Objects keep one object per entity; a ship is such an entity. Its record lives here
and nowhere else, so it can never be in two places: ``location`` is a system id, or a
transit between two. A system room only **holds** the ship while its pilot is seated there,
under a **checkout** (an id this room issued to that system), and gives it back:

- ``checkout`` (a ``call`` from a system the pilot joins): the ship's state and a checkout id,
  if the ship is in that system (a new pilot's ship starts in the first system it joins);
  409 with where the ship is otherwise. A transit whose arrival time has passed completes
  first (closed form: nothing runs while a ship is in transit).
- ``checkin`` (a ``post`` when the pilot leaves or its seat hold expires): the ship docks in
  the system with its state; applied only for the current checkout id.
- ``depart`` (a ``post`` when the ship reaches a jump point): the commit point of a jump. With
  the current checkout id the location becomes the transit (idempotent by the jump id), and
  the target system is posted ``expect`` so that it wakes during the transit, and the system
  left is posted ``departed`` (it sends the pilot's joins on to the transit until then).

The system room removes the ship from its own state in the same transaction as the post, so
the ship is in exactly one place at every instant: in the system (checked out), in the post
on its way (the system's outbox, durable, delivered at least once and applied once here), or
in this record. See docs/rooms.md "Jumps" for the argument and tests/test_jumps.py for the
chaos test that kills every participant at every step.

Also: the pilot's direct messages (``rooms.pilot.inbox``: ``dm``, kept while offline and
handed to the next checkout; ``delivered``), the public profile (``GET profile``), and the
pilot's **ledger** (``rooms.pilot.trading``/``ledger``: credits, cargo and orders; the room-only
posts ``stow``, ``bounty``, ``destroyed``, ``settle``, ``closed``, and the client paths ``GET
me``, ``POST order``, ``POST cancel``). The checkout answer carries the ledger's view, and the
checkout body may carry ``region`` (the system's region, default ``"core"``): the market the
pilot may trade on until the ship departs (None in transit).
Every other POST path is room-only (``request.sender`` set); ``GET profile`` is public. The
client paths are served only for ``request.sender == ""``: only the gateway's routes
(``rooms/pilot/http.py``) send those, after checking that the bearer token's player is this
room's id.
"""

from __future__ import annotations

import hashlib
import re

from starhold import HttpRequest, HttpResponse, Room, define_room
from ..ships.room import GAME_EPOCH
from ..economy.resources import REGIONS
from .inbox import Inbox, PREFIX as DM_PREFIX
from ..atlas.room import ATLAS_ID
from .graph import Graph, FragmentError, INDEX_PREFIX as KG_INDEX, parse_fragments, parse_page, parse_scan
from .trading import Trading

KIND = "pilot"
PLAYER_ID = re.compile(r"^[ug]-[0-9a-f]{16}$")
"""A player id as gateways issue them (``u-``/``g-`` + 16 hex: ``gateway.auth``)."""
HULL = "corvette"
"""The hull every pilot flies (later issues add more)."""
RECORD_KEY = "pilot"
ARRIVAL_LEAD = 3.0
"""Seconds before its ship arrives that a pilot room is awake (an alarm: it stays awake through
a short transit, and a long one wakes it in time) for the target system's checkout."""
MAX_PREVIOUS = 8
"""Checkout ids remembered per stay in a system (see ``checkout``'s ``previous``)."""


def _system_of(sender: str) -> str | None:
    kind, _, room_id = sender.partition("/")
    return room_id if kind == "system" and room_id else None


@define_room
class PilotRoom(Room):
    """A player's pilot: the ship's record (``pilot`` key) and inbox (``dm:`` keys).

    The record: ``player``, ``name``, ``hull``, ``created`` (clock s), ``system`` (id or
    None in transit), ``transit`` (None or ``{"jump", "from", "to", "parsecs", "depart",
    "arrive"}``, clock s), ``checkout`` (None or ``{"system", "id"}``), ``previous`` (the
    checkout ids issued during this stay in ``system``), ``ship`` (the system's ship state as
    of the last checkin or departure, None for a new ship), ``hp``/``max_hp``, ``route``
    (autopilot: system ids still to visit), ``jumps`` (count), ``seq`` (checkout counter),
    ``region`` (the region of the system of the last checkout; None since a departure).
    The ledger is ``self.trading.ledger`` (its own storage keys, ``ledger*``).
    """

    kind = KIND
    wake_on_http = False

    async def on_start(self) -> None:
        self.record: dict | None = await self.storage.get(RECORD_KEY)
        self.inbox = Inbox()
        self.inbox.load(await self.storage.list(prefix=DM_PREFIX), self.clock.now())
        self.graph = Graph()
        self.graph.load(await self.storage.list(prefix=KG_INDEX))
        self.trading = Trading(self)
        await self.trading.load()

    async def _save(self, record: bool = True) -> None:
        """Write what changed: the inbox's, graph's and ledger's pending writes, and the record
        unless ``record`` is False (a read: ``_settle`` is closed form, so a transit it
        completes needs no write; a read that writes nothing commits nothing)."""
        puts, deletes = self.inbox.take_writes()
        puts.update(self.graph.take_writes())
        ledger_puts, ledger_deletes = self.trading.take_writes()
        puts.update(ledger_puts)
        deletes = [*deletes, *ledger_deletes]
        if record and self.record is not None:
            puts[RECORD_KEY] = self.record
        if puts:
            await self.storage.put(puts)
        if deletes:
            await self.storage.delete(deletes)

    def _settle(self) -> None:
        """Complete a transit whose arrival time has passed (closed form)."""
        rec = self.record
        transit = rec and rec.get("transit")
        if transit and self.clock.now() >= transit["arrive"]:
            rec["system"], rec["transit"], rec["previous"] = transit["to"], None, []
            rec["arrived_from"] = transit["from"]

    def _where(self) -> dict:
        rec, now = self.record, self.clock.now()
        transit = rec.get("transit")
        if transit:
            transit = {"jump": transit["jump"], "from": transit["from"], "to": transit["to"],
                       "arrive": transit["arrive"] - GAME_EPOCH, "wait": max(0.0, transit["arrive"] - now)}
        return {"system": rec.get("system"), "transit": transit}

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and request.path in ("", "profile"):
            return self._profile()
        if request.method == "GET" and request.path == "graph":
            return await self._graph(request)
        if not request.sender:  # a gateway route: the pilot's own paths
            handler = self.trading.client_handler(request.method, request.path)
            if handler is None:
                return HttpResponse(404 if request.method != "POST" else 403, {"error": "not found"})
        elif request.method != "POST":
            return HttpResponse(404, {"error": "not found"})
        else:
            handler = {"checkout": self._checkout, "checkin": self._checkin, "depart": self._depart,
                       "dm": self._dm, "delivered": self._delivered, "discover": self._discover}.get(request.path)
            handler = handler or self.trading.post_handler(request.path)
            if handler is None:
                return HttpResponse(404, {"error": "not found"})
        try:
            body = request.json() or {}
        except ValueError:
            return HttpResponse(400, {"error": "body must be JSON", "code": "bad_json"})
        if not isinstance(body, dict):
            return HttpResponse(400, {"error": "body must be a JSON object", "code": "bad_json"})
        self._settle()
        ledger_before = self.trading.snapshot()
        response = handler(request, body)
        if request.path != "checkout":  # a checkout answers with the ledger's view
            self.trading.publish(ledger_before)
        transit = (self.record or {}).get("transit")
        if request.path == "depart" and transit:  # be awake when the ship arrives (a wake costs ~2 s)
            now = self.clock.now()
            await self.ticker.wake_at("arrival-lead", max(now, transit["arrive"] - ARRIVAL_LEAD), self._arriving)
            await self.ticker.wake_at("arrival", transit["arrive"] + 1.0, self._arriving)  # awake until then
        await self._save(record=request.method != "GET")
        return response

    async def _arriving(self) -> None:
        """The deadline before an arrival: the room is awake for the target's checkout."""

    def _profile(self) -> HttpResponse:
        if self.record is None:
            return HttpResponse(404, {"error": "unknown player"})
        self._settle()
        rec = self.record
        return HttpResponse(200, {"player": self.name, "name": rec["name"], **self._where(), "hull": rec["hull"],
                                  "hp": rec.get("hp"), "max_hp": rec.get("max_hp"),
                                  "online": rec.get("checkout") is not None, "jumps": rec.get("jumps", 0)})

    def _checkout(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{system, name}`` from a system the pilot joins -> 200 ``{checkout, previous,
        ship, route, arrived_from, inbox, new}``, or 409 ``{system, transit}``."""
        system = _system_of(request.sender)
        if system is None or body.get("system") != system:
            return HttpResponse(400, {"error": "checkout comes from the system itself"})
        new = self.record is None
        if new:
            self.record = {"player": self.name, "name": str(body.get("name") or self.name), "hull": HULL,
                           "created": self.clock.now(), "system": system, "transit": None, "checkout": None,
                           "previous": [], "ship": None, "hp": None, "max_hp": None, "route": [], "jumps": 0,
                           "seq": 0}
        self.trading.ensure()  # a new pilot's grant (or a ledger for a pilot from before ledgers)
        rec = self.record
        if rec.get("transit") or rec["system"] != system:
            return HttpResponse(409, self._where())
        if body.get("name"):
            rec["name"] = str(body["name"])
        region = body.get("region", "core")
        rec["region"] = region if region in REGIONS else None
        rec["seq"] += 1
        checkout = f"{system}:{rec['seq']}"
        rec["checkout"] = {"system": system, "id": checkout}
        previous = list(rec.get("previous") or [])
        rec["previous"] = [*previous, checkout][-MAX_PREVIOUS:]
        self.inbox.expire(self.clock.now())
        inbox = self.inbox.undelivered()
        self.inbox.mark_delivered([m["id"] for m in inbox])
        return HttpResponse(200, {"checkout": checkout, "previous": previous, "ship": rec["ship"],
                                  "route": rec.get("route") or [], "arrived_from": rec.get("arrived_from"),
                                  "inbox": inbox, "new": new, "name": rec["name"], "ledger": self.trading.view()})

    def _current(self, request: HttpRequest, body: dict) -> bool:
        rec = self.record
        checkout = rec and rec.get("checkout")
        return bool(checkout) and checkout["id"] == body.get("checkout") and checkout["system"] == _system_of(request.sender)

    def _keep_ship(self, body: dict) -> None:
        rec = self.record
        rec["ship"] = body.get("ship")
        for key in ("hp", "max_hp"):
            if body.get(key) is not None:
                rec[key] = body[key]

    def _checkin(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{checkout, ship, hp, max_hp, route}``: the pilot left; the ship docks where it is."""
        if not self._current(request, body):
            return HttpResponse(200, {"applied": False})  # an older checkout: superseded
        self._keep_ship(body)
        self.record["route"] = list(body.get("route") or [])
        self.record["checkout"] = None
        self.record.pop("arrived_from", None)  # the ship is placed: it docks where it is
        return HttpResponse(200, {"applied": True})

    def _depart(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{checkout, jump, to, parsecs, wait, depart_at, ship, hp, max_hp, route}``: the
        ship left its system through a jump point at ``depart_at`` (clock s): the location
        becomes the transit, arriving ``wait`` seconds after the departure (or after now, if
        ``depart_at`` is ahead of this room's clock)."""
        rec = self.record
        jump = str(body.get("jump") or request.key)
        if rec is not None and ((rec.get("transit") or {}).get("jump") == jump or jump in rec.get("done", ())):
            return HttpResponse(200, {"applied": False, "duplicate": True})
        origin = _system_of(request.sender)
        if origin is not None:  # the origin forgets its departure record: joins come to us now
            self.rooms.post("system", origin, "departed", {"player": self.name, "jump": jump}, key=f"departed:{jump}")
        if not self._current(request, body):
            return HttpResponse(409, {"error": "not the current checkout", **(self._where() if rec else {})})
        now = self.clock.now()
        self._keep_ship(body)
        wait = float(body["wait"])
        depart = min(now, float(body.get("depart_at", now)))  # the system's clock when the ship left
        rec["transit"] = {"jump": jump, "from": rec["system"], "to": str(body["to"]), "parsecs": float(body["parsecs"]),
                          "depart": depart, "arrive": depart + wait}
        rec["system"], rec["checkout"], rec["previous"], rec["region"] = None, None, [], None
        rec.pop("arrived_from", None)
        rec["route"] = list(body.get("route") or [])
        rec["jumps"] = rec.get("jumps", 0) + 1
        rec["done"] = [*rec.get("done", []), jump][-16:]
        self.rooms.post("system", rec["transit"]["to"], "expect", {"jump": jump, "player": self.name,
                                                                    "arrive": rec["transit"]["arrive"]},
                        key=f"expect:{jump}")
        return HttpResponse(200, {"applied": True, "arrive": rec["transit"]["arrive"]})

    def _dm(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{from, name, text}``: a direct message to this pilot -> 200 ``{message}``, 404 for
        a player who never flew (nothing is stored)."""
        if self.record is None:
            return HttpResponse(404, {"error": "unknown player"})
        message = self.inbox.add({"from": str(body.get("from", "")), "name": str(body.get("name", "")),
                                  "to": self.name, "text": str(body.get("text", "")),
                                  "time": self.clock.now() - GAME_EPOCH, "delivered": False}, self.clock.now())
        checkout = self.record.get("checkout")
        if checkout is not None:  # online: the system holding the ship hands it to the socket
            self.rooms.post("system", checkout["system"], "deliver", {"player": self.name, "message": message},
                            key=f"dm:{self.name}:{message['id']}")
        return HttpResponse(200, {"message": message})

    def _delivered(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{ids}``: these messages reached the pilot's socket."""
        self.inbox.mark_delivered([int(i) for i in body.get("ids", ())])
        return HttpResponse(200, {})

    def _discover(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{scan, fragments: [[subject, predicate, object], ...]}`` from a system (docs/economy.md
        §3): adds the new fragments to the graph and posts them to the atlas -> 200 ``{added,
        count}``; 400 for a body ``graph.parse_fragments`` refuses (nothing stored), 403 from a
        room that is not a system, 404 for a player who never flew. Adding is idempotent (known
        fragments are skipped), so a duplicate post adds and posts nothing."""
        if _system_of(request.sender) is None:
            return HttpResponse(403, {"error": "discover comes from a system"})
        if self.record is None:
            return HttpResponse(404, {"error": "unknown player"})
        try:
            scan, fragments = parse_scan(body.get("scan")), parse_fragments(body.get("fragments"))
        except FragmentError as exc:
            return HttpResponse(400, {"error": str(exc)})
        time = self.clock.now() - GAME_EPOCH
        new = self.graph.add(fragments, time, scan)
        if new:
            key = f"discover:{self.name}:{request.key}"  # a post key is at most 200 characters
            key = key if len(key) <= 200 else "discover:" + hashlib.sha256(key.encode()).hexdigest()
            self.rooms.post("atlas", ATLAS_ID, "discover",
                            {"player": self.name, "name": self.record["name"], "time": time,
                             "fragments": [[f.subject, f.predicate, f.object] for f in new]}, key=key)
        return HttpResponse(200, {"added": len(new), "count": len(self.graph)})

    async def _graph(self, request: HttpRequest) -> HttpResponse:
        """``GET graph?after=&limit=``: a page of the pilot's fragments in discovery order (served
        to anyone who reaches the room: the gateway's ``/api/me/graph`` checks the token's player,
        ``rooms/pilot/graph_http.py``) -> 200 ``{fragments, count, next}``; 400 for bad paging."""
        try:
            after, limit = parse_page(request.query)
        except ValueError as exc:
            return HttpResponse(400, {"error": str(exc)})
        stored = await self.storage.list(**Graph.page_range(after, limit))
        return HttpResponse(200, self.graph.page_of(stored, limit))
