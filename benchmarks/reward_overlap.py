"""Reward latency behind rollout: scoring each response as it finishes vs scoring the batch at the end.

    python -m benchmarks.reward_overlap [--json] [--problems 128] [--per-problem 8] [--response-chars 1200]
                                        [--rollout-s 60]
                                        [--latency-ms 20] [--cap 64] [--time-scale 10]
                                        [--prefill-tok-s 5000] [--decode-tok-s 40]

Simulated rollout: every response finishes at a time proportional to its length (a batched engine
decodes every sequence at about the same speed, so finish time ~ generated tokens); the longest
finishes at ``--rollout-s`` simulated seconds. The workload's lengths are log-normal, so arrivals
are too: a dense middle and a sparse tail of long answers.

The judge is the loopback server (own process) with the prefix-cache cost model of
:mod:`prefill_model` (a 32B AWQ judge on one GPU by default; ``--prefill-tok-s 10000`` is about an
H100 or two A800s). ``--time-scale`` divides every simulated duration (arrivals and judge costs
alike), so a 60 s rollout runs in 6 s; tails are reported in run seconds and in simulated seconds.

(a) ours, streamed: each response is handed to verl's ``RewardLoopWorker.compute_score`` (what
verl's agent loop calls for every finished rollout when the reward loop streams) the moment it
arrives, on one event loop, while later ones are still "generating".
(b) batch: after the last arrival, the whole batch goes through ``compute_score_batch`` at once.
Each mode gets a fresh server (cold cache). Tail = last arrival -> last reward; ratio = tail(b) /
tail(a). A judge round trip is the modelled latency of the median request on an idle server with
the system prompt cached (base + prefill of its facts and response + decode of its verdict).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import _common
from benchmarks._judge_server import JudgeServer, ServerSpec
from benchmarks.judge_prefill import add_cost_args, cost_params
from benchmarks.prefill_model import JudgeCostParams, idle_round_trip_s, prompt_tokens
from perception_verl.judge.prompt import build_messages
from tests.support.fake_sglang import format_verdicts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.add_workload_args(parser)
    parser.add_argument("--rollout-s", type=float, default=60.0, help="simulated time of the last arrival")
    add_cost_args(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return parser.parse_args(argv)


def arrival_times(workload: _common.Workload, rollout_s: float) -> list[float]:
    """Simulated finish time of each response: proportional to its length, the longest at ``rollout_s``."""
    lengths = [len(s.response) for s in workload.samples]
    longest = max(lengths)
    return [rollout_s * n / longest for n in lengths]


def round_trip_s(workload: _common.Workload, params: JudgeCostParams) -> float:
    """Unscaled idle latency of the median request, system prompt cached."""
    costs = []
    for sample in workload.samples:
        facts, response = _common.pair_key(sample)
        user = build_messages(facts, response)[1]["content"]
        costs.append(idle_round_trip_s(params, prompt_tokens(user), len(format_verdicts([1] * len(facts)))))
    return statistics.median(costs)


async def streamed(config: Any, data: Any, arrivals: list[float]) -> tuple[float, float]:
    """(last arrival, last reward) in run seconds from the rollout start, scoring on arrival."""
    worker = _common.reward_worker(config)
    manager = worker.reward_manager
    await manager.judge()
    loop = asyncio.get_running_loop()
    handed: list[float] = []
    done: list[float] = []
    try:
        start = loop.time()

        async def arrive(i: int) -> None:
            await asyncio.sleep(max(0.0, start + arrivals[i] - loop.time()))
            handed.append(loop.time() - start)
            await worker.compute_score(data[i : i + 1])
            done.append(loop.time() - start)

        await asyncio.gather(*(arrive(i) for i in range(len(data))))
        return max(handed), max(done)
    finally:
        await manager.close()


def run(args: argparse.Namespace) -> dict[str, Any]:

    params = cost_params(args)
    scale = args.time_scale
    workload = _common.workload_from_args(args)
    arrivals = [t / scale for t in arrival_times(workload, args.rollout_s)]
    with tempfile.TemporaryDirectory(prefix="pv-bench-") as tmp:
        tokenizer_dir, _, data = _common.prepare(Path(tmp), workload)
        spec = ServerSpec(cap=args.cap, cost=params)
        with JudgeServer(spec) as server:
            config = _common.judge_config(tokenizer_dir, server, args.cap)
            last_arrival, last_reward = asyncio.run(streamed(config, data, arrivals))
            stream_stats = server.stats()
        with JudgeServer(spec) as server:
            config = _common.judge_config(tokenizer_dir, server, args.cap)
            tail_batch, _, _ = asyncio.run(_common.timed_batch(config, data))
            batch_stats = server.stats()
    tail_ours = last_reward - last_arrival
    trip = round_trip_s(workload, params) / scale
    return {
        "tail_ours_s": tail_ours,
        "tail_batch_s": tail_batch,
        "ratio": tail_batch / tail_ours,
        "round_trip_s": trip,
        "tail_ours_round_trips": tail_ours / trip,
        "tail_batch_round_trips": tail_batch / trip,
        "tail_ours_simulated_s": tail_ours * scale,
        "tail_batch_simulated_s": tail_batch * scale,
        "last_arrival_s": last_arrival,
        "last_arrival_late_s": last_arrival - max(arrivals),
        "requests_streamed": stream_stats["chat_requests"],
        "requests_batch": batch_stats["chat_requests"],
        "cached_share_streamed": stream_stats["model"]["cached_share"],
        "cached_share_batch": batch_stats["model"]["cached_share"],
        "responses": len(workload.samples),
        "rollout_s": args.rollout_s,
        "time_scale": scale,
        "prefill_tok_s": args.prefill_tok_s,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    _common.emit_table(
        f"reward overlap: {result['responses']} responses over a {args.rollout_s:g} s rollout "
        f"(time scale {args.time_scale:g}, prefill {args.prefill_tok_s:g} tok/s)",
        [
            ("judge round trip s (run time)", result["round_trip_s"]),
            ("tail ours, streamed s", result["tail_ours_s"]),
            ("tail ours in round trips", result["tail_ours_round_trips"]),
            ("tail batch after rollout s", result["tail_batch_s"]),
            ("tail batch in round trips", result["tail_batch_round_trips"]),
            ("ratio batch / ours", result["ratio"]),
            ("tail ours, simulated s", result["tail_ours_simulated_s"]),
            ("tail batch, simulated s", result["tail_batch_simulated_s"]),
            ("last arrival handed over late by s", result["last_arrival_late_s"]),
        ],
    )
    if args.json:
        _common.emit_json(result)


if __name__ == "__main__":
    main()
