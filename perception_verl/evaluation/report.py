"""A run report from verl's metrics: plots of the reward components and a markdown page.

``python -m perception_verl.evaluation.report --metrics RUN.jsonl --out REPORT_DIR [--title T]``

Input: the JSON lines verl's ``file`` logger writes (``trainer.logger=[console,file]``;
``verl.utils.tracking.FileLogger``: one ``{"step": N, "data": {metric: value}}`` per log call, in
``$VERL_FILE_LOGGER_ROOT/<project>/<experiment>.jsonl`` or ``$VERL_FILE_LOGGER_PATH``). wandb or
tensorboard users export their scalars to the same shape. Lines with the same step are merged.

Output (``REPORT_DIR``): one PNG per panel and ``report.md`` with the perception judge the metrics
name, every plot and a summary table (first, last, min and max of each plotted metric). Panels, each
drawn only when its metrics exist:
reward components (every ``reward/<component>/mean``), judge failures (``reward/judge_failed/*``),
judge latency (``reward/judge_latency_s/*``), response length (``response_length/*``), accuracy
vs perception (``reward/accuracy/mean`` and ``reward/perception/mean``) and validation accuracy
(``val-core/*``). Exit status 2 when the file holds no metrics.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from perception_verl.argparsing import command_parser
from perception_verl.atomic import write_atomically
from perception_verl.errors import PerceptionVerlError
from perception_verl.integration.metrics import JUDGE_METRIC_PREFIX
from perception_verl.jsonl import json_objects

PURPOSE = "Plot a run's reward components, judge health, lengths and validation accuracy."
EXAMPLE = "perception-verl eval-report --metrics run.jsonl --out report/"

Series = dict[str, list[tuple[int, float]]]


class MetricsFileError(PerceptionVerlError, ValueError):
    """A metrics file that cannot be read; the message names the file and line."""


def parse_metrics_lines(lines: Iterable[str], *, source: str) -> Series:
    """``{metric: [(step, value), ...]}`` from file-logger lines, sorted by step; non-numbers skipped."""
    series: Series = {}
    for _, where, obj in json_objects(lines, source=source, required=(), error=MetricsFileError):
        if not isinstance(obj.get("data"), dict) or "step" not in obj:
            raise MetricsFileError(f"{where}: expected {{'step': N, 'data': {{...}}}} (verl's file logger)")
        step = int(obj["step"])
        for key, value in obj["data"].items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            series.setdefault(key, []).append((step, float(value)))
    for points in series.values():
        points.sort(key=lambda point: point[0])
    return series


def read_metrics(path: Path) -> Series:
    try:
        with path.open(encoding="utf-8") as handle:
            return parse_metrics_lines(handle, source=str(path))
    except OSError as error:
        raise MetricsFileError(f"{path}: cannot read ({error.strerror or error})") from None


@dataclass(frozen=True)
class Panel:
    """One plot: a file name, a title, a y label, and which metrics it draws."""

    name: str
    title: str
    ylabel: str
    select: Callable[[Series], list[str]]


def _matching(pattern: str) -> Callable[[Series], list[str]]:
    regex = re.compile(pattern)
    return lambda series: sorted(key for key in series if regex.fullmatch(key))


def _present(*keys: str) -> Callable[[Series], list[str]]:
    return lambda series: [key for key in keys if key in series]


# The terms of the reward (and the total): counts such as num_annotations have their own scale.
REWARD_COMPONENTS = ("accuracy", "format", "perception", "repetition", "score")

PANELS = (
    Panel(
        "reward_components",
        "Reward components (mean per step)",
        "value",
        _present(*(f"reward/{name}/mean" for name in REWARD_COMPONENTS)),
    ),
    Panel(
        "accuracy_vs_perception",
        "Accuracy vs perception per step",
        "mean reward",
        _present("reward/accuracy/mean", "reward/perception/mean"),
    ),
    Panel(
        "judge_failures",
        "Judge failures",
        "rate / count",
        _matching(r"reward/judge_failed/(rate|count)|reward/perception_excluded/share"),
    ),
    Panel("judge_latency", "Judge latency", "seconds", _matching(r"reward/judge_latency_s/[a-z0-9]+")),
    Panel("response_length", "Response length", "tokens", _matching(r"response_length/(mean|max|min)")),
    Panel("validation_accuracy", "Validation accuracy", "accuracy", _matching(r"val-core/.+")),
)


def plot_panel(panel: Panel, series: Series, keys: Sequence[str], path: Path) -> None:
    """Draw one panel to a PNG (matplotlib's Agg backend, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    try:
        for key in keys:
            steps = [step for step, _ in series[key]]
            values = [value for _, value in series[key]]
            axes.plot(
                steps, values, marker="o" if len(steps) < 30 else None, markersize=3, linewidth=1.6, label=key
            )
        axes.set_title(panel.title)
        axes.set_xlabel("step")
        axes.set_ylabel(panel.ylabel)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=7, loc="best")
        figure.tight_layout()
        write_atomically(path, lambda handle: figure.savefig(handle, format="png"), binary=True)
    finally:
        plt.close(figure)


