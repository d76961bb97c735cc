"""One perception scorer: the judge, the accuracy workers and the per-sample scoring.

:class:`PerceptionScorer` is built from one validated :class:`PerceptionRewardConfig` and is the only
place that builds a judge (:mod:`perception_verl.scorer.factory`) and the accuracy pool
(:mod:`perception_verl.scorer.accuracy`). verl's reward manager, the ``score`` CLI and the perception
labeller all score through it.

Per sample (:meth:`PerceptionScorer.score`): ask the judge which annotations the response states
(skipped when there are none), check the answer with math-verify in a worker process concurrently,
apply the failure policy, and combine everything with :func:`score_response`.

Lifetime: one scorer per reward manager (or CLI run), bound to one event loop: the loop verl gives
the manager (``RewardManagerBase.loop``, the loop its reward-loop worker runs ``run_single`` on), or for
a CLI the loop of its own ``asyncio.run``. The judge (HTTP session, dedupe cache), the accuracy workers
and the admission gate are created on first use on that loop and shared by every sample scored there;
used from any other loop the scorer raises :class:`ScorerLoopError` instead of opening a second set.
:meth:`PerceptionScorer.close` releases them; verl never calls it, so the accuracy workers are also
stopped when the scorer is collected or the interpreter exits (the judge's session then goes with the
process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from perception_verl.client.errors import JudgeUnavailable
from perception_verl.client.health import check_health
from perception_verl.client.loop_binding import LoopBinding
from perception_verl.config import PerceptionRewardConfig
from perception_verl.errors import PerceptionVerlError
from perception_verl.judge.base import Judge, JudgeResult
from perception_verl.judge.budget import BudgetedJudge
from perception_verl.rewards.accuracy import AccuracyResult, settled_accuracy
from perception_verl.rewards.total import score_response
from perception_verl.scorer.accuracy import accuracy_pool, checked_accuracy
from perception_verl.scorer.extras import Scored
from perception_verl.scorer.factory import judge_plan
from perception_verl.workers.pool import CheckPool

logger = logging.getLogger(__name__)


class JudgeFailedError(PerceptionVerlError, RuntimeError):
    """Raised by :meth:`PerceptionScorer.score` under ``failure_policy=raise`` when the judge failed."""


class ScorerLoopError(PerceptionVerlError, RuntimeError):
    """A scorer used from an event loop other than the one it is bound to."""


@dataclass
class _Held:
    """What the scorer holds on its loop: the started judge, the accuracy workers, the admission gate."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    judge: Judge | None = None
    pool: CheckPool | None = None
    gate: asyncio.Semaphore | None = None
    workers_started: bool = False


