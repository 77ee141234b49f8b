"""``starhold serve`` as a small supervisor around the server, for a clean stop on SIGTERM.

Service managers stop a program by signalling its whole process group (or cgroup):
``docker stop`` and Kubernetes signal PID 1, shells and ``kill -TERM -<pgid>`` the group. A
local Ray started by ``ray.init`` lives in the server's process group, so such a SIGTERM
killed Ray's GCS and raylet (and the room actors) at the same moment as the server: the
server's orderly shutdown then waited 60 s for a GCS that was gone ("Failed to connect to GCS
within 60 seconds") and no room took its snapshot. (Ctrl-C worked: Ray's processes block
SIGINT.)

So ``starhold serve`` runs the real server as a child in a session (and process group) of its
own, and stays in front as the supervisor, in the group that gets the signals:

- on SIGTERM or SIGINT (first one) it sends SIGTERM to the server only: the gateways close
  their sockets with 1001, the rooms hibernate (commit and snapshot), Ray shuts down, the
  server exits; the supervisor exits with the server's status;
- if the server has not exited ``timeout`` seconds after the signal (``--shutdown-timeout``,
  default 10), or on a second signal, it kills the server's whole process group (SIGKILL);
- after the server exits it kills whatever is left in that group (a straggling Ray worker);
- if the supervisor itself is killed (SIGKILL), the kernel sends the server SIGTERM
  (``PR_SET_PDEATHSIG``, Linux), which shuts it down as above.

Under systemd use ``KillMode=mixed`` (SIGTERM to the main process only, SIGKILL to the rest
after ``TimeoutStopSec``): the default ``control-group`` signals every process of the unit at
once, Ray's included, whatever their process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

ENV_CHILD = "STARHOLD_SERVE_CHILD"
"""Set in the server child's environment: it runs the server instead of a supervisor."""
PR_SET_PDEATHSIG = 1


def is_child() -> bool:
    """Whether this process is the supervised server."""
    return os.environ.get(ENV_CHILD) == "1"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the server outlives a killed supervisor
        pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def supervise(argv: list[str], timeout: float) -> int:
    """Run ``python -m starhold.cli <argv>`` as the server child (own session) and relay
    SIGTERM/SIGINT to it as described in the module docstring. Returns the server's exit
    status (``128 + signal`` if it was killed by one)."""
    child = subprocess.Popen([sys.executable, "-m", "starhold.cli", *argv], env={**os.environ, ENV_CHILD: "1"},
                             start_new_session=True, preexec_fn=_die_with_parent)
    signals = []

    def relay(signum, frame):
        signals.append(signum)
        if len(signals) == 1:
            try:
                child.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.001))  # SIGALRM: too late
        else:
            _kill_group(child.pid)

    def too_late(signum, frame):
        print(f"the server did not stop within {timeout:g} s: killing it", file=sys.stderr, flush=True)
        _kill_group(child.pid)

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)
    previous = {s: signal.signal(s, too_late if s == signal.SIGALRM else relay) for s in handled}
    try:
        child.wait()  # signal handlers run meanwhile (PEP 475: the wait resumes after them)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, handler in previous.items():
            signal.signal(s, handler)
        _kill_group(child.pid)  # stragglers of the server's group (the server itself is gone)
    code = child.returncode
    return 128 - code if code < 0 else code
