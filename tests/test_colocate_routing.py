"""Where a gateway sends an upgrade with sockets in room hosts (``gateway.colocate.HostRouter``),
without Ray: a fake directory and fake host actors."""

from __future__ import annotations

from pathlib import Path

from starhold.gateway.colocate import HostRouter


class Remote:
    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    async def remote(self, *args):
        self.calls += 1
        return self.fn(*args)


class Host:
    def __init__(self, node="n1", fails=False):
        self.configs = []

        def serve(config):
            self.configs.append(config)
            if fails:
                raise RuntimeError("no gateway here")
            return {"path": f"/tmp/{node}-{id(self)}.sock", "node": node}

        self.serve_sockets = Remote(serve)


class Handle:
    def __init__(self, actor, host):
        self.actor, self.host = actor, host


class Directory:
    def __init__(self):
        self.rooms: dict = {}
        self.lookups = 0

    async def get_if_active(self, kind, room_id):
        self.lookups += 1
        found = self.rooms.get((kind, room_id))
        if isinstance(found, Exception):
            raise found
        return found


async def test_an_awake_room_on_this_node_routes_to_its_host_and_is_remembered():
    directory, host = Directory(), Host()
    directory.rooms[("system", "sol")] = Handle(host, "host:a")
    router = HostRouter(directory, {"rooms": None}, node="n1")
    name, path = await router.target("system", "sol")
    assert name == "host:a" and path == Path(host.serve_sockets.fn({"rooms": None})["path"])
    assert await router.target("system", "sol") == (name, path)
    assert directory.lookups == 1 and host.serve_sockets.calls == 1  # one pool call, one host call
    assert host.configs[0] == {"rooms": None}


async def test_a_sleeping_room_is_served_here_and_asked_about_again():
    directory, host = Directory(), Host()
    router = HostRouter(directory, {}, node="n1")
    assert await router.target("system", "sol") is None
    directory.rooms[("system", "sol")] = Handle(host, "host:a")  # it woke
    assert (await router.target("system", "sol"))[0] == "host:a"
    assert directory.lookups == 2


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


class RecordingRouter:
    def __init__(self):
        self.asked = []

    async def target(self, kind, room_id):
        self.asked.append((kind, room_id))
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
    assert router.asked == [("system", "sol")]
