"""Navigation (rooms/system/navigation.py): move_to planned around the star's exclusion zone and the
asteroid fields, polyline flights in closed form across hibernation, targets in obstacles,
unreachable targets; the galaxy's jump routes (GET /api/route) against scipy's Dijkstra."""

import math

import aiohttp
import numpy as np
import pytest
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from starhold.rooms import protocol as P
from starhold.rooms.galaxy.catalogue import load_galaxy
from starhold._runtime.local_host import InProcessDirectory
from starhold.rooms.system.navigation import CELL_SIZE, NavGrid, asteroid_fields, exclusion_radius
from starhold.rooms.system.room import SPAWN_RADIUS
from test_combat_game import SYSTEM, Game

PEACEFUL = {"system": SYSTEM, "pirates": False, "pilots": False}  # one room: ships stay in it


@pytest.fixture
def game(room_directory, manual_clock):
    return Game(room_directory, manual_clock, params=PEACEFUL)


@pytest.fixture(scope="module")
def grid():
    return NavGrid.for_system(SYSTEM["id"], SYSTEM["star_radius"])


def blocked_at(grid, x, y):
    return bool(grid.blocked[grid.cell_of(x, y)])


def polyline_position(points, t):
    """Where a ship that left points[0] at time 0 is at time t along the polyline (the
    reference for the room's closed form)."""
    travel = P.SHIP_SPEED * t
    for a, b in zip(points, points[1:]):
        length = math.dist(a, b)
        if travel <= length:
            f = travel / length
            return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
        travel -= length
    return points[-1]


# ---- the grid ------------------------------------------------------------------------------------
def test_the_grid_blocks_the_star_and_the_asteroid_fields(grid):
    assert grid.blocked.shape == (200, 200) and CELL_SIZE == 10.0
    assert blocked_at(grid, 0.0, 0.0)
    r = exclusion_radius(SYSTEM["star_radius"])
    for angle in np.linspace(0, 2 * math.pi, 64, endpoint=False):
        assert blocked_at(grid, (r - 1) * math.cos(angle), (r - 1) * math.sin(angle))
        assert not blocked_at(grid, SPAWN_RADIUS * math.cos(angle), SPAWN_RADIUS * math.sin(angle))
    fields = asteroid_fields(SYSTEM["id"])
    assert fields == asteroid_fields(SYSTEM["id"]) and fields != asteroid_fields("hip-71683")
    for d in fields:
        assert blocked_at(grid, d["x"], d["y"]) and blocked_at(grid, d["x"] + d["radius"] * 0.99, d["y"])


def test_plan_goes_around_obstacles_and_never_enters_a_blocked_cell(grid):
    rng = np.random.default_rng(5)
    for _ in range(40):
        start = tuple(rng.uniform(-950, 950, 2))
        goal = tuple(rng.uniform(-950, 950, 2))
        if blocked_at(grid, *start):
            continue
        waypoints = grid.plan(start, goal)
        assert waypoints is not None
        points = [start, *waypoints]
        assert len(waypoints) <= 12
        for a, b in zip(points, points[1:]):
            for f in np.linspace(0, 1, int(math.dist(a, b)) + 2):
                assert not blocked_at(grid, a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f), (start, goal)
        if not blocked_at(grid, *goal):
            assert waypoints[-1] == goal


def test_an_enclosed_pocket_is_unreachable_unless_filled():
    ring = [(500 + 100 * math.cos(a), 500 + 100 * math.sin(a), 30.0) for a in np.linspace(0, 2 * math.pi, 40)]
    filled = NavGrid(ring)  # the default (every system's grid): the pocket counts as an obstacle
    assert filled.blocked[filled.cell_of(500.0, 500.0)]
    goal = filled.plan((0.0, 0.0), (500.0, 500.0))[-1]
    assert math.dist(goal, (500.0, 500.0)) > 100.0 and not filled.blocked[filled.cell_of(*goal)]
    grid = NavGrid(ring, fill_pockets=False)
    assert grid.plan((0.0, 0.0), (500.0, 500.0)) is None
    assert grid.plan((500.0, 500.0), (0.0, 0.0)) is None
    assert grid.plan((0.0, 0.0), (-300.0, 200.0)) == [(-300.0, 200.0)]


# ---- flights in the room ---------------------------------------------------------------------------
async def test_a_move_across_the_star_is_planned_around_the_exclusion_zone(game, grid, room_directory):
    ship = (await game.join("a"))["ship"]
    start = game.ship("a", ship)[:2]
    goal = (-2.0 * start[0], -2.0 * start[1])  # straight through the star
    await game.move("a", *goal)
    room = room_directory.runtime("system", "sol").room
    plan = room.ships[ship]
    assert plan["path"] and plan["dest"] == list(goal)  # several legs
    samples = []
    for _ in range(200):
        await game.advance(0.1, 0.1)
        samples.append(game.ship("a", ship))
        # the room's own closed form, between frames too
        x, y = room.sim.where(ship, game.clock.now() + 0.05)
        assert not blocked_at(grid, x, y)
        if not samples[-1][2] & P.SHIP_MOVING:
            break
    assert samples[-1][:2] == [P.quantize(goal[0]), P.quantize(goal[1])]
    radius = exclusion_radius(SYSTEM["star_radius"])
    assert all(not blocked_at(grid, x, y) and math.hypot(x, y) > radius for x, y, _ in samples)
    flown = sum(math.dist(a[:2], b[:2]) for a, b in zip([start, *samples], samples))
    assert flown > math.dist(start, goal) + 10.0  # a detour, not the straight line
    assert len(samples) * 0.1 == pytest.approx(flown / P.SHIP_SPEED, abs=0.25)  # at cruise speed all along


