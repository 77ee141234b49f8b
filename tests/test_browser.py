"""End to end: the built web client (client/web/dist) in Debian chromium, driven by Playwright,
against a real gateway backed by real Ray room actors (protocol v2: guest tokens, seats,
keyframes and deltas).

- ``test_galaxy_list_join_and_render``: the page loads, the galaxy list has every system
  (~950 ``[data-system-id]`` links, Sol among them), clicking Sol logs in as a guest
  (``POST /api/auth/guest``, token kept in ``localStorage``) and joins Sol, and the canvas
  shows a rendered scene (screenshot decoded and checked for content).
- ``test_two_pages_see_each_other_move``: two pages (two browser contexts: two guests) join
  Sol; a click on the first page's system plane sends ``move_to``, its ship moves and the
  second page sees it move under its callsign; the second moves through its test hook and the
  first sees that.
- ``test_reconnects_and_resumes_seat``: the gateway drops the page's socket (close 1001); the
  page shows "reconnecting in Ns", queues a command issued meanwhile, reconnects with backoff,
  resumes its seat (same ship, ``welcome.resumed``) and flushes the queued command.
- ``test_rejected_token_gets_a_new_guest_login``: a stored token the gateway refuses (close
  4001) is replaced by a new guest login and the page joins. The page's first close is that
  4001 (its close history: a slow first join on a busy machine no longer drops the socket,
  see ``JOIN_PING_MS`` in client/web/src/net.js, and would not hide the 4001 anyway).

Every test collects the page's console errors and uncaught exceptions and fails on any.

Needs chromium (``/usr/bin/chromium`` or ``$STARHOLD_CHROMIUM``), Python Playwright and the
built client (``npm --prefix client/web run build``): without them the tests are skipped,
unless ``CI=true``, where a missing piece is a failure.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from starhold.testing import chromium_path

pytestmark = [pytest.mark.ray, pytest.mark.browser]

WEB_DIST = Path(__file__).resolve().parent.parent / "client" / "web" / "dist"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1024, "height": 640}
TIMEOUT_MS = 30_000  # generous: the first join wakes a Ray actor


def _missing(what: str) -> None:
    """Skip, or fail under CI=true, because ``what`` is not available."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (required when CI=true)", pytrace=False)
    pytest.skip(what)


# ---- PNG decoding (Pillow when installed, else zlib + struct) --------------------------------

def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """``(width, height, pixels)`` of an 8-bit RGB or RGBA PNG, pixels as RGB tuples."""
    try:
        import io

        from PIL import Image
    except ImportError:
        pass
    else:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        return image.width, image.height, list(image.getdata())

    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 3 if colour_type == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    prev = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for row_index in range(height):
        start = row_index * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, prev))
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                upper_left = prev[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + _paeth(left, prev[i], upper_left)) & 0xFF
        pixels.extend(zip(row[0::bpp], row[1::bpp], row[2::bpp]))
        prev = row
    return width, height, pixels


# ---- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="session", autouse=True)
def chromium_executable() -> str:
    """Chromium, the built client and Playwright, checked before Ray starts (fast skip)."""
    executable = chromium_path()
    if executable is None:
        _missing("chromium not found (/usr/bin/chromium or $STARHOLD_CHROMIUM)")
    if not (WEB_DIST / "index.html").exists():
        _missing(f"web client not built ({WEB_DIST / 'index.html'} missing): npm --prefix client/web run build")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _missing("Python playwright is not installed")
    return executable


@pytest_asyncio.fixture
async def browser(chromium_executable):
    """Headless chromium launched through Playwright, one per test (launching takes well under
    a second). Playwright objects belong to the event loop that made them and the gateway
    fixtures are function-scoped, so a module-scoped browser would live in another loop."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_executable, headless=True,
                                                   args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class PageErrors:
    """Console messages of type error and uncaught page exceptions."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, msg) -> None:
        if msg.type == "error":
            self.errors.append(f"console.error: {msg.text} ({msg.location.get('url', '')})")

    def check(self) -> None:
        assert not self.errors, "errors in the browser console:\n" + "\n".join(self.errors)


async def open_page(browser, callsign: str | None = None, init_script: str | None = None):
    """A page in a context of its own (its own localStorage: its own guest). ``callsign`` is
    stored as the chosen display name before the client's scripts run."""
    context = await browser.new_context(viewport=VIEWPORT)
    if callsign is not None:
        await context.add_init_script(
            f"localStorage.setItem('starhold.name', {json.dumps(callsign)});"
            " localStorage.setItem('starhold.nameChosen', '1');")
    if init_script is not None:
        await context.add_init_script(init_script)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page, PageErrors(page)


