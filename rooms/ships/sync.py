"""State sync: per-tick deltas against the previous frame, keyframes on demand (DESIGN §6).

A room broadcasts one frame per tick. Each frame is either a **delta** against the frame of
the tick before it (``base``: the ships whose row changed, the ids removed, the names of new
or renamed ships) or a **keyframe** (``base`` None: every ship and every name). Every client
that received the previous frame gets the same delta bytes, encoded once per tick; a client
that just joined, reconnected, fell behind or asked to ``resync`` gets a keyframe of the
same tick. This is the snapshot-and-delta scheme of Quake 3's network model and Valve's
Source engine, with the baseline fixed to the previous broadcast because our clients are on
a reliable, ordered transport (TCP): a client never misses a frame without the gateway knowing.

Rows are ``(x, y, flags)`` per ship id, x and y already quantized to float32
(``protocol.quantize``), so a ship at rest compares equal tick after tick.

A room with combat (``FrameSync(combat=True)``, the solar systems) adds two keys to every
frame (``protocol.COMBAT_FRAME_KEYS``): ``hp``, the ``[id, hp, max_hp]`` of the ships whose hit
points changed since ``base`` (every ship in a keyframe), and ``events``, the tick's combat
events (also in that tick's keyframe). Without combat the frames are exactly as before.
"""

from __future__ import annotations

from starhold.kernels.frames import pack_rows
from .. import protocol


class FrameSync:
    """The last broadcast state of one room, and the delta/keyframe encoders against it.

    ``tick`` is the tick of the last frame (None before the first), ``rows`` maps ship id ->
    ``(x, y, flags)`` as that frame left them, ``names`` ship id -> name. With ``combat``:
    ``hp`` maps ship id -> ``(hp, max_hp)`` and ``events`` is the last tick's event rows;
    ``keys`` is the frame's key count for ``protocol.frame_prefix``.
    """

    def __init__(self, combat: bool = False) -> None:
        self.combat = combat
        self.keys = protocol.COMBAT_FRAME_KEYS if combat else protocol.FRAME_KEYS
        self.tick: int | None = None
        self.time = 0.0
        self.rows: dict[int, tuple[float, float, int]] = {}
        self.names: dict[int, str] = {}
        self.hp: dict[int, tuple[int, int]] = {}
        self.events: list = []
        self._keyframe: bytes | None = None

    def step(self, tick: int, time: float, rows: dict[int, tuple[float, float, int]],
             names: dict[int, str], hp: dict[int, tuple[int, int]] | None = None,
             events: list | None = None) -> bytes:
        """Advance to ``tick`` (game ``time`` seconds) with the ships now in ``rows``/``names``
        (and, with combat, ``hp``: id -> ``(hp, max_hp)``, and the tick's ``events`` rows);
        returns the encoded delta tail (``protocol.pack_frame_tail``) against the previous
        frame, or a keyframe tail if there was none. Cost O(ships). ``names`` may be the very
        dict of the last frame when no name changed (it is then not compared again); neither
        ``rows`` nor ``names`` may be changed after the call."""
        base = self.tick
        if base is None:
            tail = self._keyframe_tail(time, rows, names, hp, events)
        else:
            prev_names = self.names
            changed, _, removed = pack_rows(rows, self.rows)
            new_names = [] if names is prev_names else [[i, n] for i, n in names.items() if prev_names.get(i) != n]
            if self.combat:
                prev_hp = self.hp
                hp_rows = [[i, *v] for i, v in (hp or {}).items() if prev_hp.get(i) != v]
                tail = protocol.pack_frame_tail(base, time, changed, removed, new_names, hp_rows, events or [])
            else:
                tail = protocol.pack_frame_tail(base, time, changed, removed, new_names)
        self.tick, self.time, self.rows, self.names = tick, time, rows, names
        if self.combat:
            self.hp, self.events = dict(hp or {}), list(events or [])
        self._keyframe = tail if base is None else None
        return tail

    def reset(self, tick: int, time: float, rows: dict[int, tuple[float, float, int]],
              names: dict[int, str], hp: dict[int, tuple[int, int]] | None = None,
              events: list | None = None) -> None:
        """Take ``rows``/``names`` (and ``hp``/``events``) at ``tick`` as the last broadcast
        state without encoding a delta (a room's first keyframe when nothing was broadcast yet)."""
        self.tick, self.time, self.rows, self.names = tick, time, rows, names
        if self.combat:
            self.hp, self.events = dict(hp or {}), list(events or [])
        self._keyframe = None

    def _keyframe_tail(self, time, rows, names, hp, events) -> bytes:
        ships, _, _ = pack_rows(rows)
        names = [[i, n] for i, n in names.items()]
        if not self.combat:
            return protocol.pack_frame_tail(None, time, ships, [], names)
        return protocol.pack_frame_tail(None, time, ships, [], names,
                                        [[i, *v] for i, v in (hp or {}).items()], list(events or []))

    def keyframe(self) -> bytes:
        """The keyframe tail of the last frame (every ship and name at ``tick``); encoded once
        per tick however many clients need it. Raises ``RuntimeError`` before the first frame."""
        if self.tick is None:
            raise RuntimeError("no frame yet")
        if self._keyframe is None:
            self._keyframe = self._keyframe_tail(self.time, self.rows, self.names, self.hp, self.events)
        return self._keyframe
