"""Perception-R1 in miniature, at its smallest: ``recipes/run_miniature_cpu.sh`` end to end on CPU.

One GRPO step per arm through verl's trainer, then the evaluation recipe (verl ``val_only``) on the base
policy and RESUMING each arm's real checkpoint, scoring, perception labels, McNemar and the report.
Checks that each evaluated policy is its checkpoint's (verl logs resuming it and the dump's step is the
checkpoint's; the base policy's evaluation resumes nothing and dumps step 0), that a finished stage is
skipped on a re-run, and the shape of ``results.json``. Five verl start-ups: minutes; marked ``twin``.
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
SMALLEST = {
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
    for stage in ("data", "policy", "step0", "arm_acc_only", "arm_perception_r1", "eval_base", "report"):
        assert f"{stage}] running" in first.stdout
        assert f"{stage}] done in an earlier run, skipped" in second.stdout
    assert second.returncode == 0
    assert "verl step 1" in first.stdout  # verl's step lines show the training progress


def test_arms_differ_only_in_the_perception_weight(chain) -> None:
    out, _, _ = chain
    acc = (out / "logs" / "arm_acc_only.log").read_text()
    per = (out / "logs" / "arm_perception_r1.log").read_text()
    assert "+reward.reward_kwargs.weights.perception=0 " in acc.replace("\\\n", " ").replace("\n", " ")
    assert "+reward.reward_kwargs.weights.perception=0.7" in per
    for arm in ("acc_only", "perception_r1"):
        assert (out / "arms" / arm / "checkpoints" / f"global_step_{STEPS}").is_dir()
        assert (out / "arms" / arm / "metrics.jsonl").stat().st_size > 0


def test_evaluation_resumes_the_checkpoints(chain) -> None:
    out, _, _ = chain
    results = json.loads((out / "results.json").read_text())
    assert results["arms"]["base"]["dump_step"] == 0
    base = _responses(out, "base")
    for arm in ("acc_only", "perception_r1"):
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
    for arm in ("base", "acc_only", "perception_r1"):
        row = results["arms"][arm]
        assert row["problems"] == 5 and 0 <= row["accuracy"] <= 1 and 0 <= row["format"] <= 1
        assert row["perception_labelled"] == 5
    for name in ("perception_r1_vs_acc_only", "acc_only_vs_base", "perception_r1_vs_base"):
        for measure in ("perception", "accuracy"):
            result = results["comparisons"][name][measure]
            assert result["n_pairs"] == 5 and 0 <= result["p_exact"] <= 1
            assert result["b"] + result["c"] <= 5
    assert set(results["target"]["clauses"]) and isinstance(results["target"]["holds"], bool)
    assert results["step0"]["responses"] == 4
    report = (out / "report.md").read_text()
    assert "McNemar" in report and "Perception-R1" in report
    for png in ("arms_rewards.png", "arms_rollouts.png", "report_acc_only/reward_components.png"):
        assert (out / "report" / png).stat().st_size > 0
