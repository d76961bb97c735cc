"""perception_verl.main_ppo: the verl internals it wraps keep their shape; the wrapped code logs our metrics.

If a test in the "pins" group fails after a verl upgrade, the wrapper in perception_verl/main_ppo.py
must be revisited before it is used with that verl.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from perception_verl import main_ppo
from perception_verl.integration.manager import EXTRA_KEYS
from tests.support.tiny_model import build_tiny_tokenizer
from tests.support.verl_harness import Sample, build_dataproto


def params(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


# ---------------------------------------------------------------- pins on verl 0.9.1 internals


def test_pin_verl_version() -> None:
    assert main_ppo.check_verl_version().startswith("0.9.")
    for other in ("0.10.0", "1.0.0", "garbage"):
        with pytest.raises(RuntimeError, match="verl"):
            main_ppo.check_verl_version(other)


def test_pin_entry_point_and_task_runners() -> None:
    from verl.trainer import main_ppo as verl_main
    from verl.trainer import main_ppo_v0

    assert params(verl_main.run_ppo) == ["config", "task_runner_class"]
    assert "TaskRunnerV1" in inspect.getsource(verl_main.main)
    assert "from verl.trainer.main_ppo_v0 import TaskRunner" in inspect.getsource(verl_main.main)
    for actor in (verl_main.TaskRunnerV1, main_ppo_v0.TaskRunner):
        # Ray's tracing may append a keyword-only _ray_trace_ctx
        assert params(actor.__ray_actor_class__.run)[:2] == ["self", "config"]


def test_pin_v1_metric_computation() -> None:
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    expected = ["self", "batch", "metrics", "timing_raw", "global_steps", "epoch"]
    assert params(PPOTrainer._compute_metrics) == expected
    assert "self._compute_metrics(batch, metrics" in inspect.getsource(PPOTrainer.fit)
    # the reward extras reach TransferQueue inside each sample's extra_fields
    assert 'extra_fields["reward_extra_info"] = result["reward_extra_info"]' in inspect.getsource(
        AgentLoopWorker._compute_score
    )
    assert '"data_source", "extra_fields"' in inspect.getsource(PPOTrainer._validate)


def test_pin_legacy_metric_computation() -> None:
    from verl.trainer.ppo import ray_trainer

    assert params(ray_trainer.compute_data_metrics) == ["batch", "use_critic"]
    fit = inspect.getsource(ray_trainer.RayPPOTrainer.fit)
    assert "compute_data_metrics(batch=batch, use_critic=self.use_critic)" in fit
    assert "batch.non_tensor_batch.update({k: np.array(v) for k, v in reward_extra_infos_dict" in fit


# ---------------------------------------------------------------- the wrapped code paths


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return AutoTokenizer.from_pretrained(str(build_tiny_tokenizer(Path(tmp_path_factory.mktemp("tok")))))


def trained_batch(tokenizer: Any) -> Any:
    """A batch as the legacy trainer holds it when it computes step metrics."""
    answer = "<answer>\\boxed{7}</answer>"
    samples = [Sample("Find f.", answer, "7", ["a"], uid=str(i // 2)) for i in range(4)]
    data = build_dataproto(tokenizer, samples)
    prompt_len = data.batch["prompts"].shape[1]
    response_mask = data.batch["attention_mask"][:, prompt_len:]
    scores = torch.zeros_like(response_mask, dtype=torch.float32)
    last = response_mask.sum(dim=1) - 1
    totals = torch.tensor([1.7, 1.0, 0.1, 0.35])
    scores[torch.arange(4), last] = totals
    data.batch["response_mask"] = response_mask
    data.batch["token_level_scores"] = scores
    data.batch["token_level_rewards"] = scores
    data.batch["advantages"] = scores.clone()
    data.batch["returns"] = scores.clone()
    extras = {
        "score": totals.tolist(),
        "acc": [1.0, 1.0, 0.0, 0.0],
        "accuracy": [1.0, 1.0, 0.0, 0.0],
        "format": [1.0, 1.0, 1.0, 0.0],
        "perception": [1.0, 0.0, 0.0, 0.5],
        "perception_excluded": [0.0, 1.0, 1.0, 0.0],
        "repetition": [0.0, 0.0, -0.5, 0.0],
        "num_annotations": [2.0, 0.0, 3.0, 2.0],
        "judge_failed": [0.0, 0.0, 1.0, 0.0],
        "judge_latency_s": [0.2, 0.0, 1.0, 0.0],
        "judge_cached": [0.0, 0.0, 0.0, 0.0],
        "accuracy_timed_out": [0.0, 0.0, 0.0, 0.0],
        "ground_truth_invalid": [0.0, 0.0, 0.0, 0.0],
    }
    assert tuple(extras) == EXTRA_KEYS
    data.non_tensor_batch.update({k: np.array(v) for k, v in extras.items()})
    data.meta_info["reward_extra_keys"] = list(extras)
    return data


def test_legacy_trainer_metrics_include_reward_components(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verl.trainer.ppo import ray_trainer

    monkeypatch.setattr(ray_trainer, "compute_data_metrics", ray_trainer.compute_data_metrics)
    main_ppo.install_reward_step_metrics(v1=False)
    main_ppo.install_reward_step_metrics(v1=False)  # idempotent
    wrapped = ray_trainer.compute_data_metrics
    assert wrapped.__wrapped__.__module__ == "verl.trainer.ppo.metric_utils"

    metrics = wrapped(batch=trained_batch(tokenizer), use_critic=False)
    assert metrics["critic/score/mean"] == pytest.approx(0.7875)  # verl's own metrics are kept
    assert metrics["reward/score/mean"] == pytest.approx(0.7875)
    assert metrics["reward/accuracy/mean"] == 0.5
    assert metrics["reward/perception/mean"] == 0.75
    assert metrics["reward/perception_excluded/share"] == 0.5
    assert metrics["reward/judge_failed/rate"] == pytest.approx(1 / 3)


def test_v1_reward_metrics_from_transfer_queue_fields() -> None:
    from transfer_queue import KVBatchMeta

    stored = {
        "k0": {"extra_fields": {"reward_extra_info": {"accuracy": 1.0, "perception": 1.0,
                                                      "perception_excluded": 0.0}}, "data_source": "geo"},
        "k1": {"extra_fields": {"reward_extra_info": {"accuracy": 0.0, "perception": 0.0,
                                                      "perception_excluded": 1.0}}, "data_source": "geo"},
        "pad": {"extra_fields": {"reward_extra_info": {"accuracy": 0.0, "perception": 0.0,
                                                       "perception_excluded": 0.0}}, "data_source": "geo"},
    }
    calls = []

    def kv_batch_get(keys: list[str], partition_id: str, select_fields: list[str]) -> dict[str, list]:
        calls.append((tuple(keys), partition_id, tuple(select_fields)))
        return {field: [stored[k][field] for k in keys] for field in select_fields}

    batch = KVBatchMeta(
        keys=["k0", "k1", "pad"],
        tags=[{}, {}, {"is_padding": True}],
        partition_id="train",
        fields=["extra_fields", "data_source"],
    )
    metrics = main_ppo.v1_reward_metrics(batch, kv_batch_get)
    assert calls == [(("k0", "k1", "pad"), "train", ("extra_fields", "data_source"))]
    assert metrics["reward/accuracy/mean"] == 0.5
    assert metrics["reward/perception/mean"] == 1.0
    assert metrics["reward/perception_excluded/share"] == 0.5


def test_task_runner_installs_the_wrapper_before_verl_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from verl.trainer import main_ppo as verl_main

    installed: list[bool] = []
    monkeypatch.setattr(main_ppo, "install_reward_step_metrics", lambda v1: installed.append(v1))
    runner_cls = main_ppo._runner_class(verl_main.TaskRunnerV1.__ray_actor_class__, v1=True)
    assert issubclass(runner_cls, verl_main.TaskRunnerV1.__ray_actor_class__)
    runner = runner_cls()
    with pytest.raises(Exception):  # noqa: B017  (verl's run needs a full config; the hook ran first)
        runner.run(None)
    assert installed == [True]


def test_entry_point_takes_verls_hydra_arguments() -> None:
    """``python -m perception_verl.main_ppo`` parses exactly verl's config (printed, not run, with --cfg)."""
    import subprocess
    import sys

    from tests.support.verl_harness import perception_reward_overrides

    overrides = perception_reward_overrides(None, {"judge": "lexical", "weights": {"perception": 0.5}})
    done = subprocess.run(
        [sys.executable, "-m", "perception_verl.main_ppo", "--cfg", "job", *overrides],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "path: pkg://perception_verl.integration.manager" in done.stdout
    assert "name: PerceptionRewardManager" in done.stdout
    assert "perception: 0.5" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "perception_verl.main_ppo", "--cfg", "job", "reward.not_a_key=1"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert bad.returncode != 0 and "not_a_key" in bad.stderr
