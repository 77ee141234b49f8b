"""Login throttling: failed logins slow down further attempts, per account and per address.

What account services do (AWS Cognito, OWASP's "blocking brute force attacks"): a few failures
are free, then each further failure locks the key out for a time that doubles, up to a cap;
a quiet period forgets the failures. Two counters decide, both checked *before* the password
is (no scrypt is spent on a locked-out attempt), and an attempt refused while locked out is
not counted (it neither extends the lockout nor costs a hash):

- **per account** (the username, case-insensitive): ``account_free`` failures (default 5),
  then a lockout of 1 s doubling per failure up to ``LOCKOUT_MAX`` (15 min). This is what
  stops a guesser spread over many addresses.
- **per client address** (the TCP peer; behind a reverse proxy that is the proxy, so its
  addresses all share one counter): ``address_free`` failures over all accounts (default 20),
  then the same doubling lockout. This stops one address spraying passwords over many
  accounts.

**Lockout of real users.** An attacker who keeps failing on an account keeps it locked, which
would shut its owner out for as long as the attack lasts. So an address from which the
account has logged in successfully before (remembered per process, the last
``KNOWN_ADDRESSES`` per account) is exempt from the account's shared counter and gets a
counter of its own for that account instead: the owner at home keeps logging in while the
account is locked for everyone else. An owner on a new address during an attack waits for the
lockout (at most 15 min after the attacker's last failure). A success resets the counter it
was checked against; the address counter only decays (``FORGET_AFTER`` without failures),
so owning one account does not buy more guesses at others.

**Scope.** The counters live in each gateway process's memory: with N gateway processes an
attacker whose connections are spread over them gets up to N times the free failures, and a
restart forgets everything. Each table keeps at most ``MAX_KEYS`` keys (the least recently
failed are dropped first).
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable

LOCKOUT_BASE = 1.0
"""Seconds of the first lockout (after the last free failure); doubles with each failure."""
LOCKOUT_MAX = 15 * 60.0
"""Longest lockout, seconds."""
FORGET_AFTER = 15 * 60.0
"""Seconds without a failure after which a key's failures are forgotten."""
ACCOUNT_FREE_FAILURES = 5
"""Default failures in a row per account before lockouts start."""
ADDRESS_FREE_FAILURES = 20
"""Default failures in a row per client address before lockouts start."""
MAX_KEYS = 100_000
"""Most keys a table remembers."""
KNOWN_ADDRESSES = 8
"""Addresses remembered per account as having logged in successfully."""


class FailureBackoff:
    """Failures per key with an exponential lockout.

    ``free``: failures allowed before the first lockout; the ``free``-th failure locks the key
    for ``base`` seconds, each further one for twice as long, up to ``cap``. A key with no
    failure for ``forget_after`` seconds starts afresh. ``now`` returns seconds (monotonic)."""

    def __init__(self, free: int, *, base: float = LOCKOUT_BASE, cap: float = LOCKOUT_MAX,
                 forget_after: float = FORGET_AFTER, now: Callable[[], float] = time.monotonic,
                 max_keys: int = MAX_KEYS):
        self.free, self.base, self.cap, self.forget_after = free, base, cap, forget_after
        self.now, self.max_keys = now, max_keys
        self._keys: collections.OrderedDict = collections.OrderedDict()  # key -> [failures, last, locked_until]

    def _entry(self, key) -> list | None:
        entry = self._keys.get(key)
        if entry is not None and self.now() - entry[1] >= self.forget_after:
            del self._keys[key]
            return None
        return entry

    def retry_after(self, key) -> float:
        """Seconds until ``key`` may try again (0.0: now)."""
        entry = self._entry(key)
        return 0.0 if entry is None else max(0.0, entry[2] - self.now())

    def failed(self, key) -> None:
        """Count one failure of ``key`` (and lock it out once past ``free``)."""
        now = self.now()
        entry = self._entry(key) or [0, now, 0.0]
        entry[0] += 1
        entry[1] = now
        if self.free > 0 and entry[0] >= self.free:
            entry[2] = now + min(self.cap, self.base * 2 ** min(entry[0] - self.free, 64))
        self._keys[key] = entry
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)

    def succeeded(self, key) -> None:
        """Forget ``key``'s failures."""
        self._keys.pop(key, None)


class LoginThrottle:
    """The two login counters and the accounts' known addresses (see the module docstring).

    ``account_free`` / ``address_free``: failures before lockouts start; 0 disables that
    counter. Use ``retry_after(account, address)`` before checking a password, then
    ``failed`` or ``succeeded``."""

    def __init__(self, account_free: int = ACCOUNT_FREE_FAILURES, address_free: int = ADDRESS_FREE_FAILURES,
                 *, now: Callable[[], float] = time.monotonic):
        self.accounts = FailureBackoff(account_free, now=now)
        self.addresses = FailureBackoff(address_free, now=now)
        self._known: collections.OrderedDict = collections.OrderedDict()  # account -> deque of addresses

    @staticmethod
    def account_key(username) -> str:
        """The counter key of a login's ``username`` (case-insensitive; non-strings share one)."""
        return username.strip().lower()[:64] if isinstance(username, str) else ""

    def _account_counter_key(self, account: str, address: str) -> tuple:
        known = self._known.get(account)
        return (account, address) if known is not None and address in known else (account, None)

    def retry_after(self, account: str, address: str) -> float:
        """Seconds until a login to ``account`` from ``address`` may be tried (0.0: now)."""
        waits = []
        if self.accounts.free > 0:
            waits.append(self.accounts.retry_after(self._account_counter_key(account, address)))
        if self.addresses.free > 0:
            waits.append(self.addresses.retry_after(address))
        return max(waits, default=0.0)

    def failed(self, account: str, address: str) -> None:
        """A wrong password (or unknown account) for ``account`` from ``address``."""
        self.accounts.failed(self._account_counter_key(account, address))
        self.addresses.failed(address)

    def succeeded(self, account: str, address: str) -> None:
        """A successful login: reset the account counter it was checked against and remember
        ``address`` as one the account logs in from."""
        self.accounts.succeeded(self._account_counter_key(account, address))
        known = self._known.setdefault(account, collections.deque(maxlen=KNOWN_ADDRESSES))
        if address not in known:
            known.append(address)
        self._known.move_to_end(account)
        while len(self._known) > MAX_KEYS:
            self._known.popitem(last=False)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` value (RFC 9110 §10.2.3): whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
