"""Judge prefill: our prompt layout vs layouts that put the response earlier, under a prefix-cache model.

    python -m benchmarks.judge_prefill [--json] [--problems 128] [--per-problem 8] [--response-chars 1200]
                                       [--latency-ms 20]
                                       [--cap 64] [--time-scale 10] [--prefill-tok-s 5000]
                                       [--decode-tok-s 40] [--cache-tokens 190000]

The loopback judge (own process) prices every request with :class:`prefill_model.PrefillLatencyModel`
(a 32B AWQ judge on one GPU: prefix cache, one prefill queue, per-sequence decode; ``--latency-ms``
is its fixed base cost; see that module for the parameters and their source). For each layout a
fresh server (cold cache) is started and verl's ``RewardLoopWorker`` scores the whole batch with our
manager (``judge=sglang``, dedupe on), exactly as in ``judge_throughput.py``. The client always
sends our layout; for the other layouts the server prices the same (facts, response) pair as if it
had been laid out that way (:mod:`tests.support.layouts`), so the runs differ only in what the cache
can reuse:

- ``ours``: system prompt, facts, response last;
- ``response_first``: the response opens the prompt (``cached_share_response_first``, ``speedup``);
- ``system_then_response``: system prompt, then the response before the facts (reported too: a
  milder layout that still shares the system prompt).

Reported per layout: cached-token share (cached / prompt tokens, as SGLang counts them), wall time,
and the modelled prefill busy time (unscaled seconds of GPU prefill, free of client CPU noise).
``speedup`` = wall(response_first) / wall(ours). ``--time-scale`` divides all modelled durations
(10: a minute of judge time runs in six seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import _common
from benchmarks._judge_server import JudgeServer, ServerSpec
from benchmarks.prefill_model import JudgeCostParams

LAYOUT_RUNS = ("ours", "response_first", "system_then_response")


def add_cost_args(parser: argparse.ArgumentParser) -> None:
    """Options of the judge cost model (shared with ``reward_overlap.py``)."""
    defaults = JudgeCostParams()
    parser.add_argument("--latency-ms", type=float, default=defaults.base_s * 1000, help="base cost")
    parser.add_argument("--cap", type=int, default=64, help="concurrency cap of server and client")
    parser.add_argument("--time-scale", type=float, default=10.0, help="divide modelled durations by this")
    parser.add_argument("--prefill-tok-s", type=float, default=defaults.prefill_tok_per_s)
    parser.add_argument("--decode-tok-s", type=float, default=defaults.decode_tok_per_s)
    parser.add_argument("--cache-tokens", type=int, default=defaults.cache_tokens)


def cost_params(args: argparse.Namespace) -> JudgeCostParams:
    return JudgeCostParams(
        base_s=args.latency_ms / 1000.0,
        prefill_tok_per_s=args.prefill_tok_s,
        decode_tok_per_s=args.decode_tok_s,
        cache_tokens=args.cache_tokens,
        time_scale=args.time_scale,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.add_workload_args(parser)
    add_cost_args(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:

    params = cost_params(args)
    workload = _common.workload_from_args(args)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="pv-bench-") as tmp:
        tokenizer_dir, _, data = _common.prepare(Path(tmp), workload)
        for layout in LAYOUT_RUNS:
            spec = ServerSpec(cap=args.cap, cost=params, cost_layout=None if layout == "ours" else layout)
            with JudgeServer(spec) as server:
                config = _common.judge_config(tokenizer_dir, server, args.cap)
                wall, _, _ = asyncio.run(_common.timed_batch(config, data))
                model = server.stats()["model"]
            results[layout] = {"wall_s": wall, **model}
    ours, first, system = results["ours"], results["response_first"], results["system_then_response"]
    return {
        "cached_share_ours": ours["cached_share"],
        "cached_share_response_first": first["cached_share"],
        "cached_share_system_then_response": system["cached_share"],
        "wall_ours_s": ours["wall_s"],
        "wall_response_first_s": first["wall_s"],
        "wall_system_then_response_s": system["wall_s"],
        "speedup": first["wall_s"] / ours["wall_s"],
        "speedup_vs_system_then_response": system["wall_s"] / ours["wall_s"],
        "prefill_busy_ours_s": ours["prefill_busy_s"],
        "prefill_busy_response_first_s": first["prefill_busy_s"],
        "prefill_busy_system_then_response_s": system["prefill_busy_s"],
        "modelled_speedup": first["prefill_busy_s"] / ours["prefill_busy_s"],
        "requests": ours["requests"],
        "prompt_tokens": ours["prompt_tokens"],
        "responses": len(workload.samples),
        "time_scale": args.time_scale,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    rows: list[tuple[str, Any]] = []
    for layout in LAYOUT_RUNS:
        rows += [
            (f"{layout}: cached-token share", result[f"cached_share_{layout}"]),
            (f"{layout}: wall s", result[f"wall_{layout}_s"]),
            (f"{layout}: modelled prefill busy s (unscaled)", result[f"prefill_busy_{layout}_s"]),
        ]
    rows += [
        ("speed-up ours vs response_first (wall)", result["speedup"]),
        ("speed-up ours vs system_then_response (wall)", result["speedup_vs_system_then_response"]),
        ("speed-up ours vs response_first (prefill busy)", result["modelled_speedup"]),
    ]
    _common.emit_table(
        f"judge prefill: {result['responses']} responses, {result['requests']} requests, "
        f"time scale {args.time_scale:g}",
        rows,
    )
    if args.json:
        _common.emit_json(result)


if __name__ == "__main__":
    main()
