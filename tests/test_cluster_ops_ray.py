"""Operating on a cluster, on the session's real Ray (issue 15): the gateway's Ray probe, room
files in a per-node directory with S3 snapshots, and the alarm scheduler (in the host pool's
actor) keeping its index in S3 so that a pool created with another data dir finds the alarms."""

import uuid

import aiohttp
import pytest

from starhold import HttpRequest, HttpResponse, Room, define_room
from starhold._runtime.host_pool import pool_actor
from starhold._runtime.paths import room_db_path
from starhold._runtime.ray_host import RayDirectory

pytestmark = pytest.mark.ray


@define_room
class OpsNote(Room):
    """Writes one key when asked over HTTP."""

    kind = "opsnote"

    async def on_request(self, request):
        await self.storage.put("note", "kept")
        return HttpResponse(200, {"ok": True})


@pytest.fixture
def s3_directory(ray_cluster, seaweedfs, tmp_path):
    """A ``RayDirectory`` with S3 snapshots in a namespace of its own; its actors are killed after."""
    spec = seaweedfs.spec(prefix="ops/")
    directory = RayDirectory({"data_dir": str(tmp_path / "data"), "idle_timeout": 60, "log_level": "WARNING",
                              "snapshots": spec}, namespace=f"test-{uuid.uuid4().hex[:8]}",
                             room_classes={"opsnote": OpsNote})
    yield directory
    from starhold._runtime.host_pool import kill_namespace

    kill_namespace(directory.namespace)


async def test_healthz_probes_ray(ray_directory, gateway_factory):
    await ray_directory.probe(2.0)
    url = await gateway_factory(ray_directory, rooms=[])
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as response:
        body = await response.json()
    assert response.status == 200 and body["ok"] is True and body["ray"] == "ok"


async def test_with_s3_snapshots_a_room_keeps_its_file_in_its_nodes_directory(s3_directory, tmp_path):
    handle = await s3_directory.get("opsnote", "n1")
    response = await handle.request(HttpRequest("GET", "/", {}, b""))
    assert response.status == 200
    node = (await handle.stats())["node"]
    data = tmp_path / "data"
    assert room_db_path(data / "nodes" / node[:12], "opsnote", "n1").exists()
    assert not room_db_path(data, "opsnote", "n1").exists()


async def test_the_alarm_scheduler_keeps_alarms_in_s3(s3_directory, seaweedfs, tmp_path):
    import time

    pool = pool_actor(s3_directory.config)  # the alarm scheduler runs in the host pool's actor
    await pool.register.remote("opsnote", "sleeper", time.time() + 3600)
    # the node of the pool dies; its replacement runs with another data dir
    import ray

    ray.kill(pool, no_restart=True)
    other = RayDirectory({**s3_directory.config, "data_dir": str(tmp_path / "elsewhere")}, s3_directory.namespace)
    assert await other.start_scheduler() == 1
    pending = await other.pending_alarms()
    assert list(pending) == ["opsnote/sleeper"]
    assert not (tmp_path / "data" / "scheduler.sqlite").exists()
