"""Example rooms: small, complete rooms that show the Room API (docs/rooms.md) and that the
test suite runs on both hosts. Registered as kinds ``counter`` and ``reminder``."""

from __future__ import annotations

import msgspec

from starhold import HttpRequest, HttpResponse, Room, define_room


class Inc(msgspec.Struct, frozen=True):
    """``inc``: count one more (no fields)."""


@define_room
class CounterRoom(Room):
    """Counts ``inc`` messages; every one is answered with the new count, released only after
    the count is durable (the output gate)."""

    kind = "counter"
    messages = {"inc": Inc}

    async def on_start(self) -> None:
        self.count = await self.storage.get("count") or 0

    async def on_message(self, conn, message) -> None:
        if message.type != "inc":
            return
        self.count += 1
        await self.storage.put("count", self.count)
        conn.send({"count": self.count})

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, {"count": self.count})


@define_room
class ReminderRoom(Room):
    """A durable reminder. ``GET arm?in=<seconds>&failures=<n>`` sets the alarm ``in`` seconds
    from now (default 5) and makes the first ``n`` deliveries fail; ``GET`` (any other path)
    returns ``{"fired": [[time, retry_count, is_retry], ...], "alarm": time | None}``. Every
    delivery is recorded with ``storage.sync()`` before a planned failure, so failed
    deliveries are visible too."""

    kind = "reminder"

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if request.path == "arm":
            await self.storage.put("failures", int(request.query.get("failures", 0)))
            await self.storage.set_alarm(self.clock.now() + float(request.query.get("in", 5)))
        return HttpResponse(200, {"fired": await self.storage.get("fired") or [],
                                  "alarm": await self.storage.get_alarm()})

    async def on_alarm(self, info) -> None:
        fired = await self.storage.get("fired") or []
        failures = await self.storage.get("failures") or 0
        await self.storage.put("fired", fired + [[self.clock.now(), info.retry_count, info.is_retry]])
        await self.storage.put("failures", max(failures - 1, 0))
        await self.storage.sync()
        if failures:
            raise RuntimeError("planned failure")
