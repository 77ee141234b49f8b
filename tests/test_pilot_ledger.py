"""The pilot room's ledger in process (rooms/pilot/trading.py): operations posted by system and
market rooms through their real outboxes (stub rooms that record what they receive), the
pilot's own order paths, every bad input refused with nothing changed, duplicates ignored,
flooding refused, ``ledger`` views posted to the system holding the ship, and a restart that
keeps everything. A manual clock; posts are waited for as events."""

from __future__ import annotations

import asyncio
import json

import pytest

from starhold import HttpRequest, HttpResponse, Room
from starhold._runtime.local_host import InProcessDirectory
from starhold.harness import RoomHarness
from starhold.rooms.market.book import fee
from starhold.rooms.pilot.room import PilotRoom, RECORD_KEY
from starhold.rooms.pilot.trading import ORDER_BURST, ORDER_RATE
from starhold.rooms.ships.room import GAME_EPOCH

P = "u-00000000000000a1"


class Stub(Room):
    """A system or market stand-in: records every request another room sends it (``GET got``:
    ``[{path, body, key, sender}]``), and, asked by the test, posts to or calls a pilot as a
    real room would (``POST post`` / ``POST call`` ``{to, path, body, key}``)."""

    kind = "stub"

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if request.sender:
            got = await self.storage.get("got") or []
            got.append({"path": request.path, "body": request.json(), "key": request.key, "sender": request.sender})
            await self.storage.put("got", got)
            return HttpResponse(200, {})
        if request.path == "got":
            return HttpResponse(200, await self.storage.get("got") or [])
        body = request.json()
        if request.path == "post":
            self.rooms.post("pilot", body["to"], body["path"], body["body"], key=body["key"])
            return HttpResponse(200, {})
        answer = await self.rooms.call("pilot", body["to"], body["path"], body["body"])
        return HttpResponse(200, {"status": answer.status, "body": answer.body})


class SystemStub(Stub):
    kind = "system"


class MarketStub(Stub):
    kind = "market"


class World:
    def __init__(self, directory: InProcessDirectory):
        self.directory = directory

    async def settle(self) -> None:
        async with asyncio.timeout(10):
            while self.directory.posts_pending():
                await asyncio.sleep(0.005)

    async def _stub(self, kind: str, room_id: str, path: str, body=None) -> HttpResponse:
        handle = await self.directory.get(kind, room_id)
        return await handle.request(HttpRequest("GET" if body is None else "POST", path, {},
                                                b"" if body is None else json.dumps(body).encode()))

    async def post(self, sender: str, path: str, body: dict, key: str) -> None:
        """``sender`` (``"system/A"``, ``"market/core"``) posts ``body`` to the pilot; waits for it."""
        kind, room_id = sender.split("/")
        await self._stub(kind, room_id, "post", {"to": P, "path": path, "body": body, "key": key})
        await self.settle()

    async def call(self, sender: str, path: str, body: dict) -> HttpResponse:
        kind, room_id = sender.split("/")
        answer = (await self._stub(kind, room_id, "call", {"to": P, "path": path, "body": body})).body
        await self.settle()
        return HttpResponse(answer["status"], answer["body"])

    async def deliver(self, sender: str, path: str, body: dict, key: str) -> HttpResponse:
        """A post's delivery as the outbox makes it (``sender``, ``key``), answered here."""
        handle = await self.directory.get("pilot", P)
        answer = await handle.request(HttpRequest("POST", path, {}, json.dumps(body).encode(), sender=sender, key=key))
        await self.settle()
        return answer

    async def got(self, receiver: str, path: str | None = None) -> list[dict]:
        kind, room_id = receiver.split("/")
        got = (await self._stub(kind, room_id, "got")).body
        return [g for g in got if path is None or g["path"] == path]

    async def client(self, method: str, path: str, body: dict | None = None) -> HttpResponse:
        """A request to the pilot as the gateway's routes send it (no sender)."""
        handle = await self.directory.get("pilot", P)
        raw = b"" if body is None else json.dumps(body).encode()
        answer = await handle.request(HttpRequest(method, path, {}, raw))
        await self.settle()
        return answer

    async def me(self) -> dict:
        answer = await self.client("GET", "me")
        assert answer.status == 200, answer
        return answer.body

    async def checkout(self, system: str = "A", region: str | None = "core") -> dict:
        body = {"system": system, "name": "Ada", **({"region": region} if region else {})}
        answer = await self.call(f"system/{system}", "checkout", body)
        assert answer.status == 200, answer
        return answer.body

    async def order(self, **kw) -> HttpResponse:
        body = {"market": "core", "good": "ice", "side": "buy", "kind": "limit", "price": 10, "quantity": 5}
        body.update(kw)
        return await self.client("POST", "order", {k: v for k, v in body.items() if v is not ...})


