"""Helpers to drive real verl 0.9 pieces on CPU: hydra config, DataProto batches, the reward loop on Ray.

- :func:`compose_trainer_config` composes verl's own ``trainer/config/ppo_trainer.yaml`` with
  command-line style overrides (exactly what ``python -m verl.trainer.main_ppo ...`` would get).
- :func:`perception_reward_overrides` gives the overrides a recipe passes to select our manager.
- :class:`Sample` + :func:`build_dataproto` make a right-padded ``DataProto`` shaped like the batch the
  reward loop receives (prompts left-padded, responses right-padded, reward fields as non-tensors).
- :func:`local_ray` starts a small local Ray cluster; :func:`score_with_reward_loop` runs verl's
  ``RewardLoopManager`` on a batch and returns its output ``DataProto``;
  :func:`last_token_scores` reads each row's score back from ``rm_scores``;
  :func:`score_like_agent_loop` scores per sample as the v1 trainer's agent loop does, and
  :func:`transfer_queue_session` starts the TransferQueue the v1 trainer reads its batches from.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from perception_verl_demo.rollout import object_array, rollout_tensors

MANAGER_MODULE = "pkg://perception_verl.integration.manager"
MANAGER_CLASS = "PerceptionRewardManager"


def verl_config_dir() -> Path:
    """The installed verl's hydra config folder (``verl/trainer/config``)."""
    import verl

    return Path(verl.__file__).resolve().parent / "trainer" / "config"


def compose_trainer_config(
    overrides: Sequence[str] = (), *, config_name: str = "ppo_trainer", migrate_legacy: bool = False
) -> Any:
    """Compose verl's trainer config with ``overrides`` (hydra syntax, e.g. ``+reward.reward_kwargs.x=1``).

    ``migrate_legacy`` applies verl's ``migrate_legacy_reward_impl`` (what verl's fully-async entry point
    does; ``verl.trainer.main_ppo`` in 0.9.1 does not).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(verl_config_dir()), version_base=None):
            cfg = compose(config_name=config_name, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()
    if migrate_legacy:
        from verl.experimental.reward_loop import migrate_legacy_reward_impl

        cfg = migrate_legacy_reward_impl(cfg)
    return cfg


def perception_reward_overrides(
    tokenizer_path: str | os.PathLike[str] | None = None,
    reward_kwargs: Mapping[str, Any] | None = None,
    *,
    num_workers: int = 1,
) -> list[str]:
    """The reward overrides a recipe uses (manager via importlib + options), plus the tokenizer path."""
    overrides = [
        "reward.reward_manager.source=importlib",
        f"reward.reward_manager.module.path={MANAGER_MODULE}",
        f"reward.reward_manager.name={MANAGER_CLASS}",
        f"reward.num_workers={num_workers}",
    ]
    if tokenizer_path is not None:
        overrides.append(f"actor_rollout_ref.model.path={tokenizer_path}")
    for key, value in (reward_kwargs or {}).items():
        overrides.append(f"+reward.reward_kwargs.{key}={_hydra_value(value)}")
    return overrides


def _hydra_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    if isinstance(value, str) and any(ch in value for ch in ",:[]{}= "):
        return "'" + value.replace("'", "\\'") + "'"
    return str(value)


@dataclass(frozen=True)
class Sample:
    """One rollout sample: prompt and response text plus the dataset's reward fields."""

    prompt: str
    response: str
    ground_truth: str
    annotations: Any = None
    data_source: str = "hiyouga/geometry3k"
    extra_info: Mapping[str, Any] = field(default_factory=dict)
    uid: str = "0"


def build_dataproto(
    tokenizer: Any,
    samples: Sequence[Sample],
    *,
    annotations_field: str = "reward_model",
    append_eos: bool = True,
) -> Any:
    """A ``DataProto`` like the rollout's output: left-padded prompts, right-padded responses, EOS appended.

    ``annotations_field`` names where each sample's annotations go (``reward_model`` or ``extra_info``),
    under the key ``annotations``.
    """
    from verl import DataProto

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    prompts = [tokenizer.encode(s.prompt, add_special_tokens=False) for s in samples]
    responses = []
    for s in samples:
        ids = tokenizer.encode(s.response, add_special_tokens=False)
        if append_eos and tokenizer.eos_token_id is not None:
            ids = [*ids, tokenizer.eos_token_id]
        responses.append(ids)
    reward_models, extra_infos = [], []
    for i, s in enumerate(samples):
        reward_model: dict[str, Any] = {"style": "rule", "ground_truth": s.ground_truth}
        extra: dict[str, Any] = {"index": i, **s.extra_info}
        if s.annotations is not None:
            (reward_model if annotations_field == "reward_model" else extra)["annotations"] = s.annotations
        reward_models.append(reward_model)
        extra_infos.append(extra)
    non_tensor = {
        "data_source": np.array([s.data_source for s in samples], dtype=object),
        "reward_model": object_array(reward_models),
        "extra_info": object_array(extra_infos),
        "raw_prompt": object_array([[{"role": "user", "content": s.prompt}] for s in samples]),
        "uid": np.array([s.uid for s in samples], dtype=object),
    }
    # Two padding columns keep some right padding in every row.
    tensors = rollout_tensors(prompts, responses, pad, right_pad=2)
    return DataProto.from_dict(tensors=tensors, non_tensors=non_tensor)


