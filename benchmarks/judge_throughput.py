"""Judge throughput: our reward manager against the judge's limit and against a naive client.

    python -m benchmarks.judge_throughput [--json] [--problems 128] [--per-problem 8]
                                          [--response-chars 1200] [--latency-ms 100] [--cap 64]
                                          [--repeats 3]

The loopback SGLang-shaped judge (own process) answers every request after a fixed latency, at
most ``cap`` at a time (more wait in its queue, as SGLang's scheduler does). Our side: verl's
``RewardLoopWorker`` loads :class:`PerceptionRewardManager` (``judge=sglang``, client cap ``cap``)
and scores the whole batch with ``compute_score_batch`` (``run_single`` for every sample,
concurrently, on one event loop), after the judge's one-time health check. Reported:

- wall time; ideal = ceil(distinct requests / cap) x latency; efficiency = ideal / wall;
- requests the server received vs distinct (annotations, response) pairs vs responses scored;
- shared-prefix share: per problem, the longest common prefix of the prompts our judge sends for
  it (system + user text as sent; identical rollouts are asked once), counted once per prompt,
  over all prompt characters sent.

Baseline, same process, same server, same verl reward loop (:mod:`_baseline`): one request per
response (no dedupe), a fresh HTTP connection per request (a new aiohttp session each time), the
response before the facts (``response_first`` layout), at most ``cap`` requests in flight (the same
cap, so the comparison is about the client, not about overloading the server); it scores each
sample with the same reward functions. Speed-up = baseline wall / our wall. Both must give the same
scores (``scores_match``). Ours and the baseline run alternately ``--repeats`` times; walls are medians.
(The paper's reference client is less naive than this baseline: it sends system prompt, facts,
then response through one shared connection pool; it does not deduplicate, and it scores the
batch only after the rollout, which ``reward_overlap.py`` measures.)

CPU: ``cpu_s`` is this process's CPU time (all threads) during our median run. With Python's
interpreter lock the client's local work per sample (verl's DataProto slicing, decoding, math-verify,
HTTP) runs on one core at a time, so ``cpu_s`` close to ``wall_s`` means the run is CPU-bound, not
judge-bound; ``efficiency_vs_bound`` = max(ideal, cpu_s) / wall.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import _common
from benchmarks._judge_server import JudgeServer, ServerSpec


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.add_workload_args(parser)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--cap", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of ours and the baseline")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return parser.parse_args(argv)


def baseline_config(tokenizer_dir: Path, url: str, model: str, cap: int) -> Any:
    from tests.support.verl_harness import compose_trainer_config

    return compose_trainer_config(
        [
            "reward.reward_manager.source=importlib",
            "reward.reward_manager.module.path=pkg://benchmarks._baseline",
            "reward.reward_manager.name=NaiveJudgeRewardManager",
            f"actor_rollout_ref.model.path={tokenizer_dir}",
            f"+reward.reward_kwargs.judge_urls='{url}'",
            f"+reward.reward_kwargs.judge_model='{model}'",
            f"+reward.reward_kwargs.max_concurrency={cap}",
        ]
    )


def run(args: argparse.Namespace) -> dict[str, Any]:

    workload = _common.workload_from_args(args)
    latency = args.latency_ms / 1000.0
    ours_walls: list[float] = []
    ours_cpu: list[float] = []
    base_walls: list[float] = []
    ours_requests: list[int] = []
    base_requests: list[int] = []
    with tempfile.TemporaryDirectory(prefix="pv-bench-") as tmp:
        tokenizer_dir, _, data = _common.prepare(Path(tmp), workload)
        distinct = _common.distinct_pairs(workload.samples)
        share = _common.shared_prefix_share(_common.sent_prompt_groups(workload))
        with JudgeServer(ServerSpec(latency_s=latency, cap=args.cap)) as server:
            ours_cfg = _common.judge_config(tokenizer_dir, server, args.cap)
            base_cfg = baseline_config(tokenizer_dir, server.url, server.model, args.cap)
            count = server.stats()["chat_requests"]
            for _ in range(args.repeats):
                wall, cpu, ours = asyncio.run(_common.timed_batch(ours_cfg, data))
                ours_walls.append(wall)
                ours_cpu.append(cpu)
                now = server.stats()["chat_requests"]
                ours_requests.append(now - count)
                wall, _, baseline = asyncio.run(_common.timed_batch(base_cfg, data))
                base_walls.append(wall)
                count, now = now, server.stats()["chat_requests"]
                base_requests.append(now - count)
                count = now
            max_in_flight = server.stats()["max_in_flight"]
    ideal = math.ceil(distinct / args.cap) * latency
    wall = statistics.median(ours_walls)
    cpu = ours_cpu[ours_walls.index(wall)] if wall in ours_walls else statistics.median(ours_cpu)
    base_wall = statistics.median(base_walls)
    return {
        "responses_scored": len(ours),
        "distinct_pairs": distinct,
        "requests_sent": max(ours_requests),
        "requests_sent_min": min(ours_requests),
        "baseline_requests_sent": max(base_requests),
        "wall_s": wall,
        "walls_s": ours_walls,
        "ideal_s": ideal,
        "efficiency": ideal / wall,
        "cpu_s": cpu,
        "efficiency_vs_bound": max(ideal, cpu) / wall,
        "baseline_wall_s": base_wall,
        "baseline_walls_s": base_walls,
        "speedup_vs_baseline": base_wall / wall,
        "shared_prefix_share": share,
        "scores_match": all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(ours, baseline, strict=True)),
        "server_max_in_flight": max_in_flight,
        "latency_ms": args.latency_ms,
        "cap": args.cap,
        "repeats": args.repeats,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    _common.emit_table(
        f"judge throughput: {result['responses_scored']} responses, "
        f"latency {args.latency_ms:g} ms, cap {args.cap}",
        [
            ("responses scored", result["responses_scored"]),
            ("distinct (annotations, response) pairs", result["distinct_pairs"]),
            ("requests sent (ours)", result["requests_sent"]),
            ("requests sent (baseline)", result["baseline_requests_sent"]),
            ("ideal wall s", result["ideal_s"]),
            ("our wall s", result["wall_s"]),
            ("efficiency (ideal / ours)", result["efficiency"]),
            ("our process CPU s (all threads)", result["cpu_s"]),
            ("efficiency vs max(ideal, CPU s)", result["efficiency_vs_bound"]),
            ("baseline wall s", result["baseline_wall_s"]),
            ("speed-up vs baseline", result["speedup_vs_baseline"]),
            ("shared-prefix share of prompt chars", result["shared_prefix_share"]),
            ("same scores as baseline", result["scores_match"]),
        ],
    )
    if args.json:
        _common.emit_json(result)


if __name__ == "__main__":
    main()