@pytest.fixture
async def world(tmp_path, manual_clock):
    directory = InProcessDirectory(tmp_path / "data", clock=manual_clock, idle_timeout=60.0,
                                   room_classes={"system": SystemStub, "market": MarketStub, "pilot": PilotRoom})
    yield World(directory)
    await directory.close()


def view(me: dict) -> dict:
    return {k: me[k] for k in ("credits", "cargo", "capacity", "reserved")}


async def test_the_first_checkout_grants_the_starting_credits_once(world):
    first = await world.checkout()
    assert first["ledger"] == {"player": P, "version": 1, "credits": 1000, "cargo": {}, "capacity": 100,
                               "reserved": 0}
    me = await world.me()
    assert me["player"] == P and me["name"] == "Ada" and me["region"] == "core" and me["system"] == "A"
    assert me["free"] == 100 and me["orders"] == [] and me["totals"]["granted"] == 1000
    again = await world.checkout()
    assert again["ledger"]["credits"] == 1000 and (await world.me())["totals"]["granted"] == 1000
    assert await world.got("system/A", "ledger") == []  # a checkout answers with the view: no post


async def test_an_old_pilot_without_a_ledger_is_granted_once(tmp_path):
    async with RoomHarness(PilotRoom, name=P, data_dir=tmp_path) as h:
        old = {"player": P, "name": "Old", "hull": "corvette", "created": 0.0, "system": "A", "transit": None,
               "checkout": None, "previous": [], "ship": None, "hp": None, "max_hp": None, "route": [], "jumps": 3,
               "seq": 4}

        async def plant(room):
            room.record = old
            await room.storage.put(RECORD_KEY, old)
        await h.run_in_room(plant)
        first = await h.request("GET", "me")
        assert first.status == 200 and first.body["credits"] == 1000 and first.body["region"] is None
        await h.kill()
        again = await h.request("GET", "me")
        assert again.body["credits"] == 1000 and again.body["totals"]["granted"] == 1000 and again.body["version"] == 1


async def test_stow_keeps_what_fits_and_sends_the_surplus_back(world):
    await world.checkout()
    stow = {"goods": {"ice": 40, "ferrite": 80}, "source": "mine", "from": "field:2"}
    await world.post("system/A", "stow", stow, key="stow:A:1")
    await world.post("system/A", "stow", stow, key="stow:A:1")  # a redelivery
    me = await world.me()
    assert me["cargo"] == {"ferrite": 80, "ice": 20} and me["free"] == 0 and me["totals"]["mined"] == me["cargo"]
    assert await world.got("system/A", "unstow") == [
        {"path": "unstow", "body": {"from": "field:2", "goods": {"ice": 20}}, "key": "unstow:stow:A:1",
         "sender": f"pilot/{P}"}]
    ledgers = await world.got("system/A", "ledger")
    assert [g["body"] for g in ledgers] == [{"player": P, "version": 2, "credits": 1000,
                                             "cargo": {"ferrite": 80, "ice": 20}, "capacity": 100, "reserved": 0}]
    assert ledgers[0]["key"] == f"ledger:{P}:2"
    # a full hold takes nothing; a loot counts as looted
    await world.post("system/A", "stow", {"goods": {"ice": 3}, "source": "loot", "from": "wreck:w1"}, key="stow:A:2")
    assert (await world.got("system/A", "unstow"))[-1]["body"] == {"from": "wreck:w1", "goods": {"ice": 3}}
    assert (await world.me())["totals"]["looted"] == {}