def summary_rows(series: Series, keys: Sequence[str]) -> list[tuple[str, int, float, float, float, float]]:
    """``(metric, points, first, last, min, max)`` per metric (pure)."""
    rows = []
    for key in keys:
        values = [value for _, value in series[key]]
        rows.append((key, len(values), values[0], values[-1], min(values), max(values)))
    return rows


def render_markdown(
    title: str,
    source: str,
    plotted: Mapping[str, Sequence[str]],
    rows: Sequence[tuple[str, int, float, float, float, float]],
    steps: int,
    judges: Sequence[str] = (),
) -> str:
    """The report page (pure): the perception judge(s), plots in panel order, then the summary table."""
    lines = [f"# {title}", "", f"Metrics: `{source}` ({steps} logged steps).", ""]
    if judges:
        lines += [f"Perception judge: {', '.join(f'`{j}`' for j in judges)}.", ""]
    else:
        lines += [f"Perception judge: not named in these metrics (no `{JUDGE_METRIC_PREFIX}*` key).", ""]
    for panel in PANELS:
        if panel.name in plotted:
            lines += [f"## {panel.title}", "", f"![{panel.title}]({panel.name}.png)", ""]
    missing = [panel.title for panel in PANELS if panel.name not in plotted]
    if missing:
        lines += [f"Not in this run's metrics: {', '.join(missing)}.", ""]
    lines += [
        "## Summary",
        "",
        "| metric | points | first | last | min | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| `{k}` | {n} | {a:.4g} | {b:.4g} | {lo:.4g} | {hi:.4g} |" for k, n, a, b, lo, hi in rows]
    return "\n".join(lines) + "\n"


def build_report(series: Series, out: Path, *, title: str, source: str) -> dict[str, list[str]]:
    """Write every panel that has data and ``report.md``; returns ``{panel: [metric, ...]}``."""
    out.mkdir(parents=True, exist_ok=True)
    plotted: dict[str, list[str]] = {}
    for panel in PANELS:
        keys = panel.select(series)
        if keys:
            plot_panel(panel, series, keys, out / f"{panel.name}.png")
            plotted[panel.name] = keys
    keys = list(dict.fromkeys(key for panel_keys in plotted.values() for key in panel_keys))
    steps = len({step for points in series.values() for step, _ in points})
    judges = sorted(k[len(JUDGE_METRIC_PREFIX) :] for k in series if k.startswith(JUDGE_METRIC_PREFIX))
    page = render_markdown(title, source, plotted, summary_rows(series, keys), steps, judges)
    write_atomically(out / "report.md", lambda handle: handle.write(page), binary=False)
    return plotted


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m perception_verl.evaluation.report", PURPOSE, EXAMPLE)
    parser.add_argument("--metrics", required=True, type=Path, help="verl file-logger jsonl")
    parser.add_argument("--out", required=True, type=Path, help="folder for the PNGs and report.md")
    parser.add_argument("--title", default=None, help="page title (default: the metrics file name)")
    parser.add_argument("--json", action="store_true", help="print what was plotted as one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        series = read_metrics(args.metrics)
    except MetricsFileError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    if not series:
        sys.stderr.write(f"error: {args.metrics} holds no numeric metrics\n")
        return 2
    plotted = build_report(
        series, args.out, title=args.title or f"Run report: {args.metrics.stem}", source=str(args.metrics)
    )
    if args.json:
        sys.stdout.write(json.dumps({"out": str(args.out), "panels": plotted}) + "\n")
    else:
        sys.stdout.write(
            f"wrote {args.out / 'report.md'} with {len(plotted)} plot(s): {', '.join(plotted)}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
