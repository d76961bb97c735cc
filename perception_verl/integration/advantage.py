"""Group-consistent perception: a failed judge call never acts as a perception score of 0 in GRPO.

GRPO normalises each rollout's reward within its prompt group (verl's ``uid``). When the judge failed
for one rollout its perception term is left out, while its peers keep theirs, so after normalisation
that rollout is treated exactly as if it had perception 0. :func:`group_consistent_scores` removes
the perception term from every member of a group in which any member has no verdict
(``judge_failed``); the group is then ranked on accuracy, format and repetition alone, and counted in
``perception_excluded_groups``.

Where it runs: in verl's v1 trainer, :mod:`perception_verl.integration.group_sampling` applies
:func:`group_consistent_scores` to each training batch's ``rm_scores`` in TransferQueue as the
replay buffer hands the batch out, before ``_compute_advantage`` reads them
(``python -m perception_verl.main_ppo`` installs it with the perception manager).
:func:`apply_group_consistent_perception` does the same on a ``DataProto`` holding
``token_level_rewards`` and the reward extras, for a caller that holds the batch before verl's
``compute_advantage``. verl 0.9.1 offers no registered-estimator route for this:
``compute_advantage`` passes a registered estimator only ``token_level_rewards``, ``response_mask``,
``index`` (uid) and ``config`` (``non_tensor_batch`` only to the built-in ``gdpo``);
``tests/test_integration_advantage.py`` pins that, so a verl that starts passing the extras fails loudly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from perception_verl.errors import MissingFieldError

EXCLUDED_GROUPS_METRIC = "reward/perception_excluded_groups"


def group_consistent_scores(
    scores: Sequence[float],
    perception: Sequence[float],
    judge_failed: Sequence[float],
    perception_excluded: Sequence[float],
    index: Sequence[Any],
    weight: float,
) -> tuple[np.ndarray, int]:
    """Scores with the perception term removed from every group that has a failed judge call.

    ``perception`` is each rollout's unweighted perception (ignored where ``perception_excluded``),
    ``weight`` the perception weight the scores were built with. Returns the new scores and how
    many groups lost their perception term.
    """
    out = np.asarray(scores, dtype=np.float64).copy()
    failed = np.asarray(judge_failed, dtype=np.float64) > 0
    present = np.asarray(perception_excluded, dtype=np.float64) == 0
    terms = weight * np.asarray(perception, dtype=np.float64)
    groups = np.asarray(index, dtype=object)
    excluded = 0
    for uid in dict.fromkeys(groups.tolist()):
        members = groups == uid
        if failed[members].any():
            drop = members & present
            out[drop] -= terms[drop]
            excluded += 1
    return out, excluded


def _last_valid(response_mask: torch.Tensor) -> torch.Tensor:
    return response_mask.sum(dim=1).long() - 1


def apply_group_consistent_perception(data: Any, weight: float) -> dict[str, float]:
    """Rewrite ``data.batch["token_level_rewards"]`` group-consistently; returns the step metric.

    ``data`` is a verl ``DataProto`` with ``token_level_rewards`` (the outcome reward on each row's last
    response token), ``response_mask`` and the non-tensor fields ``uid``, ``perception``,
    ``judge_failed`` and ``perception_excluded`` (the reward manager's ``reward_extra_info``).
    Call it before verl's ``compute_advantage``.
    """
    extras = data.non_tensor_batch
    missing = [k for k in ("uid", "perception", "judge_failed", "perception_excluded") if k not in extras]
    if missing:
        raise MissingFieldError(
            f"group-consistent perception needs the batch fields {missing}; is the perception "
            "reward manager selected (reward.reward_manager.name=PerceptionRewardManager)?"
        )
    rewards = data.batch["token_level_rewards"]
    totals = rewards.sum(dim=-1)
    scores, excluded = group_consistent_scores(
        totals.tolist(),
        extras["perception"],
        extras["judge_failed"],
        extras["perception_excluded"],
        extras["uid"],
        weight,
    )
    delta = torch.as_tensor(scores, dtype=rewards.dtype) - totals
    rows = torch.arange(rewards.shape[0])
    updated = rewards.clone()
    updated[rows, _last_valid(data.batch["response_mask"])] += delta
    data.batch["token_level_rewards"] = updated
    return {EXCLUDED_GROUPS_METRIC: float(excluded)}
