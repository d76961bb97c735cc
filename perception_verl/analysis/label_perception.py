"""Label saved generations perception-correct or not by asking a judge about their annotations.

For each response with annotations, the judge returns one 0/1 verdict per annotation; the response
is perception-correct when the mean verdict reaches ``--threshold`` (default 1.0: every annotation
reflected). Rows without annotations are skipped and counted. A judge failure leaves the row
unlabelled (reported with its kind), never labelled incorrect: McNemar's CLI then reports it as an
unpaired id. Output: one ``{"id", "correct", "perception", "num_annotations"}`` per line, in input
order, written atomically.

CLI::

    python -m perception_verl.analysis.label_perception --generations GEN.jsonl --out LABELS.jsonl \\
        --judge lexical|sglang|vllm [--judge-url URL[,URL...]] [--judge-model NAME]
        [--judge-server auto|sglang|vllm] [--constrained] [--threshold 1.0]

The summary carries the HTTP judge's token usage (prompt, cached prompt, completion tokens) and counts
replies cut off at ``--max-new-tokens`` as their own failure kind (``truncated``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from perception_verl.analysis.generations import (
    Generation,
    GenerationFileError,
    GenerationKeys,
    perception_label,
    read_generations,
)
from perception_verl.analysis.labels import LabelId
from perception_verl.argparsing import command_parser, parse_checked
from perception_verl.atomic import write_atomically
from perception_verl.errors import PerceptionVerlError
from perception_verl.judge.base import Judge, JudgeResult
from perception_verl.judge_flags import (
    HTTP_JUDGES,
    add_http_judge_args,
    check_http_judge_args,
    cli_scorer,
    format_usage,
    judge_urls,
    usage_totals,
)
from perception_verl.scorer import PerceptionScorer

logger = logging.getLogger(__name__)

_EXAMPLES = 5


@dataclass(frozen=True)
class Failure:
    """A row the judge could not label, and why."""

    id: LabelId
    kind: str


@dataclass
class LabelRun:
    """What labelling produced: labels in input order, skipped rows and judge failures."""

    labels: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[LabelId] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)

    def summary(self, total: int) -> dict[str, Any]:
        kinds = Counter(failure.kind for failure in self.failures)
        return {
            "judge_usage": dict(self.usage),
            "rows": total,
            "labelled": len(self.labels),
            "correct": sum(1 for label in self.labels if label["correct"]),
            "skipped_no_annotations": len(self.skipped),
            "skipped_examples": self.skipped[:_EXAMPLES],
            "judge_failures": len(self.failures),
            "judge_failure_kinds": dict(sorted(kinds.items())),
            "judge_failure_examples": [failure.id for failure in self.failures[:_EXAMPLES]],
        }


class JudgeStartError(PerceptionVerlError, RuntimeError):
    """The judge's start-up check failed; the message carries the judge's own explanation."""


def _usable_verdicts(result: JudgeResult, expected: int) -> tuple[tuple[int, ...] | None, str | None]:
    """``(verdicts, None)`` if ``result`` holds one 0/1 verdict per annotation, else ``(None, kind)``."""
    if result.verdicts is None:
        return None, result.failure or "unknown"
    if len(result.verdicts) != expected:
        return None, "wrong_count"
    if any(v not in (0, 1) for v in result.verdicts):
        return None, "non_binary"
    return result.verdicts, None


async def _judge_one(judge: Judge, row: Generation, semaphore: asyncio.Semaphore) -> JudgeResult:
    async with semaphore:
        try:
            return await judge.judge(row.annotations, row.response)
        except Exception as exc:
            # The Judge protocol says judge() never raises; if one does, keep the row out of the
            # labels and say why rather than losing the whole run.
            logger.warning("judge raised on id %r: %s: %s", row.id, type(exc).__name__, exc)
            return JudgeResult(verdicts=None, failure=f"raised_{type(exc).__name__}")


async def label_generations(
    judge: Judge,
    rows: Sequence[Generation],
    *,
    threshold: float = 1.0,
    concurrency: int = 64,
    on_done: Callable[[], None] | None = None,
) -> LabelRun:
    """Judge every row with annotations (at most ``concurrency`` at once) and build the labels.

    The judge must already be started. ``on_done`` is called once per judged row (progress).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    semaphore = asyncio.Semaphore(concurrency)

    async def run(row: Generation) -> JudgeResult:
        result = await _judge_one(judge, row, semaphore)
        if on_done is not None:
            on_done()
        return result

    judged = [row for row in rows if row.annotations]
    results = await asyncio.gather(*(run(row) for row in judged))
    by_id = dict(zip((row.id for row in judged), results, strict=True))
    outcome = LabelRun(usage=usage_totals(results))
    for row in rows:
        if not row.annotations:
            outcome.skipped.append(row.id)
            continue
        verdicts, kind = _usable_verdicts(by_id[row.id], len(row.annotations))
        if verdicts is None:
            outcome.failures.append(Failure(row.id, kind or "unknown"))
            continue
        perception, correct = perception_label(verdicts, threshold)
        outcome.labels.append(
            {
                "id": row.id,
                "correct": correct,
                "perception": perception,
                "num_annotations": len(row.annotations),
            }
        )
    return outcome


