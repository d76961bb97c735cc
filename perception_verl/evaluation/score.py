"""Score verl validation dumps into the paper's per-benchmark accuracy table.

``python -m perception_verl.evaluation.score --dump VAL_DIR --data mathvista.parquet,... [--out DIR]``

Reads the dump (a ``<step>.jsonl`` file, or the ``trainer.validation_data_dir`` folder: its highest
step unless ``--step``), joins every line to its benchmark row by ``(eval_benchmark, eval_id)``, checks
each final answer (:mod:`perception_verl.evaluation.answers`: choice letters and texts, precision,
units, math-verify) and prints the table beside the paper's numbers. ``--judge sglang`` first asks an
LLM (``--judge-url``, ``--judge-model``) to extract each final answer, as the paper did; a failed
request leaves the row unscored (counted, never scored wrong). Benchmark rows with no generation stop
the command unless ``--allow-missing`` (then they are counted in the table's ``missing`` column).

WeMath rows are also scored with We-Math's four-dimensional metric (:mod:`perception_verl.evaluation.wemath`:
IK, IG, CM, RM and the strict and loose scores), printed after the table and written to the summary
as ``wemath_four_dimensional``; rows built without their ``key``, or an incomplete problem (a build
with ``--sample``/``--subset``), stop the command unless ``--wemath-metric off``.

With ``--out DIR`` it writes, atomically: ``results.jsonl`` (one row per problem), ``accuracy_labels.jsonl``
(``{"id", "correct"}``: McNemar input, ``python -m perception_verl.evaluation.compare``),
``generations.jsonl`` (``{"id", "response", "annotations"}``: input of
``python -m perception_verl.analysis.label_perception``), ``table.md`` and ``summary.json``.
Exit status: 0 ok, 2 bad input, 3 judge unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from perception_verl.argparsing import command_parser
from perception_verl.atomic import write_atomically
from perception_verl.client.chat_config import ChatClientConfig
from perception_verl.client.cli_secrets import refuse_secret_flags
from perception_verl.client.replicas import url_list
from perception_verl.errors import PerceptionVerlError
from perception_verl.evaluation.answers import (
    AnswerCheck,
    check_answer,
    check_extracted,
    spec_from_extra_info,
)
from perception_verl.evaluation.dumps import (
    BenchmarkRow,
    DumpError,
    DumpKeys,
    DumpLine,
    join,
    read_benchmark_rows,
    read_dump,
    resolve_dump,
)
from perception_verl.evaluation.table import BenchmarkScore, ScoredRow, render_markdown, tabulate
from perception_verl.evaluation.wemath import Outcome, WeMathError, WeMathMetric, four_dimensional
from perception_verl.judge_flags import add_request_args, endpoint_of_args

JUDGES = ("none", "sglang")
WEMATH = "wemath"
WEMATH_METRICS = ("four-dimensional", "off")


def label_id(benchmark: str, row_id: str) -> str:
    """The id a problem gets in label files: ``<benchmark>/<id>``."""
    return f"{benchmark}/{row_id}"


def question_text(row: BenchmarkRow) -> str:
    return str(row.extra_info.get("problem") or "")


def score_pairs(
    pairs: Sequence[tuple[DumpLine, BenchmarkRow]],
    extracted: Sequence[str | None] | None = None,
    failures: Sequence[str | None] | None = None,
) -> list[tuple[ScoredRow, AnswerCheck | None]]:
    """Score each joined pair (pure); with ``extracted`` (judge answers) those are checked instead."""
    out: list[tuple[ScoredRow, AnswerCheck | None]] = []
    for position, (line, row) in enumerate(pairs):
        spec = spec_from_extra_info(row.extra_info, row.ground_truth)
        if extracted is None:
            check = check_answer(line.response, spec)
        elif extracted[position] is None:
            kind = failures[position] if failures is not None else "unknown"
            out.append((ScoredRow(row.benchmark, row.id, None, f"judge_failed:{kind}", ""), None))
            continue
        else:
            check = check_extracted(str(extracted[position]), spec)
        out.append((ScoredRow(row.benchmark, row.id, check.correct, check.reason, check.extracted), check))
    return out


def result_records(
    pairs: Sequence[tuple[DumpLine, BenchmarkRow]], scored: Sequence[tuple[ScoredRow, AnswerCheck | None]]
) -> list[dict[str, Any]]:
    return [
        {
            "id": label_id(row.benchmark, row.id),
            "benchmark": row.benchmark,
            "source_id": row.id,
            "correct": result.correct,
            "reason": result.reason,
            "extracted": result.extracted,
            "ground_truth": row.ground_truth,
            "question_type": row.extra_info.get("question_type"),
            "step": line.step,
            "response": line.response,
        }
        for (line, row), (result, _) in zip(pairs, scored, strict=True)
    ]


def row_outcomes(
    pairs: Sequence[tuple[DumpLine, BenchmarkRow]],
    scored: Sequence[tuple[ScoredRow, AnswerCheck | None]] | None,
    missing: Sequence[BenchmarkRow],
) -> list[tuple[BenchmarkRow, bool | None]]:
    """Every row with its outcome; missing rows, unscored ones and all rows before scoring get None."""
    if scored is None:
        rows: list[tuple[BenchmarkRow, bool | None]] = [(row, None) for _, row in pairs]
    else:
        rows = [(row, result.correct) for (_, row), (result, _) in zip(pairs, scored, strict=True)]
    return rows + [(row, None) for row in missing]


def wemath_outcomes(rows: Sequence[tuple[BenchmarkRow, bool | None]]) -> list[Outcome]:
    """The WeMath rows as metric inputs (pure).

    Raises :class:`DumpError` naming a WeMath row that carries no ``problem_id``/``step_key``.
    """
    outcomes = []
    for row, correct in rows:
        if row.benchmark != WEMATH:
            continue
        problem, key = row.extra_info.get("problem_id"), row.extra_info.get("step_key")
        if not problem or not key:
            raise DumpError(
                f"{WEMATH} row {row.id!r} has no extra_info.problem_id/step_key, which WeMath's "
                "four-dimensional metric groups rows by; rebuild it with data_prep/build_benchmarks.py "
                "(keeping its 'key' column), or pass --wemath-metric off"
            )
        outcomes.append(Outcome(str(problem), str(key), correct))
    return outcomes


def wemath_metric(rows: Sequence[tuple[BenchmarkRow, bool | None]]) -> WeMathMetric | None:
    """WeMath's four-dimensional metric of the rows (pure), None when there is no WeMath row."""
    outcomes = wemath_outcomes(rows)
    if not outcomes:
        return None
    try:
        return four_dimensional(outcomes)
    except WeMathError as error:
        raise DumpError(f"{WEMATH}: {error}; --wemath-metric off reports plain accuracy only") from None


