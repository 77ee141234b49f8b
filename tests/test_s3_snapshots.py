"""S3SnapshotStore against a real SeaweedFS (``weed mini``) and, for fault injection, moto;
epoch fencing of both snapshot stores."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import sqlite3
import threading
import uuid

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from starhold.storage.base import StaleEpochError, StorageError
from starhold.storage.s3_snapshots import (
    S3AccessDeniedError,
    S3BucketNotFoundError,
    S3ConnectionError,
    S3SnapshotStore,
    s3_client,
)
from starhold.storage.snapshots import KEEP_SNAPSHOTS, LocalDirSnapshotStore, Manifest

ROOM = "system/sol"


def _make_db(path, value: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT)")
    con.execute("INSERT OR REPLACE INTO t VALUES ('k', ?)", (value,))
    con.commit()
    con.close()
    return path


def _read_db(path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT v FROM t WHERE k = 'k'").fetchone()[0]
    finally:
        con.close()


async def make_db(path, value: str):
    """A real SQLite file with one row ``('k', value)`` (written in a thread, as all blocking
    work of these async tests: the suite's watchdog fails a test that blocks its loop)."""
    return await asyncio.to_thread(_make_db, path, value)


async def read_db(path) -> str:
    return await asyncio.to_thread(_read_db, path)


async def snapshot_keys(client, bucket: str, room: str = ROOM) -> list[str]:
    return await asyncio.to_thread(_snapshot_keys, client, bucket, room)


def _snapshot_keys(client, bucket: str, room: str) -> list[str]:
    listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{room}/snapshot-")
    return sorted(item["Key"] for item in listing.get("Contents", []))


async def assert_consistent(client, store: S3SnapshotStore, manifest: Manifest, room: str = ROOM):
    await asyncio.to_thread(_assert_consistent, client, store, manifest, room)


def _assert_consistent(client, store: S3SnapshotStore, manifest: Manifest, room: str):
    """The manifest's version object exists, has the manifest's size and was written by the
    manifest's epoch; the manifest records that object's ETag."""
    head = client.head_object(Bucket=store.bucket, Key=f"{room}/snapshot-{manifest.version:08d}.sqlite")
    assert head["ContentLength"] == manifest.size
    assert head["Metadata"]["epoch"] == str(manifest.epoch)
    meta = client.head_object(Bucket=store.bucket, Key=f"{room}/manifest.json")["Metadata"]
    assert meta["snapshot-etag"] == head["ETag"].strip('"')
    assert int(meta["epoch"]) == manifest.epoch


# ---- SeaweedFS: the real thing --------------------------------------------------------------


async def test_round_trip_of_a_sqlite_file(s3_store, tmp_path):
    db = await make_db(tmp_path / "room.sqlite", "hello")
    manifest = await s3_store.save(ROOM, db, epoch=1)
    assert (manifest.room, manifest.version, manifest.epoch) == (ROOM, 1, 1)
    assert manifest.size == db.stat().st_size
    assert await s3_store.latest(ROOM) == manifest
    dest = tmp_path / "restored" / "room.sqlite"
    assert await s3_store.restore(ROOM, dest) == manifest
    assert await read_db(dest) == "hello"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["room.sqlite"]  # no temp file left
    assert await s3_store.latest("system/other") is None
    assert await s3_store.restore("system/other", tmp_path / "none.sqlite") is None
    assert not (tmp_path / "none.sqlite").exists()


async def test_restore_on_a_node_without_the_local_file(seaweedfs, tmp_path):
    bucket = await asyncio.to_thread(seaweedfs.create_bucket)
    node_a = await asyncio.to_thread(seaweedfs.store, bucket)
    node_b = await asyncio.to_thread(seaweedfs.store, bucket)
    await node_a.save(ROOM, await make_db(tmp_path / "a" / "room.sqlite", "from node a"), epoch=3)
    fresh = tmp_path / "node-b" / "data" / "rooms" / "room.sqlite"  # no such directory yet
    manifest = await node_b.restore(ROOM, fresh)
    assert manifest is not None and manifest.epoch == 3
    assert await read_db(fresh) == "from node a"
    node_a.close()
    node_b.close()


async def test_versions_are_pruned_to_keep_snapshots(s3_store, seaweedfs, tmp_path):
    client = await asyncio.to_thread(seaweedfs.client)
    db = tmp_path / "room.sqlite"
    for i in range(1, KEEP_SNAPSHOTS + 3):
        await make_db(db, f"v{i}")
        manifest = await s3_store.save(ROOM, db, epoch=1)
        assert manifest.version == i
    kept = range(manifest.version - KEEP_SNAPSHOTS + 1, manifest.version + 1)
    expected = [f"{ROOM}/snapshot-{v:08d}.sqlite" for v in kept]
    assert await snapshot_keys(client, s3_store.bucket) == expected
    assert await s3_store.restore(ROOM, tmp_path / "out.sqlite") == manifest
    assert await read_db(tmp_path / "out.sqlite") == f"v{manifest.version}"
    await assert_consistent(client, s3_store, manifest)


async def test_older_epoch_is_refused_after_a_newer_save(s3_store, seaweedfs, tmp_path):
    client = await asyncio.to_thread(seaweedfs.client)
    newer = await s3_store.save(ROOM, await make_db(tmp_path / "new.sqlite", "newer"), epoch=7)
    with pytest.raises(StaleEpochError):
        await s3_store.save(ROOM, await make_db(tmp_path / "old.sqlite", "zombie"), epoch=6)
    assert await s3_store.latest(ROOM) == newer
    # nothing was uploaded for the refused save
    assert await snapshot_keys(client, s3_store.bucket) == [f"{ROOM}/snapshot-00000001.sqlite"]
    assert await s3_store.restore(ROOM, tmp_path / "out.sqlite") == newer
    assert await read_db(tmp_path / "out.sqlite") == "newer"
    # the same epoch may save again
    same = await s3_store.save(ROOM, await make_db(tmp_path / "new.sqlite", "again"), epoch=7)
    assert (same.version, same.epoch) == (2, 7)


async def test_concurrent_saves_leave_the_higher_epoch(seaweedfs, tmp_path):
    """Two activations (each its own store and client, as on two nodes) save at once."""
    bucket = await asyncio.to_thread(seaweedfs.create_bucket)
    client = await asyncio.to_thread(seaweedfs.client)
    nodes = [await asyncio.to_thread(seaweedfs.store, bucket) for _ in range(2)]
    for round_ in range(6):
        room = f"system/race-{round_}"
        if round_ % 2:  # half the rounds start from an existing manifest (If-Match path)
            await nodes[0].save(room, await make_db(tmp_path / f"base{round_}.sqlite", "base"), epoch=1)
        low = await make_db(tmp_path / f"low{round_}.sqlite", "low")
        high = await make_db(tmp_path / f"high{round_}.sqlite", "high")
        first, second = (nodes[0], nodes[1]) if round_ % 3 else (nodes[1], nodes[0])
        results = await asyncio.gather(
            first.save(room, low, epoch=5), second.save(room, high, epoch=6), return_exceptions=True
        )
        low_result, high_result = results
        assert isinstance(high_result, Manifest) and high_result.epoch == 6, results
        assert isinstance(low_result, (Manifest, StaleEpochError)), results
        if isinstance(low_result, Manifest):
            assert low_result.version < high_result.version  # it landed first, then was superseded
        latest = await nodes[0].latest(room)
        assert latest == high_result
        await assert_consistent(client, nodes[0], latest, room)
        assert await nodes[1].restore(room, tmp_path / f"out{round_}.sqlite") == latest
        assert await read_db(tmp_path / f"out{round_}.sqlite") == "high"
    for node in nodes:
        node.close()


async def test_many_racing_writers_one_winner_per_version(seaweedfs, tmp_path):
    bucket = await asyncio.to_thread(seaweedfs.create_bucket)
    client = await asyncio.to_thread(seaweedfs.client)
    nodes = [await asyncio.to_thread(seaweedfs.store, bucket) for _ in range(4)]
    dbs = [await make_db(tmp_path / f"e{e}.sqlite", f"epoch {e}") for e in range(1, 5)]
    results = await asyncio.gather(
        *(node.save(ROOM, db, epoch=e) for e, (node, db) in enumerate(zip(nodes, dbs), start=1)),
        return_exceptions=True,
    )
    assert all(isinstance(r, (Manifest, StaleEpochError)) for r in results), results
    assert isinstance(results[3], Manifest)
    landed = [r for r in results if isinstance(r, Manifest)]
    assert len({m.version for m in landed}) == len(landed)  # no two writers share a version
    latest = await nodes[0].latest(ROOM)
    assert latest.epoch == 4 and latest == results[3]
    await assert_consistent(client, nodes[0], latest)
    assert await nodes[1].restore(ROOM, tmp_path / "out.sqlite") == latest
    assert await read_db(tmp_path / "out.sqlite") == "epoch 4"


async def test_seaweedfs_honours_conditional_writes(s3_store):
    assert await s3_store.conditional_writes_supported() is True


async def test_wrong_credentials_are_access_denied(seaweedfs, tmp_path):
    store = await asyncio.to_thread(seaweedfs.store, aws_secret_access_key="not-the-secret")
    with pytest.raises(S3AccessDeniedError, match="access denied"):
        await store.latest(ROOM)
    with pytest.raises(S3AccessDeniedError):
        await store.save(ROOM, await make_db(tmp_path / "r.sqlite", "x"), epoch=1)


async def test_missing_bucket_is_a_clear_error(seaweedfs, tmp_path):
    store = S3SnapshotStore(
        f"starhold-missing-{uuid.uuid4().hex[:8]}",
        endpoint_url=seaweedfs.endpoint_url,
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
    )
    with pytest.raises(S3BucketNotFoundError, match="does not exist"):
        await store.save(ROOM, await make_db(tmp_path / "r.sqlite", "x"), epoch=1)
    with pytest.raises(S3BucketNotFoundError):
        await store.restore(ROOM, tmp_path / "out.sqlite")
    assert await store.ensure_bucket() is True
    assert await store.ensure_bucket() is False
    assert (await store.save(ROOM, tmp_path / "r.sqlite", epoch=1)).version == 1


async def test_unreachable_endpoint_is_a_connection_error(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3SnapshotStore(
        "bucket-x",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(S3ConnectionError, match="unreachable"):
        await store.latest(ROOM)
    with pytest.raises(StorageError):
        await store.save(ROOM, await make_db(tmp_path / "r.sqlite", "x"), epoch=1)


# ---- LocalDirSnapshotStore: the same fencing -------------------------------------------------


async def test_local_store_refuses_an_older_epoch(tmp_path):
    store = LocalDirSnapshotStore(tmp_path / "snaps")
    newer = await store.save(ROOM, await make_db(tmp_path / "new.sqlite", "newer"), epoch=4)
    with pytest.raises(StaleEpochError):
        await store.save(ROOM, await make_db(tmp_path / "old.sqlite", "zombie"), epoch=3)
    assert await store.latest(ROOM) == newer
    assert [p.name for p in (tmp_path / "snaps" / ROOM).glob("snapshot-*.sqlite")] == ["snapshot-00000001.sqlite"]
    assert await store.restore(ROOM, tmp_path / "out.sqlite") == newer
    assert await read_db(tmp_path / "out.sqlite") == "newer"
    assert (await store.save(ROOM, tmp_path / "new.sqlite", epoch=4)).version == 2


async def test_local_store_concurrent_saves_leave_the_higher_epoch(tmp_path):
    for round_ in range(5):
        root = tmp_path / f"snaps{round_}"
        stores = [LocalDirSnapshotStore(root) for _ in range(4)]  # as if four processes
        dbs = [await make_db(tmp_path / f"r{round_}e{e}.sqlite", f"epoch {e}") for e in range(1, 5)]
        results = await asyncio.gather(
            *(s.save(ROOM, db, epoch=e) for e, (s, db) in enumerate(zip(stores, dbs), start=1)),
            return_exceptions=True,
        )
        assert all(isinstance(r, (Manifest, StaleEpochError)) for r in results), results
        assert results[3] == await stores[0].latest(ROOM) and results[3].epoch == 4
        landed = [r for r in results if isinstance(r, Manifest)]
        assert len({m.version for m in landed}) == len(landed)
        snapshot = root / ROOM / f"snapshot-{results[3].version:08d}.sqlite"
        assert snapshot.stat().st_size == results[3].size
        assert await stores[1].restore(ROOM, tmp_path / f"out{round_}.sqlite") == results[3]
        assert await read_db(tmp_path / f"out{round_}.sqlite") == "epoch 4"


# ---- moto: fault injection -------------------------------------------------------------------


def moto_client(endpoint_url: str):
    return s3_client(
        endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 2}),
    )


async def moto_store(endpoint_url: str, bucket: str = "snapshots", client=None) -> S3SnapshotStore:
    client = client or await asyncio.to_thread(moto_client, endpoint_url)
    store = S3SnapshotStore(bucket, endpoint_url=endpoint_url, client=client)
    await store.ensure_bucket()
    return store


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **kwargs):
        yield self._body


