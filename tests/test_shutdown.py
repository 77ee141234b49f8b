"""``starhold serve`` shuts down cleanly on SIGTERM to its process group (what ``docker stop``,
systemd and Kubernetes send): the gateway closes its sockets with 1001, the rooms hibernate
(snapshot), and every process exits, without Ray's "Failed to connect to GCS" wait.

A real server in a subprocess (local Ray, SQLite under a tmp dir, a free port on 127.0.0.1).
"""

import asyncio
import os
import signal

import aiohttp
import psutil
import pytest

from starhold.rooms import protocol as P
from served import Served, free_ports
from wire import Wire, guest_token

STARTUP_TIMEOUT = 240.0
"""Seconds for the server to come up on a loaded machine (Ray alone takes 5-10 s idle)."""
SHUTDOWN_TIMEOUT = 50.0
"""Seconds for everything to exit after SIGTERM on a loaded machine (10 s when idle; before
the fix it took 60-75 s, waiting for the GCS that the signal had killed)."""


@pytest.mark.allow_blocking
async def test_sigterm_to_the_process_group_closes_1001_hibernates_and_exits(tmp_path):
    [port] = free_ports(1)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "PYTHONUNBUFFERED": "1"}
    for name in list(env):
        if name.startswith("STARHOLD_"):
            del env[name]
    served = await Served.start(
        "--port", str(port), "--data-dir", str(tmp_path / "data"),
        "--no-dashboard", "--idle-timeout", "600", "--shutdown-timeout", str(SHUTDOWN_TIMEOUT - 10),
        "--shed-lag", "0",  # a freshly woken room's ticks overrun on a loaded machine: no refusals here
        env=env)  # its own process group, as under a service manager
    proc, output, reader = served.proc, served.output, served.reader
    try:
        await served.wait_up(STARTUP_TIMEOUT)
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            wire = await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url, "Stayer"))
            await wire.join()
            await wire.send(P.MOVE_TO, 2, {"x": 300.0, "y": 0.0})
            await wire.recv(P.FRAME, timeout=60, where=lambda p: p["ack"] == 2)  # the room committed it
            family = psutil.Process(proc.pid).children(recursive=True)  # server, Ray, the room actor
            assert family
            os.killpg(proc.pid, signal.SIGTERM)
            assert await wire.close_code(timeout=SHUTDOWN_TIMEOUT) == 1001
        assert await asyncio.wait_for(proc.wait(), SHUTDOWN_TIMEOUT) == 0
        await asyncio.wait_for(reader, SHUTDOWN_TIMEOUT)
        _, alive = await asyncio.to_thread(psutil.wait_procs, family, SHUTDOWN_TIMEOUT)
        assert alive == [], alive
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        reader.cancel()
    text = "".join(output)
    assert "Failed to connect to GCS" not in text, text
    assert "Traceback" not in text, text
    manifests = list((tmp_path / "data" / "snapshots").rglob("manifest.json"))
    assert any("sol" in str(m) for m in manifests), (manifests, text)  # Sol hibernated: a snapshot
