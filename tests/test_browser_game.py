"""End to end (issue 14): the built web client in Debian chromium, driven by Playwright,
against a real gateway and Ray rooms: accounts, chat, the galaxy map's route plotter and the
autopilot, and following the ship across a reload.

``test_account_chat_autopilot_and_reload`` is the issue's "done when":

1. A pilot registers an account in the login panel (``POST /api/auth/register``), logs out
   (back to a guest), fails a login with a wrong password (the panel says so), logs in and
   joins Sol with the account (``u-`` player id).
2. A second browser context (a guest) joins Sol; the system channel (``say``) and a direct
   message (``tell``, started by clicking the name in the who's-here list) reach the other
   page, rendered as text (markup is not interpreted).
3. From the galaxy map: a star three jumps from Sol (chosen with ``/api/route``) is selected,
   its route plotted (drawn, three legs listed) and "Engage autopilot" pressed: the page goes
   to the ship's system, sends ``route {to}`` and follows every ``jump`` (transit overlay,
   close 4111, fresh join of the next system) until the ship is in the destination.
4. A reload finds the ship there, and so does a page opened on the bare URL (``/``):
   ``/api/auth/me`` + ``/api/player/{id}`` lead it to the ship's system.

``test_follows_the_ship_with_a_scripted_room`` checks the client's side of the same protocol
without the server's: the page's WebSockets are routed to a script (Playwright
``route_web_socket``) playing a system room by docs/protocol.md §10 (welcome with station and lanes,
presence, chat history, ``jump`` then close 4111, ``elsewhere`` + error 20 + close 4110, combat
events), and ``/api/player`` is answered by the test.

Every wait polls ``window.starhold`` (client/web/src/testHook.js) with a timeout; nothing
sleeps. Needs the server side of issue 14 (docs/protocol.md §10: ``jump``/``route``/``say``/``tell``,
``chat``/``presence``, ``welcome.system.lanes``, ``/api/player/{id}``).
"""

from __future__ import annotations

import json
import re
import secrets
from collections import deque

import aiohttp
import msgpack
import pytest

from test_browser import browser, chromium_executable, open_page, wait_joined  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.ray, pytest.mark.browser]

ARRIVAL_TIMEOUT_MS = 300_000  # three systems crossed (~15 s of flight each) and three transits
# Resources the pages are expected to be refused (shown as console errors by chromium): the
# wrong password (401) and /api/player for a pilot who never flew (404).
EXPECTED_REFUSALS = ("status of 401", "status of 404")


def check_errors(errors) -> None:
    """``PageErrors.check`` minus the refusals this test provokes on purpose."""
    unexpected = [e for e in errors.errors
                  if not ("Failed to load resource" in e and any(s in e for s in EXPECTED_REFUSALS))]
    assert not unexpected, "errors in the browser console:\n" + "\n".join(unexpected)


async def three_jump_destination(url: str, start: str = "sol") -> tuple[str, list[str]]:
    """A system whose /api/route from ``start`` has exactly three jumps: candidates are the
    systems three lanes away (breadth first over /api/galaxy's lanes), nearest first."""
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/api/galaxy") as response:
            systems = {s["id"]: s for s in (await response.json())["systems"]}
        hops = {start: 0}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            if hops[here] == 3:
                continue
            for other in systems[here]["lanes"]:
                if other not in hops:
                    hops[other] = hops[here] + 1
                    queue.append(other)
        candidates = sorted((s for s, n in hops.items() if n == 3), key=lambda s: systems[s]["distance"])
        for candidate in candidates[:20]:
            async with session.get(url + "/api/route", params={"from": start, "to": candidate}) as response:
                route = await response.json()
            if response.status == 200 and len(route["systems"]) == 4:
                return candidate, route["systems"]
    pytest.fail(f"no system three jumps from {start}")


async def open_login(page) -> None:
    if not await page.is_visible("#loginForm"):
        await page.click("#loginOpen")
    await page.wait_for_selector("#loginForm", state="visible")


