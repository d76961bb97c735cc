"""Inputs of the tiny CPU twin of the GRPO run (``recipes/run_tiny_cpu.sh``), built offline.

- ``source``: a Geometry3K-shaped source (hub layout: ``data/<split>-00000-of-00001.parquet``) and the
  published annotation form (``visual_key_info``) from the sample problems of
  :mod:`perception_verl_demo.samples`; ``data_prep/build_geometry3k.py`` turns them into verl rows.
- ``policy``: a tiny Qwen2.5-VL (:mod:`perception_verl_demo.vl_policy`: random weights, a tokenizer
  trained on the sample texts, a saved processor), then *warmed* with the images, under verl's M-RoPE
  positions, on sample responses weighted by quality level (:data:`WARMUP_WEIGHTS`), so verl's rollouts
  are well formed yet differ in reward, and GRPO's advantages (and gradient) are not all zero.

``python -m perception_verl_demo.twin source OUT`` / ``policy OUT --train-file PARQUET`` /
``table TWIN_DIR/metrics.jsonl`` (the per-step reward table of a run).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")

# The only verl config keys where the twin (recipes/run_tiny_cpu.sh) may differ from the GPU recipe
# (recipes/run_qwen25vl_7b.sh): sizes, paths, logging and the CPU device. Pinned by
# tests/test_recipes_twin.py, which composes both configs and compares every key.
SIZE_DEVICE_KEYS = (
    # size
    "data.train_batch_size",
    "data.max_prompt_length",
    "data.max_response_length",
    "data.dataloader_num_workers",
    "actor_rollout_ref.actor.ppo_mini_batch_size",
    "actor_rollout_ref.rollout.n",
    "actor_rollout_ref.actor.optim.lr",
    "trainer.total_epochs",
    "trainer.save_freq",
    "trainer.test_freq",
    "trainer.val_before_train",
    # paths and logging
    "actor_rollout_ref.model.path",
    "data.train_files",
    "data.val_files",
    "trainer.default_local_dir",
    "trainer.rollout_data_dir",
    "trainer.experiment_name",
    "trainer.logger",
    # device: CPU through verl_cpu_platform, one fake GPU, gloo
    "trainer.device",
    "trainer.n_gpus_per_node",
    "actor_rollout_ref.rollout.tensor_model_parallel_size",
    "actor_rollout_ref.model.override_config.attn_implementation",
    "actor_rollout_ref.model.use_remove_padding",
    "actor_rollout_ref.model.enable_gradient_checkpointing",
    "actor_rollout_ref.actor.strategy",
    "actor_rollout_ref.ref.strategy",
    "actor_rollout_ref.actor.use_torch_compile",
    "actor_rollout_ref.ref.use_torch_compile",
    "actor_rollout_ref.rollout.enable_sleep_mode",
    "actor_rollout_ref.rollout.enforce_eager",
    "actor_rollout_ref.rollout.agent.num_workers",
    "reward.num_workers",
    "transfer_queue.backend.SimpleStorage.num_data_storage_units",
    "ray_kwargs.ray_init.num_cpus",
    "ray_kwargs.ray_init.num_gpus",
)


def source_records(split: str) -> list[dict]:
    """Geometry3K-shaped records (images, problem, answer, id, choices, ground_truth) of the samples."""
    from perception_verl_demo.samples import PROBLEMS, figure_png

    return [
        {
            "images": [{"bytes": figure_png(problem), "path": None}],
            "problem": problem.problem,
            "answer": problem.answer,
            "id": index,
            "choices": [problem.answer, problem.wrong_answer],
            "ground_truth": "A",
        }
        for index, problem in enumerate(PROBLEMS)
    ]


def annotation_records() -> list[dict]:
    """The published annotation form: the train records plus ``<infoK>`` tagged ``visual_key_info``."""
    from perception_verl_demo.samples import PROBLEMS

    records = source_records("train")
    return [
        {
            "images": record["images"],
            "problem": record["problem"],
            "answer": record["answer"],
            "visual_key_info": "".join(
                f"<info{k}>{fact}</info{k}>" for k, fact in enumerate(problem.annotations, start=1)
            ),
        }
        for problem, record in zip(PROBLEMS, records, strict=True)
    ]


def write_source(out: Path) -> tuple[Path, Path]:
    """Write ``out/geometry3k`` (hub layout) and ``out/annotations.parquet``; return both paths."""
    from datasets import Dataset, Features, Image, List, Value

    base = {"images": List(Image()), "problem": Value("string"), "answer": Value("string")}
    source_features = Features(
        {**base, "id": Value("int64"), "choices": List(Value("string")), "ground_truth": Value("string")}
    )
    source = out / "geometry3k"
    (source / "data").mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        Dataset.from_list(source_records(split), features=source_features).to_parquet(
            str(source / "data" / f"{split}-00000-of-00001.parquet")
        )
    annotations = out / "annotations.parquet"
    Dataset.from_list(
        annotation_records(), features=Features({**base, "visual_key_info": Value("string")})
    ).to_parquet(str(annotations))
    return source, annotations


# Warm-up mix of the twin's policy by quality level (perception_verl_demo.samples): mostly well-formed
# responses that differ in accuracy and in the facts they state, so verl's rollouts are well formed
# (reward/format/mean >= 0.8 at step 1) and still differ in reward (GRPO's advantages are not all zero).
WARMUP_WEIGHTS = {"perceptive": 1.0, "correct": 1.0, "wrong": 1.0, "repetitive": 0.0, "malformed": 0.0}


def warmup_texts() -> list[str]:
    """Every sample response of every problem (one per quality level)."""
    from perception_verl_demo.samples import PROBLEMS, sample_responses

    return [response.text for problem in PROBLEMS for response in sample_responses(problem)]


def rows_of(train_file: Path) -> list[tuple[list[dict], list[bytes]]]:
    """The chat prompts of a verl parquet with each row's image bytes, in row order."""
    import pyarrow.parquet as pq

    table = pq.read_table(str(train_file), columns=["prompt", "images"])
    return [
        (list(prompt), [image["bytes"] for image in images or []])
        for prompt, images in zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True)
    ]


