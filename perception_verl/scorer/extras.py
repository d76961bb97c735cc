"""What one scored sample gives verl: the outcome (:class:`Scored`) and its numeric ``reward_extra_info``.

:func:`extra_info_of` always returns the same keys (:data:`EXTRA_KEYS`; the ``judge_*_tokens`` keys carry
the judge requests' token usage, 0 for cache hits and offline judges); ``acc`` repeats ``accuracy``
because verl's validation picks ``acc`` as its core metric (``val-core/<source>/acc/...``). The manager
adds one text key, the judge's name (:data:`perception_verl.integration.metrics.JUDGE_KEY`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from perception_verl.judge.base import TRUNCATED, JudgeResult
from perception_verl.rewards.ground_truth import GroundTruthError, ground_truth_text
from perception_verl.rewards.total import RewardBreakdown, score_response

logger = logging.getLogger(__name__)

EXTRA_KEYS = (
    "score",
    "acc",
    "accuracy",
    "format",
    "perception",
    "perception_excluded",
    "repetition",
    "num_annotations",
    "judge_failed",
    "judge_latency_s",
    "judge_cached",
    "judge_truncated",
    "judge_prompt_tokens",
    "judge_cached_tokens",
    "judge_completion_tokens",
    "accuracy_timed_out",
    "ground_truth_invalid",
)

ACCURACY_TIMEOUT = "timeout"
"""The accuracy reason of a check stopped at ``accuracy_timeout_s``."""


@dataclass(frozen=True)
class Scored:
    """One sample's outcome: the reward components and the judge's result (``None``: not judged)."""

    breakdown: RewardBreakdown
    result: JudgeResult | None

    @property
    def verdicts(self) -> tuple[int, ...] | None:
        """The verdicts the score used (``None`` when perception was left out)."""
        return self.result.verdicts if self.result is not None and self.result.ok else None


def checked_ground_truth(value: Any, row: str) -> tuple[str, bool]:
    """(text, invalid) of a sample's ground truth; an invalid one is logged, gives ``""`` (accuracy 0).

    Every rollout of a prompt shares its ground truth, so accuracy 0 for all of them adds nothing to
    a GRPO group's advantages: the failure is counted (``ground_truth_invalid``), never scored as an
    answer (``str(None)`` would have made ``\\boxed{None}`` correct).
    """
    try:
        return ground_truth_text(value), False
    except GroundTruthError as error:
        logger.warning(
            "sample %s: %s; accuracy 0, counted in reward/ground_truth_invalid/count (fix the data set)",
            row,
            error,
        )
        return "", True


def rule_score(response: str, ground_truth: Any, row: str) -> float:
    """Rule-only reward (accuracy, format, repetition; no perception) with the default weights, in-process."""
    truth, _ = checked_ground_truth(ground_truth, row)
    return float(score_response(response, truth, None).score)


def extra_info_of(
    breakdown: RewardBreakdown, result: JudgeResult | None, *, ground_truth_invalid: bool = False
) -> dict[str, float]:
    """The numeric ``reward_extra_info`` of one sample; same keys for every sample (:data:`EXTRA_KEYS`)."""
    failed = result is not None and not result.ok
    return {
        "score": float(breakdown.score),
        "acc": float(breakdown.accuracy),
        "accuracy": float(breakdown.accuracy),
        "format": float(breakdown.format),
        "perception": float(breakdown.perception) if breakdown.perception is not None else 0.0,
        "perception_excluded": float(breakdown.perception_excluded),
        "repetition": float(breakdown.repetition),
        "num_annotations": float(breakdown.num_annotations),
        "judge_failed": float(failed),
        "judge_latency_s": float(result.latency_s) if result is not None else 0.0,
        "judge_cached": float(result.cached) if result is not None else 0.0,
        "judge_truncated": float(result is not None and result.failure == TRUNCATED),
        "judge_prompt_tokens": float(result.prompt_tokens) if result is not None else 0.0,
        "judge_cached_tokens": float(result.cached_tokens) if result is not None else 0.0,
        "judge_completion_tokens": float(result.completion_tokens) if result is not None else 0.0,
        "accuracy_timed_out": float(breakdown.accuracy_reason == ACCURACY_TIMEOUT),
        "ground_truth_invalid": float(ground_truth_invalid),
    }
