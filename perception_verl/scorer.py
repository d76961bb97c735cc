"""One perception scorer: the judge client, the accuracy workers and the per-sample scoring.

:class:`PerceptionScorer` is built from one validated :class:`PerceptionRewardConfig` and is the only
place that builds a judge (the offline :class:`LexicalJudge`, or :class:`OpenAIChatJudge` over HTTP,
wrapped in :class:`BudgetedJudge` for training) and the accuracy :class:`CheckPool`. verl's reward
manager, the ``score`` CLI and the perception labeller all score through it.

Per sample (:meth:`PerceptionScorer.score`): ask the judge which annotations the response states
(skipped when there are none), check the answer with math-verify in a worker process concurrently,
apply the failure policy, and combine everything with :func:`score_response`. :func:`extra_info_of`
turns the outcome into the numeric ``reward_extra_info`` verl stacks into the batch: always the same
keys (:data:`EXTRA_KEYS`; the ``judge_*_tokens`` keys carry the judge requests' token usage, 0 for
cache hits and offline judges); ``acc`` repeats ``accuracy`` because verl's validation picks ``acc`` as
its core metric (``val-core/<source>/acc/...``). The manager adds one text key, the judge's name
(:data:`perception_verl.integration.metrics.JUDGE_KEY`).

Lifetime: verl builds one reward manager, hence one scorer, per reward-loop worker process and runs
its samples on that worker's event loop. The judge (HTTP session, dedupe cache, health check), the
accuracy workers and the admission gate are created on first use on the running loop and shared by
every sample scored there; :meth:`PerceptionScorer.close` releases them (verl never calls it, so the
scorer's finalizer closes the judge at interpreter exit, best effort).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from perception_verl.client.replicas import with_scheme
from perception_verl.errors import PerceptionVerlError
from perception_verl.integration.config import PerceptionRewardConfig, RewardConfigError, judge_label
from perception_verl.judge.base import TRUNCATED, Judge, JudgeResult
from perception_verl.judge.budget import BudgetedJudge
from perception_verl.rewards.accuracy import AccuracyResult, accuracy_reward
from perception_verl.rewards.deadline import CheckCrashed, CheckPool, CheckTimeout
from perception_verl.rewards.ground_truth import GroundTruthError, ground_truth_text
from perception_verl.rewards.total import RewardBreakdown, score_response

if TYPE_CHECKING:
    from perception_verl.judge.sglang import OpenAIChatJudgeConfig

logger = logging.getLogger(__name__)

EXTRA_KEYS = (
    "score",
    "acc",
    "accuracy",
    "format",
    "perception",
    "perception_excluded",
    "repetition",
    "num_annotations",
    "judge_failed",
    "judge_latency_s",
    "judge_cached",
    "judge_truncated",
    "judge_prompt_tokens",
    "judge_cached_tokens",
    "judge_completion_tokens",
    "accuracy_timed_out",
    "ground_truth_invalid",
)

ACCURACY_TIMEOUT = "timeout"

ACCURACY_WORKERS = 4
"""Accuracy checks run at once per scorer and event loop at normal priority (see :class:`CheckPool`)."""

ACCURACY_WARMUP = ("<answer>\\boxed{\\frac{2}{2}}</answer>", "1")
"""One check the accuracy workers' fork server runs first, so workers start with math-verify warm."""


class JudgeFailedError(PerceptionVerlError, RuntimeError):
    """Raised by :meth:`PerceptionScorer.score` under ``failure_policy=raise`` when the judge failed."""


@dataclass(frozen=True)
class Scored:
    """One sample's outcome: the reward components and the judge's result (``None``: not judged)."""

    breakdown: RewardBreakdown
    result: JudgeResult | None

    @property
    def verdicts(self) -> tuple[int, ...] | None:
        """The verdicts the score used (``None`` when perception was left out)."""
        return self.result.verdicts if self.result is not None and self.result.ok else None


