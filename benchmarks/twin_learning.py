"""Does the tiny CPU twin learn? Per-step mean reward components of a GRPO run, from verl's metrics.

Runs ``recipes/run_tiny_cpu.sh`` for ``--steps`` GRPO steps (about 10-15 minutes for 20 steps on
2 cores; never in CI), or reads the metrics of a finished run with ``--metrics``, and prints one row
per step (total score, accuracy, perception, format, repetition, grad norm, response length) and the
means of the first and last ``--window`` steps side by side, with their ratio.

    python -m benchmarks.twin_learning --steps 20 --twin-dir /tmp/twin20
    python -m benchmarks.twin_learning --metrics /tmp/twin20/metrics.jsonl [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from perception_verl.evaluation.report import read_metrics

REPO = Path(__file__).resolve().parents[1]
COLUMNS = (
    ("score", "reward/score/mean"),
    ("accuracy", "reward/accuracy/mean"),
    ("perception", "reward/perception/mean"),
    ("format", "reward/format/mean"),
    ("repetition", "reward/repetition/mean"),
    ("grad_norm", "actor/grad_norm"),
    ("resp_len", "response_length/mean"),
)


def run_twin(
    steps: int, twin_dir: Path, env: dict[str, str] | None = None, overrides: tuple[str, ...] = ()
) -> Path:
    """Run the twin recipe for ``steps`` GRPO steps (``env`` and hydra ``overrides`` added); return its
    metrics file."""
    env = {**os.environ, **(env or {}), "TWIN_STEPS": str(steps), "TWIN_DIR": str(twin_dir)}
    subprocess.run(["bash", str(REPO / "recipes" / "run_tiny_cpu.sh"), *overrides], env=env, check=True)
    return twin_dir / "metrics.jsonl"


def per_step(metrics: Path, columns: tuple[tuple[str, str], ...] = COLUMNS) -> list[dict[str, float]]:
    """One dict per logged step holding the ``columns`` (name, verl metric) that were logged."""
    series = read_metrics(metrics)
    rows: dict[int, dict[str, float]] = {}
    for name, key in columns:
        for step, value in series.get(key, []):
            rows.setdefault(step, {"step": float(step)})[name] = value
    return [rows[step] for step in sorted(rows)]


def window_means(rows: list[dict[str, float]], window: int) -> dict[str, tuple[float, float]]:
    """``{column: (mean of the first window, mean of the last window)}``."""
    first, last = rows[:window], rows[-window:]
    out = {}
    for name, _ in COLUMNS:
        a = [r[name] for r in first if name in r]
        b = [r[name] for r in last if name in r]
        if a and b:
            out[name] = (sum(a) / len(a), sum(b) / len(b))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, help="metrics.jsonl of a finished twin run")
    parser.add_argument("--steps", type=int, default=20, help="GRPO steps when running the twin")
    parser.add_argument("--twin-dir", type=Path, default=Path("/tmp/perception_verl_twin_learning"))
    parser.add_argument("--window", type=int, default=5, help="steps averaged at each end")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    metrics = args.metrics or run_twin(args.steps, args.twin_dir)
    rows = per_step(metrics)
    if len(rows) < 2 * args.window:
        sys.stderr.write(f"error: {metrics} has {len(rows)} steps, fewer than 2 x --window\n")
        return 2
    means = window_means(rows, args.window)
    if args.json:
        print(json.dumps({"metrics": str(metrics), "steps": rows, "first_last_means": means}))
        return 0
    names = [name for name, _ in COLUMNS]
    print("step " + " ".join(f"{n:>10}" for n in names))
    for row in rows:
        print(f"{int(row['step']):>4} " + " ".join(f"{row.get(n, float('nan')):>10.3f}" for n in names))
    print(f"\nmean of the first {args.window} vs the last {args.window} steps:")
    for name, (a, b) in means.items():
        ratio = f"{b / a:.2f}x" if a else "n/a"
        print(f"  {name:<11} {a:8.3f} -> {b:8.3f}  ({ratio})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
