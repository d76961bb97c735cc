"""The judge against a real vLLM or SGLang server: prefix-cache reuse by prompt layout, and throughput.

    python -m benchmarks.engine_judge [--server vllm|sglang] [--json] [--problems 32] [--per-problem 8]
                                      [--response-chars 1200] [--block-size 128] [--cap 32]
                                      [--url URL --model NAME]

Without ``--url`` it builds the tiny random-weight Qwen2 chat model of ``tests/support`` and starts one
server with prefix caching, and stops it at the end: ``--server vllm`` (default) the CPU build of vLLM in
``.venv-engine`` (or ``PV_ENGINE_PYTHON``), ``--server sglang`` SGLang 0.5.23 on CPU in ``.venv-sglang``
(or ``PV_SGLANG_PYTHON``; radix cache, ``--enable-cache-report --enable-metrics``). Every request is
constrained to the verdict format (in the server's dialect: vLLM ``structured_outputs.regex``, SGLang
``regex``), so even random weights answer a few dozen tokens and the runs differ in the prompt side only.

1. **Cached-token share by layout**, from the server's own counters of prompt tokens looked up / found
   in its prefix cache (vLLM ``vllm:prefix_cache_queries`` / ``_hits``; SGLang
   ``sglang:prompt_tokens_total`` / ``sglang:cached_tokens_total``), one batch per layout of
   :mod:`tests.support.layouts` over the distinct (annotations, response) pairs, each batch from a clean
   cache (vLLM: a ``cache_salt`` of its own; SGLang: its radix cache flushed first), ``--cap`` requests
   in flight.
   ``ceiling`` is the share a prefix cache could reach at best with requests sent one at a time (whole
   blocks shared with any earlier prompt of the batch, counted with the server's own tokenizer and chat
   template; SGLang's radix cache shares single tokens: block 1).
2. **Throughput**, same server, same workload (every response, duplicates included), one run each:
   our judge (:class:`~perception_verl.judge.sglang.OpenAIChatJudge`: dedupe, one keep-alive session,
   our layout, cap ``--cap``) vs a client built like the paper's reference (:func:`_baseline.naive_verdicts`:
   one request per response, no dedupe, a fresh HTTP session per request, response first, the same cap
   and constraint). The naive client runs first, so ours cannot profit from its cache (its prompts open
   with the response, ours with the system prompt; on SGLang the cache is also flushed before each
   run). ``speedup`` = naive wall / our wall.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import _common
from benchmarks._baseline import naive_verdicts
from perception_verl.client.chat import ChatClientConfig
from perception_verl.client.dialects import regex_fields
from perception_verl.judge.prompt import verdict_regex
from perception_verl.judge.sglang import OpenAIChatJudge, OpenAIChatJudgeConfig
from tests.support.layouts import LAYOUTS, layout_messages
from tests.support.prefix_reuse import measure_prefix_reuse
from tests.support.sglang_server import SGLangServer, flush_cache, start_tiny_sglang_judge
from tests.support.vllm_server import VLLMServer, start_tiny_judge

SERVED = "tiny-judge"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=32, help="problems in the batch")
    parser.add_argument("--per-problem", type=int, default=8, help="rollouts per problem")
    parser.add_argument("--response-chars", type=int, default=1200, help="median response length")
    parser.add_argument("--seed", type=int, default=0, help="workload seed")
    parser.add_argument("--server", choices=("vllm", "sglang"), default="vllm", help="which engine serves")
    parser.add_argument("--block-size", type=int, default=128, help="vLLM KV block size (multiple of 32)")
    parser.add_argument("--cap", type=int, default=32, help="requests in flight, both clients")
    parser.add_argument("--url", default=None, help="use this running server (of --server) instead")
    parser.add_argument("--model", default=SERVED, help="served model name at --url")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return parser.parse_args(argv)


def engine_python(server: str = "vllm") -> Path:
    variable, venv = (
        ("PV_SGLANG_PYTHON", ".venv-sglang") if server == "sglang" else ("PV_ENGINE_PYTHON", ".venv-engine")
    )
    configured = os.environ.get(variable)
    path = Path(configured) if configured else _common.REPO_ROOT / venv / "bin" / "python"
    if not path.exists():
        sys.exit(f"no {server} interpreter at {path}: run `bash scripts/setup.sh` or set {variable}")
    return path


def cache_block(args: argparse.Namespace) -> int:
    """The prefix cache's sharing unit in tokens: vLLM's block size; SGLang's radix cache, one token."""
    return 1 if args.server == "sglang" else args.block_size


def block_ceiling(token_lists: Sequence[Sequence[int]], block: int) -> float:
    """Best prefix-cache share: per prompt, its leading whole blocks already seen in an earlier prompt."""
    seen: set[bytes] = set()
    hit = total = 0
    for tokens in token_lists:
        total += len(tokens)
        digest = hashlib.sha256()
        shared = True
        for start in range(0, len(tokens) - len(tokens) % block, block):
            digest.update(repr(tokens[start : start + block]).encode())
            key = digest.copy().digest()
            if shared and key in seen:
                hit += block
            else:
                shared = False
            seen.add(key)
    return hit / total if total else 0.0


def prompt_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return list(tokenizer.encode(text, add_special_tokens=False))


def layout_runs(url: str, model: str, pairs: list[tuple[tuple[str, ...], str]], args: argparse.Namespace,
                tokenizer: Any | None) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    for layout in LAYOUTS:
        batch = [(layout_messages(layout, facts, text), verdict_regex(len(facts))) for facts, text in pairs]
        salt = f"bench-{layout}-{time.time()}"
        reuse = measure_prefix_reuse(url, model, batch, salt=salt, concurrency=args.cap, server=args.server)
        row = {"share": reuse.share, "queried": reuse.queried, "hit": reuse.hit, "wall_s": reuse.wall_s}
        if tokenizer is not None:
            tokens = [prompt_tokens(tokenizer, m) for m, _ in batch]
            row["ceiling"] = block_ceiling(tokens, cache_block(args))
        out[layout] = row
    return out


