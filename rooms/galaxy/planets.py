"""Procedural planets: the deterministic contents of a star system's playing field.

World units: a system's plane is ``[-1000, 1000]**2`` with the star at (0, 0). Planets move
on circular orbits; at game time ``t`` (seconds) a planet is at angle
``phase + 2*pi*t/period`` (radians), see :meth:`Planet.position` and docs/protocol.md §4.

Layout rules (every system):

* 3-10 planets (Sol: its real 8), orbit radii between ``ORBIT_MIN`` (90) and ``ORBIT_MAX``
  (950) world units, neighbouring orbits at least ``MIN_ORBIT_GAP`` (50) apart, which is more
  than two of the largest planets (radius <= ``PLANET_RADIUS_MAX``, 20) plus a margin, so
  planets never touch.
* Periods follow a game-scaled Kepler third law, ``period = 1200 s * (orbit / 950) ** 1.5``:
  35-75 s for the innermost orbits, 1200 s at the edge, the same for every star so
  that travel feels the same everywhere.
* Everything random comes from ``random.Random(seed)`` with the seed taken from a SHA-256
  of the system id (never ``hash()``, which is salted per process), so every process, on
  every machine, generates the same planets. Values are rounded when generated, so the
  JSON a client receives is exactly what the server computes with.

Sol's planets are the real ones: orbits are the real semi-major axes (AU) mapped
logarithmically from Mercury's 0.387 AU -> 90 to Neptune's 30.07 AU -> 950; phases are the
J2000 mean longitudes (Standish & Williams, "Keplerian Elements for Approximate Positions of
the Major Planets", JPL Solar System Dynamics, Table 1).
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .colors import bv_to_temperature

if TYPE_CHECKING:
    from .catalogue import StarSystem

ORBIT_MIN = 90.0
"""Smallest orbit radius, world units."""
ORBIT_MAX = 950.0
"""Largest orbit radius, world units."""
PLANET_RADIUS_MIN = 3.0
PLANET_RADIUS_MAX = 20.0
"""Planet radii lie in [PLANET_RADIUS_MIN, PLANET_RADIUS_MAX] world units."""
MIN_ORBIT_GAP = 2 * PLANET_RADIUS_MAX + 10.0
"""Smallest distance between neighbouring orbits, world units."""
PERIOD_AT_MAX = 1200.0
"""Orbital period at ``ORBIT_MAX``, game seconds."""
STAR_RADIUS_MIN = 20.0
STAR_RADIUS_MAX = 60.0
"""Star radii lie in [STAR_RADIUS_MIN, STAR_RADIUS_MAX] world units; the Sun is 40."""
SUN_TEMPERATURE = 5772.0
"""Effective temperature of the Sun, K (IAU 2015 Resolution B3)."""
SUN_ABS_MAG = 4.83
"""Absolute V magnitude of the Sun."""

_LETTERS = "bcdefghijk"

# (name, semi-major axis AU, J2000 mean longitude deg, radius world units, colour).
_SOL_PLANETS = (
    ("Mercury", 0.38710, 252.2503, 4.0, "#9c9792"),
    ("Venus", 0.72333, 181.9791, 7.0, "#e3c27a"),
    ("Earth", 1.00000, 100.4646, 7.5, "#4f7fd0"),
    ("Mars", 1.52371, -4.5534, 5.0, "#c1502e"),
    ("Jupiter", 5.20289, 34.3964, 20.0, "#d8b98c"),
    ("Saturn", 9.53668, 49.9543, 17.0, "#e6d3a0"),
    ("Uranus", 19.18916, 313.2381, 12.0, "#9fd8e0"),
    ("Neptune", 30.06992, -55.1203, 11.5, "#4a6fe3"),
)

# Procedural planet kinds by orbit zone: (outer orbit bound, radius range, palette).
_ZONES = (
    (260.0, (3.0, 8.0), ("#8c8681", "#a0785a", "#b5502d", "#c9b18a", "#6e6259")),  # hot rocky
    (450.0, (4.0, 10.0), ("#3f6fc7", "#4f9a6a", "#c49a5a", "#7fa7d6", "#b6a58c")),  # temperate
    (760.0, (10.0, 20.0), ("#d8b98c", "#c98f56", "#e6d3a0", "#a8795a", "#d9c7a8")),  # gas giants
    (ORBIT_MAX, (7.0, 14.0), ("#9fd8e0", "#4a6fe3", "#6fb3c9", "#8aa6e8", "#b9e3e8")),  # ice giants
)


@dataclass(frozen=True)
class Planet:
    """A planet on a circular orbit around its star at (0, 0).

    ``orbit``: radius, world units; ``period``: game seconds per revolution; ``phase``:
    angle at game time 0, radians; ``radius``: world units; ``color``: ``#rrggbb``.
    """

    id: int
    name: str
    orbit: float
    period: float
    phase: float
    radius: float
    color: str

    def position(self, t: float) -> tuple[float, float]:
        """(x, y) in world units at game time ``t`` seconds."""
        angle = self.phase + 2.0 * math.pi * t / self.period
        return (self.orbit * math.cos(angle), self.orbit * math.sin(angle))

    def to_json(self) -> dict:
        """The planet's entry of the welcome ``system.planets`` list (docs/protocol.md §4)."""
        return {
            "id": self.id,
            "name": self.name,
            "orbit": self.orbit,
            "period": self.period,
            "phase": self.phase,
            "radius": self.radius,
            "color": self.color,
        }


def orbital_period(orbit: float) -> float:
    """Game-scaled Kepler third law: seconds per revolution at ``orbit`` world units."""
    return round(PERIOD_AT_MAX * (orbit / ORBIT_MAX) ** 1.5, 2)


