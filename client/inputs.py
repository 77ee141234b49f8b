"""The client's queue of numbered inputs: commands waiting for a socket or for their ack, and
what to resend after a (re)join (``plan_resend``)."""

from __future__ import annotations


class _Input:
    """A command of the offline queue / in flight: ``seq``, ``type``, ``payload``, whether it
    was written to a socket (``sent``) and when (``sent_at``)."""

    __slots__ = ("seq", "type", "payload", "sent", "sent_at")

    def __init__(self, seq: int, type_: str, payload: dict, sent: bool = False, sent_at: float = 0.0):
        self.seq, self.type, self.payload, self.sent, self.sent_at = seq, type_, payload, sent, sent_at

    def __repr__(self) -> str:
        return f"<{self.type} #{self.seq}{' sent' if self.sent else ''}>"


def plan_resend(outbox: list[_Input], floor: int, next_seq: int) -> tuple[list[_Input], int]:
    """What to send after a welcome whose ``ack`` is ``floor``: the entries of ``outbox``
    (oldest first) not acknowledged, with seqs strictly increasing and above ``floor``.

    Entries written to an earlier socket with ``seq <= floor`` were applied: dropped. Any
    other entry whose seq would not keep the order above ``floor`` is renumbered from
    ``next_seq`` (the client's next free seq). Returns ``(entries, next free seq)``; the
    entries are the same objects, seqs updated."""
    keep: list[_Input] = []
    last = floor
    for entry in outbox:
        if entry.sent and entry.seq <= floor:
            continue
        if entry.seq <= last:
            entry.seq = max(next_seq, last + 1)
        last = entry.seq
        next_seq = max(next_seq, last + 1)
        keep.append(entry)
    return keep, next_seq
