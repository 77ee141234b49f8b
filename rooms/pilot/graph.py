"""A pilot's Knowledge Graph: the fragments its scans discovered (docs/economy.md §3).

``Graph`` is sans-I/O with write-behind like ``rooms.pilot.inbox.Inbox``: the pilot room
``load``s the id index (``storage.list(prefix=INDEX_PREFIX)``) when it starts, ``add``s
fragments in memory, and puts what ``take_writes`` gives with its flush. Pages of the graph
(``GET graph``) are read from storage (``page_range``, ``page_of``): only the fragments' ids
stay in memory (to skip known fragments without reading storage).

Storage (nothing is ever deleted or rewritten, except the last index chunk as it fills):

- ``kg:f:<n>`` (``n`` the fragment's number, 1, 2, ... in discovery order, zero-padded to 12
  digits): ``{"subject", "predicate", "object", "time", "scan"}``, one key per fragment;
  ``time`` is the game time of the discovery (seconds since ``GAME_EPOCH``), ``scan`` the id of
  the scan that found it;
- ``kg:i:<c>`` (8 digits): the ids of fragments ``c * CHUNK + 1`` to ``(c + 1) * CHUNK``, in
  order (at most ``CHUNK`` x 357 bytes = 91 KB: under the 128 KiB value limit).

Bounds and costs: a pilot can only discover the galaxy's fragments (every post comes from a
system room computing ``rooms.economy.scan.fragments``): 42,112 distinct fragments over the
958 systems' 6,147 planets. A pilot that discovered all of them has ~10 MB of room files;
its ids take ~2 MB of memory while the room is awake and load in 30-50 ms (165 index chunks)
when it wakes; a page of 1,000 fragments reads 1,000 keys (tens of ms). Each ``discover``
writes its new records and rewrites one or two index chunks (~12 KB each for the galaxy's
ids). Figures measured on a loaded 2-core machine with a one-off script (issue 16 report).
A planet's scan yields 2 to 9 fragments.

Fragments are validated by ``parse_fragments`` (also used by the atlas room): nodes are
``"type:id"`` strings of printable ASCII, predicates lowercase identifiers, at most
``MAX_FRAGMENTS`` per post.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..economy.scan import Fragment

__all__ = ["Graph", "FragmentError", "parse_fragments", "parse_scan", "parse_page", "key_of", "record_json",
           "PREFIX", "RECORD_PREFIX", "INDEX_PREFIX", "CHUNK", "MAX_FRAGMENTS", "MAX_NODE", "MAX_SCAN",
           "PAGE_LIMIT", "PAGE_DEFAULT"]

PREFIX = "kg:"
"""Storage key prefix of the graph (nothing else of the pilot room lives under it)."""
RECORD_PREFIX = PREFIX + "f:"
"""Key prefix of the fragments' records."""
INDEX_PREFIX = PREFIX + "i:"
"""Key prefix of the id index's chunks."""
CHUNK = 256
"""Fragment ids per index chunk."""
MAX_FRAGMENTS = 50
"""Most fragments one ``discover`` post may carry (a planet's scan yields fewer than 10)."""
MAX_NODE = 160
"""Longest node string (``"type:id"``), characters."""
MAX_SCAN = 160
"""Longest scan id, characters."""
PAGE_DEFAULT = 500
"""Fragments in a page when ``limit`` is not given."""
PAGE_LIMIT = 1000
"""Most fragments in a page."""
_TYPE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PREDICATE = re.compile(r"[a-z][a-z0-9_]{0,31}")


class FragmentError(ValueError):
    """A ``discover`` body that is refused; the message says which item and why (safe to show)."""


def _node(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise FragmentError(f"{where} must be a string \"type:id\"")
    kind, sep, ident = value.partition(":")
    if not sep or not _TYPE.fullmatch(kind) or not ident:
        raise FragmentError(f"{where} must be \"type:id\" with a lowercase type (a-z, 0-9, _; up to 32)")
    if len(value) > MAX_NODE or not (value.isascii() and value.isprintable()) or "|" in value:
        raise FragmentError(f"{where} must be at most {MAX_NODE} printable ASCII characters without '|'")
    return value


def parse_fragments(raw: object) -> list[Fragment]:
    """The fragments of a ``discover`` body: a list of 0 to ``MAX_FRAGMENTS`` items, each
    ``[subject, predicate, object]`` with ``subject`` and ``object`` ``"type:id"`` strings
    (type: ``[a-z][a-z0-9_]{0,31}``; the whole at most ``MAX_NODE`` printable ASCII characters,
    no ``|``) and ``predicate`` ``[a-z][a-z0-9_]{0,31}``. Returns ``Fragment``s in the given order,
    duplicates removed. Raises ``FragmentError`` for the first item that is wrong."""
    if not isinstance(raw, list):
        raise FragmentError("fragments must be a list of [subject, predicate, object]")
    if len(raw) > MAX_FRAGMENTS:
        raise FragmentError(f"at most {MAX_FRAGMENTS} fragments per discover, got {len(raw)}")
    out: dict[str, Fragment] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, list) or len(item) != 3:
            raise FragmentError(f"fragments[{i}] must be [subject, predicate, object]")
        subject, predicate, obj = item
        if not isinstance(predicate, str) or not _PREDICATE.fullmatch(predicate):
            raise FragmentError(f"fragments[{i}] predicate must be a lowercase identifier (a-z, 0-9, _; up to 32)")
        fragment = Fragment(_node(subject, f"fragments[{i}] subject"), predicate,
                            _node(obj, f"fragments[{i}] object"))
        out.setdefault(fragment.id, fragment)
    return list(out.values())