async def test_account_chat_autopilot_and_reload(ray_directory, gateway_factory, browser):  # noqa: F811
    url = await gateway_factory(ray_directory)
    username, password = f"ada_{secrets.token_hex(3)}", "correct horse battery"

    # 1. Register, log out, a wrong password, log in.
    page, errors = await open_page(browser, callsign="Ada")
    await page.goto(url + "/")
    await page.wait_for_selector("#account")
    assert await page.evaluate("window.starhold.account") is None  # no login before it is needed
    await open_login(page)
    await page.fill("#loginUsername", username)
    await page.fill("#loginPassword", password)
    await page.fill("#loginName", "Ada")
    await page.click("#registerSubmit")
    await page.wait_for_function("window.starhold.account?.kind === 'user'")
    account = await page.evaluate("window.starhold.account")
    assert account["player"].startswith("u-") and account["name"] == "Ada", account
    assert (await page.inner_text("#accountName")).strip() == "Ada"
    assert await page.is_hidden("#loginForm")

    await page.click("#logout")
    await page.wait_for_function("window.starhold.account === null && !!document.querySelector('#loginOpen:not([hidden])')")
    await open_login(page)
    await page.fill("#loginUsername", username)
    await page.fill("#loginPassword", "wrong password!")
    await page.click("#loginSubmit")
    await page.wait_for_function("window.starhold.loginError?.status === 401")
    assert "Wrong username or password" in await page.inner_text("#loginError")
    await page.fill("#loginPassword", password)
    await page.click("#loginSubmit")
    await page.wait_for_function("window.starhold.account?.kind === 'user'")
    assert await page.evaluate("window.starhold.account.player") == account["player"]

    # A new account has no ship (404 from /api/player): the star picker stays; pick Sol.
    await page.wait_for_function("document.querySelectorAll('#systemList [data-system-id]').length > 0")
    await page.click('[data-system-id="sol"]')
    hook = await wait_joined(page, "sol")
    assert hook["player"] == account["player"]
    assert hook["lanes"], "welcome.system.lanes missing: the server lacks issue 14's jump points"
    assert hook["station"] is not None, "welcome.system.station missing"
    assert await page.is_visible("#chat")

    # 2. Chat with a second pilot (a guest in another context).
    other, other_errors = await open_page(browser, callsign="Bob")
    await other.goto(url + "/#/system/sol")
    other_hook = await wait_joined(other, "sol")
    bob = other_hook["player"]
    await page.wait_for_function("p => window.starhold.presence.some(x => x.player === p)", arg=bob)
    await other.wait_for_function("p => window.starhold.presence.some(x => x.player === p)", arg=account["player"])

    text = "hello from Ada <b>bold</b>"
    await page.fill("#chatInput", text)
    await page.press("#chatInput", "Enter")
    await other.wait_for_function(
        "t => window.starhold.chat.some(m => m.channel === 'system' && m.text === t)", arg=text)
    message = await other.evaluate("t => window.starhold.chat.find(m => m.text === t)", text)
    assert message["from"] == account["player"] and message["name"] == "Ada", message
    assert text in await other.inner_text("#chatLog")  # shown as text...
    assert await other.query_selector("#chatLog b") is None  # ...never as markup
    await page.wait_for_function("t => window.starhold.chat.some(m => m.text === t)", arg=text)  # own echo

    await page.click(f'#presence [data-player="{bob}"]')  # who's here: click a name to DM
    assert "Bob" in await page.inner_text("#chatTarget")
    await page.fill("#chatInput", "psst, Bob")
    await page.press("#chatInput", "Enter")
    await other.wait_for_function(
        "p => window.starhold.chat.some(m => m.channel === 'dm' && m.text === 'psst, Bob' && m.from === p)",
        arg=account["player"])
    await page.wait_for_function(  # the sender gets its own DM echoed
        "p => window.starhold.chat.some(m => m.channel === 'dm' && m.text === 'psst, Bob' && m.to === p)", arg=bob)
    assert "psst, Bob" in await other.inner_text("#chatLog")

    # 3. Plot a three-jump route on the galaxy map and engage the autopilot.
    destination, systems = await three_jump_destination(url, "sol")
    await page.click("a.brand")
    await page.wait_for_function("window.starhold.view === 'galaxy' && !!document.querySelector('#systemList [data-system-id]')")
    await page.wait_for_function("window.starhold.shipSystem === 'sol'")
    assert await page.evaluate("id => window.starhold.selectStar(id)", destination)
    assert await page.is_visible("#starCard")
    await page.click("#plotRoute")
    await page.wait_for_function("n => window.starhold.plotted?.systems.length === n", arg=len(systems))
    assert await page.evaluate("window.starhold.plotted.systems") == systems
    assert await page.locator("#routeLegs li").count() == 3
    await page.wait_for_selector("#engageRoute:not([disabled])")
    transits_before = await page.evaluate("window.starhold.transits")
    await page.click("#engageRoute")

    # Back in Sol, the room confirms the route ...
    await page.wait_for_function("s => window.starhold.route?.systems.join() === s.join()", arg=systems)
    # ... and the ship jumps three times; the page follows it to the destination.
    await page.wait_for_function(
        "([id, n]) => { const s = window.starhold; return s.view === 'system' && s.systemId === id"
        " && s.status === 'joined' && s.transits >= n && !!s.ships[s.shipId]; }",
        arg=[destination, transits_before + 3], timeout=ARRIVAL_TIMEOUT_MS)
    arrived = await page.evaluate("window.starhold")
    assert page.url.endswith(f"#/system/{destination}"), page.url
    assert arrived["player"] == account["player"]
    assert arrived["lastJump"]["to"] == destination, arrived["lastJump"]
    assert arrived["transit"] is None

    # 4. A reload finds the ship in the same system; so does a page opened without a system.
    await page.reload()
    hook = await wait_joined(page, destination)
    assert hook["player"] == account["player"]
    await page.goto(url + "/")
    hook = await wait_joined(page, destination)
    assert page.url.endswith(f"#/system/{destination}"), page.url
    assert hook["player"] == account["player"]

    check_errors(errors)
    check_errors(other_errors)


