"""The atlas: the galaxy's first discoverer of each Knowledge Graph fragment (docs/economy.md §3).

One room, kind ``atlas``, id ``galaxy`` (``ATLAS_ID``; any other id answers 404 and stores
nothing). Pilot rooms post it the fragments new to their pilot (``discover``, below); the
first post applied for a fragment records its discoverer, and later ones leave it as it is.

Persistence is the room's own SQL (``self.storage.sql``): the questions asked of the atlas
(pages in order of discovery, one fragment by id, the top discoverers) are an ordered table,
a unique index and a small aggregate table, and every statement is deterministic (values
computed in Python, ``seq`` the rowid SQLite gives, max + 1 as nothing is ever deleted), so it
replicates as statements. Tables:

- ``discoveries(seq INTEGER PRIMARY KEY, id TEXT UNIQUE, subject, predicate, object, player,
  name, time)``: one row per fragment ever discovered (at most the galaxy's fragments: posts
  come only from pilot rooms, which take fragments only from system rooms' scans);
- ``discoverers(player PRIMARY KEY, name, count)``: fragments first found per player.

Requests (``on_request``):

- ``POST discover`` (room-only, from ``pilot/<player>``): ``{"player", "name", "time",
  "fragments": [[subject, predicate, object], ...]}`` -> 200 ``{"recorded": n}`` (the fragments
  not recorded before, now recorded with ``{player, name, time}``). The effect is idempotent
  (a recorded fragment is never changed), so a post delivered twice, whatever its key,
  records nothing the second time. 403 from a sender that is not a pilot room, 400 for a
  ``player`` other than the sender's id, a ``time`` that is not a finite number, or fragments
  ``rooms.pilot.graph.parse_fragments`` refuses (nothing is recorded). A ``name`` that is not
  1-64 printable characters is replaced by the player id.
- ``GET discoveries?after=&before=&limit=``: a page (``limit`` 1-``PAGE_LIMIT``, default
  ``PAGE_DEFAULT``): with ``after`` (a ``seq``), the discoveries after it oldest first; without,
  the newest first, before ``before`` if given. -> ``{"discoveries": [...], "count", "next"}``,
  ``next`` the ``after`` (or ``before``) of the next page, or null on the last.
- ``GET fragment?id=<fragment id>`` -> the discovery, or 404 ``{"error": "not discovered"}``;
  400 without ``id``.
- ``GET stats`` -> ``{"count", "discoverers", "top": [{"player", "name", "count"}...]}``
  (``TOP`` players with the most first discoveries, ties by player id).

A discovery is ``{"seq", "id", "subject", "predicate", "object", "player", "name", "time"}``:
``seq`` its number in the order the atlas recorded it (1, 2, ...), ``time`` the game time (s)
the pilot discovered it.
"""

from __future__ import annotations

import math

from starhold import HttpRequest, HttpResponse, Room, define_room

from ..pilot.graph import FragmentError, parse_fragments, query_int

KIND = "atlas"
ATLAS_ID = "galaxy"
"""The one atlas room's id."""
PAGE_DEFAULT = 100
"""Discoveries in a page when ``limit`` is not given."""
PAGE_LIMIT = 500
"""Most discoveries in a page."""
TOP = 10
"""Discoverers listed by ``stats``."""
NAME_MAX = 64
"""Longest discoverer name kept, characters."""
_COLUMNS = "seq, id, subject, predicate, object, player, name, time"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS discoveries (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    " subject TEXT NOT NULL, predicate TEXT NOT NULL, object TEXT NOT NULL, player TEXT NOT NULL,"
    " name TEXT NOT NULL, time REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS discoverers (player TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " count INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS discoverers_by_count ON discoverers (count DESC, player)",
)


def _discovery(row: tuple) -> dict:
    return dict(zip(("seq", "id", "subject", "predicate", "object", "player", "name", "time"), row))




