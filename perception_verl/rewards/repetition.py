"""Repetition penalty: the share of repeated word n-grams, scaled to ``[-max_penalty, 0]``."""

from __future__ import annotations

import math


def _check(n: int, max_penalty: float) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"repetition n must be an integer >= 1, got {n!r}")
    if isinstance(max_penalty, bool) or not isinstance(max_penalty, (int, float)):
        raise ValueError(f"repetition max_penalty must be a number, got {max_penalty!r}")
    if not math.isfinite(max_penalty) or max_penalty < 0:
        raise ValueError(f"repetition max_penalty must be finite and >= 0, got {max_penalty!r}")


def repetition_penalty(response: str, n: int = 20, max_penalty: float = 2.0) -> float:
    """``-max_penalty * (1 - distinct / total)`` over the n-grams of lower-cased whitespace tokens.

    0.0 when the response has fewer than ``n`` words (or is not text). Raises ``ValueError`` for
    ``n < 1`` or a negative / non-finite ``max_penalty``.
    """
    _check(n, max_penalty)
    if not isinstance(response, str):
        return 0.0
    words = response.lower().split()
    total = len(words) - n + 1
    if total < 1:
        return 0.0
    distinct = len(set(zip(*(words[offset : offset + total] for offset in range(n)), strict=True)))
    penalty = -float(max_penalty) * (1.0 - distinct / total)
    return penalty if penalty < 0.0 else 0.0
