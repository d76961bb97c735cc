"""Perception reward: the share of a problem's visual annotations the judge found in the response."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral


def perception_reward(verdicts: Sequence[int] | None) -> float | None:
    """Mean of the 0/1 ``verdicts``; ``None`` (excluded, not 0) when there are none.

    Raises ``ValueError`` for anything but integers 0 and 1 (``bool`` counts as an integer).
    """
    if verdicts is None or len(verdicts) == 0:
        return None
    for index, verdict in enumerate(verdicts):
        if not isinstance(verdict, Integral) or verdict not in (0, 1):
            raise ValueError(f"verdict {index} must be 0 or 1, got {verdict!r}")
    return sum(int(verdict) for verdict in verdicts) / len(verdicts)
