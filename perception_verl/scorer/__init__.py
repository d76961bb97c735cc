"""The reward core's scorer: one :class:`PerceptionScorer` per reward manager or CLI run.

Modules of one job each: :mod:`~perception_verl.scorer.endpoint` (where the HTTP judge is),
:mod:`~perception_verl.scorer.factory` (which judge to build), :mod:`~perception_verl.scorer.accuracy`
(math-verify in worker processes), :mod:`~perception_verl.scorer.extras` (the outcome and verl's
``reward_extra_info`` schema) and :mod:`~perception_verl.scorer.core` (the scorer: its judge,
accuracy pool and admission gate on one loop, and the per-sample scoring).
"""

from perception_verl.scorer.core import JudgeFailedError, PerceptionScorer, ScorerLoopError
from perception_verl.scorer.endpoint import judge_client_config, judge_endpoint
from perception_verl.scorer.extras import (
    ACCURACY_TIMEOUT,
    EXTRA_KEYS,
    Scored,
    checked_ground_truth,
    extra_info_of,
    rule_score,
)

__all__ = [
    "ACCURACY_TIMEOUT",
    "EXTRA_KEYS",
    "JudgeFailedError",
    "PerceptionScorer",
    "Scored",
    "ScorerLoopError",
    "checked_ground_truth",
    "extra_info_of",
    "judge_client_config",
    "judge_endpoint",
    "rule_score",
]
