"""Score saved generations offline with the Perception-R1 reward.

``python -m perception_verl.score --input FILE.jsonl --judge none|lexical|sglang|vllm [--json]``

Each non-blank line of the input is a JSON object with ``response`` (text), ``ground_truth`` (text or
a number) and optional ``annotations`` (a list of strings or ``<info1>...</info1>`` text). The command
prints a table with every reward component per row and a summary; with ``--json`` it prints one JSON
object per row (``"type": "row"``) and a final summary object (``"type": "summary"``) as the last line.
``--judge`` has no default (no run is scored on a judge nobody named): ``--judge lexical`` judges
perception with the offline lexical judge; ``--judge none``
leaves perception out; ``--judge sglang|vllm`` asks an LLM judge served over HTTP (``--judge-url``,
``--judge-model``, ``--judge-server``, ``--constrained``: the options of
:mod:`perception_verl.judge_flags`), every row at once up to ``--concurrency``. Rows are scored
by :class:`perception_verl.scorer.PerceptionScorer`, as in training (answers checked by math-verify in
worker processes stopped after 10 s). A row the HTTP
judge could not answer has perception excluded and its failure kind counted in the summary, with the
judge's token usage. Bad input exits with status 2 and a message naming the line; a judge that fails
its start-up check, with status 3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from perception_verl.argparsing import command_parser
from perception_verl.data.annotations import AnnotationError, parse_annotations
from perception_verl.errors import PerceptionVerlError
from perception_verl.jsonl import json_object
from perception_verl.judge.base import JudgeResult
from perception_verl.judge_flags import (
    HTTP_JUDGES,
    add_http_judge_args,
    check_http_judge_args,
    cli_scorer,
    format_usage,
    usage_totals,
)
from perception_verl.rewards.total import RewardBreakdown, RewardWeights
from perception_verl.scorer import PerceptionScorer, Scored

PURPOSE = "Score saved generations (JSONL: response, ground_truth, optional annotations) offline."
EXAMPLE = "perception-verl score --input generations.jsonl --judge lexical --json"

JUDGES = ("lexical", "none", *HTTP_JUDGES)


class InputError(PerceptionVerlError, ValueError):
    """Input that cannot be scored; the message names the file and line."""


@dataclass(frozen=True)
class Row:
    """One generation to score; ``annotations`` is empty when the row has none."""

    line: int
    response: str
    ground_truth: str
    annotations: tuple[str, ...]


def _ground_truth(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    raise InputError(f"{where}: 'ground_truth' must be text or a number, got {type(value).__name__}")


def parse_row(text: str, line: int, where: str) -> Row:
    """Parse one JSON line into a :class:`Row`; raises :class:`InputError` naming ``where``."""
    obj = json_object(text, where=where, required=("response", "ground_truth"), error=InputError)
    if not isinstance(obj["response"], str):
        raise InputError(f"{where}: 'response' must be text, got {type(obj['response']).__name__}")
    try:
        annotations = parse_annotations(obj.get("annotations"))
    except AnnotationError as exc:
        raise InputError(f"{where}: bad 'annotations': {exc}") from None
    return Row(line, obj["response"], _ground_truth(obj["ground_truth"], where), tuple(annotations))


def read_rows(path: Path) -> list[Row]:
    """Read every non-blank line of a JSONL file; raises :class:`InputError` on the first bad one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    rows: list[Row] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        where = f"{path}:line {number}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        if text.strip():
            rows.append(parse_row(text, number, where))
    return rows


class JudgeStartError(PerceptionVerlError, RuntimeError):
    """The judge's start-up check failed; the message carries the judge's own explanation."""


def build_scorer(args: argparse.Namespace) -> PerceptionScorer:
    """The scorer for ``--judge`` and its options; :class:`InputError` when the lexical judge is missing.

    ValueError on a bad HTTP-judge option.
    """
    try:
        return cli_scorer(args, args.concurrency)
    except ImportError as exc:
        raise InputError(
            f"the {args.judge} judge cannot be imported: {exc}; use --judge none to score without perception"
        ) from None


async def score_rows(scorer: PerceptionScorer, rows: Sequence[Row]) -> list[Scored]:
    """Start the scorer's judge, score every row (judge and accuracy checks concurrently), close it.

    Results in row order. A failed judge start is raised as :class:`JudgeStartError`.
    """

    async def one(row: Row) -> Scored:
        async with scorer.intake():
            return await scorer.score(row.response, row.ground_truth, row.annotations)

    try:
        try:
            await scorer.judge()
        except Exception as exc:
            raise JudgeStartError(f"{type(exc).__name__}: {exc}") from exc
        return list(await asyncio.gather(*(one(row) for row in rows)))
    finally:
        await scorer.close()


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def row_record(row: Row, breakdown: RewardBreakdown, verdicts: tuple[int, ...] | None) -> dict[str, Any]:
    """The JSON object printed for one row (``perception`` is ``null`` when excluded)."""
    return {
        "type": "row",
        "line": row.line,
        "score": breakdown.score,
        "accuracy": breakdown.accuracy,
        "accuracy_reason": breakdown.accuracy_reason,
        "format": breakdown.format,
        "perception": breakdown.perception,
        "perception_excluded": breakdown.perception_excluded,
        "repetition": breakdown.repetition,
        "num_annotations": breakdown.num_annotations,
        "verdicts": list(verdicts) if verdicts is not None else None,
    }