async def test_bounty_and_destruction(world):
    await world.checkout()
    await world.post("system/A", "stow", {"goods": {"ice": 9, "platinum": 4}, "source": "mine", "from": "field:0"},
                     key="s1")
    await world.post("system/A", "bounty", {"credits": 250, "pirate": "p7"}, key="b1")
    await world.post("system/A", "bounty", {"credits": 250, "pirate": "p7"}, key="b1")
    await world.post("system/A", "destroyed", {"wreck": "w9", "x": 10.5, "y": -3.0}, key="d1")
    await world.post("system/A", "destroyed", {"wreck": "w9", "x": 10.5, "y": -3.0}, key="d1")
    me = await world.me()
    assert me["credits"] == 1250 and me["totals"]["bounties"] == 250
    assert me["cargo"] == {"ice": 5, "platinum": 2} and me["totals"]["lost"] == {"ice": 4, "platinum": 2}
    wrecks = await world.got("system/A", "wreck")
    assert [(w["body"], w["key"]) for w in wrecks] == [
        ({"wreck": "w9", "goods": {"ice": 4, "platinum": 2}, "x": 10.5, "y": -3.0}, "wreck:d1")]
    assert [g["body"]["version"] for g in await world.got("system/A", "ledger")] == [2, 3, 4]


async def test_orders_escrow_settle_and_close(world):
    await world.checkout()
    await world.post("system/A", "stow", {"goods": {"ice": 30}, "source": "mine", "from": "field:0"}, key="s1")
    buy = await world.order(price=30, quantity=10, ttl=3600, ref="my-buy")
    assert buy.status == 201, buy
    order = buy.body["order"]
    now = world.directory.clock.now()
    assert order["id"] == f"{P}:1" and order["escrow"] == 300 and order["status"] == "open"
    assert order["expires"] == pytest.approx(now + 3600 - GAME_EPOCH)
    places = await world.got("market/core", "place")
    assert [(p["body"], p["key"]) for p in places] == [({
        "order": order["id"], "owner": P, "good": "ice", "side": "buy", "kind": "limit", "price": 30, "quantity": 10,
        "expires": pytest.approx(now + 3600)}, order["id"])]
    me = await world.me()
    assert view(me) == {"credits": 700, "cargo": {"ice": 30}, "capacity": 100, "reserved": 10} and me["free"] == 60
    assert (await world.got("system/A", "ledger"))[-1]["body"]["reserved"] == 10
    # a retry with the same ref: the same order, nothing placed twice
    retry = await world.order(price=31, quantity=99, ttl=1, ref="my-buy")  # other fields: ignored
    assert retry.status == 200 and retry.body["order"]["id"] == order["id"]
    assert len(await world.got("market/core", "place")) == 1

    fill = {"order": order["id"], "trade": 1, "side": "buy", "good": "ice", "price": 25, "quantity": 4, "fee": 2,
            "remaining": 6, "time": 0}
    await world.post("market/core", "settle", fill, key="settle:core:1:buy")
    await world.post("market/core", "settle", fill, key="settle:core:1:buy")
    me = await world.me()
    assert view(me) == {"credits": 720, "cargo": {"ice": 34}, "capacity": 100, "reserved": 6}
    await world.post("market/core", "closed", {"order": order["id"], "remaining": 6, "reason": "expired"},
                     key=f"closed:{order['id']}")
    me = await world.me()
    assert view(me) == {"credits": 900, "cargo": {"ice": 34}, "capacity": 100, "reserved": 0}
    assert me["orders"][0]["status"] == "expired" and me["orders"][0]["filled"] == 4

    sell = (await world.order(side="sell", price=50, quantity=20)).body["order"]
    me = await world.me()
    assert me["cargo"] == {"ice": 14} and me["reserved"] == 20 and me["free"] == 66
    await world.post("market/core", "settle", {"order": sell["id"], "trade": 2, "side": "sell", "good": "ice",
                                               "price": 50, "quantity": 20, "fee": fee(1000), "remaining": 0,
                                               "time": 0}, key="settle:core:2:sell")
    me = await world.me()
    assert view(me) == {"credits": 900 + 1000 - 20, "cargo": {"ice": 14}, "capacity": 100, "reserved": 0}
    assert me["totals"]["fees"] == 20 and me["orders"][0]["status"] == "filled"
    assert [o["id"] for o in me["orders"]] == [sell["id"], order["id"]]  # newest finished first