@define_room
class AtlasRoom(Room):
    """The galaxy's atlas (module docstring). Wakes for anonymous HTTP: its GETs are public."""

    kind = KIND
    wake_on_http = True

    async def on_start(self) -> None:
        if self.name == ATLAS_ID:  # another id stores nothing
            for statement in _SCHEMA:
                await self.storage.sql(statement)

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if self.name != ATLAS_ID:
            return HttpResponse(404, {"error": "no such atlas"})
        try:
            if request.method == "POST" and request.path == "discover":
                return await self._discover(request)
            if request.method == "GET" and request.path == "discoveries":
                return await self._discoveries(request.query)
            if request.method == "GET" and request.path == "fragment":
                return await self._fragment(request.query.get("id"))
            if request.method == "GET" and request.path == "stats":
                return await self._stats()
        except ValueError as exc:
            return HttpResponse(400, {"error": str(exc)})
        return HttpResponse(404, {"error": "not found"})

    async def _discover(self, request: HttpRequest) -> HttpResponse:
        kind, _, player = request.sender.partition("/")
        if kind != "pilot" or not player:
            return HttpResponse(403, {"error": "discover comes from a pilot room"})
        body = request.json()
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        if body.get("player") != player:
            raise ValueError("player must be the sending pilot's id")
        time = body.get("time")
        if isinstance(time, bool) or not isinstance(time, (int, float)) or not math.isfinite(time):
            raise ValueError("time must be a finite number (game time, s)")
        try:
            fragments = parse_fragments(body.get("fragments"))
        except FragmentError as exc:
            raise ValueError(str(exc)) from None
        name = body.get("name")
        if not (isinstance(name, str) and 1 <= len(name) <= NAME_MAX and name.isprintable()):
            name = player
        if not fragments:
            return HttpResponse(200, {"recorded": 0})
        values = ", ".join("(?, ?, ?, ?, ?, ?, ?)" for _ in fragments)
        params = [x for f in fragments for x in (f.id, f.subject, f.predicate, f.object, player, name, float(time))]
        rows = await self.storage.sql(
            f"INSERT INTO discoveries (id, subject, predicate, object, player, name, time) VALUES {values}"
            " ON CONFLICT (id) DO NOTHING RETURNING seq", *params)
        if rows:
            await self.storage.sql(
                "INSERT INTO discoverers (player, name, count) VALUES (?, ?, ?) ON CONFLICT (player)"
                " DO UPDATE SET count = count + excluded.count, name = excluded.name", player, name, len(rows))
        return HttpResponse(200, {"recorded": len(rows)})

    async def _count(self) -> int:
        return (await self.storage.sql("SELECT count(*) FROM discoveries"))[0][0]

    async def _discoveries(self, query: dict) -> HttpResponse:
        limit = query_int(query, "limit", PAGE_DEFAULT, 1, PAGE_LIMIT)
        after = query_int(query, "after", None, 0, 10**15 - 1)
        if after is not None:
            rows = await self.storage.sql(f"SELECT {_COLUMNS} FROM discoveries WHERE seq > ? ORDER BY seq LIMIT ?",
                                          after, limit + 1)
        else:
            before = query_int(query, "before", 10**15, 1, 10**15)
            rows = await self.storage.sql(
                f"SELECT {_COLUMNS} FROM discoveries WHERE seq < ? ORDER BY seq DESC LIMIT ?", before, limit + 1)
        page = [_discovery(row) for row in rows[:limit]]
        return HttpResponse(200, {"discoveries": page, "count": await self._count(),
                                  "next": page[-1]["seq"] if len(rows) > limit else None})

    async def _fragment(self, fragment_id: str | None) -> HttpResponse:
        if not fragment_id:
            raise ValueError("missing query parameter: id")
        rows = await self.storage.sql(f"SELECT {_COLUMNS} FROM discoveries WHERE id = ?", fragment_id)
        if not rows:
            return HttpResponse(404, {"error": "not discovered"})
        return HttpResponse(200, _discovery(rows[0]))

    async def _stats(self) -> HttpResponse:
        top = await self.storage.sql("SELECT player, name, count FROM discoverers ORDER BY count DESC, player LIMIT ?",
                                     TOP)
        discoverers = (await self.storage.sql("SELECT count(*) FROM discoverers"))[0][0]
        return HttpResponse(200, {"count": await self._count(), "discoverers": discoverers,
                                  "top": [{"player": p, "name": n, "count": c} for p, n, c in top]})
