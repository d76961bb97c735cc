"""The CPU twin with a real vLLM judge: what the served judge costs a GRPO step, side by side.

Starts one real vLLM CPU server (``.venv-engine``, a tiny random-weight Qwen2 chat model, prefix
caching on) as the perception judge, then runs ``recipes/run_tiny_cpu.sh`` twice on the same inputs:
with the embedded lexical judge, and with ``JUDGE_MODE=external`` against that server with constrained
output in vLLM's dialect (``constrained=True judge_server=vllm``). Prints, per run and step, verl's step
and generation times (rewards are scored while rollouts stream, inside ``gen``), mean perception and
the judge's counters from verl's logged metrics, then the ratio of the step times. The random-weight
judge's verdicts are noise under its regex, so perception values say nothing about learning here;
the point is the served judge inside verl's trainer. Never in CI (about 6 minutes on 2 cores for 2
steps each).

    python -m benchmarks.twin_vllm_judge --steps 2 --twin-dir /tmp/twin_vllm
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.twin_learning import per_step, run_twin
from tests.support.engine_env import engine_python
from tests.support.vllm_server import start_tiny_judge

SERVED_NAME = "tiny-judge"
VLLM_JUDGE = ("+reward.reward_kwargs.constrained=True", "+reward.reward_kwargs.judge_server=vllm")
COLUMNS = (
    ("step_s", "timing_s/step"),
    ("gen_s", "timing_s/gen"),
    ("perception", "reward/perception/mean"),
    ("score", "reward/score/mean"),
    ("judge_failed", "reward/judge_failed/count"),
    ("judge_latency_s", "reward/judge_latency_s/mean"),
    ("judge_prompt_tokens", "reward/judge_prompt_tokens/sum"),
    ("judge_completion_tokens", "reward/judge_completion_tokens/sum"),
    ("judge_cached_share", "reward/judge_cached_tokens/share"),
)


def timed_twin(
    twin_dir: Path, inputs: Path, steps: int, env: dict[str, str], overrides: tuple[str, ...]
) -> float:
    """Run the twin recipe; return its wall time (s). Inputs are built in ``inputs`` once and shared."""
    shared = {**env, "DATA_DIR": str(inputs / "data"), "MODEL_PATH": str(inputs / "model")}
    began = time.monotonic()
    run_twin(steps, twin_dir, shared, overrides)
    return time.monotonic() - began


def table(label: str, rows: list[dict[str, float]]) -> str:
    head = ["run", "step", *(name for name, _ in COLUMNS)]
    lines = ["\t".join(head)]
    for row in rows:
        cells = [label, f"{row['step']:.0f}"]
        cells += [f"{row[name]:.4g}" if name in row else "-" for name, _ in COLUMNS]
        lines.append("\t".join(cells))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="GRPO steps of each run")
    parser.add_argument("--twin-dir", type=Path, default=Path("/tmp/perception_verl_twin_vllm_judge"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    python = engine_python()
    if python is None:
        sys.stderr.write("error: no .venv-engine with vllm (run `bash scripts/setup.sh engine`)\n")
        return 2
    args.twin_dir.mkdir(parents=True, exist_ok=True)
    judge_began = time.monotonic()
    server = start_tiny_judge(python, args.twin_dir / "judge", SERVED_NAME)
    try:
        server.wait_ready()
        judge_start_s = time.monotonic() - judge_began
        walls = {
            "lexical": timed_twin(
                args.twin_dir / "lexical", args.twin_dir, args.steps, {"JUDGE_MODE": "lexical"}, ()
            ),
            "vllm": timed_twin(
                args.twin_dir / "vllm",
                args.twin_dir,
                args.steps,
                {"JUDGE_MODE": "external", "JUDGE_URL": server.url, "JUDGE_MODEL": SERVED_NAME},
                VLLM_JUDGE,
            ),
        }
    finally:
        server.stop()
    rows = {label: per_step(args.twin_dir / label / "metrics.jsonl", COLUMNS) for label in walls}
    steps = {label: sum(r.get("step_s", 0.0) for r in rs) for label, rs in rows.items()}
    if args.json:
        print(json.dumps({"judge_start_s": judge_start_s, "wall_s": walls, "steps": rows}))
        return 0
    print(f"vLLM judge server start: {judge_start_s:.0f} s")
    for label, rs in rows.items():
        print(table(label, rs))
    print(f"wall: lexical {walls['lexical']:.0f} s, vllm {walls['vllm']:.0f} s")
    if steps["lexical"] > 0:
        ratio = steps["vllm"] / steps["lexical"]
        lexical, vllm = steps["lexical"], steps["vllm"]
        print(f"sum of step times: lexical {lexical:.1f} s, vllm {vllm:.1f} s ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
