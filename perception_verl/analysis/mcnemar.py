"""McNemar's test on paired per-problem correctness of two models (A, then B).

With ``b`` = pairs where A is right and B wrong and ``c`` = pairs where A is wrong and B right:

- ``exact`` (default): two-sided binomial test of ``b`` out of ``b + c`` at 1/2, i.e.
  ``p = min(1, 2 * P[X <= min(b, c)])`` with ``X ~ Binomial(b + c, 1/2)`` (scipy's ``binomtest``);
- ``chi2``: the chi-squared approximation with continuity correction,
  ``(max(|b - c| - 1, 0))^2 / (b + c)`` on one degree of freedom. The correction is clamped at zero
  so that ``b == c`` gives ``p = 1`` as the exact test does.

No discordant pairs (``b = c = 0``) means no evidence of a change: ``p = 1``.

CLI::

    python -m perception_verl.analysis.mcnemar --counts B C [--json]
    python -m perception_verl.analysis.mcnemar --labels-a A.jsonl --labels-b B.jsonl [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from scipy.stats import binomtest, chi2

from perception_verl.analysis.labels import (
    ContingencyTable,
    LabelFileError,
    PairedLabels,
    pair_labels,
    read_labels,
)
from perception_verl.argparsing import command_parser, parse_checked

Method = Literal["exact", "chi2"]
METHODS: tuple[Method, ...] = ("exact", "chi2")
_METHOD_NAMES = {
    "exact": "exact binomial, two-sided",
    "chi2": "chi-squared with continuity correction, 1 df",
}
_EXAMPLES = 5


@dataclass(frozen=True)
class McNemarResult:
    """Outcome of McNemar's test.

    ``statistic`` is ``min(b, c)`` for the exact test and the corrected chi-squared value for ``chi2``.
    """

    b: int
    c: int
    n_discordant: int
    p_value: float
    method: Method
    statistic: float
    table: ContingencyTable

    def significant(self, alpha: float) -> bool:
        """Whether the change is significant at level ``alpha`` (``p <= alpha``)."""
        return self.p_value <= alpha

    @property
    def direction(self) -> Literal["B", "A", "none"]:
        """Which model is right more often on the discordant pairs ("none" on a tie)."""
        if self.c > self.b:
            return "B"
        if self.b > self.c:
            return "A"
        return "none"


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def mcnemar_p_value(b: int, c: int, method: Method = "exact") -> tuple[float, float]:
    """Return ``(statistic, p_value)`` for discordant counts ``b`` and ``c``."""
    _check_count("b", b)
    _check_count("c", c)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    n = b + c
    if method == "exact":
        statistic = float(min(b, c))
        if n == 0:
            return statistic, 1.0
        return statistic, min(1.0, float(binomtest(b, n, 0.5, alternative="two-sided").pvalue))
    if n == 0:
        return 0.0, 1.0
    statistic = max(abs(b - c) - 1, 0) ** 2 / n
    return statistic, float(chi2.sf(statistic, df=1))


def mcnemar_test(b: int, c: int, *, method: Method = "exact") -> McNemarResult:
    """McNemar's test from the discordant counts alone (concordant cells unknown)."""
    return mcnemar_table(ContingencyTable(None, b, c, None), method=method)


def mcnemar_table(table: ContingencyTable, *, method: Method = "exact") -> McNemarResult:
    """McNemar's test on a full (or discordant-only) 2x2 table."""
    for name in ("both_correct", "both_wrong"):
        value = getattr(table, name)
        if value is not None:
            _check_count(name, value)
    statistic, p_value = mcnemar_p_value(table.b, table.c, method)
    return McNemarResult(
        b=table.b,
        c=table.c,
        n_discordant=table.n_discordant,
        p_value=p_value,
        method=method,
        statistic=statistic,
        table=table,
    )


def verdict(result: McNemarResult, alpha: float) -> str:
    """One sentence saying whether perception changed significantly at ``alpha``, and which way."""
    counts = f"b = {result.b} A-only right, c = {result.c} B-only right"
    if not result.significant(alpha):
        return f"no significant change in perception at alpha = {alpha:g} ({counts})"
    better, worse = ("B", "A") if result.direction == "B" else ("A", "B")
    return (
        f"perception changed significantly at alpha = {alpha:g}: {better} is perception-correct "
        f"more often than {worse} ({counts})"
    )