def inject(client, key_suffix: str, fault: str) -> list:
    """Make every PutObject of a key ending in ``key_suffix`` fail with ``fault`` ("500" or
    "network") before it reaches the server; returns the list of failed URLs."""
    failed = []

    def before_send(request, **kwargs):
        if request.method == "PUT" and request.url.split("?")[0].endswith(key_suffix):
            failed.append(request.url)
            if fault == "network":
                raise EndpointConnectionError(endpoint_url=request.url)
            body = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
            return AWSResponse(request.url, 500, {}, _Raw(body))
        return None

    client.meta.events.register("before-send.s3.PutObject", before_send)
    return failed


@pytest.mark.parametrize("fault", ["500", "network"])
async def test_failed_snapshot_upload_keeps_the_previous_manifest(moto_s3, tmp_path, fault):
    client = await asyncio.to_thread(moto_client, moto_s3)
    store = await moto_store(moto_s3, client=client)
    first = await store.save(ROOM, await make_db(tmp_path / "r.sqlite", "first"), epoch=1)
    failed = inject(client, ".sqlite", fault)
    with pytest.raises(StorageError):
        await store.save(ROOM, await make_db(tmp_path / "r.sqlite", "second"), epoch=1)
    assert failed  # the fault did fire
    assert await store.latest(ROOM) == first
    assert await store.restore(ROOM, tmp_path / "out.sqlite") == first
    assert await read_db(tmp_path / "out.sqlite") == "first"


