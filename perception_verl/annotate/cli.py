"""Command line of ``data_prep/collect_annotations.py``: options, endpoints, store, summary."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from perception_verl.annotate.pipeline import PipelineConfig, RunSummary, run_pipeline
from perception_verl.annotate.sources import Columns, Problem, load_problems
from perception_verl.annotate.store import ResultStore, StoreError
from perception_verl.argparsing import command_parser
from perception_verl.client import ChatClient, ChatClientConfig, JudgeUnavailable
from perception_verl.client.cli_secrets import refuse_secret_flags
from perception_verl.client.replicas import url_list
from perception_verl.data.loading import SourceError
from perception_verl.judge_flags import add_request_args, endpoint_of_args

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_UNAVAILABLE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "perception-verl collect-annotations",
        "Collect visual annotations (atomic facts about each figure) with LLM endpoints.\n\n"
        "Solve each problem k times with a multimodal model, keep the solutions whose answer\n"
        "verifies, and have a text model extract atomic visual facts. Results are appended to\n"
        "--out as they finish; rerun the same command to resume.",
        "perception-verl collect-annotations --input problems.parquet --out annotations.jsonl \\",
        "    --solver-url http://HOST:8000 --solver-model Qwen/Qwen2.5-VL-72B-Instruct \\",
        "    --extractor-url http://HOST:30000 --extractor-model Qwen/Qwen2.5-32B-Instruct-AWQ",
    )
    data = parser.add_argument_group("input and output")
    data.add_argument(
        "--input", nargs="+", required=True, help="parquet/jsonl file(s), folder(s) or hub id(s)"
    )
    data.add_argument("--split", help="read only this split (hub ids, shard folders), e.g. train")
    data.add_argument("--id-column", default="id")
    data.add_argument("--question-column", default="problem")
    data.add_argument("--answer-column", default="answer")
    data.add_argument("--image-column", default="images")
    data.add_argument("--limit", type=int, help="annotate only the first N problems of the input")
    data.add_argument(
        "--out", "--output", dest="output", required=True, type=Path,
        help="result JSONL (appended to; resumable)",
    )  # fmt: skip
    data.add_argument("--retry-failed", action="store_true", help="retry problems recorded as failed")
    data.add_argument("--fsync-every", type=int, default=16, help="fsync the output every N rows")

    for role, default_tokens in (("solver", 4096), ("extractor", 1024)):
        group = parser.add_argument_group(f"{role} endpoint")
        group.add_argument(
            f"--{role}-url", action="append", required=True, help="base URL (comma list for replicas)"
        )
        group.add_argument(f"--{role}-model", required=True, help="served model name")
        group.add_argument(f"--{role}-api-key-env", help="environment variable holding the API key")
        group.add_argument(f"--{role}-max-tokens", type=int, default=default_tokens)
        group.add_argument(
            f"--{role}-extra-body", type=_json_object, help="JSON object merged into each request"
        )

    run = parser.add_argument_group("sampling and extraction")
    run.add_argument("--samples", type=int, default=4, help="solutions sampled per problem (k)")
    run.add_argument("--temperature", type=float, help="solver temperature (default 1.0 if k > 1, else 0)")
    run.add_argument("--max-facts", type=int, default=12, help="most facts accepted per problem")
    run.add_argument("--reask", type=int, default=1, help="re-asks after an unusable extraction reply")
    run.add_argument(
        "--json-object", action="store_true", help='ask for {"facts": [...]} with response_format json_object'
    )

    http = parser.add_argument_group("requests")
    http.add_argument("--concurrency", type=int, default=32, help="requests in flight per endpoint")
    http.add_argument("--problems-in-flight", type=int, help="default: 2 * ceil(concurrency / samples)")
    http.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    http.add_argument("--no-health-check", action="store_true", help="skip /health and /v1/models at start")
    add_request_args(http, timeout_flag="")

    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    refuse_secret_flags(parser)
    return parser


def client_config(args: argparse.Namespace, role: str) -> ChatClientConfig:
    urls, model = url_list(getattr(args, f"{role}_url")), getattr(args, f"{role}_model")
    key_env = getattr(args, f"{role}_api_key_env")
    return ChatClientConfig.of(endpoint_of_args(args, urls, model, key_env, args.concurrency, args.timeout))


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    in_flight = args.problems_in_flight or 2 * math.ceil(args.concurrency / max(1, args.samples))
    return PipelineConfig(
        solver_model=args.solver_model,
        extractor_model=args.extractor_model,
        samples=args.samples,
        temperature=args.temperature,
        solve_max_tokens=args.solver_max_tokens,
        extract_max_tokens=args.extractor_max_tokens,
        max_facts=args.max_facts,
        reask=args.reask,
        json_object=args.json_object,
        problems_in_flight=in_flight,
        retry_failed=args.retry_failed,
        solver_extra_body=args.solver_extra_body,
        extractor_extra_body=args.extractor_extra_body,
    )


async def collect(
    problems: Sequence[Problem],
    output: Path,
    solver_config: ChatClientConfig,
    extractor_config: ChatClientConfig,
    config: PipelineConfig,
    *,
    health_check: bool = True,
    fsync_every: int = 16,
    progress: bool = True,
) -> RunSummary:
    """Open the store (resume state) and both endpoints, then run the pipeline."""
    with ResultStore(output, fsync_every=fsync_every) as store:
        solver, extractor = ChatClient(solver_config), ChatClient(extractor_config)
        try:
            if health_check:
                await asyncio.gather(solver.start(), extractor.start())
            summary = await run_pipeline(problems, store, solver, extractor, config, progress=progress)
            summary.usage = {"solver": endpoint_usage(solver), "extractor": endpoint_usage(extractor)}
            return summary
        finally:
            await asyncio.gather(solver.close(), extractor.close())


def endpoint_usage(client: ChatClient) -> dict[str, int]:
    """The token usage an endpoint's replies reported (``usage.*`` counters of its client)."""
    prefix = "usage."
    return {k[len(prefix) :]: v for k, v in client.metrics().items() if k.startswith(prefix)}


def _emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    try:
        config = pipeline_config(args)
        solver_config, extractor_config = client_config(args, "solver"), client_config(args, "extractor")
        columns = Columns(args.id_column, args.question_column, args.answer_column, args.image_column)
        problems = load_problems(args.input, columns, args.split)
    except (ValueError, SourceError) as error:
        logger.error("%s", error)
        return EXIT_USAGE
    if args.limit is not None:
        problems = problems[: args.limit]
    try:
        with logging_redirect_tqdm():
            summary = asyncio.run(
                collect(
                    problems,
                    args.output,
                    solver_config,
                    extractor_config,
                    config,
                    health_check=not args.no_health_check,
                    fsync_every=args.fsync_every,
                    progress=not args.no_progress,
                )
            )
    except (JudgeUnavailable, StoreError) as error:
        logger.error("%s", error)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        logger.warning(
            "interrupted; finished problems are in %s, rerun the same command to resume", args.output
        )
        return EXIT_INTERRUPTED
    logger.info(
        "done: %d problems, %d skipped as already done, %d annotated, %d failed %s; output %s",
        summary.total,
        summary.skipped,
        summary.extracted,
        summary.failed,
        summary.failed_by_stage,
        args.output,
    )
    _emit(json.dumps(summary.as_dict(), sort_keys=True))
    return EXIT_OK