def _rng(system: StarSystem) -> random.Random:
    """A generator seeded from the system id (stable across processes and platforms)."""
    digest = hashlib.sha256(f"starhold-planets:{system.id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _jitter(color: str, rng: random.Random) -> str:
    """``color`` with each channel scaled by a random factor in [0.85, 1.15]."""
    channels = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join("%02x" % min(255, max(0, round(c * rng.uniform(0.85, 1.15)))) for c in channels)


def _sol_planets() -> tuple[Planet, ...]:
    lo, hi = math.log(_SOL_PLANETS[0][1]), math.log(_SOL_PLANETS[-1][1])
    planets = []
    for i, (name, au, longitude, radius, color) in enumerate(_SOL_PLANETS, start=1):
        orbit = round(ORBIT_MIN * (ORBIT_MAX / ORBIT_MIN) ** ((math.log(au) - lo) / (hi - lo)), 1)
        phase = round(math.radians(longitude % 360.0), 4)
        planets.append(Planet(i, name, orbit, orbital_period(orbit), phase, radius, color))
    return tuple(planets)


def _orbits(count: int, rng: random.Random) -> list[float]:
    """``count`` increasing orbit radii in [ORBIT_MIN, ORBIT_MAX], at least MIN_ORBIT_GAP apart.

    The innermost orbit lies up to 60 units beyond ORBIT_MIN; the free space left beyond
    the minimum gaps is shared out by random weights that grow outward (roughly geometric
    spacing, like real systems), with a random part left unused outside the last orbit.
    """
    slack = (ORBIT_MAX - ORBIT_MIN) - (count - 1) * MIN_ORBIT_GAP
    inner = ORBIT_MIN + rng.uniform(0.0, min(60.0, slack / 4.0))
    slack -= inner - ORBIT_MIN
    gaps = [1.3**i * rng.uniform(0.6, 1.4) for i in range(count - 1)]
    tail = rng.uniform(0.0, 1.0) * sum(gaps)
    total = sum(gaps) + tail
    orbits = [inner]
    for gap in gaps:
        orbits.append(orbits[-1] + MIN_ORBIT_GAP + slack * gap / total)
    # Rounding down keeps the bounds; a gap shrinks by less than 0.1.
    return [math.floor(o * 10.0) / 10.0 for o in orbits]


def _procedural_planets(system: StarSystem) -> tuple[Planet, ...]:
    rng = _rng(system)
    count = rng.randint(3, 10)
    planets = []
    for i, orbit in enumerate(_orbits(count, rng)):
        (r_lo, r_hi), palette = next((z[1], z[2]) for z in _ZONES if orbit <= z[0])
        radius = round(rng.uniform(r_lo, r_hi), 1)
        color = _jitter(rng.choice(palette), rng)
        phase = round(rng.uniform(0.0, 2.0 * math.pi), 4)
        planets.append(
            Planet(i + 1, f"{system.name} {_LETTERS[i]}", orbit, orbital_period(orbit), phase, radius, color)
        )
    return tuple(planets)


@functools.lru_cache(maxsize=2048)
def generate_planets(system: StarSystem) -> tuple[Planet, ...]:
    """The planets of ``system``, innermost first, ids 1..n. Deterministic: the same system
    gives the same planets in every process. Sol gets Mercury..Neptune; every other system
    3-10 procedural planets named ``"<star name> b"``, ``"c"``, ..."""
    if system.id == "sol":
        return _sol_planets()
    return _procedural_planets(system)


def star_radius(system: StarSystem) -> float:
    """Radius of the star's disc, world units, in [20, 60]; the Sun is 40.

    ``40 + 8 * log2(R / R_sun)``, clamped. The physical radius comes from Stefan-Boltzmann,
    ``R / R_sun = sqrt(L / L_sun) * (T_sun / T)**2``, with T from B-V (Ballesteros 2012) and
    L from the Hipparcos magnitude and distance (absolute magnitude against the Sun's 4.83,
    no bolometric correction). Without a magnitude (Sol, non-Hipparcos stars) a main-sequence
    estimate ``R / R_sun = (T / T_sun) ** k`` is used (k = 2.5 below T_sun, 1.3 above); without
    a B-V index the star counts as Sun-like.
    """
    temperature = bv_to_temperature(system.bv) if system.bv is not None else SUN_TEMPERATURE
    if system.magnitude is not None and system.distance > 0:
        abs_mag = system.magnitude - 5.0 * math.log10(system.distance / 10.0)
        luminosity = 10.0 ** (-0.4 * (abs_mag - SUN_ABS_MAG))
        radius = math.sqrt(luminosity) * (SUN_TEMPERATURE / temperature) ** 2
    else:
        ratio = temperature / SUN_TEMPERATURE
        radius = ratio ** (2.5 if ratio < 1.0 else 1.3)
    if system.id == "sol":
        radius = 1.0
    world = 40.0 + 8.0 * math.log2(radius)
    return round(min(max(world, STAR_RADIUS_MIN), STAR_RADIUS_MAX), 1)


def system_info(system: StarSystem) -> dict:
    """The welcome ``system`` dict (docs/protocol.md §4): ``{"id", "name", "color",
    "star_radius", "planets": [...]}``; plain JSON/msgpack-serialisable data (str, float,
    int, list, dict), safe to send to another process."""
    return {
        "id": system.id,
        "name": system.name,
        "color": system.color,
        "star_radius": star_radius(system),
        "planets": [p.to_json() for p in generate_planets(system)],
    }
