"""The tiny CPU twin shares the GPU recipe: its composed verl config differs only at documented keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from perception_verl.launch.compose import compose_trainer_config
from perception_verl_demo.twin import SIZE_DEVICE_KEYS

REPO = Path(__file__).resolve().parents[1]
_CLEARED = (
    "JUDGE_MODE",
    "PERCEPTION_WEIGHT",
    "DRY_RUN",
    "MODEL_PATH",
    "DATA_DIR",
    "TRAIN_FILE",
    "TEST_FILE",
    "N_GPUS_PER_NODE",
    "ROLLOUT_TP",
    "LOGGER",
    "TOTAL_EPOCHS",
    "SAVE_FREQ",
    "TEST_FREQ",
    "EXPERIMENT_NAME",
    "TWIN_DIR",
    "TWIN_STEPS",
)


def _bash_overrides(snippet: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(PYTHON=sys.executable, JUDGE_MODE="lexical", TWIN_DIR="/tmp/twin-under-test")
    script = f'source recipes/common.sh; {snippet}; printf "%s\\n" "${{PV_OVERRIDES[@]}}"'
    out = subprocess.run(
        ["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def gpu_overrides() -> list[str]:
    return _bash_overrides("pv_defaults; pv_build_overrides")


def twin_overrides() -> list[str]:
    return _bash_overrides("pv_twin_defaults; pv_defaults; pv_build_overrides; pv_twin_overrides")


def _leaves(node: object, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        out: dict[str, object] = {}
        for key, value in node.items():
            out.update(_leaves(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def config_differences(a: list[str], b: list[str]) -> set[str]:
    """Dotted keys whose (unresolved) values differ between the configs composed from ``a`` and ``b``."""
    left = _leaves(OmegaConf.to_container(compose_trainer_config(a), resolve=False))
    right = _leaves(OmegaConf.to_container(compose_trainer_config(b), resolve=False))
    keys = left.keys() | right.keys()
    return {key for key in keys if left.get(key, "<absent>") != right.get(key, "<absent>")}


def test_twin_differs_from_the_gpu_recipe_only_at_size_and_device_keys() -> None:
    differences = config_differences(gpu_overrides(), twin_overrides())
    undocumented = sorted(differences - set(SIZE_DEVICE_KEYS))
    assert not undocumented, f"the twin drifts from the GPU recipe beyond SIZE_DEVICE_KEYS: {undocumented}"


def test_every_documented_key_is_really_changed() -> None:
    differences = config_differences(gpu_overrides(), twin_overrides())
    assert set(SIZE_DEVICE_KEYS) - differences == set()


def test_drift_is_detected() -> None:
    drifted = [*twin_overrides(), "actor_rollout_ref.actor.clip_ratio_high=0.28"]
    differences = config_differences(gpu_overrides(), drifted)
    assert "actor_rollout_ref.actor.clip_ratio_high" in differences - set(SIZE_DEVICE_KEYS)


def test_twin_keeps_the_paper_algorithm_and_our_manager() -> None:
    cfg = compose_trainer_config(twin_overrides())
    assert cfg.algorithm.adv_estimator == "grpo" and cfg.actor_rollout_ref.rollout.name == "vllm"
    assert cfg.reward.reward_manager.name == "PerceptionRewardManager"
    assert cfg.reward.reward_kwargs.judge == "lexical"
    assert list(cfg.trainer.logger) == ["console", "file"]
