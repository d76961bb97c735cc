"""Dry run of the evaluation recipe: ``python -m perception_verl.evaluation.dryrun <hydra overrides...>``.

Takes exactly the overrides ``main_ppo`` would get and, on CPU, checks that verl's trainer config
accepts them and its own validation passes, that they describe an evaluation (``trainer.val_only``,
greedy decoding with one sample, a ``trainer.validation_data_dir``, the evaluation reward manager so
the dump names each row), that the model (or the verl checkpoint given by
``trainer.resume_from_path``) exists, and that every data file is a benchmark parquet whose rows carry
an id. Prints one line per check and the settings that decide the numbers; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from perception_verl.launch.checks import (
    Check,
    as_paths,
    check_data,
    check_manager,
    check_model_path,
)
from perception_verl.launch.dryrun import composed, overrides_parser, run_main, setting

MANAGER_MODULE = "pkg://perception_verl.evaluation.reward_manager"
MANAGER_NAME = "EvalRewardManager"

SETTINGS = (
    ("actor_rollout_ref.model.path", "model"),
    ("trainer.resume_mode", "resume mode"),
    ("trainer.resume_from_path", "checkpoint"),
    ("actor_rollout_ref.rollout.name", "generation engine"),
    ("actor_rollout_ref.rollout.val_kwargs.do_sample", "sampling"),
    ("actor_rollout_ref.rollout.val_kwargs.temperature", "temperature"),
    ("actor_rollout_ref.rollout.val_kwargs.n", "samples per problem"),
    ("data.max_prompt_length", "max prompt tokens"),
    ("data.max_response_length", "max new tokens"),
    ("data.mm_processor_kwargs.min_pixels", "min image pixels"),
    ("data.mm_processor_kwargs.max_pixels", "max image pixels"),
    ("trainer.validation_data_dir", "dump folder"),
)


def check_eval_settings(config: DictConfig) -> list[Check]:
    """The settings that make a verl run an evaluation whose dump the scorer can read."""
    checks = []
    trainer = config.trainer
    val = config.actor_rollout_ref.rollout.val_kwargs
    ok = bool(trainer.get("val_only")) and bool(trainer.get("val_before_train", True))
    checks.append(
        Check(
            "val only",
            ok,
            "trainer.val_only=True and trainer.val_before_train=True"
            if ok
            else "set trainer.val_only=True and trainer.val_before_train=True (else verl trains)",
        )
    )
    greedy = not val.do_sample and int(val.n) == 1
    checks.append(
        Check(
            "greedy",
            greedy,
            "do_sample=False, n=1"
            if greedy
            else f"val_kwargs.do_sample={val.do_sample}, val_kwargs.n={val.n}: the table needs greedy, n=1",
        )
    )
    dump = trainer.get("validation_data_dir")
    checks.append(
        Check(
            "dump folder",
            bool(dump),
            str(dump)
            if dump
            else "set trainer.validation_data_dir: without it verl writes no generations to score",
        )
    )
    manager = config.reward.reward_manager
    ours = (
        manager.source == "importlib"
        and manager.module.path == MANAGER_MODULE
        and manager.name == MANAGER_NAME
    )
    checks.append(
        Check(
            "row ids",
            ours,
            f"{MANAGER_NAME} adds eval_id/eval_benchmark to the dump"
            if ours
            else f"reward.reward_manager must be {MANAGER_MODULE}:{MANAGER_NAME}, or the dump has no ids",
        )
    )
    return checks


def check_checkpoint(config: DictConfig) -> Check:
    """A ``resume_path`` checkpoint exists and holds an actor; ``auto`` is refused (it may pick any step)."""
    mode = config.trainer.resume_mode
    if mode == "disable":
        return Check("checkpoint", True, "none: the model is evaluated as it is")
    if mode != "resume_path":
        return Check(
            "checkpoint",
            False,
            f"trainer.resume_mode={mode}: set disable (evaluate the model) or resume_path with "
            "trainer.resume_from_path=<.../global_step_N> (evaluate a checkpoint)",
        )
    path = config.trainer.get("resume_from_path")
    if not path:
        return Check("checkpoint", False, "trainer.resume_mode=resume_path needs trainer.resume_from_path")
    folder = Path(str(path)).expanduser()
    if "global_step_" not in folder.name:
        return Check("checkpoint", False, f"{path}: verl needs a global_step_N folder")
    if not folder.is_dir():
        return Check("checkpoint", False, f"checkpoint folder {path} does not exist")
    if not (folder / "actor").is_dir():
        return Check("checkpoint", False, f"checkpoint folder {path} has no actor/ folder")
    return Check("checkpoint", True, f"{path}")


def check_benchmark_file(path: str) -> Check:
    """A validation file exists, is a parquet with ground truths, and every row has ``extra_info.id``."""
    import pyarrow.parquet as pq

    base, _ = check_data("eval", path, "reward_model.annotations", need_annotations=False)
    if not base.ok:
        return Check("benchmark data", False, base.detail)
    info = pq.read_table(Path(path).expanduser(), columns=["extra_info"]).column("extra_info").to_pylist()
    missing = [i for i, row in enumerate(info) if not isinstance(row, dict) or not row.get("id")]
    if missing:
        return Check(
            "benchmark data",
            False,
            f"{path}: rows {missing[:5]} have no extra_info.id "
            "(build the file with data_prep/build_benchmarks.py)",
        )
    return Check("benchmark data", True, f"{path}: {len(info)} rows with ids")


def run_checks(overrides: Sequence[str]) -> tuple[list[Check], list[str]]:
    """All dry-run checks of an evaluation; returns the checks and the settings lines."""
    config, checks = composed(overrides)
    if config is None:
        return checks, []
    checks.append(check_manager(config))
    checks.extend(check_eval_settings(config))
    checks.append(check_model_path(str(config.actor_rollout_ref.model.path)))
    checks.append(check_checkpoint(config))
    files = as_paths(config.data.val_files)
    if not files:
        checks.append(Check("benchmark data", False, "no data.val_files set"))
    checks.extend(check_benchmark_file(path) for path in files)
    settings = [f"  {label:22s} {setting(config, key)}" for key, label in SETTINGS]
    return checks, settings


def build_parser() -> argparse.ArgumentParser:
    return overrides_parser(
        "python -m perception_verl.evaluation.dryrun",
        __doc__,
        "  DRY_RUN=1 bash recipes/eval_qwen25vl_7b.sh   # the evaluation recipe's overrides\n"
        "  DRY_RUN=1 CHECKPOINT=checkpoints/.../global_step_275 bash recipes/eval_qwen25vl_7b.sh",
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(
        argv,
        run_checks,
        build_parser().format_help(),
        title="perception-verl evaluation dry run",
        ready="ready to evaluate",
    )


if __name__ == "__main__":
    sys.exit(main())