async def test_settle_and_closed_come_only_from_the_order_s_market(world):
    await world.checkout()
    order = (await world.order(price=10, quantity=5)).body["order"]
    before = await world.me()
    fill = {"order": order["id"], "trade": 1, "side": "buy", "good": "ice", "price": 10, "quantity": 5, "fee": 1,
            "remaining": 0}
    await world.post("market/mid", "settle", fill, key="x1")  # 409: not its market (not retried)
    await world.post("system/A", "settle", fill, key="x2")  # 403
    await world.post("market/core", "settle", {**fill, "quantity": 6}, key="x3")
    await world.post("market/core", "closed", {"order": order["id"], "remaining": 4, "reason": "cancelled"}, key="x4")
    await world.post("market/core", "closed", {"order": "nope", "remaining": 5, "reason": "cancelled"}, key="x5")
    assert await world.me() == before
    for sender, change, status, code in [
            ("market/core", {"price": 11}, 409, "bad_price"), ("market/mid", {}, 409, "mismatch"),
            ("market/core", {"quantity": 6}, 400, "bad_quantity"), ("market/core", {"fee": 51}, 400, "bad_fee"),
            ("market/core", {"order": "nope"}, 404, "unknown_order"), ("system/A", {}, 403, "forbidden")]:
        answer = await world.deliver(sender, "settle", {**fill, **change}, key="y")
        assert (answer.status, answer.body["code"]) == (status, code)
    answer = await world.call("system/A", "stow", {"goods": {"gold": 1}, "source": "mine"})
    assert answer.status == 400 and answer.body["code"] == "bad_key"  # a call has no key
    assert await world.me() == before


BAD_ORDERS = [
    ({"market": "outer"}, 409, "wrong_region"), ({"market": "atlantis"}, 400, "bad_market"),
    ({"good": "gold"}, 400, "unknown_good"), ({"side": "short"}, 400, "bad_side"), ({"kind": "stop"}, 400, "bad_kind"),
    ({"price": 0}, 400, "bad_price"), ({"price": 10**9}, 400, "bad_price"), ({"price": "10"}, 400, "bad_price"),
    ({"price": ...}, 400, "price_required"), ({"kind": "market", "price": ...}, 400, "price_required"),
    ({"quantity": -1}, 400, "bad_quantity"), ({"quantity": 20_000}, 400, "bad_quantity"),
    ({"quantity": 2.5}, 400, "bad_quantity"), ({"ttl": 59}, 400, "bad_ttl"), ({"ttl": 31 * 86400}, 400, "bad_ttl"),
    ({"ttl": "1h"}, 400, "bad_ttl"), ({"ref": "r" * 65}, 400, "bad_ref"), ({"ref": 7}, 400, "bad_ref"),
    ({"price": 1000, "quantity": 2}, 409, "credits"), ({"price": 1, "quantity": 101}, 409, "hold_full"),
    ({"side": "sell", "quantity": 11}, 409, "goods"), ({"side": "sell", "good": "exotics"}, 409, "goods"),
]
"""(order fields changed from a valid limit buy of 5 ice at 10, status, code); ``...``: omitted."""


