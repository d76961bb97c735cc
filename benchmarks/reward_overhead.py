"""Reward overhead: our manager with the offline lexical judge vs verl's own naive manager.

    python -m benchmarks.reward_overhead [--json] [--problems 128] [--per-problem 8] [--response-chars 1200]
                                         [--repeats 5]

Both managers are loaded by verl's ``RewardLoopWorker`` (in this process, no Ray) and score the same
1,024-response batch with ``compute_score_batch``: ours with ``reward.reward_kwargs.judge=lexical``
(accuracy with math-verify, format, lexical perception verdicts, repetition penalty), verl's
``NaiveRewardManager`` (``reward.reward_manager.name=naive``, the default) with its default scorer
for ``data_source=hiyouga/geometry3k`` (``verl.utils.reward_score.geo3k``: mathruler's boxed-answer
grader plus a format check). Runs alternate (ours, naive, ours without annotations, ours, ...) so
machine load hits all alike; the ratio is median(ours) / median(naive). "Ours without annotations"
scores the same batch with the annotations removed (no perception judging at all), which separates
the judge's share of our cost from the rest (``ratio_no_judge_vs_naive``). ``ratio_cpu_vs_naive``
compares the process CPU seconds, which a loaded machine stretches less than wall time. ``--latency-ms`` and
``--cap`` are accepted for a uniform command line and ignored (there is no judge server here).

To say where the difference comes from, each scoring function is also timed on its own, serially,
over the batch (``breakdown_ms``, mean milliseconds per response): ours = decode + lexical verdicts
+ ``score_response`` (accuracy with math-verify, format, repetition, each also shown alone);
naive = decode + geo3k (mathruler + format).

verl's geo3k scorer imports ``mathruler``, which verl does not install: ``pip install mathruler``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import _common
from perception_verl.rewards.accuracy import settled_accuracy
from tests.support.verl_harness import build_dataproto


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.add_workload_args(parser)
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs of each manager")
    parser.add_argument("--latency-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--cap", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return parser.parse_args(argv)


def _per_call_ms(fn: Any, items: list[Any]) -> float:
    started = time.perf_counter()
    for item in items:
        fn(item)
    return 1000 * (time.perf_counter() - started) / len(items)


def breakdown(tokenizer: Any, data: Any, workload: _common.Workload) -> dict[str, float]:
    """Mean ms per response of each scoring function, run serially over the batch."""
    from verl.utils.reward_score import default_compute_score

    from perception_verl.judge.lexical import lexical_verdicts
    from perception_verl.rewards.accuracy import accuracy_reward
    from perception_verl.rewards.format import format_reward
    from perception_verl.rewards.repetition import repetition_penalty
    from perception_verl.rewards.total import score_response

    samples = list(workload.samples)
    rows = list(range(len(data)))

    def decode(i: int) -> str:
        item = data[i]
        ids = item.batch["responses"]
        valid = int(item.batch["attention_mask"][-ids.shape[-1] :].sum())
        return tokenizer.decode(ids[:valid], skip_special_tokens=True)

    return {
        "slice_and_decode": _per_call_ms(decode, rows),
        "lexical_verdicts": _per_call_ms(lambda s: lexical_verdicts(s.annotations, s.response), samples),
        "accuracy_math_verify": _per_call_ms(lambda s: accuracy_reward(s.response, s.ground_truth), samples),
        "format": _per_call_ms(lambda s: format_reward(s.response), samples),
        "repetition": _per_call_ms(lambda s: repetition_penalty(s.response), samples),
        "score_response_no_verdicts": _per_call_ms(
            lambda s: score_response(s.response, s.ground_truth, None), samples
        ),
        "geo3k_mathruler": _per_call_ms(
            lambda s: default_compute_score("hiyouga/geometry3k", s.response, s.ground_truth), samples
        ),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:

    workload = _common.workload_from_args(args)
    ours: list[float] = []
    naive: list[float] = []
    bare: list[float] = []
    ours_cpu: list[float] = []
    naive_cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="pv-bench-") as tmp:
        tokenizer_dir, tokenizer, data = _common.prepare(Path(tmp), workload)
        no_annotations = build_dataproto(tokenizer, [replace(s, annotations=None) for s in workload.samples])
        ours_cfg = _common.verl_config(tokenizer_dir, {"judge": "lexical"})
        naive_cfg = _common.verl_config(tokenizer_dir, None)
        asyncio.run(_common.timed_batch(ours_cfg, data[:8]))  # warm-up: lazy imports and parser tables
        asyncio.run(_common.timed_batch(naive_cfg, data[:8]))
        for _ in range(args.repeats):
            wall, cpu, our_scores = asyncio.run(_common.timed_batch(ours_cfg, data))
            ours.append(wall)
            ours_cpu.append(cpu)
            wall, cpu, naive_scores = asyncio.run(_common.timed_batch(naive_cfg, data))
            naive.append(wall)
            naive_cpu.append(cpu)
            bare.append(asyncio.run(_common.timed_batch(ours_cfg, no_annotations))[0])
        parts = breakdown(tokenizer, data, workload)
    ours_s, naive_s = statistics.median(ours), statistics.median(naive)
    return {
        "responses_scored": len(our_scores),
        "naive_responses_scored": len(naive_scores),
        "ours_s": ours_s,
        "naive_s": naive_s,
        "ratio_vs_naive": ours_s / naive_s,
        "ours_no_annotations_s": statistics.median(bare),
        "ratio_no_judge_vs_naive": statistics.median(bare) / naive_s,
        # CPU seconds of this process (a loaded machine stretches wall time, less so CPU time; checks
        # sent to accuracy worker processes are not in it: see accuracy_checks_in_workers).
        "ours_cpu_s": statistics.median(ours_cpu),
        "naive_cpu_s": statistics.median(naive_cpu),
        "ratio_cpu_vs_naive": statistics.median(ours_cpu) / statistics.median(naive_cpu),
        "accuracy_checks_in_workers": sum(
            settled_accuracy(s.response, s.ground_truth) is None for s in workload.samples
        ),
        "ours_runs_s": ours,
        "naive_runs_s": naive,
        "ours_per_response_ms": 1000 * ours_s / len(our_scores),
        "naive_per_response_ms": 1000 * naive_s / len(naive_scores),
        "breakdown_ms": parts,
        "repeats": args.repeats,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    _common.emit_table(
        f"reward overhead: {result['responses_scored']} responses, lexical judge, median of {args.repeats}",
        [
            ("ours (PerceptionRewardManager) s", result["ours_s"]),
            ("verl naive manager (geo3k) s", result["naive_s"]),
            ("ratio ours / naive", result["ratio_vs_naive"]),
            ("ours without annotations (no judging) s", result["ours_no_annotations_s"]),
            ("ratio ours without judging / naive", result["ratio_no_judge_vs_naive"]),
            ("ratio of process CPU, ours / naive", result["ratio_cpu_vs_naive"]),
            ("ours per response ms", result["ours_per_response_ms"]),
            ("naive per response ms", result["naive_per_response_ms"]),
        ],
    )
    _common.emit_table(
        "serial cost per response, ms",
        [(name, value) for name, value in result["breakdown_ms"].items()],
    )
    if args.json:
        _common.emit_json(result)


if __name__ == "__main__":
    main()
