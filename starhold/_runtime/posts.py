"""Room-to-room requests of an activation (``starhold.calls``): ``call_room`` and the
transactional outbox of posts.

A post is a row of the room's ``_starhold_outbox`` table written in the hook's transaction
(``queue_post``) plus an item in the hook's held output; when the commit succeeds the item
joins the in-memory queue of its target room and a delivery task per target sends the queue in
order, outside the input gate, deleting each row (a small commit under the gate) once the
target answered below 500. A failed commit drops the item with the rest of the held output.
An activation loads the rows left by the previous one when it starts.

``Posts`` is a mixin of ``RoomRuntime``: it uses ``key``, ``state``, ``storage``, ``_gate``,
``_pending`` and ``_commit_and_release``, and the room directory given to the runtime.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from ..calls import RETRY_FIRST, RETRY_MAX
from ..errors import RoomUnavailable
from ..room import HttpRequest, HttpResponse
from .state import ActivationState

log = logging.getLogger("starhold.room")

POST = object()
"""Marks a post in the held output (``_pending``): ``(POST, (seq, item))``."""
DELIVERY_TIMEOUT = 30.0
"""Seconds one delivery attempt of a post may take (waking the target included)."""


class _BadAddress(Exception):
    """``directory.get`` refused the address (its ``KeyError`` or ``ValueError`` in ``args[0]``)."""


class Posts:
    """``call_room``, ``queue_post`` and the outbox's delivery (see the module docstring)."""

    def _posts_init(self, directory) -> None:
        self._directory_source = directory
        self._directory = None
        self._posts: dict[tuple[str, str], deque] = {}
        self._post_tasks: dict[tuple[str, str], asyncio.Task] = {}
        self._post_seq = 0
        self.posts_delivered = 0

    def directory(self):
        """The room directory that reaches other rooms (created on first use). Raises
        ``RoomUnavailable`` when the host gave none."""
        if self._directory is None:
            source = self._directory_source
            if source is None:
                raise RoomUnavailable(f"room {self.key}: this host cannot reach other rooms")
            self._directory = source() if callable(source) and not hasattr(source, "get") else source
        return self._directory

    async def _request_once(self, kind: str, room_id: str, request: HttpRequest) -> HttpResponse:
        try:
            handle = await self.directory().get(kind, room_id)
        except (KeyError, ValueError) as exc:  # an unknown kind, an invalid id: retrying cannot help
            raise _BadAddress(exc) from exc
        return await handle.request(request)

    async def call_room(self, kind: str, room_id: str, request: HttpRequest, timeout: float) -> HttpResponse:
        """``request`` to room ``(kind, room_id)``, retried (the room may be hibernating or
        restarting) until it answers or ``timeout`` seconds passed. Raises ``RoomUnavailable``,
        ``KeyError`` for an unknown kind, ``ValueError`` for an invalid room id."""
        deadline = time.monotonic() + timeout
        delay, last = RETRY_FIRST, None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RoomUnavailable(f"{kind}/{room_id} did not answer {request.path!r} in {timeout:g} s: {last!r}")
            try:
                return await asyncio.wait_for(self._request_once(kind, room_id, request), left)
            except _BadAddress as exc:
                raise exc.args[0] from None
            except Exception as exc:  # RoomGone, a timeout, a host or a hook failing: retry
                last = exc
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, RETRY_MAX)

    def queue_post(self, item: dict) -> None:
        """Write post ``item`` (``{"kind", "id", "method", "path", "body", "key"}``) in the
        current hook's transaction. Raises ``ValueError`` outside a hook."""
        if self._pending is None or self.state != ActivationState.ACTIVE:
            raise ValueError("rooms.post is only allowed inside a hook")
        self._post_seq += 1
        self.storage.outbox_add(self._post_seq, item)
        self._pending.append((POST, (self._post_seq, item)))

    def _release(self, pending: list) -> None:
        """Hand committed output to its gateways and committed posts to their delivery."""
        for item in pending:
            if item[0] is POST:
                self._enqueue_post(*item[1])
            else:
                self._deliver(*item)

    def _enqueue_post(self, seq: int, item: dict) -> None:
        target = (item["kind"], item["id"])
        self._posts.setdefault(target, deque()).append((seq, item))
        task = self._post_tasks.get(target)
        if task is None or task.done():
            self._post_tasks[target] = asyncio.get_running_loop().create_task(self._deliver_posts(target))

    def posts_pending(self) -> int:
        """How many committed posts wait for delivery."""
        return sum(len(q) for q in self._posts.values())

    async def _deliver_posts(self, target: tuple[str, str]) -> None:
        queue = self._posts[target]
        delay, failing = RETRY_FIRST, False
        while queue and self.state == ActivationState.ACTIVE:
            seq, item = queue[0]
            request = HttpRequest(item["method"], item["path"], {}, item["body"].encode(),
                                  sender=self.key, key=item["key"])
            try:
                response = await asyncio.wait_for(self._request_once(*target, request), DELIVERY_TIMEOUT)
                if response.status >= 500:
                    raise RoomUnavailable(f"status {response.status}: {response.body!r}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    log.warning("room %s: post %r to %s/%s failed (%r); retrying", self.key, item["path"],
                                *target, exc)
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if failing:
                log.info("room %s: posts to %s/%s delivered again", self.key, *target)
            delay, failing = RETRY_FIRST, False
            async with self._gate:
                if self.state != ActivationState.ACTIVE:
                    return
                self._pending = []
                self.storage.outbox_delete([seq])
                try:
                    await self._commit_and_release()
                except Exception:  # the row stays: the next activation delivers it again
                    log.exception("room %s: deleting a delivered post failed", self.key)
                    return
            queue.popleft()
            self.posts_delivered += 1
        if not queue:
            self._posts.pop(target, None)
            self._post_tasks.pop(target, None)
            self._touch()

    def _stop_posts(self) -> None:
        for task in self._post_tasks.values():
            task.cancel()
        self._post_tasks.clear()
        self._posts.clear()
