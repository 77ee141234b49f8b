"""Names of well-known stellar neighbours, and the few the Hipparcos catalogue lacks.

``NAMED_NEIGHBOURS`` maps Hipparcos numbers to display names. It takes precedence over
skyfield's ``named_star_dict`` (IAU / traditional proper names), which knows few of the
faint nearby stars (no "Barnard's Star", "Proxima Centauri", ...) and several names for
some bright ones. Every number was checked against the Hipparcos-2 catalogue
(van Leeuwen 2007, VizieR I/311): the entry exists and its parallax matches the star's
published distance (Alpha Centauri A 754.8 mas, Proxima 771.6 mas, Barnard's Star 548.3 mas,
Sirius 379.2 mas, ...). Designations follow the usual names in the RECONS / Wikipedia
lists of nearest stars; Gliese numbers are used for stars best known by them.

``SUPPLEMENTARY_STARS`` are named neighbours within 20 pc too faint for Hipparcos
(V > ~12.5). Their system ids are ``gj-<Gliese-Jahreiss number>``; coordinates are ICRS
(J2000) positions and parallaxes as published in SIMBAD (Gaia DR3 where available).
"""

from __future__ import annotations

from typing import NamedTuple

NAMED_NEIGHBOURS: dict[int, str] = {
    # Within ~4 pc, by distance.
    70890: "Proxima Centauri",
    71683: "Alpha Centauri A",
    71681: "Alpha Centauri B",
    87937: "Barnard's Star",
    54035: "Lalande 21185",
    32349: "Sirius",
    92403: "Ross 154",
    16537: "Epsilon Eridani",
    114046: "Lacaille 9352",
    57548: "Ross 128",
    104214: "61 Cygni A",
    104217: "61 Cygni B",
    37279: "Procyon",
    91772: "Struve 2398 B",
    91768: "Struve 2398 A",
    1475: "Groombridge 34",
    108870: "Epsilon Indi",
    8102: "Tau Ceti",
    5643: "YZ Ceti",
    36208: "Luyten's Star",
    24186: "Kapteyn's Star",
    105090: "Lacaille 8760",
    110893: "Kruger 60",
    # 4-8 pc.
    30920: "Ross 614",
    3829: "Van Maanen's Star",
    80824: "Wolf 1061",
    439: "Gliese 1",
    86162: "Gliese 687",
    85523: "Gliese 674",
    113020: "Gliese 876",
    54211: "Gliese 412 A",
    49908: "Gliese 380",
    106440: "Gliese 832",
    19849: "40 Eridani",
    88601: "70 Ophiuchi",
    86214: "Gliese 682",
    112460: "EV Lacertae",
    97649: "Altair",
    67155: "Gliese 526",
    33226: "Gliese 251",
    25878: "Gliese 205",
    29295: "Gliese 229",
    45343: "Gliese 338 A",
    96100: "Sigma Draconis",
    73184: "Gliese 570 A",
    94761: "Gliese 752 A",
    84405: "36 Ophiuchi A",
    3821: "Eta Cassiopeiae",
    15510: "82 Eridani",
    99240: "Delta Pavonis",
    74995: "Gliese 581",
    72659: "Xi Bootis",
    84709: "Gliese 667",
    2021: "Beta Hydri",
    5336: "Mu Cassiopeiae",
    91262: "Vega",
    113368: "Fomalhaut",
    # Beyond 8 pc.
    89937: "Chi Draconis",
    61317: "Beta Canum Venaticorum",
    1599: "Zeta Tucanae",
    57087: "Gliese 436",
    29271: "Alpha Mensae",
    83043: "Gliese 649",
    14632: "Iota Persei",
    10138: "Gliese 86",
    37826: "Pollux",
    69673: "Arcturus",
    57632: "Denebola",
    24608: "Capella",
    86032: "Rasalhague",
    105199: "Alderamin",
    36850: "Castor",
    746: "Caph",
}
"""Hipparcos number -> display name; wins over skyfield's names."""


class SupplementaryStar(NamedTuple):
    """A named neighbour missing from Hipparcos. RA/Dec are sexagesimal ICRS strings."""

    gj: int  # Gliese-Jahreiss catalogue number: the system id is f"gj-{gj}"
    name: str
    ra: str  # "hh mm ss.s"
    dec: str  # "+dd mm ss"
    parallax_mas: float
    bv: float | None


SUPPLEMENTARY_STARS: tuple[SupplementaryStar, ...] = (
    # Wolf 359 = GJ 406 = CN Leonis, M6 V, V = 13.5.
    SupplementaryStar(406, "Wolf 359", "10 56 28.9", "+07 00 53", 415.2, 2.0),
    # Luyten 726-8 = GJ 65 AB (BL Ceti + UV Ceti), M5.5 V + M6 V, V = 12.5 / 13.0.
    SupplementaryStar(65, "Luyten 726-8", "01 39 01.54", "-17 57 01.8", 373.7, 1.87),
    # Ross 248 = GJ 905 = HH Andromedae, M6 V, V = 12.3; parallax Gaia DR3.
    SupplementaryStar(905, "Ross 248", "23 41 55.04", "+44 10 38.8", 316.48, 1.92),
    # GJ 1061, M5.5 V, V = 13.0; parallax Gaia DR3.
    SupplementaryStar(1061, "Gliese 1061", "03 35 59.69", "-44 30 45.3", 272.16, 1.90),
)
"""Named neighbours within 20 pc that the Hipparcos catalogue does not contain."""


ALIASES: dict[str, str] = {
    # Common names of multiple systems resolve to their primary; catalogue designations of
    # stars best known by another name.
    "Alpha Centauri": "hip-71683",
    "Alpha Cen": "hip-71683",
    "Alpha Centauri C": "hip-70890",
    "Proxima": "hip-70890",
    "61 Cygni": "hip-104214",
    "Struve 2398": "hip-91768",
    "Gliese 406": "gj-406",
    "GJ 406": "gj-406",
    "Gliese 905": "gj-905",
    "GJ 905": "gj-905",
    "Gliese 65": "gj-65",
    "GJ 65": "gj-65",
    "GJ 1061": "gj-1061",
    "Gliese 699": "hip-87937",
    "GJ 699": "hip-87937",
    "Gliese 411": "hip-54035",
    "GJ 411": "hip-54035",
}
"""Alias -> system id. ``Galaxy.resolve`` accepts these besides ids and display names."""
