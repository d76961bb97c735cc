"""The perception reward manager verl's reward loop runs (``RewardManagerBase`` subclass).

Load it without any registry import:
``reward.reward_manager.source=importlib``
``reward.reward_manager.module.path=pkg://perception_verl.integration.manager``
``reward.reward_manager.name=PerceptionRewardManager``.
(``source=register`` with ``name=perception`` works where
:mod:`perception_verl.integration.register` is imported in every process; see that module.)

Per sample (``run_single``): decode the response as verl's naive manager does, read the ground
truth and the annotations, ask the shared judge which annotations the response states (skipped
when there are none), apply the failure policy, and combine everything with
:func:`perception_verl.rewards.total.score_response`. ``reward_extra_info`` always holds the
same numeric keys (:data:`EXTRA_KEYS`), so verl can stack them into the batch (the ``judge_*_tokens``
keys carry the judge requests' token usage, 0 for cache hits and offline judges); ``acc`` repeats
``accuracy`` because verl's validation picks ``acc`` as its core metric (``val-core/<source>/acc/...``).

A judge launched by verl (``reward.reward_model.enable=True``) is reached at the router address verl
passes in. verl's reward loop then calls this manager only when ``reward.custom_reward_function.path``
is set (point it at :func:`compute_score` here), and its v1 trainer gives a colocated reward model no
ground truth, so ``reward.reward_model.enable_resource_pool=True`` is required; :func:`check_routing`
enforces both at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from perception_verl.data.annotations import parse_annotations
from perception_verl.integration import judges
from perception_verl.integration.config import (
    PerceptionRewardConfig,
    RewardConfigError,
    from_kwargs,
    judge_label,
    resolve_judge,
)
from perception_verl.judge.base import TRUNCATED, Judge, JudgeResult
from perception_verl.judge.budget import BudgetedJudge
from perception_verl.rewards.accuracy import AccuracyResult, accuracy_reward
from perception_verl.rewards.deadline import CheckCrashed, CheckPool, CheckTimeout
from perception_verl.rewards.ground_truth import GroundTruthError, ground_truth_text
from perception_verl.rewards.total import RewardBreakdown, score_response

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
"""Accuracy checks run at once per reward-loop worker at normal priority (see :class:`CheckPool`)."""

ACCURACY_WARMUP = ("<answer>\\boxed{\\frac{2}{2}}</answer>", "1")
"""One check the accuracy workers' fork server runs first, so workers start with math-verify warm."""


class JudgeFailedError(RuntimeError):
    """Raised by ``run_single`` under ``failure_policy=raise`` when the judge gave no verdicts."""


def _config_get(config: Any, dotted: str, default: Any = None) -> Any:
    node = config
    for part in dotted.split("."):
        if node is None:
            return default
        getter = getattr(node, "get", None)
        node = getter(part, None) if getter is not None else getattr(node, part, None)
    return default if node is None else node


def judge_endpoint(
    options: PerceptionRewardConfig, reward_router_address: str | None, verl_model_path: str | None
) -> tuple[tuple[str, ...], str]:
    """Where the SGLang judge lives: the configured URLs, else the router of the judge verl launched."""
    if options.judge_urls:
        urls = options.judge_urls
        model = options.judge_model
    elif reward_router_address:
        address = reward_router_address
        urls = (address if "://" in address else f"http://{address}",)
        model = options.judge_model or verl_model_path
    else:
        raise RewardConfigError(
            "reward.reward_kwargs.judge=sglang needs reward.reward_kwargs.judge_urls (an external judge) "
            "or reward.reward_model.enable=True (a judge launched by verl)"
        )
    if not model:
        raise RewardConfigError("reward.reward_kwargs.judge_model is required with judge=sglang")
    return urls, model


