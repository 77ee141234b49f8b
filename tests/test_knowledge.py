"""The Knowledge Graph (docs/economy.md §3, docs/protocol.md "Knowledge Graph HTTP"): a pilot's
graph (``rooms/pilot/graph.py``, the pilot room's ``discover`` and ``GET graph``), the galaxy's
atlas of first discoveries (``rooms/atlas``) and their gateway routes. Rooms in-process on a
manual clock; the systems' posts are made as a system room would (``sender`` ``system/<id>``,
a post key)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import aiohttp
import pytest

from starhold import HttpRequest, protocol as P
from starhold._runtime.local_host import InProcessDirectory
from starhold.clock import ManualClock
from starhold.rooms.economy.scan import Fragment, fragments
from starhold.rooms.galaxy.catalogue import load_galaxy
from starhold.rooms.galaxy.planets import generate_planets
from starhold.rooms.pilot.graph import CHUNK, INDEX_PREFIX, MAX_FRAGMENTS, Graph, parse_fragments
from starhold.rooms.ships.room import GAME_EPOCH
from wire import Wire

ADA, BOB = "u-" + "a" * 16, "u-" + "b" * 16


class Galaxy:
    """Pilot and atlas rooms in one ``InProcessDirectory`` on a ``ManualClock``."""

    def __init__(self, path):
        self.path = path
        self.clock = ManualClock(GAME_EPOCH + 1000.0)
        self.directory = InProcessDirectory(path, clock=self.clock, idle_timeout=60.0)

    async def restart(self) -> None:
        """Close every room (hibernation) and start a fresh directory on the same files."""
        await self.directory.close()
        self.directory = InProcessDirectory(self.path, clock=self.clock, idle_timeout=60.0)

    async def request(self, kind, room_id, method, path, body=None, *, query=None, sender="", key=""):
        handle = await self.directory.get(kind, room_id)
        raw = b"" if body is None else json.dumps(body).encode()
        return await handle.request(HttpRequest(method, path, query or {}, raw, sender=sender, key=key))

    async def fly(self, player: str, name: str) -> None:
        """The pilot's record exists (a checkout by system A, as when the player first joins)."""
        answer = await self.request("pilot", player, "POST", "checkout", {"system": "A", "name": name},
                                    sender="system/A")
        assert answer.status == 200, answer.body

    async def discover(self, player, facts, *, key, scan="planet:sol/3", sender="system/A"):
        body = {"scan": scan, "fragments": [list(f) if isinstance(f, (tuple, list)) else
                                            [f.subject, f.predicate, f.object] for f in facts]}
        return await self.request("pilot", player, "POST", "discover", body, sender=sender, key=key)

    async def graph(self, player, **query):
        answer = await self.request("pilot", player, "GET", "graph", query={k: str(v) for k, v in query.items()})
        assert answer.status == 200, answer.body
        return answer.body

    async def atlas(self, path, **query):
        return await self.request("atlas", "galaxy", "GET", path, query={k: str(v) for k, v in query.items()})

    async def settle(self) -> None:
        """Wait until every post was delivered (posts run in real time)."""
        async with asyncio.timeout(10):
            while self.directory.posts_pending():
                await asyncio.sleep(0.01)


@pytest.fixture
async def galaxy(tmp_path):
    g = Galaxy(tmp_path)
    yield g
    await g.directory.close()


@pytest.fixture(scope="module")
def worlds():
    """Real fragments: the scans of Sol's planets and of a few more systems' planets."""
    stars = load_galaxy().systems
    return [fragments(system, planet) for system in stars[:6] for planet in generate_planets(system)]


def synthetic(n: int, start: int = 0) -> list[Fragment]:
    return [Fragment(f"planet:test/{i}", "holds", "resource:ice") for i in range(start, start + n)]


