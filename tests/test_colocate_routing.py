"""Where a gateway sends an upgrade with sockets in room hosts (``gateway.colocate.HostRouter``),
without Ray: a fake directory and fake host actors."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from starhold.gateway import colocate, metrics
from starhold.gateway.colocate import METRICS_OWNER_TIMEOUT, HostRouter, HostSockets


class Remote:
    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    async def remote(self, *args):
        self.calls += 1
        return self.fn(*args)


class Host:
    def __init__(self, node="n1", fails=False, metrics=lambda gateway_id: b"", slow=False):
        self.configs = []

        def serve(config):
            self.configs.append(config)
            if fails:
                raise RuntimeError("no gateway here")
            return {"path": f"/tmp/{node}-{id(self)}.sock", "node": node}

        self.serve_sockets = Remote(serve)
        self.socket_metrics = Slow(metrics) if slow else Remote(metrics)


class Slow(Remote):
    async def remote(self, *args):
        self.calls += 1
        await asyncio.sleep(3600)


class Handle:
    def __init__(self, actor, host, start=None):
        self.actor, self.host = actor, host
        self.batches: list = []
        self.start = start  # an exception the room's start raises, or a future it waits for

    async def send_batch(self, gateway_id, events):
        self.batches.append((gateway_id, events))
        if isinstance(self.start, asyncio.Future):
            await self.start
        elif self.start is not None:
            raise self.start
        return 1


class Directory:
    """The pool: ``rooms`` are the awake ones; ``get`` places a sleeping room on ``spare``
    (a ``Handle``, or an exception to raise)."""

    def __init__(self, spare=None):
        self.rooms: dict = {}
        self.lookups = 0
        self.placed: list = []
        self.spare = spare

    async def get_if_active(self, kind, room_id):
        self.lookups += 1
        await asyncio.sleep(0)  # a pool call: concurrent callers overlap here
        found = self.rooms.get((kind, room_id))
        if isinstance(found, Exception):
            raise found
        return found

    async def get(self, kind, room_id, params=None):
        self.placed.append((kind, room_id, params))
        if isinstance(self.spare, Exception):
            raise self.spare
        self.rooms[(kind, room_id)] = self.spare
        return self.spare


async def test_an_awake_room_on_this_node_routes_to_its_host_and_is_remembered():
    directory, host = Directory(), Host()
    directory.rooms[("system", "sol")] = Handle(host, "host:a")
    router = HostRouter(directory, {"rooms": None}, node="n1")
    name, path = await router.target("system", "sol")
    assert name == "host:a" and path == Path(host.serve_sockets.fn({"rooms": None})["path"])
    assert await router.target("system", "sol") == (name, path)
    assert directory.lookups == 1 and host.serve_sockets.calls == 1  # one pool call, one host call
    assert host.configs[0] == {"rooms": None}


async def test_a_sleeping_room_not_to_be_woken_is_served_here_and_asked_about_again():
    directory, host = Directory(), Host()
    router = HostRouter(directory, {}, node="n1")
    assert await router.target("system", "sol") is None
    assert directory.placed == []
    directory.rooms[("system", "sol")] = Handle(host, "host:a")  # it woke
    assert (await router.target("system", "sol"))[0] == "host:a"
    assert directory.lookups == 2


async def test_a_sleeping_room_is_woken_on_its_host_and_its_first_socket_handed_there():
    host = Host()
    spare = Handle(host, "host:a")
    directory = Directory(spare)
    router = HostRouter(directory, {}, node="n1")
    name, path = await router.target("system", "sol", {"seed": 7})
    assert name == "host:a" and path is not None
    assert directory.placed == [("system", "sol", {"seed": 7})]  # placed with the kind's params
    await asyncio.sleep(0)
    assert spare.batches == [(router.gateway_id, [])]  # its activation started: an empty batch, its first call
    assert await router.target("system", "sol", {"seed": 7}) == (name, path)  # remembered as awake
    assert directory.lookups == 1 and len(directory.placed) == 1


async def test_a_join_storm_on_a_sleeping_room_costs_one_lookup_and_one_wake():
    started = asyncio.get_running_loop().create_future()
    spare = Handle(Host(), "host:a", start=started)
    directory = Directory(spare)
    router = HostRouter(directory, {}, node="n1")
    targets = await asyncio.gather(*(router.target("system", "sol", {}) for _ in range(20)))
    assert {t[0] for t in targets} == {"host:a"}  # handed off before the start has finished
    assert directory.lookups == 1 and len(directory.placed) == 1 and len(spare.batches) == 1
    started.set_result(None)
    await asyncio.sleep(0)


async def test_a_room_whose_start_fails_is_not_woken_on_an_upgrade_again_for_a_while(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(colocate.time, "monotonic", lambda: clock[0])
    spare = Handle(Host(), "host:a", start=RuntimeError("snapshot store unreachable"))
    directory = Directory(spare)
    router = HostRouter(directory, {}, node="n1")
    assert (await router.target("system", "sol", {}))[0] == "host:a"  # handed off: the host's gateway sees the failure
    await asyncio.sleep(0)
    del directory.rooms[("system", "sol")]  # the failed activation was forgotten
    for _ in range(3):  # served where they land, whose link refuses them while its own failure holds
        assert await router.target("system", "sol", {}) is None
    assert len(directory.placed) == 1 and directory.lookups == 4  # the route was forgotten: asked again
    clock[0] += colocate.WAKE_HOLD
    assert (await router.target("system", "sol", {}))[0] == "host:a"  # woken again after the hold
    assert len(directory.placed) == 2


async def test_a_room_that_cannot_be_placed_is_served_here_and_not_placed_again_for_a_while(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(colocate.time, "monotonic", lambda: clock[0])
    directory = Directory(RuntimeError("the host pool is restarting"))
    router = HostRouter(directory, {}, node="n1")
    assert await router.target("system", "sol", {}) is None
    assert await router.target("system", "sol", {}) is None
    assert len(directory.placed) == 1
    clock[0] += colocate.WAKE_HOLD
    assert await router.target("system", "sol", {}) is None
    assert len(directory.placed) == 2


async def test_a_host_on_another_node_or_that_fails_is_not_asked_again_for_a_while():
    directory = Directory()
    far, broken = Host(node="n2"), Host(fails=True)
    directory.rooms[("system", "far")] = Handle(far, "host:far")
    directory.rooms[("system", "bad")] = Handle(broken, "host:bad")
    router = HostRouter(directory, {}, node="n1")
    for _ in range(2):
        assert await router.target("system", "far") is None
        assert await router.target("system", "bad") is None
    assert far.serve_sockets.calls == 1 and broken.serve_sockets.calls == 1


async def test_a_failed_hand_off_forgets_the_host_and_its_rooms():
    directory, host = Directory(), Host()
    directory.rooms[("system", "sol")] = Handle(host, "host:a")
    router = HostRouter(directory, {}, node="n1")
    assert await router.target("system", "sol") is not None
    router.failed("host:a")  # its socket did not answer (the host died)
    assert await router.target("system", "sol") is None  # asked the pool again; the host is not retried yet
    assert directory.lookups == 2 and host.serve_sockets.calls == 1


async def test_a_pool_that_cannot_answer_means_serving_here():
    directory = Directory()
    directory.rooms[("system", "sol")] = RuntimeError("pool restarting")
    assert await HostRouter(directory, {}, node="n1").target("system", "sol") is None


async def test_at_shutdown_the_hosts_that_took_sockets_close_them_and_nothing_more_is_handed_off():
    directory, host, dead = Directory(), Host(), Host()
    host.close_sockets = Remote(lambda: 3)
    dead.close_sockets = Remote(lambda: (_ for _ in ()).throw(RuntimeError("actor died")))
    directory.rooms[("system", "sol")] = Handle(host, "host:a")
    directory.rooms[("system", "tau")] = Handle(dead, "host:b")
    router = HostRouter(directory, {}, node="n1")
    assert await router.target("system", "sol") is not None and await router.target("system", "tau") is not None
    assert await router.close_sockets() == 3  # the dead host's sockets are gone already: no raise
    assert host.close_sockets.calls == 1 and dead.close_sockets.calls == 1
    assert await router.target("system", "sol") is None  # served here (the gateway closes it: 1001)
    assert await router.close_sockets() == 0 and host.close_sockets.calls == 1


class RecordingRouter:
    def __init__(self):
        self.asked = []

    async def target(self, kind, room_id, wake=None):
        self.asked.append((kind, room_id, wake))
        return None  # serve here

    def failed(self, host):
        raise AssertionError("nothing was handed off")


async def test_only_an_upgrade_with_a_valid_token_is_routed(room_directory, gateway_factory):
    import aiohttp

    from starhold.client import StarholdClient
    from starhold.gateway.app import GATEWAY
    from starhold.rooms import protocol as P

    url = await gateway_factory(room_directory)
    router = url.app[GATEWAY].hosts = RecordingRouter()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url.replace("http", "ws", 1) + "/api/systems/sol/ws?token=forged")
        error = P.decode_server((await ws.receive(timeout=30)).data)
        assert error[0] == P.ERROR and error[2]["code"] == P.ERR_UNAUTHORIZED
        await ws.close()
    assert router.asked == []  # refused without asking where the room runs
    async with StarholdClient.for_system(url, "Sol", name="Ada") as client:
        await client.join(timeout=60)
    # To be woken if it sleeps, with the params the gateway's own link would wake it with.
    params = url.app[GATEWAY].room_params("system", "sol")
    assert params and router.asked == [("system", "sol", params)]


def host_exposition(connections: float) -> bytes:
    """What a host's gateway process exports: its own registry's text."""
    registry = CollectorRegistry()
    Gauge("starhold_connections", "Open WebSockets", registry=registry).set(connections)
    Counter("starhold_inputs_dropped", "Client messages dropped", ["reason"], registry=registry).labels("rate").inc(3)
    Gauge("starhold_host_only", "A family this process does not have", registry=registry).set(1)
    return generate_latest(registry)


def samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of the samples ``name`` in an exposition."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, value = line.rsplit(" ", 1)
            out[key[len(name):]] = float(value)
    return out


def test_the_hosts_figures_are_merged_under_a_host_label():
    body, _ = metrics.exposition([("host:a", host_exposition(500)), ("host:b", host_exposition(20)),
                                  ("host:bad", b"starhold_connections{ 1 not an exposition")])
    text = body.decode()
    connections = samples(text, "starhold_connections")
    assert connections['{host="host:a"}'] == 500.0 and connections['{host="host:b"}'] == 20.0
    assert "" in connections and not any("host:bad" in key for key in connections)  # this process's own, unlabelled
    assert text.count("# TYPE starhold_connections gauge") == 1  # one family, whatever the sources
    assert samples(text, "starhold_inputs_dropped_total")['{host="host:a",reason="rate"}'] == 3.0
    assert samples(text, "starhold_host_only") == {'{host="host:a"}': 1.0, '{host="host:b"}': 1.0}
    assert 'starhold_inputs_dropped_created{host=' not in text  # a counter's creation time stays home


async def test_the_router_asks_the_hosts_that_took_its_sockets_for_their_figures():
    directory = Directory()
    asked = []
    a = Host(metrics=lambda gateway_id: asked.append(gateway_id) or b"a-text")
    b = Host(metrics=lambda gateway_id: None)  # reports to another gateway process
    gone = Host(metrics=lambda gateway_id: (_ for _ in ()).throw(RuntimeError("actor died")))
    slow = Host(slow=True)
    never = Host()  # no socket of ours went there: not asked
    for name, host in (("a", a), ("b", b), ("gone", gone), ("slow", slow), ("never", never)):
        directory.rooms[("system", name)] = Handle(host, f"host:{name}")
    router = HostRouter(directory, {}, node="n1")
    for name in ("a", "b", "gone", "slow"):
        assert await router.target("system", name) is not None
    assert await router.metrics("gw-1", timeout=0.2) == [("host:a", b"a-text")]
    assert asked == ["gw-1"] and never.socket_metrics.calls == 0
    assert await router.metrics("gw-1", timeout=0.2) == [("host:a", b"a-text")]
    assert gone.socket_metrics.calls == 1 and slow.socket_metrics.calls == 2  # the dead host is forgotten
    router.failed("host:a")  # a hand-off that did not reach it: not asked until it takes sockets again
    assert await router.metrics("gw-1", timeout=0.2) == []


def test_a_host_reports_to_one_gateway_process_until_that_one_stops_asking():
    now = [1000.0]
    host = HostSockets(clock=lambda: now[0])
    assert host.metrics("gw-0") is not None  # the first to ask owns it
    assert host.metrics("gw-1") is None
    now[0] += METRICS_OWNER_TIMEOUT - 1
    assert host.metrics("gw-0") is not None and host.metrics("gw-1") is None
    now[0] += METRICS_OWNER_TIMEOUT + 1  # gw-0 stopped asking (it died): gw-1 takes over
    assert host.metrics("gw-1") is not None
    assert host.metrics("gw-0") is None