@pytest.mark.parametrize("fault", ["500", "network"])
async def test_failed_manifest_write_keeps_the_previous_manifest(moto_s3, tmp_path, fault):
    client = await asyncio.to_thread(moto_client, moto_s3)
    store = await moto_store(moto_s3, client=client)
    first = await store.save(ROOM, await make_db(tmp_path / "r.sqlite", "first"), epoch=1)
    failed = inject(client, "/manifest.json", fault)
    with pytest.raises(S3ConnectionError if fault == "network" else StorageError):
        await store.save(ROOM, await make_db(tmp_path / "r.sqlite", "second"), epoch=1)
    assert failed
    assert await store.latest(ROOM) == first
    assert await store.restore(ROOM, tmp_path / "out.sqlite") == first
    assert await read_db(tmp_path / "out.sqlite") == "first"
    # The uploaded-but-unreferenced version 2 is never overwritten: the next save skips it.
    healthy = await moto_store(moto_s3)
    third = await healthy.save(ROOM, await make_db(tmp_path / "r.sqlite", "third"), epoch=1)
    assert third.version == 3
    assert await healthy.restore(ROOM, tmp_path / "out.sqlite") == third
    assert await read_db(tmp_path / "out.sqlite") == "third"
    await assert_consistent(client, healthy, third)


