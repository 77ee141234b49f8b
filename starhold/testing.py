"""Starhold's pytest plugin, registered through the ``pytest11`` entry point named
``starhold.testing`` (the module's name): installed with the package, pytest loads it by
itself; ``pytest -p starhold.testing`` (needed when ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` is set,
together with ``-p asyncio``), ``pytest_plugins = ["starhold.testing"]`` and ``-p
no:starhold.testing`` all name it the same way.

Async tests: every ``async def test_*`` without an ``asyncio``/``anyio``/``trio`` mark is
marked ``@pytest.mark.asyncio`` at collection, so pytest-asyncio runs it in whatever
``asyncio_mode`` the project chose (the plugin does not change the mode: in the default
strict mode async fixtures need ``@pytest_asyncio.fixture``; ``asyncio_mode = "auto"`` lifts
that).

Fixtures for people writing rooms and for Starhold's own tests:

- ``manual_clock``: a ``ManualClock`` (``await manual_clock.advance(seconds)``).
- ``room_directory``: an ``InProcessDirectory`` on ``tmp_path`` driven by ``manual_clock``
  (idle timeout 10 s): rooms run in the test's event loop, no Ray, no sleeping.
- ``ray_cluster`` (session): a local Ray started once, bound to 127.0.0.1. Only tests marked
  ``@pytest.mark.ray`` may use Ray: any other test that calls ``ray.init`` fails.
- ``ray_directory``: a ``RayDirectory`` in a namespace of its own (its actors are killed after
  the test), SQLite under ``tmp_path``, idle timeout 2 s.
- ``gateway_factory``: ``await gateway_factory(directory)`` serves a gateway on 127.0.0.1 on a
  free port and returns its base URL (``http://127.0.0.1:<port>``, a ``GatewayURL`` whose
  ``.app`` is the aiohttp application); ``rooms=[modules]`` chooses the room kinds it loads.
  Its keys (tokens, the plugins' shared secrets) live in a temporary directory unless
  ``data_dir=`` (or ``tokens=``) is given: gateways sharing one accept each other's tokens and
  game ids, like replicas behind a load balancer.
- ``no_blocking``: fails the test when its event loop is blocked for more than
  ``BLOCKING_THRESHOLD`` seconds (a blocking call in async code), showing where.
- ``seaweedfs``, ``s3_store``, ``moto_s3``: S3 servers for snapshot tests (``testing_s3``).

- ``room_harness``: ``h = await room_harness(MyRoom, host="inprocess"|"ray", **kwargs)``, a
  started ``starhold.harness.RoomHarness`` (see docs/rooms.md), closed after the test; on Ray
  it starts the session's cluster first.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import uuid

import pytest
import pytest_asyncio

from .clock import ManualClock

# A local Ray for tests: every service on 127.0.0.1, no usage stats. Ray reads these when it is
# first imported, so they are set when pytest loads this plugin, before any test imports ray.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

RAY_IDLE_TIMEOUT = 2.0
"""Idle timeout of rooms in ``ray_directory``, seconds."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``ray`` and ``browser`` markers."""
    config.addinivalue_line("markers", "ray: the test uses a real Ray cluster (fixture ray_cluster)")
    config.addinivalue_line("markers", "browser: the test drives Debian chromium through Playwright")


_ASYNC_MARKS = ("asyncio", "anyio", "trio")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark each ``async def test_*`` that has no ``asyncio``/``anyio``/``trio`` mark (on
    itself, its class or its module) with ``pytest.mark.asyncio``, before pytest-asyncio looks
    at it: a bare async test runs whatever ``asyncio_mode`` is. Creates no item itself."""
    if not inspect.iscoroutinefunction(obj) or not collector.istestfunction(obj, name):
        return None
    own = {mark.name for mark in getattr(obj, "pytestmark", [])}
    if own.isdisjoint(_ASYNC_MARKS) and not any(collector.get_closest_marker(m) for m in _ASYNC_MARKS):
        pytest.mark.asyncio(obj)
    return None


@pytest.fixture(autouse=True)
def _refuse_ray_outside_ray_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Unit tests must not start Ray: ``ray.init`` raises unless the test is marked ``ray``."""
    if request.node.get_closest_marker("ray") is None:
        try:
            import ray
        except ImportError:  # pragma: no cover
            return

        def refuse(*args, **kwargs):
            raise RuntimeError("this test is not marked @pytest.mark.ray and may not start Ray")

        monkeypatch.setattr(ray, "init", refuse)


BLOCKING_THRESHOLD = 0.5
"""Seconds of event-loop stall that ``no_blocking`` reports (high enough that a garbage
collection pause on a loaded 2-core CI machine is not taken for a blocking call)."""


@pytest_asyncio.fixture
async def no_blocking():
    """Fail the test if its event loop is blocked for more than ``BLOCKING_THRESHOLD`` (0.5) s,
    showing the stack of the blocking call. Yields the ``BlockingWatchdog``."""
    from .watchdog import BlockingWatchdog

    watchdog = BlockingWatchdog(BLOCKING_THRESHOLD).start()
    yield watchdog
    watchdog.stop()
    if watchdog.stalls:
        pytest.fail("blocking call on the event loop:\n" + watchdog.report(), pytrace=False)