async def test_bad_orders_get_their_error_and_change_nothing(world):
    await world.checkout()
    await world.post("system/A", "stow", {"goods": {"ice": 10}, "source": "mine", "from": "field:0"}, key="s1")
    before = await world.me()
    for body, status, code in BAD_ORDERS:
        await world.directory.clock.advance(1.0)  # not a flood
        answer = await world.order(**body)
        assert (answer.status, answer.body["code"]) == (status, code), (body, answer)
        assert isinstance(answer.body["error"], str) and answer.body["error"]
        assert await world.me() == before
    assert await world.got("market/core") == [] and len(await world.got("system/A", "ledger")) == 1
    bad_json = await world.directory.get("pilot", P)
    answer = await bad_json.request(HttpRequest("POST", "order", {}, b"[1, 2]"))
    assert (answer.status, answer.body["code"]) == (400, "bad_json") and await world.me() == before


async def test_more_than_fifty_open_orders_and_orders_in_transit_are_refused(world):
    checkout = await world.checkout()
    for i in range(50):
        await world.directory.clock.advance(0.1)
        assert (await world.order(price=1, quantity=1)).status == 201
    answer = await world.order(price=1, quantity=1)
    assert (answer.status, answer.body["code"]) == (409, "too_many_orders")
    depart = {"checkout": checkout["checkout"], "jump": "j1", "to": "B", "parsecs": 1.0, "wait": 30.0, "ship": None}
    assert (await world.call("system/A", "depart", depart)).status == 200
    before = await world.me()
    assert before["region"] is None and before["system"] is None
    for order in before["orders"][:1]:
        await world.post("market/core", "closed", {"order": order["id"], "remaining": 1, "reason": "cancelled"},
                         key=f"closed:{order['id']}")
    answer = await world.order(price=1, quantity=1)
    assert (answer.status, answer.body["code"]) == (409, "in_transit")
    cancel = await world.client("POST", "cancel", {"order": before["orders"][1]["id"]})  # cancels work anywhere
    assert cancel.status == 202


async def test_cancel_posts_once_and_unknown_or_finished_orders_are_refused(world):
    await world.checkout()
    order = (await world.order(price=10, quantity=5)).body["order"]
    for _ in range(2):
        answer = await world.client("POST", "cancel", {"order": order["id"]})
        assert answer.status == 202 and answer.body["order"]["cancelling"] is True
    assert [(c["body"], c["key"]) for c in await world.got("market/core", "cancel")] == [
        ({"order": order["id"], "owner": P}, f"cancel:{order['id']}")]
    unknown = await world.client("POST", "cancel", {"order": f"{P}:99"})
    assert (unknown.status, unknown.body["code"]) == (404, "unknown_order")
    await world.post("market/core", "closed", {"order": order["id"], "remaining": 5, "reason": "cancelled"},
                     key=f"closed:{order['id']}")
    assert (await world.me())["credits"] == 1000
    finished = await world.client("POST", "cancel", {"order": order["id"]})
    assert (finished.status, finished.body["code"]) == (409, "not_open")


async def test_flooding_is_refused_on_the_room_clock(world):
    await world.checkout()
    answers = [await world.order(price=1, quantity=1) for _ in range(ORDER_BURST)]
    assert [a.status for a in answers] == [201] * ORDER_BURST
    before = await world.me()
    flood = await world.order(price=1, quantity=1)
    assert flood.status == 429 and flood.body["code"] == "flood"
    assert flood.body["retry_after"] == pytest.approx(1 / ORDER_RATE)
    assert await world.me() == before and len(await world.got("market/core", "place")) == ORDER_BURST
    await world.directory.clock.advance(1 / ORDER_RATE)
    assert (await world.order(price=1, quantity=1)).status == 201


async def test_paths_are_kept_apart_and_a_pilot_that_never_flew_has_no_ledger(world):
    assert (await world.client("GET", "me")).status == 404
    assert (await world.order()).body["code"] == "no_pilot"
    await world.post("system/A", "bounty", {"credits": 5}, key="b0")  # 404 (not retried): nothing
    await world.checkout()
    assert (await world.client("POST", "stow", {"goods": {"ice": 1}, "source": "mine"})).status == 403
    assert (await world.call("system/A", "order", {"market": "core"})).status == 404
    assert (await world.call("market/core", "bounty", {"credits": 5})).status == 403
    assert (await world.me())["credits"] == 1000