async def wait_joined(page, system_id: str = "sol", reconnects: int = 0) -> dict:
    """Wait until the page has joined ``system_id`` (after ``reconnects`` reconnections) and
    applied a few frames showing its own ship; returns the hook."""
    await page.wait_for_function(
        "([id, n]) => { const s = window.starhold; return s && s.view === 'system' && s.status === 'joined'"
        " && s.connection === 'connected' && s.systemId === id && s.shipId != null && s.reconnects >= n"
        " && s.frames >= 3 && !!s.ships[s.shipId]; }",
        arg=[system_id, reconnects],
    )
    return await page.evaluate("window.starhold")


async def ship_moved(page, ship_id: int, x: float, y: float, min_distance: float = 2.0) -> dict:
    """Wait until the page's latest frame shows ``ship_id`` at least ``min_distance`` away
    from ``(x, y)``; returns its row."""
    await page.wait_for_function(
        "([id, x, y, d]) => { const s = window.starhold.ships[id];"
        " return !!s && Math.hypot(s.x - x, s.y - y) >= d; }",
        arg=[ship_id, x, y, min_distance],
    )
    return await page.evaluate("id => window.starhold.ships[id]", ship_id)


async def stored_auth(page) -> dict | None:
    raw = await page.evaluate("localStorage.getItem('starhold.auth')")
    return json.loads(raw) if raw else None


def canvas_stats(png: bytes) -> dict:
    width, height, pixels = decode_png(png)
    counts = Counter(pixels)
    background, _ = counts.most_common(1)[0]
    lit = sum(n for colour, n in counts.items() if max(abs(c - b) for c, b in zip(colour, background)) > 24)
    bright = sum(n for colour, n in counts.items() if max(colour) >= 160)
    return {"width": width, "height": height, "colours": len(counts), "background": background,
            "lit_fraction": lit / len(pixels), "bright_pixels": bright}


# ---- tests ------------------------------------------------------------------------------------

async def test_galaxy_list_join_and_render(ray_directory, gateway_factory, browser):
    url = await gateway_factory(ray_directory)
    async with aiohttp.ClientSession() as session, session.get(url + "/api/galaxy") as response:
        systems = (await response.json())["systems"]
    assert 900 <= len(systems) <= 1000

    page, errors = await open_page(browser)
    await page.goto(url + "/")

    # The side list: one link per system of /api/galaxy, Sol first (sorted by distance).
    await page.wait_for_function(
        "n => document.querySelectorAll('#systemList [data-system-id]').length === n", arg=len(systems))
    ids = await page.eval_on_selector_all("#systemList [data-system-id]", "els => els.map(e => e.dataset.systemId)")
    assert len(ids) == len(set(ids)) == len(systems)
    assert set(ids) == {s["id"] for s in systems}
    assert ids[0] == "sol"
    assert (await page.inner_text('[data-system-id="sol"] .name')).strip() == "Sol"
    assert await page.evaluate("window.starhold.view") == "galaxy"
    # A first visit asks for a callsign (a generated one until the player picks one).
    assert await page.is_visible(".callsign-hint")
    callsign = await page.input_value("#callsign")
    assert callsign.startswith("Pilot-")
    assert await stored_auth(page) is None  # no login before it is needed

    await page.click('[data-system-id="sol"]')
    hook = await wait_joined(page, "sol")
    assert page.url.endswith("#/system/sol")
    assert hook["systemName"] == "Sol"
    assert isinstance(hook["shipId"], int)
    assert str(hook["shipId"]) in hook["ships"]
    assert hook["ships"][str(hook["shipId"])]["name"] == callsign
    assert hook["playerName"] == callsign
    assert hook["shipCount"] >= 1 and hook["keyframes"] >= 1
    assert hook["seat"] and hook["resumed"] is False
    # The welcome's obstacles are drawn (§9), and the HUD says how to attack.
    assert hook["asteroids"] >= 1 and hook["exclusionRadius"] > 0, hook
    assert "attack" in (await page.inner_text("#controlsHint")).lower()
    # The guest login: the token answer is kept in localStorage and names this player.
    auth = await stored_auth(page)
    assert auth and auth["kind"] == "guest" and auth["token"]
    assert auth["player"] == hook["player"] and hook["player"].startswith("g-")
    assert (await page.get_attribute("#status", "data-connection")) == "connected"
    assert (await page.inner_text("#status")).strip() == "connected"

    # The canvas shows the scene: hide the HTML overlays (HUD, labels) so that only WebGL
    # output is in the screenshot, then look at its pixels.
    await page.wait_for_function("window.starhold.frames >= 10")
    style = await page.add_style_tag(content="#hud, #labels, #toast { visibility: hidden !important; }")
    png = await page.locator("#renderCanvas").screenshot()
    await style.evaluate("node => node.remove()")
    stats = canvas_stats(png)
    assert (stats["width"], stats["height"]) == (VIEWPORT["width"], VIEWPORT["height"]), stats
    # A black, cleared-only or failed canvas is one colour; the scene has a grid, orbits,
    # planets, a star with a halo and a ship.
    assert stats["colours"] >= 200, stats
    assert stats["lit_fraction"] >= 0.01, stats
    assert stats["bright_pixels"] >= 500, stats  # the star's disc alone is larger

    errors.check()


