"""The Python client's economy side, without a game server: ``scan``/``mine``/``loot`` on the
socket and the ``cargo``/``wrecks``/``scan`` messages kept in its state, and ``MarketClient``'s
requests and error handling. A tiny aiohttp app defined here plays the gateway with canned
answers: it checks what the client sends (envelopes, paths, methods, bearer token, JSON bodies)
and how the client reads what comes back; the rules themselves are the server's tests.
"""

from __future__ import annotations

import msgpack
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from starhold.client import MarketClient, StarholdClient, StarholdHTTPError
from starhold.client import economy as E

TOKEN = "tok-123"
CARGO = {"credits": 1000, "cargo": {"ferrite": 8}, "capacity": 100, "reserved": 0}
RESULT = {"target": "planet:3", "state": "done", "scan": "sol:1", "kind": "gas giant", "region": "core", "resources": {"helium3": 120},
          "lore": "Old beacons.", "fragments": [["planet:sol:3", "has_resource", "resource:helium3"]]}
WRECK = {"id": 7, "x": 10.0, "y": -5.0, "goods": {"platinum": 4}, "expires": 600.0}


def _env(type_: str, seq: int, payload) -> bytes:
    return msgpack.packb([type_, seq, payload])


def make_app(log: list) -> web.Application:
    """The fake gateway: a system socket that answers economy orders, and the HTTP routes."""

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        log.append(("ws", request.query.get("token")))
        async for msg in sock:
            if msg.type != WSMsgType.BINARY:
                continue
            type_, seq, payload = msgpack.unpackb(msg.data)
            log.append((type_, seq, payload))
            if type_ == "join":
                await sock.send_bytes(_env("welcome", seq, {
                    "ship": 5, "player": "g-1", "seat": "S1", "ack": seq, "tick": 1, "time": 0.1,
                    "system": {"id": "sol", "region": "core", "planets": []}}))
                await sock.send_bytes(_env("cargo", 0, CARGO))
            elif type_ == "scan":
                await sock.send_bytes(_env("scan", seq, {"target": payload["target"], "state": "started", "ends": 3.1}))
                await sock.send_bytes(_env("scan", 0, RESULT))
            elif type_ == "mine" and payload["target"]:
                target = payload["target"]
                await sock.send_bytes(_env("mine", seq, {"target": target, "state": "started"}))
                await sock.send_bytes(_env("mine", 0, {"target": target, "state": "mined", "goods": {"ferrite": 4}}))
                await sock.send_bytes(_env("cargo", 0, {**CARGO, "cargo": {"ferrite": 12}}))
            elif type_ == "mine":
                await sock.send_bytes(_env("mine", 0, {"target": "field:1", "state": "stopped", "reason": "stopped"}))
            elif type_ == "loot" and payload["wreck"] == 7:
                await sock.send_bytes(_env("loot", seq, {"wreck": 7, "goods": {"platinum": 4}}))
                await sock.send_bytes(_env("wrecks", 0, {"wrecks": [WRECK, {"id": "bad"}]}))
            elif type_ == "loot":
                await sock.send_bytes(_env("error", seq, {"code": E.ERR_TOO_FAR, "message": "wreck out of range"}))
        return sock

    async def http(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        log.append((request.method, request.path_qs, request.headers.get("Authorization"), body))
        path = request.path
        if request.method == "POST" and path == "/api/me/orders":
            if body["quantity"] > 10_000:
                return web.json_response({"error": "quantity must be 1-10000", "code": "bad_quantity"}, status=400)
            return web.json_response({"order": {"id": "o-1", **body, "state": "open"}}, status=201)
        if request.method == "DELETE":
            return web.Response(status=202)
        if path == "/api/me":
            return web.json_response({"player": "g-1", "credits": 1000, "orders": []})
        if path.endswith("/history"):
            return web.json_response({"good": "ferrite", "interval": 60, "buckets": [
                {"t": 0, "open": 1, "high": 2, "low": 1, "close": 2, "volume": 3, "trades": 1}]})
        if path == "/api/market/core/ferrite":
            return web.json_response({"good": "ferrite", "bids": [[9, 5]], "asks": [[11, 2]], "trades": []})
        if path == "/api/market/core":
            return web.json_response({"region": "core", "time": 5.0, "goods": {
                "ferrite": {"last": 10, "bid": 9, "ask": 11, "volume_24h": 7, "trades_24h": 2}}})
        if path == "/api/me/graph":
            return web.json_response({"fragments": [], "count": 0, "next": None})
        if path == "/api/discoveries":
            return web.Response(text="oops", status=503)
        return web.json_response({"error": "no such route"}, status=404)

    app = web.Application()
    app.router.add_get("/api/systems/{system}/ws", ws)
    app.router.add_route("*", "/api/{tail:.*}", http)
    return app


@pytest.fixture
async def server():
    log: list = []
    srv = TestServer(make_app(log), host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv, log
    finally:
        await srv.close()


async def test_scan_mine_loot_are_sent_and_their_answers_kept(server):
    srv, log = server
    async with StarholdClient.for_system(str(srv.make_url("")), "Sol", token=TOKEN, heartbeat=None) as client:
        assert client.cargo is None and client.credits is None
        await client.join()
        await client.wait_for(lambda c: c.cargo is not None, timeout=5)
        assert client.credits == 1000 and client.hold == {"ferrite": 8}

        seq = await client.scan(E.target("planet", 3))
        await client.wait_for(lambda c: c.last_scan is not None, timeout=5)
        assert client.last_scan == RESULT
        assert client.scan_results["planet:3"] == RESULT
        assert [s.get("state") for s in client.scans] == ["started", "done"]

        await client.mine("field:1")
        await client.wait_for(lambda c: c.hold.get("ferrite") == 12, timeout=5)
        assert client.mining == "field:1" and client.mined == {"ferrite": 4}
        await client.mine(None)
        await client.wait_for(lambda c: c.mining is None, timeout=5)
        assert [e["state"] for e in client.mine_events] == ["started", "mined", "stopped"]

        await client.loot(7)
        await client.wait_for(lambda c: c.wrecks, timeout=5)
        assert client.wrecks == {7: WRECK}  # the malformed wreck is dropped
        assert client.loots == [{"wreck": 7, "goods": {"platinum": 4}}]
        far_seq = await client.loot(8)
        await client.wait_for(lambda c: any(e["seq"] == far_seq for e in c.errors), timeout=5)
        assert client.errors[-1]["code"] == E.ERR_TOO_FAR

    sent = [(t, s, p) for t, s, p in (e for e in log if len(e) == 3)]
    assert log[0] == ("ws", TOKEN)
    assert [t for t, _, _ in sent] == ["join", "scan", "mine", "mine", "loot", "loot"]
    assert sent[1] == ("scan", seq, {"target": "planet:3"})
    assert [p for t, _, p in sent if t == "mine"] == [{"target": "field:1"}, {"target": None}]
    assert sent[-1] == ("loot", far_seq, {"wreck": 8})
    assert [s for _, s, _ in sent] == sorted(s for _, s, _ in sent)  # numbered like every input


async def test_economy_orders_are_queued_while_offline():
    client = StarholdClient("http://127.0.0.1:9", "Sol", token=TOKEN)  # never connected
    seqs = [await client.scan("field:0"), await client.mine("field:0"), await client.loot(3)]
    assert [e.type for e in client.outbox] == ["scan", "mine", "loot"]
    assert [e.seq for e in client.outbox] == seqs
    await client.close()


def test_target_strings():
    assert E.target("field", 2) == "field:2"
    assert E.target("anomaly", 0) == "anomaly:0"
    for kind, ident in (("ship", 1), ("planet", ""), ("field", "a b")):
        with pytest.raises(ValueError):
            E.target(kind, ident)


async def test_market_client_requests_and_answers(server):
    srv, log = server
    async with MarketClient(str(srv.make_url("")), TOKEN) as api:
        assert (await api.me())["credits"] == 1000
        placed = await api.place_order("core", "ferrite", "buy", "limit", 10, 5, ttl=3600, ref="r1")
        assert placed["order"]["id"] == "o-1"
        assert await api.cancel_order("o 1") is None
        assert (await api.market("core"))["goods"]["ferrite"]["last"] == 10
        assert (await api.book("core", "ferrite"))["bids"] == [[9, 5]]
        assert (await api.history("core", "ferrite", 60, limit=10))["buckets"][0]["volume"] == 3
        assert (await api.graph())["count"] == 0
        await api.graph(after=500, limit=100)
        with pytest.raises(ValueError):
            await api.history("core", "ferrite", 5)
        with pytest.raises(StarholdHTTPError) as refused:
            await api.place_order("core", "ferrite", "sell", "market", None, 10_001)
        assert refused.value.status == 400
        assert refused.value.body == {"error": "quantity must be 1-10000", "code": "bad_quantity"}
        with pytest.raises(StarholdHTTPError) as down:
            await api.discoveries()
        assert down.value.status == 503 and down.value.body == {"error": "oops"}

    calls = [e for e in log if len(e) == 4]
    assert [(m, p) for m, p, _, _ in calls] == [
        ("GET", "/api/me"),
        ("POST", "/api/me/orders"),
        ("DELETE", "/api/me/orders/o%201"),
        ("GET", "/api/market/core"),
        ("GET", "/api/market/core/ferrite"),
        ("GET", "/api/market/core/ferrite/history?interval=60&limit=10"),
        ("GET", "/api/me/graph"),
        ("GET", "/api/me/graph?after=500&limit=100"),
        ("POST", "/api/me/orders"),
        ("GET", "/api/discoveries"),
    ]
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth, _ in calls)
    assert calls[1][3] == {"market": "core", "good": "ferrite", "side": "buy", "kind": "limit", "price": 10,
                           "quantity": 5, "ttl": 3600, "ref": "r1"}
    assert calls[8][3] == {"market": "core", "good": "ferrite", "side": "sell", "kind": "market",
                           "quantity": 10_001}  # no floor: no price


async def test_market_api_shares_the_clients_token_and_session(server):
    srv, log = server
    client = StarholdClient.for_system(str(srv.make_url("")), "Sol", token=TOKEN, heartbeat=None)
    try:
        api = client.market_api()
        assert api.token == TOKEN and api._session is client._http()
        await api.me()
        await api.close()  # not its session: the client's stays open
        assert not client._http().closed
    finally:
        await client.close()
    assert log[-1][:3] == ("GET", "/api/me", f"Bearer {TOKEN}")
    with pytest.raises(RuntimeError):
        StarholdClient("http://127.0.0.1:9", "Sol").market_api()
