"""Reward integrity under faults: accuracy-check overhead, a math-verify bomb batch, a judge outage.

    python -m benchmarks.reward_integrity [--json] [--checks 200] [--bombs 16] [--batch 64]
                                          [--accuracy-timeout 5] [--outage-batch 1024] [--outage 5]
                                          [--deadline 60] [--dead-deadline 10]
                                          [--reject-batch 256] [--reject-deadline 600]
                                          [--only overhead|bombs|outage|reject]

1. **Per-check overhead**: the same honest answers checked one at a time by the worker-process pool
   (:class:`perception_verl.workers.pool.CheckPool`, what the manager uses) and by the former
   in-thread call (``loop.run_in_executor(None, accuracy_reward, ...)``), alternating; the ratio is
   median(pool) / median(thread) per check, and the same for a concurrent batch of ``--batch``.
2. **Bomb batch**: ``--batch`` responses through verl's ``RewardLoopWorker`` (in-process, no Ray),
   ``--bombs`` of them the issue's ``e^{e^{e^{e^{e^{e}}}}}`` checked without the size guard (so only the
   process deadline stops them), the rest honest and correct: scored 1, timed out, wall vs the timeout.
3. **Judge outage**: ``--outage-batch`` responses with the loopback judge dying mid-batch and coming
   back on its port after ``--outage`` s (``judge_step_deadline_s=--deadline``), then a judge that never
   comes back (``--dead-deadline``): responses judged, excluded, wall time vs the deadline.
4. **Judge that rejects everything**: ``--reject-batch`` responses against a loopback judge answering
   every chat request with HTTP 400 "maximum context length" (``judge_step_deadline_s=--reject-deadline``,
   the default 600 s): a final failure kind, so every sample's perception is excluded at once; requests
   sent, excluded, wall time vs the deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks import _common
from perception_verl.rewards.accuracy import accuracy_reward
from perception_verl.workers.pool import CheckPool
from tests.support.bombs import BOMB_RESPONSE, unguarded_accuracy
from tests.support.fake_sglang import JUDGE_MODEL, fake_sglang
from tests.support.verl_harness import Sample, build_dataproto

FACTS = ["JKLM is a parallelogram", "JK = 3f - 6"]


def honest(i: int) -> str:
    think = f"JKLM is a parallelogram, so JK = 3f - 6. Case {i}."
    answer = f"\\frac{{{2 * (7 + i % 5)}}}{{2}}"  # equal to the ground truth, but only math-verify knows
    return f"<think>\n{think}\n</think>\n<answer>\n\\boxed{{{answer}}}\n</answer>"


def sample(i: int, response: str) -> Sample:
    return Sample("Find f. <image>", response, str(7 + i % 5), FACTS, uid=str(i // 8))


async def overhead(checks: int, batch: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    pool = CheckPool(accuracy_reward, timeout_s=10.0)
    await pool.start()
    cases = [(honest(i), str(7 + i % 5)) for i in range(checks)]
    pool_s: list[float] = []
    thread_s: list[float] = []
    try:
        for response, truth in cases:
            started = time.perf_counter()
            await pool.run(response, truth)
            pool_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            await loop.run_in_executor(None, accuracy_reward, response, truth)
            thread_s.append(time.perf_counter() - started)
        batch_pool: list[float] = []
        batch_thread: list[float] = []
        for _ in range(3):
            started = time.perf_counter()
            await asyncio.gather(*(pool.run(r, t) for r, t in cases[:batch]))
            batch_pool.append(time.perf_counter() - started)
            started = time.perf_counter()
            threads = (loop.run_in_executor(None, accuracy_reward, r, t) for r, t in cases[:batch])
            await asyncio.gather(*threads)
            batch_thread.append(time.perf_counter() - started)
    finally:
        pool.close()
    return {
        "check_ms_pool": 1e3 * statistics.median(pool_s),
        "check_ms_thread": 1e3 * statistics.median(thread_s),
        "check_ratio_pool_vs_thread": statistics.median(pool_s) / statistics.median(thread_s),
        "batch_s_pool": statistics.median(batch_pool),
        "batch_s_thread": statistics.median(batch_thread),
        "batch_ratio_pool_vs_thread": statistics.median(batch_pool) / statistics.median(batch_thread),
    }


async def score_batch(config: Any, data: Any) -> tuple[float, list[dict[str, float]]]:
    worker = _common.reward_worker(config)
    manager = worker.reward_manager
    try:
        started = time.perf_counter()
        outputs = await worker.compute_score_batch(data)
        return time.perf_counter() - started, [o["reward_extra_info"] for o in outputs]
    finally:
        await manager.close()


def bomb_batch(
    tokenizer_dir: Path, tokenizer: Any, batch: int, bombs: int, timeout_s: float
) -> dict[str, float]:
    from perception_verl.scorer import accuracy as scorer_module

    every = max(batch // max(bombs, 1), 1)
    texts = [BOMB_RESPONSE if i % every == 0 and i // every < bombs else honest(i) for i in range(batch)]
    samples = [sample(i, text) for i, text in enumerate(texts)]
    is_bomb = [s.response == BOMB_RESPONSE for s in samples]
    config = _common.verl_config(tokenizer_dir, {"judge": "lexical", "accuracy_timeout_s": timeout_s})
    original = scorer_module.accuracy_reward
    scorer_module.accuracy_reward = unguarded_accuracy
    try:
        wall, infos = asyncio.run(score_batch(config, build_dataproto(tokenizer, samples)))
    finally:
        scorer_module.accuracy_reward = original
    honest_infos = [info for info, bomb in zip(infos, is_bomb, strict=True) if not bomb]
    return {
        "bomb_batch": float(batch),
        "bombs": float(sum(is_bomb)),
        "honest_scored_1": float(sum(info["accuracy"] == 1.0 for info in honest_infos)),
        "honest": float(len(honest_infos)),
        "timed_out": float(sum(info["accuracy_timed_out"] for info in infos)),
        "bomb_wall_s": wall,
        "bomb_wall_vs_timeout": wall / timeout_s,
    }


def outage(
    tokenizer_dir: Path, tokenizer: Any, batch: int, outage_s: float | None, deadline_s: float
) -> dict[str, float]:
    samples = [sample(i, honest(i)) for i in range(batch)]
    server = fake_sglang(latency_s=0.01)
    server.start()
    revived: list[Any] = []

    def fault() -> None:
        while server.routes["/v1/chat/completions"] < batch // 5:
            time.sleep(0.01)
        port = server.port
        server.stop()
        if outage_s is not None:
            time.sleep(outage_s)
            again = fake_sglang(port=port, latency_s=0.01)
            again.start()
            revived.append(again)

    kwargs = {"judge": "sglang", "judge_urls": server.url, "judge_model": JUDGE_MODEL}
    kwargs.update({"max_retries": 1, "timeout_s": 5, "judge_step_deadline_s": deadline_s})
    config = _common.verl_config(tokenizer_dir, kwargs)
    killer = threading.Thread(target=fault, daemon=True)
    killer.start()
    try:
        wall, infos = asyncio.run(score_batch(config, build_dataproto(tokenizer, samples)))
        killer.join(timeout=120)
    finally:
        server.stop()
        for again in revived:
            again.stop()
    excluded = sum(info["judge_failed"] for info in infos)
    return {
        "judged": float(batch - excluded),
        "excluded": float(excluded),
        "wall_s": wall,
        "wall_vs_deadline": wall / deadline_s,
    }


CONTEXT_400 = (
    "This model's maximum context length is 4096 tokens. However, you requested 4608 tokens "
    "(4096 in the messages, 512 in the completion). Please reduce the length of the messages or completion."
)


def rejecting_judge(tokenizer_dir: Path, tokenizer: Any, batch: int, deadline_s: float) -> dict[str, float]:
    """A batch against a judge that answers 400 (context length) to every chat request."""
    samples = [sample(i, honest(i)) for i in range(batch)]
    with fake_sglang(fail_rate=1.0, fail_status=400, fail_text=CONTEXT_400) as server:
        kwargs = {"judge": "sglang", "judge_urls": server.url, "judge_model": JUDGE_MODEL}
        kwargs.update({"timeout_s": 5, "judge_step_deadline_s": deadline_s})
        config = _common.verl_config(tokenizer_dir, kwargs)
        wall, infos = asyncio.run(score_batch(config, build_dataproto(tokenizer, samples)))
        sent = server.routes["/v1/chat/completions"]
    excluded = sum(info["perception_excluded"] for info in infos)
    return {
        "reject_batch": float(batch),
        "reject_requests": float(sent),
        "reject_excluded": float(excluded),
        "reject_wall_s": wall,
        "reject_wall_vs_deadline": wall / deadline_s,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--bombs", type=int, default=16)
    parser.add_argument("--accuracy-timeout", type=float, default=5.0)
    parser.add_argument("--outage-batch", type=int, default=1024)
    parser.add_argument("--outage", type=float, default=5.0)
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--dead-deadline", type=float, default=10.0)
    parser.add_argument("--reject-batch", type=int, default=256)
    parser.add_argument("--reject-deadline", type=float, default=600.0)
    parser.add_argument("--only", choices=("overhead", "bombs", "outage", "reject"), default=None)
    args = parser.parse_args(argv)
    wanted = {args.only} if args.only else {"overhead", "bombs", "outage", "reject"}
    figures: dict[str, float] = {}
    if "overhead" in wanted:
        figures.update(asyncio.run(overhead(args.checks, args.batch)))
        _common.emit_table("accuracy check: worker-process pool vs in-thread call", list(figures.items()))
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = _common.tiny_tokenizer_dir(Path(tmp))
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        if "bombs" in wanted:
            bombs = bomb_batch(tokenizer_dir, tokenizer, args.batch, args.bombs, args.accuracy_timeout)
            title = f"bomb batch (accuracy_timeout_s={args.accuracy_timeout:g})"
            _common.emit_table(title, list(bombs.items()))
            figures.update(bombs)
        if "outage" in wanted:
            back = outage(tokenizer_dir, tokenizer, args.outage_batch, args.outage, args.deadline)
            title = f"judge down {args.outage:g} s, deadline {args.deadline:g} s"
            _common.emit_table(title, list(back.items()))
            dead = outage(tokenizer_dir, tokenizer, args.outage_batch, None, args.dead_deadline)
            _common.emit_table(f"judge never back, deadline {args.dead_deadline:g} s", list(dead.items()))
            figures.update({f"outage_{k}": v for k, v in back.items()})
            figures.update({f"dead_{k}": v for k, v in dead.items()})
        if "reject" in wanted:
            reject = rejecting_judge(tokenizer_dir, tokenizer, args.reject_batch, args.reject_deadline)
            title = f"judge answers 400 to every request, deadline {args.reject_deadline:g} s"
            _common.emit_table(title, list(reject.items()))
            figures.update(reject)
    if args.json:
        _common.emit_json(figures)


if __name__ == "__main__":
    main()
