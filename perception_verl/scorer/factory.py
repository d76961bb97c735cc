"""The judge a scorer builds for its options: none, the offline lexical judge, or the HTTP judge.

The HTTP judge is wrapped in :class:`BudgetedJudge` for training, the one retry owner (failed calls of
a retryable kind retried until ``judge_step_deadline_s``, final kinds at once; its client tries each
request once); the offline CLIs use it unwrapped, their client retrying up to ``max_retries``.
Construction errors (a bad option, an unimportable judge) are raised here; nothing is contacted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from perception_verl.config import PerceptionRewardConfig, RewardConfigError, judge_label
from perception_verl.judge.base import Judge
from perception_verl.judge.budget import BudgetedJudge
from perception_verl.judge.sglang import OpenAIChatJudge, OpenAIChatJudgeConfig
from perception_verl.scorer.endpoint import judge_client_config


@dataclass(frozen=True)
class JudgePlan:
    """How a scorer makes its judge: ``make`` (``None``: no judge), its label, the HTTP judge's config."""

    make: Callable[[], Judge] | None
    label: str
    http: OpenAIChatJudgeConfig | None = None


def judge_plan(
    options: PerceptionRewardConfig,
    router: str | None,
    verl_model: str | None,
    *,
    budgeted: bool,
    reask: int,
) -> JudgePlan:
    """The :class:`JudgePlan` of ``options`` (see the module docstring)."""
    if options.judge == "none":
        return JudgePlan(None, "none")
    if options.judge == "lexical":
        from perception_verl.judge.lexical import LexicalJudge  # the offline judge, loaded only when named

        return JudgePlan(partial(LexicalJudge, max_response_chars=options.max_response_chars), "lexical")
    if options.judge != "sglang":
        raise RewardConfigError(f"no judge to build for reward.reward_kwargs.judge={options.judge}")
    client = judge_client_config(options, router, verl_model)
    label = judge_label(options, client.urls, client.model)
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
    if not budgeted:
        return JudgePlan(partial(OpenAIChatJudge, config), label, config)
    deadline_s = options.judge_step_deadline_s
    return JudgePlan(lambda: BudgetedJudge(OpenAIChatJudge(config), deadline_s), label, config)
