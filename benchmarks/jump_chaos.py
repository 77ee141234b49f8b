"""Chaos benchmark of jumps: N jumps (default 1,000) of 8 players across four systems, a
random participant (system left, system aimed at, pilot room) killed at a random step of one
jump in two; after every jump, asserts every ship is in exactly one place (the place its pilot
room says) and prints the figures: jumps, completed, rolled back, kills by participant and
step, ships lost (a player who cannot get back to its ship), ships duplicated (a ship in two
places, or where its pilot room does not say).

    python benchmarks/jump_chaos.py [--jumps 1000] [--seed 14] [--kill-rate 0.5]

Rooms run in process on a manual clock (tests/galaxy_driver.py); posts between rooms are
delivered in real time, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from galaxy_driver import LINE, PARTICIPANTS, STEPS, Chaos, Galaxy, Player, invariant  # noqa: E402


async def main(jumps: int, seed: int, kill_rate: float) -> int:
    started = time.perf_counter()
    lost = duplicated = 0
    with tempfile.TemporaryDirectory() as tmp:
        galaxy = await Galaxy.start(Path(tmp) / "data")
        try:
            players = [Player(galaxy, f"g-{i:016x}", f"P{i}") for i in range(8)]
            for i, p in enumerate(players):
                await p.join(LINE[i % len(LINE)])
            chaos = Chaos(galaxy, players, seed=seed, kill_rate=kill_rate)
            for n in range(jumps):
                try:
                    await chaos.jump(players[n % len(players)])
                except AssertionError as exc:  # the player could not get back to its ship
                    print("LOST:", exc)
                    lost += 1
                await galaxy.settle()
                try:
                    await invariant(galaxy, [p.player for p in players])
                except AssertionError as exc:  # in two places, or somewhere its pilot room does not say
                    print("INVARIANT BROKEN:", exc)
                    duplicated += 1
                if (n + 1) % 100 == 0:
                    print(f"  {n + 1} jumps, {time.perf_counter() - started:.0f} s", flush=True)
            for p in players:  # every player can continue: join where the ship is
                try:
                    await chaos.recover(p)
                except AssertionError as exc:
                    print("LOST:", exc)
                    lost += 1
        finally:
            await galaxy.close()
    kills = sum(chaos.kills.values())
    print(f"jumps {chaos.jumps}: completed {chaos.completed}, rolled back {chaos.rolled_back}; "
          f"kills {kills}; ships lost {lost}, ships duplicated {duplicated}; "
          f"{time.perf_counter() - started:.0f} s")
    print("kills by participant and step:")
    print("  " + "participant".ljust(12) + "".join(s.rjust(16) for s in STEPS))
    for who in PARTICIPANTS:
        print("  " + who.ljust(12) + "".join(str(chaos.kills.get((who, s), 0)).rjust(16) for s in STEPS))
    return 1 if lost or duplicated else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jumps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--kill-rate", type=float, default=0.5)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.jumps, args.seed, args.kill_rate)))
