"""The SGLang judge backend: one chat request per distinct (annotations, response) pair.

Works with any OpenAI-compatible chat server: SGLang (``python -m sglang.launch_server``), several
SGLang replicas, SGLang's router, or vLLM. With ``constrained=True`` every request carries SGLang's
``regex`` sampling parameter (a top-level field of its chat request), so the answer cannot drift
from ``<info1>0|1</info1> ...``; vLLM spells this differently (``guided_regex``, or
``structured_outputs: {"regex": ...}`` in recent releases) and ignores SGLang's field, so leave
``constrained`` off there.

Malformed answers are re-asked (``reask`` times). Greedy decoding would give the same answer to
the same prompt, so a re-ask sends the conversation so far plus the judge's faulty answer and a
short correction naming the expected tags; the shared prompt prefix is unchanged, so SGLang's
radix cache still serves it.

Judge faults never raise: a request that fails after the client's retries, or an answer still
malformed after the re-asks, gives a :class:`JudgeResult` with ``verdicts=None`` and ``failure``
set (``"timeout"``, ``"http_503"``, ``"malformed:wrong_count"``, ...). Successful results are
cached (bounded LRU) and identical concurrent calls share one request; failures are not cached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from perception_verl.client.chat import ChatClient, ChatClientConfig
from perception_verl.client.errors import ChatError
from perception_verl.judge.base import JudgeResult
from perception_verl.judge.prompt import build_messages, verdict_regex
from perception_verl.judge.sanitize import sanitize_response
from perception_verl.judge.verdict import VerdictError, parse_verdicts

logger = logging.getLogger(__name__)

CacheKey = tuple[tuple[str, ...], str]


@dataclass(frozen=True)
class SGLangJudgeConfig:
    """How to reach the judge model and how to ask it."""

    client: ChatClientConfig
    max_new_tokens: int = 512
    constrained: bool = False
    reask: int = 1
    max_response_chars: int = 6000
    cache_size: int = 65536

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"SGLangJudgeConfig.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.reask < 0:
            raise ValueError(f"SGLangJudgeConfig.reask must be >= 0, got {self.reask}")
        if self.cache_size < 0:
            raise ValueError(f"SGLangJudgeConfig.cache_size must be >= 0, got {self.cache_size}")


def reask_message(n: int) -> str:
    """The correction sent after a malformed answer."""
    span = "<info1>" if n == 1 else f"<info1> to <info{n}>"
    return (
        f"Your answer did not follow the format. Reply again with exactly {n} "
        f"tag{'s' if n != 1 else ''}, {span}, each holding only 1 or 0, and nothing else."
    )


class _LRU:
    """A small bounded mapping from cache key to verdicts, least recently used evicted first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[CacheKey, tuple[int, ...]] = OrderedDict()

    def get(self, key: CacheKey) -> tuple[int, ...] | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: CacheKey, value: tuple[int, ...]) -> None:
        if self._size == 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class SGLangJudge:
    """Judge over an OpenAI-compatible chat server, with dedupe cache, re-ask and fault capture."""

    def __init__(self, config: SGLangJudgeConfig, *, client: ChatClient | None = None) -> None:
        self.config = config
        self.client = client if client is not None else ChatClient(config.client)
        self._cache = _LRU(config.cache_size)
        self._pending: dict[CacheKey, asyncio.Task[JudgeResult]] = {}
        self._counters: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"SGLangJudge(client={self.client!r}, constrained={self.config.constrained})"

    async def start(self) -> None:
        """Health-check the server(s); raises ``JudgeUnavailable`` naming each URL and its fault."""
        await self.client.start()

    async def close(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        self._pending.clear()
        await self.client.close()

    async def judge(self, annotations: Sequence[str], response: str) -> JudgeResult:
        """Verdicts for ``response`` against ``annotations``; a failed JudgeResult instead of raising."""
        started = time.perf_counter()
        facts = tuple(annotations)
        self._counters["calls"] += 1
        if not facts:
            return JudgeResult(verdicts=(), latency_s=time.perf_counter() - started)
        key: CacheKey = (facts, sanitize_response(response, self.config.max_response_chars))
        cached = self._cache.get(key)
        if cached is not None:
            self._counters["cache_hits"] += 1
            return JudgeResult(verdicts=cached, latency_s=time.perf_counter() - started, cached=True)
        task = self._pending.get(key)
        shared = task is not None and task.get_loop() is asyncio.get_running_loop()
        if task is None or not shared:
            task = asyncio.ensure_future(self._ask(key))
            self._pending[key] = task
            task.add_done_callback(lambda done, k=key: self._settle(k, done))
        else:
            self._counters["shared_in_flight"] += 1
        result = await asyncio.shield(task)
        latency = time.perf_counter() - started
        if shared:
            return JudgeResult(result.verdicts, result.failure, latency, requests=0, cached=True)
        return JudgeResult(result.verdicts, result.failure, latency, result.requests, cached=False)

    def _settle(self, key: CacheKey, task: asyncio.Task[JudgeResult]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if task.cancelled() or task.exception() is not None:
            return
        result = task.result()
        if result.verdicts is not None:
            self._cache.put(key, result.verdicts)

    async def _ask(self, key: CacheKey) -> JudgeResult:
        facts, text = key
        n = len(facts)
        base = build_messages(facts, text)
        messages = base
        extra = {"regex": verdict_regex(n)} if self.config.constrained else None
        requests = 0
        kind = "missing_tags"
        for attempt in range(self.config.reask + 1):
            if attempt:
                self._counters["reasks"] += 1
            try:
                reply = await self.client.chat(
                    messages, max_tokens=self.config.max_new_tokens, temperature=0.0, extra_body=extra
                )
            except ChatError as err:
                requests += err.attempts
                self._counters[f"failed.{err.kind}"] += 1
                logger.warning("judge request failed for good: %s", err)
                return JudgeResult(verdicts=None, failure=err.kind, requests=requests)
            requests += reply.requests
            try:
                verdicts = parse_verdicts(reply.text, n)
            except VerdictError as err:
                kind = err.kind
                self._counters[f"malformed.{kind}"] += 1
                messages = [
                    *base,
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": reask_message(n)},
                ]
                continue
            self._counters["judged"] += 1
            return JudgeResult(verdicts=verdicts, requests=requests)
        self._counters[f"failed.malformed:{kind}"] += 1
        logger.warning("judge answer still malformed after %d re-ask(s): %s", self.config.reask, kind)
        return JudgeResult(verdicts=None, failure=f"malformed:{kind}", requests=requests)

    def metrics(self) -> dict[str, int]:
        """Judge counters (calls, cache_hits, shared_in_flight, reasks, malformed.<kind>, failed.<kind>,
        judged, cache_size) merged with the client's under ``client.``."""
        out = dict(self._counters)
        out["cache_size"] = len(self._cache)
        out.update({f"client.{k}": v for k, v in self.client.metrics().items()})
        return out