class PerceptionScorer:
    """Scores responses with one validated config: one judge client and one accuracy pool, on one loop.

    ``reward_router_address`` and ``verl_model_path`` locate a judge verl launched (training only).
    ``budgeted`` wraps the HTTP judge in :class:`BudgetedJudge`, the one retry owner (the trainer's
    setting; off for the offline CLIs, whose client retries up to ``max_retries``); ``reask`` is how
    often the HTTP judge re-asks after a malformed verdict. ``loop`` is the event loop the scorer is
    bound to (``None``: the first loop that uses it). Judge construction errors (a bad option, an
    unimportable judge) are raised here; nothing is started or contacted until first use.
    """

    def __init__(
        self,
        options: PerceptionRewardConfig,
        *,
        reward_router_address: str | None = None,
        verl_model_path: str | None = None,
        budgeted: bool = True,
        reask: int = 1,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.options = options
        plan = judge_plan(options, reward_router_address, verl_model_path, budgeted=budgeted, reask=reask)
        self.judge_name = plan.label
        self._judge_config = plan.http
        self._factory = plan.make
        self._binding = LoopBinding(loop)
        self._held = _Held()
        self._finalizer = weakref.finalize(self, _stop_workers, self._held)

    def check_health(self) -> None:
        """Health-check the HTTP judge now, blocking (no-op for other judges): :func:`check_health`.

        The reward manager calls it as it is built, in the reward worker, before the first rollout: a
        judge nobody answers for raises ``JudgeUnavailable``, and ``constrained`` output against a
        server of unknown dialect raises ``DialectError``, both with the URL on the first line.
        """
        if self._judge_config is None:
            return
        config = self._judge_config
        logger.info("perception scorer: judge %s (health check at start)", self.judge_name)
        try:
            check_health(config.client, constrained=config.constrained)
        except JudgeUnavailable as error:
            raise JudgeUnavailable(f"perception judge health check failed at start: {error}") from None

    def _bound(self) -> _Held:
        """What the scorer holds, after checking that the running loop is the scorer's loop."""
        self._binding.check(
            ScorerLoopError,
            "this PerceptionScorer is bound to another event loop (the reward manager's loop, or the first "
            "loop that used it); score on that loop, or build one scorer per loop",
        )
        return self._held

    async def judge(self) -> Judge | None:
        """The started judge (``None`` for ``judge=none``), started once on the scorer's loop.

        A failed start (e.g. the health check found no server) is raised and retried by the next caller;
        the training judge (:class:`BudgetedJudge`) instead logs an unreachable server and each call
        retries the start within its deadline (the manager's constructor already checked it once).
        """
        if self._factory is None:
            return None
        state = self._bound()
        if state.judge is not None:
            return state.judge
        async with state.lock:
            if state.judge is None:
                judge = self._factory()
                try:
                    await judge.start()
                except BaseException:
                    await judge.close()
                    raise
                state.judge = judge
                logger.info("perception judge %s started on this loop", type(judge).__name__)
        return state.judge

    async def start(self) -> None:
        """Start the judge and the accuracy workers now (a worker's start, not a batch's cost)."""
        await self.judge()
        state = self._bound()
        if not state.workers_started:
            state.workers_started = True
            await self._pool().start()

    def _pool(self) -> CheckPool:
        state = self._bound()
        if state.pool is None:
            state.pool = accuracy_pool(self.options.accuracy_timeout_s)
        return state.pool

    def intake(self) -> asyncio.Semaphore | contextlib.nullcontext[None]:
        """Admission gate: ``2 x max_concurrency`` samples in progress at once with an HTTP judge.

        verl's reward loop starts ``run_single`` for a whole chunk at once, and the event loop runs
        every task's first step before it polls any socket: without a gate, the CPU work of all
        samples (slicing, decoding, prompt building) would come before the first judge request.
        Admitting a bounded number keeps the judge busy while the rest of the work proceeds.
        """
        if self.options.judge != "sglang":
            return contextlib.nullcontext()
        state = self._bound()
        if state.gate is None:
            state.gate = asyncio.Semaphore(2 * self.options.max_concurrency)
        return state.gate

    async def accuracy(self, response: str, ground_truth: str) -> AccuracyResult:
        """math-verify's verdict, checked in a worker process stopped at ``accuracy_timeout_s`` (answers that
        string checks decide, e.g. the ground truth's own text, are settled here without a worker)."""
        settled = settled_accuracy(response, ground_truth)
        if settled is not None:
            return settled
        return await checked_accuracy(self._pool(), response, ground_truth)

    async def verdicts(
        self, annotations: Sequence[str], response: str, started: float | None = None
    ) -> JudgeResult | None:
        """The judge's result (``None`` without annotations or judge); raises under ``failure_policy=raise``.

        A :class:`BudgetedJudge` retries failed calls until ``judge_step_deadline_s`` after ``started``
        (``time.monotonic()`` of the sample's arrival).
        """
        if not annotations or self._factory is None:
            return None
        judge = await self.judge()
        if isinstance(judge, BudgetedJudge):
            result = await judge.judge(annotations, response, started=started)
        else:
            result = await judge.judge(annotations, response)
        if not result.ok and self.options.failure_policy == "raise":
            raise JudgeFailedError(
                f"perception judge failed ({result.failure}) and reward.reward_kwargs.failure_policy=raise"
            )
        return result

    async def score(
        self, response: str, ground_truth: str, annotations: Sequence[str], started: float | None = None
    ) -> Scored:
        """Judge and check the answer concurrently, apply the failure policy, and combine the components."""
        check = asyncio.ensure_future(self.accuracy(response, ground_truth))
        try:
            result = await self.verdicts(annotations, response, started)
        except BaseException:
            check.cancel()
            raise
        accuracy = await check
        verdicts = result.verdicts if result is not None and result.ok else None
        breakdown = score_response(
            response,
            ground_truth,
            verdicts,
            weights=self.options.weights,
            num_annotations=len(annotations),
            accuracy=accuracy,
        )
        return Scored(breakdown, result)

    async def close(self) -> None:
        """Close the judge and stop the accuracy workers (on the scorer's loop); a later call starts anew."""
        state = self._bound()
        judge, state.judge = state.judge, None
        _stop_workers(state)
        if judge is not None:
            await judge.close()


def _stop_workers(held: _Held) -> None:
    """Stop the accuracy workers (also when the scorer is collected or the interpreter exits)."""
    pool, held.pool = held.pool, None
    held.workers_started = False
    if pool is not None:
        pool.close()
