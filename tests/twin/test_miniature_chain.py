"""Perception-R1 in miniature, at its smallest: ``recipes/run_miniature_cpu.sh`` end to end on CPU.

One arm (``MINI_ARMS=perception_r1``), one GRPO step through verl's trainer, then the evaluation recipe
(verl ``val_only``) on the base policy and RESUMING the arm's real checkpoint, scoring, perception
labels, McNemar (arm vs base) and the report. Checks that the evaluated policy is the checkpoint's (verl
logs resuming it and the dump's step is the checkpoint's; the base policy's evaluation resumes nothing
and dumps step 0), that a finished stage is skipped on a re-run, and the shape of ``results.json``.
Three verl start-ups, about 90 s each on a quiet machine (the full chain's two arms and three
evaluations are five; one arm keeps this under the issue's five minutes); marked ``twin``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.engine_env import REPO, require_engine_python

pytestmark = [pytest.mark.twin, pytest.mark.timeout(3600)]
SCRIPT = REPO / "recipes" / "run_miniature_cpu.sh"
STEPS = 1
ARM = "perception_r1"
SMALLEST = {
    "MINI_ARMS": ARM,
    "MINI_TRAIN": "10",
    "MINI_TEST": "5",
    "MINI_STEPS": str(STEPS),
    "MINI_BATCH": "2",
    "MINI_N": "4",
    "MINI_RESPONSE": "96",
    "MINI_WARMUP_PROBLEMS": "10",
    "MINI_COPY_STEPS": "20",
    "MINI_COPY_ANNEAL": "5",
    "MINI_WARMUP_STEPS": "40",
    "MINI_WARMUP_BATCH": "16",
    "MINI_STEP0_PROBLEMS": "2",
    "MINI_STEP0_N": "2",
    # a barely warmed policy fails the step-0 check by design: report it, do not stop
    "MINI_STEP0_STRICT": "0",
}
_CLEARED = (
    "JUDGE_URL", "JUDGE_MODEL", "JUDGE_MODE", "PERCEPTION_WEIGHT", "MODEL_PATH", "DATA_DIR", "TWIN_DIR",
    "CHECKPOINT", "EVAL_OUT", "EVAL_FILES", "SEED", "OUT_DIR", "PYTHON", "ANALYSIS_PYTHON",
)  # fmt: skip


def _run(out: Path, python: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED and not k.startswith("MINI_")}
    env.update(SMALLEST, PYTHON=str(python), OUT_DIR=str(out), SEED="0")
    return subprocess.run(
        ["bash", str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=3000, check=False
    )


def _stop_ray(python: Path) -> None:
    subprocess.run(
        [str(python), "-m", "ray.scripts.scripts", "stop", "--force"], capture_output=True, check=False
    )


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    python = require_engine_python()
    out = tmp_path_factory.mktemp("miniature")
    try:
        first = _run(out, python)
        assert first.returncode == 0, f"chain failed:\n{first.stdout[-4000:]}\n{first.stderr[-4000:]}"
        second = _run(out, python)
    finally:
        _stop_ray(python)
    return out, first, second


def _responses(out: Path, arm: str) -> dict[str, str]:
    with (out / "eval" / arm / "scored" / "results.jsonl").open() as handle:
        return {row["id"]: row["response"] for row in map(json.loads, handle)}


def test_every_stage_ran_and_a_rerun_skips_them(chain) -> None:
    _, first, second = chain
    stages = ("data", "policy", "step0", f"arm_{ARM}", "eval_base", f"eval_{ARM}", "score", "label", "report")
    for stage in stages:
        assert f"{stage}] running" in first.stdout
        assert f"{stage}] done in an earlier run, skipped" in second.stdout
    assert "arm_acc_only" not in first.stdout and "/10 " in first.stdout  # 10 stages with one arm
    assert second.returncode == 0
    assert "verl step 1" in first.stdout  # verl's step lines show the training progress


def test_the_arm_trains_on_the_recipe_weights(chain) -> None:
    out, _, _ = chain
    per = (out / "logs" / f"arm_{ARM}.log").read_text()
    assert "+reward.reward_kwargs.weights.perception=0.7" in per
    settings = json.loads((out / "settings.json").read_text())
    # the accuracy-only arm's weight, read from run_qwen25vl_7b_acc_only.sh, and the arm list
    assert settings["acc_only_weight"] == "0" and settings["arms"] == ARM
    assert (out / "arms" / ARM / "checkpoints" / f"global_step_{STEPS}").is_dir()
    assert (out / "arms" / ARM / "metrics.jsonl").stat().st_size > 0
    assert not (out / "arms" / "acc_only").exists()


def test_evaluation_resumes_the_checkpoints(chain) -> None:
    out, _, _ = chain
    results = json.loads((out / "results.json").read_text())
    assert results["arms"]["base"]["dump_step"] == 0
    base = _responses(out, "base")
    for arm in (ARM,):
        assert results["arms"][arm]["dump_step"] == STEPS  # verl logged the resumed step
        log = (out / "logs" / f"eval_{arm}.log").read_text()
        assert "trainer.resume_mode=resume_path" in log
        checkpoint = out / "arms" / arm / "checkpoints" / f"global_step_{STEPS}"
        # verl's own record of the resume (ray_trainer._load_checkpoint)
        assert f"Resuming from {checkpoint}, setting global step to {STEPS}" in log
        assert _responses(out, arm).keys() == base.keys()
    assert "Resuming from" not in (out / "logs" / "eval_base.log").read_text()


def test_results_report_and_comparisons(chain) -> None:
    out, _, _ = chain
    results = json.loads((out / "results.json").read_text())
    assert results["judge"] == "lexical"
    assert set(results["arms"]) == {"base", ARM}
    for arm in ("base", ARM):
        row = results["arms"][arm]
        assert row["problems"] == 5 and 0 <= row["accuracy"] <= 1 and 0 <= row["format"] <= 1
        assert row["perception_labelled"] == 5
    assert set(results["comparisons"]) == {f"{ARM}_vs_base"}
    for name in results["comparisons"]:
        for measure in ("perception", "accuracy"):
            result = results["comparisons"][name][measure]
            assert result["n_pairs"] == 5 and 0 <= result["p_exact"] <= 1
            assert result["b"] + result["c"] <= 5
    # one arm: the target (arm vs arm) is not checked, and says so
    assert results["target"]["holds"] is None and "acc_only" in results["target"]["unchecked"]
    assert results["step0"]["responses"] == 4
    # the copy check ran the real sampler's forced-opener path over every held-out problem
    copy = results["step0"]["copy_check"]
    assert copy["problems"] == 5 and copy["split"] == "test" and 0 <= copy["states_every_fact"] <= 5
    report = (out / "report.md").read_text()
    assert "copy check (test, greedy after the perceptive opener)" in report
    assert "McNemar" in report and "Perception-R1" in report
    assert "Target not checked" in report
    for png in ("arms_rewards.png", "arms_rollouts.png", f"report_{ARM}/reward_components.png"):
        assert (out / "report" / png).stat().st_size > 0
