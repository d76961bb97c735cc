"""WeMath's step keys (``2steps_1``, ``3steps_multi``): which part of a composite problem a row is.

Parsed where the benchmark is built (:mod:`perception_verl.data.converters.wemath`) and where its
four-dimensional metric groups the rows (:mod:`perception_verl.evaluation.wemath`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from perception_verl.errors import PerceptionVerlError

COMPOSITE = "multi"
_KEY = re.compile(r"^([1-9]\d*)steps_([1-9]\d*|multi)$")


class WeMathError(PerceptionVerlError, ValueError):
    """WeMath rows that cannot be grouped into complete problems; the message names the problem."""


@dataclass(frozen=True)
class StepKey:
    """A parsed ``key``: the problem's number of sub-problems and this row's part (``multi`` or ``1..N``)."""

    steps: int
    part: str


def parse_key(key: str) -> StepKey:
    """``"3steps_2"`` -> ``StepKey(3, "2")``, ``"2steps_multi"`` -> ``StepKey(2, "multi")``."""
    match = _KEY.match(key.strip())
    if match is None:
        raise WeMathError(f"key {key!r} is not '<N>steps_<i>' or '<N>steps_multi'")
    steps, part = int(match.group(1)), match.group(2)
    if steps < 2:
        raise WeMathError(f"key {key!r}: a composite problem has at least two steps")
    if part != COMPOSITE and int(part) > steps:
        raise WeMathError(f"key {key!r}: sub-problem {part} of a {steps}-step problem")
    return StepKey(steps, part)