async def test_a_restart_keeps_the_ledger_orders_and_applied_keys(world):
    await world.checkout()
    await world.post("system/A", "stow", {"goods": {"ice": 30}, "source": "mine", "from": "field:0"}, key="s1")
    order = (await world.order(side="sell", price=50, quantity=10, ref="r1")).body["order"]
    before = await world.me()
    await world.directory.runtime("pilot", P).crash()
    assert await world.me() == before
    await world.post("system/A", "stow", {"goods": {"ice": 30}, "source": "mine", "from": "field:0"}, key="s1")
    assert await world.me() == before
    retry = await world.order(side="sell", price=50, quantity=10, ref="r1")
    assert retry.status == 200 and retry.body["order"]["id"] == order["id"]
    second = (await world.order(price=1, quantity=1)).body["order"]
    assert second["id"] == f"{P}:2"
    handle = await world.directory.get("pilot", P)
    assert await handle.hibernate()
    after = await world.me()
    assert after["credits"] == 999 and after["cargo"] == {"ice": 20} and after["reserved"] == 11


async def test_the_http_routes_reach_only_the_token_s_own_pilot(world, gateway_factory):
    import aiohttp

    from starhold.gateway.auth import TokenService

    clock = world.directory.clock
    tokens = TokenService({"k1": b"k" * 32}, "k1", now=clock.now)
    base = await gateway_factory(world.directory, tokens=tokens)
    mine = {"Authorization": f"Bearer {tokens.issue(P, 'Ada', 'user')[0]}"}
    other = {"Authorization": f"Bearer {tokens.issue('u-00000000000000b2', 'Bo', 'user')[0]}"}
    async with aiohttp.ClientSession() as session:
        async def call(method, path, headers=None, **kw):
            async with session.request(method, base + path, headers=headers, **kw) as resp:
                return resp.status, await resp.json(), resp.headers

        assert (await call("GET", "/api/me"))[0] == 401
        assert (await call("GET", "/api/me", {"Authorization": "Bearer nope"}))[0] == 401
        assert (await call("POST", "/api/me/orders", json={"market": "core"}))[0] == 401
        assert (await call("DELETE", "/api/me/orders/x"))[0] == 401
        status, body, _ = await call("GET", "/api/me", mine)
        assert (status, body["code"]) == (404, "no_pilot")
        await world.checkout()
        status, me, _ = await call("GET", "/api/me", mine)
        assert status == 200 and me["player"] == P and me["credits"] == 1000
        assert (await call("GET", "/api/me", other))[1]["code"] == "no_pilot"  # its own pilot, not ours

        order = {"market": "core", "good": "ice", "side": "buy", "kind": "limit", "price": 10, "quantity": 5}
        status, placed, _ = await call("POST", "/api/me/orders", mine, json=order)
        assert status == 201 and placed["order"]["id"] == f"{P}:1"
        await world.settle()
        assert len(await world.got("market/core", "place")) == 1
        status, body, _ = await call("POST", "/api/me/orders", mine, json={**order, "good": "gold"})
        assert (status, body["code"]) == (400, "unknown_good")
        status, body, _ = await call("POST", "/api/me/orders", mine, data=b"{not json")
        assert (status, body["code"]) == (400, "bad_body")
        status, body, _ = await call("POST", "/api/me/orders", mine, json={**order, "ref": "x" * 4000})
        assert (status, body["code"]) == (413, "bad_body")
        status, body, _ = await call("DELETE", f"/api/me/orders/{P}:1", other)
        assert status == 404  # another player cannot cancel it
        status, body, _ = await call("DELETE", f"/api/me/orders/{P}:1", mine)
        assert status == 202 and body["order"]["cancelling"] is True
        status, body, _ = await call("DELETE", f"/api/me/orders/{P}:99", mine)
        assert (status, body["code"]) == (404, "unknown_order")
        for _ in range(ORDER_BURST):
            status, body, headers = await call("POST", "/api/me/orders", mine, json=order)
            if status == 429:
                break
        assert status == 429 and body["code"] == "flood" and headers["Retry-After"] == "1"
    me = await world.me()
    assert me["credits"] == 1000 - 10 * 5 * (len(me["orders"]))
