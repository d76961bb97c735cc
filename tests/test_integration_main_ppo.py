"""perception_verl.main_ppo: verl's public points it uses keep their shape; our step adds the metrics.

If a test in the "pins" group fails after a verl upgrade, perception_verl/main_ppo.py and
perception_verl/integration/step_metrics.py must be revisited before they are used with that verl.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
from typing import Any

import pytest

from perception_verl import main_ppo
from perception_verl.integration import step_metrics

# sha256 of verl 0.9.1's TaskRunnerV1 class source, which RewardMetricsTaskRunner follows
TASK_RUNNER_V1_SHA = "351c387ab225ae2748ee8ff7975dc2a2f92ded0d742fe199ddb63da49af5ecee"


def params(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


# ---------------------------------------------------------------- pins on verl 0.9.1 internals


def test_pin_verl_version() -> None:
    assert main_ppo.check_verl_version().startswith("0.9.")
    for other in ("0.10.0", "1.0.0", "garbage"):
        with pytest.raises(RuntimeError, match="verl"):
            main_ppo.check_verl_version(other)


def _verl_source_sha(module: Any, qualname: str) -> str:
    """sha256 of one top-level class or function of ``module``, as written (read with ast, not Ray)."""
    source = inspect.getsource(module)
    for node in ast.parse(source).body:
        if getattr(node, "name", None) == qualname:
            return hashlib.sha256(ast.get_source_segment(source, node).encode()).hexdigest()
    raise AssertionError(f"{module.__name__}.{qualname} is gone")


def test_pin_entry_point_and_task_runners() -> None:
    """main_ppo does what verl's main does, through the public run_ppo; its runner follows TaskRunnerV1."""
    from verl.trainer import main_ppo as verl_main

    assert params(verl_main.run_ppo) == ["config", "task_runner_class"]
    body = inspect.getsource(verl_main.main)
    steps = (
        "auto_set_device(config)",
        "validate_config(",
        "run_ppo(config, task_runner_class=TaskRunnerV1)",
        "from verl.trainer.main_ppo_v0 import TaskRunner",
        "run_ppo(config, task_runner_class=TaskRunner)",
    )
    for step in steps:
        assert step in body, f"verl's main_ppo.main changed ({step!r}): review perception_verl.main_ppo.run"
    # RewardMetricsTaskRunner.run / build_agent_loop_manager follow this exact TaskRunnerV1 (verl 0.9.1).
    assert _verl_source_sha(verl_main, "TaskRunnerV1") == TASK_RUNNER_V1_SHA, (
        "verl's TaskRunnerV1 changed: bring perception_verl.main_ppo.RewardMetricsTaskRunner in line"
    )