def judge_endpoint(
    options: PerceptionRewardConfig, reward_router_address: str | None, verl_model_path: str | None
) -> tuple[tuple[str, ...], str]:
    """Where the HTTP judge lives: the configured URLs, else the router of the judge verl launched."""
    if options.judge_urls:
        urls = options.judge_urls
        model = options.judge_model
    elif reward_router_address:
        urls = (with_scheme(reward_router_address),)
        model = options.judge_model or verl_model_path
    else:
        raise RewardConfigError(
            "reward.reward_kwargs.judge=sglang needs reward.reward_kwargs.judge_urls (an external judge) "
            "or reward.reward_model.enable=True (a judge launched by verl)"
        )
    if not model:
        raise RewardConfigError("reward.reward_kwargs.judge_model is required with judge=sglang")
    return urls, model


def judge_client_config(
    options: PerceptionRewardConfig, reward_router_address: str | None, verl_model_path: str | None
) -> Any:
    """The HTTP judge's :class:`~perception_verl.client.chat.ChatClientConfig` for these options."""
    from perception_verl.client.chat import ChatClientConfig

    urls, model = judge_endpoint(options, reward_router_address, verl_model_path)
    return ChatClientConfig(
        urls=urls,
        model=model,
        api_key_env=options.api_key_env,
        max_concurrency=options.max_concurrency,
        timeout_s=options.timeout_s,
        max_retries=options.max_retries,
        health_timeout_s=options.health_timeout_s,
        server=options.judge_server,
        max_reply_bytes=options.max_reply_bytes,
    )


def checked_ground_truth(value: Any, row: str) -> tuple[str, bool]:
    """(text, invalid) of a sample's ground truth; an invalid one is logged, gives ``""`` (accuracy 0).

    Every rollout of a prompt shares its ground truth, so accuracy 0 for all of them adds nothing to
    a GRPO group's advantages: the failure is counted (``ground_truth_invalid``), never scored as an
    answer (``str(None)`` would have made ``\\boxed{None}`` correct).
    """
    try:
        return ground_truth_text(value), False
    except GroundTruthError as error:
        logger.warning(
            "sample %s: %s; accuracy 0, counted in reward/ground_truth_invalid/count (fix the data set)",
            row,
            error,
        )
        return "", True


def rule_score(response: str, ground_truth: Any, row: str) -> float:
    """Rule-only reward (accuracy, format, repetition; no perception) with the default weights, in-process."""
    truth, _ = checked_ground_truth(ground_truth, row)
    return float(score_response(response, truth, None).score)


def extra_info_of(
    breakdown: RewardBreakdown, result: JudgeResult | None, *, ground_truth_invalid: bool = False
) -> dict[str, float]:
    """The numeric ``reward_extra_info`` of one sample; same keys for every sample (:data:`EXTRA_KEYS`)."""
    failed = result is not None and not result.ok
    return {
        "score": float(breakdown.score),
        "acc": float(breakdown.accuracy),
        "accuracy": float(breakdown.accuracy),
        "format": float(breakdown.format),
        "perception": float(breakdown.perception) if breakdown.perception is not None else 0.0,
        "perception_excluded": float(breakdown.perception_excluded),
        "repetition": float(breakdown.repetition),
        "num_annotations": float(breakdown.num_annotations),
        "judge_failed": float(failed),
        "judge_latency_s": float(result.latency_s) if result is not None else 0.0,
        "judge_cached": float(result.cached) if result is not None else 0.0,
        "judge_truncated": float(result is not None and result.failure == TRUNCATED),
        "judge_prompt_tokens": float(result.prompt_tokens) if result is not None else 0.0,
        "judge_cached_tokens": float(result.cached_tokens) if result is not None else 0.0,
        "judge_completion_tokens": float(result.completion_tokens) if result is not None else 0.0,
        "accuracy_timed_out": float(breakdown.accuracy_reason == ACCURACY_TIMEOUT),
        "ground_truth_invalid": float(ground_truth_invalid),
    }