# ---- a scripted system room (client side only) -----------------------------------------------

def _pack(message) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


class ScriptedRooms:
    """Plays system rooms on the page's WebSockets: ``received[system]`` lists the messages
    each got; a ``jump`` is answered with ``jump`` + close 4111; a join in a system listed in
    ``elsewhere`` with ``elsewhere`` + error 20 + close 4110."""

    SHIP, PIRATE, PLAYER = 17, 1000001, "g-00000000000000aa"

    def __init__(self, lanes: list[dict]):
        self.lanes = lanes
        self.received: dict[str, list] = {}
        self.sockets: dict[str, object] = {}
        self.elsewhere: dict[str, dict] = {}
        self.tick = 100

    def frame(self, events=()) -> bytes:
        self.tick += 1
        rows = [[self.SHIP, 150.0, 0.0, 1], [self.PIRATE, 200.0, 30.0, 32]]
        return _pack(["frame", self.tick, {
            "tick": self.tick, "ack": 1, "base": None, "time": self.tick / 10, "ships": rows, "removed": [],
            "names": [[self.SHIP, "Ada"], [self.PIRATE, "Red Corsair 1"]],
            "hp": [[self.SHIP, 200, 200], [self.PIRATE, 0, 120]], "events": list(events)}])

    async def handle(self, ws) -> None:
        system = re.search(r"/api/systems/([^/?]+)/ws", ws.url).group(1)
        self.received.setdefault(system, [])
        self.sockets[system] = ws

        async def on_message(data) -> None:
            message = msgpack.unpackb(data, raw=False)
            self.received[system].append(message)
            kind, seq, payload = message
            if kind == "ping":
                ws.send(_pack(["pong", seq, {"time": 0}]))
            elif kind == "join" and system in self.elsewhere:
                ws.send(_pack(["elsewhere", seq, self.elsewhere[system]]))
                ws.send(_pack(["error", seq, {"code": 20, "message": "your ship is elsewhere"}]))
                await ws.close(code=4110, reason="elsewhere")
            elif kind == "join":
                ws.send(_pack(["welcome", seq, {
                    "ship": self.SHIP, "player": self.PLAYER, "name": "Ada", "seat": f"seat-{system}",
                    "seat_hold": 30.0, "resumed": False, "ack": seq, "tick": self.tick, "time": self.tick / 10,
                    "tick_rate": 10, "world_limit": 1000.0,
                    "system": {"id": system, "name": system, "color": "#ffcc88", "star_radius": 40.0, "planets": [],
                               "exclusion_radius": 70.0, "asteroids": [],
                               "station": {"x": -300.0, "y": 200.0, "radius": 60.0}, "lanes": self.lanes}}]))
                for _ in range(3):  # keyframes (wait_joined wants a few frames)
                    ws.send(self.frame())
                ws.send(_pack(["presence", 0, {"system": system, "pilots": [
                    {"player": self.PLAYER, "name": "Ada", "ship": self.SHIP, "status": "online", "combat": False},
                    {"player": "u-00000000000000bb", "name": "<i>Bob</i>", "ship": 18, "status": "docked",
                     "combat": True}]}]))
                ws.send(_pack(["chat", 0, {"id": 1, "channel": "system", "from": "u-00000000000000bb",
                                            "name": "<i>Bob</i>", "to": None, "text": "<b>hi</b> all", "time": 1.0,
                                            "history": True}]))
            elif kind == "jump":
                to = payload["to"]
                ws.send(_pack(["jump", 0, {"jump": 1, "from": system, "to": to, "parsecs": 1.3, "wait": 1.5,
                                           "arrive": 99.0, "route": []}]))
                await ws.close(code=4111, reason="jumped")
            elif kind == "say":
                ws.send(_pack(["chat", 0, {"id": 2, "channel": "system", "from": self.PLAYER, "name": "Ada",
                                            "to": None, "text": payload["text"], "time": 2.0, "history": False}]))

        ws.on_message(on_message)


