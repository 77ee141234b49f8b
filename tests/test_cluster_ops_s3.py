"""Cluster-wide state in S3 (issue 15), on a real SeaweedFS: the token keys and the shared
secrets (game-id key) of gateways on different data dirs, and the alarm scheduler's index
surviving a restart on another data dir. No Ray: the scheduler runs on a manual clock."""

import asyncio
import concurrent.futures
import uuid

import aiohttp
import pytest

from starhold._runtime.local_host import InProcessDirectory
from starhold._runtime.scheduler import AlarmScheduler, SqliteAlarmIndex, alarm_index_from_config
from starhold.gateway.app import GATEWAY
from starhold.gateway.auth import TokenService, load_or_create_keys
from starhold.storage.s3_alarms import S3AlarmIndex


@pytest.fixture
def spec(seaweedfs):
    """An S3 snapshot spec on a fresh bucket, under a prefix."""
    return seaweedfs.spec(prefix=f"cluster-{uuid.uuid4().hex[:6]}/")


def keys_in(seaweedfs, spec, folder):
    client = seaweedfs.client()
    try:
        response = client.list_objects_v2(Bucket=spec["bucket"], Prefix=spec["prefix"] + folder)
        return sorted(item["Key"][len(spec["prefix"] + folder):] for item in response.get("Contents", ()))
    finally:
        client.close()


def test_two_gateways_on_fresh_data_dirs_share_the_token_keys(seaweedfs, spec, tmp_path):
    a = TokenService.from_config(None, tmp_path / "node-a", snapshots=spec)
    b = TokenService.from_config("", tmp_path / "node-b", snapshots=spec)
    assert a.kids == b.kids and a.active == b.active
    token, _ = a.issue("u-0123456789abcdef", "Ada", "user")
    assert b.verify(token).player == "u-0123456789abcdef"
    assert keys_in(seaweedfs, spec, "_cluster/") == ["jwt-keys.json"]
    assert not (tmp_path / "node-a" / "auth").exists() and not (tmp_path / "node-b" / "auth").exists()


def test_racing_processes_all_get_the_winners_keys(spec, tmp_path):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: load_or_create_keys("jwt-keys.json", tmp_path / str(i), spec), range(8)))
    assert all(result == results[0] for result in results)
    assert len(results[0][0]) == 1


def test_configured_keys_come_first_and_touch_no_bucket(seaweedfs, spec, tmp_path):
    secret = "a2V5LW9uZS1rZXktb25lLWtleS1vbmUta2V5LW9uZS0xMjM="  # 34 bytes
    tokens = TokenService.from_config(f"k1:{secret}", tmp_path, snapshots=spec)
    assert tokens.kids == ["k1"]
    assert keys_in(seaweedfs, spec, "_cluster/") == []


def test_local_snapshots_keep_the_key_file(tmp_path):
    a = TokenService.from_config(None, tmp_path, snapshots=None)
    assert (tmp_path / "auth" / "jwt-keys.json").exists()
    assert TokenService.from_config(None, tmp_path).active == a.active