async def test_two_pages_see_each_other_move(ray_directory, gateway_factory, browser):
    url = await gateway_factory(ray_directory)
    page, errors = await open_page(browser, callsign="Ada")
    await page.goto(url + "/#/system/sol")
    hook = await wait_joined(page, "sol")
    own_id = hook["shipId"]

    other, other_errors = await open_page(browser, callsign="Bob")
    await other.goto(url + "/#/system/sol")
    other_hook = await wait_joined(other, "sol")
    other_id = other_hook["shipId"]
    assert other_id != own_id
    assert other_hook["player"] != hook["player"]  # two guests
    # Each page knows the other's ship and name (keyframe or deltas with names).
    await page.wait_for_function("id => window.starhold.ships[id]?.name === 'Bob'", arg=other_id)
    await other.wait_for_function("id => window.starhold.ships[id]?.name === 'Ada'", arg=own_id)

    # 1. A click on the first page's plane: it sends move_to, the room acks it, its ship moves
    # and the other page sees it move the same way. The camera looks at the star from -y
    # (screen right is +x) and the system panel covers the left: click right of the centre,
    # a few hundred units east of the star, while new ships spawn 150 units from it.
    own = await page.evaluate("id => window.starhold.ships[id]", own_id)
    assert own["x"] < 200, own
    seen_before = await other.evaluate("id => window.starhold.ships[id]", own_id)
    before = await page.evaluate("({ack: window.starhold.ack, seq: window.starhold.seq})")
    box = await page.locator("#renderCanvas").bounding_box()
    click = (box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.55)
    hit = await page.evaluate("([x, y]) => document.elementFromPoint(x, y)?.id", list(click))
    assert hit == "renderCanvas", f"the click point {click} is covered by an overlay ({hit!r})"
    await page.mouse.click(*click)

    await page.wait_for_function("n => window.starhold.seq > n", arg=before["seq"])
    sent = await page.evaluate("window.starhold.seq")
    await page.wait_for_function("n => window.starhold.ack >= n", arg=sent)
    assert await page.evaluate("window.starhold.pending") == 0
    moved = await ship_moved(page, own_id, own["x"], own["y"], min_distance=5.0)
    assert moved["x"] > own["x"], (own, moved)
    # Still on its way (hundreds of units at 50 units/s), or, on a machine slow enough that the
    # waits above took seconds, already far along: either way the move was applied.
    assert moved["flags"] & 2 or math.hypot(moved["x"] - own["x"], moved["y"] - own["y"]) > 100, (own, moved)
    predicted = await page.evaluate("window.starhold.predicted")
    assert predicted is not None and predicted["x"] > own["x"], predicted

    seen = await ship_moved(other, own_id, seen_before["x"], seen_before["y"], min_distance=5.0)
    assert seen["x"] > seen_before["x"], (seen_before, seen)
    assert seen["flags"] & 1 and seen["name"] == "Ada", seen  # online

    # 2. The other page flies toward (-900, 900); the first page sees x decrease, y increase.
    first = await page.evaluate("id => window.starhold.ships[id]", other_id)
    seq = await other.evaluate("window.starhold.moveTo(-900, 900)")
    assert isinstance(seq, int)
    await other.wait_for_function("n => window.starhold.ack >= n", arg=seq)
    seen = await ship_moved(page, other_id, first["x"], first["y"], min_distance=5.0)
    assert seen["x"] < first["x"] and seen["y"] > first["y"], (first, seen)

    # 3. attack goes through the same command path: acknowledged; pirates (flag 32) and hp
    # come with the frames; attacking your own ship is error 14, shown in the toast.
    hp = await page.evaluate("id => window.starhold.ships[id]", own_id)
    assert hp.get("maxHp", 0) > 0, hp
    pirates = await page.evaluate(
        "Object.entries(window.starhold.ships).filter(([, s]) => s.flags & 32).map(([id]) => +id)")
    assert pirates, "no pirate (flag 32) in sol"
    seq = await page.evaluate("id => window.starhold.attack(id)", pirates[0])
    assert isinstance(seq, int)
    await page.wait_for_function("n => window.starhold.ack >= n", arg=seq)

    for p in (page, other):
        assert await p.evaluate("window.starhold.lastError") is None
    seq = await page.evaluate("id => window.starhold.attack(id)", own_id)
    await page.wait_for_function("n => window.starhold.lastError?.seq === n", arg=seq)
    assert await page.evaluate("window.starhold.lastError.code") == 14
    assert "Error 14" in await page.inner_text("#toast")
    errors.check()
    other_errors.check()


