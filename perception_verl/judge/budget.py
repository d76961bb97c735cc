"""A step-level judge budget: the one owner of retries; failed judge calls are retried by kind until a
deadline, and nothing raises.

:class:`BudgetedJudge` wraps any :class:`~perception_verl.judge.base.Judge`. In training it is the only
place that retries (the HTTP client under it makes single attempts, ``max_retries=0``). A call whose
failure kind may go away (:func:`perception_verl.client.failures.retryable`: server down, timeouts,
5xx, 429, even an exception the backend promised not to raise) is tried again, with the one back-off
(:func:`perception_verl.client.backoff.backoff_delay`, a ``Retry-After`` hint honoured up to
``retry_max_s``), until ``deadline_s`` after ``started``; a judge outage shorter than the deadline
therefore loses no verdict. A final kind (other 4xx, ``context_length``, auth, ``redirect``,
``oversize``, ``truncated``, and answers still malformed after the backend's re-asks, which greedy
decoding repeats) ends the call at once: the sample's perception is excluded in milliseconds, not at
the deadline. Past the deadline the last failure is returned (the reward manager's failure policy then
applies), and a call still in flight at the deadline is abandoned, so a judge slower than its timeout
cannot stretch the step beyond the deadline either. Every outcome is counted by kind
(``failed.<kind>``, ``retried.<kind>``).

A judge unreachable when a loop starts it (:meth:`BudgetedJudge.start`) does not raise either: the
reward manager's constructor already stopped the run if no judge answered at start, so a judge that
went down since is an outage like any other. Each call then tries the start again, within its own
deadline, and a call that cannot start it fails as ``"unavailable"``. A configuration error found at
start (:class:`~perception_verl.client.dialects.DialectError`) still raises.

The deadline is per sample, counted from ``started``: the reward manager passes the moment the sample
entered ``run_single``. verl starts ``run_single`` for every sample of a chunk at once, so for a
batch scored after rollout this is the step's deadline; for rewards streamed during rollout it bounds
each sample from its arrival, and samples that arrive later are not cut short by earlier ones.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence

from perception_verl.client import failures
from perception_verl.client.backoff import backoff_delay
from perception_verl.client.errors import JudgeUnavailable
from perception_verl.judge.base import Judge, JudgeResult

logger = logging.getLogger(__name__)

DEADLINE_FAILURE = "step_deadline"
"""Failure kind of a call that reached the deadline without any answer."""

UNAVAILABLE_FAILURE = "unavailable"
"""Failure kind of a call whose try to start the judge (its health check) found no usable server."""


def retryable(result: JudgeResult) -> bool:
    """A failed result whose kind is worth another try (:func:`perception_verl.client.failures.retryable`)."""
    return not result.ok and failures.retryable(result.failure)


class BudgetedJudge:
    """``inner`` with failed calls retried until a per-sample deadline; :meth:`judge` never raises."""

    def __init__(
        self,
        inner: Judge,
        deadline_s: float,
        *,
        retry_base_s: float = 0.5,
        retry_max_s: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not deadline_s > 0:
            raise ValueError(f"BudgetedJudge deadline_s must be > 0, got {deadline_s!r}")
        self.inner = inner
        self.deadline_s = float(deadline_s)
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self.counters: Counter[str] = Counter()
        self._started = False
        self._start_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"BudgetedJudge({self.inner!r}, deadline_s={self.deadline_s:g})"

    def now(self) -> float:
        """The clock ``started`` is read from."""
        return self._clock()

    async def start(self) -> None:
        """Start the inner judge; one unreachable now is logged and started again by the next call."""
        try:
            await self._start_inner()
        except JudgeUnavailable as error:
            self.counters["start_unavailable"] += 1
            logger.warning("judge unreachable as this worker starts it; each call tries again: %s", error)

    async def _start_inner(self) -> None:
        async with self._start_lock:
            if not self._started:
                await self.inner.start()
                self._started = True

    async def close(self) -> None:
        self._started = False
        await self.inner.close()

    async def _once(self, annotations: Sequence[str], response: str, deadline: float) -> JudgeResult:
        if not self._started:
            try:
                await asyncio.wait_for(self._start_inner(), deadline - self._clock())
            except asyncio.TimeoutError:
                return JudgeResult(verdicts=None, failure=DEADLINE_FAILURE)
            except JudgeUnavailable:
                self.counters["start_unavailable"] += 1
                return JudgeResult(verdicts=None, failure=UNAVAILABLE_FAILURE)
        try:
            remaining = deadline - self._clock()
            return await asyncio.wait_for(self.inner.judge(annotations, response), remaining)
        except asyncio.TimeoutError:
            return JudgeResult(verdicts=None, failure=DEADLINE_FAILURE)
        except Exception as exc:
            logger.warning("judge raised %s; counted as a failed call", type(exc).__name__, exc_info=True)
            return JudgeResult(verdicts=None, failure=f"error:{type(exc).__name__}")

    async def judge(
        self, annotations: Sequence[str], response: str, *, started: float | None = None
    ) -> JudgeResult:
        """The inner judge's result, retried on failure until ``deadline_s`` after ``started`` (or now)."""
        begin = self._clock()
        deadline = (begin if started is None else started) + self.deadline_s
        requests = prompt_tokens = cached_tokens = completion_tokens = 0
        retry = 0
        self.counters["calls"] += 1
        result = JudgeResult(verdicts=None, failure=DEADLINE_FAILURE)
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            result = await self._once(annotations, response, deadline)
            requests += result.requests
            prompt_tokens += result.prompt_tokens
            cached_tokens += result.cached_tokens
            completion_tokens += result.completion_tokens
            if not retryable(result):
                break
            delay = backoff_delay(retry, self.retry_base_s, self.retry_max_s, self._rng, result.retry_after_s)
            if self._clock() + delay >= deadline:
                break
            self.counters["retries"] += 1
            self.counters[f"retried.{result.failure}"] += 1
            retry += 1
            await asyncio.sleep(delay)
        if result.ok:
            self.counters["recovered" if retry else "ok"] += 1
        else:
            self.counters[f"failed.{result.failure}"] += 1
        latency = self._clock() - begin
        return JudgeResult(
            result.verdicts,
            result.failure,
            latency,
            requests,
            result.cached,
            prompt_tokens=prompt_tokens,
            cached_tokens=cached_tokens,
            completion_tokens=completion_tokens,
        )

    def metrics(self) -> dict[str, int]:
        """Budget counters (calls, ok, recovered, retries, retried.<kind>, failed.<kind>), then the inner
        judge's."""
        out = {f"budget.{k}": v for k, v in self.counters.items()}
        inner_metrics = getattr(self.inner, "metrics", None)
        if callable(inner_metrics):
            out.update(inner_metrics())
        return out
