"""``DRY_RUN=1`` of the recipes: passes on fixture data with the loopback judge, fails clearly otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from perception_verl.data.schema import ROW_SCHEMA
from perception_verl.data.writer import write_outputs_atomically
from perception_verl.launch.checks import Check
from perception_verl.launch.dryrun import render, run_checks
from perception_verl_demo.samples import sample_rows, write_sample_dataset
from tests.support.fake_sglang import JUDGE_MODEL, fake_sglang
from tests.support.loopback import LoopbackServer, closed_port_url

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dryrun_data")
    write_sample_dataset(folder / "train.parquet")
    write_sample_dataset(folder / "test.parquet")
    bare = sample_rows()
    for row in bare:
        row["reward_model"] = {**row["reward_model"], "annotations": []}
    write_outputs_atomically({folder / "bare.parquet": bare}, ROW_SCHEMA)
    (folder / "notes.parquet").write_text("not a parquet file")
    return folder


@pytest.fixture(scope="module")
def judge() -> Iterator[LoopbackServer]:
    with fake_sglang() as server:
        yield server


def _env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k not in ("JUDGE_MODE", "PERCEPTION_WEIGHT", "DRY_RUN")}
    return {**keep, "PYTHON": sys.executable, "DRY_RUN": "1", **extra}


# The fixture files hold 3 rows: 2 prompts per step make one step per epoch (8 rollouts x 2 = 16
# samples, divisible by the recipe's 8 GPUs).
SMALL_BATCH = ("data.train_batch_size=2", "actor_rollout_ref.actor.ppo_mini_batch_size=2")


def _dry_run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(RECIPES / script), *SMALL_BATCH, *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=240,
    )


def _overrides(**env: str) -> list[str]:
    snippet = 'source recipes/common.sh; pv_defaults; pv_build_overrides; printf "%s\\n" "${PV_OVERRIDES[@]}"'
    out = subprocess.run(["bash", "-c", snippet], cwd=REPO, env=_env(**env), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [*out.stdout.splitlines(), *SMALL_BATCH]


def _failed(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.ok}


def test_main_recipe_dry_run_passes_with_loopback_judge(data_dir: Path, judge: LoopbackServer) -> None:
    result = _dry_run(
        "run_qwen25vl_7b.sh", DATA_DIR=str(data_dir), JUDGE_URL=judge.url, JUDGE_MODEL=JUDGE_MODEL
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "-m perception_verl.main_ppo" in result.stdout
    assert "DRY RUN OK" in result.stdout
    assert f"[ok] judge: {JUDGE_MODEL} healthy at {judge.url}" in result.stdout
    assert "3 rows, 3 with a ground truth, 3 with annotations" in result.stdout


def test_accuracy_only_dry_run_passes_without_a_judge(data_dir: Path) -> None:
    result = _dry_run("run_qwen25vl_7b_acc_only.sh", DATA_DIR=str(data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "perception=0 " in result.stdout
    assert "judge: lexical judge" in result.stdout
    assert "trainer.experiment_name=qwen25vl7b_geo3k_acc_only" in result.stdout


def test_missing_data_file_fails_through_the_script(data_dir: Path, judge: LoopbackServer) -> None:
    missing = data_dir / "missing.parquet"
    result = _dry_run(
        "run_qwen25vl_7b.sh",
        DATA_DIR=str(data_dir),
        TRAIN_FILE=str(missing),
        JUDGE_URL=judge.url,
        JUDGE_MODEL=JUDGE_MODEL,
    )
    assert result.returncode == 1
    assert f"[FAIL] data (train): data file {str(missing)!r} does not exist" in result.stdout
    assert "DRY RUN FAILED: data (train)" in result.stdout


def test_verl_managed_judge_dry_run_passes(data_dir: Path) -> None:
    checks, _ = run_checks(_overrides(DATA_DIR=str(data_dir), JUDGE_MODE="verl"))
    assert _failed(checks) == {}
    judge_check = next(c for c in checks if c.name == "judge")
    assert "verl will launch the judge Qwen/Qwen2.5-32B-Instruct-AWQ with sglang" in judge_check.detail


def test_parquet_without_annotations_fails(data_dir: Path, judge: LoopbackServer) -> None:
    overrides = _overrides(DATA_DIR=str(data_dir), JUDGE_URL=judge.url, JUDGE_MODEL=JUDGE_MODEL)
    checks, _ = run_checks([*overrides, f"data.train_files={data_dir / 'bare.parquet'}"])
    failed = _failed(checks)
    assert list(failed) == ["data (train)"]
    assert "bare.parquet: 3 rows" in failed["data (train)"]
    assert "no row has annotations under 'reward_model.annotations'" in failed["data (train)"]


def test_parquet_without_annotations_is_fine_for_accuracy_only(data_dir: Path) -> None:
    overrides = _overrides(DATA_DIR=str(data_dir), JUDGE_MODE="lexical", PERCEPTION_WEIGHT="0")
    checks, _ = run_checks([*overrides, f"data.train_files={data_dir / 'bare.parquet'}"])
    assert _failed(checks) == {}


def test_unreadable_parquet_fails(data_dir: Path) -> None:
    overrides = _overrides(DATA_DIR=str(data_dir), JUDGE_MODE="lexical")
    checks, _ = run_checks([*overrides, f"data.val_files={data_dir / 'notes.parquet'}"])
    failed = _failed(checks)
    assert list(failed) == ["data (validation)"]
    assert "is not a readable parquet file" in failed["data (validation)"]


def test_dead_judge_url_fails(data_dir: Path) -> None:
    dead = closed_port_url()
    # JUDGE_WAIT_S bounds the wait for a judge still loading (a refused port may be one); the
    # default 20 s is pinned by tests/test_failclosed_judge.py
    checks, settings = run_checks(
        _overrides(DATA_DIR=str(data_dir), JUDGE_URL=dead, JUDGE_MODEL=JUDGE_MODEL, JUDGE_WAIT_S="2")
    )
    failed = _failed(checks)
    assert list(failed) == ["judge"]
    assert dead in failed["judge"] and "connection refused" in failed["judge"]
    assert render(checks, settings).rstrip().endswith("DRY RUN FAILED: judge")


def test_judge_serving_another_model_fails(data_dir: Path, judge: LoopbackServer) -> None:
    checks, _ = run_checks(_overrides(DATA_DIR=str(data_dir), JUDGE_URL=judge.url, JUDGE_MODEL="other/model"))
    assert "model 'other/model' not served" in _failed(checks)["judge"]


def test_misspelt_verl_override_fails(data_dir: Path) -> None:
    overrides = _overrides(DATA_DIR=str(data_dir), JUDGE_MODE="lexical")
    checks, settings = run_checks([*overrides, "actor_rollout_ref.rollout.temprature=0.7"])
    assert [c.name for c in checks] == ["overrides"] and not checks[0].ok
    assert "actor_rollout_ref.rollout.temprature" in checks[0].detail
    assert settings == []


def test_misspelt_reward_option_fails(data_dir: Path) -> None:
    overrides = _overrides(DATA_DIR=str(data_dir), JUDGE_MODE="lexical")
    checks, _ = run_checks([*overrides, "+reward.reward_kwargs.wieghts.perception=0.5"])
    failed = _failed(checks)
    assert list(failed) == ["reward options"]
    assert "wieghts" in failed["reward options"] and "did you mean 'weights'" in failed["reward options"]


def test_batch_not_divisible_by_gpus_fails_in_verl_validation(data_dir: Path) -> None:
    overrides = _overrides(DATA_DIR=str(data_dir), JUDGE_MODE="lexical", N_GPUS_PER_NODE="7")
    fixed_micro_batches = [
        "actor_rollout_ref.actor.use_dynamic_bsz=False",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2",
    ]
    checks, _ = run_checks([*overrides, *fixed_micro_batches])
    failed = _failed(checks)
    assert list(failed) == ["verl config"]
    assert "real_train_batch_size (16) must be divisible" in failed["verl config"]


def test_legacy_reward_keys_that_main_ppo_ignores_fail(data_dir: Path) -> None:
    overrides = _overrides(DATA_DIR=str(data_dir), JUDGE_MODE="lexical")
    checks, _ = run_checks([*overrides, "reward_model.reward_manager=naive"])
    failed = _failed(checks)
    assert "legacy keys" in failed
    assert "main_ppo ignores reward_model.reward_manager" in failed["legacy keys"]