def parse_scan(raw: object) -> str:
    """The scan id of a ``discover`` body: 1 to ``MAX_SCAN`` printable characters. Raises
    ``FragmentError``."""
    if not isinstance(raw, str) or not 1 <= len(raw) <= MAX_SCAN or not raw.isprintable():
        raise FragmentError(f"scan must be 1-{MAX_SCAN} printable characters")
    return raw


def query_int(query: Mapping[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
    """The query parameter ``name`` as an int in ``[low, high]``, ``default`` when absent or
    empty. Raises ``ValueError`` with a message safe to show (not digits, more than 15 of
    them, or out of range)."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not (isinstance(raw, str) and raw.isdigit() and len(raw) <= 15) or not low <= int(raw) <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]")
    return int(raw)


def parse_page(query: Mapping[str, str]) -> tuple[int, int]:
    """``(after, limit)`` from a query: ``after`` a sequence number >= 0 (default 0: from the
    start), ``limit`` 1 to ``PAGE_LIMIT`` (default ``PAGE_DEFAULT``). Raises ``ValueError``
    with a message safe to show."""
    return query_int(query, "after", 0, 0, 10**15 - 1), query_int(query, "limit", PAGE_DEFAULT, 1, PAGE_LIMIT)


def key_of(seq: int) -> str:
    """The storage key of fragment number ``seq`` (int >= 1): ``kg:f:000000000042``."""
    return f"{RECORD_PREFIX}{seq:012d}"


def index_key(chunk: int) -> str:
    """The storage key of index chunk ``chunk`` (int >= 0): ``kg:i:00000003``."""
    return f"{INDEX_PREFIX}{chunk:08d}"


def record_json(key: str, record: Mapping) -> dict:
    """A stored fragment as the API shows it: ``{"seq", "id", "subject", "predicate",
    "object", "time", "scan"}`` (``key``: its storage key)."""
    fragment = Fragment(record["subject"], record["predicate"], record["object"])
    return {"seq": int(key[len(RECORD_PREFIX):]), "id": fragment.id, "subject": fragment.subject,
            "predicate": fragment.predicate, "object": fragment.object, "time": record["time"],
            "scan": record["scan"]}


class Graph:
    """One pilot's fragments: their ids in memory, the records in storage (write-behind)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.last = 0  # the highest fragment number in use
        self.records: dict[str, dict] = {}  # key -> record, not yet written
        self.chunks: dict[int, list[str]] = {}  # index chunks changed, not yet written
        self._tail_no, self._tail = 0, []  # the last index chunk (where ids are appended)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, fragment: Fragment) -> bool:
        return fragment.id in self.ids

    def load(self, index: Mapping[str, object]) -> None:
        """Replace the graph by what storage held under ``INDEX_PREFIX`` (``{key: [ids]}``);
        keys or values that are not index chunks are ignored."""
        self.__init__()
        for key, ids in sorted(index.items()):
            number = key[len(INDEX_PREFIX):]
            if not (key.startswith(INDEX_PREFIX) and number.isdigit() and isinstance(ids, list)):
                continue
            self.ids.update(ids)
            chunk = int(number)
            self.last = max(self.last, chunk * CHUNK + len(ids))
            self._tail_no, self._tail = chunk, list(ids)

    def add(self, fragments: list[Fragment], time: float, scan: str) -> list[Fragment]:
        """Add the ``fragments`` not yet in the graph, discovered at game time ``time`` (s) by
        scan ``scan``; returns those (the new ones, in the given order; empty when every one
        was known, so adding the same fragments again changes nothing)."""
        new = []
        for fragment in fragments:
            if fragment.id in self.ids:
                continue
            self.ids.add(fragment.id)
            self.last += 1
            self.records[key_of(self.last)] = {"subject": fragment.subject, "predicate": fragment.predicate,
                                               "object": fragment.object, "time": time, "scan": scan}
            chunk = (self.last - 1) // CHUNK
            if chunk != self._tail_no:
                self._tail_no, self._tail = chunk, []
            self._tail.append(fragment.id)
            self.chunks[chunk] = self._tail
            new.append(fragment)
        return new

    def take_writes(self) -> dict[str, object]:
        """What was added since the last call, ``{key: value}`` to put: the new records and
        the index chunks they changed; clears it."""
        puts: dict[str, object] = dict(self.records)
        puts.update({index_key(chunk): list(ids) for chunk, ids in self.chunks.items()})
        self.records, self.chunks = {}, {}
        return puts

    @staticmethod
    def page_range(after: int, limit: int) -> dict:
        """The ``storage.list`` arguments of the page of up to ``limit`` fragments numbered after
        ``after``: one more than ``limit`` is asked for, to tell whether a next page exists."""
        return {"prefix": RECORD_PREFIX, "start": key_of(after + 1), "limit": limit + 1}

    def page_of(self, stored: Mapping[str, Mapping], limit: int) -> dict:
        """The answer of ``GET graph`` for what ``storage.list(**page_range(after, limit))``
        returned: ``{"fragments": [record_json...], "count": len(self), "next": the ``after``
        of the next page, or None on the last page}``."""
        items = [record_json(k, v) for k, v in stored.items() if k[len(RECORD_PREFIX):].isdigit()][:limit + 1]
        more = len(items) > limit
        items = items[:limit]
        return {"fragments": items, "count": len(self), "next": items[-1]["seq"] if more else None}
