"""Client-side world state: frames applied per protocol §4, and own-ship prediction.

**WorldState** mirrors the room as the frames describe it. A *keyframe* (``base`` None)
replaces everything; a *delta* applies only on top of the frame it was computed against
(``base == state.tick``): it upserts ``ships`` rows, deletes ``removed`` ids and upserts
``names``. A delta whose ``base`` is not the last applied tick is ignored and ``apply``
returns False: the caller sends ``resync`` and the server answers with a keyframe (on a
healthy socket the server never sends such a delta; it would mean a frame was lost).
Frames of a room with combat (a solar system) also carry ``hp`` (``[id, hp, max_hp]`` rows:
every ship in a keyframe, the changed ones in a delta) and ``events`` (the tick's combat
events ``[kind, a, b, value]``, ``protocol.EVENT_*``): ``hp`` is kept per ship, ``events``
holds the last applied frame's and ``event_log`` the recent ones.

**Predictor** is client-side prediction with server reconciliation, as described by Gabriel
Gambetta ("Fast-Paced Multiplayer", parts II and III) and used by Valve's Source engine
("Source Multiplayer Networking": input prediction): the player's own orders take effect on
screen at once instead of one round trip later. Each ``move_to`` sent is kept as a pending
input ``(seq, x, y, sent_at)``; every frame acknowledges inputs up to its ``ack``, which are
dropped (the frame's position already reflects them); the still-pending ones are replayed
on top of the frame's authoritative position. Starhold's motion model makes the replay
closed-form: a ship flies in a straight line at ``protocol.SHIP_SPEED`` toward its latest
target and stops there, so only the latest pending target matters. The prediction moves the
ship from the server position toward that target for the time elapsed since that input was
sent. When the ack arrives, the prediction falls back to the server position, which by then
shows the same course (up to the one-way latency the server applied the order later).
In a solar system the room flies around obstacles (waypoints) and a ship in combat or
destroyed does not follow its orders: the prediction is then only a first guess that the
frames correct, and it is skipped for a ship flagged ``SHIP_IN_COMBAT`` or ``SHIP_DESTROYED``.

Units: positions in world units, times in seconds (any clock, as long as ``sent_at`` and
``at`` come from the same one, e.g. ``time.monotonic``), speeds in world units per second.
"""

from __future__ import annotations

import collections
import math
from typing import Iterable, NamedTuple, Sequence

from ..rooms import protocol


class WorldState:
    """The room as the frames show it.

    Attributes: ``tick`` (int of the last applied frame, None before the first keyframe),
    ``time`` (game time of that tick, seconds), ``ack`` (the last input seq of ours the room
    had applied at that tick), ``ships`` (ship id -> ``[x, y, flags]``, world units and
    ``protocol.SHIP_*`` bits), ``names`` (ship id -> display name), ``hp`` (ship id ->
    ``[hp, max_hp]``, rooms with combat), ``events`` (the last applied frame's combat events,
    ``[kind, a, b, value]``), ``event_log`` (the last ``EVENT_LOG`` events as ``(tick, kind,
    a, b, value)``), and the counters ``keyframes``, ``deltas`` (applied) and ``rejected``
    (deltas ignored for a wrong base).
    """

    EVENT_LOG = 256

    def __init__(self) -> None:
        self.tick: int | None = None
        self.time = 0.0
        self.ack = 0
        self.ships: dict[int, list] = {}
        self.names: dict[int, str] = {}
        self.hp: dict[int, list] = {}
        self.events: list = []
        self.event_log: collections.deque = collections.deque(maxlen=self.EVENT_LOG)
        self.keyframes = 0
        self.deltas = 0
        self.rejected = 0

    def reset(self) -> None:
        """Forget everything (the next frame must be a keyframe)."""
        self.tick = None
        self.ships = {}
        self.names = {}
        self.hp = {}
        self.events = []

    def apply(self, frame: dict) -> bool:
        """Apply one ``frame`` payload. Returns False, changing nothing, for a delta whose
        ``base`` is not ``self.tick`` (send ``resync``); True otherwise."""
        base = frame.get("base")
        ships = frame.get("ships") or ()
        names = frame.get("names") or ()
        if base is None:
            self.ships = {row[0]: [row[1], row[2], row[3]] for row in ships}
            self.names = {ship_id: name for ship_id, name in names}
            self.hp = {row[0]: [row[1], row[2]] for row in frame.get("hp") or ()}
            self.keyframes += 1
        else:
            if self.tick is None or base != self.tick:
                self.rejected += 1
                return False
            current = self.ships
            for row in ships:
                current[row[0]] = [row[1], row[2], row[3]]
            for ship_id in frame.get("removed") or ():
                current.pop(ship_id, None)
                self.names.pop(ship_id, None)
                self.hp.pop(ship_id, None)
            for ship_id, name in names:
                self.names[ship_id] = name
            for row in frame.get("hp") or ():
                self.hp[row[0]] = [row[1], row[2]]
            self.deltas += 1
        self.events = list(frame.get("events") or ())
        self.event_log.extend((frame["tick"], *event) for event in self.events)
        self.tick = frame["tick"]
        self.time = frame.get("time", self.time)
        self.ack = frame.get("ack", self.ack)
        return True


