"""Chat and presence building blocks (rooms/social, rooms/pilot/inbox.py): pure functions and
sans-I/O classes, driven with plain float times; no Ray, no storage, no sockets."""

from __future__ import annotations

import pytest

from starhold.rooms.pilot.inbox import DM_LIMIT, DM_TTL, NEXT_KEY, Inbox, chat_payload, key_of as dm_key
from starhold.rooms.social.history import ChatHistory, key_of as chat_key
from starhold.rooms.social.limiter import ChatLimiter
from starhold.rooms.social.presence import MAX_DOCKED, MAX_PILOTS, DockedIndex, Presence
from starhold.rooms.social.text import CHAT_BURST, CHAT_REFILL_SECONDS, MAX_CHAT_LENGTH, clean_text

EPOCH = 1_767_225_600.0  # a realistic clock value: float rounding shows at this magnitude


# ---- text -----------------------------------------------------------------------------------
def test_constants_are_the_specs():
    assert (MAX_CHAT_LENGTH, CHAT_BURST, CHAT_REFILL_SECONDS) == (280, 5, 2.0)


@pytest.mark.parametrize("raw, clean", [
    ("hello", "hello"),
    ("  hello world \t", "hello world"),
    ("a\r\nb", "a b"),
    ("a\n\n\nb", "a b"),
    ("a\tb\r\n\tc", "a b c"),
    ("a\u2028b\u2029c\x85d", "a b c d"),
    ("a\x00b\x07c\x1bd\x7fe", "abcde"),
    ("a\x80b\x9fc", "abc"),  # C1 controls
    ("zero\u200bwidth\u200c\u200djoin", "zerowidthjoin"),
    ("\ufeffbom", "bom"),
    ("soft\u00adhyphen", "softhyphen"),
    ("\u202eevil\u202c \u2066iso\u2069 \u200fmark\u200e", "evil iso mark"),
    ("tag\U000e0041\U000e007f", "tag"),
    ("a\ud800b", "ab"),  # lone surrogate
    ("  spaces   inside  ", "spaces   inside"),
    ("\u3000ideographic\u00a0nbsp\u3000", "ideographic\u00a0nbsp"),
    ("שלום עולם", "שלום עולם"),  # right-to-left letters are kept
    ("مرحبا", "مرحبا"),
    ("héllo 🚀 ✨", "héllo 🚀 ✨"),
    ("e\u0301", "e\u0301"),  # combining marks kept, no normalisation
    ("\ue000", "\ue000"),  # private use kept
])
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


def test_cleaned_text_is_utf8_encodable():
    assert clean_text("x\udfff\ud800y").encode("utf-8") == b"xy"


@pytest.mark.parametrize("raw", ["", " ", "\t\r\n", "\u200b\u200d\ufeff", "\x00\x01", " \u202e \u2066 ",
                                 "\u3000\u00a0"])
def test_empty_after_cleaning_is_refused(raw):
    with pytest.raises(ValueError, match="empty"):
        clean_text(raw)


def test_length_limit_counts_code_points_after_cleaning():
    assert clean_text("a" * 280) == "a" * 280
    with pytest.raises(ValueError, match="280"):
        clean_text("a" * 281)
    assert clean_text("🚀" * 280) == "🚀" * 280  # 1120 UTF-8 bytes, still 280 characters
    with pytest.raises(ValueError):
        clean_text("🚀" * 281)
    assert clean_text("  " + "a" * 280 + "\n\n") == "a" * 280  # surrounding whitespace is not counted
    assert clean_text("a" * 280 + "\u200b" * 50) == "a" * 280  # nor removed characters
    assert len(clean_text("a\r\n" * 140)) == 279  # each line break counts as one space


