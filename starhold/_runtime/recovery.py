"""Recovery of a replicated room by a new activation (``starhold._runtime.replication`` explains
the log): seal the previous holder's log, bring the local file to the end of the chain
(keep it, or restore the snapshot and replay the segments), and open this activation's log
in the manifest. ``RoomRuntime.start`` calls ``recover`` and ``open_log`` once it has waited
out the previous holder's lease and fenced its local file.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..storage.replication_log import decode_segment

if TYPE_CHECKING:
    from .runtime import RoomRuntime

log = logging.getLogger("starhold.room")

READ_CONCURRENCY = 8
"""Segments downloaded at once during a recovery."""


async def seal(store, key: str, ranges: tuple) -> tuple[list[tuple[int, int, int]], dict]:
    """Close the manifest's log ``ranges``: an open range ``(epoch, after, -1)`` ends at its
    last contiguous segment. Returns the sealed ranges (empty ones dropped) and the segments
    read, ``{(epoch, last): commits}``, for the replay. Raises ``StorageError``/``ValueError``
    when the store fails or a segment is corrupt."""
    sealed: list[tuple[int, int, int]] = []
    bodies: dict[tuple[int, int], list] = {}
    for epoch, after, through in ranges:
        lasts = await store.list_log(key, epoch, after)
        if through >= 0:
            # A sealed range: its segments up to the one holding ``through``.
            cut = next((i for i, last in enumerate(lasts) if last >= through), None)
            lasts = lasts if cut is None else lasts[:cut + 1]
        semaphore = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(last: int):
            async with semaphore:
                return last, decode_segment(await store.read_log(key, epoch, last))

        expected = after + 1
        end = after
        for last, (seg_epoch, first, seg_last, commits) in await asyncio.gather(*(read(x) for x in lasts)):
            if seg_epoch != epoch or first > expected:
                break  # a gap: what follows was never acknowledged
            if through >= 0 and end >= through:
                break
            kept = [(seq, st) for seq, st in commits if seq > end and (through < 0 or seq <= through)]
            if kept:
                bodies[(epoch, kept[-1][0])] = kept
                end = kept[-1][0]
            expected = end + 1
        if through >= 0 and end < through:
            raise ValueError(f"room {key}: log {epoch} ends at {end}, its sealed range at {through}")
        if end > after:
            sealed.append((epoch, after, end))
    return sealed, bodies


def chain_end(position: tuple, sealed: list[tuple[int, int, int]]) -> tuple[int, int]:
    """The log position of the state that the snapshot at ``position`` plus ``sealed`` gives."""
    return (sealed[-1][0], sealed[-1][2]) if sealed else (int(position[0]), int(position[1]))


async def replay(storage, sealed: list[tuple[int, int, int]], bodies: dict) -> int:
    """Apply the segments of ``sealed`` (read by ``seal``) to ``storage`` in order; returns
    the number of commits replayed."""
    count = 0
    for epoch, after, through in sealed:
        for (seg_epoch, _), commits in sorted((k, v) for k, v in bodies.items() if k[0] == epoch):
            await storage.apply_log(seg_epoch, commits)
            count += len(commits)
    return count


async def recover(rt: "RoomRuntime", storage, claim) -> tuple:
    """Bring ``rt``'s local file (``storage``, already fenced with the activation's epoch) to
    the end of the room's replicated chain (snapshot + sealed log ranges of ``claim``'s manifest):
    kept when it is exactly there, else replaced by the snapshot with the log replayed.
    Returns ``(storage, rebase, sealed ranges)``: ``rebase`` when the file is this node's
    own and ahead of what was shipped from it (a restart on the same file after a crash),
    so that a snapshot of it must supersede the old log."""
    manifest = claim.manifest
    ranges = tuple(r for r in manifest.log if r[0] != manifest.epoch)
    sealed, bodies = await seal(rt.snapshots, rt.key, ranges)
    end = chain_end(manifest.position, sealed)
    local = await storage.log_position()  # final: the file is fenced
    local_version = int(await storage.meta_get("snapshot_version") or 0)
    if local == end and local_version >= manifest.version:
        return storage, False, sealed
    if claim.previous_holder == rt.lease.holder and local > end:
        return storage, True, sealed  # our own file, ahead of what was shipped from it
    await storage.close()
    for suffix in ("", "-wal", "-shm"):
        rt.db_path.with_name(rt.db_path.name + suffix).unlink(missing_ok=True)
    restored = await rt.snapshots.restore(rt.key, rt.db_path)
    storage = await rt.storage_factory(rt.db_path).open()
    replayed = await replay(storage, sealed, bodies)
    await storage.meta_put("snapshot_version", restored.version if restored else 0)
    await storage.meta_put("epoch", rt.epoch)
    storage.fenced_epoch = rt.epoch
    await storage.commit()
    if replayed:
        log.info("room %s: recovered snapshot %d + %d logged commits", rt.key,
                 restored.version if restored else 0, replayed)
    return storage, False, sealed


async def open_log(rt: "RoomRuntime", claim, rebase: bool, sealed: list) -> None:
    """Make the manifest name this activation's open log after the ``sealed`` ranges (or,
    with ``rebase``, a snapshot of the local file, which supersedes every older log)."""
    if rebase:
        tmp = rt.db_path.with_name(rt.db_path.name + ".rebase")
        try:
            await rt.storage.backup_to(tmp)
            manifest = await rt.snapshots.save(rt.key, tmp, rt.epoch, position=await rt.storage.log_position(),
                                               log=((rt.epoch, 0, -1),))
        finally:
            tmp.unlink(missing_ok=True)
        await rt.storage.meta_put("snapshot_version", manifest.version)
        await rt.storage.commit()
        return
    wanted = tuple(tuple(r) for r in sealed) + ((rt.epoch, 0, -1),)
    if tuple(claim.manifest.log) != wanted:
        await rt.snapshots.set_log(rt.key, rt.epoch, rt.lease.holder, wanted)
