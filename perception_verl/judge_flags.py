"""Command-line options of the HTTP judge, shared by ``score`` and ``label_perception``.

``--judge sglang`` or ``--judge vllm`` picks the LLM judge served over HTTP (``vllm`` also presets
``--judge-server vllm``); ``--judge-url`` takes one URL, a comma list, or is repeated for replicas;
``--judge-server auto|sglang|vllm`` names the dialect (``auto``: asked at the health check), which
decides the request field that carries the ``--constrained`` regex. :func:`cli_scorer` turns the
options into the one scorer (:mod:`perception_verl.scorer`) both commands use. :func:`usage_totals`
sums the token usage of judge results for the run summaries.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import replace

from perception_verl.client.cli_secrets import refuse_secret_flags
from perception_verl.client.dialects import SERVER_SETTINGS
from perception_verl.client.endpoint import DEFAULTS, JudgeEndpoint
from perception_verl.client.replicas import url_list
from perception_verl.config import PerceptionRewardConfig, with_endpoint
from perception_verl.judge.base import TRUNCATED, JudgeResult
from perception_verl.scorer import PerceptionScorer

HTTP_JUDGES = ("sglang", "vllm")


def add_http_judge_args(parser: argparse.ArgumentParser) -> None:
    """The HTTP judge's options; ``--judge`` is the caller's, with :data:`HTTP_JUDGES` among its choices."""
    parser.add_argument(
        "--judge-url", action="append", default=[], metavar="URL",
        help="judge server base URL; a comma list or repeated for replicas (--judge sglang|vllm)",
    )  # fmt: skip
    parser.add_argument("--judge-model", help="served model name (--judge sglang|vllm)")
    parser.add_argument(
        "--judge-server", choices=SERVER_SETTINGS, default=None,
        help="the judge server's dialect (default: auto, read at the health check; --judge vllm: vllm)",
    )  # fmt: skip
    parser.add_argument(
        "--api-key-env", metavar="NAME",
        help="NAME of the environment variable holding the judge's API key, sent as a Bearer token (the key "
        "itself is never a flag or part of --judge-url: it would show in the process list and in messages)",
    )  # fmt: skip
    refuse_secret_flags(parser)
    parser.add_argument("--constrained", action="store_true", help="regex-constrained verdicts")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="judge answer budget (default 512)")
    parser.add_argument("--reask", type=int, default=1, help="re-asks on a malformed verdict (default 1)")
    parser.add_argument("--max-response-chars", type=int, default=6000)
    parser.add_argument(
        "--max-reply-bytes", type=int, default=None, metavar="N",
        help="bound on one judge reply; a larger one fails as 'oversize' (default: 64 KiB + 64 a token)",
    )  # fmt: skip
    add_request_args(parser)


def add_request_args(parser: argparse._ActionsContainer, *, timeout_flag: str = "--timeout-s") -> None:
    """``--max-retries`` and ``--health-timeout-s`` (and ``timeout_flag``, unless empty), every CLI's
    request options, with the defaults of :class:`JudgeEndpoint`."""
    if timeout_flag:
        parser.add_argument(
            timeout_flag, type=float, default=DEFAULTS.timeout_s,
            help=f"seconds per request (default {DEFAULTS.timeout_s:g})",
        )  # fmt: skip
    parser.add_argument(
        "--max-retries", type=int, default=DEFAULTS.max_retries,
        help="retries of a failed request of a retryable kind: timeout, connection, 429, 5xx "
        f"(default {DEFAULTS.max_retries})",
    )  # fmt: skip
    parser.add_argument(
        "--health-timeout-s", type=float, default=DEFAULTS.health_timeout_s,
        help=f"bound on waiting for a server still loading at start (default {DEFAULTS.health_timeout_s:g})",
    )  # fmt: skip


def endpoint_of_args(
    args: argparse.Namespace,
    urls: tuple[str, ...],
    model: str | None,
    api_key_env: str | None,
    concurrency: int,
    timeout_s: float,
) -> JudgeEndpoint:
    """The :class:`JudgeEndpoint` of a command line: where (``urls``, ``model``, ``api_key_env``) and how
    hard to try (``concurrency``, ``timeout_s``, and :func:`add_request_args`' options in ``args``)."""
    return JudgeEndpoint(
        urls, model, api_key_env, concurrency, timeout_s, args.max_retries, args.health_timeout_s
    )


def judge_urls(values: Iterable[str]) -> tuple[str, ...]:
    """Every URL in repeated and/or comma-separated ``--judge-url`` values."""
    return url_list(list(values))


def judge_server(args: argparse.Namespace) -> str:
    """The dialect setting: ``--judge-server``, else ``vllm`` for ``--judge vllm``, else ``auto``.

    ValueError when ``--judge vllm`` meets ``--judge-server sglang``.
    """
    if args.judge == "vllm" and args.judge_server == "sglang":
        raise ValueError("--judge vllm contradicts --judge-server sglang; drop one of them")
    if args.judge_server is not None:
        return str(args.judge_server)
    return "vllm" if args.judge == "vllm" else "auto"


def check_http_judge_args(args: argparse.Namespace) -> str | None:
    """A message naming what is missing for ``--judge sglang|vllm``, or an HTTP-judge option given to
    another judge (which would ignore it), or None."""
    if args.judge not in HTTP_JUDGES:
        stray = [
            flag
            for flag, value in (
                ("--judge-url", args.judge_url),
                ("--judge-model", args.judge_model),
                ("--api-key-env", args.api_key_env),
                ("--judge-server", args.judge_server),
                ("--constrained", args.constrained),
            )
            if value
        ]
        if stray:
            verb, pronoun = ("needs", "it") if len(stray) == 1 else ("need", "them")
            flags = ", ".join(stray)
            return f"{flags} {verb} --judge sglang or vllm (--judge {args.judge} ignores {pronoun})"
        return None
    if not judge_urls(args.judge_url) or not args.judge_model:
        return f"--judge {args.judge} needs --judge-url and --judge-model"
    return None


def judge_options(args: argparse.Namespace, concurrency: int) -> PerceptionRewardConfig:
    """The :class:`~perception_verl.config.PerceptionRewardConfig` of a CLI's judge options.

    ``args.judge`` is ``none``, ``lexical`` or one of :data:`HTTP_JUDGES`; ``concurrency`` caps the HTTP
    judge's requests in flight. ValueError on a contradictory dialect (see :func:`judge_server`).
    """
    if args.judge not in HTTP_JUDGES:
        return PerceptionRewardConfig(judge=args.judge, max_response_chars=args.max_response_chars)
    endpoint = endpoint_of_args(
        args, judge_urls(args.judge_url), args.judge_model, args.api_key_env, concurrency, args.timeout_s
    )
    endpoint = replace(endpoint, server=judge_server(args), max_reply_bytes=args.max_reply_bytes)
    return with_endpoint(
        endpoint,
        judge="sglang",
        max_new_tokens=args.max_new_tokens,
        constrained=args.constrained,
        max_response_chars=args.max_response_chars,
    )


def cli_scorer(args: argparse.Namespace, concurrency: int) -> PerceptionScorer:
    """The :class:`~perception_verl.scorer.PerceptionScorer` of a CLI's judge options (offline: HTTP
    calls are not retried until a step deadline; ``--reask`` re-asks). ValueError on a bad value;
    ImportError when the judge's module cannot be imported."""
    return PerceptionScorer(judge_options(args, concurrency), budgeted=False, reask=args.reask)


def usage_totals(results: Sequence[JudgeResult | None]) -> dict[str, int]:
    """Requests, token usage and truncated replies summed over judge results (None: not judged)."""
    done = [r for r in results if r is not None]
    return {
        "requests": sum(r.requests for r in done),
        "prompt_tokens": sum(r.prompt_tokens for r in done),
        "cached_tokens": sum(r.cached_tokens for r in done),
        "completion_tokens": sum(r.completion_tokens for r in done),
        "truncated": sum(1 for r in done if r.failure == TRUNCATED),
    }


def format_usage(usage: dict[str, int]) -> str:
    """One summary line for :func:`usage_totals`."""
    prompt, cached = usage["prompt_tokens"], usage["cached_tokens"]
    share = f", {cached / prompt:.1%}" if prompt else ""
    return (
        f"judge usage: {usage['requests']} requests, {prompt} prompt tokens ({cached} cached{share}), "
        f"{usage['completion_tokens']} completion tokens, {usage['truncated']} cut off at --max-new-tokens"
    )