def test_custom_limit_and_bad_arguments():
    assert clean_text("abc", limit=3) == "abc"
    with pytest.raises(ValueError):
        clean_text("abcd", limit=3)
    with pytest.raises(ValueError):
        clean_text("a", limit=0)
    with pytest.raises(TypeError):
        clean_text(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        clean_text(None)  # type: ignore[arg-type]


# ---- limiter --------------------------------------------------------------------------------
@pytest.mark.parametrize("start", [0.0, EPOCH])
def test_limiter_burst_then_one_per_refill(start):
    limiter = ChatLimiter(5, 2.0)
    assert [limiter.allow("p", start) for _ in range(6)] == [True] * 5 + [False]
    assert limiter.retry_after("p", start) == pytest.approx(2.0)
    assert not limiter.allow("p", start + 1.999)
    assert limiter.allow("p", start + 2.0)  # exactly one refill later
    assert not limiter.allow("p", start + 2.0)
    assert limiter.allow("p", start + 4.0)
    assert limiter.tokens("p", start + 4.0) == pytest.approx(0.0)
    assert limiter.tokens("p", start + 14.0) == pytest.approx(5.0)
    assert [limiter.allow("p", start + 14.0) for _ in range(6)] == [True] * 5 + [False]


def test_limiter_sustained_rate():
    limiter = ChatLimiter(5, 2.0)
    allowed = sum(limiter.allow("p", t * 0.1) for t in range(600))  # 10 msg/s for 60 s
    assert allowed == 5 + 29  # the burst, then one per 2 s


def test_limiter_partial_refill_never_exceeds_burst():
    limiter = ChatLimiter(3, 1.0)
    assert all(limiter.allow("p", 0.0) for _ in range(2))
    assert limiter.tokens("p", 0.5) == pytest.approx(1.5)
    assert limiter.tokens("p", 100.0) == 3.0
    assert [limiter.allow("p", 100.0) for _ in range(4)] == [True, True, True, False]


def test_limiter_refused_messages_cost_nothing():
    limiter = ChatLimiter(1, 2.0)
    assert limiter.allow("p", 0.0)
    for t in (0.5, 1.0, 1.5):
        assert not limiter.allow("p", t)
    assert limiter.allow("p", 2.0)


def test_limiter_players_are_independent():
    limiter = ChatLimiter(2, 2.0)
    assert limiter.allow("a", 0.0) and limiter.allow("a", 0.0) and not limiter.allow("a", 0.0)
    assert limiter.allow("b", 0.0) and limiter.allow("b", 0.0)
    assert limiter.retry_after("c", 0.0) == 0.0 and limiter.tokens("c", 0.0) == 2.0


def test_limiter_time_going_backwards_does_not_refill():
    limiter = ChatLimiter(2, 2.0)
    assert limiter.allow("p", 10.0) and limiter.allow("p", 10.0)
    assert not limiter.allow("p", 5.0)


def test_limiter_forgets_full_buckets():
    limiter = ChatLimiter(5, 2.0)
    for i in range(10_000):
        assert limiter.allow(f"p{i}", i * 1.0)  # one player a second: each is full 2 s later
    assert len(limiter) < 200
    assert limiter.prune(20_000.0) >= 1 and len(limiter) == 0


def test_limiter_keeps_busy_players_when_pruning():
    limiter = ChatLimiter(5, 2.0)
    limiter.allow("busy", 0.0)
    assert limiter.prune(1.0) == 0 and len(limiter) == 1
    assert limiter.prune(2.0) == 1 and len(limiter) == 0


@pytest.mark.parametrize("burst, refill", [(0, 2.0), (-1, 2.0), (2.5, 2.0), (5, 0.0), (5, -1.0), (5, float("nan"))])
def test_limiter_rejects_bad_parameters(burst, refill):
    with pytest.raises(ValueError):
        ChatLimiter(burst, refill)


# ---- history --------------------------------------------------------------------------------
def _say(i: int, text: str = "hi") -> dict:
    return {"id": i, "channel": "system", "from": "u-1", "name": "Ada", "to": None, "text": text,
            "time": 10.0 + i, "history": False}


def test_history_keeps_the_last_twenty_oldest_first():
    history = ChatHistory()
    assert history.recent() == [] and history.next_id == 1
    for i in range(1, 26):
        history.add(_say(i))
    recent = history.recent()
    assert [m["id"] for m in recent] == list(range(6, 26))
    assert all(m["history"] is True and m["channel"] == "system" for m in recent)
    assert history.next_id == 26 and len(history) == 20


def test_history_copies_in_and_out():
    history = ChatHistory(3)
    payload = _say(1)
    history.add(payload)
    payload["text"] = "changed"
    history.recent()[0]["text"] = "changed too"
    assert history.recent()[0]["text"] == "hi"
    assert payload["history"] is False  # the live payload is not marked


def test_history_refuses_bad_ids_and_limits():
    history = ChatHistory(3)
    history.add(_say(1))
    for bad in ({"text": "no id"}, {"id": "1"}, {"id": True}, {"id": -1}, _say(1)):
        with pytest.raises(ValueError):
            history.add(bad)
    with pytest.raises(ValueError):
        ChatHistory(0)


def test_history_writes_behind_and_reloads():
    history = ChatHistory(2)
    for i in (1, 2):
        history.add(_say(i))
    puts, deletes = history.take_writes()
    assert sorted(puts) == [chat_key(1), chat_key(2)] and deletes == []
    assert chat_key(2) == "chat:000000000002"
    history.add(_say(3))
    history.add(_say(4))
    puts, deletes = history.take_writes()
    assert sorted(puts) == [chat_key(3), chat_key(4)] and deletes == [chat_key(1), chat_key(2)]
    assert history.take_writes() == ({}, [])
    stored = {chat_key(3): _say(3), chat_key(4): _say(4), chat_key(9): _say(9), "chat:junk": "x"}
    again = ChatHistory(2)
    again.load(stored)
    assert [m["id"] for m in again.recent()] == [4, 9] and again.next_id == 10
    assert again.take_writes() == ({}, [chat_key(3), "chat:junk"])


# ---- presence -------------------------------------------------------------------------------
def _pilot(player: str, name: str, status: str = "online", ship=1, combat: bool = False) -> dict:
    return {"player": player, "name": name, "ship": ship, "status": status, "combat": combat}


def test_presence_first_call_sends_sorted_by_name():
    presence = Presence("sol")
    entries = [_pilot("u-2", "bob"), _pilot("u-1", "Ada"), _pilot("u-3", "Carl", "held", combat=True),
               _pilot("u-4", "ada", "docked", ship=None)]
    payload = presence.due(entries, 100.0)
    assert payload["system"] == "sol"
    assert [p["player"] for p in payload["pilots"]] == ["u-1", "u-4", "u-2", "u-3"]
    assert payload["pilots"][3] == {"player": "u-3", "name": "Carl", "ship": 1, "status": "held", "combat": True}


def test_presence_sends_only_changes():
    presence = Presence("sol")
    entries = [_pilot("u-1", "Ada"), _pilot("u-2", "Bob")]
    assert presence.due(entries, 0.0) is not None
    assert presence.due(list(reversed(entries)), 5.0) is None  # same list, other order
    assert presence.due([_pilot("u-1", "Ada"), _pilot("u-2", "Bob", combat=True)], 6.0) is not None
    assert presence.due([_pilot("u-1", "Ada"), _pilot("u-2", "Bob", "held", combat=True)], 7.0) is not None
    assert presence.due([_pilot("u-1", "Ada", ship=2), _pilot("u-2", "Bob", "held", combat=True)], 8.0) is not None
    assert presence.due([_pilot("u-1", "Ada", ship=2)], 9.0)["pilots"] == [_pilot("u-1", "Ada", ship=2)]
    assert presence.due([], 10.0) == {"system": "sol", "pilots": []}
    assert presence.due([], 20.0) is None


def test_presence_at_most_once_per_second():
    presence = Presence("sol")
    assert presence.due([_pilot("u-1", "Ada")], 0.0) is not None
    assert presence.deadline() is None
    assert presence.due([_pilot("u-2", "Bob")], 0.5) is None
    assert presence.deadline() == 1.0
    assert presence.due([_pilot("u-2", "Bob")], 0.999) is None
    payload = presence.due([_pilot("u-2", "Bob")], 1.0)
    assert [p["name"] for p in payload["pilots"]] == ["Bob"] and presence.deadline() is None
    assert presence.due([_pilot("u-3", "Cy")], 1.2) is None and presence.deadline() == 2.0
    assert presence.due([_pilot("u-2", "Bob")], 1.5) is None  # changed back: nothing to send
    assert presence.deadline() is None


def test_presence_first_send_is_never_throttled():
    assert Presence("sol").due([], EPOCH) == {"system": "sol", "pilots": []}


def test_presence_full_ignores_and_keeps_the_throttle():
    presence = Presence("sol")
    entries = [_pilot("u-1", "Ada")]
    assert presence.full(entries) == {"system": "sol", "pilots": [_pilot("u-1", "Ada")]}
    assert presence.due(entries, 0.0) is not None  # full() sent nothing as far as due knows
    assert presence.full([_pilot("u-2", "Bob")])["pilots"][0]["name"] == "Bob"
    assert presence.due([_pilot("u-2", "Bob")], 0.1) is None  # still throttled


def test_presence_caps_at_two_hundred_pilots():
    presence = Presence("sol")
    entries = [_pilot(f"u-{i:04d}", f"pilot {i:04d}") for i in range(500)]
    payload = presence.due(entries, 0.0)
    assert len(payload["pilots"]) == MAX_PILOTS == 200
    assert payload["pilots"][-1]["name"] == "pilot 0199"
    assert presence.due(entries + [_pilot("u-x", "zz last")], 5.0) is None  # beyond the cap


def test_presence_normalises_entries():
    presence = Presence("sol")
    payload = presence.full([{"player": "u-1", "name": "Ada", "status": "online", "extra": 1},
                             _pilot("u-1", "Ada", "docked", ship=None), _pilot("u-2", "Bob", "docked", ship=None),
                             _pilot("u-2", "Bob", "held", ship=7), {**_pilot("u-3", "Cy"), "combat": 1}])
    assert payload["pilots"] == [{"player": "u-1", "name": "Ada", "ship": None, "status": "online", "combat": False},
                                 _pilot("u-2", "Bob", "held", ship=7), _pilot("u-3", "Cy", combat=True)]
    with pytest.raises(ValueError):
        presence.full([_pilot("u-1", "Ada", "away")])
    with pytest.raises(KeyError):
        presence.full([{"player": "u-1", "status": "online"}])
    with pytest.raises(ValueError):
        Presence("sol", interval=-1.0)


def test_presence_payload_is_a_copy():
    presence = Presence("sol")
    entries = [_pilot("u-1", "Ada")]
    payload = presence.due(entries, 0.0)
    payload["pilots"][0]["combat"] = True
    entries[0]["name"] = "Eve"
    assert presence.due([_pilot("u-1", "Ada")], 5.0) is None


# ---- docked index ---------------------------------------------------------------------------
def test_docked_index_entries_and_writes():
    docked = DockedIndex()
    docked.dock("u-1", "Ada", 10.0)
    docked.dock("u-2", "Bob", 11.0)
    assert "u-1" in docked and len(docked) == 2
    assert docked.entries() == [_pilot("u-1", "Ada", "docked", ship=None), _pilot("u-2", "Bob", "docked", ship=None)]
    assert docked.take_writes() == ({"docked:u-1": {"name": "Ada", "since": 10.0},
                                     "docked:u-2": {"name": "Bob", "since": 11.0}}, [])
    assert docked.take_writes() == ({}, [])
    assert docked.undock("u-1") and not docked.undock("u-1") and not docked.undock("nobody")
    docked.dock("u-2", "Bobby", 12.0)
    assert docked.take_writes() == ({"docked:u-2": {"name": "Bobby", "since": 12.0}}, ["docked:u-1"])


def test_docked_then_undocked_before_a_flush_is_a_delete():
    docked = DockedIndex()
    docked.dock("u-1", "Ada", 1.0)
    docked.undock("u-1")
    assert docked.take_writes() == ({}, ["docked:u-1"])


def test_docked_index_drops_the_oldest_beyond_its_limit():
    docked = DockedIndex(limit=3)
    for i, player in enumerate(["a", "b", "c"]):
        docked.dock(player, player.upper(), float(i))
    docked.dock("a", "A", 5.0)  # docking again makes it the newest
    docked.dock("d", "D", 6.0)
    assert [e["player"] for e in docked.entries()] == ["c", "a", "d"]
    puts, deletes = docked.take_writes()
    assert deletes == ["docked:b"] and set(puts) == {"docked:a", "docked:c", "docked:d"}


def test_docked_index_default_bound():
    docked = DockedIndex()
    for i in range(MAX_DOCKED + 5):
        docked.dock(f"u-{i}", f"p{i}", float(i))
    assert len(docked) == MAX_DOCKED == 10_000
    assert "u-4" not in docked and "u-5" in docked
    assert len(docked.take_writes()[1]) == 5


def test_docked_index_load():
    stored = {"docked:u-2": {"name": "Bob", "since": 20.0}, "docked:u-1": {"name": "Ada", "since": 10.0},
              "docked:u-3": {"name": "Cy", "since": 30.0}, "other:x": {"name": "X", "since": 0.0}}
    docked = DockedIndex(limit=2)
    docked.load(stored)
    assert [e["player"] for e in docked.entries()] == ["u-2", "u-3"]
    assert docked.take_writes() == ({}, ["docked:u-1"])
    feed = Presence("sol").full(docked.entries())
    assert [p["status"] for p in feed["pilots"]] == ["docked", "docked"]
    with pytest.raises(ValueError):
        DockedIndex(0)


# ---- inbox ----------------------------------------------------------------------------------
def _dm(text: str = "hi", sender: str = "u-1") -> dict:
    return {"from": sender, "name": "Ada", "to": "u-2", "text": text, "time": 42.5}


def test_inbox_assigns_increasing_ids():
    inbox = Inbox()
    first = inbox.add(_dm("one"), 0.0)
    second = inbox.add(_dm("two"), 1.0)
    assert first == {"id": 1, "from": "u-1", "name": "Ada", "to": "u-2", "text": "one", "time": 42.5,
                     "delivered": False}
    assert second["id"] == 2 and len(inbox) == 2
    assert inbox.add({"from": "u-9", "to": "u-2", "text": "x", "time": 1.0}, 2.0)["name"] == "u-9"
    assert dm_key(2) == "dm:000000000002"


def test_inbox_requires_the_message_fields():
    inbox = Inbox()
    for missing in ("from", "to", "text", "time"):
        message = _dm()
        del message[missing]
        with pytest.raises(ValueError, match=missing):
            inbox.add(message, 0.0)
    assert len(inbox) == 0 and inbox.take_writes() == ({}, [])


def test_inbox_undelivered_and_mark_delivered():
    inbox = Inbox()
    for i in range(4):
        inbox.add(_dm(f"m{i}"), float(i))
    assert [m["id"] for m in inbox.undelivered()] == [1, 2, 3, 4]
    inbox.take_writes()
    assert inbox.mark_delivered([1, 3, 99]) == 2
    assert inbox.mark_delivered([1]) == 0
    assert [m["id"] for m in inbox.undelivered()] == [2, 4]
    assert [m["delivered"] for m in inbox.all()] == [True, False, True, False]
    puts, deletes = inbox.take_writes()
    assert sorted(puts) == [dm_key(1), dm_key(3)] and deletes == []
    assert puts[dm_key(1)]["delivered"] is True and puts[dm_key(1)]["at"] == 0.0
    inbox.undelivered()[0]["delivered"] = True  # copies
    assert len(inbox.undelivered()) == 2


def test_inbox_expires_after_seven_days():
    inbox = Inbox()
    assert DM_TTL == 7 * 24 * 3600
    inbox.add(_dm("old"), EPOCH)
    inbox.add(_dm("new"), EPOCH + 3600.0)
    inbox.take_writes()
    assert inbox.expire(EPOCH + DM_TTL - 0.001) == 0
    assert inbox.expire(EPOCH + DM_TTL) == 1
    assert [m["text"] for m in inbox.all()] == ["new"]
    assert inbox.take_writes() == ({}, [dm_key(1)])
    inbox.add(_dm("later"), EPOCH + DM_TTL + 3600.0)  # add expires too
    assert [m["text"] for m in inbox.all()] == ["later"]
    assert inbox.all()[0]["id"] == 3


def test_inbox_keeps_at_most_a_hundred():
    inbox = Inbox()
    for i in range(DM_LIMIT + 3):
        inbox.add(_dm(f"m{i}"), float(i))
    assert len(inbox) == DM_LIMIT == 100
    assert inbox.all()[0]["id"] == 4 and inbox.all()[-1]["id"] == 103
    puts, deletes = inbox.take_writes()
    assert deletes == [dm_key(1), dm_key(2), dm_key(3)]
    assert len([k for k in puts if k != NEXT_KEY]) == 100 and puts[NEXT_KEY] == 104


def test_inbox_reload_keeps_ids_and_expiry():
    inbox = Inbox()
    for i in range(3):
        inbox.add(_dm(f"m{i}"), 100.0 * i)
    inbox.mark_delivered([2])
    stored, _ = inbox.take_writes()
    again = Inbox()
    again.load(stored, 250.0)
    assert again.all() == inbox.all() and again.take_writes() == ({}, [])
    assert again.add(_dm(), 260.0)["id"] == 4
    late = Inbox()
    late.load(stored, 100.0 + DM_TTL)  # the first two are 7 days old by then
    assert [m["id"] for m in late.all()] == [3]
    assert late.take_writes() == ({}, [dm_key(1), dm_key(2)])


def test_inbox_ids_are_not_reused_after_everything_expired():
    inbox = Inbox()
    inbox.add(_dm(), 0.0)
    inbox.add(_dm(), 0.0)
    inbox.expire(DM_TTL)
    stored, deletes = inbox.take_writes()
    assert stored == {NEXT_KEY: 3} and deletes == [dm_key(1), dm_key(2)]
    again = Inbox()
    again.load({NEXT_KEY: 3}, DM_TTL + 1.0)
    assert len(again) == 0 and again.add(_dm(), DM_TTL + 1.0)["id"] == 3


def test_inbox_load_ignores_foreign_values_and_applies_the_limit():
    stored = {dm_key(i): {"id": i, "from": "u-1", "name": "Ada", "to": "u-2", "text": str(i), "time": 1.0,
                          "delivered": 0, "at": 5.0} for i in range(1, 6)}
    stored["dm:garbage"] = "x"
    inbox = Inbox(limit=3)
    inbox.load(stored, 10.0)
    assert [m["id"] for m in inbox.all()] == [3, 4, 5] and inbox.all()[0]["delivered"] is False
    assert inbox.next_id == 6
    assert inbox.take_writes() == ({}, [dm_key(1), dm_key(2)])


def test_inbox_rejects_bad_bounds():
    for ttl, limit in ((0.0, 10), (-1.0, 10), (10.0, 0)):
        with pytest.raises(ValueError):
            Inbox(ttl, limit)


def test_chat_payload_of_a_direct_message():
    message = Inbox().add(_dm("hello"), 0.0)
    assert chat_payload(message) == {"id": 1, "channel": "dm", "from": "u-1", "name": "Ada", "to": "u-2",
                                     "text": "hello", "time": 42.5, "history": False}
    assert chat_payload(message, history=True)["history"] is True
