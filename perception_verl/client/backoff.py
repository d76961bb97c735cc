"""Bounded exponential growth for back-off and cool-down delays.

``base * 2 ** n`` with an integer ``n`` turns into an ``int`` too large for a float after about 1,024
doublings, and multiplying it by a float then raises ``OverflowError``. :func:`capped_doubling` caps
the exponent first, so every failure or retry count gives a finite delay no larger than the cap.
"""

from __future__ import annotations

import math

MAX_DOUBLINGS = 64
"""Doublings beyond this change nothing: ``2**64`` times any delay base in seconds exceeds every cap."""


def capped_doubling(base_s: float, doublings: int, cap_s: float) -> float:
    """``min(cap_s, base_s * 2**doublings)`` for any ``doublings`` (negative: 0); never overflows."""
    exponent = min(max(int(doublings), 0), MAX_DOUBLINGS)
    return min(cap_s, base_s * math.ldexp(1.0, exponent))