async def test_a_discover_adds_the_new_fragments_once_and_tells_the_atlas(galaxy, worlds):
    await galaxy.fly(ADA, "Ada")
    earth = worlds[2]
    answer = await galaxy.discover(ADA, earth, key="scan:A:1")
    assert answer.status == 200 and answer.body == {"added": len(earth), "count": len(earth)}
    await galaxy.settle()
    # The same post again (at-least-once delivery): nothing is added, nothing posted.
    await galaxy.clock.advance(5.0)
    again = await galaxy.discover(ADA, earth, key="scan:A:1")
    assert again.body == {"added": 0, "count": len(earth)} and galaxy.directory.posts_pending() == 0
    # A later scan that overlaps: only the new fragment is added.
    extra = synthetic(1)
    long_key = "scan:A:" + "2" * 190  # a post key of 200 characters: the atlas's key is hashed
    more = await galaxy.discover(ADA, [*earth[:2], *extra], key=long_key, scan="planet:test/0")
    assert more.body == {"added": 1, "count": len(earth) + 1}
    await galaxy.settle()

    page = await galaxy.graph(ADA)
    assert page["count"] == len(earth) + 1 and page["next"] is None
    assert [(f["subject"], f["predicate"], f["object"]) for f in page["fragments"]] == \
        [(f.subject, f.predicate, f.object) for f in [*earth, *extra]]
    assert {f["time"] for f in page["fragments"][:-1]} == {1000.0} and page["fragments"][-1]["time"] == 1005.0
    assert page["fragments"][0]["scan"] == "planet:sol/3" and page["fragments"][-1]["scan"] == "planet:test/0"
    assert page["fragments"][0]["id"] == earth[0].id

    found = await galaxy.atlas("fragment", id=earth[0].id)
    assert found.status == 200
    assert {k: found.body[k] for k in ("id", "player", "name", "time")} == \
        {"id": earth[0].id, "player": ADA, "name": "Ada", "time": 1000.0}
    stats = (await galaxy.atlas("stats")).body
    assert stats == {"count": len(earth) + 1, "discoverers": 1,
                     "top": [{"player": ADA, "name": "Ada", "count": len(earth) + 1}]}


async def test_the_first_discoverer_keeps_a_fragment_others_find_later(galaxy, worlds):
    await galaxy.fly(ADA, "Ada")
    await galaxy.fly(BOB, "Bob")
    mars, jupiter = worlds[3], worlds[4]
    await galaxy.discover(ADA, mars, key="a1")
    await galaxy.settle()
    await galaxy.clock.advance(60.0)
    both = await galaxy.discover(BOB, [*mars, *jupiter], key="b1", scan="planet:sol/5")
    assert both.body["added"] == len({f.id for f in [*mars, *jupiter]})  # Bob's own graph has them all
    await galaxy.settle()
    for fragment in mars:
        assert (await galaxy.atlas("fragment", id=fragment.id)).body["player"] == ADA
    news = [f for f in jupiter if f.id not in {m.id for m in mars}]
    assert news, "Jupiter's scan yields fragments Mars's does not"
    for fragment in news:
        answer = (await galaxy.atlas("fragment", id=fragment.id)).body
        assert (answer["player"], answer["name"], answer["time"]) == (BOB, "Bob", 1060.0)
    stats = (await galaxy.atlas("stats")).body
    top = [{"player": ADA, "name": "Ada", "count": len(mars)}, {"player": BOB, "name": "Bob", "count": len(news)}]
    assert stats["top"] == sorted(top, key=lambda d: (-d["count"], d["player"]))
    assert stats["count"] == len(mars) + len(news) and stats["discoverers"] == 2
    assert (await galaxy.atlas("fragment", id="star:nowhere|is|kind:nothing")).status == 404
    assert (await galaxy.atlas("fragment")).status == 400


async def test_pages_of_a_graph_and_of_the_atlas(galaxy):
    await galaxy.fly(ADA, "Ada")
    facts = synthetic(120)
    for i in range(0, 120, MAX_FRAGMENTS):
        assert (await galaxy.discover(ADA, facts[i:i + MAX_FRAGMENTS], key=f"k{i}")).status == 200
    await galaxy.settle()
    seen, after, pages = [], 0, 0
    while after is not None:
        page = await galaxy.graph(ADA, after=after, limit=50)
        assert page["count"] == 120 and len(page["fragments"]) <= 50
        seen += [f["subject"] for f in page["fragments"]]
        after, pages = page["next"], pages + 1
    assert pages == 3 and seen == [f.subject for f in facts]
    assert len((await galaxy.graph(ADA))["fragments"]) == 120  # default limit 500
    for bad in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"after": "x"}):
        answer = await galaxy.request("pilot", ADA, "GET", "graph", query={k: str(v) for k, v in bad.items()})
        assert answer.status == 400 and "must be an integer" in answer.body["error"]

    oldest = (await galaxy.atlas("discoveries", after=0, limit=100)).body
    assert oldest["count"] == 120 and oldest["next"] == 100
    assert [d["seq"] for d in oldest["discoveries"]] == list(range(1, 101))
    rest = (await galaxy.atlas("discoveries", after=100, limit=100)).body
    assert [d["subject"] for d in rest["discoveries"]] == [f.subject for f in facts[100:]] and rest["next"] is None
    newest = (await galaxy.atlas("discoveries", limit=70)).body
    assert [d["seq"] for d in newest["discoveries"]] == list(range(120, 50, -1)) and newest["next"] == 51
    older = (await galaxy.atlas("discoveries", before=51)).body
    assert [d["seq"] for d in older["discoveries"]] == list(range(50, 0, -1)) and older["next"] is None
    assert (await galaxy.atlas("discoveries", limit=501)).status == 400


