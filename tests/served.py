"""``starhold serve`` in a subprocess for end-to-end tests: its own process group (as under a
service manager), its output collected line by line, ``up`` set once it prints that it is up."""

from __future__ import annotations

import asyncio
import sys


class Served:
    """``await Served.start(*serve_args, env=env)``; ``output`` (lines so far), ``up``
    (an ``asyncio.Event``), ``proc`` (the ``asyncio.subprocess.Process``); ``stop()``
    cancels the reader once the process is done with."""

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

    @property
    def text(self) -> str:
        return "".join(self.output)