async def test_missing_bucket_on_moto(moto_s3, tmp_path):
    client = await asyncio.to_thread(moto_client, moto_s3)
    store = S3SnapshotStore("no-such-bucket", endpoint_url=moto_s3, client=client)
    with pytest.raises(S3BucketNotFoundError):
        await store.save(ROOM, await make_db(tmp_path / "r.sqlite", "x"), epoch=1)


def race_on_manifest_put(client, racer: S3SnapshotStore, source, epoch: int) -> list:
    """Just before the store's first conditional manifest PUT, ``racer`` saves ``source`` at
    ``epoch`` (a writer that commits between our read of the manifest and our write)."""
    fired = []

    def before_params(params, **kwargs):
        if params.get("Key", "").endswith("/manifest.json") and not fired:
            fired.append(racer._save(ROOM, source, epoch, None))

    client.meta.events.register("before-parameter-build.s3.PutObject", before_params)
    return fired


async def test_lost_manifest_race_to_a_newer_epoch_is_stale(moto_s3, tmp_path):
    client = await asyncio.to_thread(moto_client, moto_s3)
    store = await moto_store(moto_s3, client=client)
    await store.save(ROOM, await make_db(tmp_path / "base.sqlite", "base"), epoch=1)
    racer = await moto_store(moto_s3)
    fired = race_on_manifest_put(client, racer, await make_db(tmp_path / "new.sqlite", "newer"), epoch=3)
    with pytest.raises(StaleEpochError):
        await store.save(ROOM, await make_db(tmp_path / "old.sqlite", "zombie"), epoch=2)
    assert fired and (await store.latest(ROOM)) == fired[0]
    # Our version object (version 2; the racer took 3) was deleted, the racer's kept.
    assert await snapshot_keys(client, "snapshots") == [f"{ROOM}/snapshot-{v:08d}.sqlite" for v in (1, 3)]
    assert await store.restore(ROOM, tmp_path / "out.sqlite") == fired[0]
    assert await read_db(tmp_path / "out.sqlite") == "newer"