def check_routing(config: Any, options: PerceptionRewardConfig) -> None:
    """Fail at start on verl settings under which the reward loop would not give this manager its inputs."""
    if not _config_get(config, "reward.reward_model.enable", False):
        return
    if _config_get(config, "reward.custom_reward_function.path") is None:
        raise RewardConfigError(
            "with reward.reward_model.enable=True verl's reward loop calls the reward manager only when "
            "reward.custom_reward_function.path is set; add "
            "reward.custom_reward_function.path=pkg://perception_verl.integration.manager "
            "reward.custom_reward_function.name=compute_score"
        )
    if _config_get(config, "trainer.use_v1", False) and not _config_get(
        config, "reward.reward_model.enable_resource_pool", False
    ):
        raise RewardConfigError(
            "verl's v1 trainer sends only prompts and responses (no ground truth, no annotations) to a "
            "colocated reward model; set reward.reward_model.enable_resource_pool=True (judge on its own "
            "GPUs) or serve the judge yourself and set reward.reward_kwargs.judge_urls"
        )


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
    )


def build_judge(
    options: PerceptionRewardConfig, reward_router_address: str | None, verl_model_path: str | None
) -> tuple[object, Any]:
    """Return (hashable key, factory) for the judge these options describe."""
    if options.judge == "lexical":
        from perception_verl.judge.lexical import LexicalJudge

        chars = options.max_response_chars
        return ("lexical", chars), lambda: LexicalJudge(max_response_chars=chars)
    if options.judge != "sglang":
        raise RewardConfigError(f"no judge to build for reward.reward_kwargs.judge={options.judge}")
    from perception_verl.judge.sglang import OpenAIChatJudge, OpenAIChatJudgeConfig

    deadline_s = options.judge_step_deadline_s
    judge_config = OpenAIChatJudgeConfig(
        client=judge_client_config(options, reward_router_address, verl_model_path),
        max_new_tokens=options.max_new_tokens,
        constrained=options.constrained,
        max_response_chars=options.max_response_chars,
    )
    key = ("sglang", judge_config, deadline_s)
    return key, lambda: BudgetedJudge(OpenAIChatJudge(judge_config), deadline_s)


def lookup(non_tensor: Mapping[str, Any], dotted: str) -> Any:
    """Read ``a.b.c`` from a sample's non-tensor fields (dicts inside); ``None`` when any part is absent."""
    node: Any = non_tensor
    for part in dotted.split("."):
        if node is None:
            return None
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, np.ndarray) and node.dtype == object and node.shape == ():
            node = node.item()
            node = node.get(part) if isinstance(node, Mapping) else None
        else:
            return None
    return node


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


def _row_name(item_non_tensor: Mapping[str, Any]) -> str:
    info = item_non_tensor.get("extra_info")
    if isinstance(info, Mapping):
        for key in ("index", "id", "uid"):
            if info.get(key) is not None:
                return f"{key}={info[key]}"
    uid = item_non_tensor.get("uid")
    return f"uid={uid}" if uid is not None else "unknown row"