def summary(result: McNemarResult, alpha: float, paired: PairedLabels | None = None) -> dict[str, Any]:
    """The JSON-ready summary the CLI prints with ``--json``."""
    only_a = paired.only_a if paired is not None else ()
    only_b = paired.only_b if paired is not None else ()
    return {
        "b": result.b,
        "c": result.c,
        "n_discordant": result.n_discordant,
        "n_pairs": result.table.n_pairs,
        "p_value": result.p_value,
        "statistic": result.statistic,
        "method": result.method,
        "alpha": alpha,
        "significant": result.significant(alpha),
        "direction": result.direction,
        "verdict": verdict(result, alpha),
        "table": result.table.as_dict(),
        "unpaired_a": len(only_a),
        "unpaired_b": len(only_b),
        "unpaired_a_examples": list(only_a[:_EXAMPLES]),
        "unpaired_b_examples": list(only_b[:_EXAMPLES]),
    }


def _cell(value: int | None) -> str:
    return "?" if value is None else str(value)


def render(result: McNemarResult, alpha: float, paired: PairedLabels | None = None) -> str:
    """Human-readable report: the 2x2 table, discordant counts, p-value and verdict."""
    table = result.table
    width = max(9, *(len(_cell(v)) for v in (table.both_correct, table.b, table.c, table.both_wrong)))
    lines = [
        f"{'':<12}{'B correct':>{width + 2}}{'B wrong':>{width + 2}}",
        f"{'A correct':<12}{_cell(table.both_correct):>{width + 2}}{_cell(table.b):>{width + 2}}",
        f"{'A wrong':<12}{_cell(table.c):>{width + 2}}{_cell(table.both_wrong):>{width + 2}}",
    ]
    if table.n_pairs is not None:
        lines.append(f"paired problems: {table.n_pairs}")
    if paired is not None and paired.n_unpaired:
        for name, ids in (("A", paired.only_a), ("B", paired.only_b)):
            if ids:
                shown = ", ".join(repr(i) for i in ids[:_EXAMPLES])
                more = ", ..." if len(ids) > _EXAMPLES else ""
                lines.append(f"unpaired: {len(ids)} ids only in {name}, left out of the table: {shown}{more}")
    lines += [
        f"discordant pairs: b (A right, B wrong) = {result.b}, c (A wrong, B right) = {result.c}, "
        f"total {result.n_discordant}",
        f"p-value ({_METHOD_NAMES[result.method]}): {result.p_value:.6g}",
        f"verdict: {verdict(result, alpha)}",
    ]
    return "\n".join(lines)


def _id_types(labels: Mapping[Any, bool]) -> str:
    """The JSON types of a label file's ids, e.g. ``integer (12)`` or ``string (3), integer (1)``."""
    counts = Counter("integer" if isinstance(i, int) else "string" for i in labels)
    return ", ".join(f"{kind} ({n})" for kind, n in counts.most_common()) or "none (empty file)"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m perception_verl.analysis.mcnemar",
        "McNemar's test on paired per-problem correctness of model A and model B.",
        "perception-verl mcnemar --labels-a base.labels.jsonl --labels-b trained.labels.jsonl",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--counts",
        nargs=2,
        type=int,
        metavar=("B", "C"),
        help="discordant counts: B = A right/B wrong, C = A wrong/B right",
    )
    source.add_argument(
        "--labels-a", metavar="A.jsonl", help='labels of model A: one {"id": ..., "correct": bool} per line'
    )
    parser.add_argument("--labels-b", metavar="B.jsonl", help="labels of model B (with --labels-a)")
    parser.add_argument("--method", choices=METHODS, default="exact", help="default: exact")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--strict", action="store_true", help="fail if any id is in only one labels file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    return parser


def arguments_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with these arguments together, or None."""
    if not 0.0 < args.alpha < 1.0:
        return f"--alpha must be in (0, 1), got {args.alpha}"
    if args.labels_a is not None and args.labels_b is None:
        return "--labels-a needs --labels-b"
    if args.counts is not None and args.labels_b is not None:
        return "--labels-b goes with --labels-a, not with --counts"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_checked(parser, argv, arguments_problem)
    paired: PairedLabels | None = None
    try:
        if args.counts is not None:
            result = mcnemar_test(args.counts[0], args.counts[1], method=args.method)
        else:
            labels_a, labels_b = read_labels(args.labels_a), read_labels(args.labels_b)
            paired = pair_labels(labels_a, labels_b)
            if paired.table.n_pairs == 0:
                raise LabelFileError(
                    f"no id is in both {args.labels_a} and {args.labels_b}, so there is nothing to compare; "
                    f"id types: A {_id_types(labels_a)}, B {_id_types(labels_b)} (ids compare as written: "
                    '7 and "7" differ)'
                )
            if args.strict and paired.n_unpaired:
                raise LabelFileError(
                    f"{len(paired.only_a)} ids only in {args.labels_a}, "
                    f"{len(paired.only_b)} ids only in {args.labels_b} (--strict)"
                )
            result = mcnemar_table(paired.table, method=args.method)
    except (LabelFileError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(summary(result, args.alpha, paired)) + "\n")
    else:
        sys.stdout.write(render(result, args.alpha, paired) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