def test_pin_v1_public_step() -> None:
    """The v1 extension point: fit calls the public step, then verl's metrics, then logs ``metrics``."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    assert params(PPOTrainer.step) == ["self", "metrics", "timing_raw"]
    assert params(PPOTrainer.get_reward_handles) == ["self"]
    fit = inspect.getsource(PPOTrainer.fit)
    order = [
        "batch = self.step(metrics, self.timing_raw)",
        "self._compute_metrics(batch, metrics",
        "tq.kv_clear(keys=batch.keys",
        "self.logger.log(data=metrics, step=self.global_steps)",
    ]
    positions = [fit.find(line) for line in order]
    assert -1 not in positions and positions == sorted(positions), positions
    # streamed route: the reward extras reach TransferQueue inside each sample's extra_fields
    assert 'extra_fields["reward_extra_info"] = result["reward_extra_info"]' in inspect.getsource(
        AgentLoopWorker._compute_score
    )
    # colocated route: one TransferQueue field per reward extra key
    colocate = inspect.getsource(PPOTrainer._compute_reward_colocate)
    assert 'for key in rm_output.meta_info.get("reward_extra_keys", []):' in colocate
    assert "write_back[key] = rm_output.non_tensor_batch[key]" in colocate


def test_pin_legacy_trainer_has_no_public_metrics_hook() -> None:
    """verl 0.9.1's legacy fit calls only private trainer methods: no public point for step metrics.

    When this fails, verl's legacy trainer gained a public method in its loop (or changed): use it to
    log the reward step metrics under trainer.use_v1=False, and update docs/architecture.md.
    """
    from verl.trainer.ppo import ray_trainer

    fit = inspect.getsource(ray_trainer.RayPPOTrainer.fit)
    own_calls = set(re.findall(r"\bself\.([A-Za-z_]\w*)\(", fit))
    assert own_calls and all(name.startswith("_") for name in own_calls), sorted(own_calls)
    assert "metrics.update(compute_data_metrics(batch=batch, use_critic=self.use_critic))" in fit
    assert "logger.log(data=metrics, step=self.global_steps)" in fit


def test_v1_trainer_class_keeps_verls_mode() -> None:
    from omegaconf import OmegaConf
    from verl.trainer.ppo.v1 import PPOTrainerColocateAsync, PPOTrainerSync, get_trainer_cls

    for mode, base in (("sync", PPOTrainerSync), ("colocate_async", PPOTrainerColocateAsync)):
        config = OmegaConf.create({"trainer": {"use_v1": True, "v1": {"trainer_mode": mode}}})
        cls = main_ppo.trainer_class(config)
        assert issubclass(cls, base) and cls is main_ppo.trainer_class(config)
        assert get_trainer_cls(mode) is base  # verl's registry is untouched
        overridden = {name for name in vars(cls) if not name.startswith("_")}
        assert overridden == {"step"}  # nothing but the public step: trainer_mode and the rest are verl's


def test_task_runner_per_trainer(caplog: pytest.LogCaptureFixture) -> None:
    from omegaconf import OmegaConf
    from verl.trainer.main_ppo_v0 import TaskRunner

    legacy = OmegaConf.create({"trainer": {"use_v1": False}})
    with caplog.at_level("WARNING", logger="perception_verl.main_ppo"):
        assert main_ppo.task_runner(legacy) is TaskRunner
    assert "no public point" in caplog.text and "trainer.use_v1=True" in caplog.text
    assert "group-consistent perception is not applied" in caplog.text
    v1 = main_ppo.task_runner(OmegaConf.create({"trainer": {"use_v1": True}}))
    assert hasattr(v1, "remote")  # a Ray actor class made from RewardMetricsTaskRunner


def _stored_batch() -> tuple[Any, dict[str, dict[str, Any]]]:
    from transfer_queue import KVBatchMeta

    infos = {
        "k0": {"accuracy": 1.0, "perception": 1.0, "perception_excluded": 0.0},
        "k1": {"accuracy": 0.0, "perception": 0.0, "perception_excluded": 1.0},
        "pad": {"accuracy": 0.0, "perception": 0.0, "perception_excluded": 0.0},
    }
    batch = KVBatchMeta(keys=list(infos), tags=[{}, {}, {"is_padding": True}], partition_id="train")
    return batch, infos


@pytest.mark.parametrize("route", ["streamed", "colocated"])
def test_reward_metrics_from_transfer_queue_fields(route: str) -> None:
    batch, infos = _stored_batch()
    stored = {
        key: {"extra_fields": {"reward_extra_info": info}, "data_source": "geo", **info}
        for key, info in infos.items()
    }
    calls = []

    def kv_batch_get(keys: list[str], partition_id: str, select_fields: list[str]) -> dict[str, list]:
        calls.append((tuple(keys), partition_id, tuple(select_fields)))
        return {field: [stored[k][field] for k in keys] for field in select_fields}

    colocated = list(next(iter(infos.values()))) if route == "colocated" else None
    metrics = step_metrics.batch_reward_metrics(batch, kv_batch_get, colocated_keys=colocated)
    wanted = ("extra_fields", "data_source") if colocated is None else (*colocated, "data_source")
    assert calls == [(("k0", "k1", "pad"), "train", wanted)]
    assert metrics["reward/accuracy/mean"] == 0.5
    assert metrics["reward/perception/mean"] == 1.0
    assert metrics["reward/perception_excluded/share"] == 0.5


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