class PerceptionRewardManager(RewardManagerBase):
    """verl reward-loop manager: accuracy + format + perception (judged) + repetition penalty.

    Options come from ``reward.reward_kwargs`` (see :mod:`perception_verl.integration.config`) and
    are validated here, in the constructor, so a bad option stops the run before training starts.
    The judge is shared by all instances on one event loop (:mod:`perception_verl.integration.judges`);
    call :meth:`close` from that loop to release its HTTP session (verl does not; the process exit
    handler then closes it on a best-effort basis).
    """

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ) -> None:
        super().__init__(config, tokenizer, compute_score)
        self.options = resolve_judge(
            from_kwargs(_config_get(config, "reward.reward_kwargs", {})),
            verl_judge=bool(reward_router_address),
        )
        self.reward_router_address = reward_router_address
        self.reward_model_tokenizer = reward_model_tokenizer
        if self.options.judge == "sglang":
            check_routing(config, self.options)
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CheckPool] = (
            weakref.WeakKeyDictionary()
        )
        verl_model = _config_get(config, "reward.reward_model.model_path")
        self.judge_name = self.options.judge
        if self.options.judge == "sglang":
            self._start_check(reward_router_address, verl_model)
        else:
            logger.info("perception reward manager: judge %s", self.judge_name)
        self._judge_key, self._judge_factory = (
            build_judge(self.options, reward_router_address, verl_model)
            if self.options.judge != "none"
            else (None, None)
        )

    def _start_check(self, reward_router_address: str | None, verl_model: str | None) -> None:
        """Health-check the HTTP judge now, in the reward worker, before the first rollout is scored."""
        from perception_verl.client.errors import JudgeUnavailable
        from perception_verl.client.health import check_health

        client = judge_client_config(self.options, reward_router_address, verl_model)
        self.judge_name = judge_label(self.options, client.urls, client.model)
        logger.info("perception reward manager: judge %s (health check at start)", self.judge_name)
        try:
            check_health(client)
        except JudgeUnavailable as error:
            raise JudgeUnavailable(f"perception judge health check failed at start: {error}") from None

    async def judge(self) -> Judge:
        """The started judge shared on this event loop (health-checked once)."""
        return await judges.shared_judge(self._judge_key, self._judge_factory)

    async def close(self) -> None:
        """Close the judges opened on the running loop and stop its accuracy workers."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            pool.close()
        await judges.close_all()

    def _decode(self, data_item: Any) -> str:
        response_ids = data_item.batch["responses"]
        valid_length = int(data_item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
        return self.tokenizer.decode(response_ids[:valid_length], skip_special_tokens=True)

    def _accuracy_pool(self) -> CheckPool:
        """The accuracy worker pool of the running loop (created on first use)."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = CheckPool(
                accuracy_reward,
                timeout_s=self.options.accuracy_timeout_s,
                workers=ACCURACY_WORKERS,
                warmup=ACCURACY_WARMUP,
            )
        return pool

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

        An HTTP judge is a :class:`BudgetedJudge`: failed calls are retried until
        ``judge_step_deadline_s`` after ``started`` (the sample's entry into ``run_single``).
        """
        if not annotations or self._judge_factory is None:
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
    ) -> tuple[RewardBreakdown, JudgeResult | None]:
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
        return breakdown, result

    def _intake(self) -> asyncio.Semaphore | contextlib.nullcontext[None]:
        """Admission gate of the running loop: ``2 x max_concurrency`` samples in progress with an HTTP judge.

        verl's reward loop starts ``run_single`` for a whole chunk at once, and the event loop runs
        every task's first step before it polls any socket: without a gate, the CPU work of all
        samples (slicing, decoding, prompt building) would come before the first judge request.
        Admitting a bounded number keeps the judge busy while the rest of the work proceeds.
        """
        if self.options.judge != "sglang":
            return contextlib.nullcontext()
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(2 * self.options.max_concurrency)
        return gate

    async def run_single(self, data: DataProto) -> dict:
        started = time.monotonic()
        async with self._intake():
            return await self._run_single(data, started)

    async def _run_single(self, data: DataProto, started: float) -> dict:
        data_item = data[-1:][0]
        non_tensor = data_item.non_tensor_batch
        reward_model = non_tensor.get("reward_model")
        if not isinstance(reward_model, Mapping) or "ground_truth" not in reward_model:
            raise KeyError(
                f"sample {_row_name(non_tensor)} has no reward_model.ground_truth; the perception reward "
                "manager needs the dataset's reward_model field in the reward loop"
            )
        annotations = parse_annotations(
            lookup(non_tensor, self.options.annotations_key), row=_row_name(non_tensor)
        )
        # Decoded on the event loop: a few microseconds of Rust, where a thread hop costs more and torch
        # ops from several executor threads at once contend for its intra-op thread pool.
        response = self._decode(data_item)
        truth, invalid = checked_ground_truth(reward_model["ground_truth"], _row_name(non_tensor))
        breakdown, result = await self.score(response, truth, annotations, started)
        extra = extra_info_of(breakdown, result, ground_truth_invalid=invalid)
        return {"reward_score": float(breakdown.score), "reward_extra_info": extra}


def compute_score(
    data_source: str, solution_str: str, ground_truth: str, extra_info: Any = None, **kwargs: Any
) -> float:
    """Rule-only reward (accuracy, format, repetition; no perception), with the default weights.

    :class:`PerceptionRewardManager` does not call it. It exists because verl's reward loop runs a
    reward manager alongside a verl-launched reward model only when ``reward.custom_reward_function.path``
    is set: point that option here.
    """
    truth, _ = checked_ground_truth(ground_truth, f"data_source={data_source}")
    return float(score_response(solution_str, truth, None).score)
