"""CPU smoke run: ``python -m perception_verl_demo.smoke`` (or ``bash recipes/smoke_cpu.sh``).

Without a GPU, a download or a judge server, shows the perception reward working inside verl:

1. writes a small sample dataset (three geometry problems, PIL-drawn figures, annotations) as a
   verl parquet, and trains a tiny tokenizer;
2. builds a rollout-shaped ``DataProto`` holding five responses per problem, one per quality level
   (perceptive, correct, wrong, repetitive, malformed), each problem one GRPO group;
3. composes verl's trainer config with the recipe's reward overrides and starts verl's own
   ``RewardLoopManager`` on a local Ray cluster (CPU), which loads our reward manager by module path
   and scores the batch with the offline lexical judge (or an SGLang or vLLM judge at ``--judge-url``,
   optionally with ``--constrained`` verdicts and ``--judge-server``);
4. computes verl's GRPO advantages from the scores and prints a table of every reward component,
   then the step metrics the trainer would log.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception_verl.client.dialects import SERVER_SETTINGS
from perception_verl_demo.rollout import object_array, rollout_tensors

COLUMNS = ("score", "accuracy", "format", "perception", "repetition", "judge_failed")
LEGEND = (
    "score = 0.9 accuracy + 0.1 format + 0.7 perception + repetition (the penalty, <= 0);\n"
    "each problem's five responses form one GRPO group:\n"
    "advantage = (score - group mean) / group std, as verl computes it.\n\n"
)


@dataclass(frozen=True)
class SmokeSample:
    """One row of the smoke batch: the dataset row's reward fields and one response."""

    uid: str
    level: str
    messages: list[dict[str, Any]]
    response: str
    data_source: str
    reward_model: Mapping[str, Any]
    extra_info: Mapping[str, Any]


def load_samples(parquet: Path) -> list[SmokeSample]:
    """Read the sample dataset back and pair every row with its responses of each quality level."""
    import pyarrow.parquet as pq

    from perception_verl_demo.samples import PROBLEMS, sample_responses

    by_id = {problem.id: problem for problem in PROBLEMS}
    samples = []
    for row in pq.read_table(parquet).to_pylist():
        problem = by_id[row["extra_info"]["id"]]
        for response in sample_responses(problem):
            samples.append(
                SmokeSample(
                    uid=problem.id,
                    level=response.level,
                    messages=list(row["prompt"]),
                    response=response.text,
                    data_source=row["data_source"],
                    reward_model=row["reward_model"],
                    extra_info=row["extra_info"],
                )
            )
    return samples


def build_batch(tokenizer: Any, samples: Sequence[SmokeSample]) -> Any:
    """A ``DataProto`` shaped like the rollout's output: left-padded prompts, right-padded responses + EOS."""
    from verl import DataProto

    prompts = [
        tokenizer.encode(
            tokenizer.apply_chat_template(s.messages, add_generation_prompt=True, tokenize=False),
            add_special_tokens=False,
        )
        for s in samples
    ]
    eos = tokenizer.eos_token_id
    responses = [[*tokenizer.encode(s.response, add_special_tokens=False), eos] for s in samples]
    return DataProto.from_dict(
        tensors=rollout_tensors(prompts, responses, tokenizer.pad_token_id),
        non_tensors={
            "data_source": object_array([s.data_source for s in samples]),
            "reward_model": object_array([dict(s.reward_model) for s in samples]),
            "extra_info": object_array([dict(s.extra_info) for s in samples]),
            "raw_prompt": object_array([s.messages for s in samples]),
            "uid": object_array([s.uid for s in samples]),
        },
    )


def smoke_overrides(
    tokenizer_path: Path,
    judge_url: str | None,
    judge_model: str | None,
    num_workers: int,
    *,
    constrained: bool = False,
    judge_server: str = "auto",
) -> list[str]:
    """The recipe's reward overrides, pointed at the tiny tokenizer and the chosen judge."""
    overrides = [
        "algorithm.adv_estimator=grpo",
        f"actor_rollout_ref.model.path={tokenizer_path}",
        "reward.reward_manager.source=importlib",
        "reward.reward_manager.module.path=pkg://perception_verl.integration.manager",
        "reward.reward_manager.name=PerceptionRewardManager",
        f"reward.num_workers={num_workers}",
        "+reward.reward_kwargs.weights.perception=0.7",
    ]
    if judge_url:
        overrides += [
            "+reward.reward_kwargs.judge=sglang",
            f'+reward.reward_kwargs.judge_urls="{judge_url}"',
            f'+reward.reward_kwargs.judge_model="{judge_model}"',
            f"+reward.reward_kwargs.judge_server={judge_server}",
            f"+reward.reward_kwargs.constrained={str(constrained).lower()}",
        ]
    else:
        overrides.append("+reward.reward_kwargs.judge=lexical")
    return overrides