@dataclass
class _LoopState:
    """What one event loop holds: the started judge, the accuracy workers, the admission gate."""

    loop: asyncio.AbstractEventLoop
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    judge: Judge | None = None
    pool: CheckPool | None = None
    gate: asyncio.Semaphore | None = None


_SHARED: weakref.WeakValueDictionary[tuple[Any, ...], PerceptionScorer] = weakref.WeakValueDictionary()
_SHARED_GUARD = threading.Lock()


class PerceptionScorer:
    """Scores responses with one validated config: one judge client and one accuracy pool per loop.

    ``reward_router_address`` and ``verl_model_path`` locate a judge verl launched (training only).
    ``budgeted`` wraps the HTTP judge in :class:`BudgetedJudge`, the one retry owner (failed calls of a
    retryable kind retried until ``judge_step_deadline_s``, final kinds at once; its client tries each
    request once; the trainer's setting, off for the offline CLIs, whose client retries up to
    ``max_retries``); ``reask`` is how often
    the HTTP judge re-asks after a malformed verdict. Judge construction errors (a bad option, an
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
    ) -> None:
        self.options = options
        self.judge_name = str(options.judge)
        self._judge_config: OpenAIChatJudgeConfig | None = None
        self._factory = self._judge_factory(reward_router_address, verl_model_path, budgeted, reask)
        self._states: dict[int, _LoopState] = {}
        self._finalizer = weakref.finalize(self, _close_at_exit, self._states)

    @classmethod
    def shared(
        cls,
        options: PerceptionRewardConfig,
        *,
        reward_router_address: str | None = None,
        verl_model_path: str | None = None,
    ) -> PerceptionScorer:
        """The training scorer for these settings in this process, built on first use.

        verl builds one reward manager per reward-loop worker process; managers built with the same
        settings in one process (tests, benchmarks) share one scorer, hence one judge per loop.
        """
        key = (options, reward_router_address, verl_model_path)
        with _SHARED_GUARD:
            scorer = _SHARED.get(key)
            if scorer is None:
                scorer = cls(
                    options, reward_router_address=reward_router_address, verl_model_path=verl_model_path
                )
                _SHARED[key] = scorer
        return scorer

    def _judge_factory(
        self, router: str | None, verl_model: str | None, budgeted: bool, reask: int
    ) -> Callable[[], Judge] | None:
        options = self.options
        if options.judge == "none":
            return None
        if options.judge == "lexical":
            from perception_verl.judge.lexical import LexicalJudge

            return partial(LexicalJudge, max_response_chars=options.max_response_chars)
        if options.judge != "sglang":
            raise RewardConfigError(f"no judge to build for reward.reward_kwargs.judge={options.judge}")
        from perception_verl.judge.sglang import OpenAIChatJudge, OpenAIChatJudgeConfig

        client = judge_client_config(options, router, verl_model)
        self.judge_name = judge_label(options, client.urls, client.model)
        if budgeted:
            # One retry owner: the step-deadline judge retries by failure kind; its client tries once.
            client = replace(client, max_retries=0)
        config = OpenAIChatJudgeConfig(
            client=client,
            max_new_tokens=options.max_new_tokens,
            constrained=options.constrained,
            reask=reask,
            max_response_chars=options.max_response_chars,
        )
        self._judge_config = config
        if not budgeted:
            return partial(OpenAIChatJudge, config)
        deadline_s = options.judge_step_deadline_s
        return lambda: BudgetedJudge(OpenAIChatJudge(config), deadline_s)

    def check_health(self) -> None:
        """Start the HTTP judge once now, blocking, and close it (no-op for other judges).

        The reward manager calls it as it is built, in the reward worker, before the first rollout: a
        judge nobody answers for raises ``JudgeUnavailable``, and ``constrained`` output against a
        server of unknown dialect raises ``DialectError``, both with the URL on the first line.
        """
        if self._judge_config is None:
            return
        from perception_verl.client.errors import JudgeUnavailable
        from perception_verl.client.health import check_started
        from perception_verl.judge.sglang import OpenAIChatJudge

        config = self._judge_config
        logger.info("perception scorer: judge %s (health check at start)", self.judge_name)
        try:
            check_started(lambda: OpenAIChatJudge(config))
        except JudgeUnavailable as error:
            raise JudgeUnavailable(f"perception judge health check failed at start: {error}") from None

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(id(loop))
        if state is None or state.loop is not loop:
            state = self._states[id(loop)] = _LoopState(loop)
        return state

    async def judge(self) -> Judge | None:
        """The started judge of the running loop (``None`` for ``judge=none``); started once per loop.

        A failed start (e.g. the health check found no server) is raised and retried by the next caller;
        the training judge (:class:`BudgetedJudge`) instead logs an unreachable server and each call
        retries the start within its deadline (the manager's constructor already checked it once).
        """
        if self._factory is None:
            return None
        state = self._state()
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

    def intake(self) -> asyncio.Semaphore | contextlib.nullcontext[None]:
        """Admission gate of the running loop: ``2 x max_concurrency`` samples in progress with an HTTP judge.

        verl's reward loop starts ``run_single`` for a whole chunk at once, and the event loop runs
        every task's first step before it polls any socket: without a gate, the CPU work of all
        samples (slicing, decoding, prompt building) would come before the first judge request.
        Admitting a bounded number keeps the judge busy while the rest of the work proceeds.
        """
        if self.options.judge != "sglang":
            return contextlib.nullcontext()
        state = self._state()
        if state.gate is None:
            state.gate = asyncio.Semaphore(2 * self.options.max_concurrency)
        return state.gate

    def _accuracy_pool(self) -> CheckPool:
        state = self._state()
        if state.pool is None:
            state.pool = CheckPool(
                accuracy_reward,
                timeout_s=self.options.accuracy_timeout_s,
                workers=ACCURACY_WORKERS,
                warmup=ACCURACY_WARMUP,
            )
        return state.pool

    async def accuracy(self, response: str, ground_truth: str) -> AccuracyResult:
        """math-verify's verdict, checked in a worker process stopped at ``accuracy_timeout_s``.

        math-verify's own timeout relies on signals, which do not work in worker threads, and a thread
        cannot be stopped inside C code. A check still running at the bound has its process killed;
        it scores 0 with reason ``"timeout"`` (counted as ``accuracy_timed_out``) and the step goes on.
        """
        try:
            return await self._accuracy_pool().run(response, ground_truth)
        except CheckTimeout:
            logger.warning(
                "accuracy check exceeded %.1f s (reward.reward_kwargs.accuracy_timeout_s); scored 0",
                self.options.accuracy_timeout_s,
            )
            return AccuracyResult(0.0, ACCURACY_TIMEOUT, "")
        except CheckCrashed as err:
            logger.warning("accuracy check failed (%s); scored 0", err)
            return AccuracyResult(0.0, "error:worker", "")

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
        """Close the judge opened on the running loop and stop its accuracy workers."""
        state = self._states.pop(id(asyncio.get_running_loop()), None)
        if state is None:
            return
        if state.pool is not None:
            state.pool.close()
        if state.judge is not None:
            await state.judge.close()


def _close_at_exit(states: dict[int, _LoopState]) -> None:
    """Best effort when the scorer goes away or at interpreter exit: close what a usable loop holds."""
    entries = list(states.values())
    states.clear()
    for state in entries:
        if state.pool is not None:
            state.pool.close()
        loop = state.loop
        if state.judge is None or loop.is_closed() or loop.is_running():
            continue
        try:
            loop.run_until_complete(state.judge.close())
        except Exception:  # exit path: report, never raise
            logger.warning("could not close perception judge at exit", exc_info=True)