def _jsonl(rows: Sequence[dict[str, Any]]) -> Any:
    return lambda handle: handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_outputs(
    out: Path,
    pairs: Sequence[tuple[DumpLine, BenchmarkRow]],
    scored: Sequence[tuple[ScoredRow, AnswerCheck | None]],
    table: Sequence[BenchmarkScore],
    summary: dict[str, Any],
    label: str,
    wemath: WeMathMetric | None = None,
) -> None:
    """Write every output file of a scoring run into ``out`` (each atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    results = result_records(pairs, scored)
    labels = [{"id": r["id"], "correct": r["correct"]} for r in results if r["correct"] is not None]
    generations = [
        {
            "id": label_id(row.benchmark, row.id),
            "response": line.response,
            "annotations": list(row.annotations),
        }
        for line, row in pairs
    ]
    write_atomically(out / "results.jsonl", _jsonl(results), binary=False)
    write_atomically(out / "accuracy_labels.jsonl", _jsonl(labels), binary=False)
    write_atomically(out / "generations.jsonl", _jsonl(generations), binary=False)
    markdown = render_markdown(table, label=label, wemath=wemath)
    write_atomically(out / "table.md", lambda h: h.write(markdown), binary=False)
    write_atomically(
        out / "summary.json", lambda h: h.write(json.dumps(summary, indent=2) + "\n"), binary=False
    )


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m perception_verl.evaluation.score",
        "Score verl validation dumps into the per-benchmark accuracy table.",
        "perception-verl eval-score --dump eval_out/eval_base \\",
        "    --data mathvista.parquet,mathverse.parquet --out scored/base --label base",
    )
    parser.add_argument("--dump", required=True, type=Path, help="a <step>.jsonl dump or validation_data_dir")
    parser.add_argument("--step", type=int, default=None, help="dump step to read (default: the highest)")
    parser.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="FILE[,FILE]",
        help="benchmark parquet files the run evaluated (repeat or comma list)",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for results, labels and the table")
    parser.add_argument("--label", default="ours", help="name of the run's column (default: ours)")
    parser.add_argument(
        "--allow-missing", action="store_true", help="count rows with no generation as missing"
    )
    parser.add_argument(
        "--wemath-metric",
        choices=WEMATH_METRICS,
        default="four-dimensional",
        help="also score WeMath with its IK/IG/CM/RM metric (default), or off: plain accuracy only",
    )
    parser.add_argument("--judge", choices=JUDGES, default="none", help="answer extractor (default: none)")
    parser.add_argument(
        "--judge-url",
        action="append",
        default=[],
        metavar="URL[,URL]",
        help="OpenAI-compatible server base URL(s), repeat or comma list (--judge sglang)",
    )
    parser.add_argument("--judge-model", help="served model name (--judge sglang)")
    parser.add_argument("--api-key-env", help="environment variable holding the judge's API key")
    parser.add_argument("--concurrency", type=int, default=64, help="judge calls in flight (default 64)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    add_request_args(parser)
    parser.add_argument("--id-key", default=DumpKeys.id)
    parser.add_argument("--benchmark-key", default=DumpKeys.benchmark)
    parser.add_argument("--response-key", default=DumpKeys.response)
    parser.add_argument("--ground-truth-key", default=DumpKeys.ground_truth)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    refuse_secret_flags(parser)
    return parser


class _JudgeUnavailable(PerceptionVerlError, RuntimeError):
    pass


async def _extract(
    args: argparse.Namespace, pairs: Sequence[tuple[DumpLine, BenchmarkRow]]
) -> tuple[list[str | None], list[str | None], dict[str, int]]:
    from perception_verl.evaluation.answer_judge import AnswerJudge  # aiohttp only when a judge is named

    endpoint = endpoint_of_args(
        args, url_list(args.judge_url), args.judge_model, args.api_key_env, args.concurrency, args.timeout_s
    )
    judge = AnswerJudge(ChatClientConfig.of(endpoint), max_tokens=args.max_new_tokens)
    try:
        try:
            await judge.start()
        except Exception as error:
            raise _JudgeUnavailable(f"{type(error).__name__}: {error}") from error
        with tqdm(total=len(pairs), desc="extracting", unit="resp", disable=args.no_progress) as bar:
            results = await judge.extract_all(
                [(question_text(row), line.response) for line, row in pairs], on_done=lambda: bar.update(1)
            )
        return [r.text for r in results], [r.failure for r in results], judge.metrics()
    finally:
        await judge.close()


def summarize(
    table: Sequence[BenchmarkScore], dump: Path, judge: str, wemath: WeMathMetric | None = None
) -> dict[str, Any]:
    return {
        "dump": str(dump),
        "judge": judge,
        "benchmarks": [{**asdict(score), "accuracy": score.accuracy} for score in table],
        "wemath_four_dimensional": None if wemath is None else wemath.as_dict(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.judge == "sglang" and (not url_list(args.judge_url) or not args.judge_model):
        parser.error("--judge sglang needs --judge-url and --judge-model")
    if args.judge == "none" and (args.judge_url or args.judge_model):
        parser.error("--judge-url/--judge-model are read only with --judge sglang")
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    keys = DumpKeys(
        response=args.response_key,
        ground_truth=args.ground_truth_key,
        id=args.id_key,
        benchmark=args.benchmark_key,
    )
    try:
        dump = resolve_dump(args.dump, args.step)
        rows = read_benchmark_rows([Path(p) for value in args.data for p in value.split(",") if p.strip()])
        joined = join(read_dump(dump, keys), rows, source=str(dump))
        if joined.missing and not args.allow_missing:
            shown = ", ".join(f"{r.benchmark}/{r.id}" for r in joined.missing[:5])
            raise DumpError(
                f"{len(joined.missing)} benchmark row(s) have no generation in {dump} (e.g. {shown}); "
                "were prompts filtered as overlong, or a benchmark left out of data.val_files? "
                "--allow-missing counts them as missing"
            )
        if args.wemath_metric == "four-dimensional":  # before a judge runs: the rows' structure
            wemath_metric(row_outcomes(joined.pairs, None, joined.missing))
    except DumpError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    judge_metrics: dict[str, int] | None = None
    if args.judge == "sglang":
        try:
            extracted, failures, judge_metrics = asyncio.run(_extract(args, joined.pairs))
        except _JudgeUnavailable as error:
            sys.stderr.write(f"error: judge unavailable: {error}\n")
            return 3
        scored = score_pairs(joined.pairs, extracted, failures)
    else:
        scored = score_pairs(joined.pairs)
    missing: dict[str, int] = {}
    for row in joined.missing:
        missing[row.benchmark] = missing.get(row.benchmark, 0) + 1
    table = tabulate([result for result, _ in scored], missing)
    wemath = None
    if args.wemath_metric == "four-dimensional":
        wemath = wemath_metric(row_outcomes(joined.pairs, scored, joined.missing))
    summary = summarize(table, dump, args.judge, wemath)
    if judge_metrics is not None:
        summary["judge_metrics"] = judge_metrics
    if args.out is not None:
        write_outputs(args.out, joined.pairs, scored, table, summary, args.label, wemath)
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        sys.stdout.write(f"dump: {dump}\n\n" + render_markdown(table, label=args.label, wemath=wemath))
    return 0


if __name__ == "__main__":
    sys.exit(main())
