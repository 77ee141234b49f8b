"""The load tools' CPU breakdown by process group (``starhold.client.loadstats``)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from starhold.client.loadstats import (ROLES, cpu_times_by_role, process_role, sample_usage, voluntary_switches,
                                      wakeups_by_role)


def _titled(title: str) -> subprocess.Popen:
    """A sleeping child whose argv[0] is ``title`` (as Ray titles its workers ``ray::<Class>``)."""
    return subprocess.Popen(["bash", "-c", f'exec -a "{title}" sleep 60'])


@pytest.mark.parametrize("title, role", [
    ("ray::RoomHost", "room hosts"),
    ("ray::HostPool", "ray"),
    ("ray::IDLE", "ray"),
    ("/opt/venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet", "ray"),
    ("/opt/venv/lib/python3.11/site-packages/ray/core/src/ray/gcs/gcs_server", "ray"),
    ("node", "server"),
])
def test_process_role_by_title(title, role):
    child = _titled(title)
    try:
        proc = psutil.Process(child.pid)
        deadline = time.monotonic() + 10
        while proc.cmdline()[:1] != [title] and time.monotonic() < deadline:  # until exec has happened
            time.sleep(0.01)
        assert process_role(proc) == role
    finally:
        child.kill()
        child.wait()


def test_a_server_with_dashboard_among_its_options_is_the_server():
    """``starhold serve ... --no-dashboard``: only the program and its script name a daemon."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--no-dashboard"])
    try:
        assert process_role(psutil.Process(child.pid)) == "server"
    finally:
        child.kill()
        child.wait()


def test_a_gone_process_is_the_server():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    proc = psutil.Process(child.pid)
    child.wait()
    assert process_role(proc) == "server"


def test_cpu_times_by_role_sums_deltas_per_role():
    before = {1: ("server", 10.0, 2.0), 2: ("room hosts", 5.0, 1.0)}
    after = {1: ("server", 11.0, 2.5), 2: ("room hosts", 5.5, 1.0), 3: ("ray", 0.2, 0.1)}  # 3 started in between
    out = cpu_times_by_role(before, after, 2.0)
    assert set(out) == set(ROLES)
    assert out["server"] == pytest.approx({"user": 50.0, "system": 25.0})
    assert out["room hosts"] == pytest.approx({"user": 25.0, "system": 0.0})
    assert out["ray"] == pytest.approx({"user": 10.0, "system": 5.0})


def test_wakeups_by_role_are_voluntary_switches_per_second_per_role():
    before = {1: ("server", 100), 2: ("room hosts", 40)}
    after = {1: ("server", 300), 2: ("room hosts", 40), 3: ("ray", 10), 4: ("room hosts", 20)}  # 3, 4 started since
    assert wakeups_by_role(before, after, 2.0) == {"server": 100.0, "room hosts": 10.0, "ray": 5.0}


def test_voluntary_switches_count_every_thread_of_a_process():
    # A second thread naps 100 times (each nap a voluntary switch) between two lines on the
    # pipes, so the counts are taken before and after it whatever the machine's load.
    code = ("import sys, threading, time\n"
            "def nap():\n"
            "    sys.stdin.readline()\n"
            "    for _ in range(100): time.sleep(0.001)\n"
            "    print('napped', flush=True)\n"
            "    sys.stdin.readline()\n"
            "threading.Thread(target=nap).start()\n"
            "print('ready', flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        proc = psutil.Process(child.pid)
        first, main_first = voluntary_switches(proc), proc.num_ctx_switches().voluntary
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline() == "napped\n"  # the thread is alive, blocked on its next line
        napped = voluntary_switches(proc) - first
        assert napped >= 100 > proc.num_ctx_switches().voluntary - main_first  # psutil: the main thread only
    finally:
        child.kill()
        child.wait()


def test_sample_usage_breaks_the_servers_cpu_down():
    """A busy server process shows up as "server" CPU; no room hosts or Ray in its tree."""
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 30\nwhile time.time() < end: pass"])
    try:
        start = time.time() + 0.2
        usage = sample_usage([busy.pid], [], start, start + 1.0, period=0.25)
    finally:
        busy.kill()
        busy.wait()
    parts = usage["server_cpu_breakdown"]
    assert set(parts) == set(ROLES)
    assert parts["server"]["user"] > 0.0
    assert parts["room hosts"] == {"user": 0.0, "system": 0.0} and parts["ray"] == {"user": 0.0, "system": 0.0}
    assert usage["server_cpu_percent"] > 0.0
    assert set(usage["server_wakeups"]) == set(ROLES) and usage["server_wakeups"]["ray"] == 0.0