def warmup_examples(train_file: Path) -> list:
    """The twin's warm-up examples: each sample response of each training row, weighted by level."""
    from perception_verl_demo.samples import PROBLEMS, sample_responses
    from perception_verl_demo.vl_policy import WarmupExample

    examples = []
    for prompt, images in rows_of(train_file):
        text = prompt[-1]["content"]
        problem = next((p for p in PROBLEMS if p.problem.replace("<image>", "") in text), None)
        if problem is None:
            continue
        examples.extend(
            WarmupExample(prompt, images, response.text, WARMUP_WEIGHTS[response.level])
            for response in sample_responses(problem)
            if WARMUP_WEIGHTS[response.level] > 0
        )
    if not examples:
        raise ValueError(f"no prompt of {train_file} matches a sample problem")
    return examples


def build_policy(out: Path, train_file: Path, *, steps: int = 150, seed: int = 0) -> dict:
    """Save the warmed tiny Qwen2.5-VL policy (model, tokenizer, processor) at ``out``; return a summary."""
    from perception_verl_demo.fast_vl import warm_up_cached
    from perception_verl_demo.vl_policy import build_vl_policy

    rows = rows_of(train_file)
    corpus = [*warmup_texts(), *(m["content"] for prompt, _ in rows for m in prompt)]
    build_vl_policy(out, corpus, seed=seed)
    examples = warmup_examples(train_file)
    summary = warm_up_cached(out, examples, steps=steps, lr=3e-3, batch_size=len(examples), seed=seed)
    (out / "warmup.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# The per-step table of the demo (scripts/demo.sh): column title and verl/perception-verl metric.
TABLE_COLUMNS = (
    ("step", "training/global_step"),
    ("score", "reward/score/mean"),
    ("accuracy", "reward/accuracy/mean"),
    ("format", "reward/format/mean"),
    ("perception", "reward/perception/mean"),
    ("repetition", "reward/repetition/mean"),
    ("judge failed", "reward/judge_failed/rate"),
    ("grad norm", "actor/grad_norm"),
    ("rollout-actor diff", "training/rollout_probs_diff_mean"),
    ("prompt tokens", "prompt_length/mean"),
    ("step s", "timing_s/step"),
)


def step_table(metrics_file: Path) -> str:
    """A plain-text table of the reward components per step, from verl's ``file`` logger lines."""
    records = [json.loads(line) for line in Path(metrics_file).read_text().splitlines() if line.strip()]
    steps = [record["data"] for record in records if record.get("data")]
    if not steps:
        raise ValueError(f"{metrics_file} holds no step metrics")
    rows = [[title for title, _ in TABLE_COLUMNS]]
    for data in steps:
        cells = []
        for _, key in TABLE_COLUMNS:
            value = data.get(key)
            if value is None:
                cells.append("-")
            else:
                cells.append(f"{value:.0f}" if key.endswith("global_step") else f"{value:.3g}")
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    source = sub.add_parser("source", help="write the Geometry3K-shaped source and annotations")
    source.add_argument("out", type=Path)
    policy = sub.add_parser("policy", help="build and warm the tiny policy")
    policy.add_argument("out", type=Path)
    policy.add_argument("--train-file", type=Path, required=True)
    policy.add_argument("--steps", type=int, default=150)
    table = sub.add_parser("table", help="print the per-step reward table of a twin run")
    table.add_argument("metrics", type=Path, help="verl's file logger output (TWIN_DIR/metrics.jsonl)")
    args = parser.parse_args(argv)
    if args.command == "table":
        sys.stdout.write(step_table(args.metrics) + "\n")
    elif args.command == "source":
        paths = write_source(args.out)
        logger.info("wrote %s and %s", *paths)
    else:
        summary = build_policy(args.out, args.train_file, steps=args.steps)
        logger.info("warmed the tiny policy: %s", summary)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