OK = ["planet:ok", "is", "kind:fine"]
"""A valid fragment: refused with the others of its post (a post is all or nothing)."""
INVALID = [
    ("planet:x|is|kind:y", "fragments must be a list"),
    ([OK, ["planet:x", "is"]], "fragments[1] must be [subject, predicate, object]"),
    ([OK, ["planet", "is", "kind:y"]], "fragments[1] subject must be \"type:id\""),
    ([OK, ["planet:x", "Is", "kind:y"]], "fragments[1] predicate must be a lowercase identifier"),
    ([OK, ["planet:x", "is", 7]], "fragments[1] object must be a string"),
    ([OK, ["planet:x", "is", "kind:a|b"]], "fragments[1] object must be at most 160 printable ASCII characters without '|'"),
    ([OK, ["planet:x", "is", "kind:" + "y" * 200]], "at most 160 printable ASCII characters"),
    ([OK, ["planet:x", "is", "kind:y\n"]], "printable"),
    ([OK, ["planet:x", "is", "kind:\u00e9"]], "ASCII"),
    ([OK, ["Planet:x", "is", "kind:y"]], "lowercase type"),
    ([OK, ["planet:", "is", "kind:y"]], "fragments[1] subject must be \"type:id\""),
    ([OK] * (MAX_FRAGMENTS + 1), "at most 50 fragments per discover, got 51"),
]
"""Bodies' ``fragments`` the pilot room refuses, with a part of the error it answers."""


async def test_invalid_fragments_are_refused_and_nothing_is_stored(galaxy):
    await galaxy.fly(ADA, "Ada")
    for fragments_, error in INVALID:
        body = {"scan": "planet:sol/3", "fragments": fragments_}
        answer = await galaxy.request("pilot", ADA, "POST", "discover", body, sender="system/A", key="bad")
        assert answer.status == 400 and error in answer.body["error"], (fragments_, answer.body)
    assert galaxy.directory.posts_pending() == 0 and (await galaxy.graph(ADA))["count"] == 0
    assert (await galaxy.atlas("stats")).body["count"] == 0


async def test_who_may_discover(galaxy, worlds):
    earth = worlds[2]
    assert (await galaxy.discover(ADA, earth, key="k")).status == 404  # a player who never flew
    await galaxy.fly(ADA, "Ada")
    assert (await galaxy.discover(ADA, earth, key="k", sender="")).status == 403  # a client
    assert (await galaxy.discover(ADA, earth, key="k", sender="market/core")).status == 403
    for scan in ("", None, "x" * 161):
        assert (await galaxy.discover(ADA, earth, key="k", scan=scan)).status == 400
    # The atlas takes discoveries from pilot rooms only, each for itself.
    body = {"player": ADA, "name": "Ada", "time": 1.0, "fragments": [[f.subject, f.predicate, f.object] for f in earth]}
    assert (await galaxy.request("atlas", "galaxy", "POST", "discover", body, sender="system/A", key="x")).status == 403
    assert (await galaxy.request("atlas", "galaxy", "POST", "discover", body, sender=f"pilot/{BOB}", key="x")).status == 400
    for time in ("1", float("inf"), True, None):  # json.dumps writes inf as Infinity, which json.loads reads
        answer = await galaxy.request("atlas", "galaxy", "POST", "discover", {**body, "time": time},
                                      sender=f"pilot/{ADA}", key="x")
        assert answer.status == 400 and "time" in answer.body["error"]
    assert (await galaxy.request("atlas", "elsewhere", "GET", "stats")).status == 404  # one atlas
    assert (await galaxy.atlas("stats")).body["count"] == 0


async def test_a_restart_keeps_graphs_and_atlas(galaxy, worlds):
    await galaxy.fly(ADA, "Ada")
    facts = [f for world in worlds[:5] for f in world]
    for i, world in enumerate(worlds[:5]):
        await galaxy.discover(ADA, world, key=f"scan-{i}", scan=f"planet:sol/{i + 1}")
    await galaxy.settle()
    before_graph, before_atlas = await galaxy.graph(ADA), (await galaxy.atlas("discoveries", after=0)).body
    assert before_graph["count"] == len({f.id for f in facts}) == before_atlas["count"]
    await galaxy.restart()
    assert await galaxy.graph(ADA) == before_graph
    assert (await galaxy.atlas("discoveries", after=0)).body == before_atlas
    # The graph knows its fragments after the restart: a redelivered post adds nothing.
    assert (await galaxy.discover(ADA, worlds[0], key="scan-0")).body["added"] == 0
    # And numbering goes on after the last stored fragment.
    assert (await galaxy.discover(ADA, synthetic(1), key="scan-9")).body["added"] == 1
    page = await galaxy.graph(ADA, after=before_graph["count"])
    assert [f["seq"] for f in page["fragments"]] == [before_graph["count"] + 1]