def score_on_ray(config: Any, batch: Any, num_cpus: int) -> Any:
    """Score ``batch`` with verl's ``RewardLoopManager`` on a local Ray cluster started (and stopped) here."""
    import ray
    from verl.experimental.reward_loop import RewardLoopManager

    import perception_verl

    package_root = str(Path(perception_verl.__file__).resolve().parents[1])
    python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": python_path, "TOKENIZERS_PARALLELISM": "false"}},
    )
    try:
        return RewardLoopManager(config).compute_rm_score(batch)
    finally:
        ray.shutdown()


def grpo_advantages(batch: Any, scored: Any) -> np.ndarray:
    """verl's GRPO advantage per sample, from the reward loop's token-level scores."""
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    prompt_len = batch.batch["prompts"].shape[1]
    response_mask = batch.batch["attention_mask"][:, prompt_len:]
    advantages, _ = compute_grpo_outcome_advantage(
        token_level_rewards=scored.batch["rm_scores"],
        response_mask=response_mask,
        index=batch.non_tensor_batch["uid"],
    )
    return advantages[:, 0].numpy()


def render_table(
    samples: Sequence[SmokeSample], extras: Mapping[str, np.ndarray], advantages: np.ndarray
) -> str:
    """One line per sample: problem, quality level, reward components, GRPO advantage."""
    columns = " ".join(f"{c:>12s}" for c in COLUMNS)
    header = f"{'problem':9s} {'response':11s} {columns} {'advantage':>10s}"
    lines = [header, "-" * len(header)]
    previous = None
    for i, sample in enumerate(samples):
        if previous is not None and sample.uid != previous:
            lines.append("")
        previous = sample.uid
        values = []
        for column in COLUMNS:
            value = float(extras[column][i])
            if column == "perception" and float(extras["perception_excluded"][i]):
                values.append(f"{'excluded':>12s}")
            else:
                values.append(f"{value:12.3f}")
        lines.append(f"{sample.uid:9s} {sample.level:11s} " + " ".join(values) + f" {advantages[i]:10.3f}")
    return "\n".join(lines)


def render_metrics(metrics: Mapping[str, float]) -> str:
    return "\n".join(f"  {name:40s} {value:.4f}" for name, value in sorted(metrics.items()))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m perception_verl_demo.smoke",
        description="Score sample responses with the perception reward inside verl's reward loop, on CPU.",
    )
    parser.add_argument("--out-dir", type=Path, default=None, help="keep the sample data and tokenizer here")
    parser.add_argument(
        "--judge-url", default=None, help="an SGLang judge (comma list); default: the lexical judge"
    )
    parser.add_argument(
        "--judge-model", default="Qwen/Qwen2.5-32B-Instruct-AWQ", help="model served at --judge-url"
    )
    parser.add_argument(
        "--judge-server", choices=SERVER_SETTINGS, default="auto",
        help="dialect of the server at --judge-url (default auto: asked at the health check)",
    )  # fmt: skip
    parser.add_argument("--constrained", action="store_true", help="regex-constrained judge verdicts")
    parser.add_argument("--num-workers", type=int, default=1, help="verl reward-loop workers (Ray actors)")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    return parser.parse_args(list(argv))


def run(args: argparse.Namespace, work_dir: Path) -> int:
    from perception_verl.integration.metrics import reward_metrics
    from perception_verl.launch.checks import check_data
    from perception_verl.launch.compose import compose_trainer_config
    from perception_verl_demo.samples import write_sample_dataset
    from perception_verl_demo.tiny_tokenizer import build_tiny_tokenizer

    emit = sys.stdout.write
    data = write_sample_dataset(work_dir / "train.parquet")
    tokenizer_path = build_tiny_tokenizer(work_dir / "tokenizer")
    data_check, _ = check_data("sample", str(data), "reward_model.annotations", need_annotations=True)
    emit(f"sample data: {data_check.detail}\n")
    if not data_check.ok:
        return 1
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
    samples = load_samples(data)
    batch = build_batch(tokenizer, samples)
    config = compose_trainer_config(
        smoke_overrides(
            tokenizer_path,
            args.judge_url,
            args.judge_model,
            args.num_workers,
            constrained=args.constrained,
            judge_server=args.judge_server,
        )
    )
    judge = "lexical judge"
    if args.judge_url:
        mode = "constrained" if args.constrained else "unconstrained"
        judge = f"HTTP judge {args.judge_model} at {args.judge_url} ({args.judge_server} server, {mode})"
    emit(f"scoring {len(samples)} responses with verl's RewardLoopManager on Ray (CPU), {judge}\n\n")
    scored = score_on_ray(config, batch, args.num_cpus)
    extras = {key: scored.non_tensor_batch[key] for key in scored.meta_info["reward_extra_keys"]}
    advantages = grpo_advantages(batch, scored)
    emit(render_table(samples, extras, advantages) + "\n")
    emit(LEGEND)
    emit("step metrics the trainer logs for this batch:\n")
    emit(render_metrics(reward_metrics(extras, scored.non_tensor_batch.get("data_source"))) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        return run(args, args.out_dir)
    with tempfile.TemporaryDirectory(prefix="perception_verl_smoke_") as folder:
        return run(args, Path(folder))


if __name__ == "__main__":
    sys.exit(main())
