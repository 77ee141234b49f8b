"""``starhold gateway`` against a real Ray cluster that uses token authentication (issue 15):
a head started by ``ray start --head`` (on 127.0.0.1, in a temp dir of its own, killed by its
process group at the end; never ``ray stop``), S3 snapshots on SeaweedFS.

- without ``RAY_AUTH_MODE=token`` the gateway exits at once with a message saying what to set,
  not a traceback;
- with it, two gateways on two data dirs join; a token from one verifies on the other; a player
  on the second plays in a room actor whose node has no AWS credentials of its own (they reach
  it through ``runtime_env``), its file in the node's cache directory;
- ``/healthz`` turns 503 once Ray's GCS is gone.
"""

import asyncio
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
import pytest

from starhold.rooms import protocol as P
from wire import Wire, guest_token

START_TIMEOUT = 240.0
"""Seconds for the Ray head or a gateway to come up on a loaded machine (Ray: 10-40 s)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STARHOLD_", "RAY_", "AWS_"))}
    # Loopback only: with 0 Ray takes 127.0.0.1 as the node's address (on a real cluster leave it
    # unset: `ray start --address` refuses to start a worker node when it is 0).
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", PYTHONUNBUFFERED="1")
    return env


class Proc:
    """A subprocess in a session of its own, its output collected."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.lines: list[str] = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode(errors="replace"))

    @classmethod
    async def start(cls, *argv, env) -> "Proc":
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        return cls(proc)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    async def wait_for(self, needle: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not printed:\n{self.text[-3000:]}")
            await asyncio.sleep(0.2)

    async def kill_group(self) -> None:
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self.proc.wait()
        self.reader.cancel()


async def port_open(port: int, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def healthz(session, url) -> tuple[int, dict]:
    async with session.get(url + "/healthz", timeout=aiohttp.ClientTimeout(total=10)) as response:
        return response.status, await response.json()


@pytest.mark.allow_blocking
async def test_gateways_join_a_token_auth_cluster_and_healthz_follows_ray(seaweedfs, tmp_path):
    ray_bin = str(Path(sys.executable).parent / "ray")
    temp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    token = secrets.token_hex(16)
    gcs_port = free_port()
    address = f"127.0.0.1:{gcs_port}"
    bucket = seaweedfs.create_bucket()
    procs: list[Proc] = []
    try:
        head = await Proc.start(
            ray_bin, "start", "--head", "--block", f"--port={gcs_port}", "--node-ip-address=127.0.0.1",
            f"--temp-dir={temp}", "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats",
            env={**base_env(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_worker_niceness": "0"})
        procs.append(head)
        await port_open(gcs_port)

        def gateway_argv(port: int, data: str) -> list[str]:
            return [sys.executable, "-m", "starhold.cli", "gateway", "--ray-address", address, "--port", str(port),
                    "--data-dir", str(tmp_path / data), "--snapshots", f"s3://{bucket}/game",
                    "--s3-endpoint", seaweedfs.endpoint_url, "--shed-lag", "0", "--idle-timeout", "600"]

        # no RAY_AUTH_MODE: refused at once, with what to set
        refused = await Proc.start(*gateway_argv(free_port(), "refused"), env=base_env())
        procs.append(refused)
        assert await asyncio.wait_for(refused.proc.wait(), 120) == 1
        await refused.reader
        assert "set RAY_AUTH_MODE=token" in refused.text and "RAY_AUTH_TOKEN" in refused.text
        assert "Traceback" not in refused.text

        env = {**base_env(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
               "AWS_ACCESS_KEY_ID": seaweedfs.access_key, "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key}
        ports = [free_port(), free_port()]
        gateways = [await Proc.start(*gateway_argv(ports[0], "node-a"), env=env),
                    await Proc.start(*gateway_argv(ports[1], "node-b"), env=env)]
        procs.extend(gateways)
        for gateway in gateways:
            await gateway.wait_for("Starhold is up")
        url_a, url_b = (f"http://127.0.0.1:{port}" for port in ports)
        async with aiohttp.ClientSession() as session:
            for url in (url_a, url_b):
                status, body = await healthz(session, url)
                assert (status, body["ok"], body["ray"]) == (200, True, "ok")
            player = await guest_token(session, url_a, "Roamer")  # signed by gateway A
            wire = await Wire.open(session, url_b, "/api/systems/sol/ws", player)  # verified by B
            await wire.join(timeout=60)  # a cold room and pilot room on a fresh cluster
            await wire.send(P.MOVE_TO, 2, {"x": 250.0, "y": 0.0})
            await wire.recv(P.FRAME, timeout=60, where=lambda p: p["ack"] == 2)
            # The room hosts take the config of the gateway that started the host pool (gateways
            # are meant to share one --data-dir; these two differ to tell them apart): the file is
            # in that gateway's per-node cache, <data dir>/nodes/<node>/rooms/system/sol.sqlite.
            files = [p for gateway in ("node-a", "node-b") if (tmp_path / gateway / "nodes").exists()
                     for p in (tmp_path / gateway / "nodes").rglob("sol.sqlite")]
            assert len(files) == 1 and files[0].relative_to(files[0].parents[2]).as_posix() == "rooms/system/sol.sqlite"

            gcs = [p for p in psutil.Process(head.proc.pid).children(recursive=True) if p.name() == "gcs_server"]
            assert len(gcs) == 1
            gcs[0].kill()
            killed = time.monotonic()
            while True:
                status, body = await healthz(session, url_a)
                if status == 503:
                    break
                assert time.monotonic() - killed < 30, body
                await asyncio.sleep(0.2)
            assert body["ok"] is False and body["ray"].startswith("unreachable: ")
            await wire.ws.close()
    finally:
        for proc in reversed(procs):
            await proc.kill_group()
        shutil.rmtree(temp, ignore_errors=True)