def test_the_graph_store_alone():
    """Records and the id index chunks written behind; a graph loaded from its index knows
    every id and numbers on, across chunks."""
    graph = Graph()
    assert graph.add(parse_fragments([["a:1", "p", "b:2"], ["a:1", "p", "b:2"], ["a:1", "q", "b:2"]]), 5.0, "s") \
        == [Fragment("a:1", "p", "b:2"), Fragment("a:1", "q", "b:2")]
    writes = graph.take_writes()
    assert writes == {"kg:f:000000000001": {"subject": "a:1", "predicate": "p", "object": "b:2", "time": 5.0, "scan": "s"},
                      "kg:f:000000000002": {"subject": "a:1", "predicate": "q", "object": "b:2", "time": 5.0, "scan": "s"},
                      "kg:i:00000000": ["a:1|p|b:2", "a:1|q|b:2"]}
    assert graph.take_writes() == {}
    stored = dict(writes)
    facts = synthetic(CHUNK + 40)
    for i in range(0, len(facts), MAX_FRAGMENTS):  # as posts would: reload between some of them
        again = Graph()
        again.load({k: v for k, v in stored.items() if k.startswith(INDEX_PREFIX)} | {"kg:i:junk": 1})
        assert again.add(facts[i:i + MAX_FRAGMENTS] + [Fragment("a:1", "p", "b:2")], 6.0, "t") == \
            facts[i:i + MAX_FRAGMENTS]
        stored.update(again.take_writes())
    final = Graph()
    final.load({k: v for k, v in stored.items() if k.startswith(INDEX_PREFIX)})
    assert len(final) == final.last == len(facts) + 2 and all(f in final for f in facts)
    assert sorted(k for k in stored if k.startswith(INDEX_PREFIX)) == ["kg:i:00000000", "kg:i:00000001"]
    assert stored["kg:i:00000001"] == [f.id for f in facts[CHUNK - 2:]]
    assert stored[f"kg:f:{CHUNK + 42:012d}"]["subject"] == facts[-1].subject


async def test_the_routes(tmp_path, gateway_factory, worlds):
    """``/api/me/graph`` needs a token and serves its player's graph; ``/api/discoveries`` and
    ``/api/atlas/stats`` are public; no socket reaches an atlas room."""
    g = Galaxy(tmp_path / "data")
    try:
        url = await gateway_factory(g.directory)
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/api/auth/guest", json={"name": "Ada"}) as resp:
                guest = await resp.json()
            player, token = guest["player"], guest["token"]
            await g.fly(player, "Ada")
            earth = worlds[2]
            await g.discover(player, earth, key="k1")
            await g.settle()

            async def get(path, **kwargs):
                async with session.get(url + path, **kwargs) as resp:
                    return resp.status, await resp.json()

            assert (await get("/api/me/graph"))[0] == 401
            assert (await get("/api/me/graph", headers={"Authorization": "Bearer nonsense"}))[0] == 401
            status, mine = await get("/api/me/graph?limit=2", headers={"Authorization": f"Bearer {token}"})
            assert status == 200 and mine["count"] == len(earth) and len(mine["fragments"]) == 2 and mine["next"] == 2
            status, mine = await get(f"/api/me/graph?after=2&token={token}")
            assert status == 200 and [f["seq"] for f in mine["fragments"]] == list(range(3, len(earth) + 1))
            assert (await get(f"/api/me/graph?limit=0&token={token}"))[0] == 400

            status, page = await get("/api/discoveries?after=0&limit=1")
            assert status == 200 and page["count"] == len(earth) and page["discoveries"][0]["player"] == player
            status, one = await get("/api/discoveries/" + quote(earth[1].id, safe=""))
            assert status == 200 and (one["id"], one["name"]) == (earth[1].id, "Ada")
            assert (await get("/api/discoveries/" + quote(earth[1].id)))[1] == one  # "/" left as is
            assert (await get("/api/discoveries?token=nonsense"))[0] == 200  # public: a token is not looked at
            assert (await get("/api/discoveries/" + quote("star:x|is|kind:y", safe="")))[0] == 404
            status, stats = await get("/api/atlas/stats")
            assert status == 200 and stats["top"] == [{"player": player, "name": "Ada", "count": len(earth)}]

            refused = await Wire.open(session, url, "/rooms/atlas/galaxy/ws", token)
            assert (await refused.recv(P.ERROR))[2]["code"] == P.ERR_UNKNOWN_ROOM
    finally:
        await g.directory.close()
