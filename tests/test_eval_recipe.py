"""recipes/eval_qwen25vl_7b.sh with DRY_RUN=1: composes against verl's config; fails on missing inputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from perception_verl.evaluation.dryrun import run_checks
from tests import eval_fixtures

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "recipes" / "eval_qwen25vl_7b.sh"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("bench")
    built = eval_fixtures.build_all(root / "hub", root / "out")
    return [built[name] for name in ("mathvista", "mathverse", "mathvision", "wemath")]


def dry_run(tmp_path: Path, files: list[Path], **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PYTHON": sys.executable,
        "PYTHONPATH": str(REPO),
        "DRY_RUN": "1",
        "EVAL_FILES": ",".join(str(f) for f in files),
        "EVAL_OUT": str(tmp_path / "dumps"),
        **env,
    }
    return subprocess.run(["bash", str(SCRIPT)], env=environment, capture_output=True, text=True, timeout=240)


def test_dry_run_composes_and_passes(tmp_path: Path, files: list[Path]) -> None:
    result = dry_run(tmp_path, files)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "DRY RUN OK: ready to evaluate" in out
    assert "trainer.val_only=True" in out and "EvalRewardManager" in out
    assert "[ok] greedy: do_sample=False, n=1" in out
    assert "max new tokens         4096" in out and "trainer.resume_mode=disable" in out
    assert f"{files[0]}: 3 rows with ids" in out


def test_dry_run_fails_on_a_missing_checkpoint(tmp_path: Path, files: list[Path]) -> None:
    checkpoint = tmp_path / "ckpt" / "global_step_275"
    result = dry_run(tmp_path, files, CHECKPOINT=str(checkpoint))
    assert result.returncode == 1
    assert f"[FAIL] checkpoint: checkpoint folder {checkpoint} does not exist" in result.stdout
    assert "DRY RUN FAILED: checkpoint" in result.stdout


def overrides(files: list[str], tmp_path: Path, *extra: str) -> list[str]:
    return [
        "trainer.val_only=True",
        f"trainer.validation_data_dir={tmp_path}",
        f"data.train_files={files[0]}",
        f"data.val_files=[{','.join(files)}]",
        "actor_rollout_ref.rollout.val_kwargs.do_sample=False",
        "actor_rollout_ref.rollout.val_kwargs.n=1",
        "trainer.resume_mode=disable",
        "reward.reward_manager.source=importlib",
        "reward.reward_manager.module.path=pkg://perception_verl.evaluation.reward_manager",
        "reward.reward_manager.name=EvalRewardManager",
        "actor_rollout_ref.model.path=Qwen/Qwen2.5-VL-7B-Instruct",
        "actor_rollout_ref.actor.ppo_mini_batch_size=8",
        "data.train_batch_size=8",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=1",
        *extra,
    ]


def failed(checks) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.ok}


def test_missing_data_file_and_unset_dump_are_named(tmp_path: Path, files: list[Path]) -> None:
    gone = str(tmp_path / "nope" / "mathvista.parquet")
    checks, _ = run_checks(overrides([str(files[0]), gone], tmp_path, "trainer.validation_data_dir=null"))
    problems = failed(checks)
    assert problems["benchmark data"] == f"data file {gone!r} does not exist"
    assert "set trainer.validation_data_dir" in problems["dump folder"]


def test_auto_resume_and_plain_manager_are_refused(tmp_path: Path, files: list[Path]) -> None:
    paths = [str(f) for f in files]
    checks, _ = run_checks(
        overrides(
            paths,
            tmp_path,
            "trainer.resume_mode=auto",
            "reward.reward_manager.module.path=pkg://perception_verl.integration.manager",
            "reward.reward_manager.name=PerceptionRewardManager",
        )
    )
    problems = failed(checks)
    assert "trainer.resume_mode=auto" in problems["checkpoint"]
    assert "the dump has no ids" in problems["row ids"]


def test_training_data_is_not_a_benchmark(tmp_path: Path, files: list[Path]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(files[0])
    info = [{**row, "id": None} for row in table.column("extra_info").to_pylist()]
    column = table.schema.get_field_index("extra_info")
    bad = tmp_path / "noid.parquet"
    pq.write_table(
        table.set_column(column, "extra_info", pa.array(info, type=table.schema.field(column).type)), bad
    )
    checks, _ = run_checks(overrides([str(bad)], tmp_path))
    assert "have no extra_info.id" in failed(checks)["benchmark data"]