async def test_gateways_on_two_data_dirs_share_the_game_id_key_and_tokens(seaweedfs, spec, tmp_path,
                                                                         gateway_factory):
    urls = []
    for node in ("a", "b"):
        directory = InProcessDirectory(tmp_path / node)
        urls.append(await gateway_factory(directory, data_dir=tmp_path / node, snapshots=spec))
    a, b = (url.app[GATEWAY] for url in urls)
    assert a.shared_secret("session-key") == b.shared_secret("session-key")
    assert len(a.shared_secret("session-key")) == 32
    assert keys_in(seaweedfs, spec, "_cluster/") == ["jwt-keys.json", "session-key.json"]
    async with aiohttp.ClientSession() as session:
        async with session.post(urls[0] + "/api/auth/guest", json={"name": "Nomad"}) as response:
            token = (await response.json())["token"]
        async with session.get(urls[1] + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200
            assert (await response.json())["name"] == "Nomad"


class Waker:
    """Records wakes; fails while ``failing`` is set."""

    def __init__(self):
        self.woken: list[tuple[str, str]] = []
        self.failing = False

    async def __call__(self, kind: str, room_id: str) -> None:
        if self.failing:
            raise ConnectionError("room host unreachable")
        self.woken.append((kind, room_id))


async def test_alarms_survive_a_scheduler_restart_on_another_data_dir(seaweedfs, spec, tmp_path, manual_clock):
    config_a = {"data_dir": str(tmp_path / "node-a"), "snapshots": spec}
    first = await AlarmScheduler(alarm_index_from_config(config_a), manual_clock, Waker()).open()
    assert isinstance(first.index, S3AlarmIndex)
    t0 = manual_clock.now()
    await first.register("system", "sol", t0 + 30)
    await first.register("session", "g1", t0 + 10)
    await first.register("session", "g1", t0 + 60.123456)  # replaces the entry due at +10
    assert len(keys_in(seaweedfs, spec, "_alarms/")) == 2
    await first.close()  # the node dies: its timers are gone, nothing on its disk is needed

    waker = Waker()
    config_b = {"data_dir": str(tmp_path / "node-b"), "snapshots": spec}
    second = await AlarmScheduler(alarm_index_from_config(config_b), manual_clock, waker).open()
    assert await second.pending() == {("system", "sol"): pytest.approx(t0 + 30),
                                      ("session", "g1"): pytest.approx(t0 + 60.123456)}
    await manual_clock.advance(31)
    assert waker.woken == [("system", "sol")]
    assert keys_in(seaweedfs, spec, "_alarms/") == [S3AlarmIndex.key("session", "g1", t0 + 60.123456)]

    waker.failing = True  # a failed wake keeps the entry and retries
    await manual_clock.advance(30)
    assert ("session", "g1") in await second.pending()
    waker.failing = False
    await manual_clock.advance(2)
    assert waker.woken == [("system", "sol"), ("session", "g1")]
    assert await second.pending() == {}
    assert keys_in(seaweedfs, spec, "_alarms/") == []
    assert not (tmp_path / "node-a").exists() and not (tmp_path / "node-b").exists()
    await second.close()


async def test_a_registration_made_during_a_wake_stays(spec, manual_clock):
    index = S3AlarmIndex.from_spec(spec)
    release = asyncio.Event()
    woken = []
    scheduler = None

    async def wake(kind, room_id):
        woken.append(room_id)
        await scheduler.register(kind, room_id, manual_clock.now() + 100)  # the room sleeps again
        release.set()

    scheduler = await AlarmScheduler(index, manual_clock, wake).open()
    await scheduler.register("system", "sol", manual_clock.now() + 5)
    await manual_clock.advance(6)
    await asyncio.wait_for(release.wait(), 10)
    # register() replaced the fired entry (deleting its object); the wake's end deletes nothing
    t0 = manual_clock.now() - 6
    assert await scheduler.pending() == {("system", "sol"): t0 + 105}
    assert await asyncio.to_thread(lambda: list(index.objects.keys())) == [S3AlarmIndex.key("system", "sol", t0 + 105)]
    assert woken == ["sol"]
    reopened = await AlarmScheduler(S3AlarmIndex.from_spec(spec), manual_clock, wake).open()
    assert await reopened.pending() == await scheduler.pending()
    await scheduler.close()
    await reopened.close()


async def test_open_keeps_the_earliest_of_duplicate_entries(spec, manual_clock):
    # a crash between writing a new entry and deleting the old one leaves two
    index = S3AlarmIndex.from_spec(spec)
    await index.open()
    await index.put("system", "sol", 2000.0)
    await index.put("system", "sol", 1000.0)
    scheduler = await AlarmScheduler(S3AlarmIndex.from_spec(spec), manual_clock, Waker()).open()
    assert await scheduler.pending() == {("system", "sol"): 1000.0}
    assert [key for key in index.objects.keys()] == [S3AlarmIndex.key("system", "sol", 1000.0)]
    await scheduler.close()
    await index.close()


def test_local_snapshots_keep_the_sqlite_index(tmp_path):
    index = alarm_index_from_config({"data_dir": str(tmp_path), "snapshots": None})
    assert isinstance(index, SqliteAlarmIndex) and index.path == tmp_path / "scheduler.sqlite"
