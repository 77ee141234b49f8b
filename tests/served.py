"""``starhold serve`` in a subprocess for end-to-end tests: its own process group (as under a
service manager), its output collected line by line, ``up`` set once it prints that it is up."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys


class ServeFailed(AssertionError):
    """The server exited, or did not come up in time, before printing that it is up; the
    message holds its output."""


class AddressInUse(ServeFailed):
    """The server exited because a port it was given was taken in the meantime (the race of
    picking a free port and binding it later, which Ray's own processes can lose for us)."""


def free_ports(count: int, *, consecutive: int = 1) -> list[int]:
    """``count`` distinct ports of 127.0.0.1 free now; each is the first of ``consecutive``
    free ports in a row (``starhold serve --gateways N --metrics-port P`` uses P..P+N-1)."""
    ports: list[int] = []
    while len(ports) < count * consecutive:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
        run = range(first, first + consecutive)
        if any(p in ports or p > 65535 for p in run) or not all(_free(p) for p in run):
            continue
        ports.extend(run)
    return [p for i, p in enumerate(ports) if i % consecutive == 0]


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Served:
    """``await Served.start(*serve_args, env=env)``; ``output`` (lines so far), ``up``
    (an ``asyncio.Event``), ``proc`` (the ``asyncio.subprocess.Process``), ``reader`` (the
    task collecting the output); ``wait_up()`` waits for it to be up; ``stop()`` ends it."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.output: list[str] = []
        self.up = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, *serve_args: str, env: dict) -> "Served":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "starhold.cli", "serve", *serve_args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True)
        return cls(proc)

    async def _read(self) -> None:
        while line := await self.proc.stdout.readline():
            self.output.append(line.decode(errors="replace"))
            if "Starhold is up" in self.output[-1]:
                self.up.set()

    async def wait_up(self, timeout: float) -> None:
        """Return once the server prints that it is up. Raises ``AddressInUse`` or
        ``ServeFailed`` (with the output) as soon as it exits first, ``ServeFailed`` after
        ``timeout`` seconds (the process is left running: the caller's cleanup stops it)."""
        up = asyncio.ensure_future(self.up.wait())
        exited = asyncio.ensure_future(self.proc.wait())
        await asyncio.wait([up, exited], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        up.cancel()
        exited.cancel()
        if self.up.is_set():
            return
        if self.proc.returncode is not None:
            try:  # the rest of its output
                await asyncio.wait_for(asyncio.shield(self.reader), 10)
            except asyncio.TimeoutError:
                pass
            failure = AddressInUse if "address already in use" in self.text else ServeFailed
            raise failure(f"starhold serve exited with {self.proc.returncode} before it was up:\n{self.text}")
        raise ServeFailed(f"starhold serve was not up after {timeout} s:\n{self.text}")

    async def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the process group if the server still runs, SIGKILL it after ``timeout``
        seconds, and stop collecting the output."""
        if self.proc.returncode is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        self.reader.cancel()

    @property
    def text(self) -> str:
        return "".join(self.output)


STARTUP_TIMEOUT = 240.0
"""Seconds for a server to come up on a loaded machine (Ray alone takes 5-10 s idle)."""


def clean_env() -> dict:
    """This process's environment without ``STARHOLD_*`` settings, Ray's usage stats off and
    the server's output unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARHOLD_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
    return env


async def serve_with_metrics(data_dir, *serve_args: str, gateways: int = 1) -> tuple["Served", int, int]:
    """Start ``starhold serve`` on free ports with ``--metrics-port`` (gateway ``i`` on
    ``metrics_port + i``), trying again with other ports when one was taken meanwhile (three
    tries, data in ``<data_dir><attempt>``), and wait until it is up. Returns ``(served, port,
    metrics_port)``; the caller stops it."""
    for attempt in range(3):
        port, metrics_port = free_ports(2, consecutive=gateways)
        served = await Served.start("--port", str(port), "--data-dir", f"{data_dir}{attempt}", "--no-dashboard",
                                    "--gateways", str(gateways), "--metrics-port", str(metrics_port),
                                    *serve_args, env=clean_env())
        try:
            await served.wait_up(STARTUP_TIMEOUT)
            return served, port, metrics_port
        except AddressInUse:
            if attempt == 2:
                raise
        except BaseException:
            await served.stop()
            raise
    raise AssertionError("unreachable")


def hosted(text: str, name: str) -> list[float]:
    """The values of the samples ``name{host="...", ...}`` in an exposition: the room hosts'
    figures a gateway merged into its own (sockets in room hosts)."""
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(f'{name}{{host="')]


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of sample ``name{labels}`` in a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} " if labels else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
