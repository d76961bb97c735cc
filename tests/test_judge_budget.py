"""BudgetedJudge: failed calls and failed starts retried until the deadline, bounded back-off, no raise."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence

import pytest

from perception_verl.client.backoff import backoff_delay
from perception_verl.client.dialects import DialectError
from perception_verl.client.errors import JudgeUnavailable
from perception_verl.judge.base import JudgeResult
from perception_verl.judge.budget import DEADLINE_FAILURE, UNAVAILABLE_FAILURE, BudgetedJudge


class Flaky:
    """A judge backend that answers from a script: a JudgeResult, an exception to raise, or a delay."""

    def __init__(self, script: list[object]) -> None:
        self.script = list(script)
        self.calls = 0

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def judge(self, annotations: Sequence[str], response: str) -> JudgeResult:
        self.calls += 1
        healthy = JudgeResult(verdicts=(1,) * len(annotations), requests=1)
        step = self.script.pop(0) if self.script else healthy
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
            return JudgeResult(verdicts=(1,), requests=1)
        assert isinstance(step, JudgeResult)
        return step


DOWN = JudgeResult(verdicts=None, failure="connection", requests=1)


def judged(judge: BudgetedJudge, **kwargs: float) -> JudgeResult:
    return asyncio.run(judge.judge(["a fact"], "a response", **kwargs))


def test_failures_shorter_than_the_deadline_lose_nothing() -> None:
    inner = Flaky([DOWN, DOWN, OverflowError("int too large"), DOWN])
    judge = BudgetedJudge(inner, deadline_s=30.0, retry_base_s=0.01, retry_max_s=0.02)
    result = judged(judge)
    assert result.ok and result.verdicts == (1,)
    assert inner.calls == 5 and result.requests == 4
    assert judge.counters["recovered"] == 1 and judge.counters["retries"] == 4


def test_past_the_deadline_the_last_failure_is_returned_and_counted() -> None:
    inner = Flaky([DOWN] * 10_000)
    judge = BudgetedJudge(inner, deadline_s=1.5, retry_base_s=0.05, retry_max_s=0.1)
    began = time.monotonic()
    result = judged(judge)
    assert not result.ok and result.failure == "connection"
    assert judge.counters["failed.connection"] == 1 and inner.calls > 2
    assert time.monotonic() - began < 30


def test_a_call_still_in_flight_at_the_deadline_is_abandoned() -> None:
    judge = BudgetedJudge(Flaky([3600.0]), deadline_s=1.5)
    result = judged(judge)
    assert result.failure == DEADLINE_FAILURE


def test_the_deadline_counts_from_the_samples_start() -> None:
    inner = Flaky([])
    judge = BudgetedJudge(inner, deadline_s=5.0)
    result = judged(judge, started=judge.now() - 10.0)
    assert result.failure == DEADLINE_FAILURE and inner.calls == 0


def test_malformed_answers_are_not_retried() -> None:
    inner = Flaky([JudgeResult(verdicts=None, failure="malformed:wrong_count", requests=2)])
    result = judged(BudgetedJudge(inner, deadline_s=30.0))
    assert result.failure == "malformed:wrong_count" and inner.calls == 1


def test_back_off_is_bounded_at_any_retry_count() -> None:
    rng = random.Random(0)
    for retry in (0, 1, 10, 1024, 10**9):
        assert 0.0 <= backoff_delay(retry, 0.5, 4.0, rng) <= 4.0
    with pytest.raises(ValueError, match="deadline_s"):
        BudgetedJudge(Flaky([]), deadline_s=0)


def test_truncated_answers_are_not_retried_and_token_usage_is_summed() -> None:
    cut = JudgeResult(None, "truncated", requests=1, prompt_tokens=700, completion_tokens=512)
    inner = Flaky([cut])
    result = judged(BudgetedJudge(inner, deadline_s=30.0))
    assert result.failure == "truncated" and inner.calls == 1
    assert (result.prompt_tokens, result.completion_tokens) == (700, 512)
    down = JudgeResult(verdicts=None, failure="connection", requests=1, prompt_tokens=0)
    ok = JudgeResult(verdicts=(1,), requests=1, prompt_tokens=650, cached_tokens=600, completion_tokens=9)
    result = judged(BudgetedJudge(Flaky([down, ok]), deadline_s=30.0, retry_base_s=0.01, retry_max_s=0.02))
    assert result.ok
    assert (result.prompt_tokens, result.cached_tokens, result.completion_tokens) == (650, 600, 9)


class StartsLate(Flaky):
    """A backend whose start (its health check) finds no server the first ``down`` times."""

    def __init__(self, down: int) -> None:
        super().__init__([])
        self.down = down
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.down:
            raise JudgeUnavailable(f"no usable judge server (start {self.starts})")


def test_a_judge_unreachable_at_start_is_started_again_by_the_calls() -> None:
    inner = StartsLate(down=3)
    judge = BudgetedJudge(inner, deadline_s=30.0, retry_base_s=0.01, retry_max_s=0.02)

    async def go() -> JudgeResult:
        await judge.start()  # logged, not raised
        return await judge.judge(["a fact"], "a response")

    result = asyncio.run(go())
    assert result.ok and inner.starts == 4 and inner.calls == 1
    assert judge.counters["start_unavailable"] == 3 and judge.counters["recovered"] == 1


def test_a_judge_that_never_starts_fails_each_call_as_unavailable() -> None:
    judge = BudgetedJudge(StartsLate(down=10**6), deadline_s=1.5, retry_base_s=0.05, retry_max_s=0.1)
    result = judged(judge)
    assert result.failure == UNAVAILABLE_FAILURE and judge.counters["failed.unavailable"] == 1


def test_a_configuration_error_at_start_still_raises() -> None:
    class WrongDialect(Flaky):
        async def start(self) -> None:
            raise DialectError("constrained output is on but the server is neither SGLang nor vLLM")

    judge = BudgetedJudge(WrongDialect([]), deadline_s=5.0)
    with pytest.raises(DialectError):
        asyncio.run(judge.start())


@pytest.mark.parametrize(
    "kind", ["http_400", "context_length", "http_401", "http_403", "http_404", "redirect", "oversize"]
)
def test_a_final_kind_ends_the_call_at_once_and_is_counted(kind: str) -> None:
    inner = Flaky([JudgeResult(verdicts=None, failure=kind, requests=1)])
    judge = BudgetedJudge(inner, deadline_s=30.0, retry_base_s=0.01, retry_max_s=0.02)
    result = judged(judge)
    assert result.failure == kind and inner.calls == 1
    assert judge.counters[f"failed.{kind}"] == 1 and judge.counters["retries"] == 0


def test_retryable_kinds_are_retried_and_counted_by_kind() -> None:
    script = [
        JudgeResult(verdicts=None, failure=kind, requests=1)
        for kind in ("timeout", "connection", "reset", "bad_json", "http_429", "http_503", "unavailable")
    ]
    inner = Flaky(script)
    judge = BudgetedJudge(inner, deadline_s=30.0, retry_base_s=0.01, retry_max_s=0.02)
    assert judged(judge).ok and inner.calls == 8
    assert judge.counters["retried.http_429"] == 1 and judge.counters["retried.timeout"] == 1


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    rng = random.Random(0)
    assert backoff_delay(0, 0.01, 4.0, rng, retry_after_s=2.0) >= 2.0
    assert backoff_delay(0, 0.01, 4.0, rng, retry_after_s=3600.0) == 4.0