async def test_follows_the_ship_with_a_scripted_room(ray_directory, gateway_factory, browser):  # noqa: F811
    url = await gateway_factory(ray_directory)
    async with aiohttp.ClientSession() as session, session.get(url + "/api/galaxy") as response:
        systems = {s["id"]: s for s in (await response.json())["systems"]}
    first, second = systems["sol"]["lanes"][:2]
    lanes = [{"id": s, "name": systems[s]["name"], "parsecs": 1.3, "x": 850.0 * (1 - 2 * i), "y": 0.0}
             for i, s in enumerate((first, second))]
    rooms = ScriptedRooms(lanes)
    player = {"system": first}
    page, errors = await open_page(browser, callsign="Ada")
    await page.route_web_socket(re.compile(r"/api/systems/[^/]+/ws"), rooms.handle)
    await page.route(re.compile(r"/api/player/"), lambda route: route.fulfill(
        status=200, content_type="application/json",
        body=json.dumps({"player": rooms.PLAYER, "name": "Ada", "system": player["system"], "transit": None,
                         "hull": "scout", "hp": 200, "max_hp": 200, "online": False})))

    # Welcome: station and jump points drawn, presence and chat history shown as text.
    await page.goto(url + "/#/system/sol")
    hook = await wait_joined(page, "sol")
    assert [lane["id"] for lane in hook["lanes"]] == [first, second]
    assert hook["station"] == {"x": -300.0, "y": 200.0, "radius": 60.0}
    assert [p["status"] for p in hook["presence"]] == ["online", "docked"]
    assert await page.inner_text("#chatLog") == "<i>Bob</i>: <b>hi</b> all"
    assert await page.query_selector("#chatLog b, #chatLog i, #presence i") is None
    assert await page.is_visible("#presence .pilot-combat")
    await page.fill("#chatInput", "  o7  ")
    await page.press("#chatInput", "Enter")
    await page.wait_for_function("window.starhold.chat.some(m => m.text === 'o7')")
    assert ["say", rooms.received["sol"][-1][1], {"text": "o7"}] == rooms.received["sol"][-1]

    # Combat events: a shot and an explosion drawn.
    rooms.sockets["sol"].send(rooms.frame(events=[[0, rooms.SHIP, rooms.PIRATE, 21], [1, rooms.PIRATE, -1, 0]]))
    await page.wait_for_function("window.starhold.shots >= 1 && window.starhold.explosions >= 1")

    # A move_to the room never acknowledges, then a jump: transit overlay, close 4111 (no
    # reconnection, no error), a fresh join of the lane's system, and no move_to resent there.
    await page.evaluate("window.starhold.moveTo(400, 400)")
    await page.evaluate("id => window.starhold.jump(id)", first)
    await page.wait_for_function("id => window.starhold.transit?.to === id", arg=first)
    assert await page.is_visible("#transit")
    assert await page.evaluate("window.starhold.status") == "moved"
    hook = await wait_joined(page, first)
    assert page.url.endswith(f"#/system/{first}")
    assert await page.is_hidden("#transit")
    assert hook["transit"] is None and hook["lastError"] is None and hook["reconnects"] == 0
    join = rooms.received[first][0]
    assert join[0] == "join" and "resume" not in join[2], join
    assert not [m for m in rooms.received[first] if m[0] == "move_to"], rooms.received[first]
    assert [c["code"] for c in await page.evaluate("window.starhold.closes")] == []  # a new view

    # A system the ship is not in: elsewhere + error 20 + close 4110 -> back to the ship.
    rooms.elsewhere[second] = {"system": first, "transit": None}
    await page.goto(url + f"/#/system/{second}")
    await page.wait_for_function("id => window.starhold.elsewhere?.system === id || window.starhold.systemId === id",
                                 arg=first)
    hook = await wait_joined(page, first)
    assert hook["lastError"] is None

    # A page opened without a system follows the ship (/api/player).
    await page.goto(url + "/")
    hook = await wait_joined(page, first)
    assert page.url.endswith(f"#/system/{first}")
    check_errors(errors)
