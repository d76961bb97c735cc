"""The Perception-R1 total reward and its components, ready to log.

``r = w_acc * accuracy + w_fmt * format + w_perc * perception + w_rep * repetition``, where the
perception term is left out (not counted as 0 in the perception metric) when there are no verdicts:
a problem without annotations, or a judge that gave no answer. Defaults follow the reference
training script: 0.9 / 0.1 / 0.7 / 1.0 with a 20-gram repetition penalty of at most -2.0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from perception_verl.rewards.accuracy import AccuracyResult, accuracy_reward
from perception_verl.rewards.format import format_reward
from perception_verl.rewards.perception import perception_reward
from perception_verl.rewards.repetition import repetition_penalty

_WEIGHT_FIELDS = ("accuracy", "format", "perception", "repetition", "repetition_max_penalty")


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the reward terms; all finite and >= 0, ``repetition_n`` an integer >= 1."""

    accuracy: float = 0.9
    """Weight of the accuracy term (math-verify on the final answer, 0 or 1)."""
    format: float = 0.1
    """Weight of the format term (``<think>``/``<answer>``/``\\boxed{}`` layout, 0 or 1)."""
    perception: float = 0.7
    """Weight of the perception term (share of the annotations the judge finds); 0 is the paper's
    accuracy-only baseline.
    """
    repetition: float = 1.0
    """Scale of the repetition penalty; 0 turns it off."""
    repetition_n: int = 20
    """n-gram length of the repetition penalty, in words."""
    repetition_max_penalty: float = 2.0
    """Penalty of a fully repetitive response (``-max * (1 - distinct / total)`` n-grams)."""

    def __post_init__(self) -> None:
        for name in _WEIGHT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"reward weight {name!r} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"reward weight {name!r} must be finite and >= 0, got {value!r}")
        n = self.repetition_n
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"reward weight 'repetition_n' must be an integer >= 1, got {n!r}")


@dataclass(frozen=True)
class RewardBreakdown:
    """The total reward of one response and every component that went into it.

    ``perception`` is ``None`` when excluded (``perception_excluded`` is then True); ``repetition`` is
    the unweighted penalty (<= 0). ``accuracy_reason`` says why accuracy is what it is.
    """

    score: float
    accuracy: float
    format: float
    perception: float | None
    perception_excluded: bool
    repetition: float
    num_annotations: int
    accuracy_reason: str = ""


def score_response(
    response: str,
    ground_truth: str,
    verdicts: Sequence[int] | None,
    weights: RewardWeights = RewardWeights(),
    num_annotations: int | None = None,
    accuracy: AccuracyResult | None = None,
) -> RewardBreakdown:
    """Score one response. ``verdicts`` are the judge's 0/1 per annotation, or ``None`` to exclude.

    ``num_annotations`` defaults to ``len(verdicts)``; pass it when the problem has annotations but no
    verdicts (a failed judge call). ``accuracy`` is computed with :func:`accuracy_reward` unless the
    caller already has it (the reward manager computes it concurrently with the judge call, under a
    time limit). Raises ``ValueError`` for verdicts that are not 0/1 or whose count disagrees with
    ``num_annotations``.
    """
    if num_annotations is None:
        num_annotations = len(verdicts) if verdicts is not None else 0
    elif verdicts is not None and len(verdicts) != num_annotations:
        raise ValueError(f"{len(verdicts)} verdicts for {num_annotations} annotations")
    if accuracy is None:
        accuracy = accuracy_reward(response, ground_truth)
    fmt = format_reward(response)
    perception = perception_reward(verdicts)
    repetition = repetition_penalty(response, weights.repetition_n, weights.repetition_max_penalty)
    score = weights.accuracy * accuracy.score + weights.format * fmt + weights.repetition * repetition
    if perception is not None:
        score += weights.perception * perception
    return RewardBreakdown(
        score=score,
        accuracy=accuracy.score,
        format=fmt,
        perception=perception,
        perception_excluded=perception is None,
        repetition=repetition,
        num_annotations=num_annotations,
        accuracy_reason=accuracy.reason,
    )
