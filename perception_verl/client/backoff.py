"""The one back-off of every retry: bounded exponential growth with full jitter.

``base * 2 ** n`` with an integer ``n`` turns into an ``int`` too large for a float after about 1,024
doublings, and multiplying it by a float then raises ``OverflowError``. :func:`capped_doubling` caps
the exponent first, so every failure or retry count gives a finite delay no larger than the cap.
:func:`backoff_delay` is the delay before a retry, used by the deadline-aware judge (the retry owner
in training, :mod:`perception_verl.judge.budget`), by the chat client's own retries (offline tools
only) and, through :func:`capped_doubling`, by the replica cool-down.
"""

from __future__ import annotations

import math
import random

MAX_DOUBLINGS = 64
"""Doublings beyond this change nothing: ``2**64`` times any delay base in seconds exceeds every cap."""


def capped_doubling(base_s: float, doublings: int, cap_s: float) -> float:
    """``min(cap_s, base_s * 2**doublings)`` for any ``doublings`` (negative: 0); never overflows."""
    exponent = min(max(int(doublings), 0), MAX_DOUBLINGS)
    return min(cap_s, base_s * math.ldexp(1.0, exponent))


def backoff_delay(
    retry: int, base_s: float, max_s: float, rng: random.Random, retry_after_s: float | None = None
) -> float:
    """The wait before retry ``retry`` (0-based): uniform in [0, min(max_s, base_s * 2**retry)].

    A server's ``Retry-After`` hint (429/503) raises the wait to the hint, capped at ``max_s``: a
    hostile or confused server cannot park a caller for an hour.
    """
    delay = rng.uniform(0.0, capped_doubling(base_s, retry, max_s))
    if retry_after_s is not None and retry_after_s > 0:
        delay = max(delay, min(retry_after_s, max_s))
    return delay