def last_token_scores(data: Any, rm_scores: torch.Tensor) -> list[float]:
    """The score on each row's last valid response token (where verl's reward loop puts it)."""
    prompt_len = data.batch["prompts"].shape[1]
    valid = data.batch["attention_mask"][:, prompt_len:].sum(dim=1)
    return [float(rm_scores[i, int(valid[i]) - 1]) for i in range(rm_scores.shape[0])]


@contextlib.contextmanager
def local_ray(
    num_cpus: int = 2, env_vars: Mapping[str, str] | None = None, setup_hook: str | None = None
) -> Iterator[None]:
    """A local Ray cluster for the block: the repo on the workers' path, optional worker setup hook."""
    import ray

    repo_root = str(Path(__file__).resolve().parents[2])
    python_path = os.pathsep.join(p for p in (repo_root, os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": python_path, "TOKENIZERS_PARALLELISM": "false", **(env_vars or {})}
    runtime_env: dict[str, Any] = {"env_vars": env}
    if setup_hook is not None:
        runtime_env["worker_process_setup_hook"] = setup_hook
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True, runtime_env=runtime_env)
    try:
        yield
    finally:
        ray.shutdown()


def score_with_reward_loop(cfg: Any, data: Any) -> Any:
    """Start verl's ``RewardLoopManager`` for ``cfg``, score ``data`` with it, stop its workers.

    Returns the manager's output ``DataProto`` (``rm_scores`` plus the stacked reward extras).
    The workers are Ray actors with fixed names, so they are stopped before returning to let the
    next call start its own.
    """
    from verl.experimental.reward_loop import RewardLoopManager

    manager = RewardLoopManager(cfg)
    try:
        return manager.compute_rm_score(data)
    finally:
        stop_reward_loop(manager)


def score_like_agent_loop(cfg: Any, data: Any) -> list[dict[str, Any]]:
    """Score each sample the way verl's agent loop streams rewards during rollout.

    One ``compute_score`` call per sample on the reward-loop worker handles verl hands to its agent
    loop (``RewardLoopManager.reward_loop_worker_handles``); returns each
    ``{"reward_score", "reward_extra_info"}`` result.
    """
    import ray
    from verl.experimental.reward_loop import RewardLoopManager

    manager = RewardLoopManager(cfg)
    try:
        handles = manager.reward_loop_worker_handles
        if handles is None:
            raise RuntimeError("this config scores with a colocated reward model, not streamed workers")
        calls = [handles[i % len(handles)].compute_score.remote(data[i : i + 1]) for i in range(len(data))]
        return ray.get(calls)
    finally:
        stop_reward_loop(manager)


def stop_reward_loop(manager: Any) -> None:
    """Kill a RewardLoopManager's workers and wait until their fixed actor names are free again."""
    import ray

    for index, worker in enumerate(manager.reward_loop_workers):
        ray.kill(worker, no_restart=True)
        _wait_name_released(f"reward_loop_worker_{index}")


@contextlib.contextmanager
def transfer_queue_session(cfg: Any) -> Iterator[Any]:
    """verl 0.9's TransferQueue (v1 trainer data plane) started from ``cfg.transfer_queue`` on Ray."""
    import transfer_queue as tq

    tq.init(cfg.transfer_queue)
    try:
        yield tq
    finally:
        tq.close()


def _wait_name_released(name: str, attempts: int = 100) -> None:
    import time

    import ray

    for _ in range(attempts):
        try:
            ray.get_actor(name)
        except ValueError:
            return
        time.sleep(0.1)
    raise RuntimeError(f"Ray actor {name!r} still registered after it was killed")


_T = TypeVar("_T")


def on_manager_loop(owner: Any, coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion on ``owner.loop``: the loop verl's base class gives a reward manager
    (and a ``RewardLoopWorker``), the one verl's reward loop awaits ``run_single`` on."""
    return owner.loop.run_until_complete(coro)


def score_all(manager: Any, data: Any) -> list[dict[str, Any]]:
    """Every row of ``data`` through ``manager.run_single`` at once on the manager's loop; then close it."""

    async def go() -> list[dict[str, Any]]:
        try:
            return await asyncio.gather(*(manager.run_single(data[i : i + 1]) for i in range(len(data))))
        finally:
            await manager.close()

    return on_manager_loop(manager, go())
