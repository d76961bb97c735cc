"""The HTTP judge backend: one chat request per distinct (annotations, response) pair.

Works with any OpenAI-compatible chat server: SGLang (``python -m sglang.launch_server``), several
SGLang replicas, SGLang's router, or vLLM. With ``constrained=True`` every request carries the
verdict regex in the field of the server's dialect (SGLang's top-level ``regex``, vLLM's
``structured_outputs.regex``; :mod:`perception_verl.client.dialects`), so the answer cannot drift
from ``<info1>0|1</info1> ...``. The dialect comes from ``client.server`` or, with ``auto``, from what
the server says at the health check; :meth:`OpenAIChatJudge.start` stops with
:class:`~perception_verl.client.dialects.DialectError` when ``constrained`` is on and the server is
neither, rather than send a field it would ignore.

A reply cut off at ``max_new_tokens`` (``finish_reason=length``) is the failure ``"truncated"``: it is
counted on its own and not re-asked (the same budget would cut the answer again). Every reply's token
usage is summed into the result (``prompt_tokens``, ``cached_tokens``, ``completion_tokens``).

Malformed answers are re-asked (``reask`` times: the malformed kind's budget; no other failure is
re-asked here, and a failed request is not retried here either: the step-deadline judge,
:class:`~perception_verl.judge.budget.BudgetedJudge`, owns retries). Greedy decoding would give the
same answer to the same prompt, so a re-ask sends the conversation so far plus the judge's faulty
answer, cut to :func:`reask_excerpt` (at most ``REASK_CHARS_PER_TOKEN * max_new_tokens`` characters:
a hostile 30 MB answer is never sent back), and a short correction naming the expected tags; the shared
prompt prefix is unchanged, so SGLang's radix cache still serves it.

Judge faults never raise: a request that fails (after the client's own tries, if any), or an answer still
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

from perception_verl.client.chat import ChatClient, ChatClientConfig, ChatReply
from perception_verl.client.errors import ChatError
from perception_verl.client.health import start_checked
from perception_verl.judge.base import TRUNCATED, JudgeResult
from perception_verl.judge.prompt import build_messages, verdict_regex
from perception_verl.judge.sanitize import sanitize_response
from perception_verl.judge.verdict import VerdictError, parse_verdicts

logger = logging.getLogger(__name__)

CacheKey = tuple[tuple[str, ...], str]

REASK_CHARS_PER_TOKEN = 8
"""Characters of a malformed answer a re-ask sends back, per token of the judge's answer budget."""


def reask_excerpt(text: str, max_new_tokens: int) -> str:
    """The part of a malformed answer a re-ask quotes: its head, at most 8 characters a budget token."""
    limit = REASK_CHARS_PER_TOKEN * max(max_new_tokens, 1)
    return text if len(text) <= limit else text[:limit] + " [...]"


@dataclass(frozen=True)
class OpenAIChatJudgeConfig:
    """How to reach the judge model and how to ask it."""

    client: ChatClientConfig
    max_new_tokens: int = 512
    constrained: bool = False
    reask: int = 1
    max_response_chars: int = 6000
    cache_size: int = 65536

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"judge config max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.reask < 0:
            raise ValueError(f"judge config reask must be >= 0, got {self.reask}")
        if self.cache_size < 0:
            raise ValueError(f"judge config cache_size must be >= 0, got {self.cache_size}")


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


