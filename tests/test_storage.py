"""SqliteRoomStorage: the KV API, SQL, limits, transactions; snapshot stores."""

import pytest

from starhold.storage.base import MAX_VALUE_BYTES
from starhold.storage.snapshots import LocalDirSnapshotStore
from starhold.storage.sqlite_store import SqliteRoomStorage


@pytest.fixture
async def store(tmp_path):
    s = await SqliteRoomStorage(tmp_path / "room.sqlite").open()
    yield s
    await s.close()


async def test_kv_get_put_delete_list(store):
    await store.put("a:1", {"x": 1.5})
    await store.put({"a:2": [1, 2], "a:3": "three", "b:1": None})
    await store.commit()
    assert await store.get("a:1") == {"x": 1.5}
    assert await store.get(["a:2", "missing", "b:1"]) == {"a:2": [1, 2], "b:1": None}
    assert list(await store.list(prefix="a:")) == ["a:1", "a:2", "a:3"]
    assert list(await store.list(prefix="a:", reverse=True, limit=2)) == ["a:3", "a:2"]
    assert list(await store.list(start="a:2", end="b:1")) == ["a:2", "a:3"]
    assert await store.delete("a:1") is True and await store.delete("a:1") is False
    assert await store.delete(["a:2", "a:3", "zz"]) == 2
    await store.delete_all()
    assert await store.list() == {}


async def test_limits_are_enforced(store):
    with pytest.raises(ValueError):
        await store.put("big", b"x" * (MAX_VALUE_BYTES + 1))
    with pytest.raises(ValueError):
        await store.put("k" * 3000, 1)
    with pytest.raises(TypeError):
        await store.put("obj", object())


@pytest.mark.parametrize("value", [2**70, 2**64, -(2**63) - 1, [1, {"deep": -(2**80)}]])
async def test_integers_msgpack_cannot_encode_raise_value_error_before_anything_is_written(store, value):
    with pytest.raises(ValueError, match="integer"):
        await store.put("big", value)
    with pytest.raises(ValueError, match="integer"):
        await store.put({"ok": 1, "big": value})
    await store.commit()
    assert await store.list() == {}


async def test_integers_at_msgpacks_limits_round_trip(store):
    await store.put({"max": 2**64 - 1, "min": -(2**63)})
    await store.commit()
    assert await store.get(["max", "min"]) == {"max": 2**64 - 1, "min": -(2**63)}


async def test_rollback_discards_uncommitted_writes_and_commit_persists(store, tmp_path):
    await store.put("kept", 1)
    await store.commit()
    await store.put("dropped", 2)
    await store.sql("CREATE TABLE t (x INTEGER)")
    await store.rollback()
    assert await store.get("dropped") is None
    await store.sql("CREATE TABLE t (x INTEGER)")
    await store.sql("INSERT INTO t VALUES (?), (?)", 1, 2)
    await store.set_alarm(123.5)
    await store.commit()
    await store.close()
    again = await SqliteRoomStorage(tmp_path / "room.sqlite").open()
    assert await again.get("kept") == 1
    assert await again.sql("SELECT x FROM t ORDER BY x") == [(1,), (2,)]
    assert await again.get_alarm() == 123.5
    await again.close()


async def test_local_snapshots_keep_versions_and_restore(store, tmp_path):
    snaps = LocalDirSnapshotStore(tmp_path / "snaps")
    await store.put("v", 1)
    await store.commit()
    for epoch in range(1, 6):
        await store.backup_to(tmp_path / "copy.sqlite")
        manifest = await snaps.save("system/x", tmp_path / "copy.sqlite", epoch)
    assert manifest.version == 5 and manifest.epoch == 5
    assert len(list((tmp_path / "snaps" / "system" / "x").glob("snapshot-*.sqlite"))) == 3
    restored = tmp_path / "restored.sqlite"
    assert (await snaps.restore("system/x", restored)).version == 5
    r = await SqliteRoomStorage(restored).open()
    assert await r.get("v") == 1
    await r.close()
    assert await snaps.restore("system/none", tmp_path / "none.sqlite") is None


_MAX = "\U0010ffff"
_TRICKY_KEYS = [
    "", "o", "o" + _MAX, "p", "p\x00", "p" + _MAX, "p" + _MAX * 2, "p" + _MAX + "z", "p" + _MAX + "\x00",
    "pa", "pz", "p\ud7ff", "p\ud7ff" + _MAX, "p\ue000", "q", "q\x00", _MAX, _MAX + "a", _MAX * 3,
    "a\ud7ff", "a\ud7ff" + _MAX + "x", "a\ue000", "é", "é" + _MAX, "ê", "\U0001f600", "\U0001f600" + _MAX, "\U0001f601",
]


@pytest.mark.parametrize("prefix", [
    "p", "p" + _MAX, "p" + _MAX * 2, "o", "q", _MAX, _MAX * 2, "a\ud7ff", "é", "\U0001f600", "pa", "zz", "",
])
async def test_list_prefix_returns_exactly_the_keys_that_start_with_it(store, prefix):
    await store.put({k: i for i, k in enumerate(_TRICKY_KEYS)})
    await store.commit()
    expected = sorted(k for k in _TRICKY_KEYS if k.startswith(prefix))
    assert list(await store.list(prefix=prefix)) == expected
    assert list(await store.list(prefix=prefix, reverse=True)) == expected[::-1]
    assert list(await store.list(prefix=prefix, limit=2)) == expected[:2]
    assert list(await store.list(prefix=prefix, start="p" + _MAX)) == [k for k in expected if k >= "p" + _MAX]