def summarize(
    rows: Sequence[Row],
    scored: Sequence[Scored],
    judge: str,
    weights: RewardWeights,
    results: Sequence[JudgeResult | None] | None = None,
) -> dict[str, Any]:
    """Means of every component (``None`` when undefined), row counts, and the HTTP judge's failures
    (by kind) and token usage when ``results`` are given."""
    breakdowns = [outcome.breakdown for outcome in scored]
    with_annotations = sum(1 for row in rows if row.annotations)
    judged = [b.perception for b in breakdowns if b.perception is not None]
    extra: dict[str, Any] = {}
    if results is not None:
        kinds: dict[str, int] = {}
        for result in results:
            if result is not None and not result.ok:
                kinds[result.failure or "unknown"] = kinds.get(result.failure or "unknown", 0) + 1
        extra = {
            "judge_failures": sum(kinds.values()),
            "judge_failure_kinds": dict(sorted(kinds.items())),
            "judge_usage": usage_totals(results),
        }
    return {
        "type": "summary",
        "rows": len(rows),
        "judge": judge,
        "rows_with_annotations": with_annotations,
        "rows_without_annotations": len(rows) - with_annotations,
        "rows_perception_scored": len(judged),
        "mean_score": _mean([b.score for b in breakdowns]),
        "mean_accuracy": _mean([b.accuracy for b in breakdowns]),
        "mean_format": _mean([b.format for b in breakdowns]),
        "mean_perception": _mean(judged),
        "mean_repetition": _mean([b.repetition for b in breakdowns]),
        "weights": asdict(weights),
        **extra,
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(rows: Sequence[Row], scored: Sequence[Scored]) -> str:
    """A fixed-width table, one line per row."""
    lines = [f"{'line':>6} {'score':>7} {'acc':>4} {'fmt':>4} {'perc':>6} {'rep':>7} {'ann':>4}  reason"]
    for row, b in zip(rows, (outcome.breakdown for outcome in scored), strict=True):
        lines.append(
            f"{row.line:>6} {b.score:>7.3f} {b.accuracy:>4.0f} {b.format:>4.0f} {_fmt(b.perception):>6} "
            f"{b.repetition:>7.3f} {b.num_annotations:>4}  {b.accuracy_reason}"
        )
    return "\n".join(lines) + "\n"


def format_summary(summary: dict[str, Any]) -> str:
    """The human-readable summary printed under the table."""
    lines = [
        f"rows: {summary['rows']} ({summary['rows_with_annotations']} with annotations, "
        f"{summary['rows_without_annotations']} without)",
        f"mean score {_fmt(summary['mean_score'])} | accuracy {_fmt(summary['mean_accuracy'])} | "
        f"format {_fmt(summary['mean_format'])} | repetition {_fmt(summary['mean_repetition'])}",
    ]
    if summary["judge"] == "none":
        lines.append("perception: not judged (--judge none); the score leaves it out")
    else:
        lines.append(
            f"perception ({summary['judge']} judge): mean {_fmt(summary['mean_perception'])} over "
            f"{summary['rows_perception_scored']} rows with annotations (rows without are left out)"
        )
    if "judge_usage" in summary:
        if summary["judge_failures"]:
            kinds = ", ".join(f"{k}: {n}" for k, n in summary["judge_failure_kinds"].items())
            lines.append(f"judge failures (perception left out): {summary['judge_failures']} ({kinds})")
        lines.append(format_usage(summary["judge_usage"]))
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m perception_verl.score", PURPOSE, EXAMPLE)
    parser.add_argument("--input", required=True, type=Path, help="JSONL file, one generation per line")
    parser.add_argument(
        "--judge",
        choices=JUDGES,
        required=True,
        help="perception judge, no default: lexical (the offline lexical judge), none (perception left "
        "out), or sglang|vllm (an LLM judge served over HTTP at --judge-url)",
    )
    add_http_judge_args(parser)
    parser.add_argument("--concurrency", type=int, default=64, help="HTTP judge calls in flight (default 64)")
    parser.add_argument("--json", action="store_true", help="one JSON object per row, then a summary line")
    return parser


def _emit(text: str) -> None:
    sys.stdout.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, 3 judge unavailable)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = check_http_judge_args(args)
    if problem:
        parser.error(problem)
    if args.concurrency < 1:
        parser.error(f"--concurrency must be at least 1, got {args.concurrency}")
    # accuracy_reward disables math-verify's signal timeouts on purpose (it bounds its input instead),
    # so math-verify's one-time "timeout is disabled" warning is noise here.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    weights = RewardWeights()
    try:
        scorer = build_scorer(args)
        rows = read_rows(args.input)
    except InputError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except ValueError as exc:
        sys.stderr.write(f"error: judge configuration: {exc}\n")
        return 2
    try:
        scored = asyncio.run(score_rows(scorer, rows))
    except JudgeStartError as exc:
        sys.stderr.write(f"error: judge unavailable: {exc}\n")
        return 3
    results = [outcome.result for outcome in scored] if args.judge in HTTP_JUDGES else None
    summary = summarize(rows, scored, args.judge, weights, results)
    if args.json:
        for row, outcome in zip(rows, scored, strict=True):
            _emit(json.dumps(row_record(row, outcome.breakdown, outcome.verdicts)) + "\n")
        _emit(json.dumps(summary) + "\n")
    else:
        _emit(format_table(rows, scored))
        _emit("\n" + format_summary(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