class OpenAIChatJudge:
    """Judge over an OpenAI-compatible chat server, with dedupe cache, re-ask and fault capture."""

    def __init__(self, config: OpenAIChatJudgeConfig, *, client: ChatClient | None = None) -> None:
        self.config = config
        self.client = client if client is not None else ChatClient(config.client)
        self._cache = _LRU(config.cache_size)
        self._pending: dict[CacheKey, asyncio.Task[JudgeResult]] = {}
        self._counters: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"OpenAIChatJudge(client={self.client!r}, constrained={self.config.constrained})"

    async def start(self) -> None:
        """Health-check the server(s); raises ``JudgeUnavailable`` naming each URL and its fault, and
        ``DialectError`` when ``constrained`` is on but no known constraint field fits the server."""
        await start_checked(self.client, constrained=self.config.constrained)

    @property
    def dialect(self) -> str | None:
        """The server dialect the client resolved at start (None: unknown)."""
        return self.client.dialect

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
            return JudgeResult(
                result.verdicts,
                result.failure,
                latency,
                requests=0,
                cached=True,
                retry_after_s=result.retry_after_s,
            )
        return JudgeResult(
            result.verdicts,
            result.failure,
            latency,
            result.requests,
            cached=False,
            prompt_tokens=result.prompt_tokens,
            cached_tokens=result.cached_tokens,
            completion_tokens=result.completion_tokens,
            retry_after_s=result.retry_after_s,
        )

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
        regex = verdict_regex(n) if self.config.constrained else None
        tally = _Tally()
        kind = "missing_tags"
        for attempt in range(self.config.reask + 1):
            if attempt:
                self._counters["reasks"] += 1
            try:
                reply = await self.client.chat(
                    messages, max_tokens=self.config.max_new_tokens, temperature=0.0, regex=regex
                )
            except ChatError as err:
                tally.requests += err.attempts
                self._counters[f"failed.{err.kind}"] += 1
                logger.warning("judge request failed: %s", err)
                return tally.result(None, err.kind, err.retry_after_s)
            tally.add(reply)
            if reply.finish_reason == "length":
                self._counters[f"failed.{TRUNCATED}"] += 1
                logger.warning(
                    "judge answer cut off at max_new_tokens=%d (finish_reason=length); not re-asked",
                    self.config.max_new_tokens,
                )
                return tally.result(None, TRUNCATED)
            try:
                verdicts = parse_verdicts(reply.text, n)
            except VerdictError as err:
                kind = err.kind
                self._counters[f"malformed.{kind}"] += 1
                messages = [
                    *base,
                    {"role": "assistant", "content": reask_excerpt(reply.text, self.config.max_new_tokens)},
                    {"role": "user", "content": reask_message(n)},
                ]
                continue
            self._counters["judged"] += 1
            return tally.result(verdicts, None)
        self._counters[f"failed.malformed:{kind}"] += 1
        logger.warning("judge answer still malformed after %d re-ask(s): %s", self.config.reask, kind)
        return tally.result(None, f"malformed:{kind}")

    def metrics(self) -> dict[str, int]:
        """Judge counters (calls, cache_hits, shared_in_flight, reasks, malformed.<kind>, failed.<kind>
        with ``failed.truncated`` for replies cut off at max_new_tokens, judged, cache_size) merged with
        the client's under ``client.`` (its ``usage.*`` token sums among them)."""
        out = dict(self._counters)
        out["cache_size"] = len(self._cache)
        out.update({f"client.{k}": v for k, v in self.client.metrics().items()})
        return out


@dataclass
class _Tally:
    """Requests and token usage of one judge call, over its re-asks."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0

    def add(self, reply: ChatReply) -> None:
        self.requests += reply.requests
        if reply.usage is not None:
            self.prompt_tokens += reply.usage.prompt_tokens
            self.cached_tokens += reply.usage.cached_tokens or 0
            self.completion_tokens += reply.usage.completion_tokens

    def result(
        self, verdicts: tuple[int, ...] | None, failure: str | None, retry_after_s: float | None = None
    ) -> JudgeResult:
        return JudgeResult(
            verdicts=verdicts,
            failure=failure,
            requests=self.requests,
            prompt_tokens=self.prompt_tokens,
            cached_tokens=self.cached_tokens,
            completion_tokens=self.completion_tokens,
            retry_after_s=retry_after_s,
        )


# The names this backend had before it spoke vLLM's dialect too.
SGLangJudge = OpenAIChatJudge
SGLangJudgeConfig = OpenAIChatJudgeConfig
