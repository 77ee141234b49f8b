"""Star colours from the B-V colour index: B-V -> effective temperature (Ballesteros 2012) ->
an sRGB ``#rrggbb`` colour (Tanner Helland's blackbody fit)."""

from __future__ import annotations

import math

UNKNOWN_COLOR = "#ffffff"
"""Colour of a star whose B-V index is unknown."""


def bv_to_temperature(bv: float) -> float:
    """Effective temperature (kelvin) of a star of B-V colour index ``bv``.

    Ballesteros 2012, "New insights into black bodies", EPL 97, 34008:
    ``T = 4600 K * (1 / (0.92 bv + 1.7) + 1 / (0.92 bv + 0.62))``, with ``bv`` clamped to
    [-0.4, 2.0] (the range of real stellar colours; 0.65 gives the Sun's ~5780 K).
    """
    bv = min(max(float(bv), -0.4), 2.0)
    return 4600.0 * (1.0 / (0.92 * bv + 1.7) + 1.0 / (0.92 * bv + 0.62))


def temperature_to_rgb(kelvin: float) -> tuple[int, int, int]:
    """Approximate sRGB colour (0-255 per channel) of a black body at ``kelvin`` (1000-40000 K).

    Tanner Helland's curve fit to Mitchell Charity's blackbody colour table
    ("How to Convert Temperature (K) to RGB", tannerhelland.com, 2012).
    """
    t = min(max(kelvin, 1000.0), 40000.0) / 100.0
    if t <= 66.0:
        red = 255.0
        green = 99.4708025861 * math.log(t) - 161.1195681661
    else:
        red = 329.698727446 * (t - 60.0) ** -0.1332047592
        green = 288.1221695283 * (t - 60.0) ** -0.0755148492
    if t >= 66.0:
        blue = 255.0
    elif t <= 19.0:
        blue = 0.0
    else:
        blue = 138.5177312231 * math.log(t - 10.0) - 305.0447927307

    def channel(v: float) -> int:
        return int(round(min(max(v, 0.0), 255.0)))

    return channel(red), channel(green), channel(blue)


def bv_to_color(bv: float | None) -> str:
    """``#rrggbb`` colour of a star of B-V index ``bv``: :func:`bv_to_temperature` (Ballesteros
    2012) then :func:`temperature_to_rgb` (Tanner Helland). ``None`` gives ``UNKNOWN_COLOR``.
    Low (blue) B-V gives bluish white, high (red) B-V orange-red."""
    if bv is None or not math.isfinite(bv):
        return UNKNOWN_COLOR
    return "#%02x%02x%02x" % temperature_to_rgb(bv_to_temperature(bv))


# --- building -----------------------------------------------------------------------------
