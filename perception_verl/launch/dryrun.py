"""Dry run of a training recipe: ``python -m perception_verl.launch.dryrun <hydra overrides...>``.

Takes exactly the overrides ``main_ppo`` would get and, without a GPU, checks that verl's trainer
config accepts them, verl's own validation passes, the reward manager loads and its options
(``reward.reward_kwargs``) are valid, the model folder exists, the data files exist and carry
ground truths and annotations, and the judge answers its health check. Prints one line per check
and the key training settings; exits 1 if any check failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from omegaconf import DictConfig

from perception_verl.launch.checks import (
    Check,
    as_paths,
    check_data,
    check_judge,
    check_manager,
    check_model_path,
    check_plugin,
    check_steps,
    check_verl,
    is_perception_manager,
    kept_after_overlong_filter,
)
from perception_verl.launch.compose import ComposeError, compose_trainer_config, legacy_reward_keys
from perception_verl.launch.vl_checks import check_image_rows, check_rollout_images

SETTINGS = (
    ("algorithm.adv_estimator", "advantage estimator"),
    ("actor_rollout_ref.model.path", "policy model"),
    ("actor_rollout_ref.rollout.name", "rollout engine"),
    ("actor_rollout_ref.rollout.n", "rollouts per prompt"),
    ("actor_rollout_ref.rollout.temperature", "rollout temperature"),
    ("data.train_batch_size", "prompts per step"),
    ("actor_rollout_ref.actor.ppo_mini_batch_size", "prompts per optimizer step"),
    ("data.max_prompt_length", "max prompt tokens"),
    ("data.max_response_length", "max response tokens"),
    ("actor_rollout_ref.actor.optim.lr", "learning rate"),
    ("actor_rollout_ref.actor.optim.lr_warmup_steps_ratio", "warm-up ratio"),
    ("actor_rollout_ref.actor.optim.weight_decay", "weight decay"),
    ("actor_rollout_ref.actor.use_kl_loss", "KL loss"),
    ("algorithm.use_kl_in_reward", "KL in reward"),
    ("trainer.total_epochs", "epochs"),
    ("trainer.nnodes", "nodes"),
    ("trainer.n_gpus_per_node", "GPUs per node"),
    ("reward.reward_model.enable", "verl-launched judge"),
)


def setting(config: DictConfig, key: str) -> object:
    """A dotted setting of a composed config as the dry runs print it (``<unset>`` when absent)."""
    from omegaconf import OmegaConf

    return OmegaConf.select(config, key, default="<unset>")


def settings_lines(config: DictConfig, options: object | None) -> list[str]:
    """The key training settings, one ``label: value`` line each."""
    lines = [f"  {label:28s} {setting(config, key)}" for key, label in SETTINGS]
    if options is not None:
        weights = options.weights
        lines.append(
            f"  {'reward weights':28s} accuracy={weights.accuracy:g} format={weights.format:g} "
            f"perception={weights.perception:g} repetition={weights.repetition:g} "
            f"(n={weights.repetition_n}, max penalty={weights.repetition_max_penalty:g})"
        )
        from perception_verl.config import judge_label

        lines.append(f"  {'judge backend':28s} {judge_label(options)}")
    return lines


def composed(overrides: Sequence[str]) -> tuple[DictConfig | None, list[Check]]:
    """verl's config for ``overrides``, migrated, with the checks every dry run starts with.

    The config is ``None`` when the overrides do not compose (the one check says why).
    """
    from verl.experimental.reward_loop import migrate_legacy_reward_impl

    try:
        config = compose_trainer_config(overrides, migrate=False)
    except ComposeError as error:
        return None, [Check("overrides", False, str(error))]
    checks = [Check("overrides", True, f"{len(overrides)} overrides compose against verl's ppo_trainer")]
    legacy = legacy_reward_keys(config)
    if legacy:
        checks.append(
            Check(
                "legacy keys",
                False,
                f"verl 0.9.1's main_ppo ignores {', '.join(legacy)}; set them under reward.* instead "
                "(reward.reward_manager.*, reward.custom_reward_function.*, reward.reward_model.*)",
            )
        )
    config = migrate_legacy_reward_impl(config)
    checks.append(check_verl(config))
    return config, checks


def run_checks(overrides: Sequence[str]) -> tuple[list[Check], list[str]]:
    """All dry-run checks for ``overrides``; returns the checks and the settings lines."""
    config, checks = composed(overrides)
    if config is None:
        return checks, []
    checks.append(check_plugin(config))
    manager_check = check_manager(config)
    checks.append(manager_check)
    options = None
    if manager_check.ok and is_perception_manager(config):
        from perception_verl.config import RewardConfigError, from_kwargs, resolve_judge

        try:
            options = resolve_judge(
                from_kwargs(config.reward.get("reward_kwargs")),
                verl_judge=bool(config.reward.reward_model.enable),
            )
            checks.append(Check("reward options", True, "reward.reward_kwargs accepted"))
        except RewardConfigError as error:
            checks.append(Check("reward options", False, str(error)))
    elif manager_check.ok:
        checks.append(Check("reward options", True, "not the perception reward manager; options not checked"))
    checks.append(check_model_path(str(config.actor_rollout_ref.model.path)))
    checks.append(check_rollout_images(config))
    key = options.annotations_key if options is not None else "reward_model.annotations"
    need = options is not None and options.weights.perception > 0
    train_rows: int | None = 0
    for role, value in (("train", config.data.train_files), ("validation", config.data.val_files)):
        paths = as_paths(value)
        if not paths:
            checks.append(Check(f"data ({role})", False, f"no {role} file set"))
        for path in paths:
            check, report = check_data(role, path, key, need_annotations=need)
            checks.append(check)
            image_check = check_image_rows(role, path, config) if report is not None else None
            if image_check is not None:
                checks.append(image_check)
            if role == "train":
                train_rows = None if report is None or train_rows is None else train_rows + report.rows
    if train_rows:
        train_paths = as_paths(config.data.train_files)
        try:
            kept = kept_after_overlong_filter(config, train_paths)
        except Exception as error:
            failure = f"verl's RLHFDataset failed on the train files: {error}"
            checks.append(Check("steps per epoch", False, failure))
        else:
            checks.append(check_steps(config, train_rows, kept))
    if options is not None:
        checks.append(check_judge(config, options))
    return checks, settings_lines(config, options)


def render(
    checks: Sequence[Check],
    settings: Sequence[str],
    *,
    title: str = "perception-verl dry run",
    ready: str = "ready to train",
) -> str:
    """The dry-run report: checks, settings, verdict."""
    lines = [title, ""]
    lines += [f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in checks]
    if settings:
        lines += ["", "settings:", *settings]
    failed = [c.name for c in checks if not c.ok]
    lines.append("")
    lines.append(f"DRY RUN FAILED: {', '.join(failed)}" if failed else f"DRY RUN OK: {ready}")
    return "\n".join(lines) + "\n"


def run_main(
    argv: Sequence[str] | None,
    run: Callable[[list[str]], tuple[list[Check], list[str]]],
    doc: str | None,
    **render_options: str,
) -> int:
    """A dry-run command: ``--help`` prints ``doc``; else run the checks, print the report (0: all ok)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        sys.stdout.write(doc or "")
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    checks, settings = run(args)
    sys.stdout.write(render(checks, settings, **render_options))
    return 0 if all(c.ok for c in checks) else 1


def overrides_parser(prog: str, doc: str | None, example: str) -> argparse.ArgumentParser:
    """The ``--help`` of a dry-run command: its doc and an example (the overrides are passed on as given)."""
    return argparse.ArgumentParser(
        prog=prog,
        description=doc,
        usage="%(prog)s [hydra overrides ...]",
        epilog=f"example:\n{example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    return overrides_parser(
        "python -m perception_verl.launch.dryrun",
        __doc__,
        "  DRY_RUN=1 bash recipes/run_qwen25vl_7b.sh   # the recipe's overrides, as it would train\n"
        "  perception-verl dry-run data.train_files=train.parquet data.val_files=test.parquet \\\n"
        "      actor_rollout_ref.model.path=Qwen/Qwen2.5-VL-7B-Instruct \\\n"
        "      reward.reward_manager.source=register reward.reward_manager.name=perception \\\n"
        "      +reward.reward_kwargs.judge_urls=http://judge-host:30000 \\\n"
        "      +reward.reward_kwargs.judge_model=Qwen/Qwen2.5-32B-Instruct-AWQ",
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(argv, run_checks, build_parser().format_help())


if __name__ == "__main__":
    sys.exit(main())