async def _ours(
    url: str, model: str, samples: Sequence[Any], cap: int, server: str
) -> tuple[float, int, dict[str, int]]:
    client = ChatClientConfig(urls=(url,), model=model, max_concurrency=cap, timeout_s=600.0, server=server)
    judge = OpenAIChatJudge(OpenAIChatJudgeConfig(client=client, constrained=True))
    await judge.start()
    started = time.perf_counter()
    try:
        results = await asyncio.gather(*(judge.judge(s.annotations, s.response) for s in samples))
    finally:
        await judge.close()
    wall = time.perf_counter() - started
    failed = sum(1 for r in results if not r.ok)
    return wall, failed, judge.metrics()


async def _naive(url: str, model: str, samples: Sequence[Any], cap: int, server: str) -> tuple[float, int]:
    gate = asyncio.Semaphore(cap)
    started = time.perf_counter()

    async def one(sample: Any) -> tuple[int, ...]:
        extra = regex_fields(server, verdict_regex(len(sample.annotations)))
        return await naive_verdicts(url, model, list(sample.annotations), sample.response, gate, extra)

    results = await asyncio.gather(*(one(s) for s in samples), return_exceptions=True)
    return time.perf_counter() - started, sum(1 for r in results if isinstance(r, BaseException))


def run(args: argparse.Namespace, url: str, model: str, tokenizer: Any | None) -> dict[str, Any]:
    workload = _common.build_workload(
        args.problems, args.per_problem, seed=args.seed, response_chars=args.response_chars
    )
    samples = list(workload.samples)
    pairs = list(dict.fromkeys(_common.pair_key(s) for s in samples))
    layouts = layout_runs(url, model, pairs, args, tokenizer)
    if args.server == "sglang":
        flush_cache(url)
    naive_wall, naive_failed = asyncio.run(_naive(url, model, samples, args.cap, args.server))
    if args.server == "sglang":
        flush_cache(url)
    ours_wall, ours_failed, metrics = asyncio.run(_ours(url, model, samples, args.cap, args.server))
    sent = metrics.get("client.requests_sent", 0)
    return {
        "server": args.server,
        "responses": len(samples),
        "distinct_pairs": len(pairs),
        "block_size": cache_block(args),
        "layouts": layouts,
        "cached_share_ours": layouts["ours"]["share"],
        "cached_share_response_first": layouts["response_first"]["share"],
        "cached_share_system_then_response": layouts["system_then_response"]["share"],
        "ours_wall_s": ours_wall,
        "ours_requests": sent,
        "ours_failed": ours_failed,
        "ours_requests_per_s": sent / ours_wall if ours_wall else 0.0,
        "ours_usage_cached_share": metrics.get("client.usage.cached_tokens", 0)
        / max(1, metrics.get("client.usage.prompt_tokens", 0)),
        "naive_wall_s": naive_wall,
        "naive_requests": len(samples),
        "naive_failed": naive_failed,
        "speedup": naive_wall / ours_wall if ours_wall else 0.0,
    }


def report(result: dict[str, Any]) -> str:
    if result["server"] == "sglang":
        cache = "SGLang radix cache (token granular)"
        counters = "SGLang cached_tokens_total / prompt_tokens_total"
    else:
        cache = f"vLLM block size {result['block_size']}"
        counters = "vLLM prefix_cache hits / queries"
    lines = [
        f"workload: {result['responses']} responses, {result['distinct_pairs']} distinct pairs; {cache}",
        f"cached-token share ({counters}):",
    ]
    for layout, row in result["layouts"].items():
        ceiling = f", ceiling {row['ceiling']:.3f}" if "ceiling" in row else ""
        tokens = f"({row['hit']:.0f} of {row['queried']:.0f} tokens)"
        lines.append(f"  {layout:22s} {row['share']:.3f}{ceiling}  {tokens}")
    ours = result["cached_share_ours"]
    for other in ("response_first", "system_then_response"):
        share = result[f"cached_share_{other}"]
        ratio = f"{ours / share:.2f}x" if share else "n/a (it reuses nothing)"
        lines.append(f"  ours / {other}: {ratio}")
    lines.append(
        f"throughput: ours {result['ours_requests']} requests in {result['ours_wall_s']:.2f} s "
        f"({result['ours_requests_per_s']:.1f}/s, {result['ours_failed']} failed); naive "
        f"{result['naive_requests']} in {result['naive_wall_s']:.2f} s ({result['naive_failed']} failed); "
        f"speed-up {result['speedup']:.2f}x"
    )
    return "\n".join(lines)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so the server started here is stopped on the way out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if args.url:
        result = run(args, args.url.rstrip("/"), args.model, None)
    else:
        from transformers import AutoTokenizer

        with tempfile.TemporaryDirectory(prefix="pv_engine_bench_") as folder:
            python = engine_python(args.server)
            server: VLLMServer | SGLangServer
            if args.server == "sglang":
                server = start_tiny_sglang_judge(python, Path(folder), SERVED)
            else:
                server = start_tiny_judge(python, Path(folder), SERVED, block_size=args.block_size)
            try:
                server.wait_ready()
                tokenizer = AutoTokenizer.from_pretrained(str(server.model_dir))
                result = run(args, server.url, SERVED, tokenizer)
            finally:
                server.stop()
    _common.emit(report(result))
    if args.json:
        _common.emit_json(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
