"""End to end: the built web client (client/web/dist) in Debian chromium, driven by Playwright,
against a real gateway backed by real Ray room actors.

- ``test_galaxy_list_join_and_render``: the page loads, the galaxy list has every system
  (~950 ``[data-system-id]`` links, Sol among them), clicking Sol joins Sol, and the canvas
  shows a rendered scene (screenshot decoded and checked for content).
- ``test_ships_move_both_ways``: a Python bot's ship moves and the page sees it; a click on the
  system plane sends ``move_to``, the page's ship moves, and the bot sees it move.

Both tests collect the page's console errors and uncaught exceptions and fail on any.

Needs chromium (``/usr/bin/chromium`` or ``$STARHOLD_CHROMIUM``), Python Playwright and the
built client (``npm --prefix client/web run build``): without them the tests are skipped,
unless ``CI=true``, where a missing piece is a failure.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from starhold.client import StarholdClient
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


async def open_page(browser):
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page, PageErrors(page)


async def wait_joined(page, system_id: str = "sol") -> dict:
    """Wait until the page has joined ``system_id`` and received a few frames; the hook."""
    await page.wait_for_function(
        "id => { const s = window.starhold; return s && s.view === 'system' && s.status === 'joined'"
        " && s.systemId === id && s.shipId != null && s.frames >= 3 && s.ships[s.shipId]; }",
        arg=system_id,
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

    await page.click('[data-system-id="sol"]')
    hook = await wait_joined(page, "sol")
    assert page.url.endswith("#/system/sol")
    assert hook["systemName"] == "Sol"
    assert isinstance(hook["shipId"], int)
    assert str(hook["shipId"]) in hook["ships"]
    assert hook["playerKey"]

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


async def test_ships_move_both_ways(ray_directory, gateway_factory, browser):
    url = await gateway_factory(ray_directory)
    page, errors = await open_page(browser)
    await page.goto(url + "/#/system/sol")
    hook = await wait_joined(page, "sol")
    own_id = hook["shipId"]

    async with StarholdClient(url, "Sol", name="bot") as bot:
        await bot.join()
        bot_id = bot.ship_id
        assert bot_id != own_id
        assert own_id in bot.ships  # the browser's ship is in the bot's snapshot

        # 1. The bot flies far away; the page sees its ship leave the first seen position.
        await page.wait_for_function("id => !!window.starhold.ships[id]", arg=bot_id)
        first = await page.evaluate("id => window.starhold.ships[id]", bot_id)
        assert first["name"] == "bot"
        seq = await bot.move_to(-900.0, 900.0)
        await bot.wait_for(lambda c: c.ack >= seq)
        seen = await ship_moved(page, bot_id, first["x"], first["y"], min_distance=5.0)
        # It flies toward (-900, 900): x decreases, y increases.
        assert seen["x"] < first["x"] and seen["y"] > first["y"], (first, seen)

        # 2. A click on the plane: the page sends move_to, the room acks it, the page's ship
        # moves and the bot sees it move. The camera looks at the star from -y (screen right is
        # +x) and the system panel covers the left: click right of the centre, a few hundred
        # units east of the star, while new ships spawn 150 units from it.
        own = await page.evaluate("id => window.starhold.ships[id]", own_id)
        assert own["x"] < 200, own
        before = await page.evaluate("({ack: window.starhold.ack, seq: window.starhold.seq})")
        box = await page.locator("#renderCanvas").bounding_box()
        click = (box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.55)
        hit = await page.evaluate("([x, y]) => document.elementFromPoint(x, y)?.id", list(click))
        assert hit == "renderCanvas", f"the click point {click} is covered by an overlay ({hit!r})"
        await page.mouse.click(*click)

        await page.wait_for_function("n => window.starhold.seq > n", arg=before["seq"])
        sent = await page.evaluate("window.starhold.seq")
        await page.wait_for_function("n => window.starhold.ack >= n", arg=sent)
        assert sent > before["seq"] and await page.evaluate("window.starhold.ack") > before["ack"]
        moved = await ship_moved(page, own_id, own["x"], own["y"], min_distance=5.0)
        assert moved["x"] > own["x"], (own, moved)
        assert moved["flags"] & 2, moved  # still on its way (hundreds of units at 50 units/s)

        # The bot sees the browser's ship move the same way.
        await bot.wait_for(
            lambda c: own_id in c.ships and math.hypot(c.ships[own_id][1] - own["x"], c.ships[own_id][2] - own["y"]) >= 5.0,
            timeout=TIMEOUT_MS / 1000,
        )
        row = bot.ships[own_id]
        assert row[1] > own["x"], (own, row)
        assert row[3] & 1  # online
        assert not bot.errors

    assert await page.evaluate("window.starhold.lastError") is None
    errors.check()
