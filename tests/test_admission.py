"""Admission control (``gateway/admission.py``): an overloaded gateway or room refuses new
players with error 16 and close 1013, keeps serving the players already in, and always lets a
held seat be taken back."""

import aiohttp
import pytest

from starhold.rooms import protocol as P
from starhold.gateway import metrics
from starhold.gateway.admission import CLEAR_AFTER, LAG_LIMIT, SHED_AFTER, LoadShedder, TickReports
from starhold.gateway.app import GATEWAY
from starhold._runtime.local_host import InProcessDirectory

from wire import Wire, guest_token

HIGH, LOW, MIDDLE = LAG_LIMIT * 2, LAG_LIMIT / 4, LAG_LIMIT * 0.75


def test_sustained_lag_sheds_and_only_a_calm_spell_clears_it():
    shedder = LoadShedder()
    for _ in range(SHED_AFTER - 1):
        shedder.observe(HIGH)
    assert not shedder.overloaded
    shedder.observe(HIGH)
    assert shedder.overloaded
    for _ in range(CLEAR_AFTER - 1):
        shedder.observe(LOW)
    assert shedder.overloaded
    shedder.observe(MIDDLE)  # between the thresholds: the calm spell starts again
    for _ in range(CLEAR_AFTER - 1):
        shedder.observe(LOW)
    assert shedder.overloaded
    shedder.observe(LOW)
    assert not shedder.overloaded


def test_isolated_stalls_never_shed():
    shedder = LoadShedder()
    for _ in range(50):
        for _ in range(SHED_AFTER - 1):
            shedder.observe(5.0)  # a long GC pause or a slow disk counts once per probe
        shedder.observe(LOW)
    assert not shedder.overloaded
    shedder.observe(-0.001)  # a timer that woke early is no lag
    assert shedder.last_lag == 0.0


def test_a_zero_lag_limit_disables_shedding():
    shedder = LoadShedder(lag_limit=0)
    for _ in range(100):
        shedder.observe(10.0)
    assert not shedder.overloaded


def test_room_is_overloaded_while_half_its_recent_ticks_overrun():
    reports = TickReports()
    reports.observe({"ticks": 100, "overruns": 3})
    assert not reports.overloaded
    reports.observe({"ticks": 110, "overruns": 8})  # 5 of the last 10
    assert reports.overloaded
    reports.observe({"ticks": 112, "overruns": 10})  # too few ticks to judge: unchanged
    assert reports.overloaded
    reports.observe({"ticks": 122, "overruns": 11})  # 1 of 10
    assert not reports.overloaded
    reports.observe({"ticks": 10, "overruns": 9})  # a new activation: its counts start over
    assert reports.overloaded
    reports.observe({"ticks": 10, "overruns": 9})  # stopped ticking: nothing overruns
    assert not reports.overloaded


@pytest.fixture
async def url(gateway_factory, tmp_path):
    """A gateway with admission control on, its lag probe stopped: the tests feed the lag."""
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    served = await gateway_factory(directory, shed_lag=LAG_LIMIT)
    served.app[GATEWAY]._prober.cancel()
    yield served
    await directory.close()


async def refused_join(session, url, path) -> tuple[dict, int]:
    wire = await Wire.open(session, url, path, await guest_token(session, url, "Late"))
    await wire.send(P.JOIN, 1, {})
    error = (await wire.recv(P.ERROR))[2]
    return error, await wire.close_code()


def refusals(reason: str) -> float:
    return metrics.JOINS_REFUSED.labels(reason)._value.get()


async def test_overloaded_gateway_refuses_new_players_keeps_the_others_and_lets_held_seats_back(url):
    gateway = url.app[GATEWAY]
    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url, "Early")
        async with session.post(url + "/api/game/new", json={}, headers={"Authorization": f"Bearer {token}"}) as r:
            path = (await r.json())["ws"]
        early = await Wire.open(session, url, path, token)
        await early.join()
        dropper_token = await guest_token(session, url, "Dropper")
        dropper = await Wire.open(session, url, path, dropper_token)
        seat = (await dropper.join())[0]["seat"]
        for sock in list(gateway.sockets):  # the dropper's connection drops: its seat is held
            if sock.identity.name == "Dropper":
                sock.close_soon(P.CLOSE_ROOM_UNAVAILABLE, "draining")
        assert await dropper.close_code() == P.CLOSE_ROOM_UNAVAILABLE

        for _ in range(SHED_AFTER):
            gateway.shedder.observe(HIGH)
        before = refusals("gateway")
        error, code = await refused_join(session, url, path)
        assert error["code"] == P.ERR_OVERLOADED and "overloaded" in error["message"]
        assert code == P.CLOSE_TRY_AGAIN_LATER
        assert refusals("gateway") == before + 1

        await early.send(P.MOVE_TO, 2, {"x": 10.0, "y": 10.0})  # the player already in is served
        await early.recv(P.FRAME, where=lambda p: p["ack"] == 2)
        back = await Wire.open(session, url, path, dropper_token)
        resumed, _ = await back.join(seq=3, resume=seat)  # taking back a held seat is admitted
        assert resumed["resumed"] is True

        for _ in range(CLEAR_AFTER):
            gateway.shedder.observe(LOW)
        late = await Wire.open(session, url, path, await guest_token(session, url, "Later"))
        welcome, _ = await late.join()
        assert welcome["ship"] > 0


class Overrunning(TickReports):
    """A room's reports saying its ticks overrun, whatever the room itself reports meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.overloaded = True

    def observe(self, report: dict) -> None:
        pass


async def test_room_whose_ticks_overrun_refuses_new_players(url):
    gateway = url.app[GATEWAY]
    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url, "Host")
        async with session.post(url + "/api/game/new", json={}, headers={"Authorization": f"Bearer {token}"}) as r:
            game = await r.json()
        first = await Wire.open(session, url, game["ws"], token)
        await first.join()
        gateway.links[("session", game["id"])].tick_reports = Overrunning()
        before = refusals("room")
        error, code = await refused_join(session, url, game["ws"])
        assert (error["code"], code) == (P.ERR_OVERLOADED, P.CLOSE_TRY_AGAIN_LATER)
        assert "room is overloaded" in error["message"] and refusals("room") == before + 1
        other = await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url, "Elsewhere"))
        await other.join()  # other rooms still take players


async def test_shed_lag_zero_turns_off_both_signals(gateway_factory, tmp_path):
    """``--shed-lag 0`` turns admission control off (README): a room whose ticks overrun still
    takes new players, as a loaded test machine's freshly woken room must."""
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    served = await gateway_factory(directory, shed_lag=0)
    gateway = served.app[GATEWAY]
    try:
        async with aiohttp.ClientSession() as session:
            token = await guest_token(session, served, "Host")
            async with session.post(served + "/api/game/new", json={},
                                    headers={"Authorization": f"Bearer {token}"}) as r:
                game = await r.json()
            first = await Wire.open(session, served, game["ws"], token)
            await first.join()
            gateway.links[("session", game["id"])].tick_reports = Overrunning()
            second = await Wire.open(session, served, game["ws"], await guest_token(session, served, "Guest"))
            welcome, _ = await second.join()
            assert welcome["ship"] > 0
    finally:
        await directory.close()