async def test_lost_manifest_race_to_an_older_epoch_is_retried(moto_s3, tmp_path):
    client = await asyncio.to_thread(moto_client, moto_s3)
    store = await moto_store(moto_s3, client=client)
    racer = await moto_store(moto_s3)
    fired = race_on_manifest_put(client, racer, await make_db(tmp_path / "old.sqlite", "older"), epoch=1)
    manifest = await store.save(ROOM, await make_db(tmp_path / "new.sqlite", "newer"), epoch=2)
    assert fired and fired[0].epoch == 1
    assert manifest.epoch == 2 and manifest.version > fired[0].version
    assert await store.latest(ROOM) == manifest
    await assert_consistent(client, store, manifest)
    assert await store.restore(ROOM, tmp_path / "out.sqlite") == manifest
    assert await read_db(tmp_path / "out.sqlite") == "newer"


def ignore_conditions(client) -> None:
    """Simulate a server that ignores conditional headers: strip them from every PutObject."""

    def strip(params, **kwargs):
        params.pop("IfMatch", None)
        params.pop("IfNoneMatch", None)

    client.meta.events.register("before-parameter-build.s3.PutObject", strip)


def blind_write(client, bucket: str, version: int, epoch: int, source) -> Manifest:
    """What a stale writer on a server without conditional writes does: overwrite version
    ``version`` and the manifest without looking."""
    key = f"{ROOM}/snapshot-{version:08d}.sqlite"
    data = source.read_bytes()
    etag = client.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"epoch": str(epoch)})["ETag"]
    manifest = Manifest(ROOM, version, epoch, 0.0, len(data))
    body = json.dumps(dataclasses.asdict(manifest)).encode()
    client.put_object(
        Bucket=bucket,
        Key=f"{ROOM}/manifest.json",
        Body=body,
        Metadata={"snapshot-etag": etag.strip('"'), "epoch": str(epoch)},
    )
    return manifest


