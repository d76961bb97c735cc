"""A naive judge client as a verl reward manager, the baseline of ``judge_throughput.py``.

It runs in the same verl reward loop as ours (``RewardLoopWorker`` -> ``run_single`` per sample) so
that the two differ only in how they use the judge:

- one request per response, no deduplication and no result cache;
- a fresh HTTP connection per request (a new ``aiohttp.ClientSession`` each time);
- the response before the facts (``response_first`` layout of :mod:`tests.support.layouts`);
- at most ``max_concurrency`` requests in flight per event loop, the same cap as ours.

It then scores the sample with the same reward functions as ours. Options (``reward.reward_kwargs``):
``judge_urls`` (one URL), ``judge_model``, ``max_concurrency``.

Load it with ``reward.reward_manager.source=importlib``,
``reward.reward_manager.module.path=pkg://benchmarks._baseline`` and
``reward.reward_manager.name=NaiveJudgeRewardManager`` (the repository root on the import path).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from perception_verl.data.annotations import parse_annotations
from perception_verl.judge.sanitize import sanitize_response
from perception_verl.judge.verdict import parse_verdicts
from perception_verl.rewards.total import score_response
from tests.support.layouts import layout_messages


async def naive_verdicts(
    url: str,
    model: str,
    facts: list[str],
    response: str,
    gate: asyncio.Semaphore,
    extra_body: dict[str, Any] | None = None,
) -> tuple[int, ...]:
    """One judge request as the naive client sends it: response first, on a fresh HTTP session."""
    messages = layout_messages("response_first", facts, sanitize_response(response))
    body = {"model": model, "messages": messages, "max_tokens": 512, "temperature": 0.0, **(extra_body or {})}
    endpoint = f"{url.rstrip('/')}/v1/chat/completions"
    async with gate, aiohttp.ClientSession() as session, session.post(endpoint, json=body) as reply:
        reply.raise_for_status()
        payload = await reply.json()
    return parse_verdicts(payload["choices"][0]["message"]["content"], len(facts))


class NaiveJudgeRewardManager(RewardManagerBase):
    """Reward manager with a naive judge client (see the module docstring)."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, **_: Any) -> None:
        super().__init__(config, tokenizer, compute_score)
        options = config.reward.reward_kwargs
        self.url = str(options["judge_urls"]).rstrip("/")
        self.model = str(options["judge_model"])
        self.cap = int(options["max_concurrency"])
        self._gates: dict[int, asyncio.Semaphore] = {}

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        return self._gates.setdefault(id(loop), asyncio.Semaphore(self.cap))

    def _decode(self, item: Any) -> str:
        ids = item.batch["responses"]
        valid = int(item.batch["attention_mask"][-ids.shape[-1] :].sum())
        return self.tokenizer.decode(ids[:valid], skip_special_tokens=True)

    async def _ask(self, facts: list[str], response: str) -> tuple[int, ...]:
        return await naive_verdicts(self.url, self.model, facts, response, self._gate())

    async def run_single(self, data: DataProto) -> dict:
        item = data[-1:][0]
        reward_model = item.non_tensor_batch["reward_model"]
        facts = parse_annotations(reward_model.get("annotations"))
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(None, self._decode, item)
        verdicts = await self._ask(facts, response) if facts else None
        truth = str(reward_model["ground_truth"])
        breakdown = await loop.run_in_executor(
            None, lambda: score_response(response, truth, verdicts, num_annotations=len(facts))
        )
        return {"reward_score": float(breakdown.score), "reward_extra_info": {"acc": breakdown.accuracy}}