def write_jsonl_atomic(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` as jsonl to ``path`` via a temporary file in the same folder and a rename."""
    write_atomically(
        Path(path), lambda handle: handle.writelines(json.dumps(row) + "\n" for row in rows), binary=False
    )


def judge_name(args: argparse.Namespace) -> str:
    """The judge recorded in every label row and the summary, e.g. ``sglang:MODEL@http://h:30000``."""
    if args.judge == "lexical":
        return "lexical"
    return f"{args.judge}:{args.judge_model}@{','.join(judge_urls(args.judge_url))}"


async def _run(
    scorer: PerceptionScorer, rows: Sequence[Generation], args: argparse.Namespace
) -> tuple[LabelRun, Judge]:
    """Start the scorer's judge, label every row, close it; returns the labels and the judge used."""
    try:
        try:
            judge = await scorer.judge()
        except Exception as exc:
            raise JudgeStartError(f"{type(exc).__name__}: {exc}") from exc
        if judge is None:
            raise JudgeStartError("no judge to label with (--judge is lexical, sglang or vllm)")
        total = sum(1 for row in rows if row.annotations)
        with tqdm(total=total, desc="judging", unit="resp", disable=args.no_progress) as bar:
            outcome = await label_generations(
                judge,
                rows,
                threshold=args.threshold,
                concurrency=args.concurrency,
                on_done=lambda: bar.update(1),
            )
        return outcome, judge
    finally:
        await scorer.close()


def render(summary: dict[str, Any], out: Path) -> str:
    """Human-readable summary of a labelling run."""
    lines = [
        f"labelled {summary['labelled']} of {summary['rows']} rows "
        f"({summary['correct']} perception-correct) with judge {summary['judge']} -> {out}",
    ]
    if summary["skipped_no_annotations"]:
        lines.append(
            f"skipped (no annotations): {summary['skipped_no_annotations']}, "
            f"e.g. {', '.join(repr(i) for i in summary['skipped_examples'])}"
        )
    if summary["judge_failures"]:
        kinds = ", ".join(f"{kind}: {count}" for kind, count in summary["judge_failure_kinds"].items())
        lines.append(
            f"judge failures (not labelled): {summary['judge_failures']} ({kinds}), "
            f"e.g. {', '.join(repr(i) for i in summary['judge_failure_examples'])}"
        )
    if summary.get("judge_usage", {}).get("requests"):
        lines.append(format_usage(summary["judge_usage"]))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m perception_verl.analysis.label_perception",
        "Label saved generations perception-correct or not with a judge (for McNemar's test).",
        "perception-verl label-perception --generations base.jsonl --out base.labels.jsonl \\",
        "    --judge sglang --judge-url http://HOST:30000 --judge-model Qwen/Qwen2.5-32B-Instruct-AWQ",
    )
    parser.add_argument("--generations", required=True, metavar="FILE.jsonl", help="saved generations")
    parser.add_argument("--out", required=True, metavar="LABELS.jsonl", help="labels to write")
    parser.add_argument(
        "--judge",
        choices=("lexical", *HTTP_JUDGES),
        required=True,
        help="sglang or vllm (an LLM judge served over HTTP at --judge-url) or lexical (offline word "
        "overlap); no default",
    )
    add_http_judge_args(parser)
    parser.add_argument(
        "--threshold", type=float, default=1.0, help="least mean verdict counted correct (default 1.0)"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="judge calls in flight (default 64)")
    parser.add_argument("--id-key", default="id")
    parser.add_argument("--response-key", default="response")
    parser.add_argument("--annotations-key", default="annotations")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return parser


def arguments_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with these arguments together, or None."""
    if not 0.0 < args.threshold <= 1.0:
        return f"--threshold must be in (0, 1], got {args.threshold}"
    if args.concurrency < 1:
        return f"--concurrency must be at least 1, got {args.concurrency}"
    return check_http_judge_args(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_checked(parser, argv, arguments_problem)
    keys = GenerationKeys(id=args.id_key, response=args.response_key, annotations=args.annotations_key)
    try:
        rows = read_generations(args.generations, keys)
    except GenerationFileError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    try:
        scorer = cli_scorer(args, args.concurrency)
    except ValueError as exc:
        sys.stderr.write(f"error: judge configuration: {exc}\n")
        return 2
    try:
        outcome, judge = asyncio.run(_run(scorer, rows, args))
    except JudgeStartError as exc:
        sys.stderr.write(f"error: judge unavailable: {exc}\n")
        return 3
    name = judge_name(args)
    write_jsonl_atomic(args.out, [{**label, "judge": name} for label in outcome.labels])
    summary = {"judge": name, **outcome.summary(len(rows))}
    metrics = getattr(judge, "metrics", None)
    if callable(metrics):
        summary["judge_metrics"] = metrics()
    if args.judge in HTTP_JUDGES:
        summary["judge_server"] = getattr(judge, "dialect", None) or "unknown"
    if args.json:
        sys.stdout.write(json.dumps({**summary, "out": str(args.out)}) + "\n")
    else:
        sys.stdout.write(render(summary, Path(args.out)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