async def test_reconnects_and_resumes_seat(ray_directory, gateway_factory, browser):
    url = await gateway_factory(ray_directory)
    page, errors = await open_page(browser, callsign="Ada")
    await page.goto(url + "/#/system/sol")
    hook = await wait_joined(page, "sol")
    own_id, seat, player = hook["shipId"], hook["seat"], hook["player"]
    own = hook["ships"][str(own_id)]

    # The gateway drops every socket it holds (the page's) as if it were restarting (1001;
    # after a 4503 the page would come back within 0.5 s: client/web/test/net.test.js).
    from starhold.gateway.app import GATEWAY

    gateway = url.app[GATEWAY]
    assert len(gateway.sockets) == 1
    for sock in list(gateway.sockets):
        sock.close_soon(1001, "going away")

    # The page waits 1-5 s before reconnecting and says so; a command issued meanwhile is
    # queued, not lost. All is checked and the command issued inside the page, in the task
    # that first sees the status change, so the check cannot race the page's random backoff
    # even on a loaded machine (a round trip from here each time could).
    target = [own["x"] + 300.0, own["y"] - 200.0]
    seen = await page.evaluate("""([x, y]) => new Promise((resolve) => {
        const check = () => {
          const s = window.starhold, status = document.querySelector('#status');
          if (s.status !== 'reconnecting' || !status.innerText.includes('reconnecting in')) {
            setTimeout(check, 5);
            return;
          }
          const button = document.querySelector('button.reconnect');
          const visible = !!button && button.offsetParent !== null;
          const queued = s.moveTo(x, y);
          resolve({c: s.connection, close: s.lastClose, visible, queued, n: s.queued});
        };
        check();
    })""", target)
    assert seen["c"] == "reconnecting" and seen["close"]["code"] == 1001, seen
    assert seen["visible"] is True, seen
    assert seen["queued"] is None and seen["n"] == 1, seen

    # Back with the same seat: same ship, resumed, the queued command sent and applied.
    hook = await wait_joined(page, "sol", reconnects=1)
    assert hook["shipId"] == own_id
    assert hook["player"] == player
    assert hook["resumed"] is True
    assert hook["seat"] == seat
    assert (await page.inner_text("#status")).strip() == "connected"
    await page.wait_for_function("() => window.starhold.queued === 0 && window.starhold.pending === 0"
                                 " && window.starhold.ack >= window.starhold.seq")
    moved = await ship_moved(page, own_id, own["x"], own["y"], min_distance=5.0)
    assert moved["x"] > own["x"] and moved["y"] < own["y"], (own, moved)  # toward the target
    assert len(gateway.sockets) == 1

    assert await page.evaluate("window.starhold.lastError") is None
    errors.check()


async def test_rejected_token_gets_a_new_guest_login(ray_directory, gateway_factory, browser):
    url = await gateway_factory(ray_directory)
    bogus = {"token": "not-a-token", "expires": 4102444800, "player": "g-0000000000000000", "name": "Ada",
             "kind": "guest"}
    page, errors = await open_page(
        browser, callsign="Ada",
        init_script=f"if (!sessionStorage.getItem('seeded')) {{ sessionStorage.setItem('seeded', '1');"
                    f" localStorage.setItem('starhold.auth', {json.dumps(json.dumps(bogus))}); }}")
    await page.goto(url + "/#/system/sol")
    hook = await wait_joined(page, "sol")
    auth = await stored_auth(page)
    assert auth["token"] != bogus["token"] and auth["player"] == hook["player"] != bogus["player"]
    # The refusal was the first close; what came after it (the page's close history, not just
    # its last close, which a later drop would replace) led to the join.
    assert [c["code"] for c in hook["closes"]][:1] == [4001], hook["closes"]
    assert hook["lastError"]["code"] == 11  # the gateway said why before closing
    errors.check()