@pytest.mark.parametrize("intruder_epoch", [1, 3])
async def test_read_after_write_check_when_conditions_are_ignored(moto_s3, tmp_path, intruder_epoch):
    """On a server that ignores conditional headers, a writer that read the manifest before
    our commit blindly overwrites our version 1 and manifest right after our PUT: the
    read-after-write check catches it. An older epoch is written over again; a newer one makes
    this save stale."""
    client = await asyncio.to_thread(moto_client, moto_s3)
    store = await moto_store(moto_s3, client=client)
    ignore_conditions(client)
    assert await store.conditional_writes_supported() is False
    intruder_source = await make_db(tmp_path / "i.sqlite", "intruder")
    fired = []

    def mark(params, context, **kwargs):
        if params.get("Key", "").endswith("/manifest.json"):
            context["manifest_put"] = True

    def after_put(context, **kwargs):
        if context.get("manifest_put") and not fired:
            fired.append(blind_write(moto_client(moto_s3), "snapshots", 1, intruder_epoch, intruder_source))

    client.meta.events.register("before-parameter-build.s3.PutObject", mark)
    client.meta.events.register("after-call.s3.PutObject", after_put)
    source = await make_db(tmp_path / "ours.sqlite", "ours")
    if intruder_epoch > 2:
        with pytest.raises(StaleEpochError):
            await store.save(ROOM, source, epoch=2)
        assert await store.latest(ROOM) == fired[0]
    else:
        manifest = await store.save(ROOM, source, epoch=2)
        assert fired and (manifest.version, manifest.epoch) == (2, 2)
        assert await store.latest(ROOM) == manifest
        assert await store.restore(ROOM, tmp_path / "out.sqlite") == manifest
        assert await read_db(tmp_path / "out.sqlite") == "ours"
        await assert_consistent(client, store, manifest)


async def test_moto_honours_conditional_writes(moto_s3):
    store = await moto_store(moto_s3)
    assert await store.conditional_writes_supported() is True


async def test_boto3_never_runs_on_the_event_loop_thread(moto_s3, tmp_path, monkeypatch):
    """Every S3 call (and the lazy creation of the client) happens in a worker thread."""
    calls: list[tuple[str, int]] = []
    created: list[int] = []
    real_client = boto3.session.Session.client

    def recording_client(self, *args, **kwargs):
        client = real_client(self, *args, **kwargs)
        created.append(threading.get_ident())
        client.meta.events.register(
            "before-call.s3", lambda model, **kw: calls.append((model.name, threading.get_ident()))
        )
        return client

    monkeypatch.setattr(boto3.session.Session, "client", recording_client)
    loop_thread = threading.get_ident()
    store = S3SnapshotStore(
        "threads", endpoint_url=moto_s3, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    await store.ensure_bucket()
    await store.save(ROOM, await make_db(tmp_path / "r.sqlite", "x"), epoch=1)
    await store.latest(ROOM)
    await store.restore(ROOM, tmp_path / "out.sqlite")
    await store.conditional_writes_supported()
    ops = {name for name, _ in calls}
    assert {"CreateBucket", "GetObject", "ListObjectsV2", "PutObject", "HeadObject", "DeleteObject"} <= ops
    assert created and loop_thread not in created
    assert loop_thread not in {thread for _, thread in calls}
    store.close()
