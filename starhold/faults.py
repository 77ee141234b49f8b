"""Storage fault injection for the room harness (``h.faults``): make chosen storage
operations of a room fail, stall or kill the activation, to test what a room does when its
storage does (docs/rooms.md, "Testing rooms")."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from .errors import ActivationKilled
from .storage.base import StorageError
from .storage.sqlite_store import SqliteRoomStorage

__all__ = ["FaultPlan", "faulty_storage_factory"]


@dataclass
class _Fault:
    op: str
    key_prefix: str | None
    times: int
    action: str  # "fail" | "delay" | "kill"
    exc: BaseException | None = None
    seconds: float = 0.0


class FaultPlan:
    """Faults to inject into the room's storage operations (in-process host).

    ``op`` is a storage method name: ``put``, ``get``, ``delete``, ``list``, ``sql``,
    ``set_alarm``, ``commit``... ``key_prefix`` restricts key operations to keys starting
    with it. Each fault applies to the next ``times`` matching operations.
    """

    def __init__(self) -> None:
        self._faults: list[_Fault] = []
        self.log: list[tuple[str, Any]] = []
        """Every storage operation seen: (op, first argument)."""

    def fail(self, op: str, *, key_prefix: str | None = None, times: int = 1,
             exc: BaseException | None = None) -> None:
        """Make the next matching operations raise ``exc`` (default ``StorageError``)."""
        self._faults.append(_Fault(op, key_prefix, times, "fail", exc or StorageError(f"injected {op} failure")))

    def delay(self, op: str, seconds: float, *, key_prefix: str | None = None, times: int = 1) -> None:
        """Make the next matching operations take ``seconds`` longer (real time)."""
        self._faults.append(_Fault(op, key_prefix, times, "delay", seconds=seconds))

    def kill(self, op: str, *, key_prefix: str | None = None, times: int = 1) -> None:
        """Kill the activation at the next matching operation (``ActivationKilled``): its open
        transaction is lost and its held output dropped, as if the process died there."""
        self._faults.append(_Fault(op, key_prefix, times, "kill"))

    async def before(self, op: str, arg: Any) -> None:
        self.log.append((op, arg))
        for fault in self._faults:
            if fault.times <= 0 or fault.op != op:
                continue
            if fault.key_prefix is not None and not (isinstance(arg, str) and arg.startswith(fault.key_prefix)):
                continue
            fault.times -= 1
            if fault.action == "delay":
                await asyncio.sleep(fault.seconds)
            elif fault.action == "kill":
                raise ActivationKilled(f"activation killed at {op}({arg!r})")
            else:
                raise fault.exc


def faulty_storage_factory(plan: FaultPlan):
    """A storage factory for ``RoomRuntime`` whose storage consults ``plan`` before each op."""

    class FaultyStorage(SqliteRoomStorage):
        pass

    def wrap(name: str):
        original = getattr(SqliteRoomStorage, name)

        async def method(self, *args, **kwargs):
            await plan.before(name, args[0] if args else None)
            return await original(self, *args, **kwargs)

        method.__name__ = name
        return method

    for name in ("get", "put", "delete", "delete_all", "list", "sql", "set_alarm", "get_alarm",
                 "delete_alarm", "commit", "sync"):
        setattr(FaultyStorage, name, wrap(name))
    return FaultyStorage
