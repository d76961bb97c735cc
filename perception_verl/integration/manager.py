"""The perception reward manager verl's reward loop runs: a thin adapter over :class:`PerceptionScorer`.

Load it without any registry import:
``reward.reward_manager.source=importlib``
``reward.reward_manager.module.path=pkg://perception_verl.integration.manager``
``reward.reward_manager.name=PerceptionRewardManager`` (or ``source=register name=perception``).
Per sample it decodes the response as verl's naive manager does, reads the ground truth and the
annotations, scores them with :mod:`perception_verl.scorer` and returns verl's dict; its
``reward_extra_info`` names the judge (``perception_judge``) beside the numeric components. For a
judge verl launches, :mod:`perception_verl.integration.routing` checks verl's settings at start.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from perception_verl.config import PerceptionRewardConfig, from_kwargs, resolve_judge
from perception_verl.data.annotations import parse_annotations
from perception_verl.integration.fields import lookup, raw_ground_truth, row_name
from perception_verl.integration.metrics import JUDGE_KEY
from perception_verl.integration.routing import check_routing, config_get
from perception_verl.judge.base import Judge
from perception_verl.scorer import PerceptionScorer, checked_ground_truth, extra_info_of, rule_score

logger = logging.getLogger(__name__)


class PerceptionRewardManager(RewardManagerBase):
    """verl reward-loop manager: accuracy + format + perception (judged) + repetition penalty.

    Options come from ``reward.reward_kwargs`` (see :mod:`perception_verl.config`) and
    are validated in the constructor, which also health-checks an HTTP judge, so a bad option stops
    the run before training starts. Its scorer is bound to the manager's loop (``self.loop``, set by
    verl's base class): ``run_single``, :meth:`start` and :meth:`close` run there. verl never calls
    :meth:`close`; the accuracy workers then stop with the process.
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
        kwargs = config_get(config, "reward.reward_kwargs", {})
        options = resolve_judge(from_kwargs(kwargs), verl_judge=bool(reward_router_address))
        if options.judge == "sglang":
            check_routing(config, options)
        self.reward_router_address = reward_router_address
        self.reward_model_tokenizer = reward_model_tokenizer
        # One scorer per manager, bound to the loop verl gave it (RewardManagerBase.loop): verl's
        # RewardLoopWorker awaits run_single on that loop, as its naive manager's run_in_executor assumes.
        self.scorer = PerceptionScorer(
            options,
            reward_router_address=reward_router_address,
            verl_model_path=config_get(config, "reward.reward_model.model_path"),
            loop=self.loop,
        )
        self.scorer.check_health()
        logger.info("perception reward manager: judge %s", self.scorer.judge_name)

    @property
    def options(self) -> PerceptionRewardConfig:
        return self.scorer.options

    @property
    def judge_name(self) -> str:
        return self.scorer.judge_name

    async def judge(self) -> Judge | None:
        """The started judge (health-checked as it starts on the manager's loop)."""
        return await self.scorer.judge()

    async def start(self) -> None:
        """Start the judge and the accuracy workers before the first batch (else: on first use)."""
        await self.scorer.start()

    async def close(self) -> None:
        """Close the judge and stop the accuracy workers."""
        await self.scorer.close()

    def _decode(self, data_item: Any) -> str:
        response_ids = data_item.batch["responses"]
        valid_length = int(data_item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
        return self.tokenizer.decode(response_ids[:valid_length], skip_special_tokens=True)

    async def run_single(self, data: DataProto) -> dict:
        started = time.monotonic()
        async with self.scorer.intake():
            return await self._run_single(data, started)

    async def _run_single(self, data: DataProto, started: float) -> dict:
        data_item = data[-1:][0]
        non_tensor = data_item.non_tensor_batch
        row = row_name(non_tensor)
        raw_truth = raw_ground_truth(non_tensor, row)
        annotations = parse_annotations(lookup(non_tensor, self.options.annotations_key), row=row)
        # Decoded on the event loop: a few microseconds of Rust, where a thread hop costs more and
        # torch ops from several executor threads at once contend for its intra-op thread pool.
        response = self._decode(data_item)
        truth, invalid = checked_ground_truth(raw_truth, row)
        scored = await self.scorer.score(response, truth, annotations, started)
        extra = extra_info_of(scored.breakdown, scored.result, ground_truth_invalid=invalid)
        extra[JUDGE_KEY] = self.scorer.judge_name
        return {"reward_score": float(scored.breakdown.score), "reward_extra_info": extra}


def compute_score(
    data_source: str, solution_str: str, ground_truth: str, extra_info: Any = None, **kwargs: Any
) -> float:
    """Rule-only reward (accuracy, format, repetition; no perception), with the default weights.

    :class:`PerceptionRewardManager` does not call it. It exists because verl's reward loop runs a
    reward manager alongside a verl-launched reward model only when ``reward.custom_reward_function.path``
    is set: point that option here.
    """
    return rule_score(solution_str, ground_truth, f"data_source={data_source}")
