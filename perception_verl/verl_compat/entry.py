"""verl's entry point and v1 task runner, followed line by line (``verl/trainer/main_ppo.py``, 0.9.1)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

SUPPORTED_VERL = (0, 9)
"""The verl release series (major, minor) whose private lines this package follows."""


def check_verl_version(version: str | None = None) -> str:
    """Raise unless the installed verl (or ``version``) is a release this entry point was checked against."""
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
            f"perception_verl.main_ppo mirrors verl {wanted}.x's task runner, found verl {version}; "
            "use python -m verl.trainer.main_ppo (no reward step metrics) or a matching perception-verl"
        )
    return version


def build_agent_loop_manager(config: DictConfig, trainer: Any) -> Any:
    """The agent loop manager verl's v1 task runner builds (``main_ppo.py:111-131``:
    ``rollout.agent.agent_loop_manager_class``, else ``AgentLoopManagerTQ``)."""
    from verl.trainer.ppo.v1 import AgentLoopManagerTQ
    from verl.utils.import_utils import load_class_from_fqn

    fqn = config.actor_rollout_ref.rollout.get("agent", {}).get("agent_loop_manager_class")
    manager_cls = load_class_from_fqn(fqn, "AgentLoopManager") if fqn else AgentLoopManagerTQ
    return manager_cls.create(
        config=config,
        llm_client=trainer.get_llm_client(),
        teacher_client=trainer.get_teacher_client(),
        reward_loop_worker_handles=trainer.get_reward_handles(),
    )


def run_v1(runner: Any, config: DictConfig, trainer_cls: type) -> None:
    """``TaskRunnerV1.run`` (``main_ppo.py:133-165``) with ``trainer_cls``; ``runner.trainer`` holds it."""
    import transfer_queue as tq
    from verl.utils.logging_utils import configure_verl_logging

    configure_verl_logging()
    config.transfer_queue.enable = True
    OmegaConf.resolve(config)
    tq.init(config.transfer_queue)
    succeeded = False
    try:
        runner.trainer = trainer_cls(config=config)
        runner.trainer.init()
        runner.trainer.fit(build_agent_loop_manager(config, runner.trainer))
        succeeded = True
    finally:
        try:
            tracking = getattr(runner.trainer, "logger", None)
            if tracking is not None:
                tracking.finish(exit_code=0 if succeeded else 1)
        finally:
            tq.close()


def legacy_task_runner() -> type:
    """verl's legacy ``main_ppo_v0.TaskRunner`` (``trainer.use_v1=False``), unchanged."""
    from verl.trainer.main_ppo_v0 import TaskRunner

    return TaskRunner


def run_ppo_with(config: DictConfig, task_runner_class: Any) -> None:
    """verl's ``main_ppo.main`` body (``main_ppo.py:167-193``) with ``task_runner_class``."""
    from verl.trainer.main_ppo import run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    validate_config(
        config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config)
    )
    run_ppo(config, task_runner_class=task_runner_class)
