"""``python -m perception_verl.main_ppo``: verl's PPO entry point, plus reward-component step metrics.

Takes exactly ``verl.trainer.main_ppo``'s hydra arguments (verl's own ``ppo_trainer`` config), runs
verl's start-up (``auto_set_device``, ``validate_config``) and hands verl's public
``run_ppo(config, task_runner_class)`` a task runner of its own:

- v1 trainer (``trainer.use_v1=True``, verl's default): :class:`RewardMetricsTaskRunner` does what
  verl's ``TaskRunnerV1`` does, with the trainer class of ``trainer.v1.trainer_mode`` extended by
  :func:`perception_verl.integration.step_metrics.with_reward_step_metrics` (its public ``step``), so
  every step also logs ``reward/accuracy/mean``, ``reward/perception/mean``,
  ``reward/judge_failed/rate``, ... beside verl's own metrics. With the perception reward manager
  selected it is also extended by
  :func:`perception_verl.integration.group_sampling.with_group_consistent_perception`: a prompt
  group with a failed judge call enters GRPO without the perception term for every member. The mode
  name stays verl's (verl compares it with ``"sync"`` to choose the replay buffer, checkpointing and
  prompt submission).
- legacy trainer (``trainer.use_v1=False``): verl's ``main_ppo_v0.TaskRunner`` runs unchanged, with
  no reward step metrics and no group-consistent perception: verl 0.9.1's ``RayPPOTrainer.fit`` calls
  only private methods and module functions, with no public point (see docs/architecture.md; pinned by tests).

Nothing in verl is replaced or patched.
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from perception_verl.integration.group_sampling import (
    uses_perception_manager,
    with_group_consistent_perception,
)
from perception_verl.integration.step_metrics import with_reward_step_metrics
from perception_verl.verl_compat.entry import (
    build_agent_loop_manager,
    check_verl_version,
    legacy_task_runner,
    run_ppo_with,
    run_v1,
)

logger = logging.getLogger(__name__)

__all__ = ["build_agent_loop_manager", "check_verl_version", "main", "run", "task_runner", "trainer_class"]

LEGACY_NOTE = (
    "trainer.use_v1=False: verl 0.9.1's legacy trainer has no public point for extra step metrics, "
    "so reward/* step metrics are not logged (validation metrics still carry the reward components) "
    "and group-consistent perception is not applied (a rollout whose judge call failed counts as "
    "perception 0 in its group's GRPO advantage); set trainer.use_v1=True for them"
)


def trainer_class(config: DictConfig) -> type:
    """The v1 trainer class for ``trainer.v1.trainer_mode``, with reward step metrics.

    With the perception reward manager selected, its training batches are also group-consistent.
    """
    from verl.trainer.ppo.v1 import get_trainer_cls

    base = get_trainer_cls(config.trainer.v1.trainer_mode)
    if uses_perception_manager(config):
        base = with_group_consistent_perception(base)
    return with_reward_step_metrics(base)


class RewardMetricsTaskRunner:
    """verl's v1 task runner with our trainer class (a Ray actor once :func:`task_runner` wraps it)."""

    def __init__(self) -> None:
        self.trainer: Any = None

    def run(self, config: DictConfig) -> None:
        run_v1(self, config, trainer_class(config))


def task_runner(config: DictConfig) -> Any:
    """The Ray actor class to hand to verl's ``run_ppo`` for ``config``."""
    if not config.trainer.use_v1:
        logger.warning(LEGACY_NOTE)
        return legacy_task_runner()
    import ray

    return ray.remote(RewardMetricsTaskRunner)


def run(config: DictConfig) -> None:
    """verl's ``main_ppo.main`` body, with :func:`task_runner`'s actor class."""
    run_ppo_with(config, task_runner(config))


def main() -> None:
    """Parse verl's hydra config (same arguments as ``verl.trainer.main_ppo``) and train."""
    check_verl_version()
    import hydra

    # By name, not from __main__: Ray then ships the task runner class by reference.
    from perception_verl.main_ppo import run as run_by_name

    hydra.main(config_path="pkg://verl.trainer.config", config_name="ppo_trainer", version_base=None)(
        run_by_name
    )()


if __name__ == "__main__":
    main()