_NOT_STEERED = protocol.SHIP_IN_COMBAT | protocol.SHIP_DESTROYED


class PendingInput(NamedTuple):
    """A ``move_to`` sent and not yet acknowledged: ``seq``, target ``x``, ``y`` (world
    units), ``sent_at`` (seconds, the predictor's clock)."""

    seq: int
    x: float
    y: float
    sent_at: float


def move_toward(position: Sequence[float], target: Sequence[float], distance: float) -> tuple[float, float]:
    """The point ``distance`` world units from ``position`` along the straight line to
    ``target``, stopping at ``target``."""
    x, y = float(position[0]), float(position[1])
    dx, dy = float(target[0]) - x, float(target[1]) - y
    length = math.hypot(dx, dy)
    if distance >= length or length == 0.0:
        return float(target[0]), float(target[1])
    if distance <= 0.0:
        return x, y
    f = distance / length
    return x + dx * f, y + dy * f


class Predictor:
    """Own-ship prediction and reconciliation (see the module docstring).

    ``speed``: ship speed, world units per second (``protocol.SHIP_SPEED``); ``limit``: the
    room clamps targets to ``[-limit, limit]`` (the welcome's ``world_limit``: 1000 in a
    system, 500 in a game), so does the prediction.
    """

    def __init__(self, speed: float = protocol.SHIP_SPEED, limit: float = protocol.WORLD_LIMIT):
        self.speed = speed
        self.limit = limit
        self.pending: collections.deque[PendingInput] = collections.deque()

    def add(self, seq: int, x: float, y: float, sent_at: float) -> None:
        """Record a ``move_to`` toward ``(x, y)`` sent as ``seq`` at time ``sent_at``."""
        self.pending.append(PendingInput(seq, float(x), float(y), float(sent_at)))

    def resend(self, old_seq: int, new_seq: int, sent_at: float) -> None:
        """The input ``old_seq`` was sent again as ``new_seq`` at ``sent_at`` (after a
        reconnect): the room will apply it from then on."""
        self.pending = collections.deque(
            PendingInput(new_seq, p.x, p.y, sent_at) if p.seq == old_seq else p for p in self.pending)

    def replace(self, inputs: Iterable[PendingInput]) -> None:
        """Replace the pending inputs (oldest first)."""
        self.pending = collections.deque(inputs)

    def on_ack(self, ack: int) -> int:
        """Drop the inputs with ``seq <= ack`` (the room has applied them); returns how many."""
        dropped = 0
        pending = self.pending
        while pending and pending[0].seq <= ack:
            pending.popleft()
            dropped += 1
        if pending and any(p.seq <= ack for p in pending):  # renumbered out of order: rare
            kept = [p for p in pending if p.seq > ack]
            dropped += len(pending) - len(kept)
            self.pending = collections.deque(kept)
        return dropped

    @property
    def target(self) -> tuple[float, float] | None:
        """The latest pending target (clamped like the room does), or None."""
        if not self.pending:
            return None
        p = self.pending[-1]
        return self._clamp(p.x), self._clamp(p.y)

    def _clamp(self, v: float) -> float:
        return min(max(v, -self.limit), self.limit)

    def predict(self, server_pos: Sequence[float], at: float) -> tuple[float, float]:
        """The predicted own-ship position at time ``at`` (seconds), given its last
        authoritative position ``server_pos`` (``[x, y, ...]``, world units, from the latest
        frame): with no pending input, the server position; otherwise the position
        ``speed * (at - sent_at)`` world units along the straight line from ``server_pos``
        toward the latest pending target (``sent_at`` of that input), stopping there; the server
        position as is when ``server_pos[2]`` (flags) says the ship is in combat or destroyed."""
        target = self.target
        if target is None or (len(server_pos) > 2 and int(server_pos[2]) & _NOT_STEERED):
            return float(server_pos[0]), float(server_pos[1])
        elapsed = max(0.0, at - self.pending[-1].sent_at)
        return move_toward(server_pos, target, self.speed * elapsed)

    def reconcile(self, server_pos: Sequence[float], ack: int, at: float) -> tuple[float, float]:
        """``on_ack(ack)`` then ``predict(server_pos, at)``: call with every frame."""
        self.on_ack(ack)
        return self.predict(server_pos, at)


__all__ = ["WorldState", "Predictor", "PendingInput", "move_toward"]
