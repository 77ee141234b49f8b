"""The chaos test of jumps (the full 1,000 is ``benchmarks/jump_chaos.py``): players jump
between systems while a random participant (the system left, the system aimed at, or the pilot
room) is killed at a random step of one jump in two; after every jump each ship is in exactly
one place, every jump completed or rolled back, and every player can continue."""

from __future__ import annotations

from galaxy_driver import LINE, Chaos, Galaxy, Player, invariant

JUMPS = 40


async def test_jumps_with_kills_lose_and_duplicate_nothing(tmp_path):
    galaxy = await Galaxy.start(tmp_path / "data")
    try:
        players = [Player(galaxy, f"g-{i:016x}", f"P{i}") for i in range(4)]
        for i, p in enumerate(players):
            await p.join(LINE[i])
        chaos = Chaos(galaxy, players, seed=14, kill_rate=0.5)
        for n in range(JUMPS):
            await chaos.jump(players[n % len(players)])
            await galaxy.settle()
            where = await invariant(galaxy, [p.player for p in players])
            assert set(where.values()) <= set(LINE)  # nobody lost in transit after recovery
        assert chaos.completed + chaos.rolled_back == JUMPS
        assert sum(chaos.kills.values()) >= JUMPS // 4
        assert chaos.completed >= JUMPS // 2
    finally:
        await galaxy.close()
