"""The CPU twin with a real SGLang judge: what the served judge costs a GRPO step, side by side.

Like :mod:`benchmarks.twin_vllm_judge`, with SGLang 0.5.23 on CPU (``.venv-sglang``; radix cache,
``--enable-cache-report --enable-metrics``) serving the tiny random-weight Qwen2 chat model as the
perception judge. Runs ``recipes/run_tiny_cpu.sh`` (``.venv-engine``) twice on the same inputs: with the
embedded lexical judge, and with ``JUDGE_MODE=external`` against the SGLang server with constrained
output in SGLang's dialect (``constrained=True judge_server=sglang``). Prints, per run and step, verl's
step and generation times, mean perception and the judge's counters from verl's logged metrics (the
cached-token share is SGLang's own report), SGLang's counters of the judged prompt tokens, then the ratio
of the step times. The random-weight judge's verdicts are noise under its regex; the point is the served
judge inside verl's trainer. Never in CI (minutes on 2 cores).

    python -m benchmarks.twin_sglang_judge --steps 2 --twin-dir /tmp/twin_sglang
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.twin_learning import per_step
from benchmarks.twin_vllm_judge import COLUMNS, table, timed_twin
from tests.support.engine_env import engine_python, sglang_python
from tests.support.sglang_server import prefix_cache_counters, start_tiny_sglang_judge

SERVED_NAME = "tiny-judge"
SGLANG_JUDGE = ("+reward.reward_kwargs.constrained=True", "+reward.reward_kwargs.judge_server=sglang")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="GRPO steps of each run")
    parser.add_argument("--twin-dir", type=Path, default=Path("/tmp/perception_verl_twin_sglang_judge"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    python = sglang_python()
    if python is None:
        sys.stderr.write("error: no .venv-sglang with sglang (run `bash scripts/setup.sh sglang`)\n")
        return 2
    if engine_python() is None:
        sys.stderr.write("error: no .venv-engine for the twin (run `bash scripts/setup.sh engine`)\n")
        return 2
    args.twin_dir.mkdir(parents=True, exist_ok=True)
    judge_began = time.monotonic()
    server = start_tiny_sglang_judge(python, args.twin_dir / "judge", SERVED_NAME)
    try:
        server.wait_ready()
        judge_start_s = time.monotonic() - judge_began
        lexical = timed_twin(
            args.twin_dir / "lexical", args.twin_dir, args.steps, {"JUDGE_MODE": "lexical"}, ()
        )
        before = prefix_cache_counters(server.url)
        external = {"JUDGE_MODE": "external", "JUDGE_URL": server.url, "JUDGE_MODEL": SERVED_NAME}
        sglang = timed_twin(args.twin_dir / "sglang", args.twin_dir, args.steps, external, SGLANG_JUDGE)
        after = prefix_cache_counters(server.url)
    finally:
        server.stop()
    walls = {"lexical": lexical, "sglang": sglang}
    counters = {key: after[key] - before[key] for key in after}
    rows = {label: per_step(args.twin_dir / label / "metrics.jsonl", COLUMNS) for label in walls}
    steps = {label: sum(r.get("step_s", 0.0) for r in rs) for label, rs in rows.items()}
    if args.json:
        print(
            json.dumps(
                {"judge_start_s": judge_start_s, "wall_s": walls, "sglang_counters": counters, "steps": rows}
            )
        )
        return 0
    print(f"SGLang judge server start: {judge_start_s:.0f} s")
    for label, rs in rows.items():
        print(table(label, rs))
    share = counters["hits"] / counters["queries"] if counters["queries"] else 0.0
    print(
        f"SGLang's counters over the run: {counters['queries']:.0f} prompt tokens, "
        f"{counters['hits']:.0f} cached ({share:.3f})"
    )
    print(f"wall: lexical {walls['lexical']:.0f} s, sglang {walls['sglang']:.0f} s")
    if steps["lexical"] > 0:
        ratio = steps["sglang"] / steps["lexical"]
        lexical_s, sglang_s = steps["lexical"], steps["sglang"]
        print(f"sum of step times: lexical {lexical_s:.1f} s, sglang {sglang_s:.1f} s ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
