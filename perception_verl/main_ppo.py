"""``python -m perception_verl.main_ppo``: verl's PPO entry point, plus reward-component step metrics.

verl 0.9.1 puts the reward manager's ``reward_extra_info`` into the training batch but its step
metrics (``compute_data_metrics``) leave it out, and it offers no hook to add metrics. This module
takes exactly ``verl.trainer.main_ppo``'s hydra arguments and runs verl's own ``main`` unchanged,
except that the Ray task runner first wraps the trainer's metric computation so every step also logs
:func:`perception_verl.integration.metrics.reward_metrics` (``reward/accuracy/mean``,
``reward/perception/mean``, ``reward/judge_failed/rate``, ...):

- v1 trainer (``trainer.use_v1=True``, verl's default): ``PPOTrainer._compute_metrics`` is wrapped;
  the reward extras are read back from TransferQueue (each sample's ``extra_fields.reward_extra_info``).
- legacy trainer (``trainer.use_v1=False``): ``ray_trainer.compute_data_metrics`` is wrapped; the
  reward extras are in the batch's non-tensor fields.
The wrapping happens inside the task-runner Ray actor only. The verl version is checked at start
(:data:`SUPPORTED_VERL`); the signatures relied on are pinned by tests. verl's experimental entry
points (``fully_async_policy``, ``one_step_off_policy``) are not wrapped: there the reward components
appear only in validation metrics and rollout dumps.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from perception_verl.integration.metrics import reward_metrics

logger = logging.getLogger(__name__)

SUPPORTED_VERL = (0, 9)
_WRAPPED_FLAG = "__perception_reward_metrics__"


def check_verl_version(version: str | None = None) -> str:
    """Raise unless the installed verl (or ``version``) is a release this wrapper was checked against."""
    if version is None:
        import verl

        version = str(getattr(verl, "__version__", "unknown"))
    parts = version.split(".")
    try:
        found = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        raise RuntimeError(f"cannot read the verl version {version!r}") from None
    if found != SUPPORTED_VERL:
        wanted = ".".join(str(p) for p in SUPPORTED_VERL)
        raise RuntimeError(
            f"perception_verl.main_ppo wraps verl {wanted}.x internals, found verl {version}; "
            "use python -m verl.trainer.main_ppo (no reward step metrics) or a matching perception-verl"
        )
    return version


def extras_from_extra_fields(extra_fields: Sequence[Any]) -> dict[str, list[Any]]:
    """Per-key lists from each sample's ``extra_fields["reward_extra_info"]`` (``None`` where absent)."""
    infos = [
        (f.get("reward_extra_info") or {}) if isinstance(f, Mapping) else {} for f in extra_fields
    ]
    keys: list[str] = []
    for info in infos:
        keys.extend(k for k in info if k not in keys)
    return {key: [info.get(key) for info in infos] for key in keys}


def batch_reward_metrics(non_tensor_batch: Mapping[str, Any], extra_keys: Sequence[str]) -> dict[str, float]:
    """Reward step metrics of a legacy-trainer batch (reward extras stored as non-tensor arrays)."""
    extras = {key: non_tensor_batch[key] for key in extra_keys if key in non_tensor_batch}
    return reward_metrics(extras, non_tensor_batch.get("data_source"))


def _legacy_extra_keys(batch: Any) -> list[str]:
    from perception_verl.integration.manager import EXTRA_KEYS

    keys = list(batch.meta_info.get("reward_extra_keys", []) or [])
    return keys or [k for k in EXTRA_KEYS if k in batch.non_tensor_batch]


def wrap_compute_data_metrics(fn: Any) -> Any:
    """``compute_data_metrics(batch, use_critic)`` plus the reward metrics of ``batch``."""
    if getattr(fn, _WRAPPED_FLAG, False):
        return fn

    @functools.wraps(fn)
    def compute_data_metrics(batch: Any, use_critic: bool = True) -> dict[str, Any]:
        metrics = fn(batch=batch, use_critic=use_critic)
        metrics.update(batch_reward_metrics(batch.non_tensor_batch, _legacy_extra_keys(batch)))
        return metrics

    setattr(compute_data_metrics, _WRAPPED_FLAG, True)
    return compute_data_metrics


def v1_reward_metrics(batch: Any, kv_batch_get: Any) -> dict[str, float]:
    """Reward step metrics of a v1 trainer batch (``KVBatchMeta``), read back from TransferQueue."""
    if not batch.keys:
        return {}
    data = kv_batch_get(
        keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields", "data_source"]
    )
    keep = np.array([not tag.get("is_padding", False) for tag in batch.tags], dtype=bool)
    if not keep.any():
        keep[:] = True
    extra_fields = [f for f, k in zip(list(data["extra_fields"]), keep, strict=True) if k]
    sources = [s for s, k in zip(list(data["data_source"]), keep, strict=True) if k]
    return reward_metrics(extras_from_extra_fields(extra_fields), sources)


def wrap_v1_compute_metrics(method: Any) -> Any:
    """``PPOTrainer._compute_metrics`` that also adds the batch's reward metrics to ``metrics``."""
    if getattr(method, _WRAPPED_FLAG, False):
        return method

    @functools.wraps(method)
    def _compute_metrics(
        self: Any, batch: Any, metrics: dict, timing_raw: dict, global_steps: int, epoch: int
    ) -> Any:
        result = method(self, batch, metrics, timing_raw, global_steps, epoch)
        import transfer_queue as tq

        metrics.update(v1_reward_metrics(batch, tq.kv_batch_get))
        return result

    setattr(_compute_metrics, _WRAPPED_FLAG, True)
    return _compute_metrics


def install_reward_step_metrics(*, v1: bool = True) -> None:
    """Wrap verl's step-metric computation in this process (idempotent)."""
    if v1:
        from verl.trainer.ppo.v1.trainer_base import PPOTrainer

        PPOTrainer._compute_metrics = wrap_v1_compute_metrics(PPOTrainer._compute_metrics)
    else:
        from verl.trainer.ppo import ray_trainer

        ray_trainer.compute_data_metrics = wrap_compute_data_metrics(ray_trainer.compute_data_metrics)


def _runner_class(base: type, v1: bool) -> type:
    class PerceptionTaskRunner(base):  # type: ignore[misc, valid-type]
        """verl's task runner that installs the reward step metrics in its own process first."""

        def run(self, config: Any) -> Any:
            install_reward_step_metrics(v1=v1)
            return super().run(config)

    PerceptionTaskRunner.__qualname__ = f"Perception{base.__name__}"
    return PerceptionTaskRunner


def task_runner(v1: bool) -> Any:
    """The Ray actor class to hand to verl's ``run_ppo`` instead of its own task runner."""
    import ray

    if v1:
        from verl.trainer.main_ppo import TaskRunnerV1 as actor
    else:
        from verl.trainer.main_ppo_v0 import TaskRunner as actor
    return ray.remote(_runner_class(actor.__ray_actor_class__, v1))


def main() -> None:
    """Run verl's ``main_ppo`` (same hydra arguments) with the reward step metrics installed."""
    check_verl_version()
    from verl.trainer import main_ppo, main_ppo_v0

    main_ppo.TaskRunnerV1 = task_runner(v1=True)
    main_ppo_v0.TaskRunner = task_runner(v1=False)
    main_ppo.main()


if __name__ == "__main__":
    main()