async def test_a_polyline_flight_continues_in_closed_form_while_the_room_sleeps(game, room_directory):
    ship = (await game.join("a"))["ship"]
    start = game.ship("a", ship)[:2]
    await game.move("a", -4.0 * start[0], -4.0 * start[1])  # around the star, 600 units out
    room = room_directory.runtime("system", "sol").room
    leg = room.ships[ship]
    points = [(leg["x0"], leg["y0"]), (leg["tx"], leg["ty"]), *map(tuple, leg["path"])]
    t0 = leg["t0"]
    await game.leave("a")  # the ship flies on, parked; the room falls asleep mid-flight
    await game.advance(11.0, 1.0)
    assert not await room_directory.is_active("system", "sol")
    total = sum(math.dist(a, b) for a, b in zip(points, points[1:])) / P.SHIP_SPEED
    assert total > 12.0
    await game.join("a2", player="p-a")  # wakes it, still mid-flight
    room = room_directory.runtime("system", "sol").room
    now = game.clock.now()
    assert room.sim.where(ship, now) == pytest.approx(polyline_position(points, now - t0), abs=1e-3)  # clock times ~1.8e9 s
    await game.advance(total)
    assert game.ship("a2", ship)[:2] == [P.quantize(points[-1][0]), P.quantize(points[-1][1])]


async def test_a_target_inside_an_obstacle_ends_at_the_nearest_free_cell(game, grid, room_directory):
    ship = (await game.join("a"))["ship"]
    await game.move("a", 0.0, 0.0)  # the star
    await game.advance(8.0)
    row = game.ship("a", ship)
    expected = grid.center(*grid.nearest_free(0.0, 0.0))
    assert row[:2] == [P.quantize(expected[0]), P.quantize(expected[1])] and not row[2] & P.SHIP_MOVING
    assert not blocked_at(grid, *row[:2])
    disc = asteroid_fields(SYSTEM["id"])[0]  # the middle of an asteroid disc
    await game.move("a", disc["x"], disc["y"])
    await game.advance(40.0, 1.0)
    row = game.ship("a", ship)
    expected = grid.center(*grid.nearest_free(disc["x"], disc["y"]))
    assert row[:2] == [P.quantize(expected[0]), P.quantize(expected[1])] and not blocked_at(grid, *row[:2])
    assert game.errors.get("a") is None


async def test_an_unreachable_target_is_an_error_and_the_ship_keeps_its_course(game, room_directory):
    ship = (await game.join("a"))["ship"]
    room = room_directory.runtime("system", "sol").room
    ring = [(500 + 100 * math.cos(a), 500 + 100 * math.sin(a), 30.0) for a in np.linspace(0, 2 * math.pi, 40)]
    room.sim.grid = NavGrid(ring, fill_pockets=False)  # a grid with an enclosed pocket around (500, 500)
    start = game.ship("a", ship)[:2]
    ok = await game.move("a", 1.5 * start[0], 1.5 * start[1])
    seq = await game.move("a", 500.0, 500.0)
    await game.advance(0.5)
    assert game.errors["a"] == [(seq, P.ERR_NO_PATH)]
    assert game.states["a"].ack == seq and ok < seq
    assert room.ships[ship]["dest"] == [1.5 * start[0], 1.5 * start[1]]


# ---- jump routes -----------------------------------------------------------------------------------
@pytest.fixture
async def url(gateway_factory, tmp_path):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    yield await gateway_factory(directory)
    await directory.close()


async def get(url, path):
    async with aiohttp.ClientSession() as session, session.get(url + path) as resp:
        return resp.status, await resp.json()


def scipy_distances(galaxy):
    """Dijkstra from Sol over the lanes (weights: parsecs), built from the galaxy's lanes."""
    order = {s.id: i for i, s in enumerate(galaxy.systems)}
    rows, cols, weights = [], [], []
    for s in galaxy.systems:
        for other in galaxy.lanes(s.id):
            rows.append(order[s.id])
            cols.append(order[other])
            weights.append(math.dist(s.position, galaxy.get(other).position))
    n = len(galaxy.systems)
    graph = csr_array((weights, (rows, cols)), shape=(n, n))
    return order, dijkstra(graph, directed=True, indices=order["sol"])


async def test_route_from_sol_follows_lanes_and_matches_dijkstra(url):
    galaxy = load_galaxy()
    order, distances = scipy_distances(galaxy)
    far = max(galaxy.systems, key=lambda s: distances[order[s.id]])
    for target in ("Tau Ceti", "Sirius", "Alpha%20Centauri", "Wolf 359", far.id, "sol"):
        status, body = await get(url, f"/api/route?from=Sol&to={target}")
        assert status == 200, body
        ids = body["systems"]
        goal = galaxy.resolve(target.replace("%20", " "))
        assert ids[0] == "sol" and ids[-1] == goal.id
        assert all(b in galaxy.lanes(a) for a, b in zip(ids, ids[1:]))
        length = sum(math.dist(galaxy.get(a).position, galaxy.get(b).position) for a, b in zip(ids, ids[1:]))
        assert body["parsecs"] == pytest.approx(length, rel=1e-12)
        assert body["parsecs"] == pytest.approx(distances[order[goal.id]], rel=1e-9)
    assert len((await get(url, f"/api/route?from=sol&to={far.id}"))[1]["systems"]) > 3


async def test_route_answers_404_for_unknown_stars_and_400_without_both_params(url):
    status, body = await get(url, "/api/route?from=Sol&to=Vulcan")
    assert status == 404 and "unknown system" in body["error"]
    status, body = await get(url, "/api/route?from=Nowhere&to=Sol")
    assert status == 404
    for query in ("", "?from=Sol", "?to=Sol", "?from=&to=Sol"):
        status, body = await get(url, "/api/route" + query)
        assert status == 400 and "missing" in body["error"]
