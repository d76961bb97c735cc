"""McNemar's test between two evaluated runs on the same problems: accuracy and perception.

``python -m perception_verl.evaluation.compare --run-a A_DIR --run-b B_DIR
[--perception-a A_LABELS.jsonl --perception-b B_LABELS.jsonl] [--strict] [--json]``

``A_DIR``/``B_DIR`` are ``--out`` folders of :mod:`perception_verl.evaluation.score` (their
``accuracy_labels.jsonl`` is read; a labels file may be given instead). Perception labels come from
``python -m perception_verl.analysis.label_perception --generations <run>/generations.jsonl``.
For each measure it reports the paired 2x2 table, the discordant counts (b: A right and B wrong,
c: A wrong and B right), and both the exact and the chi-squared p-values
(:mod:`perception_verl.analysis.mcnemar`). Ids found in one run only are reported and left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perception_verl.analysis.labels import LabelFileError, PairedLabels, pair_labels, read_labels
from perception_verl.analysis.mcnemar import METHODS, mcnemar_table
from perception_verl.argparsing import command_parser, parse_checked

PURPOSE = "McNemar's test between two evaluated runs, on accuracy and on perception labels."
EXAMPLE = "perception-verl eval-compare --run-a scored/base --run-b scored/ours"

LABELS_FILE = "accuracy_labels.jsonl"


def labels_path(value: Path) -> Path:
    """A labels file, or the ``accuracy_labels.jsonl`` of a scoring ``--out`` folder."""
    return value / LABELS_FILE if value.is_dir() else value


def compare(paired: PairedLabels) -> dict[str, Any]:
    """Both McNemar variants on one paired table (pure)."""
    results = {method: mcnemar_table(paired.table, method=method) for method in METHODS}
    exact = results["exact"]
    return {
        "table": paired.table.as_dict(),
        "n_pairs": paired.table.n_pairs,
        "b_a_only": exact.b,
        "c_b_only": exact.c,
        "n_discordant": exact.n_discordant,
        "p_exact": results["exact"].p_value,
        "p_chi2": results["chi2"].p_value,
        "chi2_statistic": results["chi2"].statistic,
        "direction": exact.direction,
        "unpaired_a": len(paired.only_a),
        "unpaired_b": len(paired.only_b),
    }


def render(name: str, result: dict[str, Any]) -> str:
    table = result["table"]
    return "\n".join(
        [
            f"{name}: {result['n_pairs']} paired problems "
            f"(both right {table['both_correct']}, both wrong {table['both_wrong']})",
            f"  discordant: b (A right, B wrong) = {result['b_a_only']}, "
            f"c (A wrong, B right) = {result['c_b_only']}",
            f"  p exact (binomial, two-sided) = {result['p_exact']:.4g}; "
            f"p chi-squared (continuity-corrected, 1 df) = {result['p_chi2']:.4g}",
            f"  unpaired ids left out: {result['unpaired_a']} only in A, {result['unpaired_b']} only in B",
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m perception_verl.evaluation.compare", PURPOSE, EXAMPLE)
    parser.add_argument("--run-a", required=True, type=Path, help="scoring --out folder or labels file of A")
    parser.add_argument("--run-b", required=True, type=Path, help="scoring --out folder or labels file of B")
    parser.add_argument("--perception-a", type=Path, help="perception labels of A (label_perception --out)")
    parser.add_argument("--perception-b", type=Path, help="perception labels of B")
    parser.add_argument("--strict", action="store_true", help="fail if any id is in only one run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def arguments_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with these arguments together, or None."""
    if (args.perception_a is None) != (args.perception_b is None):
        return "--perception-a and --perception-b go together"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_checked(build_parser(), argv, arguments_problem)
    measures = [("accuracy", labels_path(args.run_a), labels_path(args.run_b))]
    if args.perception_a is not None:
        measures.append(("perception", args.perception_a, args.perception_b))
    report: dict[str, Any] = {}
    try:
        for name, path_a, path_b in measures:
            paired = pair_labels(read_labels(path_a), read_labels(path_b))
            if args.strict and paired.n_unpaired:
                raise LabelFileError(
                    f"{name}: {len(paired.only_a)} ids only in {path_a}, "
                    f"{len(paired.only_b)} only in {path_b}"
                )
            report[name] = compare(paired)
    except LabelFileError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        sys.stdout.write("\n".join(render(name, result) for name, result in report.items()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