@pytest_asyncio.fixture
async def room_harness(request, tmp_path):
    """``h = await room_harness(MyRoom, host="inprocess" | "ray", **kwargs)``: a started
    ``starhold.harness.RoomHarness`` (kwargs as its constructor's; ``data_dir`` defaults to a
    directory under ``tmp_path``), closed after the test. ``host="ray"`` starts the session's
    ``ray_cluster`` first (the test must be marked ``@pytest.mark.ray``)."""
    from .harness import RoomHarness

    started = []

    async def make(room, host: str = "inprocess", **kwargs) -> RoomHarness:
        if host == "ray":
            request.getfixturevalue("ray_cluster")
        kwargs.setdefault("data_dir", tmp_path / f"harness-{len(started)}")
        harness = RoomHarness(room, host=host, **kwargs)
        await harness.start()
        started.append(harness)
        return harness

    yield make
    for harness in started:
        await harness.close()


@pytest.fixture
def manual_clock() -> ManualClock:
    """A fresh ``ManualClock``: time stands still until ``await manual_clock.advance(s)``."""
    return ManualClock()


@pytest_asyncio.fixture
async def room_directory(tmp_path, manual_clock):
    """An ``InProcessDirectory`` on ``tmp_path / "data"`` driven by ``manual_clock`` (idle
    timeout 10 s): rooms run in the test's event loop. Closed (rooms hibernated) after it."""
    from ._runtime.local_host import InProcessDirectory

    directory = InProcessDirectory(tmp_path / "data", clock=manual_clock, idle_timeout=10.0)
    yield directory
    await directory.close()


@pytest.fixture(scope="session")
def ray_cluster():
    """(session) A local Ray (2 CPUs, every service on 127.0.0.1), started once and shut down
    at the end of the session; yields the ``ray`` module. Only tests marked
    ``@pytest.mark.ray`` may use it."""
    import ray

    from ._runtime.ray_host import init_ray

    init_ray(namespace="starhold-tests", num_cpus=2, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest_asyncio.fixture
async def ray_directory(ray_cluster, tmp_path):
    """A ``RayDirectory`` in a namespace of its own (its actors are killed after the test),
    SQLite under ``tmp_path / "data"``, idle timeout ``RAY_IDLE_TIMEOUT`` (2 s), one spare room host
    (the server's default is two; one keeps a test's processes few)."""
    from ._runtime.ray_host import RayDirectory

    directory = RayDirectory(
        {"data_dir": str(tmp_path / "data"), "idle_timeout": RAY_IDLE_TIMEOUT, "log_level": "WARNING",
         "spare_hosts": 1},
        namespace=f"test-{uuid.uuid4().hex[:8]}",
    )
    yield directory
    from ._runtime.host_pool import kill_namespace

    kill_namespace(directory.namespace)


class GatewayURL(str):
    """A served gateway's base URL (``http://127.0.0.1:<port>``); ``.app`` is its aiohttp
    application (``app[starhold.gateway.app.GATEWAY]`` is the ``Gateway``: sockets, links)."""

    def __new__(cls, url: str, app):
        self = super().__new__(cls, url)
        self.app = app
        return self


@pytest_asyncio.fixture
async def gateway_factory():
    """``url = await gateway_factory(directory, web_dist=None, rooms=None, **create_app_kwargs)``:
    a gateway for ``directory`` served on 127.0.0.1 on a free port, hosting the kinds (and
    mounting the HTTP routes) of the modules ``rooms`` (default: the ``starhold.rooms`` entry
    point group, and whatever else this process registered); returns its base URL, a
    ``GatewayURL`` (``.app``: the aiohttp application). Servers are closed after the test."""
    import importlib

    from aiohttp.test_utils import TestServer

    # Imported in a thread: a cold import of the gateway (jwt, cryptography...) takes over
    # BLOCKING_THRESHOLD on a loaded machine and would fail ``no_blocking``.
    create_app = (await asyncio.to_thread(importlib.import_module, "starhold.gateway.app")).create_app
    servers = []

    async def start(directory, web_dist=None, rooms=None, **app_kwargs) -> str:
        """Serve a gateway for ``directory`` on 127.0.0.1; ``app_kwargs`` go to ``create_app``.
        Admission control is off (``shed_lag=0``) unless a test passes ``shed_lag``: the test's
        own work runs on the gateway's event loop and must not get its joins refused. The
        modules of room kinds are imported in a thread (a cold import would block the loop);
        route plugins load their data at startup (``GatewayAPI.add_cleanup_ctx``)."""
        from .kinds import load_rooms

        app_kwargs.setdefault("shed_lag", 0)
        kwargs = dict(app_kwargs) if web_dist is None else {"web_dist": web_dist, **app_kwargs}
        rooms = None if rooms is None else list(rooms)
        await asyncio.to_thread(load_rooms, rooms)
        app = create_app(directory, rooms=rooms, **kwargs)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return GatewayURL(str(server.make_url("")).rstrip("/"), app)

    yield start
    for server in servers:
        await server.close()


def chromium_path() -> str | None:
    """Debian's chromium, or ``$STARHOLD_CHROMIUM``; None if absent."""
    for path in (os.environ.get("STARHOLD_CHROMIUM"), "/usr/bin/chromium"):
        if path and os.path.exists(path):
            return path
    return None
from .testing_s3 import moto_s3, s3_store, seaweedfs  # noqa: E402,F401
