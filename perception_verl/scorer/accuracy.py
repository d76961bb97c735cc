"""The accuracy checks of one scorer: math-verify in worker processes stopped at ``accuracy_timeout_s``.

math-verify's own timeout relies on signals, which do not work in worker threads, and a thread cannot
be stopped inside C code. A check still running at the bound has its process killed
(:class:`~perception_verl.workers.pool.CheckPool`); it scores 0 with reason ``"timeout"`` (counted as
``accuracy_timed_out``) and the step goes on.
"""

from __future__ import annotations

import logging

from perception_verl.rewards.accuracy import AccuracyResult, accuracy_reward
from perception_verl.scorer.extras import ACCURACY_TIMEOUT
from perception_verl.workers.pool import CheckCrashed, CheckPool, CheckTimeout

logger = logging.getLogger(__name__)

ACCURACY_WORKERS = 4
"""Accuracy checks run at once per scorer at normal priority (see :class:`CheckPool`)."""

ACCURACY_WARMUP = ("<answer>\\boxed{\\frac{2}{2}}</answer>", "1")
"""One check the accuracy workers' fork server runs first, so workers start with math-verify warm."""


def accuracy_pool(timeout_s: float) -> CheckPool:
    """The worker pool of :func:`accuracy_reward` checks, each stopped at ``timeout_s``."""
    return CheckPool(accuracy_reward, timeout_s=timeout_s, workers=ACCURACY_WORKERS, warmup=ACCURACY_WARMUP)


async def checked_accuracy(pool: CheckPool, response: str, ground_truth: str) -> AccuracyResult:
    """math-verify's verdict from ``pool``; a check past its bound or whose worker died scores 0."""
    try:
        return await pool.run(response, ground_truth)
    except CheckTimeout:
        logger.warning(
            "accuracy check exceeded %.1f s (reward.reward_kwargs.accuracy_timeout_s); scored 0",
            pool.timeout_s,
        )
        return AccuracyResult(0.0, ACCURACY_TIMEOUT, "")
    except CheckCrashed as err:
        logger.warning("accuracy check failed (%s); scored 0", err)
        return AccuracyResult(0.0, "error:worker", "")
