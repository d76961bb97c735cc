"""The per-benchmark accuracy table, beside the paper's numbers.

Accuracy is correct / scored. Rows left unscored (an answer judge that failed) and rows with no
generation are counted in their own columns, never scored wrong. WeMath's four-dimensional metric
(:mod:`perception_verl.evaluation.wemath`), when computed, follows the table as its own section; the
WeMath row itself stays plain accuracy over every row, the figure the paper's column is compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perception_verl.evaluation.wemath import VARIANTS, WeMathMetric

PAPER: dict[str, tuple[float, float]] = {
    "mathvista": (68.1, 74.2),
    "mathverse": (47.4, 54.3),
    "mathvision": (25.1, 28.6),
    "wemath": (61.4, 72.0),
}
"""Paper (Perception-R1, Table 1): (Qwen2.5-VL-7B-Instruct, Perception-R1-7B) accuracy in percent."""

ORDER = ("mathvista", "mathverse", "mathvision", "wemath")


@dataclass(frozen=True)
class ScoredRow:
    """The outcome of one benchmark problem: ``correct`` is ``None`` when it could not be scored."""

    benchmark: str
    id: str
    correct: bool | None
    reason: str
    extracted: str


@dataclass(frozen=True)
class BenchmarkScore:
    """One line of the table."""

    benchmark: str
    problems: int
    scored: int
    correct: int
    unscored: int
    missing: int

    @property
    def accuracy(self) -> float | None:
        return 100.0 * self.correct / self.scored if self.scored else None


def tabulate(rows: Sequence[ScoredRow], missing: dict[str, int]) -> list[BenchmarkScore]:
    """Per-benchmark counts (pure), in the paper's order, then any other benchmark by name."""
    names = sorted(
        {row.benchmark for row in rows} | set(missing),
        key=lambda n: (n not in ORDER, ORDER.index(n) if n in ORDER else 0, n),
    )
    table = []
    for name in names:
        mine = [row for row in rows if row.benchmark == name]
        scored = [row for row in mine if row.correct is not None]
        table.append(
            BenchmarkScore(
                benchmark=name,
                problems=len(mine) + missing.get(name, 0),
                scored=len(scored),
                correct=sum(1 for row in scored if row.correct),
                unscored=len(mine) - len(scored),
                missing=missing.get(name, 0),
            )
        )
    return table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _count(count: int, rate: float | None) -> str:
    return f"{count} ({_pct(rate)}%)" if rate is not None else f"{count} (-)"


def render_wemath(metric: WeMathMetric) -> str:
    """WeMath's four dimensions and scores, strict and loose, as a markdown section."""
    lines = [
        f"WeMath four-dimensional metric: {metric.problems} composite problems, {metric.classified} "
        f"classified, {metric.unclassified} unclassified (a row unscored or missing). Rates: IK, IG, CM "
        "of the classified problems, RM of CM + RM; score = (n - 0.5 IG - RM - IK) / n. The paper's "
        "WeMath column is compared with the accuracy above.",
        "",
        "| WeMath | IK | IG | CM | RM | score (%) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        counts, rates = metric.counts(variant), metric.rates(variant)
        cells = [_count(counts[name], rates[name]) for name in counts]
        lines.append(f"| {variant} | {' | '.join(cells)} | {_pct(metric.score(variant))} |")
    return "\n".join(lines) + "\n"


def render_markdown(
    table: Sequence[BenchmarkScore], *, label: str = "ours", wemath: WeMathMetric | None = None
) -> str:
    """The table as markdown, with the paper's two columns; then WeMath's metric when given."""
    lines = [
        f"| benchmark | problems | scored | correct | unscored | missing | {label} (%) "
        "| paper Qwen2.5-VL-7B (%) | paper Perception-R1-7B (%) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for score in table:
        base, ours = PAPER.get(score.benchmark, (None, None))
        lines.append(
            f"| {score.benchmark} | {score.problems} | {score.scored} | {score.correct} | {score.unscored} "
            f"| {score.missing} | {_pct(score.accuracy)} | {_pct(base)} | {_pct(ours)} |"
        )
    text = "\n".join(lines) + "\n"
    return text if wemath is None else f"{text}\n{render_wemath(wemath)}"
