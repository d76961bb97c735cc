"""Reward step metrics for verl's v1 trainer, added through its public ``step`` method.

verl 0.9.1 stores the reward manager's ``reward_extra_info`` with each sample in TransferQueue but
its step metrics leave it out. :func:`with_reward_step_metrics` subclasses the trainer class that
``trainer.v1.trainer_mode`` selects and extends its public ``step(metrics, timing_raw)``: after
verl's own step, the batch's reward extras are read back from TransferQueue and
:func:`perception_verl.integration.metrics.reward_metrics` is added to ``metrics``, which ``fit``
then completes with verl's own metrics and logs. The extras arrive by one of two routes:

- streamed (reward loop workers score during rollout, verl's default and the perception manager's
  only route): inside each sample's ``extra_fields["reward_extra_info"]``;
- colocated (a reward model without its own resource pool, ``get_reward_handles()`` is ``None``):
  one TransferQueue field per ``reward_extra_keys`` entry, written by the trainer.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from perception_verl.integration.metrics import JUDGE_KEY, reward_metrics
from perception_verl.integration.rollout_guard import (
    DEFAULT_BOUND,
    METRICS,
    OPTION,
    RolloutMismatchError,
    disagreement,
)
from perception_verl.scorer import EXTRA_KEYS
from perception_verl.verl_compat.transfer_queue import KvBatchGet, kv_functions, padding_mask, read_fields

logger = logging.getLogger(__name__)


def extras_from_extra_fields(extra_fields: Sequence[Any]) -> dict[str, list[Any]]:
    """Per-key lists from each sample's ``extra_fields["reward_extra_info"]`` (``None`` where absent)."""
    infos = [(f.get("reward_extra_info") or {}) if isinstance(f, Mapping) else {} for f in extra_fields]
    keys: list[str] = []
    for info in infos:
        keys.extend(k for k in info if k not in keys)
    return {key: [info.get(key) for info in infos] for key in keys}


def _kept(values: Any, keep: Sequence[bool]) -> list[Any]:
    return [v for v, k in zip(list(values), keep, strict=True) if k]


def batch_reward_metrics(
    batch: Any, kv_batch_get: KvBatchGet, *, colocated_keys: Sequence[str] | None = None
) -> dict[str, float]:
    """Reward step metrics of a v1 trainer batch (``KVBatchMeta``), read back from TransferQueue.

    ``colocated_keys`` None reads the streamed route (``extra_fields``); a sequence reads those
    separate fields (the colocated route). Padding samples are left out, as verl's metrics do.
    """
    if not batch.keys:
        return {}
    fields = ["extra_fields", "data_source"] if colocated_keys is None else [*colocated_keys, "data_source"]
    data = read_fields(batch, kv_batch_get, fields)
    keep = padding_mask(batch)
    sources = _kept(data["data_source"], keep)
    if colocated_keys is None:
        return reward_metrics(extras_from_extra_fields(_kept(data["extra_fields"], keep)), sources)
    return reward_metrics({key: _kept(data[key], keep) for key in colocated_keys}, sources)


def rollout_mismatch_bound(config: Any) -> float | None:
    """``reward.reward_kwargs.rollout_mismatch_max`` of a verl config (default 0.1; null disables)."""
    from omegaconf import OmegaConf

    value = OmegaConf.select(config, OPTION, default=DEFAULT_BOUND)
    return None if value is None else float(value)


def check_rollout_agreement(metrics: Mapping[str, Any], bound: float | None, *, first: bool) -> None:
    """Raise on the first step a run takes when rollout and actor disagree; warn on later steps."""
    message = disagreement(metrics, bound)
    if message is None:
        if first and bound is not None and not any(m in metrics for m in METRICS):
            logger.warning(
                "cannot check that the rollout and the actor agree: neither %s is logged "
                "(actor_rollout_ref.rollout.calculate_log_probs=False)",
                " nor ".join(METRICS),
            )
        return
    if first:
        raise RolloutMismatchError(message)
    logger.warning(message)


@functools.cache
def with_reward_step_metrics(base: type) -> type:
    """``base`` (a verl v1 ``PPOTrainer`` subclass) whose ``step`` also adds the reward step metrics.

    It also checks that the rollout engine and the actor agree (:func:`check_rollout_agreement`):
    the first step this process runs stops the run when they do not, later steps warn.
    Same class for the same ``base``; everything else, ``trainer_mode`` included, is ``base``'s.
    """

    class RewardStepMetricsTrainer(base):  # type: ignore[misc, valid-type]
        _pv_checked_agreement = False

        def step(self, metrics: dict, timing_raw: dict) -> Any:
            batch = super().step(metrics, timing_raw)
            first = not self._pv_checked_agreement
            self._pv_checked_agreement = True
            check_rollout_agreement(metrics, rollout_mismatch_bound(self.config), first=first)
            colocated = None if self.get_reward_handles() is not None else [*EXTRA_KEYS, JUDGE_KEY]
            metrics.update(batch_reward_metrics(batch, kv_functions()[0], colocated_keys=colocated))
            return batch

    RewardStepMetricsTrainer.__name__ = f"RewardStepMetrics{base.__name__}"
    RewardStepMetricsTrainer.__qualname__ = RewardStepMetricsTrainer.__name__
    RewardStepMetricsTrainer.__doc__ = f"verl's {base.__name__}, plus reward step metrics from its batches."
    return RewardStepMetricsTrainer
